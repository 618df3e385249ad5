// Wards read from the MQTT broker (issue 17, site.json `central.mqtt`, docs/mqtt.md): each
// ward is a station of the central station, in the same StationState the feed stations use,
// so ./model.ts applies the same rules to it (every bed, alarms by priority and sound, a
// lost ward as "FEED LOST" at each of its beds with its values greyed). What differs:
//
// - the state comes whole from the app's broker mirror (`central_mqtt`, polled every
//   BROKER_POLL_MS): each answer is applied as a snapshot, no sequence numbers to follow;
// - a ward is live only while the mirror says `online`. Any other liveness (its last will,
//   a clean stop, silent, never heard, the mirror's own broker connection down) is lost
//   at once, once it has been live; a ward never live is "connecting" for
//   FEED_LOST_AFTER_MS from the start, then lost (a ward down since before the central
//   station started is as visible as one that went down);
// - the mirror not answering for FEED_LOST_AFTER_MS loses every broker ward (brokerTick);
// - no commands: MQTT carries no sign-in (model.ts BROKER_NO_COMMANDS).
// Pure: callers pass `perf` (performance.now()) and `wall` (epoch ms).

import type { BrokerLiveness, BrokerWardView, BrokerWardsView } from "../contract";
import { applySnapshot } from "../state";
import { FEED_LOST_AFTER_MS, type StationState, applyOrRefuse, createStation } from "./station";

/** How often the page asks the mirror (2 Hz: well inside the 3 s loss budget). */
export const BROKER_POLL_MS = 500;

/** Why a broker ward is lost, in words (the station chip's title). */
export function livenessText(l: BrokerLiveness): string {
  switch (l) {
    case "online":
      return "online";
    case "offline":
      return "offline (its last will: the broker lost it, or it stopped)";
    case "silent":
      return "silent: nothing heard from it";
    case "unknown":
      return "the broker has no status of it";
    case "no_broker":
      return "no connection to the broker";
  }
}

/** A broker ward as a station. */
export function createBrokerStation(ward: string, perf: number, wall: number): StationState {
  return createStation({ name: ward, url: "", token: null, via: "broker", lostName: `ward ${ward} via broker` }, perf, wall);
}

/**
 * Stands for the site while the broker has no ward of it (or the mirror could not start):
 * a bed-less station, lost when the broker cannot be read.
 */
export function createBrokerSiteStation(site: string, perf: number, wall: number): StationState {
  return createStation({ name: `site ${site}`, url: "", token: null, via: "broker", lostName: `site ${site} via broker` }, perf, wall);
}

function lose(st: StationState, reason: string, since: number | null): void {
  st.phase = "lost";
  st.verified = false;
  // Since when the central station has not known the ward: it was last heard then.
  if (st.lostSinceWall === null) st.lostSinceWall = since ?? st.lastMessageWall ?? st.startedWall;
  st.lostReason = reason;
}

/** Never live yet and still within FEED_LOST_AFTER_MS of the start: "connecting", not lost. */
function stillConnecting(st: StationState, perf: number): boolean {
  return st.snapshots === 0 && st.phase === "connecting" && perf - st.ward.startedPerf <= FEED_LOST_AFTER_MS;
}

/** One answer of the mirror for this ward. */
export function onBrokerWard(st: StationState, w: BrokerWardView, perf: number, wall: number): void {
  st.lastMessagePerf = perf;
  const was = { now: st.ward.coreNowMs, perf: st.ward.lastDataPerf };
  // Always applied: a lost ward's last known values stay on its tiles, greyed (model.ts).
  if (applyOrRefuse(st, perf, (ward) => applySnapshot(ward, w.snapshot, perf))) return;
  if (w.liveness !== "online" && w.snapshot.now_ms === was.now && was.perf !== null) {
    // The same frozen state again: its clock runs on from when it stopped, so the ages of
    // a lost ward's values grow ("20 s old") instead of restarting at every answer.
    st.ward.lastDataPerf = was.perf;
  }
  if (w.liveness === "online") {
    st.phase = "live";
    st.verified = true;
    st.open = true;
    st.lostSinceWall = null;
    st.lostReason = null;
    st.lastMessageWall = w.heard_ms ?? wall;
    st.snapshots++;
    return;
  }
  st.open = false;
  if (stillConnecting(st, perf)) return;
  lose(st, livenessText(w.liveness), w.heard_ms);
}

/**
 * The broker stations after one answer of the mirror: the ones it names, in its order
 * (a station kept from earlier answers keeps its state), or the site's stand-in when it
 * names none.
 */
export function applyBrokerAnswer(prev: readonly StationState[], answer: BrokerWardsView, perf: number, wall: number): StationState[] {
  const byName = new Map(prev.map((st) => [st.config.lostName ?? st.config.name, st]));
  if (answer.wards.length === 0) {
    const key = `site ${answer.site} via broker`;
    const st = byName.get(key) ?? createBrokerSiteStation(answer.site, perf, wall);
    st.lastMessagePerf = perf;
    if (answer.error !== null) lose(st, answer.error, null);
    else if (!answer.connected) {
      if (!stillConnecting(st, perf)) lose(st, livenessText("no_broker"), null);
    } else if (!stillConnecting(st, perf)) lose(st, `the broker has no ward of site ${answer.site}`, null);
    return [st];
  }
  return answer.wards.map((w) => {
    const st = byName.get(`ward ${w.ward} via broker`) ?? createBrokerStation(w.ward, perf, wall);
    onBrokerWard(st, w, perf, wall);
    return st;
  });
}

/**
 * The watchdog, run every frame: the mirror not answering for FEED_LOST_AFTER_MS (the app
 * stalled or the command failing) loses the ward; a ward never live is lost after
 * FEED_LOST_AFTER_MS from the start even without an answer.
 */
export function brokerTick(st: StationState, perf: number): void {
  if (st.config.via !== "broker" || st.phase === "lost") return;
  const silent = perf - st.lastMessagePerf;
  if (silent > FEED_LOST_AFTER_MS) {
    st.open = false;
    lose(st, `no answer from the app's broker mirror for ${Math.round(silent / 1000)} s`, null);
  } else if (st.phase === "connecting" && !stillConnecting(st, perf)) {
    lose(st, "not heard from the broker yet", null);
  }
}
