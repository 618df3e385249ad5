// One watched station's state at the central station, and the feed's safety rules:
// sequence numbers (a gap: resync, values unverified until the snapshot), silence
// (no message for > FEED_LOST_AFTER_MS: FEED LOST at every bed), and a new connection
// (nothing from before is live until its snapshot replaces it). Pure: no DOM, no
// sockets, no clocks — callers pass `perf` (performance.now()) and `wall` (epoch ms).
// The ward itself is the bedside screen's own WardState (../state.ts), so numerics,
// staleness and specials follow exactly the bedside's rules.

import type { SessionView } from "../contract";
import { type WardState, applySnapshot, applyUpdate, createState } from "../state";
import { FEED_SCHEMA, type FeedCommand, type FeedMessage, type StationInfo } from "./wire";

/**
 * The feed server sends an update every 250 ms even when nothing changed (a heartbeat):
 * nothing for longer than this and the feed is lost. The same 3 s as the bedside's own
 * "no data from monitor core" watchdog (../state.ts NO_DATA_AFTER_MS).
 */
export const FEED_LOST_AFTER_MS = 3000;

/** Reconnect delays: 1, 2, 4, 8, then 15 s for every later attempt. */
export const BACKOFF_MS: readonly number[] = [1000, 2000, 4000, 8000, 15000];

export function backoffMs(attempt: number): number {
  return BACKOFF_MS[Math.min(Math.max(0, attempt), BACKOFF_MS.length - 1)];
}

/** A station as configured (site.json `central.feeds`, or the browser's setup form). */
export interface FeedConfig {
  name: string;
  url: string;
  /** null: the token is missing (`error` says why); the station is shown as not connected. */
  token: string | null;
  error?: string | null;
  /**
   * How it is watched: its own feed (default), or read from the MQTT broker (./broker.ts).
   * A broker ward takes no commands (docs/mqtt.md "Commands from central: not supported").
   */
  via?: "feed" | "broker";
  /** How "FEED LOST — …" names it (default "station <name>"). */
  lostName?: string;
}

export type Phase =
  /** Never had a snapshot yet on any connection (connecting at start). */
  | "connecting"
  /** Snapshot received on the open connection, messages arriving. */
  | "live"
  /** Had been live, or never became live in time: silent, closed or refused. */
  | "lost";

export interface StationState {
  config: FeedConfig;
  /** The bedside's ward as this feed reports it (the bedside screen's own state type). */
  ward: WardState;
  /** From the last snapshot. */
  info: StationInfo | null;
  phase: Phase;
  /** A socket is open. */
  open: boolean;
  /**
   * The values shown come from a snapshot on the open connection with no sequence gap
   * since. False from the start, after a gap (until the resync snapshot), and from the
   * moment a connection closes or falls silent (until a new connection's snapshot).
   */
  verified: boolean;
  /** A resync was asked for and its snapshot has not come yet. */
  resyncing: boolean;
  /** seq of the last message on the open connection, null before any. */
  lastSeq: number | null;
  /** performance.now() of the last message (or of the start / the socket's opening). */
  lastMessagePerf: number;
  /** Wall time of the last message on any connection, null before any. */
  lastMessageWall: number | null;
  /** Wall time since which the feed is lost (the last message's time, or the start). */
  lostSinceWall: number | null;
  /** Why it is lost, in words ("no message for 3 s", "connection closed", "refused: …"). */
  lostReason: string | null;
  /** The central user's session at this station (per connection; gone when it closes). */
  session: SessionView | null;
  /** Counted for the record (never reset): gaps seen, snapshots received, connections opened. */
  gaps: number;
  snapshots: number;
  connections: number;
  startedWall: number;
}

export function createStation(config: FeedConfig, perf: number, wall: number): StationState {
  return {
    config,
    ward: createState(perf),
    info: null,
    phase: "connecting",
    open: false,
    verified: false,
    resyncing: false,
    lastSeq: null,
    lastMessagePerf: perf,
    lastMessageWall: null,
    lostSinceWall: null,
    lostReason: null,
    session: null,
    gaps: 0,
    snapshots: 0,
    connections: 0,
    startedWall: wall,
  };
}

/** What the caller must do after a step. */
export interface Effects {
  send?: FeedCommand;
  /** Close the socket (silent feed, unreadable message stream, unsupported schema). */
  close?: string;
  /** A command result to hand to whoever is waiting for it. */
  result?: Extract<FeedMessage, { type: "result" }>;
}

function lose(st: StationState, reason: string): void {
  st.phase = "lost";
  st.verified = false;
  // Since when the central station has not known this station's state: its last message.
  if (st.lostSinceWall === null) st.lostSinceWall = st.lastMessageWall ?? st.startedWall;
  if (st.lostReason === null) st.lostReason = reason;
}

/** A socket opened: a new connection, nothing of the old one counts as live. */
export function onOpen(st: StationState, perf: number): void {
  st.open = true;
  st.connections++;
  st.lastSeq = null;
  st.verified = false;
  st.resyncing = false;
  st.session = null;
  // The silence timer runs from the opening: a server that accepts and then sends
  // nothing is lost after FEED_LOST_AFTER_MS like one that stops.
  st.lastMessagePerf = perf;
}

/** The socket closed (or could not open). */
export function onClose(st: StationState, reason: string): void {
  st.open = false;
  st.lastSeq = null;
  st.resyncing = false;
  st.session = null;
  lose(st, reason);
}

/** One message from the open connection. */
export function onMessage(st: StationState, msg: FeedMessage | null, perf: number, wall: number): Effects {
  st.lastMessagePerf = perf;
  st.lastMessageWall = wall;
  if (msg === null) {
    // Unreadable: as good as a lost message. The snapshot puts the picture right.
    return gap(st);
  }
  const expected = st.lastSeq === null ? null : st.lastSeq + 1;
  st.lastSeq = msg.seq;
  if (msg.type === "snapshot") {
    if (msg.schema !== FEED_SCHEMA) {
      st.verified = false;
      lose(st, `station speaks feed schema ${msg.schema}, this page reads ${FEED_SCHEMA}`);
      return { close: "unsupported schema" };
    }
    // A snapshot replaces everything: values from before it (an earlier connection,
    // or updates around a gap) are gone.
    const refused = applyOrRefuse(st, perf, (ward) => applySnapshot(ward, msg.ward, perf));
    if (refused) return refused;
    st.info = msg.station;
    st.phase = "live";
    st.verified = true;
    st.resyncing = false;
    st.lostSinceWall = null;
    st.lostReason = null;
    st.snapshots++;
    return {};
  }
  if (st.snapshots === 0 || (st.phase !== "live" && !st.resyncing)) {
    // Nothing is applied before this connection's snapshot (the protocol sends it first).
    if (msg.type === "result") return { result: msg };
    return {};
  }
  const effects: Effects = expected !== null && msg.seq !== expected ? gap(st) : {};
  if (msg.type === "update") {
    // Applied even while resyncing (alarm states are whole per bed, readings newest-wins),
    // but the station stays unverified until the snapshot.
    return applyOrRefuse(st, perf, (ward) => applyUpdate(ward, msg.update, perf)) ?? effects;
  }
  return { ...effects, result: msg };
}

/** Why a station is lost whose data this page could not apply or show. */
export const UNREADABLE = "the station sent data this page cannot read";

/**
 * The station's data cannot be applied or shown (another version's shape, a fault):
 * whatever of it was taken is dropped (a half-applied ward is never shown), the
 * station is FEED LOST with the reason (a tile and a sounding alarm, like any lost
 * feed), and its connection is closed, so a reconnect brings a fresh snapshot. Only
 * this station: the others are still shown and still sound.
 */
export function unreadable(st: StationState, perf: number): Effects {
  st.ward = createState(perf);
  st.info = null;
  st.resyncing = false;
  st.lostReason = null;
  lose(st, UNREADABLE);
  return { close: UNREADABLE_CLOSE };
}

/** The close reason sent to a station whose data this page cannot read. */
export const UNREADABLE_CLOSE = "unreadable data";

/**
 * Applies a station's data to its ward: null when it applied, else the station is
 * [unreadable] and its effects are returned.
 */
export function applyOrRefuse(st: StationState, perf: number, apply: (ward: WardState) => void): Effects | null {
  try {
    apply(st.ward);
    return null;
  } catch {
    return unreadable(st, perf);
  }
}

/** A message was missed: ask for a snapshot once, and show the values as unverified. */
function gap(st: StationState): Effects {
  st.verified = false;
  st.gaps++;
  if (st.resyncing) return {};
  st.resyncing = true;
  return { send: { type: "resync" } };
}

/**
 * The watchdog, run every frame: a station silent for more than FEED_LOST_AFTER_MS is
 * lost (its socket is closed and reconnected by the client).
 */
export function tick(st: StationState, perf: number): Effects {
  const silent = perf - st.lastMessagePerf;
  if (silent <= FEED_LOST_AFTER_MS) return {};
  if (st.open) {
    // Also a connection that opened and never sent its snapshot: closed and tried again.
    lose(st, `no message for ${Math.round(silent / 1000)} s`);
    return { close: "feed silent" };
  }
  if (st.phase !== "lost") lose(st, "not connected");
  return {};
}

/** The values of this station may be shown as live (not greyed). */
export function isLive(st: StationState): boolean {
  return st.phase === "live" && st.verified;
}

/** Is the station's feed lost now (the technical alarm at each of its beds)? */
export function isLost(st: StationState): boolean {
  return st.phase === "lost";
}
