// Pure NEWS2 presentation: badge text, risk wording, sub-score text and the trend
// chart geometry. No DOM.
//
// An incomplete score (a parameter missing or stale) is a lower bound, never a
// final score: "NEWS2 \u2265 3", no risk colour or risk word, and the response
// says what to obtain. Read as final, "NEWS2 0 LOW \u2014 routine monitoring" with 4
// of 7 parameters missing would reassure about a patient nobody has scored.

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

/** Some parameters were scored but not all: the total is only a lower bound. */
export function isIncomplete(s: News2 | undefined): s is News2 {
  return hasScore(s) && !s.complete;
}

/**
 * "NEWS2 5 MEDIUM" when complete; "NEWS2 \u2265 3" (no risk word) when incomplete;
 * "NEWS2 --" before any score or when nothing could be scored.
 */
export function badgeText(s: News2 | undefined): string {
  if (!hasScore(s)) return "NEWS2 --";
  if (!s.complete) return `NEWS2 \u2265 ${s.total}`;
  return `NEWS2 ${s.total} ${riskText(s.risk)}`;
}

/** The badge's data-risk (its colour): the risk class when complete, "incomplete" (neutral) when not, null with no score. */
export function badgeRisk(s: News2 | undefined): string | null {
  if (!hasScore(s)) return null;
  return s.complete ? riskClass(s.risk) : "incomplete";
}

/** "Consciousness (ACVPU), Air or oxygen, Systolic BP (stale)": what to obtain for a complete score. */
export function toObtainText(s: News2): string {
  const names = [
    ...s.missing_parameters.map((p) => NEWS2_PARAM_LABEL[p]),
    ...s.stale_parameters.filter((p) => !s.missing_parameters.includes(p)).map((p) => `${NEWS2_PARAM_LABEL[p]} (stale)`),
  ];
  return names.length ? names.join(", ") : "the missing observations";
}

/**
 * The recommended response when complete. Incomplete: "incomplete \u2014 obtain
 * <parameters>", plus, only when the parameters scored so far already reach a
 * band above "low", "Already at least: <that band's response>" (a lower bound of
 * 7 must not hide the emergency response; a lower bound of 0 says nothing).
 */
export function responseText(s: News2 | undefined): string {
  if (!s) return "No NEWS2 score yet";
  if (!hasScore(s)) return "Not enough observations to score";
  if (s.complete) return s.response;
  const obtain = `incomplete \u2014 obtain ${toObtainText(s)}`;
  return s.risk === "low" ? obtain : `${obtain}. Already at least: ${s.response}`;
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

export interface TrendMark {
  cx: number;
  cy: number;
  /** Incomplete score (a lower bound): drawn hollow. */
  hollow: boolean;
  /** The latest score: drawn larger. */
  last: boolean;
}

/** One marker per score: filled when complete, hollow when incomplete; the latest larger. */
export function trendMarks(g: TrendGeometry): TrendMark[] {
  return g.points.map((p, i) => ({ cx: p.x, cy: p.y, hollow: !p.complete, last: i === g.points.length - 1 }));
}

/** Appends a score to a history unless one at the same time is already there; keeps at most `max`. */
export function appendHistory(history: News2[], s: News2, max = 500): News2[] {
  if (history.length && history[history.length - 1].at === s.at) return history;
  const next = [...history, s];
  return next.length > max ? next.slice(next.length - max) : next;
}
