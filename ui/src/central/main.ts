// The central station page (central.html): one FeedClient per station, one model and
// one render per frame, sound by the highest priority. Never logs patient data.
//
// Where the stations come from: in the app (`vigil central`) the site's
// `central.feeds` through `central_config`, and the wards of `central.mqtt` read from the
// broker by the app's mirror (`central_mqtt`, ./broker.ts); in a plain browser a setup form
// whose entries (tokens included) live in sessionStorage only.

import "../style.css";
import "./central.css";
import * as api from "../api";
import { AlarmAudio } from "../audio";
import { audioStateText, idsToAcknowledge } from "../alarms";
import { h } from "../dom";
import { BROKER_POLL_MS, applyBrokerAnswer, brokerTick } from "./broker";
import { FeedClient } from "./feedclient";
import { type CentralModel, centralModelIsolated } from "./model";
import type { FeedConfig, StationState } from "./station";
import { checkEntry, loadFeeds, saveFeeds } from "./setup";
import { CentralView } from "./view";

const audio = new AlarmAudio();
let clients: FeedClient[] = [];
/** Wards read from the broker: after the feed stations (their indices follow the clients'). */
let brokerStations: StationState[] = [];

/** Every station the page shows: feeds first, then broker wards. */
function allStations(): StationState[] {
  return [...clients.map((c) => c.state), ...brokerStations];
}

function bedLabel(c: FeedClient, bed: string): string {
  return c.state.ward.beds.find((b) => b.bed === bed)?.label ?? bed;
}

const view = new CentralView({
  signIn(user, password) {
    void audio.unlock();
    if (!user || !password) {
      view.result("sign in: enter a user name and password", false);
      return;
    }
    for (const c of clients) {
      const name = c.state.config.name;
      void c.command({ type: "sign_in", user, password }).then((r) => {
        view.result(r.ok ? `${name}: signed in as ${r.session?.user ?? user}${r.session ? ` (${r.session.role})` : ""}` : `${name}: sign-in failed: ${r.error}`, r.ok);
        schedule();
      });
    }
  },
  signOut() {
    for (const c of clients) {
      if (!c.state.session) continue;
      const name = c.state.config.name;
      void c.command({ type: "sign_out" }).then((r) => {
        view.result(r.ok ? `${name}: signed out` : `${name}: sign-out failed: ${r.error}`, r.ok);
        schedule();
      });
    }
  },
  acknowledge(station, bed, seen) {
    void audio.unlock();
    const c = clients[station];
    if (!c) return;
    // Only alarms that were drawn, as they were drawn (an escalated one is held back).
    const { ids, escalated } = idsToAcknowledge(seen, c.state.ward.alarms.get(bed));
    const where = `${c.state.config.name} ${bedLabel(c, bed)}`;
    if (escalated.length) view.result(`${where}: an alarm escalated since it was shown: look again`, false);
    if (!ids.length) return;
    void c.command({ type: "acknowledge", bed, alarms: ids }).then((r) => {
      view.result(r.ok ? `${where}: acknowledged ${r.acknowledged ?? 0}` : `${where}: acknowledge refused: ${r.error}`, r.ok);
      schedule();
    });
  },
  pause(station, bed) {
    void audio.unlock();
    const c = clients[station];
    if (!c) return;
    const where = `${c.state.config.name} ${bedLabel(c, bed)}`;
    void c.command({ type: "pause_audio", bed }).then((r) => {
      view.result(r.ok ? `${where}: audio paused` : `${where}: audio pause refused: ${r.error}`, r.ok);
      schedule();
    });
  },
  enableAudio() {
    void audio.unlock();
  },
});

// ---------------------------------------------------------------- frames

let pending = false;
/** A frame failed to build or draw (said once until one succeeds). */
let drawFault = false;
function frame(): void {
  pending = false;
  const perf = performance.now();
  for (const st of brokerStations) brokerTick(st, perf);
  const stations = allStations();
  let model: CentralModel;
  try {
    const built = centralModelIsolated(stations, perf, Date.now());
    for (const st of built.unreadable) clients.find((c) => c.state === st)?.closeUnreadable();
    model = built.model;
  } catch {
    // Not one station's data: the page cannot show the wards at all. That is every
    // feed lost: sound it, and say so once.
    audio.set("high");
    if (!drawFault) view.result("display fault: this page cannot show the wards; check them at the bedside", false);
    drawFault = true;
    return;
  }
  // Sound first: a fault while drawing must not silence an alarm.
  audio.set(model.sounding);
  view.setAudio({ running: audio.running, playing: model.sounding, stateText: audioStateText(audio.running, model.sounding) });
  try {
    view.render(model, stations);
    drawFault = false;
  } catch {
    if (!drawFault) view.result("display fault: the wards shown may be out of date; alarms still sound", false);
    drawFault = true;
  }
}
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(frame);
}
// Ages, staleness and the lost-feed watchdog move with time, not only with messages;
// a timer also draws when rAF is throttled (a background window must still sound).
setInterval(frame, 250);

for (const ev of ["pointerdown", "click", "keydown", "touchstart"]) {
  document.addEventListener(ev, () => void audio.unlock(), { capture: true, passive: true });
}
void audio.unlock();
audio.onChange(schedule);

function start(feeds: FeedConfig[]): void {
  for (const c of clients) c.stop();
  clients = feeds.map((f) => new FeedClient(f, { onChange: schedule }));
  for (const c of clients) c.start();
  schedule();
}

// ---------------------------------------------------------------- browser setup form

function setupForm(): HTMLElement {
  const feeds = loadFeeds(sessionStorage);
  const name = h("input", { attrs: { placeholder: "station name", "data-testid": "c-setup-name" } });
  const url = h("input", { attrs: { placeholder: "wss://host:port/feed", "data-testid": "c-setup-url", size: "32" } });
  const token = h("input", { attrs: { type: "password", placeholder: "feed token", "data-testid": "c-setup-token" } });
  const add = h("button", { class: "btn", testid: "c-setup-add", text: "Add station" });
  const msg = h("span", { class: "csetup-msg", testid: "c-setup-msg" });
  const list = h("ul", { class: "csetup-list" });
  const draw = () =>
    list.replaceChildren(
      ...feeds.map((f, i) => {
        const rm = h("button", { class: "btn", text: "Remove" });
        rm.addEventListener("click", (e) => {
          e.preventDefault();
          feeds.splice(i, 1);
          saveFeeds(sessionStorage, feeds);
          draw();
          start(feeds);
        });
        return h("li", {}, `${f.name} \u2014 ${f.url} `, rm);
      }),
    );
  const form = h(
    "form",
    { class: "csetup", testid: "c-setup" },
    h("strong", { text: "Stations (kept in this tab only): " }),
    name,
    url,
    token,
    add,
    msg,
    list,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const entry: FeedConfig = { name: name.value.trim(), url: url.value.trim(), token: token.value.trim() };
    const why = checkEntry(entry, feeds);
    msg.textContent = why ?? "";
    if (why) return;
    feeds.push(entry);
    saveFeeds(sessionStorage, feeds);
    name.value = url.value = token.value = "";
    draw();
    start(feeds);
  });
  draw();
  start(feeds);
  return form;
}

document.getElementById("app")!.append(view.root);

/**
 * Asks the app's broker mirror for every ward, BROKER_POLL_MS after the previous answer
 * (never two at once). Not configured (null): asked once, never again.
 */
function pollBroker(first: boolean): void {
  api.centralMqtt().then(
    (answer) => {
      if (answer === null) {
        if (first && !clients.length) view.result('no stations configured: add site.json "central": {"feeds": [...]} or {"mqtt": {...}} (see README)', false);
        return;
      }
      if (first && answer.error) view.result(`broker ${answer.broker}: ${answer.error}`, false);
      brokerStations = applyBrokerAnswer(brokerStations, answer, performance.now(), Date.now());
      schedule();
      setTimeout(() => pollBroker(false), BROKER_POLL_MS);
    },
    // A failing command: the broker stations' watchdog shows them lost after 3 s; keep asking.
    () => setTimeout(() => pollBroker(false), BROKER_POLL_MS),
  );
}

if (api.inTauri()) {
  api.centralConfig().then(
    (feeds) => {
      for (const f of feeds) if (f.error) view.result(`${f.name}: ${f.error}`, false);
      start(feeds.map((f) => ({ name: f.name, url: f.url, token: f.token, error: f.error })));
      pollBroker(true);
    },
    (e: unknown) => view.result(`cannot read the central station configuration: ${(e as { message?: string })?.message ?? String(e)}`, false),
  );
} else {
  view.setupSlot.append(setupForm());
}
schedule();
