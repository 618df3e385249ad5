// The central station's rules (issue 17), through the real client, station state and
// model, with a scripted socket in place of the network (no server needed).

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ActiveAlarm, BedAlarmState, BedView, Priority, ReadingView, SessionView, WardSnapshot, WardUpdate } from "../contract";
import { MDC } from "../codes";
import { type SocketLike, CONNECT_TIMEOUT_MS, FeedClient, SIGN_IN_FIRST } from "./feedclient";
import { BROKER_NO_COMMANDS, canAck, centralModel, centralModelIsolated, feedLostText, hasControls } from "./model";
import { applyBrokerAnswer, brokerTick } from "./broker";
import type { BrokerLiveness, BrokerWardsView } from "../contract";
import type { StationState } from "./station";
import { SESSION_KEY, checkEntry, loadFeeds, saveFeeds } from "./setup";
import { BACKOFF_MS, FEED_LOST_AFTER_MS, UNREADABLE, backoffMs } from "./station";
import { type FeedCommand, FEED_SUBPROTOCOL } from "./wire";

const T0 = Date.parse("2026-12-05T08:00:00Z");

class FakeSocket implements SocketLike {
  protocol = FEED_SUBPROTOCOL;
  sent: FeedCommand[] = [];
  closed: { code?: number; reason?: string } | null = null;
  owner = "";
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data) as FeedCommand);
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }
  // --- the server's side
  open(): void {
    this.onopen?.({});
  }
  private seq = 0;
  /** Sends the next message with the next seq (or the seq given, to make a gap). */
  msg(m: Record<string, unknown>, seq?: number): void {
    this.seq = seq ?? this.seq + 1;
    this.onmessage?.({ data: JSON.stringify({ ...m, seq: this.seq }) });
  }
  snapshot(ward: WardSnapshot, seq?: number): void {
    this.msg({ type: "snapshot", schema: 1, station: { name: "ward-3-gw", version: "0.1.0" }, ward }, seq);
  }
  update(u: Partial<WardUpdate>, seq?: number): void {
    this.msg({ type: "update", update: { now_ms: Date.now(), readings: [], devices: [], beds: null, alarms: [], news2: [], ...u } }, seq);
  }
  drop(code = 1006): void {
    this.onclose?.({ code, reason: "" });
  }
}

function reading(bed: string, mdc: number, value: number, p: Partial<ReadingView> = {}): ReadingView {
  return {
    bed,
    device: `${bed}-dev`,
    mdc,
    value,
    special: null,
    unit: mdc === MDC.SPO2 ? "%" : "/min",
    received_ms: Date.now(),
    device_time: null,
    stale_after_ms: 5000,
    source: "simulated",
    quality: "valid",
    flags: [],
    admission: null,
    ...p,
  };
}

const BEDS: BedView[] = [
  { bed: "bed-1", label: "Bed 1", admission: null },
  { bed: "bed-2", label: "Bed 2", admission: null },
];

function ward(p: Partial<WardSnapshot> = {}): WardSnapshot {
  return { now_ms: Date.now(), beds: BEDS, devices: [], latest: [reading("bed-1", MDC.HR, 72), reading("bed-2", MDC.HR, 80)], alarms: [], news2: [], ...p };
}

const SIGNAL: Record<Priority, ActiveAlarm["signal"]> = {
  high: { colour: "red", flash_hz: 2, duty: 0.5 },
  medium: { colour: "yellow", flash_hz: 0.6, duty: 0.5 },
  low: { colour: "cyan", flash_hz: null, duty: 1 },
};

function alarm(id: number, priority: Priority, sinceMs: number, p: Partial<ActiveAlarm> = {}): ActiveAlarm {
  return {
    id,
    kind: { type: "physiological", parameter: "spo2", direction: "low" },
    priority,
    since: new Date(sinceMs).toISOString(),
    value: 85,
    limit: 90,
    latched: false,
    acknowledged: false,
    acknowledged_by: null,
    recurred: 0,
    recurring_since: null,
    audible: true,
    message: `SpO2 low (${id})`,
    signal: SIGNAL[priority],
    ...p,
  };
}

function alarms(bed: string, active: ActiveAlarm[], p: Partial<BedAlarmState> = {}): BedAlarmState {
  const top = active.reduce<Priority | null>((h, a) => (h === null || ["low", "medium", "high"].indexOf(a.priority) > ["low", "medium", "high"].indexOf(h) ? a.priority : h), null);
  return { bed, category: "adult", active, audio: { state: "normal" }, highest: top, sounding: top, limits: [], ...p };
}

const NURSE: SessionView = { user: "nurse.kim", role: "nurse", may: [], break_glass_s: null, can_set_pin: false };

let sockets: FakeSocket[];

function client(name = "Ward 3", opts: { commandTimeoutMs?: number } = {}) {
  const c = new FeedClient(
    { name, url: `ws://127.0.0.1:7000/feed`, token: "tok-123" },
    {
      socket: (url, protocols) => {
        const s = new FakeSocket(url, protocols);
        s.owner = name;
        sockets.push(s);
        return s;
      },
      perf: () => Date.now(),
      wall: () => Date.now(),
      ...opts,
    },
  );
  c.start();
  return c;
}

/** The latest socket, opened, with a snapshot sent. */
function live(c: FeedClient, w: WardSnapshot = ward()): FakeSocket {
  const s = sockets.filter((x) => x.owner === c.state.config.name).pop()!;
  s.open();
  s.snapshot(w);
  expect(c.state.phase).toBe("live");
  return s;
}

function model(...cs: FeedClient[]) {
  return centralModel(
    cs.map((c) => c.state),
    Date.now(),
    Date.now(),
  );
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
  sockets = [];
});

afterEach(() => {
  vi.useRealTimers();
});

describe("connecting", () => {
  it("offers the feed's subprotocol and the token as bearer.<token> (a browser cannot set Authorization)", () => {
    client();
    expect(sockets).toHaveLength(1);
    expect(sockets[0].protocols).toEqual(["vigil.feed.v1", "bearer.tok-123"]);
  });

  it("shows the snapshot's beds and values as live, then applies updates", () => {
    const c = client();
    const s = live(c);
    let m = model(c);
    expect(m.tiles.map((t) => `${t.stationName}/${t.bedLabel}`)).toEqual(["Ward 3/Bed 1", "Ward 3/Bed 2"]);
    expect(m.tiles[0].hr?.text).toBe("72");
    expect(m.tiles[0].live && !m.tiles[0].hr?.stale).toBe(true);
    vi.advanceTimersByTime(250);
    s.update({ readings: [reading("bed-1", MDC.HR, 75), reading("bed-1", MDC.SPO2, 97)] });
    m = model(c);
    expect(m.tiles[0].hr?.text).toBe("75");
    expect(m.tiles[0].spo2?.text).toBe("97");
    expect(m.alarms).toEqual([]);
    expect(m.sounding).toBeNull();
  });

  it("a station without its token is a lost feed from the start, never a blank 'all is well'", () => {
    const c = new FeedClient({ name: "Ward 4", url: "wss://w4/feed", token: null, error: "VIGIL_FEED_TOKEN_W4 is not set" }, { socket: () => { throw new Error("must not connect"); } });
    c.start();
    const m = model(c);
    expect(m.tiles).toHaveLength(1);
    expect(m.tiles[0].lost).toContain("FEED LOST \u2014 station Ward 4");
    expect(m.alarms[0].feedLost).toBe(true);
    expect(m.sounding).toBe("high");
    expect(c.state.lostReason).toBe("VIGIL_FEED_TOKEN_W4 is not set");
  });
});

describe("sequence numbers", () => {
  it("a gap sends resync and marks the station's values unverified until the snapshot", () => {
    const c = client();
    const s = live(c);
    s.update({ readings: [reading("bed-1", MDC.HR, 74)] }); // seq 2
    s.update({ readings: [reading("bed-1", MDC.HR, 76)] }, 4); // seq 3 missing
    expect(s.sent).toEqual([{ type: "resync" }]);
    let m = model(c);
    expect(m.tiles.every((t) => !t.live && t.unverified !== null)).toBe(true);
    expect(m.tiles[0].hr?.stale).toBe(true); // greyed, not shown as live
    // Another gap before the snapshot does not ask twice.
    s.update({}, 9);
    expect(s.sent).toHaveLength(1);
    s.snapshot(ward({ latest: [reading("bed-1", MDC.HR, 90)] }), 10);
    m = model(c);
    expect(c.state.verified).toBe(true);
    expect(m.tiles[0].live).toBe(true);
    expect(m.tiles[0].hr?.text).toBe("90");
    expect(m.tiles[1].hr?.text).toBe("---"); // the snapshot replaced everything
    expect(c.state.gaps).toBe(2);
  });

  it("an unreadable message counts as a gap", () => {
    const c = client();
    const s = live(c);
    s.onmessage?.({ data: "{not json" });
    expect(s.sent).toEqual([{ type: "resync" }]);
    expect(c.state.verified).toBe(false);
  });
});

describe("a silent or lost feed", () => {
  it("silence > 3 s: FEED LOST on every bed of that station within the timeout, values greyed, sounding high", () => {
    const a = client("Ward 3");
    const b = client("Ward 5");
    const sa = live(a);
    const sb = live(b, ward({ beds: [{ bed: "bed-1", label: "Bed 1", admission: null }], latest: [] }));
    const lastMessage = Date.now();
    // Ward 5 keeps its heartbeat; Ward 3 falls silent.
    for (let t = 0; t < FEED_LOST_AFTER_MS + 250; t += 250) {
      vi.advanceTimersByTime(250);
      sb.update({});
    }
    const m = model(a, b);
    const ward3 = m.tiles.filter((t) => t.stationName === "Ward 3");
    expect(ward3).toHaveLength(2);
    for (const t of ward3) {
      expect(t.lost).toBe(feedLostText(a.state));
      expect(t.lost).toMatch(/^FEED LOST \u2014 station Ward 3, since \d\d:\d\d:\d\d$/);
      expect(t.hr?.stale).toBe(true);
      expect(t.highest).toBe("high");
    }
    expect(a.state.lostSinceWall).toBe(lastMessage);
    expect(m.alarms.filter((x) => x.feedLost).map((x) => x.bedLabel)).toEqual(["Bed 1", "Bed 2"]);
    expect(m.tiles.find((t) => t.stationName === "Ward 5")?.lost).toBeNull();
    expect(m.sounding).toBe("high");
    // Its socket is closed and a new one will be tried.
    expect(sa.closed?.code).toBe(4000);
  });

  it("not lost at exactly 3 s of silence (the heartbeat is every 250 ms)", () => {
    const c = client();
    live(c);
    vi.advanceTimersByTime(FEED_LOST_AFTER_MS);
    expect(c.state.phase).toBe("live");
    vi.advanceTimersByTime(250);
    expect(c.state.phase).toBe("lost");
  });

  it("a connection that opens but sends no snapshot, or never opens, is closed and tried again", () => {
    const c = client();
    sockets[0].open();
    vi.advanceTimersByTime(FEED_LOST_AFTER_MS + 250);
    expect(sockets[0].closed?.code).toBe(4000);
    expect(c.state.phase).toBe("lost");
    vi.advanceTimersByTime(1000);
    expect(sockets).toHaveLength(2);
    // The second never completes its handshake: given up after CONNECT_TIMEOUT_MS, then 2 s backoff.
    vi.advanceTimersByTime(CONNECT_TIMEOUT_MS + 250);
    expect(sockets[1].closed?.code).toBe(4000);
    vi.advanceTimersByTime(2000);
    expect(sockets).toHaveLength(3);
    live(c);
    expect(c.state.lostSinceWall).toBeNull();
  });

  it("reconnects with backoff 1, 2, 4, 8, 15, 15 s", () => {
    expect(BACKOFF_MS).toEqual([1000, 2000, 4000, 8000, 15000]);
    expect([0, 1, 2, 3, 4, 5, 9].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    const c = client();
    sockets[0].drop();
    const times: number[] = [];
    let t = 0;
    for (let i = 0; i < 6; i++) {
      const n = sockets.length;
      while (sockets.length === n) {
        vi.advanceTimersByTime(100);
        t += 100;
      }
      times.push(t);
      t = 0;
      sockets[sockets.length - 1].drop();
    }
    expect(times).toEqual([1000, 2000, 4000, 8000, 15000, 15000]);
    // A snapshot resets the backoff.
    vi.advanceTimersByTime(15000);
    live(c);
    sockets[sockets.length - 1].drop();
    expect(c.nextBackoffMs).toBe(2000); // this drop scheduled 1 s, the next would be 2 s
  });

  it("after a reconnect nothing from before is shown as live: the fresh snapshot replaces it", () => {
    const c = client();
    const s1 = live(c, ward({ alarms: [alarms("bed-2", [alarm(7, "medium", T0)])] }));
    s1.drop();
    vi.advanceTimersByTime(1000);
    const s2 = sockets[1];
    s2.open();
    // Open, but no snapshot yet: still the lost alarm, old values greyed.
    let m = model(c);
    expect(m.tiles[0].live).toBe(false);
    expect(m.tiles[0].lost).not.toBeNull();
    expect(m.tiles[0].hr?.stale).toBe(true);
    // An update before the snapshot is not applied.
    s2.update({ readings: [reading("bed-1", MDC.HR, 120)] });
    expect(model(c).tiles[0].hr?.text).toBe("72");
    s2.snapshot(ward({ latest: [reading("bed-2", MDC.HR, 66)] }));
    m = model(c);
    expect(m.tiles.every((t) => t.live && t.lost === null)).toBe(true);
    expect(m.tiles[0].hr?.text).toBe("---"); // bed 1's old 72 is gone, not shown as live
    expect(m.tiles[1].hr?.text).toBe("66");
    expect(m.alarms).toEqual([]); // the old medium alarm is gone with the old snapshot
    expect(c.state.session).toBeNull();
  });
});

describe("alarm list across stations", () => {
  it("sorted by priority, then age (oldest first); sound is the highest audible", () => {
    const a = client("Ward 3");
    const b = client("Ward 5");
    live(a, ward({ alarms: [alarms("bed-1", [alarm(1, "medium", T0 - 60_000), alarm(2, "low", T0 - 600_000)]), alarms("bed-2", [alarm(3, "high", T0 - 5_000)])] }));
    live(b, ward({ alarms: [alarms("bed-1", [alarm(1, "high", T0 - 30_000), alarm(4, "medium", T0 - 120_000, { acknowledged: true, acknowledged_by: "nurse.kim (central)", audible: false })])] }));
    const m = model(a, b);
    expect(m.alarms.map((x) => `${x.stationName}/${x.bedLabel}/${x.priority}/${x.alarm?.id}`)).toEqual([
      "Ward 5/Bed 1/high/1",
      "Ward 3/Bed 2/high/3",
      "Ward 5/Bed 1/medium/4",
      "Ward 3/Bed 1/medium/1",
      "Ward 3/Bed 1/low/2",
    ]);
    expect(m.sounding).toBe("high");
    expect(m.tiles.find((t) => t.stationName === "Ward 3" && t.bed === "bed-1")?.highest).toBe("medium");
    // The bedside's acknowledged_by comes back: who acknowledged it, at central.
    expect(m.alarms[2].statusLong).toBe("\u2713 acknowledged at central by nurse.kim");
    expect(m.alarms[2].status).toBe("\u2713 ACK (central)");
  });

  it("a bed whose audio is paused at the bedside does not sound at the central station", () => {
    const c = client();
    const until = new Date(T0 + 120_000).toISOString();
    live(c, ward({ alarms: [alarms("bed-1", [alarm(1, "high", T0, { audible: false })], { audio: { state: "paused", until, remaining_s: 120, by: "nurse.kim (central)" }, sounding: null })] }));
    const m = model(c);
    expect(m.sounding).toBeNull();
    expect(m.tiles[0].pause.text).toBe("AUDIO PAUSED 2:00");
  });
});

describe("commands", () => {
  it("acknowledge needs the central user signed in at that station; nothing is sent before", async () => {
    const c = client();
    const s = live(c);
    const r = await c.command({ type: "acknowledge", bed: "bed-1", alarms: [1] });
    expect(r).toEqual({ ok: false, error: SIGN_IN_FIRST, acknowledged: null, session: null });
    expect(s.sent).toEqual([]);
  });

  it("sign in, acknowledge with a request id; the result comes back by that id", async () => {
    const c = client();
    const s = live(c);
    const signing = c.command({ type: "sign_in", user: "nurse.kim", password: "correct horse battery" });
    expect(s.sent[0]).toEqual({ type: "sign_in", id: "c1", user: "nurse.kim", password: "correct horse battery" });
    s.msg({ type: "result", request: "c1", ok: true, error: null, acknowledged: null, session: NURSE });
    expect((await signing).ok).toBe(true);
    expect(c.state.session?.user).toBe("nurse.kim");
    const ack = c.command({ type: "acknowledge", bed: "bed-1", alarms: [12, 13] });
    expect(s.sent[1]).toEqual({ type: "acknowledge", id: "c2", bed: "bed-1", alarms: [12, 13] });
    // A result for someone else's id changes nothing.
    s.msg({ type: "result", request: "c99", ok: true, error: null, acknowledged: 5, session: null });
    s.msg({ type: "result", request: "c2", ok: true, error: null, acknowledged: 2, session: null });
    expect(await ack).toEqual({ ok: true, error: null, acknowledged: 2, session: null });
    expect(c.state.verified).toBe(true); // results are in the seq stream: no gap
  });

  it("a refusal carries the station's reason; a wrong password leaves the user signed out", async () => {
    const c = client();
    const s = live(c);
    const p = c.command({ type: "sign_in", user: "nurse.kim", password: "wrong" });
    s.msg({ type: "result", request: "c1", ok: false, error: "wrong user name or password", acknowledged: null, session: null });
    expect(await p).toMatchObject({ ok: false, error: "wrong user name or password" });
    expect(c.state.session).toBeNull();
  });

  it("no answer within the timeout is a failure, and a late answer is ignored", async () => {
    const c = client("Ward 3", { commandTimeoutMs: 2000 });
    const s = live(c);
    const p = c.command({ type: "sign_in", user: "nurse.kim", password: "x" });
    for (let i = 0; i < 8; i++) {
      vi.advanceTimersByTime(250);
      s.update({});
    }
    expect(await p).toMatchObject({ ok: false, error: "no answer from Ward 3 within 2 s" });
    s.msg({ type: "result", request: "c1", ok: true, error: null, acknowledged: null, session: NURSE });
    expect(c.state.session).toBeNull();
  });

  it("the connection dropping before the answer fails the command and ends the session", async () => {
    const c = client();
    const s = live(c);
    const p = c.command({ type: "sign_in", user: "nurse.kim", password: "x" });
    s.msg({ type: "result", request: "c1", ok: true, error: null, acknowledged: null, session: NURSE });
    await p;
    const q = c.command({ type: "pause_audio", bed: "bed-1" });
    s.drop();
    expect(await q).toMatchObject({ ok: false, error: "connection to Ward 3 lost before it answered" });
    expect(c.state.session).toBeNull();
    expect(await c.command({ type: "pause_audio", bed: "bed-1" })).toMatchObject({ ok: false, error: "Ward 3 is not connected" });
  });
});

describe("envelope", () => {
  it("a result with no request id (the station could not read a message) is no gap and settles nothing", () => {
    const c = client();
    const s = live(c);
    s.msg({ type: "result", request: null, ok: false, error: "unknown message type", acknowledged: null, session: null });
    expect(s.sent).toEqual([]);
    expect(c.state.verified).toBe(true);
  });

  it("a snapshot of another schema is refused: the station is lost with the reason, never shown as live", () => {
    const c = client();
    const s = sockets[0];
    s.open();
    s.msg({ type: "snapshot", schema: 2, station: { name: "x", version: "9" }, ward: ward() });
    expect(c.state.phase).toBe("lost");
    expect(c.state.lostReason).toMatch(/schema 2/);
    expect(s.closed).not.toBeNull();
  });
});

describe("a station whose data this page cannot read", () => {
  // Every station is another program on the network (another Vigil version, a fault):
  // its data may not be what this page can apply or show. Only that station may suffer.
  it("an update that cannot be applied: that station is FEED LOST with why, its connection closed; the other still shows and sounds", () => {
    const a = client("Ward 3");
    const b = client("Ward 5");
    const sa = live(a, ward({ alarms: [alarms("bed-1", [alarm(1, "medium", T0 - 60_000)])] }));
    live(b, ward({ alarms: [alarms("bed-2", [alarm(7, "medium", T0 - 5_000)])] }));
    expect(() => sa.update({ readings: 5 as unknown as ReadingView[] })).not.toThrow();
    expect(a.state.phase).toBe("lost");
    expect(a.state.lostReason).toBe(UNREADABLE);
    expect(sa.closed).not.toBeNull();
    const m = model(a, b);
    // Nothing half-applied is shown: the lost station is one FEED LOST tile, sounding high.
    expect(m.tiles.filter((t) => t.stationName === "Ward 3").map((t) => t.lost)).toEqual([expect.stringContaining("FEED LOST")]);
    expect(m.alarms.map((x) => `${x.stationName}/${x.feedLost ? "lost" : x.alarm?.id}`)).toEqual(["Ward 3/lost", "Ward 5/7"]);
    expect(m.sounding).toBe("high");
    // The reconnect's snapshot brings it back.
    vi.advanceTimersByTime(BACKOFF_MS[0]);
    live(a);
    expect(a.state.lostReason).toBeNull();
  });

  it("a snapshot the page can apply but not show (an alarm without its signal) takes out that station only; the others still show and sound", () => {
    const a = client("Ward 3");
    const b = client("Ward 5");
    const bad = { ...alarm(1, "high", T0 - 1_000), signal: null } as unknown as ActiveAlarm;
    const sa = live(a, ward({ alarms: [alarms("bed-1", [bad])] }));
    live(b, ward({ alarms: [alarms("bed-2", [alarm(7, "medium", T0 - 5_000)])] }));
    expect(() => model(a, b)).toThrow();
    const built = centralModelIsolated([a.state, b.state], Date.now(), Date.now());
    expect(built.unreadable).toEqual([a.state]);
    for (const st of built.unreadable) if (st === a.state) a.closeUnreadable();
    expect(sa.closed).not.toBeNull();
    expect(a.state.lostReason).toBe(UNREADABLE);
    expect(built.model.alarms.map((x) => `${x.stationName}/${x.feedLost ? "lost" : x.alarm?.id}`)).toEqual(["Ward 3/lost", "Ward 5/7"]);
    expect(built.model.sounding).toBe("high");
    // From then on the plain model builds: the bad data is gone, not just skipped once.
    expect(() => model(a, b)).not.toThrow();
  });

  it("a well-behaved ward is never taken out", () => {
    const a = client("Ward 3");
    live(a, ward({ alarms: [alarms("bed-1", [alarm(1, "high", T0 - 1_000)])] }));
    const built = centralModelIsolated([a.state], Date.now(), Date.now());
    expect(built.unreadable).toEqual([]);
    expect(a.state.phase).toBe("live");
    expect(built.model.sounding).toBe("high");
  });
});

describe("browser setup", () => {
  it("keeps stations in sessionStorage only, and refuses a plain ws:// that is not loopback or a bad token", () => {
    const store = new Map<string, string>();
    const ss = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const ok = { name: "Ward 3", url: "wss://ward3.example/feed", token: "abc-123" };
    expect(checkEntry(ok, [])).toBeNull();
    expect(checkEntry({ ...ok, url: "ws://127.0.0.1:7000/feed" }, [])).toBeNull();
    expect(checkEntry({ ...ok, url: "ws://10.0.0.5:7000/feed" }, [])).toMatch(/127\.0\.0\.1/);
    expect(checkEntry({ ...ok, url: "https://ward3.example/feed" }, [])).toMatch(/wss/);
    expect(checkEntry({ ...ok, token: "a b" }, [])).toMatch(/token/);
    expect(checkEntry(ok, [ok])).toMatch(/already/);
    saveFeeds(ss, [ok]);
    expect(loadFeeds(ss)).toEqual([ok]);
    expect([...store.keys()]).toEqual([SESSION_KEY]);
  });
});

describe("wards read from the MQTT broker (site.json central.mqtt)", () => {
  const answer = (wards: { ward: string; liveness: BrokerLiveness; snapshot?: WardSnapshot; heard_ms?: number | null }[], p: Partial<BrokerWardsView> = {}): BrokerWardsView => ({
    broker: "mqtt://127.0.0.1:1883",
    site: "north",
    connected: true,
    error: null,
    wards: wards.map((w) => ({ ward: w.ward, liveness: w.liveness, heard_ms: w.heard_ms === undefined ? Date.now() : w.heard_ms, snapshot: w.snapshot ?? ward() })),
    ...p,
  });
  const poll = (prev: StationState[], a: BrokerWardsView) => applyBrokerAnswer(prev, a, Date.now(), Date.now());
  const bmodel = (sts: StationState[]) => centralModel(sts, Date.now(), Date.now());
  const LOST = /^FEED LOST \u2014 ward icu-3 via broker, since \d\d:\d\d:\d\d$/;

  it("shows every bed of every ward live, alarms by priority with sound, and says where the buttons would be that it cannot acknowledge", () => {
    const snap = ward({ alarms: [alarms("bed-2", [alarm(7, "medium", T0 - 60_000), alarm(8, "high", T0 - 5_000)])] });
    const sts = poll([], answer([{ ward: "icu-3", liveness: "online", snapshot: snap }, { ward: "icu-4", liveness: "online" }]));
    const m = bmodel(sts);
    expect(m.tiles.map((t) => `${t.stationName}/${t.bedLabel}`)).toEqual(["icu-3/Bed 1", "icu-3/Bed 2", "icu-4/Bed 1", "icu-4/Bed 2"]);
    expect(m.tiles.every((t) => t.live && !t.lost && t.hr?.text !== undefined && !t.hr.stale)).toBe(true);
    expect(m.alarms.map((a) => a.priority)).toEqual(["high", "medium"]);
    expect(m.sounding).toBe("high");
    // MQTT carries no sign-in (docs/mqtt.md): no Ack, no Pause, no Ack all — the words instead.
    expect(m.alarms.some(canAck)).toBe(false);
    expect(m.tiles.some(hasControls)).toBe(false);
    expect(m.tiles.every((t) => t.readOnly === BROKER_NO_COMMANDS)).toBe(true);
    expect(BROKER_NO_COMMANDS).toContain("acknowledge at the bedside or via its live feed");
    // The same alarm from a feed station can be acknowledged from here.
    const c = client();
    live(c, snap);
    const f = model(c);
    expect(f.alarms.filter(canAck)).toHaveLength(2);
    expect(f.tiles.every((t) => hasControls(t) && t.readOnly === null)).toBe(true);
  });

  for (const liveness of ["offline", "silent", "unknown", "no_broker"] as const) {
    it(`a ward gone ${liveness} is FEED LOST at each of its beds, high and sounding, values greyed, since it was last heard`, () => {
      let sts = poll([], answer([{ ward: "icu-3", liveness: "online" }, { ward: "icu-4", liveness: "online" }]));
      const heard = Date.now();
      vi.advanceTimersByTime(2_000);
      sts = poll(sts, answer([{ ward: "icu-3", liveness, heard_ms: heard }, { ward: "icu-4", liveness: "online" }]));
      const m = bmodel(sts);
      const lost = m.tiles.filter((t) => t.stationName === "icu-3");
      expect(lost).toHaveLength(2);
      for (const t of lost) {
        expect(t.lost).toMatch(LOST);
        expect(t.live).toBe(false);
        expect(t.hr?.text).toBe(t.bed === "bed-1" ? "72" : "80"); // the last known value, shown …
        expect(t.hr?.stale).toBe(true); // … greyed
        expect(t.highest).toBe("high");
        expect(t.readOnly).toBe(BROKER_NO_COMMANDS);
      }
      expect(sts[0].lostSinceWall).toBe(heard);
      const rows = m.alarms.filter((a) => a.feedLost);
      expect(rows.map((a) => a.bed)).toEqual(["bed-1", "bed-2"]);
      expect(rows.every((a) => a.priority === "high" && a.text === lost[0].lost)).toBe(true);
      expect(m.sounding).toBe("high");
      expect(m.tiles.filter((t) => t.stationName === "icu-4").every((t) => t.live)).toBe(true);
      // Answers keep coming with the same frozen state: its values age, never look just measured.
      const frozen = sts[0].ward.coreNowMs!;
      const snap = ward({ now_ms: frozen, latest: [reading("bed-1", MDC.HR, 72, { received_ms: frozen }), reading("bed-2", MDC.HR, 80, { received_ms: frozen })] });
      for (let i = 0; i < 8; i++) {
        vi.advanceTimersByTime(500);
        sts = poll(sts, answer([{ ward: "icu-3", liveness, heard_ms: heard, snapshot: snap }, { ward: "icu-4", liveness: "online" }]));
      }
      expect(bmodel(sts).tiles[0].hr?.ageMs).toBeGreaterThanOrEqual(4000);
      // Back online: live again, nothing lost.
      vi.advanceTimersByTime(500);
      sts = poll(sts, answer([{ ward: "icu-3", liveness: "online" }, { ward: "icu-4", liveness: "online" }]));
      expect(bmodel(sts).tiles.every((t) => t.live && !t.lost)).toBe(true);
      expect(bmodel(sts).sounding).toBeNull();
    });
  }

  it("a configured ward the broker has nothing of is 'connecting' for 3 s, then FEED LOST — never a quiet ward", () => {
    const empty = { now_ms: 0, beds: [], devices: [], latest: [], alarms: [], news2: [] };
    let sts = poll([], answer([{ ward: "icu-3", liveness: "unknown", snapshot: empty, heard_ms: null }]));
    let m = bmodel(sts);
    expect(m.tiles).toHaveLength(1);
    expect(m.tiles[0].lost).toBeNull();
    expect(m.tiles[0].unverified).toBe("connecting");
    vi.advanceTimersByTime(FEED_LOST_AFTER_MS + 100);
    sts = poll(sts, answer([{ ward: "icu-3", liveness: "unknown", snapshot: empty, heard_ms: null }]));
    m = bmodel(sts);
    expect(m.tiles[0].lost).toMatch(/^FEED LOST \u2014 ward icu-3 via broker, since /);
    expect(m.sounding).toBe("high");
  });

  it("the app's mirror not answering for 3 s loses every broker ward", () => {
    const sts = poll([], answer([{ ward: "icu-3", liveness: "online" }]));
    vi.advanceTimersByTime(FEED_LOST_AFTER_MS - 100);
    brokerTick(sts[0], Date.now());
    expect(bmodel(sts).tiles[0].live).toBe(true);
    vi.advanceTimersByTime(200);
    brokerTick(sts[0], Date.now());
    const m = bmodel(sts);
    expect(m.tiles.every((t) => t.lost?.match(LOST))).toBeTruthy();
    expect(sts[0].lostReason).toContain("no answer");
  });

  it("no ward known and no broker (or a mirror that could not start): the site is FEED LOST, with why", () => {
    let sts = poll([], answer([], { connected: false }));
    vi.advanceTimersByTime(FEED_LOST_AFTER_MS + 100);
    sts = poll(sts, answer([], { connected: false }));
    let m = bmodel(sts);
    expect(m.tiles).toHaveLength(1);
    expect(m.tiles[0].lost).toMatch(/^FEED LOST \u2014 site north via broker, since /);
    expect(m.sounding).toBe("high");
    sts = poll([], answer([], { connected: false, error: "mqtt: the password variable VIGIL_MQTT_X named by password_env is not set" }));
    m = bmodel(sts);
    expect(m.tiles[0].lost).toMatch(/^FEED LOST \u2014 site north via broker/);
    expect(sts[0].lostReason).toContain("VIGIL_MQTT_X");
  });
});
