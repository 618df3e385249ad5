// Wiring: IPC -> state -> one render per animation frame.
// Never logs patient data or values: only error codes.

import "./style.css";
import * as api from "./api";
import type { AppInfo, SessionView, WardSnapshot, WardUpdate } from "./contract";
import { Dialogs } from "./dialogs";
import { AppView } from "./render";
import { AlarmAudio, AudioStatusReporter, soundAvailable } from "./audio";
import { audioStateText, idsToAcknowledge, wardSounding } from "./alarms";
import { applyBufferedUpdate, applySnapshot, applyUpdate, bedAlarms, createState, frameContext, latestReading, setAdmission, coreNow } from "./state";
import { SHOWN_CODES, ScreenLatency, percentile } from "./timing";
import { commandErrorText, toCommandError } from "./validate";
import { headerLabel, offersBreakGlass, sessionAttributes, sessionChanged, shouldTouch, showBreakGlass, showSetPin, showSignIn } from "./signin";
import { showUnlock } from "./unlock";
import { syncModel, syncUnknownModel } from "./sync";

const state = createState(performance.now());
const audio = new AlarmAudio();

// ---------------------------------------------------------------- render scheduling

let framePending = false;
let pendingSince = 0;

// Screen timing, for support and the 16-bed e2e check (times only, no patient
// data): how long an update waits until it is on screen, and how long a frame
// takes. A screen that falls behind shows here first. `latency` (timing.ts):
// reading measured -> numeric drawn, alarm started -> alarm drawn, on the wall
// clock (valid at --speed 1), for `./dev bench alarms`.
const TIMING_SAMPLES = 512;
const timing = { updates: 0, unpaintedSince: 0, toScreenMs: [] as number[], frameMs: [] as number[] };
const latency = new ScreenLatency();
function sample(list: number[], v: number): void {
  list.push(v);
  if (list.length > TIMING_SAMPLES) list.shift();
}
/** A performance.now() value as wall-clock epoch ms, comparable with the core's times at --speed 1. */
function wall(perf: number): number {
  return performance.timeOrigin + perf;
}
(window as unknown as { vigilScreenTiming: () => unknown }).vigilScreenTiming = () => ({
  updates: timing.updates,
  to_screen_ms: { p50: percentile(timing.toScreenMs, 50), p99: percentile(timing.toScreenMs, 99), max: percentile(timing.toScreenMs, 100) },
  frame_ms: { p50: percentile(timing.frameMs, 50), p99: percentile(timing.frameMs, 99), max: percentile(timing.frameMs, 100) },
  ...latency.stats(),
});

/** Debug builds (`tauri build --debug`, as the e2e tests use) and `vite` dev: see installTestHooks. */
const TEST_HOOKS = import.meta.env.TAURI_ENV_DEBUG === "true" || import.meta.env.DEV === true;
/** Test builds only: the screen keeps what it last drew. */
let screenFrozen = false;
/** Test builds only: acknowledgements sent (ids) and the core's answer (how many it acknowledged). */
const ackLog: { bed: string; ids: number[]; acknowledged: number }[] = [];

function frame(): void {
  framePending = false;
  const now = performance.now();
  if (!screenFrozen) view.render(state, now);
  const done = performance.now();
  if (!screenFrozen) latency.onFrame(wall(done));
  sample(timing.frameMs, done - now);
  if (timing.unpaintedSince) {
    sample(timing.toScreenMs, done - timing.unpaintedSince);
    timing.unpaintedSince = 0;
  }
  // Alarm sound: the highest audible priority over all beds (pure choice in alarms.ts).
  const ctx = frameContext(state, now);
  const playing = wardSounding(state.alarms.values(), ctx.coreNow, ctx.noData && ctx.hasData);
  audio.set(playing);
  const running = audio.running;
  view.setAudio({ running, playing, stateText: audioStateText(running, playing) });
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

// ---------------------------------------------------------------- who is acting

// The core holds the session and checks every action; the screen only shows
// who is signed in and hides what their role may not do (signin.ts).
let session: SessionView | null = null;
let hasUsers = true;
/** No user because the store was replaced after damage: no first-admin offer (see signin.ts). */
let usersLost = false;
/** An action waiting for a sign-in; it lapses after PENDING_MS. */
let pendingAction: { fn: () => void; at: number } | null = null;
const PENDING_MS = 60_000;

function setSession(s: SessionView | null): void {
  session = s;
  const attrs = sessionAttributes(s);
  document.body.dataset.session = attrs.session;
  document.body.dataset.may = attrs.may;
  glassUntil = s?.break_glass_s != null ? performance.now() + s.break_glass_s * 1000 : null;
  showUser();
  // Patient names, MRNs and DOBs come (or go) with the session: fetch the ward again.
  if (snapshot) void loadSnapshot();
}

/** When break-glass access ends (screen time), for the header's countdown; null: not under it. */
let glassUntil: number | null = null;

function showUser(): void {
  const left = glassUntil === null ? null : (glassUntil - performance.now()) / 1000;
  view.setUser(headerLabel(session, left), offersBreakGlass(session), session?.break_glass_s != null, !!session?.can_set_pin);
}

// The break-glass countdown moves every second; at zero the session poll brings the core's end.
setInterval(() => {
  if (glassUntil !== null) showUser();
}, 1000);

async function openSignIn(reason: string | null): Promise<void> {
  const s = await showSignIn({ signIn: api.signIn, createFirstAdmin: api.createFirstAdmin }, { has_users: hasUsers, users_lost: usersLost }, reason);
  if (!s) {
    pendingAction = null;
    return;
  }
  hasUsers = true;
  setSession(s);
  const next = pendingAction;
  pendingAction = null;
  if (next && performance.now() - next.at < PENDING_MS) next.fn();
}

/** Runs `fn` with a signed-in user; signs in first when no one is (then it goes ahead). */
function withSession(fn: () => void): void {
  if (session) {
    fn();
    return;
  }
  // Never run an acknowledgement long after the click that asked for it.
  pendingAction = { fn, at: performance.now() };
  void openSignIn("Sign in first; the action then goes ahead.");
}

function actionError(what: string, e: unknown): void {
  logError(what, e);
  view.showActionError(`Could not ${what}: ${commandErrorText(toCommandError(e))}`);
}

function bedView(bed: string) {
  return state.beds.find((x) => x.bed === bed);
}

// ---------------------------------------------------------------- FHIR

/** A FHIR server is configured: known from the first non-null sync_status. */
let fhirConfigured = false;
/** What the core said about itself (null until known): for About. */
let appInfo: AppInfo | null = null;
/** admission id -> "Patient/<id>" linked in this session (the core's AdmissionView does not carry it). */
const fhirLinks = new Map<string, string>();

function publishFhir(): void {
  view.setFhir({ configured: fhirConfigured, linked: fhirLinks });
  scheduleRender();
}

// ---------------------------------------------------------------- views

const dialogs = new Dialogs({
  admit: api.admit,
  discharge: api.discharge,
  user: () => session?.user ?? null,
  news2Enter: api.news2Enter,
  devicesScan: api.devicesScan,
  deviceIdentify: api.deviceIdentify,
  trend: api.trend,
  reportPdf: api.reportPdf,
  flowsheet: api.flowsheet,
  admissions: api.admissions,
  coreNow: () => coreNow(state, performance.now()) ?? Date.now(),
  deviceAssign: api.deviceAssign,
  deviceRemove: api.deviceRemove,
  limitsOf: (bed) => bedAlarms(state, bed)?.limits ?? [],
  setLimit: api.alarmSetLimit,
  bedLabel: (bed) => bedView(bed)?.label ?? bed,
  fhirConfigured: () => fhirConfigured,
  fhirFindPatient: api.fhirFindPatient,
  fhirLinkPatient: api.fhirLinkPatient,
  deadLetters: api.deadLetters,
  fhirRequeue: api.fhirRequeue,
  about: api.about,
  updateCheck: api.updateCheck,
  updateInstall: api.updateInstall,
  onLinked(_bed, admission, patient) {
    fhirLinks.set(admission, patient);
    publishFhir();
  },
  showError(text) {
    view.showActionError(text);
  },
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
    withSession(() => {
      const b = state.beds.find((x) => x.bed === bed);
      if (b) dialogs.openAdmit(b);
    });
  },
  discharge(bed) {
    withSession(() => {
      const b = state.beds.find((x) => x.bed === bed);
      if (b) dialogs.openDischarge(b);
    });
  },
  pause(bed) {
    audio.unlock();
    withSession(() => api.alarmPause(bed).catch((e) => actionError("pause the alarm audio", e)));
  },
  acknowledge(bed, seen) {
    audio.unlock();
    // `seen`: the alarms on screen at the click. Checked again when it runs (it may
    // wait for initials): only those ids, and none that has escalated since.
    withSession(() => {
      const { ids, escalated } = idsToAcknowledge(seen, bedAlarms(state, bed));
      if (escalated.length > 0) {
        view.showActionError(
          `Not acknowledged: ${escalated.length === 1 ? "an alarm has" : `${escalated.length} alarms have`} become more severe since ${escalated.length === 1 ? "it was" : "they were"} shown. Look again.`,
        );
      }
      if (ids.length === 0) return;
      api
        .alarmAcknowledge(bed, ids)
        .then((n) => {
          if (TEST_HOOKS) ackLog.push({ bed, ids, acknowledged: n });
        })
        .catch((e) => actionError("acknowledge", e));
    });
  },
  pauseAll() {
    audio.unlock();
    const beds = [...state.alarms.values()].filter((a) => a.active.length > 0).map((a) => a.bed);
    if (beds.length === 0) {
      view.showActionError("No alarms to pause.");
      return;
    }
    withSession(() => {
      for (const bed of beds) api.alarmPause(bed).catch((e) => actionError(`pause the alarm audio at ${bedView(bed)?.label ?? bed}`, e));
    });
  },
  openTrends(bed) {
    withSession(() => {
      const b = bedView(bed);
      if (b) dialogs.openTrends(b);
    });
  },
  openAdmissions() {
    withSession(() => dialogs.openAdmissions());
  },
  editLimits(bed) {
    withSession(() => {
      const b = bedView(bed);
      if (b) dialogs.openLimits(b);
    });
  },
  enterNews2(bed) {
    withSession(() => {
      const b = bedView(bed);
      if (b) dialogs.openNews2(b);
    });
  },
  addDevice(bed) {
    withSession(() => {
      const b = bedView(bed);
      if (b) dialogs.openAddDevice(b);
    });
  },
  pairDevice(_bed, device) {
    withSession(() => void api.devicePair(device).catch((e) => actionError("pair the device", e)));
  },
  removeDevice(bed, device) {
    withSession(() => {
      const b = bedView(bed);
      const d = state.devices.get(bed)?.get(device);
      if (b && d) dialogs.openRemoveDevice(b, d);
    });
  },
  loadAlarmLog(bed) {
    return api.alarmLog(bed, 24);
  },
  loadNews2History(bed) {
    return api.news2History(bed);
  },
  signIn() {
    void openSignIn(null);
  },
  setPin() {
    void showSetPin(api.setPin);
  },
  breakGlass() {
    void showBreakGlass(api.breakGlass).then((s) => {
      if (s) setSession(s);
    });
  },
  signOut() {
    void api
      .signOut()
      .then(() => setSession(null))
      .catch((e) => actionError("sign out", e));
  },
  enableAudio() {
    audio.unlock();
    scheduleRender();
  },
  openDeadLetters() {
    withSession(() => dialogs.openDeadLetters());
  },
  openAbout() {
    // The build facts come from the core; without them the panel still shows what it knows.
    void api.about().then(
      (a) => dialogs.openAbout(appInfo, a),
      () => dialogs.openAbout(appInfo, null),
    );
  },
  linkFhir(bed) {
    const b = bedView(bed);
    if (b) dialogs.openFhirLink(b);
  },
});

view.setUser(null);

// Sound needs a user gesture: any click or key press resumes the AudioContext.
for (const ev of ["pointerdown", "click", "keydown", "touchstart"]) {
  document.addEventListener(ev, () => void audio.unlock(), { capture: true, passive: true });
}
const firstUnlock = audio.unlock();

// The core raises "ALARM SOUND UNAVAILABLE" at every bed while this workstation
// cannot sound: reported once the core is up (start), then on every change.
const audioStatus = new AudioStatusReporter(api.alarmAudioStatus, 2000, (e) => logError("alarm_audio_status", e));
function reportAudio(): void {
  if (api.inTauri()) audioStatus.report(soundAvailable(audio.running, document.visibilityState));
  scheduleRender();
}
audio.onChange(reportAudio);
document.addEventListener("visibilitychange", reportAudio);

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
  const now = performance.now();
  applyUpdate(state, u, now);
  latency.onUpdate(wall(now), u.now_ms, shownReadingTimes(u), u.alarms ?? []);
  timing.updates += 1;
  if (!timing.unpaintedSince) timing.unpaintedSince = now;
  scheduleRender();
}

/** received_ms of the update's readings that are now a shown numeric's value (times only). */
function* shownReadingTimes(u: WardUpdate): Iterable<number> {
  const bed = view.openBed;
  for (const r of u.readings) {
    if (!SHOWN_CODES.has(r.mdc) || (bed !== null && r.bed !== bed)) continue;
    if (latestReading(state, r.bed, r.mdc) === r) yield r.received_ms;
  }
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
      appInfo = await api.appInfo();
      view.setAppInfo(appInfo);
      return;
    } catch (e) {
      view.setAppInfo(null);
      logError("app_info", e);
      await delay(2000);
    }
  }
}

/** How often the screen asks the core whether the session still runs (the idle lock ends it there). */
const SESSION_POLL_MS = 5000;
let lastTouch = -Infinity;

/** Who is signed in (the core keeps its session across a reload of the screen); first start offers the first admin. */
async function loadSession(): Promise<void> {
  for (;;) {
    try {
      const st = await api.session();
      hasUsers = st.has_users;
      usersLost = st.users_lost;
      setSession(st.signed_in);
      if (!st.has_users && !st.users_lost) void openSignIn(null);
      // Input tells the core the user is still there; the idle lock (site
      // session.idle_lock_s) is the core's: the screen follows within 5 s.
      for (const ev of ["pointerdown", "keydown", "wheel", "touchstart"]) {
        document.addEventListener(
          ev,
          () => {
            const now = performance.now();
            if (!shouldTouch(now, lastTouch, session !== null)) return;
            lastTouch = now;
            api.sessionTouch().catch((e) => logError("session_touch", e));
          },
          { capture: true, passive: true },
        );
      }
      setInterval(() => {
        api
          .session()
          .then((now) => {
            if (sessionChanged(session, now.signed_in)) setSession(now.signed_in);
          })
          .catch((e) => logError("session", e));
      }, SESSION_POLL_MS);
      return;
    } catch (e) {
      logError("session", e);
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
      latency.knowAlarms(snap.alarms ?? []);
      for (const u of buffered) {
        applyBufferedUpdate(state, u, snap.now_ms, now);
        if (u.now_ms > snap.now_ms) latency.knowAlarms(u.alarms ?? []);
      }
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

/** FHIR upload status every 5 s while a server is configured (the first null answer ends it). */
const SYNC_POLL_MS = 5000;
/** Consecutive failed polls before the indicator says the status is unknown. */
const SYNC_FAILS_UNKNOWN = 2;

async function pollSync(): Promise<void> {
  let fails = 0;
  for (;;) {
    try {
      const s = await api.syncStatus();
      fails = 0;
      if (s === null) {
        // The site configures FHIR at start-up: null now means null for this run.
        fhirConfigured = false;
        view.setSync(null);
        publishFhir();
        return;
      }
      if (!fhirConfigured) {
        fhirConfigured = true;
        publishFhir();
      }
      view.setSync(syncModel(s));
    } catch (e) {
      fails++;
      logError("sync_status", e);
      // Before we know a server is configured there is nothing to show; after, never leave "synced" up.
      if (fhirConfigured && fails >= SYNC_FAILS_UNKNOWN) view.setSync(syncUnknownModel(toCommandError(e)));
      // An older core without the command: stop asking.
      if (!fhirConfigured && /not found|unknown command/i.test(toCommandError(e).message)) return;
    }
    await delay(SYNC_POLL_MS);
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
    appInfo = await api.appInfo();
    view.setAppInfo(appInfo);
  } catch (e) {
    // Any other failure is retried by loadAppInfo below.
    if (toCommandError(e).code === "locked") {
      appInfo = await showUnlock({ unlock: api.unlock, keySetup: api.keySetup, unlockWithKeychain: api.unlockWithKeychain });
      view.setAppInfo(appInfo);
    }
  }
  void loadAppInfo();
  void loadSession();
  void pollSync();
  // After the first attempt to resume the AudioContext has settled (at most 1 s),
  // so a context the webview lets run at once is not reported as unavailable.
  await Promise.race([firstUnlock, delay(1000)]);
  reportAudio();
  // Subscribed (the core holds our receiver) before the snapshot is taken, so
  // nothing between the two is lost; updates that arrive first are buffered.
  // Both are async commands: issued together, their order is not guaranteed.
  await subscribe();
  await loadSnapshot();
  view.setError(null);
}

// ---------------------------------------------------------------- test hooks

/**
 * Debug builds only (`tauri build --debug`, as the e2e tests use): lets a test
 * hold the screen as drawn while data keeps arriving, to click on exactly what a
 * nurse would see when an alarm arrives between two frames. Never in a release build.
 */
function installTestHooks(): void {
  if (!TEST_HOOKS) return;
  (window as unknown as { vigilTest: unknown }).vigilTest = {
    /** Stop (true) or resume (false) drawing; the state behind the screen keeps updating. */
    freezeScreen(on: boolean): void {
      screenFrozen = on;
      scheduleRender();
    },
    /** The alarm state the UI holds for a bed (not what is drawn). */
    alarms(bed: string): { id: number; priority: string; acknowledged: boolean; latched: boolean }[] {
      return (bedAlarms(state, bed)?.active ?? []).map((a) => ({ id: a.id, priority: a.priority, acknowledged: a.acknowledged, latched: a.latched }));
    },
    /** Acknowledgements answered by the core, oldest first: the ids sent and how many it acknowledged. */
    acknowledgements(): { bed: string; ids: number[]; acknowledged: number }[] {
      return ackLog.slice();
    },
    /** Start the screen latency figures (window.vigilScreenTiming) afresh, e.g. after warm-up. */
    resetScreenTiming(): void {
      latency.reset();
      timing.toScreenMs.length = 0;
      timing.frameMs.length = 0;
    },
    /** What the UI last told the core about alarm sound (null: nothing yet). */
    audioReported(): boolean | null {
      return audioStatus.confirmed;
    },
    /**
     * How much the page holds (counts only, no patient data), for the soak's
     * memory check (issue 16): every one must stay bounded however long the
     * ward runs.
     */
    sizes(): Record<string, number> {
      let latest = 0;
      for (const m of state.latest.values()) latest += m.size;
      let devices = 0;
      for (const m of state.devices.values()) devices += m.size;
      let alarms = 0;
      for (const a of state.alarms.values()) alarms += a.active.length;
      return {
        domNodes: document.getElementsByTagName("*").length,
        beds: state.beds.length,
        latest,
        devices,
        alarms,
        news2: state.news2.size,
        buffered: buffered.length,
        timingSamples: timing.toScreenMs.length + timing.frameMs.length,
        ackLog: ackLog.length,
        fhirLinks: fhirLinks.size,
        ...latency.sizes(),
      };
    },
  };
}

installTestHooks();
scheduleRender();
void start();
