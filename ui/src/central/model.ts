// What the central station shows, from every station's state: one tile per bed across
// stations (station, bed, key numerics with their staleness, highest alarm), one alarm
// list across stations (priority, then age), and the priority the speaker plays. Pure:
// the bedside's own rules (../state.ts numerics, ../alarms.ts ordering and sounding)
// decide each value; this file adds only what a feed adds: a lost or unverified feed.

import type { ActiveAlarm, Priority } from "../contract";
import { MDC } from "../codes";
import {
  PRIORITY_RANK,
  type PauseModel,
  alarmStatusText,
  bedSounding,
  higher,
  pauseModel,
  shortAlarmText,
} from "../alarms";
import { formatHms } from "../format";
import { badgeText, isIncomplete } from "../news2";
import {
  type FrameContext,
  type NibpModel,
  type NumericModel,
  coreNow,
  frameContext,
  heartRateModel,
  nibpModel,
  numericModel,
  temperatureModel,
} from "../state";
import { type StationState, isLive, isLost, unreadable } from "./station";

/**
 * A lost feed is a high-priority technical alarm at every bed of the station, sounding
 * high: the central station can no longer hear that station's alarms, and silence must
 * never read as "all is well" (as the bedside's own "no data from monitor core").
 */
export const FEED_LOST_PRIORITY: Priority = "high";

export function feedLostText(st: StationState): string {
  const since = st.lostSinceWall !== null ? `, since ${formatHms(st.lostSinceWall)}` : "";
  return `FEED LOST \u2014 ${st.config.lostName ?? `station ${st.config.name}`}${since}`;
}

/**
 * Where a broker ward's acknowledge and pause buttons would be: MQTT carries no sign-in, so
 * the central station cannot act on a ward it reads from the broker (docs/mqtt.md).
 */
export const BROKER_NO_COMMANDS = "read from the broker: acknowledge at the bedside or via its live feed";

/** Why this station's alarms cannot be acted on from here, or null when they can. */
export function readOnlyText(st: StationState): string | null {
  return st.config.via === "broker" ? BROKER_NO_COMMANDS : null;
}

/** The alarm list row offers an Ack button. */
export function canAck(a: CentralAlarm): boolean {
  return !a.readOnly && a.alarm !== null && a.bed !== null && !a.unverified && (!a.alarm.acknowledged || a.alarm.latched);
}

/** The tile offers its Pause audio (and Ack all) buttons. */
export function hasControls(t: BedTile): boolean {
  return t.bed !== null && t.live && t.readOnly === null;
}

export interface CentralAlarm {
  /** Unique across stations: "<station index>:<bed>:<alarm id>" or "<station index>:<bed>:lost". */
  key: string;
  station: number;
  stationName: string;
  /** null: the station has no bed known yet (never connected). */
  bed: string | null;
  bedLabel: string;
  priority: Priority;
  /** Epoch ms the condition started (for a lost feed: since when). */
  sinceMs: number;
  text: string;
  /** "LATCHED — acknowledge", "✓ ACK", "" (the bedside's words, compact for a tile). */
  status: string;
  /** The same in full for the alarm list ("✓ ACKNOWLEDGED", or who acknowledged it at central). */
  statusLong: string;
  /** null for the feed-lost alarm (a central station condition, nothing to send back). */
  alarm: ActiveAlarm | null;
  /** The station takes no commands from here (a ward read from the broker). */
  readOnly: boolean;
  feedLost: boolean;
  /** The station's values are not verified (gap, reconnecting): shown, but not as live. */
  unverified: boolean;
  flashHz: number | null;
}

export interface BedTile {
  key: string;
  station: number;
  stationName: string;
  bed: string | null;
  bedLabel: string;
  /** Admitted patient's name only while the central user is signed in at that station. */
  patient: string | null;
  admitted: boolean;
  hr: NumericModel | null;
  spo2: NumericModel | null;
  rr: NumericModel | null;
  nibp: NibpModel | null;
  temp: NumericModel | null;
  news2: string;
  /** Values shown as live: a verified snapshot on an open, talking connection. */
  live: boolean;
  /** "FEED LOST — station X, since hh:mm:ss", or null. */
  lost: string | null;
  /** "values unverified: resynchronising" etc., or null. */
  unverified: string | null;
  highest: Priority | null;
  alarms: CentralAlarm[];
  pause: PauseModel;
  /** Said where the buttons would be when the station takes no commands (readOnlyText), else null. */
  readOnly: string | null;
}

export interface CentralModel {
  tiles: BedTile[];
  alarms: CentralAlarm[];
  /** The pattern the central station plays: highest over every station. */
  sounding: Priority | null;
  lostStations: number;
}

/** Priority first (high first), then age (oldest first), then station, bed, id: stable. */
export function compareAlarms(a: CentralAlarm, b: CentralAlarm): number {
  return (
    PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] ||
    a.sinceMs - b.sinceMs ||
    a.station - b.station ||
    (a.bed ?? "").localeCompare(b.bed ?? "") ||
    (a.alarm?.id ?? -1) - (b.alarm?.id ?? -1)
  );
}

function ageOf(s: string): number {
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : 0;
}

/** The frame context a station's values are judged in: everything stale unless live. */
function stationFrame(st: StationState, perf: number): FrameContext {
  const ctx = frameContext(st.ward, perf);
  return isLive(st) ? ctx : { ...ctx, noData: true };
}

/**
 * [centralModel], with any station whose data breaks it taken out: each such station
 * is marked unreadable (FEED LOST with the reason, its data dropped: station.ts
 * `unreadable`) and the model built again, so one station's data never blanks or
 * silences the others. Returns the stations taken out; closing their connections is
 * the caller's.
 */
export function centralModelIsolated(stations: readonly StationState[], perf: number, wall: number): { model: CentralModel; unreadable: StationState[] } {
  try {
    return { model: centralModel(stations, perf, wall), unreadable: [] };
  } catch {
    const bad = stations.filter((st) => {
      try {
        centralModel([st], perf, wall);
        return false;
      } catch {
        return true;
      }
    });
    for (const st of bad) unreadable(st, perf);
    return { model: centralModel(stations, perf, wall), unreadable: bad };
  }
}

export function centralModel(stations: readonly StationState[], perf: number, wall: number): CentralModel {
  const tiles: BedTile[] = [];
  const alarms: CentralAlarm[] = [];
  let sounding: Priority | null = null;
  let lostStations = 0;
  stations.forEach((st, i) => {
    const name = st.config.name;
    const readOnly = readOnlyText(st);
    const lost = isLost(st) ? feedLostText(st) : null;
    const unverified = lost ? null : !isLive(st) ? (st.resyncing ? "values unverified: resynchronising" : "connecting: values not yet verified") : null;
    if (lost) lostStations++;
    const ctx = stationFrame(st, perf);
    const now = coreNow(st.ward, perf);
    const lostAlarm = (bed: string | null, label: string): CentralAlarm => ({
      key: `${i}:${bed ?? ""}:lost`,
      station: i,
      stationName: name,
      bed,
      bedLabel: label,
      priority: FEED_LOST_PRIORITY,
      sinceMs: st.lostSinceWall ?? wall,
      text: lost ?? "",
      status: "",
      statusLong: "",
      alarm: null,
      readOnly: readOnly !== null,
      feedLost: true,
      unverified: false,
      flashHz: 2,
    });
    const beds = st.ward.beds;
    if (beds.length === 0) {
      // Never connected (or a station with no beds): still a tile, so a station that is
      // down from the start is as visible as one that went down.
      const a = lost ? [lostAlarm(null, "\u2014")] : [];
      alarms.push(...a);
      tiles.push({
        key: `${i}:`,
        station: i,
        stationName: name,
        bed: null,
        bedLabel: "\u2014",
        patient: null,
        admitted: false,
        hr: null,
        spo2: null,
        rr: null,
        nibp: null,
        temp: null,
        news2: "",
        live: false,
        lost,
        unverified: lost ? null : "connecting",
        highest: lost ? FEED_LOST_PRIORITY : null,
        alarms: a,
        pause: pauseModel(undefined, null),
        readOnly,
      });
    }
    for (const b of beds) {
      const state = st.ward.alarms.get(b.bed);
      const news2 = st.ward.news2.get(b.bed);
      const bedAlarms: CentralAlarm[] = [];
      if (lost) bedAlarms.push(lostAlarm(b.bed, b.label));
      for (const a of state?.active ?? []) {
        bedAlarms.push({
          key: `${i}:${b.bed}:${a.id}`,
          station: i,
          stationName: name,
          bed: b.bed,
          bedLabel: b.label,
          priority: a.priority,
          sinceMs: ageOf(a.since),
          text: shortAlarmText(a, isIncomplete(news2) ? news2.total : null),
          status: alarmStatusText(a, true),
          statusLong: alarmStatusText(a),
          alarm: a,
          readOnly: readOnly !== null,
          feedLost: false,
          unverified: !isLive(st),
          flashHz: a.signal.flash_hz,
        });
      }
      bedAlarms.sort(compareAlarms);
      alarms.push(...bedAlarms);
      let highest: Priority | null = lost ? FEED_LOST_PRIORITY : null;
      for (const a of bedAlarms) highest = higher(highest, a.priority);
      tiles.push({
        key: `${i}:${b.bed}`,
        station: i,
        stationName: name,
        bed: b.bed,
        bedLabel: b.label,
        // The station blanks identity unless the signed-in user's role may see it.
        patient: (b.admission && st.session && b.admission.display_name) || null,
        admitted: b.admission !== null,
        hr: heartRateModel(st.ward, b.bed, ctx),
        spo2: numericModel(st.ward, b.bed, MDC.SPO2, ctx),
        rr: numericModel(st.ward, b.bed, MDC.RR, ctx),
        nibp: nibpModel(st.ward, b.bed, ctx),
        temp: temperatureModel(st.ward, b.bed, ctx),
        news2: badgeText(news2),
        live: isLive(st),
        lost,
        unverified,
        highest,
        alarms: bedAlarms,
        pause: pauseModel(state, now),
        readOnly,
      });
      // What sounds: the bedside's own rule per bed while the feed is heard; a lost feed
      // sounds high whatever its last known alarms were.
      if (!lost) sounding = higher(sounding, bedSounding(state, now));
    }
    if (lost) sounding = higher(sounding, FEED_LOST_PRIORITY);
  });
  alarms.sort(compareAlarms);
  return { tiles, alarms, sounding, lostStations };
}
