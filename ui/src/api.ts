// The only module that touches @tauri-apps/api.

import { invoke } from "@tauri-apps/api/core";
import type {
  AboutView,
  AdmissionListItem,
  AdmissionView,
  AdmitRequest,
  AlarmRecord,
  AppInfo,
  BrokerWardsView,
  CentralFeedView,
  KeySetup,
  DeadLetter,
  DeviceInfoView,
  FlowsheetRequest,
  FlowsheetView,
  News2,
  News2Entry,
  PatientMatch,
  ScanResult,
  SessionState,
  SessionView,
  SyncView,
  TrendRequest,
  TrendView,
  UpdateCheck,
  WardSnapshot,
  WardUpdate,
} from "./contract";

export function appInfo(): Promise<AppInfo> {
  return invoke<AppInfo>("app_info");
}

/** The About panel: build, intended use, licence, SBOM, update setup. */
export function about(): Promise<AboutView> {
  return invoke<AboutView>("about");
}

/** Asks the site's update server (signed-in users; audited). */
export function updateCheck(): Promise<UpdateCheck> {
  return invoke<UpdateCheck>("update_check");
}

/** Installs the offered update and restarts Vigil (admin; `confirmBeds`: the monitored beds the confirmation named). */
export function updateInstall(confirmBeds: number | null): Promise<string> {
  return invoke<string>("update_install", { confirmBeds });
}

export function wardSnapshot(): Promise<WardSnapshot> {
  return invoke<WardSnapshot>("ward_snapshot");
}

/**
 * Subscribe to live updates. Resolves once the core has accepted the
 * subscription; updates then arrive through one long-poll (`ward_next`) at a
 * time, not a Tauri Channel: a Channel evaluates a new script per message and
 * WebKitGTK keeps memory per evaluated script (issue 16 soak; src-tauri/src/feed.rs).
 */
export async function wardSubscribe(onUpdate: (u: WardUpdate) => void): Promise<void> {
  const subscription = await invoke<number>("ward_subscribe");
  void pullUpdates(subscription, onUpdate);
}

async function pullUpdates(subscription: number, onUpdate: (u: WardUpdate) => void): Promise<void> {
  for (;;) {
    let u: WardUpdate | null;
    try {
      u = await invoke<WardUpdate | null>("ward_next", { subscription });
    } catch (e) {
      // Code only: messages could in principle carry patient data. The no-data
      // watchdog shows the gap on screen; try again shortly.
      console.error(`vigil: ward_next failed (${(e as { code?: string })?.code ?? "error"})`);
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    // Replaced by a newer subscription (the page subscribed again).
    if (u === null) return;
    onUpdate(u);
  }
}

export function admit(request: AdmitRequest): Promise<AdmissionView> {
  return invoke<AdmissionView>("admit", { request });
}

export function discharge(bed: string): Promise<void> {
  return invoke<void>("discharge", { bed });
}

/** False in a plain browser (vite dev without Tauri). */
export function inTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

/** Unlocks the encrypted store with a passphrase typed at the workstation. */
/** `confirm`: the new passphrase typed again (first start only). */
export function unlock(passphrase: string, confirm: string | null = null): Promise<AppInfo> {
  return invoke<AppInfo>("unlock", { passphrase, confirm });
}

export function keySetup(): Promise<KeySetup> {
  return invoke<KeySetup>("key_setup");
}

export function unlockWithKeychain(): Promise<AppInfo> {
  return invoke<AppInfo>("unlock_with_keychain");
}

// ------------------------------------------------------------------ alarms and NEWS2

// The core takes the actor from the signed-in session: no user argument.

export function alarmPause(bed: string): Promise<void> {
  return invoke<void>("alarm_pause", { bed });
}

/**
 * Acknowledges exactly these alarms (the ids the screen showed); ids the core no
 * longer shows are skipped. Resolves to how many it acknowledged.
 */
export function alarmAcknowledge(bed: string, alarms: number[]): Promise<number> {
  return invoke<number>("alarm_acknowledge", { bed, alarms });
}

/** Whether this workstation can sound alarms; the core shows "ALARM SOUND UNAVAILABLE" at every bed while not. */
export function alarmAudioStatus(available: boolean): Promise<void> {
  return invoke<void>("alarm_audio_status", { available });
}

export function alarmLog(bed: string, hours: number): Promise<AlarmRecord[]> {
  return invoke<AlarmRecord[]>("alarm_log", { bed, hours });
}

export function news2Enter(bed: string, entry: News2Entry): Promise<void> {
  return invoke<void>("news2_enter", { bed, entry });
}

export function news2History(bed: string): Promise<News2[]> {
  return invoke<News2[]>("news2_history", { bed });
}

// ------------------------------------------------------------------ Bluetooth devices

export function devicesScan(seconds: number): Promise<ScanResult[]> {
  return invoke<ScanResult[]>("devices_scan", { seconds });
}

export function deviceAssign(address: string, bed: string, kind: string): Promise<void> {
  return invoke<void>("device_assign", { address, bed, kind });
}

export function deviceRemove(address: string): Promise<void> {
  return invoke<void>("device_remove", { address });
}

/** A bed's trends: raw samples up to 2 h, summaries beyond; gaps are null values. */
export function trend(request: TrendRequest): Promise<TrendView> {
  return invoke<TrendView>("trend", { request });
}

/** A PDF report of a bed over [from, to] (ms), or of that range inside one stay; saved in Documents; its path. */
export function reportPdf(bed: string, from: number, to: number, admission?: string): Promise<string> {
  return invoke<string>("report_pdf", { bed, admission: admission ?? null, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
}

/** Every admission, current and past, newest first (clinicians; names only where the role may see them). */
export function admissions(): Promise<AdmissionListItem[]> {
  return invoke<AdmissionListItem[]>("admissions");
}

/** The flowsheet of a range: one column per local hour in the site's zone. */
export function flowsheet(request: FlowsheetRequest): Promise<FlowsheetView> {
  return invoke<FlowsheetView>("flowsheet", { request });
}

/** A scanned device's Device Information (serial, model, System ID), read by connecting briefly. */
export function deviceIdentify(address: string): Promise<DeviceInfoView> {
  return invoke<DeviceInfoView>("device_identify", { address });
}

/** Bonds with the device (BlueZ Pair()); the bonding state read back (null: the platform does not say). */
export function devicePair(address: string): Promise<boolean | null> {
  return invoke<boolean | null>("device_pair", { address });
}

// ------------------------------------------------------------------ FHIR upload

/** null when no FHIR server is configured. */
export function syncStatus(): Promise<SyncView | null> {
  return invoke<SyncView | null>("sync_status");
}

export function fhirFindPatient(mrn: string): Promise<PatientMatch[]> {
  return invoke<PatientMatch[]>("fhir_find_patient", { mrn });
}

/** Links the bed's current admission to a FHIR Patient ("Patient/<id>"). */
export function fhirLinkPatient(bed: string, patient: string): Promise<void> {
  return invoke<void>("fhir_link_patient", { bed, patient });
}

export function deadLetters(): Promise<DeadLetter[]> {
  return invoke<DeadLetter[]>("dead_letters");
}

/** Puts dead letters and parked readings (all when `ids` is null) back in the upload queue; how many. */
export function fhirRequeue(ids: number[] | null): Promise<number> {
  return invoke<number>("fhir_requeue", { ids });
}

/** A patient-specific alarm limit at a bed (reverts at discharge). `null` turns that side off. */
export function alarmSetLimit(bed: string, parameter: string, low: number | null, high: number | null): Promise<void> {
  return invoke<void>("alarm_set_limit", { bed, parameter, low, high });
}

// ------------------------------------------------------------------ users and sessions

export function session(): Promise<SessionState> {
  return invoke<SessionState>("session");
}

export function signIn(name: string, password: string): Promise<SessionView> {
  return invoke<SessionView>("sign_in", { name, password });
}

/** Input at the workstation: the idle lock starts again. */
export function sessionTouch(): Promise<void> {
  return invoke<void>("session_touch");
}

/** Break-glass: emergency clinical access for 15 minutes, with a reason. */
export function breakGlass(reason: string): Promise<SessionView> {
  return invoke<SessionView>("break_glass", { reason });
}

/** A shift PIN (4-8 digits) for the signed-in user (after a sign-in with the password). */
export function setPin(pin: string): Promise<void> {
  return invoke<void>("set_pin", { pin });
}

export function signOut(): Promise<void> {
  return invoke<void>("sign_out");
}

/** First start only (no user yet): the first admin, signed in. */
export function createFirstAdmin(name: string, password: string, confirm: string): Promise<SessionView> {
  return invoke<SessionView>("create_first_admin", { name, password, confirm });
}

/** The central station's feeds (site.json `central.feeds`; tokens from their variables). */
export function centralConfig(): Promise<CentralFeedView[]> {
  return invoke<CentralFeedView[]>("central_config");
}

/** The wards of site.json `central.mqtt` read from the broker; null when not configured. */
export function centralMqtt(): Promise<BrokerWardsView | null> {
  return invoke<BrokerWardsView | null>("central_mqtt");
}
