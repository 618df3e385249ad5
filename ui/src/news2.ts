// Pure NEWS2 presentation: badge text, risk wording, sub-score text and the trend
// chart geometry. No DOM.

import type { News2, News2Param, News2Risk, SubScore } from "./contract";
import { formatAge } from "./format";

export const NEWS2_PARAMS: readonly News2Param[] = [
  "respiration_rate",
  "spo2",
  "air_or_oxygen",
  "systolic",
  "pulse",
  "consciousness",
  "temperature",
];

export const NEWS2_PARAM_LABEL: Record<News2Param, string> = {
  respiration_rate: "Respiration rate",
  spo2: "SpO2",
  air_or_oxygen: "Air or oxygen",
  systolic: "Systolic BP",
  pulse: "Pulse",
  consciousness: "Consciousness (ACVPU)",
  temperature: "Temperature",
};

/** Upper-case risk for the badge: "LOW", "LOW-MEDIUM", "MEDIUM", "HIGH". */
export function riskText(r: News2Risk): string {
  switch (r) {
    case "low":
      return "LOW";
    case "low_medium":
      return "LOW-MEDIUM";
    case "medium":
      return "MEDIUM";
    case "high":
      return "HIGH";
  }
}

/** CSS class suffix for the risk colour. */
export function riskClass(r: News2Risk): string {
  return r.replace("_", "-");
}

/** At least one parameter was scored: otherwise the "total" 0 means nothing. */
export function hasScore(s: News2 | undefined): s is News2 {
  return !!s && s.parameters.some((p) => p.score.status === "scored");
}

/** "NEWS2 5 MEDIUM", or "NEWS2 --" before any score or when nothing could be scored. */
export function badgeText(s: News2 | undefined): string {
  if (!hasScore(s)) return "NEWS2 --";
  return `NEWS2 ${s.total} ${riskText(s.risk)}`;
}

/** The recommended response, unless nothing could be scored. */
export function responseText(s: News2 | undefined): string {
  if (!s) return "No NEWS2 score yet";
  if (!hasScore(s)) return "Not enough observations to score";
  return s.response;
}

/** "" when complete; otherwise "2 missing, 1 stale": the total is only a lower bound. */
export function incompleteText(s: News2 | undefined): string {
  if (!s || s.complete) return "";
  const parts: string[] = [];
  if (s.missing_parameters.length) parts.push(`${s.missing_parameters.length} missing`);
  if (s.stale_parameters.length) parts.push(`${s.stale_parameters.length} stale`);
  return parts.join(", ") || "incomplete";
}

/** A sub-score in words: "2", "missing", "stale (12 min) \u2014 was 2". */
export function subScoreText(s: SubScore): string {
  switch (s.status) {
    case "scored":
      return String(s.points);
    case "missing":
      return "missing";
    case "stale":
      return `stale (${formatAge(s.age_s * 1000)}) \u2014 was ${s.last_points}`;
  }
}

export function subScoreOf(s: News2, p: News2Param): SubScore {
  return s.parameters.find((x) => x.parameter === p)?.score ?? { status: "missing" };
}

// ------------------------------------------------------------------ trend chart

export interface TrendPoint {
  x: number;
  y: number;
  total: number;
  complete: boolean;
}

export interface TrendGeometry {
  points: TrendPoint[];
  /** y of score 5 and 7 (band edges). */
  y5: number;
  y7: number;
  yMax: number;
  /** first/last time in the chart (epoch ms), null when empty. */
  fromMs: number | null;
  toMs: number | null;
}

/**
 * Maps a score history (oldest first) onto a width \u00d7 height box: x by time, y by
 * total (0 at the bottom, top at max(10, highest total)). Scores with unparsable times
 * are dropped; one score is drawn at the right edge.
 */
export function trendGeometry(history: readonly News2[], width: number, height: number, pad = 4): TrendGeometry {
  const pts = history
    .map((s) => ({ t: Date.parse(s.at), s }))
    .filter((p) => Number.isFinite(p.t))
    .sort((a, b) => a.t - b.t);
  const maxTotal = Math.max(10, ...pts.map((p) => p.s.total));
  const yOf = (v: number) => height - pad - (v / maxTotal) * (height - 2 * pad);
  if (pts.length === 0) return { points: [], y5: yOf(5), y7: yOf(7), yMax: maxTotal, fromMs: null, toMs: null };
  const t0 = pts[0].t;
  const t1 = pts[pts.length - 1].t;
  const span = t1 - t0;
  const xOf = (t: number) => (span <= 0 ? width - pad : pad + ((t - t0) / span) * (width - 2 * pad));
  return {
    points: pts.map((p) => ({ x: xOf(p.t), y: yOf(p.s.total), total: p.s.total, complete: p.s.complete })),
    y5: yOf(5),
    y7: yOf(7),
    yMax: maxTotal,
    fromMs: t0,
    toMs: t1,
  };
}

/** Appends a score to a history unless one at the same time is already there; keeps at most `max`. */
export function appendHistory(history: News2[], s: News2, max = 500): News2[] {
  if (history.length && history[history.length - 1].at === s.at) return history;
  const next = [...history, s];
  return next.length > max ? next.slice(next.length - max) : next;
}
