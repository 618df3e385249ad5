// Wiring: IPC -> state -> one render per animation frame.
// Never logs patient data or values: only error codes.

import "./style.css";
import * as api from "./api";
import type { WardSnapshot, WardUpdate } from "./contract";
import { Dialogs } from "./dialogs";
import { AppView } from "./render";
import { applyBufferedUpdate, applySnapshot, applyUpdate, createState, setAdmission } from "./state";
import { commandErrorText, toCommandError } from "./validate";
import { showUnlock } from "./unlock";

const state = createState(performance.now());

// ---------------------------------------------------------------- render scheduling

let framePending = false;
let pendingSince = 0;

function frame(): void {
  framePending = false;
  view.render(state, performance.now());
}

function scheduleRender(): void {
  if (framePending) return;
  framePending = true;
  pendingSince = performance.now();
  requestAnimationFrame(frame);
}

// Ages, the clock and the no-data watchdog advance without updates: tick 4x a second.
// If animation frames are throttled (hidden window), render anyway so time still moves.
setInterval(() => {
  if (framePending && performance.now() - pendingSince > 1000) frame();
  else scheduleRender();
}, 250);

// ---------------------------------------------------------------- views

const dialogs = new Dialogs({
  admit: api.admit,
  discharge: api.discharge,
  onAdmitted(bed, admission) {
    setAdmission(state, bed, admission);
    scheduleRender();
  },
  onDischarged(bed) {
    setAdmission(state, bed, null);
    scheduleRender();
  },
});

const view = new AppView({
  openBed(bed) {
    view.showBed(state, bed);
    scheduleRender();
  },
  back() {
    view.showOverview();
    scheduleRender();
  },
  admit(bed) {
    const b = state.beds.find((x) => x.bed === bed);
    if (b) dialogs.openAdmit(b);
  },
  discharge(bed) {
    const b = state.beds.find((x) => x.bed === bed);
    if (b) dialogs.openDischarge(b);
  },
});

document.getElementById("app")!.append(view.root);

document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (dialogs.isOpen) dialogs.close();
  else if (view.openBed) {
    view.showOverview();
    scheduleRender();
  }
});

// ---------------------------------------------------------------- data

let snapshot: WardSnapshot | null = null;
const buffered: WardUpdate[] = [];
const MAX_BUFFERED = 40;

function onUpdate(u: WardUpdate): void {
  if (!snapshot) {
    // Subscribed before the snapshot arrived: hold on to the batch.
    buffered.push(u);
    if (buffered.length > MAX_BUFFERED) buffered.shift();
    return;
  }
  applyUpdate(state, u, performance.now());
  scheduleRender();
}

function logError(what: string, e: unknown): void {
  // Code only: messages could in principle carry patient data.
  console.error(`vigil: ${what} failed (${toCommandError(e).code})`);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function loadAppInfo(): Promise<void> {
  for (;;) {
    try {
      view.setAppInfo(await api.appInfo());
      return;
    } catch (e) {
      view.setAppInfo(null);
      logError("app_info", e);
      await delay(2000);
    }
  }
}

async function subscribe(): Promise<void> {
  for (;;) {
    try {
      await api.wardSubscribe(onUpdate);
      return;
    } catch (e) {
      logError("ward_subscribe", e);
      view.setError(`Cannot subscribe to live data: ${commandErrorText(toCommandError(e))}. Retrying\u2026`);
      await delay(2000);
    }
  }
}

async function loadSnapshot(): Promise<void> {
  for (;;) {
    try {
      const snap = await api.wardSnapshot();
      const now = performance.now();
      applySnapshot(state, snap, now);
      for (const u of buffered) applyBufferedUpdate(state, u, snap.now_ms, now);
      buffered.length = 0;
      snapshot = snap;
      scheduleRender();
      return;
    } catch (e) {
      logError("ward_snapshot", e);
      view.setError(`Cannot load the ward: ${commandErrorText(toCommandError(e))}. Retrying\u2026`);
      await delay(2000);
    }
  }
}

async function start(): Promise<void> {
  if (!api.inTauri()) {
    view.setAppInfo(null);
    view.setError("Not running inside the Vigil app: no monitor core to talk to.");
    scheduleRender();
    return;
  }
  try {
    view.setAppInfo(await api.appInfo());
  } catch (e) {
    // Any other failure is retried by loadAppInfo below.
    if (toCommandError(e).code === "locked") view.setAppInfo(await showUnlock(api.unlock));
  }
  void loadAppInfo();
  // Subscribe first so nothing between the snapshot and the subscription is lost.
  const sub = subscribe();
  await loadSnapshot();
  await sub;
  view.setError(null);
}

scheduleRender();
void start();
