// Screen latency, for support and the webview benchmark (tests/e2e/bench-alarms.mjs).
// Times only, never values (no PHI): a reading's measurement time and an alarm's
// start time, each against the wall-clock end of the frame that drew it.
// Pure: the caller passes wall times (performance.timeOrigin + performance.now()).
//
// Both ends are wall clocks only at --speed 1 (the core's clock is then the system
// clock); under --speed N the figures mean nothing.

import type { BedAlarmState } from "./contract";
import { MDC } from "./codes";

/** The codes a numeric box shows (HR, SpO2, RR, NIBP, temperature). */
export const SHOWN_CODES: ReadonlySet<number> = new Set<number>([
  MDC.HR,
  MDC.SPO2,
  MDC.RR,
  MDC.TEMP,
  MDC.NIBP_SYS,
  MDC.NIBP_DIA,
  MDC.NIBP_MEAN,
]);

/** Nearest-rank percentile (p in 0..100) of unsorted values; null when empty. */
export function percentile(list: ArrayLike<number>, p: number): number | null {
  if (list.length === 0) return null;
  const sorted = Array.from(list).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface LatencyStats {
  /** Samples taken since start (or the last reset). */
  count: number;
  /** Of those, the most recent ones the percentiles are over (bounded). */
  samples: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** The last `capacity` samples in a fixed ring (O(1) to add, no allocation). */
export class LatencySamples {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;
  private total = 0;

  constructor(readonly capacity: number) {
    this.ring = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
    this.total++;
  }

  stats(): LatencyStats {
    const window = this.ring.subarray(0, this.filled);
    return {
      count: this.total,
      samples: this.filled,
      p50: percentile(window, 50),
      p99: percentile(window, 99),
      max: percentile(window, 100),
    };
  }

  reset(): void {
    this.next = 0;
    this.filled = 0;
    this.total = 0;
  }
}

/** At most this many times wait for a frame (a held screen drops the oldest). */
const MAX_PENDING = 4096;

function pushBounded(list: number[], v: number): void {
  list.push(v);
  if (list.length > MAX_PENDING) list.splice(0, list.length - MAX_PENDING);
}

export interface ScreenLatencyStats {
  reading_to_screen_ms: LatencyStats;
  alarm_to_screen_ms: LatencyStats;
  /** Core sends an update (its now_ms) -> the page receives it. */
  update_ipc_ms: LatencyStats;
}

/**
 * reading -> numeric on screen: each reading that became a bed's latest value of
 * a shown code, from its `received_ms` to the end of the next frame.
 * alarm -> on screen: each alarm id the page had not had before, from its
 * `since` (set by the core at the reading, or the tick, that started it) to the
 * end of the first frame after it arrived. Alarms already present in the
 * snapshot are not timed (they started before this page); an escalation keeps its
 * id and is not timed again.
 */
export class ScreenLatency {
  readonly reading: LatencySamples;
  readonly alarm: LatencySamples;
  readonly ipc: LatencySamples;
  private pendingReadings: number[] = [];
  private pendingAlarms: number[] = [];
  /** bed -> the alarm ids it had in the last state received. Ids are never reused. */
  private readonly known = new Map<string, Set<number>>();

  constructor(readingCapacity = 8192, alarmCapacity = 2048, ipcCapacity = 1024) {
    this.reading = new LatencySamples(readingCapacity);
    this.alarm = new LatencySamples(alarmCapacity);
    this.ipc = new LatencySamples(ipcCapacity);
  }

  /** Alarm states from a snapshot (or an update that arrived before it): known, not timed. */
  knowAlarms(states: readonly BedAlarmState[]): void {
    for (const s of states) this.known.set(s.bed, new Set(s.active.map((a) => a.id)));
  }

  /**
   * An update was applied at wall time `wallMs`: `readingTimes` are the
   * `received_ms` of the readings now shown; new alarm ids start waiting for a frame.
   */
  onUpdate(wallMs: number, coreNowMs: number, readingTimes: Iterable<number>, alarms: readonly BedAlarmState[]): void {
    if (coreNowMs > 0) this.ipc.add(wallMs - coreNowMs);
    for (const t of readingTimes) pushBounded(this.pendingReadings, t);
    for (const s of alarms) {
      const before = this.known.get(s.bed);
      const now = new Set<number>();
      for (const a of s.active) {
        now.add(a.id);
        if (before?.has(a.id)) continue;
        const since = Date.parse(a.since);
        if (Number.isFinite(since)) pushBounded(this.pendingAlarms, since);
      }
      this.known.set(s.bed, now);
    }
  }

  /** A frame drew everything applied so far; it ended at wall time `endMs`. */
  onFrame(endMs: number): void {
    for (const t of this.pendingReadings) this.reading.add(endMs - t);
    for (const t of this.pendingAlarms) this.alarm.add(endMs - t);
    this.pendingReadings.length = 0;
    this.pendingAlarms.length = 0;
  }

  stats(): ScreenLatencyStats {
    return {
      reading_to_screen_ms: this.reading.stats(),
      alarm_to_screen_ms: this.alarm.stats(),
      update_ipc_ms: this.ipc.stats(),
    };
  }

  /** How many entries it holds (counts only), for the soak's bounded-memory check. */
  sizes(): { latencyPending: number; latencyKnownAlarms: number } {
    let known = 0;
    for (const s of this.known.values()) known += s.size;
    return { latencyPending: this.pendingReadings.length + this.pendingAlarms.length, latencyKnownAlarms: known };
  }

  /** Forget the samples (not which alarms are known): a benchmark starts after warm-up. */
  reset(): void {
    this.reading.reset();
    this.alarm.reset();
    this.ipc.reset();
  }
}
