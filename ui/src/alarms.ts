// Pure alarm presentation logic (IEC 60601-1-8): ordering, priority text and
// shape, what "Acknowledge all" covers, the audio-paused countdown, which numeric
// an alarm belongs to, limit text, and which priority sounds (what each priority
// sounds like is audio.ts). No DOM, no clocks: callers pass "now".

import type {
  ActiveAlarm,
  AlarmKind,
  AlarmLimit,
  AlarmParameter,
  AlarmRecord,
  BedAlarmState,
  ParameterLimit,
  Priority,
  TechnicalKind,
} from "./contract";
import { MDC } from "./codes";
import { formatHm } from "./format";

export const PRIORITY_RANK: Record<Priority, number> = { low: 1, medium: 2, high: 3 };

export function higher(a: Priority | null, b: Priority | null): Priority | null {
  if (a === null) return b;
  if (b === null) return a;
  return PRIORITY_RANK[a] >= PRIORITY_RANK[b] ? a : b;
}

/**
 * Display order: highest priority first; within a priority, alarms still needing a
 * response (not acknowledged) before acknowledged ones; then oldest first, then id.
 */
export function sortAlarms(alarms: readonly ActiveAlarm[]): ActiveAlarm[] {
  return alarms.slice().sort((a, b) => {
    const p = PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority];
    if (p !== 0) return p;
    const ack = Number(a.acknowledged) - Number(b.acknowledged);
    if (ack !== 0) return ack;
    const t = Date.parse(a.since) - Date.parse(b.since);
    if (t !== 0 && Number.isFinite(t)) return t;
    return a.id - b.id;
  });
}

/** Priority in text: the count of "!" is the shape cue that survives greyscale. */
export function priorityText(p: Priority): string {
  switch (p) {
    case "high":
      return "!!! HIGH";
    case "medium":
      return "!! MED";
    case "low":
      return "! LOW";
  }
}

/** A shape per priority (triangle / diamond / circle), never colour alone. */
export function priorityShape(p: Priority): string {
  switch (p) {
    case "high":
      return "\u25B2"; // ▲
    case "medium":
      return "\u25C6"; // ◆
    case "low":
      return "\u25CF"; // ●
  }
}

const TECHNICAL_TEXT: Record<TechnicalKind, string> = {
  sensor_off: "sensor off",
  no_data: "no data",
  disconnected: "disconnected",
  low_battery: "low battery",
  store_failure: "recording interrupted",
  delivery_failure: "delivery failure",
  no_valid_measurement: "no valid measurement",
  audio_unavailable: "ALARM SOUND UNAVAILABLE",
  alarm_log_failure: "alarm log failure",
  audit_failure: "audit trail failure",
  settings_not_restored: "settings not restored",
  recording_unavailable: "recording unavailable (store moved aside)",
  low_disk: "low disk space",
  identity_changed: "DEVICE IDENTITY CHANGED: data refused, assign again",
  not_bonded: "link not bonded: data refused",
};

export function isTechnical(a: ActiveAlarm): boolean {
  return a.kind.type === "technical";
}

/** A short title without values, for when the message is empty. */
export function alarmTitle(kind: AlarmKind): string {
  switch (kind.type) {
    case "physiological":
      return `${PARAMETER_LABEL[kind.parameter]} ${kind.direction}`;
    case "technical":
      return `${kind.device} ${TECHNICAL_TEXT[kind.kind] ?? kind.kind}`;
    case "news2":
      return "NEWS2";
  }
}

/**
 * Short text for a tile: NEWS2 alarms as "NEWS2 5" (the full response text is in the
 * single-bed view), or "NEWS2 \u2265 5" when the value is the bed's current incomplete
 * score (a lower bound: `incompleteTotal`, null while complete). An alarm raised by a
 * higher score keeps that score (the engine never lowers it on incomplete data), shown
 * without "\u2265": it is the measured reason, not a bound. The others as their message
 * (short already: "SpO2 low 85 % < 90 %").
 */
export function shortAlarmText(a: ActiveAlarm, incompleteTotal: number | null = null): string {
  if (a.kind.type === "news2") {
    if (a.value === null) return "NEWS2";
    const bound = incompleteTotal !== null && a.value <= incompleteTotal;
    return `NEWS2 ${bound ? "\u2265 " : ""}${a.value}`;
  }
  return a.message || alarmTitle(a.kind);
}

/**
 * Status of one alarm in words: "LATCHED — acknowledge", "✓ ACKNOWLEDGED" ("✓ ACK" compact),
 * or "", followed by its recurrence when it has one (see `recurrenceText`).
 */
export function alarmStatusText(a: ActiveAlarm, compact = false): string {
  return [ackStatusText(a, compact), recurrenceText(a, compact)].filter(Boolean).join(" \u00b7 ");
}

function ackStatusText(a: ActiveAlarm, compact: boolean): string {
  if (a.latched) return "LATCHED \u2014 acknowledge";
  if (a.acknowledged) {
    const central = centralAcker(a);
    if (central) return compact ? "\u2713 ACK (central)" : `\u2713 acknowledged at central by ${central}`;
    return compact ? "\u2713 ACK" : "\u2713 ACKNOWLEDGED";
  }
  return "";
}

/**
 * "50 episodes since 10:06, none acknowledged" ("×50" compact) for an alarm whose condition
 * came back while its last alarm was still latched: the engine shows one alarm per
 * condition and counts the unacknowledged episodes it replaced; "" for a first episode.
 */
export function recurrenceText(a: ActiveAlarm, compact = false): string {
  if (!a.recurred) return "";
  const n = a.recurred + 1;
  if (compact) return `\u00d7${n}`;
  const since = a.recurring_since ? ` since ${formatHm(Date.parse(a.recurring_since))}` : "";
  return `${n} episodes${since}, none acknowledged`;
}

/** Suffix the core gives a user acting from a central station over the feed (docs/feed.md). */
export const CENTRAL_SUFFIX = " (central)";

/** The user who acknowledged `a` at a central station, or null when it was done here. */
export function centralAcker(a: ActiveAlarm): string | null {
  const by = a.acknowledged_by ?? null;
  return by !== null && by.endsWith(CENTRAL_SUFFIX) ? by.slice(0, -CENTRAL_SUFFIX.length) : null;
}

// ------------------------------------------------------------------ acknowledge what was seen

/** An alarm as the screen drew it: its id and the priority it had then. */
export interface SeenAlarm {
  id: number;
  priority: Priority;
}

/** Still needs a response: not acknowledged, or latched (its Ack button is shown). */
export function needsAck(a: ActiveAlarm): boolean {
  return !a.acknowledged || a.latched;
}

export interface AlarmBarModel {
  /** Display order, at most `maxShown`. */
  shown: ActiveAlarm[];
  /** Alarms counted in "+N more" but not drawn. */
  hiddenCount: number;
  /** What "Acknowledge all" covers: the drawn alarms that need a response, as drawn. */
  ackAll: SeenAlarm[];
  /** "Acknowledge all", or "Acknowledge shown" when some alarms are not drawn (those are not covered). */
  ackAllText: string;
}

/**
 * A bed's alarm bar. "Acknowledge all" covers only alarms the nurse can see: the
 * ones drawn, never those folded into "+N more" (open the bed to see them).
 */
export function alarmBarModel(active: readonly ActiveAlarm[], maxShown: number): AlarmBarModel {
  const sorted = sortAlarms(active);
  const shown = sorted.slice(0, Math.max(0, maxShown));
  const hiddenCount = sorted.length - shown.length;
  return {
    shown,
    hiddenCount,
    ackAll: shown.filter(needsAck).map((a) => ({ id: a.id, priority: a.priority })),
    ackAllText: hiddenCount > 0 ? "Acknowledge shown" : "Acknowledge all",
  };
}

/**
 * The ids to acknowledge for alarms the nurse saw, checked against the alarm state
 * when the acknowledgement is sent (at once, or after the initials were entered).
 * Only ids that were on screen are ever sent, so an alarm that started after the
 * screen was drawn is never covered. An alarm that has escalated since it was drawn
 * (same id, higher priority) is held back: the nurse did not see that condition.
 * Ids no longer present are dropped (the core skips them anyway).
 */
export function idsToAcknowledge(seen: readonly SeenAlarm[], current: BedAlarmState | undefined): { ids: number[]; escalated: number[] } {
  const ids: number[] = [];
  const escalated: number[] = [];
  for (const s of seen) {
    const a = current?.active.find((x) => x.id === s.id);
    if (!a) continue;
    if (PRIORITY_RANK[a.priority] > PRIORITY_RANK[s.priority]) escalated.push(s.id);
    else if (!ids.includes(s.id)) ids.push(s.id);
  }
  return { ids, escalated };
}

/** Flash period in seconds, or null when steady. */
export function flashPeriodS(a: { signal: { flash_hz: number | null } }): number | null {
  const hz = a.signal.flash_hz;
  return hz !== null && Number.isFinite(hz) && hz > 0 ? 1 / hz : null;
}

/**
 * Flash periods drawn, in seconds. IEC 60601-1-8 Table 2 asks 1.4–2.8 Hz (high)
 * and 0.4–0.8 Hz (medium); a rate from outside these bounds (another station's
 * feed is untrusted) is drawn at the nearest bound, so the alarm still flashes
 * and the CSS time stays a plain number (no "1e+25s").
 */
const FLASH_PERIOD_S = { min: 0.1, max: 10 } as const;

/** "0.5s" for a flash period, to the millisecond (the screen keeps one style rule per distinct value: dom.ts setCustomProperty). */
export function flashPeriodValue(period: number | null): string | null {
  if (period === null || Number.isNaN(period)) return null;
  const s = Math.min(Math.max(period, FLASH_PERIOD_S.min), FLASH_PERIOD_S.max);
  return `${Math.round(s * 1000) / 1000}s`;
}

/** "2" for 2.0 Hz, "0.6" for 0.6 Hz, "" when steady (the data-flash-hz attribute). */
export function flashHzText(hz: number | null): string {
  if (hz === null || !Number.isFinite(hz) || hz <= 0) return "";
  return String(Number(hz.toFixed(2)));
}

// ------------------------------------------------------------------ audio pause

export interface PauseModel {
  paused: boolean;
  /** ms left (core time), 0 when not paused. */
  remainingMs: number;
  /** "AUDIO PAUSED 1:43" or "audio on". */
  text: string;
  by: string | null;
}

/** "1:43" from ms, rounding up to whole seconds (0:00 only once expired). */
export function formatCountdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * Audio-paused state at core time `coreNow`. The pause is counted down locally from
 * `until` (the engine re-sends state only when something changes); once `until` has
 * passed it is over even before the engine's update arrives. Unknown core time: trust
 * the engine's state as sent.
 */
export function pauseModel(s: BedAlarmState | undefined, coreNow: number | null): PauseModel {
  if (!s || s.audio.state !== "paused") return { paused: false, remainingMs: 0, text: "audio on", by: null };
  const until = Date.parse(s.audio.until);
  const remainingMs = coreNow === null || !Number.isFinite(until) ? s.audio.remaining_s * 1000 : until - coreNow;
  if (remainingMs <= 0) return { paused: false, remainingMs: 0, text: "audio on", by: null };
  return { paused: true, remainingMs, text: `AUDIO PAUSED ${formatCountdown(remainingMs)}`, by: s.audio.by };
}

// ------------------------------------------------------------------ what sounds

/**
 * The priority this bed's speaker plays now: nothing while audio is paused; otherwise
 * the highest alarm whose condition is present and not acknowledged (the engine's
 * `audible`, recomputed so a pause that just expired sounds at once), or the engine's
 * `sounding` if that is higher.
 */
export function bedSounding(s: BedAlarmState | undefined, coreNow: number | null): Priority | null {
  if (!s) return null;
  if (pauseModel(s, coreNow).paused) return null;
  let p: Priority | null = s.sounding;
  for (const a of s.active) {
    if (a.audible || (!a.latched && !a.acknowledged)) p = higher(p, a.priority);
  }
  return p;
}

/**
 * The pattern the workstation plays: the highest over all beds. `coreLost` (no data
 * from the monitor core after having had some) is a high-priority technical alarm:
 * the alarm engine itself can no longer be heard from, and silence must never mean
 * "all is well". It sounds high to match its red 2 Hz banner (IEC 60601-1-8 wants
 * the auditory and visual signals of one condition to share its priority).
 */
export function wardSounding(states: Iterable<BedAlarmState>, coreNow: number | null, coreLost: boolean): Priority | null {
  let p: Priority | null = coreLost ? "high" : null;
  for (const s of states) p = higher(p, bedSounding(s, coreNow));
  return p;
}

/** The `audio-state` test element text. */
export function audioStateText(running: boolean, playing: Priority | null): string {
  if (!running) return "blocked";
  return playing ? `playing ${playing}` : "silent";
}

// ------------------------------------------------------------------ limits and numerics

export const PARAMETER_LABEL: Record<AlarmParameter, string> = {
  heart_rate: "HR",
  pulse_rate: "Pulse",
  spo2: "SpO2",
  resp_rate: "RR",
  nibp_systolic: "NIBP sys",
  nibp_diastolic: "NIBP dia",
  nibp_mean: "NIBP mean",
  temperature: "Temp",
};

export const PARAMETER_MDC: Record<AlarmParameter, number> = {
  heart_rate: MDC.HR,
  pulse_rate: MDC.PR_OXIMETER,
  spo2: MDC.SPO2,
  resp_rate: MDC.RR,
  nibp_systolic: MDC.NIBP_SYS,
  nibp_diastolic: MDC.NIBP_DIA,
  nibp_mean: MDC.NIBP_MEAN,
  temperature: MDC.TEMP,
};

/** The numeric box a parameter is shown in. */
export type NumericBoxKind = "hr" | "spo2" | "rr" | "nibp" | "temp";

export function boxOfParameter(p: AlarmParameter): NumericBoxKind {
  switch (p) {
    case "heart_rate":
    case "pulse_rate":
      return "hr";
    case "spo2":
      return "spo2";
    case "resp_rate":
      return "rr";
    case "nibp_systolic":
    case "nibp_diastolic":
    case "nibp_mean":
      return "nibp";
    case "temperature":
      return "temp";
  }
}

/**
 * The highest priority of physiological alarms whose condition is present (not
 * latched) for each numeric box: the numeric shows its limit breach.
 */
export function numericAlarms(s: BedAlarmState | undefined): Map<NumericBoxKind, ActiveAlarm> {
  const out = new Map<NumericBoxKind, ActiveAlarm>();
  if (!s) return out;
  for (const a of s.active) {
    if (a.kind.type !== "physiological" || a.latched) continue;
    const box = boxOfParameter(a.kind.parameter);
    const cur = out.get(box);
    if (!cur || PRIORITY_RANK[a.priority] > PRIORITY_RANK[cur.priority]) out.set(box, a);
  }
  return out;
}

function fmtLimit(v: number, decimals: number): string {
  return v.toFixed(decimals);
}

/** "50\u2013120", "\u226590", "\u2264120", or "OFF". Temperature to 0.1. */
export function limitText(l: AlarmLimit | undefined, decimals = 0): string {
  if (!l) return "";
  const lo = l.low ?? l.critical_low;
  const hi = l.high ?? l.critical_high;
  if (lo !== null && hi !== null) return `${fmtLimit(lo, decimals)}\u2013${fmtLimit(hi, decimals)}`;
  if (lo !== null) return `\u2265${fmtLimit(lo, decimals)}`;
  if (hi !== null) return `\u2264${fmtLimit(hi, decimals)}`;
  return "OFF";
}

/** The limits of the parameter shown with code `mdc`, or undefined. */
export function limitFor(s: BedAlarmState | undefined, mdc: number): ParameterLimit | undefined {
  if (!s) return undefined;
  return s.limits.find((l) => PARAMETER_MDC[l.parameter] === mdc);
}

/** Limit text for a numeric showing `mdc`; "" when the engine has no limits for it. */
export function limitTextForMdc(s: BedAlarmState | undefined, mdc: number): string {
  const l = limitFor(s, mdc);
  if (!l) return "";
  const t = limitText(l.limit, mdc === MDC.TEMP ? 1 : 0);
  return l.patient_specific ? `${t} (patient)` : t;
}

// ------------------------------------------------------------------ alarm log

export interface LogRow {
  key: string;
  atMs: number;
  priority: Priority | null;
  /** "Started", "Acknowledged", "Audio paused", ... */
  event: string;
  message: string;
  /** Who acknowledged / paused / resumed, or "". */
  by: string;
}

const END_REASON: Record<string, string> = {
  condition_ended: "condition ended",
  acknowledged: "acknowledged",
  measurement_invalid: "measurement invalid",
  discharged: "discharged",
  recurred: "came back: shown as a new alarm",
};

function eventText(e: AlarmRecord["event"]["event"]): { text: string; by: string } {
  switch (e.type) {
    case "started":
      return { text: "Started", by: "" };
    case "escalated":
      return { text: `Escalated from ${e.from}`, by: "" };
    case "latched":
      return { text: "Latched", by: "" };
    case "ended":
      return { text: `Ended (${END_REASON[e.reason] ?? e.reason})`, by: "" };
    case "acknowledged":
      return { text: "Acknowledged", by: e.user };
    case "audio_paused":
      return { text: "Audio paused", by: e.user };
    case "audio_resumed": {
      const r = e.reason;
      if (r.type === "operator") return { text: "Audio resumed", by: r.user };
      if (r.type === "breakthrough") return { text: `Audio resumed (${r.priority} alarm broke through)`, by: "" };
      return { text: `Audio resumed (${r.type})`, by: "" };
    }
    case "limit_changed":
      return e.user === null ? { text: "Limit reverted (discharge)", by: "" } : { text: "Limit changed", by: e.user };
    default:
      return { text: String((e as { type?: unknown }).type ?? "event"), by: "" };
  }
}

/** Alarm log records (oldest first from the core) as table rows, newest first. */
export function alarmLogRows(records: readonly AlarmRecord[]): LogRow[] {
  return records
    .map((r) => {
      const ev = r.event;
      const { text, by } = ev && ev.event ? eventText(ev.event) : { text: "event", by: "" };
      const atMs = Date.parse(ev?.at ?? r.at);
      return {
        key: String(r.id),
        atMs: Number.isFinite(atMs) ? atMs : Date.parse(r.at),
        priority: ev?.priority ?? null,
        event: text,
        message: ev?.message || (ev?.kind ? alarmTitle(ev.kind) : ""),
        by,
      };
    })
    .sort((a, b) => b.atMs - a.atMs || Number(b.key) - Number(a.key));
}
