// Alarm sound with the Web Audio API. Which priority sounds is decided in alarms.ts
// (pure); what each priority sounds like is the pure schedule below (`burst`,
// `HARMONICS`), checked against IEC 60601-1-8 in audio.test.ts; the AlarmAudio
// class only plays that schedule. Browsers/webviews start an AudioContext
// "suspended" until a user gesture: `running` says whether sound can actually be
// made, and the screen shows a "Click to enable alarm sound" banner until it can.

import type { Priority } from "./contract";

// ------------------------------------------------------------------ the schedule (pure)

/** One pulse of a burst, in ms from the burst's start. */
export interface Pulse {
  startMs: number;
  /** Pulse duration t_d: onset to the end of the fall. */
  durationMs: number;
  /** Linear rise from silence to full level, and fall back to silence, inside t_d. */
  riseMs: number;
  fallMs: number;
  /** Relative level (1 = full); every pulse of a burst has the same level. */
  level: number;
}

export interface Burst {
  priority: Priority;
  /** Fundamental (pulse) frequency f0. */
  frequencyHz: number;
  pulses: Pulse[];
  /** End of the last pulse, from the burst's start. */
  burstMs: number;
  /** Inter-burst interval t_b: end of the last pulse to the start of the next burst. */
  interBurstMs: number;
  /** A burst starts every periodMs (burstMs + interBurstMs). */
  periodMs: number;
}

/**
 * Timing per priority: IEC 60601-1-8:2006+A1:2012, 6.3.3, the burst and pulse
 * tables (Tables 3 and 4 of that edition; /work/shared/reference/alarms.md records
 * both as "Table 4"). The high-priority rhythm within "3 + 2, pause, 3 + 2" (3rd→4th
 * 2·t_s + t_d, 5th→6th 0.35–1.30 s) is the standard's burst table as commonly cited;
 * the project reference gives only the grouping. Values sit inside the ranges
 * whichever way t_d and t_s are measured (whole pulse, or between the half-level
 * points of the 15 % ramps):
 * - high: 10 pulses "3 + 2, pause, 3 + 2", t_d 150 ms, t_s 90 ms (50–125), the
 *   3rd→4th and 8th→9th spacing 2·t_s + t_d (the missing pulse that makes the
 *   rhythm), 5th→6th 600 ms (0.35–1.30 s), t_b 3 s (2.5–15 s);
 * - medium: 3 pulses, t_d 180 ms, t_s 170 ms (125–250), t_b 7 s (2.5–30 s);
 * - low: 2 pulses, t_d 200 ms, t_s 170 ms (125–250), t_b 16 s (> 15 s).
 * Rise and fall are 15 % of t_d (10–20 %). f0 660 / 550 / 440 Hz (150–1000 Hz),
 * each low enough that at least 5 harmonics fall in 300–4000 Hz.
 */
const TIMING: Record<Priority, { f0: number; td: number; ts: number; tb: number; count: number }> = {
  high: { f0: 660, td: 150, ts: 90, tb: 3000, count: 10 },
  medium: { f0: 550, td: 180, ts: 170, tb: 7000, count: 3 },
  low: { f0: 440, td: 200, ts: 170, tb: 16000, count: 2 },
};

/** Rise and fall time as a fraction of t_d. */
export const RAMP_FRACTION = 0.15;
/** High priority: the pause between the two halves (5th → 6th pulse). */
export const HIGH_HALF_PAUSE_MS = 600;

/** Spacing (end of pulse i → start of pulse i+1, 0-based i) within a burst. */
function spacingAfter(p: Priority, i: number, ts: number, td: number): number {
  if (p !== "high") return ts;
  if (i === 2 || i === 7) return 2 * ts + td; // 3rd→4th, 8th→9th
  if (i === 4) return HIGH_HALF_PAUSE_MS; // 5th→6th
  return ts;
}

/** The burst a priority plays: pure, so its every interval can be tested. */
export function burst(p: Priority): Burst {
  const t = TIMING[p];
  const ramp = Math.round(t.td * RAMP_FRACTION);
  const pulses: Pulse[] = [];
  let start = 0;
  for (let i = 0; i < t.count; i++) {
    pulses.push({ startMs: start, durationMs: t.td, riseMs: ramp, fallMs: ramp, level: 1 });
    start += t.td + spacingAfter(p, i, t.ts, t.td);
  }
  const last = pulses[pulses.length - 1];
  const burstMs = last.startMs + last.durationMs;
  return { priority: p, frequencyHz: t.f0, pulses, burstMs, interBurstMs: t.tb, periodMs: burstMs + t.tb };
}

/**
 * The pulse's waveform: harmonic n (1 = fundamental) has relative amplitude
 * HARMONICS[n - 1]. A gentle roll-off (0 to -14 dB over 8 harmonics) keeps every
 * harmonic within 15 dB of the fundamental, as IEC 60601-1-8 Table 4 asks of at
 * least 4 harmonics in 300–4000 Hz; a triangle (-19 dB at the 3rd) or a sine does not.
 */
export const HARMONICS: readonly number[] = [1, 0.8, 0.6, 0.5, 0.4, 0.32, 0.25, 0.2];

/** Fourier coefficients for createPeriodicWave (sine terms; index 0 is DC). */
export function waveCoefficients(harmonics: readonly number[] = HARMONICS): { real: Float32Array; imag: Float32Array } {
  const real = new Float32Array(harmonics.length + 1);
  const imag = new Float32Array(harmonics.length + 1);
  harmonics.forEach((a, i) => (imag[i + 1] = a));
  return { real, imag };
}

/** Level of each harmonic relative to the fundamental, in dB. */
export function harmonicLevelsDb(harmonics: readonly number[] = HARMONICS): number[] {
  return harmonics.map((a) => 20 * Math.log10(a / harmonics[0]));
}

// ------------------------------------------------------------------ playback

type Ctx = AudioContext;

/** Bursts are scheduled this far ahead (s), so a throttled frame loop does not delay them. */
const LOOKAHEAD_S = 1.5;

export class AlarmAudio {
  private ctx: Ctx | null = null;
  private failed = false;
  private playing: Priority | null = null;
  /** ctx.currentTime at which the next burst starts; 0 = start at once. */
  private nextBurstAt = 0;
  private nodes: { osc: OscillatorNode; end: number }[] = [];
  private master: GainNode | null = null;
  private wave: PeriodicWave | null = null;
  private readonly listeners: (() => void)[] = [];

  /** Creates the context (may start suspended). Safe to call repeatedly. */
  private ensure(): Ctx | null {
    if (this.ctx || this.failed) return this.ctx;
    try {
      const C: typeof AudioContext | undefined =
        window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
      if (!C) {
        this.failed = true;
        return null;
      }
      this.ctx = new C();
      this.master = this.ctx.createGain();
      this.master.gain.value = 0.6;
      this.master.connect(this.ctx.destination);
      const { real, imag } = waveCoefficients();
      this.wave = this.ctx.createPeriodicWave(real, imag);
      this.ctx.addEventListener("statechange", () => this.changed());
    } catch {
      this.failed = true;
      this.ctx = null;
    }
    return this.ctx;
  }

  private changed(): void {
    for (const f of this.listeners) f();
  }

  /** Called whenever the context's state changes (suspended, running, closed). */
  onChange(f: () => void): void {
    this.listeners.push(f);
  }

  /** Call from any user gesture (click, key): resumes a suspended context. Settles when the attempt has. */
  unlock(): Promise<void> {
    const ctx = this.ensure();
    if (!ctx || ctx.state === "running") return Promise.resolve();
    return ctx.resume().catch(() => {});
  }

  /** Sound can actually be produced now. */
  get running(): boolean {
    return this.ensure()?.state === "running";
  }

  /** The pattern currently requested (even if blocked). */
  get current(): Priority | null {
    return this.playing;
  }

  /** Request a pattern (null = silence). Call every frame; cheap when nothing changed. */
  set(p: Priority | null): void {
    const ctx = this.ensure();
    if (p !== this.playing) {
      this.stopNodes();
      this.playing = p;
      this.nextBurstAt = 0; // start the new pattern at once
    }
    if (!ctx || ctx.state !== "running" || p === null) return;
    const now = ctx.currentTime;
    if (this.nextBurstAt === 0 || now >= this.nextBurstAt - LOOKAHEAD_S) {
      const b = burst(p);
      const start = Math.max(now + 0.02, this.nextBurstAt);
      this.play(ctx, b, start);
      this.nextBurstAt = start + b.periodMs / 1000;
    }
  }

  private play(ctx: Ctx, b: Burst, start: number): void {
    this.nodes = this.nodes.filter((n) => n.end > ctx.currentTime);
    for (const p of b.pulses) {
      const t = start + p.startMs / 1000;
      const len = p.durationMs / 1000;
      const osc = ctx.createOscillator();
      if (this.wave) osc.setPeriodicWave(this.wave);
      else osc.type = "square";
      osc.frequency.value = b.frequencyHz;
      const g = ctx.createGain();
      g.gain.setValueAtTime(0, t);
      g.gain.linearRampToValueAtTime(p.level, t + p.riseMs / 1000);
      g.gain.setValueAtTime(p.level, t + len - p.fallMs / 1000);
      g.gain.linearRampToValueAtTime(0, t + len);
      osc.connect(g);
      g.connect(this.master ?? ctx.destination);
      osc.start(t);
      osc.stop(t + len + 0.01);
      this.nodes.push({ osc, end: t + len + 0.01 });
    }
  }

  private stopNodes(): void {
    for (const n of this.nodes) {
      try {
        // Also cancels pulses scheduled ahead that have not started yet.
        n.osc.stop();
      } catch {
        // already stopped
      }
    }
    this.nodes = [];
  }
}

// ------------------------------------------------------------------ can the workstation sound?

/**
 * The webview can sound an alarm: its AudioContext runs and the window is visible
 * (a hidden or minimised window may be throttled or muted, and nobody sees its banner).
 */
export function soundAvailable(contextRunning: boolean, visibility: DocumentVisibilityState | string): boolean {
  return contextRunning && visibility === "visible";
}

/**
 * Tells the core whether alarm sound is available, on change only; a report that
 * failed (core busy, locked) is sent again after `retryMs` with the latest value.
 * The core shows "ALARM SOUND UNAVAILABLE" at every bed while it is not.
 */
export class AudioStatusReporter {
  private sent: boolean | null = null;
  private latest: boolean | null = null;
  private inFlight = false;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (available: boolean) => Promise<unknown>,
    private readonly retryMs = 2000,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** The value the core has confirmed, or null before any. */
  get confirmed(): boolean | null {
    return this.sent;
  }

  report(available: boolean): void {
    this.latest = available;
    this.flush();
  }

  private flush(): void {
    if (this.inFlight || this.retry !== null || this.latest === null || this.latest === this.sent) return;
    const v = this.latest;
    this.inFlight = true;
    this.send(v).then(
      () => {
        this.inFlight = false;
        this.sent = v;
        this.flush();
      },
      (e: unknown) => {
        this.inFlight = false;
        this.onError(e);
        this.retry = setTimeout(() => {
          this.retry = null;
          this.flush();
        }, this.retryMs);
      },
    );
  }
}
