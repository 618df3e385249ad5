// The trend screen's data rules (issue 15), without the chart library so they
// can be tested on their own: ranges, which parameters, aligning several
// series on one time axis without joining their gaps, panning, mark colours.

import type { TrendMark, TrendView } from "./contract";
import { MDC } from "./codes";
import { formatHm } from "./format";

export interface TrendRange {
  id: string;
  label: string;
  ms: number;
}

const HOUR = 3_600_000;

export const TREND_RANGES: TrendRange[] = [
  { id: "1h", label: "1 h", ms: HOUR },
  { id: "8h", label: "8 h", ms: 8 * HOUR },
  { id: "24h", label: "24 h", ms: 24 * HOUR },
  { id: "7d", label: "7 days", ms: 7 * 24 * HOUR },
];

/** The parameters offered, in the order a chart legend lists them. */
export const TREND_CODES: number[] = [MDC.HR, MDC.SPO2, MDC.RR, MDC.TEMP, MDC.NIBP_SYS, MDC.NIBP_DIA, MDC.PR_OXIMETER];

/** Ranges the core answers from raw samples (trends.rs RAW_SPAN): zooming below it shows every value. */
export const RAW_SPAN_MS = 2 * HOUR;

/** The shortest range a zoom may ask for (one minute). */
export const MIN_SPAN_MS = 60_000;

/**
 * Several series on one time axis, as the chart takes them: `[t, s1, s2, …]`
 * over the union of all times. A series has `undefined` at the other series'
 * times (the line passes over them) and `null` where the core marked a gap
 * (the line breaks there): a device that was off is never joined across.
 */
export function alignSeries(view: Pick<TrendView, "series">): (number | null | undefined)[][] {
  const times = new Set<number>();
  for (const s of view.series) for (const t of s.t) times.add(t);
  const t = [...times].sort((a, b) => a - b);
  const index = new Map(t.map((x, i) => [x, i]));
  const out: (number | null | undefined)[][] = [t];
  for (const s of view.series) {
    const col: (number | null | undefined)[] = new Array(t.length).fill(undefined);
    s.t.forEach((x, i) => {
      col[index.get(x)!] = s.value[i];
    });
    out.push(col);
  }
  return out;
}

/** How many separate line pieces a series is drawn in (gaps + 1; 0 when it has no value). */
export function lineRuns(values: readonly (number | null)[]): number {
  let runs = 0;
  let inRun = false;
  for (const v of values) {
    if (v === null) inRun = false;
    else if (!inRun) {
      runs++;
      inRun = true;
    }
  }
  return runs;
}

/**
 * The range shifted by half its span, earlier (-1) or later (+1); never past
 * `now` (a stay's discharge), never before `earliest` (a stay's admission).
 */
export function panRange(from: number, to: number, dir: -1 | 1, now: number, earliest = -Infinity): [number, number] {
  const span = to - from;
  let f = from + (dir * span) / 2;
  let t = f + span;
  if (t > now) {
    t = now;
    f = now - span;
  }
  if (dir < 0 && f < earliest) {
    // Already showing the stay's start: stay put.
    f = Math.min(from, earliest);
    t = f + span;
  }
  return [f, t];
}

/** A zoom selection as a range: at least MIN_SPAN_MS, centred on the selection. */
export function zoomRange(a: number, b: number): [number, number] {
  let [f, t] = a < b ? [a, b] : [b, a];
  if (t - f < MIN_SPAN_MS) {
    const mid = (f + t) / 2;
    f = mid - MIN_SPAN_MS / 2;
    t = mid + MIN_SPAN_MS / 2;
  }
  return [f, t];
}

/** The status line under the chart: span and whether every sample is shown. */
export function trendStatus(view: Pick<TrendView, "series">, from: number, to: number): string {
  const hours = (to - from) / HOUR;
  const span = hours >= 48 ? `${Math.round(hours / 24)} days` : hours >= 1 ? `${+hours.toFixed(1)} h` : `${Math.round(hours * 60)} min`;
  const raw = view.series.length > 0 && view.series.every((s) => s.raw);
  return `${span} \u00b7 ${raw ? "every sample" : "mean per interval, with its range (min\u2013max)"}`;
}

/** A nurse's NEWS2 entry: green, as on the printed report's charts. */
export const NURSE_ENTRY_COLOR = "#7ee787";

/** A device change: neutral (no clinical meaning of its own), lighter than a technical event's grey. */
export const DEVICE_CHANGE_COLOR = "#d0d7de";

/** A mark's colour: alarms by priority (the alarm colours), a nurse's NEWS2 entry green, NEWS2 changes and technical events muted, a device change neutral. */
export function markColor(m: Pick<TrendMark, "kind" | "priority">): string {
  if (m.kind === "device_change") return DEVICE_CHANGE_COLOR;
  if (m.kind === "alarm" || m.kind === "technical") {
    if (m.priority === "high") return "#ff4d4f";
    if (m.priority === "medium") return "#f5c518";
    if (m.priority === "low") return "#4fc3f7";
  }
  if (m.kind === "news2_entry") return NURSE_ENTRY_COLOR;
  return m.kind === "news2" ? "#b39ddb" : "#8b949e";
}

/**
 * Where a mark is drawn on the chart's height: an alarm crosses the whole
 * chart; a NEWS2 change is a tick at the top (the score's own lane); a nurse's
 * entry a tick at the bottom with a small triangle (an observation charted by
 * hand), so the three never read as one another even where colours are hard
 * to tell apart.
 */
export function markSpan(kind: string): "full" | "top" | "bottom" {
  if (kind === "news2") return "top";
  if (kind === "news2_entry") return "bottom";
  return "full";
}

/**
 * A mark's line pattern (canvas `setLineDash`, in CSS px): a device change is
 * dashed, so a step in the line that coincides with another probe or cuff is
 * not read as an alarm or as the patient; every other mark is solid.
 */
export function markDash(kind: string): number[] {
  return kind === "device_change" ? [6, 4] : [];
}

/** The few words drawn beside a mark on the chart itself (the list says the rest), or null. */
export function markCaption(kind: string): string | null {
  return kind === "device_change" ? "device changed" : null;
}

/** The event list's word for a mark's kind. */
export function markKindText(kind: string): string {
  switch (kind) {
    case "alarm":
      return "Alarm";
    case "technical":
      return "Technical";
    case "news2":
      return "NEWS2";
    case "news2_entry":
      return "Nurse entry";
    case "device_change":
      return "Device changed";
    default:
      return kind;
  }
}

/** Line colour per parameter (the numerics' colours). */
export function seriesColor(code: number): string {
  switch (code) {
    case MDC.HR:
      return "#3fb950";
    case MDC.SPO2:
      return "#4fc3f7";
    case MDC.RR:
      return "#f5c518";
    case MDC.TEMP:
      return "#ff9f43";
    case MDC.NIBP_SYS:
    case MDC.NIBP_DIA:
      return "#ff6b81";
    default:
      return "#c9d1d9";
  }
}

/**
 * Time-axis tick labels, 24 h local time: "HH:MM"; over ranges longer than a
 * day a tick at midnight (or the first tick) also says the date under it,
 * "HH:MM\nDD/MM".
 */
export function timeTicks(splits: number[], spanMs: number): string[] {
  return splits.map((v, i) => {
    const d = new Date(v);
    const hm = formatHm(v);
    const dated = spanMs > 24 * HOUR && (i === 0 || (d.getHours() === 0 && d.getMinutes() === 0));
    // The date on a second line: a label no wider than "HH:MM", so ticks 8 h apart never overlap.
    return dated ? `${hm}\n${String(d.getDate()).padStart(2, "0")}/${String(d.getMonth() + 1).padStart(2, "0")}` : hm;
  });
}

/** A y scale's range: the data's, widened to show the limits drawn as bands. */
export function rangeWithLimits(min: number | null, max: number | null, lo: number | null, hi: number | null): [number, number] | null {
  const vals = [min, max, lo, hi].filter((v): v is number => v !== null && Number.isFinite(v));
  if (vals.length === 0) return null;
  const a = Math.min(...vals);
  const b = Math.max(...vals);
  const pad = Math.max((b - a) * 0.05, 1);
  return [a - pad, b + pad];
}

/** A selection's end snaps to the range's end when dragged to within `snapPx` of the edge ("until now"). */
export function snapSelection(left: number, right: number, width: number, from: number, to: number, snapPx = 6): [number, number] {
  const at = (px: number) => from + ((to - from) * px) / width;
  return [left <= snapPx ? from : at(left), right >= width - snapPx ? to : at(right)];
}
