// One WebSocket per watched station (issue 17): the token through the subprotocols,
// the feed's rules applied by ./station.ts, reconnect with backoff, and commands with
// request ids and a timeout. The socket and the clocks are injected so the rules can be
// tested without a server.

import type { SessionView } from "../contract";
import {
  type Effects,
  type FeedConfig,
  type StationState,
  UNREADABLE_CLOSE,
  backoffMs,
  createStation,
  onClose,
  onMessage,
  onOpen,
  tick,
} from "./station";
import { type FeedCommand, type CommandBody, feedProtocols, parseFeedMessage, validToken } from "./wire";

/** The part of the browser's WebSocket this client uses. */
export interface SocketLike {
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export interface ClientOptions {
  socket?: SocketFactory;
  /** performance.now() */
  perf?: () => number;
  /** Date.now() */
  wall?: () => number;
  /** A command with no result within this is reported as failed (default 5 s). */
  commandTimeoutMs?: number;
  /** The watchdog's period (default 250 ms, the feed's heartbeat). */
  tickMs?: number;
  /** Called whenever the station's state changed (render on the next frame). */
  onChange?: () => void;
}

/** What a command came back with. */
export interface CommandOutcome {
  ok: boolean;
  /** Readable reason when !ok (from the station, or "no answer …", "not connected …"). */
  error: string | null;
  acknowledged: number | null;
  session: SessionView | null;
}

/** The central station's own refusal before anything is sent (same words as the server's). */
export const SIGN_IN_FIRST = "sign in at the central station first";

const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

/**
 * A connection attempt with no WebSocket handshake by then is given up and tried again
 * (a dropped SYN or a stalled server would otherwise hold it for the OS's TCP timeout).
 */
export const CONNECT_TIMEOUT_MS = 5000;

interface Pending {
  resolve: (o: CommandOutcome) => void;
  timer: ReturnType<typeof setTimeout>;
  type: CommandBody["type"];
}

export class FeedClient {
  readonly state: StationState;
  private ws: SocketLike | null = null;
  private attempt = 0;
  private nextId = 0;
  private readonly pending = new Map<string, Pending>();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private tickTimer: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private connectStarted = 0;
  private readonly socket: SocketFactory;
  private readonly perf: () => number;
  private readonly wall: () => number;
  private readonly commandTimeoutMs: number;
  private readonly tickMs: number;
  private readonly changed: () => void;

  constructor(config: FeedConfig, opts: ClientOptions = {}) {
    this.socket = opts.socket ?? ((url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike);
    this.perf = opts.perf ?? (() => performance.now());
    this.wall = opts.wall ?? (() => Date.now());
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.tickMs = opts.tickMs ?? 250;
    this.changed = opts.onChange ?? (() => {});
    this.state = createStation(config, this.perf(), this.wall());
  }

  /** Connects, and keeps the watchdog running until stop(). */
  start(): void {
    const { token } = this.state.config;
    if (token === null || !validToken(token)) {
      // Never an open-looking station: it is shown as a lost feed with the reason.
      onClose(this.state, this.state.config.error ?? "no feed token");
      this.changed();
      return;
    }
    this.tickTimer = setInterval(() => this.watch(), this.tickMs);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.drop(1000, "central station closed");
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.stopped) return;
    let ws: SocketLike;
    try {
      ws = this.socket(this.state.config.url, feedProtocols(this.state.config.token ?? ""));
    } catch (e) {
      this.closed(null, `cannot connect: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.ws = ws;
    this.connectStarted = this.perf();
    ws.onopen = () => {
      if (this.ws !== ws) return;
      onOpen(this.state, this.perf());
      this.changed();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const msg = typeof ev.data === "string" ? parseFeedMessage(ev.data) : null;
      const snapshotsBefore = this.state.snapshots;
      this.apply(onMessage(this.state, msg, this.perf(), this.wall()));
      // A snapshot on this connection: the next loss starts the backoff from 1 s again.
      if (this.state.snapshots > snapshotsBefore) this.attempt = 0;
      this.changed();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.closed(ws, closeText(ev.code, ev.reason));
    };
    ws.onerror = () => {
      // The close event follows with the code; nothing to do here.
    };
  }

  /** The watchdog: silence and stalled connection attempts (commands time out on their own timers). */
  private watch(): void {
    const before = this.state.phase;
    const perf = this.perf();
    this.apply(tick(this.state, perf));
    if (this.ws && !this.state.open && perf - this.connectStarted > CONNECT_TIMEOUT_MS) this.drop(4000, "no answer to the connection attempt");
    if (this.state.phase !== before) this.changed();
  }

  /**
   * The page could not show this station's data (model.ts `centralModelIsolated` has
   * marked it lost): close the connection, so the reconnect brings a fresh snapshot.
   */
  closeUnreadable(): void {
    this.drop(4000, UNREADABLE_CLOSE);
    this.changed();
  }

  private apply(e: Effects): void {
    if (e.send) this.send(e.send);
    // A result with no request id answers a message the station could not read: none of ours is waiting on it.
    if (e.result && e.result.request !== null) this.settle(e.result.request, e.result);
    if (e.close) this.drop(4000, e.close);
  }

  private send(m: FeedCommand): boolean {
    if (!this.ws || !this.state.open) return false;
    try {
      this.ws.send(JSON.stringify(m));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes our socket on purpose (silent feed, bad schema, stop) and handles it as closed now. */
  private drop(code: number, reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    this.closed(ws, reason);
  }

  private closed(ws: SocketLike | null, reason: string): void {
    if (ws !== null && this.ws !== ws) return;
    this.ws = null;
    onClose(this.state, reason);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: `connection to ${this.state.config.name} lost before it answered`, acknowledged: null, session: null });
      this.pending.delete(id);
    }
    this.changed();
    if (this.stopped || this.reconnectTimer !== null) return;
    this.reconnectTimer = setTimeout(() => this.connect(), backoffMs(this.attempt));
    this.attempt++;
  }

  /** The delay before the next reconnect attempt would be scheduled (for the screen and tests). */
  get nextBackoffMs(): number {
    return backoffMs(this.attempt);
  }

  /**
   * Sends a command and resolves with its result, or with a failure if the station does
   * not answer within the timeout, the connection drops first, or it cannot be sent.
   * Acknowledge and audio pause need the central user signed in at this station.
   */
  command(body: CommandBody): Promise<CommandOutcome> {
    const fail = (error: string) => Promise.resolve<CommandOutcome>({ ok: false, error, acknowledged: null, session: null });
    if (!this.state.open || this.state.snapshots === 0) return fail(`${this.state.config.name} is not connected`);
    if ((body.type === "acknowledge" || body.type === "pause_audio") && this.state.session === null) return fail(SIGN_IN_FIRST);
    const id = `c${++this.nextId}`;
    const msg = { ...body, id } as FeedCommand;
    return new Promise<CommandOutcome>((resolve) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        resolve({ ok: false, error: `no answer from ${this.state.config.name} within ${Math.round(this.commandTimeoutMs / 1000)} s`, acknowledged: null, session: null });
        this.changed();
      }, this.commandTimeoutMs);
      this.pending.set(id, { resolve, timer, type: body.type });
      if (!this.send(msg)) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve({ ok: false, error: `could not send to ${this.state.config.name}`, acknowledged: null, session: null });
      }
    });
  }

  private settle(request: string, r: { ok: boolean; error: string | null; acknowledged: number | null; session: SessionView | null }): void {
    const p = this.pending.get(request);
    if (!p) return; // timed out already, or not ours
    this.pending.delete(request);
    clearTimeout(p.timer);
    if (p.type === "sign_in" && r.ok) this.state.session = r.session;
    if (p.type === "sign_out" && r.ok) this.state.session = null;
    p.resolve({
      ok: r.ok,
      error: r.ok ? null : r.error ?? "refused (no reason given)",
      acknowledged: r.acknowledged,
      session: r.session,
    });
  }
}

/** A close event in words (RFC 6455 §7.4.1 codes). */
export function closeText(code: number, reason: string): string {
  const why = reason ? `: ${reason}` : "";
  switch (code) {
    case 1000:
      return `connection closed${why}`;
    case 1001:
      return `station going away${why}`;
    case 1006:
      // Also what a browser reports for a refused handshake (HTTP 401: wrong or no token).
      return "connection failed or dropped (refused token, unreachable or network)";
    case 1008:
      return `closed by the station (policy${why})`;
    default:
      return `connection closed (code ${code}${why})`;
  }
}
