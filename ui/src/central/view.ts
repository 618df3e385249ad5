// DOM for the central station: a header (stations, sign-in, sound), the multi-bed
// overview across stations and the alarm list across stations. What each value means
// is decided in ./model.ts (and the bedside's state.ts / alarms.ts); this only shows it.

import type { Priority } from "../contract";
import { flashHzText, flashPeriodS, flashPeriodValue, priorityShape, priorityText } from "../alarms";
import { flashingClasses, h, setAttr, setClass, setCustomProperty, setHidden, setText } from "../dom";
import { NO_VALUE, formatAge, formatHms } from "../format";
import type { NibpModel, NumericModel } from "../state";
import { type BedTile, type CentralAlarm, type CentralModel, canAck, hasControls } from "./model";
import type { StationState } from "./station";

export interface CentralActions {
  signIn(user: string, password: string): void;
  signOut(): void;
  /** Acknowledge these alarms (as drawn) at a station's bed. */
  acknowledge(station: number, bed: string, seen: { id: number; priority: Priority }[]): void;
  pause(station: number, bed: string): void;
  enableAudio(): void;
}

export interface AudioView {
  running: boolean;
  playing: Priority | null;
  stateText: string;
}

function numericText(m: NumericModel | NibpModel | null): { text: string; note: string; stale: boolean; age: string } {
  if (!m) return { text: NO_VALUE, note: "", stale: true, age: "" };
  const text = "meanText" in m ? `${m.text}${m.meanText ? ` ${m.meanText}` : ""}` : m.text;
  const age = m.ageMs === null ? "" : m.stale ? formatAge(m.ageMs) : "";
  return { text, note: m.note, stale: m.stale || m.status !== "value", age };
}

interface NumEls {
  root: HTMLElement;
  value: HTMLElement;
  foot: HTMLElement;
}

function numBox(kind: string, label: string, unit: string): NumEls {
  const value = h("span", { class: "num-value", testid: `c-${kind}`, text: NO_VALUE });
  const foot = h("span", { class: "cnum-foot" });
  const root = h(
    "div",
    { class: `cnum num-${kind}` },
    h("div", { class: "num-head" }, h("span", { class: "num-label", text: label }), h("span", { class: "num-unit", text: unit })),
    value,
    foot,
  );
  return { root, value, foot };
}

function setNum(n: NumEls, m: NumericModel | NibpModel | null): void {
  const t = numericText(m);
  setText(n.value, t.text);
  setClass(n.root, "is-stale", t.stale);
  setAttr(n.root, "data-stale", t.stale ? "true" : "false");
  setText(n.foot, [t.age ? `${t.age} old` : "", t.note].filter(Boolean).join(" \u00b7 "));
}

function alarmRow(a: CentralAlarm, withBed: boolean, actions: CentralActions): HTMLElement {
  const prio = h("span", { class: "alarm-prio", text: `${priorityShape(a.priority)} ${priorityText(a.priority)}` });
  const where = withBed ? h("span", { class: "calarm-where", text: `${a.stationName} \u00b7 ${a.bedLabel}` }) : null;
  const msg = h("span", { class: "alarm-msg", text: a.text });
  const since = h("span", { class: "calarm-since", text: formatHms(a.sinceMs) });
  const statusText = withBed ? a.statusLong : a.status;
  const status = statusText ? h("span", { class: "alarm-status", testid: "c-alarm-status", text: statusText }) : null;
  const flags = a.unverified ? h("span", { class: "alarm-status", text: "unverified" }) : null;
  let ack: HTMLElement | null = null;
  if (canAck(a) && a.alarm && a.bed) {
    ack = h("button", { class: "btn btn-ack", testid: "c-ack", text: "Ack" });
    const bed = a.bed;
    const seen = [{ id: a.alarm.id, priority: a.alarm.priority }];
    ack.addEventListener("click", (e) => {
      e.stopPropagation();
      actions.acknowledge(a.station, bed, seen);
    });
  }
  const root = h("div", { class: "alarm", testid: "c-alarm" }, prio, where, msg, since, status, flags, ack);
  const period = a.feedLost || a.alarm?.acknowledged || a.unverified ? null : flashPeriodS({ signal: { flash_hz: a.flashHz } });
  const flash = flashPeriodValue(period);
  root.className = `alarm prio-${a.priority}${a.feedLost ? " is-technical is-feed-lost" : ""}${a.alarm?.acknowledged ? " is-acked" : ""}${flashingClasses(flash)}`;
  setAttr(root, "data-priority", a.priority);
  setAttr(root, "data-key", a.key);
  setAttr(root, "data-flash-hz", flashHzText(period ? a.flashHz : null));
  setAttr(root, "data-acknowledged", a.alarm?.acknowledged ? "true" : "false");
  return root;
}

/** A string that changes whenever a row of the list would draw differently. */
function alarmsSignature(list: readonly CentralAlarm[]): string {
  return list
    .map((a) => `${a.key}|${a.priority}|${a.text}|${a.statusLong}|${a.unverified}|${a.alarm?.acknowledged}|${a.alarm?.latched}|${a.sinceMs}`)
    .join("\n");
}

class TileView {
  readonly root: HTMLElement;
  private readonly name: HTMLElement;
  private readonly label: HTMLElement;
  private readonly patient: HTMLElement;
  private readonly news2: HTMLElement;
  private readonly banner: HTMLElement;
  private readonly pause: HTMLElement;
  private readonly pauseBtn: HTMLButtonElement;
  private readonly ackAll: HTMLButtonElement;
  private readonly readOnly: HTMLElement;
  private readonly alarms: HTMLElement;
  private readonly nums: Record<"hr" | "spo2" | "rr" | "nibp" | "temp", NumEls>;
  private sig = "";
  private tile: BedTile | null = null;

  constructor(private readonly actions: CentralActions) {
    this.name = h("span", { class: "cstation", testid: "c-station" });
    this.label = h("span", { class: "bed-label", testid: "c-bed" });
    this.patient = h("span", { class: "patient-name" });
    this.news2 = h("span", { class: "cnews2" });
    this.pause = h("span", { class: "audio-status", testid: "c-audio" });
    this.pauseBtn = h("button", { class: "btn btn-pause", testid: "c-pause", text: "Pause audio" });
    this.ackAll = h("button", { class: "btn btn-ack-all", testid: "c-ack-all", text: "Ack all" });
    this.readOnly = h("span", { class: "creadonly", testid: "c-readonly" });
    this.pauseBtn.addEventListener("click", () => {
      if (this.tile?.bed) actions.pause(this.tile.station, this.tile.bed);
    });
    this.ackAll.addEventListener("click", () => {
      const t = this.tile;
      if (!t?.bed) return;
      const seen = t.alarms.filter((a) => a.alarm && (!a.alarm.acknowledged || a.alarm.latched)).map((a) => ({ id: a.alarm!.id, priority: a.alarm!.priority }));
      if (seen.length) actions.acknowledge(t.station, t.bed, seen);
    });
    this.banner = h("div", { class: "cbanner", testid: "c-feed-state" });
    this.nums = {
      hr: numBox("hr", "HR", "/min"),
      spo2: numBox("spo2", "SpO2", "%"),
      rr: numBox("rr", "RR", "/min"),
      nibp: numBox("nibp", "NIBP", "mmHg"),
      temp: numBox("temp", "Temp", "\u00b0C"),
    };
    this.alarms = h("div", { class: "alarm-list" });
    this.root = h(
      "div",
      { class: "ctile", testid: "c-tile" },
      h("div", { class: "tile-head" }, this.name, this.label, this.patient, this.news2),
      this.banner,
      h("div", { class: "cnums" }, ...Object.values(this.nums).map((n) => n.root)),
      h("div", { class: "ctile-foot" }, this.alarms, h("div", { class: "alarm-controls" }, this.pause, this.pauseBtn, this.ackAll, this.readOnly)),
    );
  }

  update(t: BedTile): void {
    this.tile = t;
    setText(this.name, t.stationName);
    setText(this.label, t.bedLabel);
    setText(this.patient, t.patient ?? (t.admitted ? "admitted" : t.bed ? "no patient" : ""));
    setClass(this.patient, "is-empty", t.patient === null);
    setText(this.news2, t.news2);
    setAttr(this.root, "data-station", t.stationName);
    setAttr(this.root, "data-bed", t.bed ?? "");
    setAttr(this.root, "data-live", t.live ? "true" : "false");
    setAttr(this.root, "data-lost", t.lost ? "true" : "false");
    setAttr(this.root, "data-alarm", t.highest);
    const top = t.alarms.find((a) => a.priority === t.highest && !a.alarm?.acknowledged);
    const period = top && !top.unverified ? flashPeriodS({ signal: { flash_hz: top.flashHz } }) : null;
    setClass(this.root, "is-flashing", period !== null);
    setCustomProperty(this.root, "--flash-period", flashPeriodValue(period));
    setClass(this.root, "is-not-live", !t.live);
    setText(this.banner, t.lost ?? t.unverified ?? "");
    setHidden(this.banner, !t.lost && !t.unverified);
    setClass(this.banner, "is-lost", t.lost !== null);
    setNum(this.nums.hr, t.hr);
    setNum(this.nums.spo2, t.spo2);
    setNum(this.nums.rr, t.rr);
    setNum(this.nums.nibp, t.nibp);
    setNum(this.nums.temp, t.temp);
    setText(this.pause, t.pause.paused ? `${t.pause.text}${t.pause.by ? ` (${t.pause.by})` : ""}` : t.pause.text);
    setClass(this.pause, "is-paused", t.pause.paused);
    const controls = hasControls(t);
    // A station that takes no commands says so where the buttons would be (never dead buttons).
    setText(this.readOnly, t.bed !== null ? t.readOnly ?? "" : "");
    setHidden(this.readOnly, t.bed === null || t.readOnly === null);
    setHidden(this.pauseBtn, !controls);
    setHidden(this.ackAll, !controls || !t.alarms.some((a) => a.alarm && (!a.alarm.acknowledged || a.alarm.latched)));
    const sig = alarmsSignature(t.alarms);
    if (sig !== this.sig) {
      this.sig = sig;
      this.alarms.replaceChildren(
        ...(t.alarms.length ? t.alarms.map((a) => alarmRow(a, false, this.actions)) : [h("div", { class: "alarm-none", text: "no alarms" })]),
      );
    }
  }
}

export class CentralView {
  readonly root: HTMLElement;
  private readonly beds: HTMLElement;
  private readonly alarmList: HTMLElement;
  private readonly stations: HTMLElement;
  private readonly results: HTMLElement;
  private readonly audioState: HTMLElement;
  private readonly audioBanner: HTMLElement;
  private readonly user: HTMLInputElement;
  private readonly password: HTMLInputElement;
  private readonly signedIn: HTMLElement;
  private readonly tiles = new Map<string, TileView>();
  private tileOrder = "";
  private alarmSig = "";
  readonly setupSlot: HTMLElement;

  constructor(private readonly actions: CentralActions) {
    this.stations = h("div", { class: "cstations", testid: "c-stations" });
    this.user = h("input", { attrs: { placeholder: "user", autocomplete: "username", "data-testid": "c-user", size: "12" } });
    this.password = h("input", { attrs: { type: "password", placeholder: "password", autocomplete: "current-password", "data-testid": "c-password", size: "12" } });
    const signIn = h("button", { class: "btn btn-primary", testid: "c-sign-in", text: "Sign in at all stations" });
    const signOut = h("button", { class: "btn", testid: "c-sign-out", text: "Sign out" });
    this.signedIn = h("span", { class: "csigned", testid: "c-signed-in" });
    const form = h("form", { class: "csignin" }, this.user, this.password, signIn, signOut, this.signedIn);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      actions.signIn(this.user.value.trim(), this.password.value);
      this.password.value = "";
    });
    signOut.addEventListener("click", (e) => {
      e.preventDefault();
      actions.signOut();
    });
    this.audioState = h("span", { class: "audio-state", testid: "audio-state", text: "blocked" });
    this.audioBanner = h("button", { class: "audio-banner btn btn-danger", testid: "c-enable-audio", text: "Click to enable alarm sound" });
    this.audioBanner.addEventListener("click", () => actions.enableAudio());
    this.beds = h("section", { class: "cbeds", testid: "c-beds" });
    this.alarmList = h("div", { class: "calarms-list", testid: "c-alarms" });
    this.results = h("div", { class: "cresults", testid: "c-results", attrs: { "aria-live": "polite" } });
    this.setupSlot = h("div", { class: "csetup-slot" });
    this.root = h(
      "div",
      { class: "app central" },
      h(
        "header",
        { class: "chead" },
        h("span", { class: "ctitle", text: "Vigil central station" }),
        this.stations,
        h("span", { class: "spacer" }),
        form,
        this.audioBanner,
        this.audioState,
      ),
      this.setupSlot,
      h("div", { class: "cbody" }, this.beds, h("aside", { class: "calarms" }, h("h2", { text: "Alarms, all stations" }), this.alarmList, this.results)),
    );
  }

  /** A command's outcome, newest first (kept to the last 6). */
  result(text: string, ok: boolean): void {
    const row = h("div", { class: `cresult ${ok ? "is-ok" : "is-error"}`, testid: "c-result", text: `${formatHms(Date.now())} ${text}` });
    this.results.prepend(row);
    while (this.results.childElementCount > 6) this.results.lastElementChild?.remove();
  }

  setAudio(a: AudioView): void {
    setText(this.audioState, a.stateText);
    setHidden(this.audioBanner, a.running);
  }

  render(model: CentralModel, stations: readonly StationState[]): void {
    // Stations: one chip each.
    this.stations.replaceChildren(
      ...stations.map((st) => {
        const word = st.phase === "live" ? (st.verified ? "live" : "resync") : st.phase === "lost" ? "LOST" : "connecting";
        const title = st.lostReason ?? (st.info ? `${st.info.name}, Vigil ${st.info.version}` : "");
        const chip = h("span", { class: `cchip is-${st.phase}`, testid: "c-station-chip", text: `${st.config.name}${st.config.via === "broker" ? " (broker)" : ""}: ${word}${st.session ? ` \u00b7 ${st.session.user}` : ""}`, attrs: { title } });
        setAttr(chip, "data-phase", st.phase);
        return chip;
      }),
    );
    const users = [...new Set(stations.map((s) => s.session?.user).filter(Boolean))];
    setText(this.signedIn, users.length ? `signed in: ${users.join(", ")}` : "not signed in");
    // Tiles, keyed (station, bed): rebuilt only when the set changes.
    const order = model.tiles.map((t) => t.key).join("\n");
    if (order !== this.tileOrder) {
      this.tileOrder = order;
      const next = new Map<string, TileView>();
      for (const t of model.tiles) next.set(t.key, this.tiles.get(t.key) ?? new TileView(this.actions));
      this.tiles.clear();
      for (const [k, v] of next) this.tiles.set(k, v);
      this.beds.replaceChildren(...[...next.values()].map((v) => v.root));
    }
    for (const t of model.tiles) this.tiles.get(t.key)?.update(t);
    const sig = alarmsSignature(model.alarms);
    if (sig !== this.alarmSig) {
      this.alarmSig = sig;
      this.alarmList.replaceChildren(
        ...(model.alarms.length ? model.alarms.map((a) => alarmRow(a, true, this.actions)) : [h("div", { class: "alarm-none", text: "no alarms" })]),
      );
    }
  }
}
