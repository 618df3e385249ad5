// Pure ward state and the monitor's safety logic (data age, staleness, specials,
// technical conditions, the no-data watchdog). No DOM and no global clocks:
// every function that needs "now" takes `perfNow` (a performance.now() value)
// so it can be tested at exact edges.

import type {
  AdmissionView,
  BedAlarmState,
  BedView,
  News2,
  DeviceView,
  ReadingView,
  WardSnapshot,
  WardUpdate,
} from "./contract";
import { MDC, defaultUnit, displayUnit, mdcLabel } from "./codes";
import { NO_VALUE, formatNumber, specialText } from "./format";

/** No WardUpdate for longer than this (ms) => "NO DATA FROM MONITOR CORE", everything stale. */
export const NO_DATA_AFTER_MS = 3000;

export interface WardState {
  beds: BedView[];
  /** bed -> device id -> status. A device is at one bed at a time. */
  devices: Map<string, Map<string, DeviceView>>;
  /** bed -> mdc -> latest reading (by received_ms). */
  latest: Map<string, Map<number, ReadingView>>;
  /** Core clock (WardUpdate.now_ms) at the last snapshot/update; null before any. */
  coreNowMs: number | null;
  /** performance.now() when the last snapshot/update arrived; null before any. */
  lastDataPerf: number | null;
  /** performance.now() when the UI started (the watchdog runs from here before any data). */
  startedPerf: number;
  /** Bumped whenever the bed list or an admission changes (render rebuilds headers). */
  bedsVersion: number;
  /** bed -> the alarm engine's full state for that bed. */
  alarms: Map<string, BedAlarmState>;
  /** bed -> latest NEWS2 score. */
  news2: Map<string, News2>;
  /** Bumped whenever any bed's alarm state changes. */
  alarmsVersion: number;
  /** Bumped whenever a NEWS2 score arrives. */
  news2Version: number;
}

export function createState(perfNow: number): WardState {
  return {
    beds: [],
    devices: new Map(),
    latest: new Map(),
    coreNowMs: null,
    lastDataPerf: null,
    startedPerf: perfNow,
    bedsVersion: 0,
    alarms: new Map(),
    news2: new Map(),
    alarmsVersion: 0,
    news2Version: 0,
  };
}

// ---------------------------------------------------------------- applying data

/** The bed's current stay (admission id), null when no patient is admitted. */
function stayOf(state: WardState, bed: string): string | null {
  return state.beds.find((b) => b.bed === bed)?.admission?.id ?? null;
}

function putReading(state: WardState, r: ReadingView): void {
  // Never an earlier patient's value: a reading of another stay (one sent just
  // before a discharge and delivered after it) is not shown. Values measured
  // with no patient admitted show (a sensor on the patient being admitted).
  if (r.admission !== null && r.admission !== stayOf(state, r.bed)) return;
  let perBed = state.latest.get(r.bed);
  if (!perBed) {
    perBed = new Map();
    state.latest.set(r.bed, perBed);
  }
  const prev = perBed.get(r.mdc);
  // Keep the newest reading: an out-of-order older one never replaces a newer one.
  if (!prev || r.received_ms >= prev.received_ms) perBed.set(r.mdc, r);
}

function putDevice(state: WardState, d: DeviceView): void {
  // A device is at one bed at a time: drop it from any other bed.
  for (const [bed, m] of state.devices) {
    if (bed !== d.bed && m.delete(d.device) && m.size === 0) state.devices.delete(bed);
  }
  let perBed = state.devices.get(d.bed);
  if (!perBed) {
    perBed = new Map();
    state.devices.set(d.bed, perBed);
  }
  perBed.set(d.device, d);
}

function setBeds(state: WardState, beds: BedView[]): void {
  // A discharge (the bed's stay ends or changes) clears the bed's values, as
  // the core does: they are the leaving patient's. New measurements show again.
  for (const b of beds) {
    const was = stayOf(state, b.bed);
    if (was !== null && was !== (b.admission?.id ?? null)) state.latest.delete(b.bed);
  }
  state.beds = beds.slice();
  state.bedsVersion++;
}

function putAlarms(state: WardState, a: BedAlarmState): void {
  state.alarms.set(a.bed, a);
  state.alarmsVersion++;
}

function putNews2(state: WardState, bed: string, score: News2): void {
  const prev = state.news2.get(bed);
  // Newest wins (RFC 3339 UTC strings of one format compare as times).
  if (prev && Date.parse(prev.at) > Date.parse(score.at)) return;
  state.news2.set(bed, score);
  state.news2Version++;
}

function markData(state: WardState, nowMs: number, perfNow: number): void {
  state.coreNowMs = nowMs;
  state.lastDataPerf = perfNow;
}

/** Replace everything with a full snapshot. */
export function applySnapshot(state: WardState, snap: WardSnapshot, perfNow: number): void {
  setBeds(state, snap.beds);
  state.devices = new Map();
  state.latest = new Map();
  for (const d of snap.devices) putDevice(state, d);
  for (const r of snap.latest) putReading(state, r);
  state.alarms = new Map();
  state.news2 = new Map();
  for (const a of snap.alarms ?? []) putAlarms(state, a);
  for (const n of snap.news2 ?? []) putNews2(state, n.bed, n.score);
  state.alarmsVersion++;
  state.news2Version++;
  markData(state, snap.now_ms, perfNow);
}

/** Apply one live update batch. */
export function applyUpdate(state: WardState, upd: WardUpdate, perfNow: number): void {
  // Beds first: the readings of a batch are shown against the stays it ends with.
  if (upd.beds) setBeds(state, upd.beds);
  for (const r of upd.readings) putReading(state, r);
  for (const d of upd.devices) putDevice(state, d);
  for (const a of upd.alarms ?? []) putAlarms(state, a);
  for (const n of upd.news2 ?? []) putNews2(state, n.bed, n.score);
  markData(state, upd.now_ms, perfNow);
}

/**
 * Apply updates that arrived (over the channel) before the initial snapshot did.
 * Readings are safe to apply (newest-wins). Device and bed changes are applied only
 * from updates newer than the snapshot; older ones are already in it.
 */
export function applyBufferedUpdate(state: WardState, upd: WardUpdate, snapshotNowMs: number, perfNow: number): void {
  if (upd.now_ms > snapshotNowMs) {
    applyUpdate(state, upd, perfNow);
    return;
  }
  for (const r of upd.readings) putReading(state, r);
  // NEWS2 scores carry their own time: newest wins, so they are safe too.
  for (const n of upd.news2 ?? []) putNews2(state, n.bed, n.score);
  // Arrival of data still counts for the watchdog, but never moves the core clock back.
  state.lastDataPerf = perfNow;
}

/** The result of a successful admit/discharge command, applied before the core echoes it. */
export function setAdmission(state: WardState, bed: string, admission: AdmissionView | null): void {
  const i = state.beds.findIndex((b) => b.bed === bed);
  if (i < 0) return;
  const next = state.beds.slice();
  next[i] = { ...next[i], admission };
  setBeds(state, next);
}

// ---------------------------------------------------------------- time and staleness

/** What each render frame needs to know about time. */
export interface FrameContext {
  /** Extrapolated core time (ms) or null before any data. */
  coreNow: number | null;
  /** The watchdog has fired: no update for > NO_DATA_AFTER_MS. */
  noData: boolean;
  /** Any snapshot/update has ever arrived. */
  hasData: boolean;
  /** ms since the last snapshot/update (or since start). */
  sinceDataMs: number;
}

/** Core time now: the last now_ms advanced by the performance.now() delta since it arrived. */
export function coreNow(state: WardState, perfNow: number): number | null {
  if (state.coreNowMs === null || state.lastDataPerf === null) return null;
  return state.coreNowMs + Math.max(0, perfNow - state.lastDataPerf);
}

/** ms since the last update (or since the UI started, before any). */
export function sinceData(state: WardState, perfNow: number): number {
  return Math.max(0, perfNow - (state.lastDataPerf ?? state.startedPerf));
}

/** The no-data watchdog: true when no update has arrived for more than NO_DATA_AFTER_MS. */
export function isNoData(state: WardState, perfNow: number): boolean {
  return sinceData(state, perfNow) > NO_DATA_AFTER_MS;
}

export function frameContext(state: WardState, perfNow: number): FrameContext {
  return {
    coreNow: coreNow(state, perfNow),
    noData: isNoData(state, perfNow),
    hasData: state.lastDataPerf !== null,
    sinceDataMs: sinceData(state, perfNow),
  };
}

/** Age of a reading in core time (never negative). */
export function readingAge(r: ReadingView, coreNowMs: number): number {
  return Math.max(0, coreNowMs - r.received_ms);
}

/**
 * A reading is stale when it is OLDER than its stale_after_ms (age > stale_after_ms;
 * age == stale_after_ms is still fresh), when the core time is unknown, or when the
 * no-data watchdog has fired.
 */
export function isReadingStale(r: ReadingView, ctx: FrameContext): boolean {
  if (ctx.noData || ctx.coreNow === null) return true;
  return readingAge(r, ctx.coreNow) > r.stale_after_ms;
}

// ---------------------------------------------------------------- lookups

export function bedAlarms(state: WardState, bed: string): BedAlarmState | undefined {
  return state.alarms.get(bed);
}

export function bedNews2(state: WardState, bed: string): News2 | undefined {
  return state.news2.get(bed);
}

export function latestReading(state: WardState, bed: string, mdc: number): ReadingView | undefined {
  return state.latest.get(bed)?.get(mdc);
}

export function deviceStatus(state: WardState, bed: string, device: string): DeviceView | undefined {
  return state.devices.get(bed)?.get(device);
}

const KIND_ORDER = [
  "heart_rate_strap",
  "pulse_oximeter",
  "respiration_sensor",
  "blood_pressure_cuff",
  "thermometer",
];

/** The devices at a bed, in a stable order (kind, then id). */
export function bedDevices(state: WardState, bed: string): DeviceView[] {
  const m = state.devices.get(bed);
  if (!m) return [];
  const rank = (k: string) => {
    const i = KIND_ORDER.indexOf(k);
    return i < 0 ? KIND_ORDER.length : i;
  };
  return [...m.values()].sort((a, b) => rank(a.kind) - rank(b.kind) || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
}

// ---------------------------------------------------------------- what a numeric shows

/**
 * - absent:    no reading ever arrived                          -> "---"
 * - value:     a number                                         -> the number
 * - special:   value null, an IEEE special (nan, nres, ...) or a value the
 *              device marked invalid                             -> "---" + special text or the device's reason
 * (a value the device marked questionable is a "value" with "? <flags>" as its note)
 * - technical: the feeding device reports a technical condition -> "---" + technical text
 */
export type NumericStatus = "absent" | "value" | "special" | "technical";

export interface NumericModel {
  /** The code actually shown (HR may fall back to the oximeter's PR). */
  mdc: number;
  label: string;
  status: NumericStatus;
  /** The value element's text: a number or "---", nothing else. */
  text: string;
  /** Special/technical text, or a fallback explanation; "" when none. */
  note: string;
  unit: string;
  stale: boolean;
  /** Data age in core ms, null when absent or core time unknown. */
  ageMs: number | null;
  receivedMs: number | null;
  simulated: boolean;
}

export function numericModel(state: WardState, bed: string, mdc: number, ctx: FrameContext): NumericModel {
  const r = latestReading(state, bed, mdc);
  const label = mdcLabel(mdc);
  if (!r) {
    return {
      mdc,
      label,
      status: "absent",
      text: NO_VALUE,
      note: "",
      unit: defaultUnit(mdc),
      stale: false,
      ageMs: null,
      receivedMs: null,
      simulated: false,
    };
  }
  const base = {
    mdc,
    label,
    unit: r.unit ? displayUnit(r.unit) : defaultUnit(mdc),
    stale: isReadingStale(r, ctx),
    ageMs: ctx.coreNow === null ? null : readingAge(r, ctx.coreNow),
    receivedMs: r.received_ms,
    simulated: r.source === "simulated",
  };
  const technical = deviceStatus(state, r.bed, r.device)?.technical;
  if (technical) {
    return { ...base, status: "technical", text: NO_VALUE, note: technical };
  }
  if (r.special !== null) {
    return { ...base, status: "special", text: NO_VALUE, note: specialText(r.special) };
  }
  // The device said this is no measurement of the patient (sensor off the
  // finger, strip error, …): never digits, say why.
  if (r.quality === "invalid") {
    return { ...base, status: "special", text: NO_VALUE, note: r.flags[0] ?? "invalid measurement" };
  }
  if (r.value === null || !Number.isFinite(r.value)) {
    return { ...base, status: "special", text: NO_VALUE, note: "no value" };
  }
  // Doubtful (cuff too loose, low perfusion, …): the number, with the doubt beside it.
  const note = r.quality === "questionable" ? `? ${r.flags.join(", ") || "questionable measurement"}` : "";
  return { ...base, status: "value", text: formatNumber(r.value, mdc), note };
}

function isLiveValue(m: NumericModel): boolean {
  return m.status === "value" && !m.stale;
}

/**
 * Heart rate: the HR strap's HR when it is a live number; otherwise the oximeter's
 * pulse rate (labelled "PR") when that is a live number; otherwise whichever exists
 * (HR first), shown as stale/special/technical as it is.
 */
export function heartRateModel(state: WardState, bed: string, ctx: FrameContext): NumericModel {
  const hr = numericModel(state, bed, MDC.HR, ctx);
  if (isLiveValue(hr)) return hr;
  const pr = numericModel(state, bed, MDC.PR_OXIMETER, ctx);
  if (isLiveValue(pr)) {
    if (hr.status === "technical" || hr.status === "special") return { ...pr, note: `HR: ${hr.note}` };
    return pr;
  }
  if (hr.status !== "absent") return hr;
  if (pr.status !== "absent") return pr;
  return hr;
}

export interface NibpModel {
  status: NumericStatus;
  /** "120/80", "120/---", or "---". */
  text: string;
  /** "(93)" or "". */
  meanText: string;
  note: string;
  unit: string;
  stale: boolean;
  ageMs: number | null;
  /** When the measurement was received (epoch ms), for "12:03". */
  receivedMs: number | null;
  simulated: boolean;
}

/** NIBP as one measurement: sys/dia (mean). Stale if any present component is stale. */
export function nibpModel(state: WardState, bed: string, ctx: FrameContext): NibpModel {
  const sys = numericModel(state, bed, MDC.NIBP_SYS, ctx);
  const dia = numericModel(state, bed, MDC.NIBP_DIA, ctx);
  const mean = numericModel(state, bed, MDC.NIBP_MEAN, ctx);
  const parts = [sys, dia, mean];
  const present = parts.filter((p) => p.status !== "absent");
  const unit = present[0]?.unit ?? defaultUnit(MDC.NIBP_SYS);
  if (present.length === 0) {
    return { status: "absent", text: NO_VALUE, meanText: "", note: "", unit, stale: false, ageMs: null, receivedMs: null, simulated: false };
  }
  const first = present[0];
  const stale = present.some((p) => p.stale);
  const ageMs = present.reduce<number | null>((a, p) => (p.ageMs === null ? a : a === null ? p.ageMs : Math.max(a, p.ageMs)), null);
  const simulated = present.some((p) => p.simulated);
  const technical = present.find((p) => p.status === "technical");
  if (technical) {
    return { status: "technical", text: NO_VALUE, meanText: "", note: technical.note, unit, stale, ageMs, receivedMs: first.receivedMs, simulated };
  }
  const notes = present.filter((p) => p.status === "special").map((p) => `${p.label.replace("NIBP ", "")}: ${p.note}`);
  return {
    status: sys.status === "value" || dia.status === "value" ? "value" : "special",
    text: sys.status === "absent" && dia.status === "absent" ? NO_VALUE : `${sys.text}/${dia.text}`,
    meanText: mean.status === "value" ? `(${mean.text})` : mean.status === "absent" ? "" : `(${NO_VALUE})`,
    note: notes.join("; "),
    unit,
    stale,
    ageMs,
    receivedMs: first.receivedMs,
    simulated,
  };
}

export function temperatureModel(state: WardState, bed: string, ctx: FrameContext): NumericModel {
  return numericModel(state, bed, MDC.TEMP, ctx);
}
