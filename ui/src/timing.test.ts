import { describe, expect, it } from "vitest";
import type { ActiveAlarm, BedAlarmState } from "./contract";
import { MDC } from "./codes";
import { LatencySamples, SHOWN_CODES, ScreenLatency, percentile } from "./timing";

const T0 = Date.parse("2025-03-01T10:00:00Z");

function alarm(id: number, sinceMs: number): ActiveAlarm {
  return {
    id,
    kind: { type: "physiological", parameter: "heart_rate", direction: "high" },
    priority: "medium",
    // As the core sends it: RFC 3339 UTC with sub-millisecond digits.
    since: new Date(sinceMs).toISOString().replace("Z", "123456Z"),
    value: 140,
    limit: 120,
    latched: false,
    acknowledged: false,
    acknowledged_by: null,
    recurred: 0,
    recurring_since: null,
    audible: true,
    message: "HR high",
    signal: { colour: "yellow", flash_hz: 0.6, duty: 0.5 },
  };
}

function bed(name: string, ...active: ActiveAlarm[]): BedAlarmState {
  return { bed: name, category: "adult", active, audio: { state: "normal" }, highest: null, sounding: null, limits: [] };
}

describe("percentile", () => {
  it("is the nearest rank of the sorted values, null when empty", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([3, 1, 2], 50)).toBe(2);
    expect(percentile([3, 1, 2], 100)).toBe(3);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1
    expect(percentile(hundred, 50)).toBe(51);
    expect(percentile(hundred, 99)).toBe(100);
    expect(percentile(new Float64Array([5, 4]), 0)).toBe(4);
  });
});

describe("LatencySamples", () => {
  it("keeps the last `capacity` samples and counts all of them", () => {
    const s = new LatencySamples(4);
    expect(s.stats()).toEqual({ count: 0, samples: 0, p50: null, p99: null, max: null });
    for (const v of [1000, 1, 2, 3, 4, 5]) s.add(v);
    // 1000 and 1 have left the ring; the max is over the window.
    expect(s.stats()).toEqual({ count: 6, samples: 4, p50: 4, p99: 5, max: 5 });
    s.reset();
    expect(s.stats().count).toBe(0);
    s.add(7);
    expect(s.stats()).toEqual({ count: 1, samples: 1, p50: 7, p99: 7, max: 7 });
  });
});

describe("ScreenLatency", () => {
  it("times each shown reading from its measurement to the end of the next frame", () => {
    const l = new ScreenLatency();
    l.onUpdate(T0 + 300, T0 + 290, [T0, T0 + 100], []);
    // Nothing is on screen until a frame has drawn it.
    expect(l.stats().reading_to_screen_ms.count).toBe(0);
    l.onFrame(T0 + 320);
    l.onFrame(T0 + 340); // a frame with nothing new adds nothing
    expect(l.stats().reading_to_screen_ms).toEqual({ count: 2, samples: 2, p50: 320, p99: 320, max: 320 });
    // Core sent at now_ms 290, page had it at 300.
    expect(l.stats().update_ipc_ms.p50).toBe(10);
  });

  it("times a new alarm from its start (since) to the end of the first frame that drew it, once", () => {
    const l = new ScreenLatency();
    l.onUpdate(T0 + 20, T0 + 15, [], [bed("bed-1", alarm(7, T0))]);
    l.onFrame(T0 + 30);
    // The same alarm again (acknowledged, escalated, another alarm beside it): not timed again.
    l.onUpdate(T0 + 500, T0 + 495, [], [bed("bed-1", alarm(7, T0), alarm(8, T0 + 480))]);
    l.onFrame(T0 + 510);
    const a = l.stats().alarm_to_screen_ms;
    expect(a.count).toBe(2);
    expect([a.p50, a.max]).toEqual([30, 30]);
  });

  it("does not time alarms the snapshot already had, but does time one that ended and a new one", () => {
    const l = new ScreenLatency();
    l.knowAlarms([bed("bed-1", alarm(3, T0 - 60_000)), bed("bed-2", alarm(4, T0 - 5000))]);
    l.onUpdate(T0 + 100, T0 + 90, [], [bed("bed-1", alarm(3, T0 - 60_000))]);
    l.onFrame(T0 + 110);
    expect(l.stats().alarm_to_screen_ms.count).toBe(0);
    // bed-2's alarm 4 ends; a new one (5) starts at another bed and at bed-2.
    l.onUpdate(T0 + 200, T0 + 190, [], [bed("bed-2"), bed("bed-3", alarm(5, T0 + 180))]);
    l.onUpdate(T0 + 210, T0 + 205, [], [bed("bed-2", alarm(6, T0 + 200))]);
    l.onFrame(T0 + 226);
    const a = l.stats().alarm_to_screen_ms;
    expect(a.count).toBe(2);
    expect(a.max).toBe(46);
    expect(a.p50).toBe(46); // nearest rank of [26, 46] at 50 %
  });

  it("uses millisecond times from the RFC 3339 `since`, and skips one it cannot read", () => {
    const l = new ScreenLatency();
    const bad = { ...alarm(9, T0), since: "not a time" };
    l.onUpdate(T0 + 50, T0 + 40, [], [bed("bed-1", alarm(1, T0 + 1), bad)]);
    l.onFrame(T0 + 51);
    expect(l.stats().alarm_to_screen_ms).toMatchObject({ count: 1, p50: 50 });
  });

  it("skips the IPC time of a resync update (now_ms 0) and reset forgets samples, not known alarms", () => {
    const l = new ScreenLatency();
    l.onUpdate(T0, 0, [T0 - 10], [bed("bed-1", alarm(1, T0 - 20))]);
    l.onFrame(T0 + 5);
    expect(l.stats().update_ipc_ms.count).toBe(0);
    expect(l.stats().reading_to_screen_ms.count).toBe(1);
    l.reset();
    l.onUpdate(T0 + 300, T0 + 299, [], [bed("bed-1", alarm(1, T0 - 20))]);
    l.onFrame(T0 + 310);
    expect(l.stats()).toMatchObject({ reading_to_screen_ms: { count: 0 }, alarm_to_screen_ms: { count: 0 }, update_ipc_ms: { count: 1 } });
  });

  it("holds a bounded number of times while no frame draws (a held screen)", () => {
    const l = new ScreenLatency();
    for (let i = 0; i < 5000; i++) l.onUpdate(T0 + i, T0 + i, [T0 + i], []);
    l.onFrame(T0 + 5000);
    const r = l.stats().reading_to_screen_ms;
    expect(r.count).toBe(4096);
    expect(r.max).toBe(4096); // the oldest 904 were dropped
  });

  it("counts only the codes a numeric box shows", () => {
    expect([...SHOWN_CODES].sort()).toEqual(
      [MDC.HR, MDC.SPO2, MDC.RR, MDC.TEMP, MDC.NIBP_SYS, MDC.NIBP_DIA, MDC.NIBP_MEAN].sort(),
    );
    expect(SHOWN_CODES.has(MDC.PR_OXIMETER)).toBe(false);
  });
});

describe("ScreenLatency over a long shift (issue 16 soak)", () => {
  it("holds only the alarms active now and what waits for a frame, however many alarms came and went", () => {
    const l = new ScreenLatency();
    // 16 beds, each with a new alarm id every update for 10 000 updates (ids are never reused),
    // a frame after every 4 updates: what it holds stays at today's alarms.
    for (let i = 0; i < 10_000; i++) {
      const states = Array.from({ length: 16 }, (_, b) => bed(`bed-${b + 1}`, alarm(i * 16 + b, T0 + i)));
      l.onUpdate(T0 + i + 5, T0 + i, [T0 + i], states);
      if (i % 4 === 3) l.onFrame(T0 + i + 10);
    }
    expect(l.sizes().latencyKnownAlarms).toBe(16);
    expect(l.sizes().latencyPending).toBe(0);
  });

  it("keeps a bounded backlog when no frame is drawn (hidden window)", () => {
    const l = new ScreenLatency();
    for (let i = 0; i < 20_000; i++) l.onUpdate(T0 + i, T0 + i, [T0 + i, T0 + i], [bed("bed-1", alarm(i, T0 + i))]);
    expect(l.sizes().latencyPending).toBeLessThanOrEqual(2 * 4096);
    expect(l.sizes().latencyKnownAlarms).toBe(1);
  });
});
