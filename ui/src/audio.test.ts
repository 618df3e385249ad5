// The alarm sound against IEC 60601-1-8:2006+A1:2012, 6.3.3 auditory alarm signals:
// the burst table (Table 3 of that edition) and the pulse table (Table 4), figures
// as the project records them in /work/shared/reference/alarms.md (which cites both
// as "Table 4"); the high-priority rhythm (3rd→4th 2·t_s + t_d, 5th→6th 0.35–1.30 s)
// as the standard's burst table is commonly cited. Every
// interval of the generated schedule is checked, measured both over the whole
// pulse and between the half-level points of its ramps, so the result does not
// depend on how an analyser marks a pulse's edges.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Priority } from "./contract";
import {
  AudioStatusReporter,
  HARMONICS,
  type Burst,
  burst,
  harmonicLevelsDb,
  soundAvailable,
  waveCoefficients,
} from "./audio";

const PRIORITIES: Priority[] = ["high", "medium", "low"];

/** Start and end of each pulse: whole pulse (edges) or between the half-level points of the ramps. */
function edges(b: Burst, halfLevel: boolean): { start: number; end: number }[] {
  return b.pulses.map((p) => ({
    start: p.startMs + (halfLevel ? p.riseMs / 2 : 0),
    end: p.startMs + p.durationMs - (halfLevel ? p.fallMs / 2 : 0),
  }));
}

/** Pulse spacing t_s: end of one pulse to the start of the next (Table 3 note). */
function spacings(b: Burst, halfLevel: boolean): number[] {
  const e = edges(b, halfLevel);
  return e.slice(1).map((x, i) => x.start - e[i].end);
}

function pulseDurations(b: Burst, halfLevel: boolean): number[] {
  return edges(b, halfLevel).map((x) => x.end - x.start);
}

/** t_b: end of the last pulse of one burst to the start of the next burst. */
function interBurst(b: Burst, halfLevel: boolean): number {
  const e = edges(b, halfLevel);
  return b.periodMs + e[0].start - e[e.length - 1].end;
}

const between = (v: number, lo: number, hi: number) => v >= lo - 1e-9 && v <= hi + 1e-9;

describe("IEC 60601-1-8 burst table (Table 3)", () => {
  for (const half of [false, true]) {
    const how = half ? "between half-level points" : "over the whole pulse";

    it(`high: 10 pulses as 3 + 2, pause, 3 + 2; t_s 50–125 ms; 3rd→4th and 8th→9th 2·t_s + t_d; 5th→6th 0.35–1.30 s; t_b 2.5–15 s (${how})`, () => {
      const b = burst("high");
      expect(b.pulses).toHaveLength(10);
      const s = spacings(b, half);
      const td = pulseDurations(b, half)[0];
      const ts = s[0];
      expect(between(ts, 50, 125)).toBe(true);
      // Pulses 1-2, 2-3, 4-5, 6-7, 7-8, 9-10: the one pulse spacing t_s.
      for (const i of [0, 1, 3, 5, 6, 8]) expect(s[i]).toBeCloseTo(ts, 9);
      // 3rd→4th and 8th→9th: 2·t_s + t_d, the rest of one pulse left out ("3 + 2").
      expect(s[2]).toBeCloseTo(2 * ts + td, 9);
      expect(s[7]).toBeCloseTo(2 * ts + td, 9);
      // 5th→6th: the pause between the two halves.
      expect(between(s[4], 350, 1300)).toBe(true);
      expect(between(interBurst(b, half), 2500, 15000)).toBe(true);
    });

    it(`medium: 3 pulses, t_s 125–250 ms, t_b 2.5–30 s (${how})`, () => {
      const b = burst("medium");
      expect(b.pulses).toHaveLength(3);
      for (const s of spacings(b, half)) expect(between(s, 125, 250)).toBe(true);
      expect(between(interBurst(b, half), 2500, 30000)).toBe(true);
    });

    it(`low: 1 or 2 pulses, t_s 125–250 ms, repeated after more than 15 s (${how})`, () => {
      const b = burst("low");
      expect(b.pulses.length).toBeGreaterThanOrEqual(1);
      expect(b.pulses.length).toBeLessThanOrEqual(2);
      for (const s of spacings(b, half)) expect(between(s, 125, 250)).toBe(true);
      expect(interBurst(b, half)).toBeGreaterThan(15000);
    });

    it(`pulse duration t_d: high 75–200 ms; medium 75–200 ms and 125–250 ms (both readings of the table); low 125–250 ms (${how})`, () => {
      for (const d of pulseDurations(burst("high"), half)) expect(between(d, 75, 200)).toBe(true);
      for (const d of pulseDurations(burst("medium"), half)) expect(between(d, 125, 200)).toBe(true);
      for (const d of pulseDurations(burst("low"), half)) expect(between(d, 125, 250)).toBe(true);
    });
  }

  it("the period is the burst plus t_b, and pulses never overlap", () => {
    for (const p of PRIORITIES) {
      const b = burst(p);
      expect(b.periodMs).toBe(b.burstMs + b.interBurstMs);
      const last = b.pulses[b.pulses.length - 1];
      expect(b.burstMs).toBe(last.startMs + last.durationMs);
      for (const s of spacings(b, false)) expect(s).toBeGreaterThan(0);
    }
  });

  it("priorities stay distinguishable: more pulses and shorter repetition for higher priority", () => {
    const [hi, me, lo] = PRIORITIES.map(burst);
    expect(hi.pulses.length).toBeGreaterThan(me.pulses.length);
    expect(me.pulses.length).toBeGreaterThan(lo.pulses.length);
    expect(hi.periodMs).toBeLessThan(me.periodMs);
    expect(me.periodMs).toBeLessThan(lo.periodMs);
  });
});

describe("IEC 60601-1-8 pulse table (Table 4)", () => {
  it("rise and fall times are 10–20 % of t_d; all pulses of a burst have the same t_d and level", () => {
    for (const p of PRIORITIES) {
      const b = burst(p);
      for (const x of b.pulses) {
        expect(between(x.riseMs / x.durationMs, 0.1, 0.2)).toBe(true);
        expect(between(x.fallMs / x.durationMs, 0.1, 0.2)).toBe(true);
        expect(x.riseMs + x.fallMs).toBeLessThan(x.durationMs);
        expect(x.durationMs).toBe(b.pulses[0].durationMs);
        expect(x.level).toBe(b.pulses[0].level); // within the 10 dB allowed between pulses: equal
        expect(x.level).toBeGreaterThan(0);
      }
    }
  });

  it("pulse frequency f0 is 150–1000 Hz", () => {
    for (const p of PRIORITIES) expect(between(burst(p).frequencyHz, 150, 1000)).toBe(true);
  });

  it("at least 4 harmonics (besides f0) in 300–4000 Hz within ±15 dB of the fundamental, at every priority", () => {
    const db = harmonicLevelsDb();
    expect(db[0]).toBe(0);
    for (const p of PRIORITIES) {
      const f0 = burst(p).frequencyHz;
      const inBand = db.filter((level, i) => {
        const n = i + 1;
        return n >= 2 && between(n * f0, 300, 4000) && Math.abs(level) <= 15;
      });
      expect(inBand.length, `${p} at ${f0} Hz`).toBeGreaterThanOrEqual(4);
    }
  });

  it("the PeriodicWave coefficients are those harmonics (sine terms, no DC)", () => {
    const { real, imag } = waveCoefficients();
    expect(real.length).toBe(HARMONICS.length + 1);
    expect(imag.length).toBe(HARMONICS.length + 1);
    expect([...real].every((v) => v === 0)).toBe(true);
    expect(imag[0]).toBe(0);
    HARMONICS.forEach((a, i) => expect(imag[i + 1]).toBeCloseTo(a, 6));
  });

  it("a triangle wave would not pass (the check has teeth)", () => {
    // Triangle: odd harmonics only, amplitude 1/n².
    const tri = Array.from({ length: 8 }, (_, i) => ((i + 1) % 2 === 1 ? 1 / (i + 1) ** 2 : 1e-9));
    const ok = harmonicLevelsDb(tri).filter((l, i) => i >= 1 && (i + 1) * 660 <= 4000 && Math.abs(l) <= 15);
    expect(ok.length).toBeLessThan(4);
  });
});

describe("alarm sound availability", () => {
  it("needs a running AudioContext and a visible window", () => {
    expect(soundAvailable(true, "visible")).toBe(true);
    expect(soundAvailable(false, "visible")).toBe(false);
    expect(soundAvailable(true, "hidden")).toBe(false);
    expect(soundAvailable(false, "hidden")).toBe(false);
  });

  describe("reporting to the core", () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it("reports the first value and then changes only", async () => {
      const sent: boolean[] = [];
      const r = new AudioStatusReporter(async (v) => void sent.push(v));
      r.report(false);
      await vi.runAllTimersAsync();
      r.report(false);
      r.report(false);
      await vi.runAllTimersAsync();
      r.report(true);
      await vi.runAllTimersAsync();
      r.report(true);
      await vi.runAllTimersAsync();
      expect(sent).toEqual([false, true]);
      expect(r.confirmed).toBe(true);
    });

    it("sends the latest value once a report in flight is answered", async () => {
      const sent: boolean[] = [];
      let answer: () => void = () => {};
      const r = new AudioStatusReporter((v) => {
        sent.push(v);
        return new Promise<void>((res) => (answer = res));
      });
      r.report(false);
      r.report(true);
      r.report(false); // back to what is in flight: nothing more to send
      answer();
      await vi.runAllTimersAsync();
      expect(sent).toEqual([false]);
      r.report(true);
      answer();
      await vi.runAllTimersAsync();
      expect(sent).toEqual([false, true]);
    });

    it("retries a failed report (core locked or busy) with the latest value", async () => {
      const sent: boolean[] = [];
      let fail = true;
      const errors: unknown[] = [];
      const r = new AudioStatusReporter(
        async (v) => {
          sent.push(v);
          if (fail) throw { code: "locked", message: "locked" };
        },
        2000,
        (e) => errors.push(e),
      );
      r.report(false);
      await vi.advanceTimersByTimeAsync(10);
      expect(errors).toHaveLength(1);
      expect(r.confirmed).toBeNull();
      fail = false;
      r.report(true); // waits for the retry, then sends the latest
      await vi.advanceTimersByTimeAsync(1000);
      expect(sent).toEqual([false]);
      await vi.advanceTimersByTimeAsync(1500);
      expect(sent).toEqual([false, true]);
      expect(r.confirmed).toBe(true);
    });
  });
});
