// The IPC contract between the Rust shell (src-tauri/src/commands.rs) and the UI.
// Field names match the serde output of vigil-core's `view` module exactly.

/** How Vigil is running; shown in the header so simulated data is never mistaken for real. */
export interface AppInfo {
  version: string;
  /** "simulated" when no Bluetooth adapter was found and the simulated ward runs. */
  mode: "simulated" | "real";
  scenario: string | null;
  /** Where the key came from: "keychain" | "passphrase (VIGIL_PASSPHRASE)" | "key file" */
  key_source: string;
  data_dir: string;
}

export type PatientCategory = "adult" | "paediatric" | "neonatal";

export interface AdmissionView {
  id: string;
  display_name: string;
  mrn: string;
  date_of_birth: string; // YYYY-MM-DD
  category: PatientCategory;
  admitted_at: string; // RFC 3339 UTC
  /** FHIR Patient reference ("Patient/<id>") when the core reports the link; absent in cores that do not. */
  fhir_patient?: string | null;
}

export type LinkState = "connecting" | "connected" | "receiving" | "stale" | "disconnected" | "adapter_off";

export interface DeviceView {
  bed: string;
  device: string;
  kind: string; // "heart_rate_strap" | "pulse_oximeter" | "thermometer" | "blood_pressure_cuff" | "respiration_sensor" | ...
  label: string; // "Heart rate strap"
  state: LinkState;
  battery: number | null; // percent
  technical: string | null; // e.g. "sensor contact lost" — a technical condition, the value is not valid
  source: "real" | "simulated";
  clock_offset_s: number | null;
  last_data_ms: number | null; // epoch ms UTC
  expected_interval_ms: number;
  /** Device Information Service, as the device reported it (null fields until read). */
  info?: DeviceInfoView;
}

export interface DeviceInfoView {
  manufacturer: string | null;
  model: string | null;
  serial: string | null;
  hardware: string | null;
  firmware: string | null;
  software: string | null;
  system_id: string | null;
}

export interface ReadingView {
  bed: string;
  device: string;
  mdc: number; // IEEE 11073 code: 147842 HR, 150456 SpO2, 149530 PR(ox), 151562 RR, 150364 Temp, 150021/150022/150023 NIBP sys/dia/mean, 149546 PR(cuff)
  value: number | null;
  special: "nan" | "nres" | "+inf" | "-inf" | "reserved" | null;
  unit: string; // UCUM: "/min", "%", "Cel", "mm[Hg]"
  received_ms: number; // epoch ms UTC when the gateway received it
  device_time: string | null; // device-local time as sent, if any
  /** After this many ms without a newer value the number is STALE and must not look live. */
  stale_after_ms: number;
  source: "real" | "simulated";
}

export interface BedView {
  bed: string; // "bed-1"
  label: string; // "Bed 1"
  admission: AdmissionView | null;
}

/** Full state, returned by `ward_snapshot` and sent again when beds change. */
export interface WardSnapshot {
  now_ms: number;
  beds: BedView[];
  devices: DeviceView[];
  latest: ReadingView[]; // latest reading per bed per mdc
  alarms: BedAlarmState[]; // one per bed the alarm engine knows
  news2: News2View[]; // latest NEWS2 per bed
}

/** Batched live update over a Tauri Channel, about every 250 ms. */
export interface WardUpdate {
  now_ms: number; // the core's clock; use it (not Date.now()) to compute data age
  readings: ReadingView[];
  devices: DeviceView[]; // only devices whose status changed
  beds: BedView[] | null; // set when an admission/discharge happened
  alarms: BedAlarmState[]; // full alarm state of each bed whose alarms changed
  news2: News2View[]; // new NEWS2 scores
}

export interface AdmitRequest {
  bed: string;
  display_name: string;
  mrn: string;
  date_of_birth: string; // YYYY-MM-DD
  category: PatientCategory;
}

/** Errors from commands arrive as this shape. */
export interface CommandError {
  code: string;
  message: string;
}

// ------------------------------------------------------------------ alarms
// Shapes from crates/alarms/src/{engine,limits}.rs (serde snake_case; tagged enums
// use the tag named in the comment). Times are RFC 3339 UTC strings.

/** IEC 60601-1-8 §6.1.2. */
export type Priority = "low" | "medium" | "high";

/** How the screen draws an alarm (IEC 60601-1-8 Table 3). */
export interface AlarmSignal {
  colour: "red" | "yellow" | "cyan";
  /** Flashing frequency; null = steady. */
  flash_hz: number | null;
  /** Fraction of each period the indicator is on (1 when steady). */
  duty: number;
}

export type AlarmParameter =
  | "heart_rate"
  | "pulse_rate"
  | "spo2"
  | "resp_rate"
  | "nibp_systolic"
  | "nibp_diastolic"
  | "nibp_mean"
  | "temperature";

export type TechnicalKind = "sensor_off" | "no_data" | "disconnected" | "low_battery" | "store_failure" | "delivery_failure";

/** `#[serde(tag = "type")]` */
export type AlarmKind =
  | { type: "physiological"; parameter: AlarmParameter; direction: "low" | "high" }
  | { type: "technical"; device: string; kind: TechnicalKind }
  | { type: "news2" };

export interface ActiveAlarm {
  id: number;
  kind: AlarmKind;
  priority: Priority;
  since: string;
  value: number | null; // PHI: screen only
  limit: number | null;
  /** The condition has ended; shown until acknowledged. */
  latched: boolean;
  acknowledged: boolean;
  /** Sounding now: condition present, not acknowledged, audio not paused. */
  audible: boolean;
  message: string; // PHI: screen only, never console
  signal: AlarmSignal;
}

/** `#[serde(tag = "state")]`; remaining_s is rounded up at the time the state was made. */
export type AudioState = { state: "normal" } | { state: "paused"; until: string; remaining_s: number; by: string };

export interface AlarmLimit {
  low: number | null;
  high: number | null;
  critical_low: number | null;
  critical_high: number | null;
  priority_low: Priority;
  priority_high: Priority;
  delay_s: number;
}

export interface ParameterLimit {
  parameter: AlarmParameter;
  label: string;
  unit: string;
  limit: AlarmLimit;
  patient_specific: boolean;
}

export interface BedAlarmState {
  bed: string;
  category: PatientCategory;
  /** Highest priority first, then oldest first. */
  active: ActiveAlarm[];
  audio: AudioState;
  highest: Priority | null;
  /** Highest priority of the audible alarms: what the speaker plays. */
  sounding: Priority | null;
  limits: ParameterLimit[];
}

/** `#[serde(tag = "type")]` inside AlarmEvent.event. */
export type AlarmEventKind =
  | { type: "started"; value: number | null; limit: number | null }
  | { type: "escalated"; from: Priority; value: number | null; limit: number | null }
  | { type: "latched" }
  | { type: "ended"; reason: "condition_ended" | "acknowledged" | "measurement_invalid" | "discharged" }
  | { type: "acknowledged"; user: string }
  | { type: "audio_paused"; user: string; until: string }
  | {
      type: "audio_resumed";
      reason:
        | { type: "expired" }
        | { type: "breakthrough"; alarm: number; priority: Priority }
        | { type: "operator"; user: string }
        | { type: "discharged" };
    }
  // A patient-specific limit set/cleared by `user`, or reverted at discharge (user null).
  | { type: "limit_changed"; parameter: AlarmParameter; from: AlarmLimit | null; to: AlarmLimit | null; user: string | null };

export interface AlarmEvent {
  id: number | null; // null for bed-level audio events
  bed: string;
  kind: AlarmKind | null;
  priority: Priority | null;
  event: AlarmEventKind;
  at: string;
  message: string; // PHI
}

/** One row of `alarm_log`. */
export interface AlarmRecord {
  id: number;
  bed: string;
  at: string;
  event: AlarmEvent;
}

// ------------------------------------------------------------------ NEWS2 (crates/alarms/src/news2.rs)

export type News2Param = "respiration_rate" | "spo2" | "air_or_oxygen" | "systolic" | "pulse" | "consciousness" | "temperature";

/** `#[serde(tag = "status")]` */
export type SubScore = { status: "scored"; points: number } | { status: "missing" } | { status: "stale"; age_s: number; last_points: number };

export type News2Risk = "low" | "low_medium" | "medium" | "high";

export interface News2 {
  at: string;
  scale: "scale1" | "scale2";
  /** All seven, chart order. */
  parameters: { parameter: News2Param; score: SubScore }[];
  /** Sum of the fresh sub-scores: a lower bound when incomplete. */
  total: number;
  any_single_3: boolean;
  risk: News2Risk;
  response: string;
  complete: boolean;
  missing_parameters: News2Param[];
  stale_parameters: News2Param[];
}

export interface News2View {
  bed: string;
  score: News2;
}

export type Consciousness = "alert" | "new_confusion" | "voice" | "pain" | "unresponsive";

/** `#[serde(tag = "parameter", content = "value")]` */
export type News2Entry =
  | { parameter: "consciousness"; value: Consciousness }
  | { parameter: "air_or_oxygen"; value: "air" | "oxygen" }
  | { parameter: "spo2_scale"; value: "scale1" | "scale2" }
  | { parameter: "respiration_rate" | "temperature" | "systolic"; value: number };

// ------------------------------------------------------------------ devices (scan/assign)

export interface ScanResult {
  address: string;
  name: string | null;
  rssi: number | null; // dBm
  kinds: string[]; // device kinds it can act as
  assigned_bed: string | null;
}

// ------------------------------------------------------------------ FHIR upload (crates/core/src/lib.rs)

/** `sync_status()`; null when no FHIR server is configured. */
export interface SyncView {
  server: string;
  /** The syncer's last attempt reached the server and it took what it was sent. */
  healthy: boolean;
  /** Readings in the outbox (including those waiting for a patient link). */
  pending: number;
  /** Readings of admissions not linked to a FHIR Patient: they wait, they are not uploaded. */
  waiting_for_patient: number;
  oldest_pending_age_s: number | null;
  dead_letters: number;
  /** Readings uploaded since Vigil started. */
  uploaded: number;
  /** Log-safe text of the last failure. */
  last_error: string | null;
}

/** `fhir_find_patient({mrn})`: a FHIR Patient found by MRN, for the nurse to confirm. */
export interface PatientMatch {
  reference: string; // "Patient/<id>"
  mrn: string | null;
  name: string;
  birth_date: string | null; // YYYY-MM-DD
  gender: string | null;
}

/** A reading as stored (vigil_model::Reading). */
export interface StoredReading {
  bed: string;
  admission: string | null;
  device: string;
  code: number; // MDC
  /** `#[serde(tag = "kind", content = "value")]` */
  value: { kind: "number"; value: number } | { kind: "special"; value: NonNullable<ReadingView["special"]> };
  unit: string;
  device_time: string | null;
  received: string; // RFC 3339 UTC
  source: "real" | "simulated";
}

/** `dead_letters()`: a reading the FHIR server refused, with its OperationOutcome text. */
export interface DeadLetter {
  id: number;
  at: string; // RFC 3339 UTC
  reading: StoredReading;
  reason: string;
}

// Commands (invoke):
//   app_info() -> AppInfo
//   ward_snapshot() -> WardSnapshot
//   ward_subscribe({ channel: Channel<WardUpdate> }) -> void
//   admit({ request: AdmitRequest }) -> AdmissionView
//   discharge({ bed: string }) -> void
//   alarm_pause({ bed, user }) -> void
//   alarm_acknowledge({ bed, alarm: number | null, user }) -> void     (null = every alarm at the bed)
//   alarm_log({ bed, hours }) -> AlarmRecord[]                         (oldest first)
//   news2_enter({ bed, entry: News2Entry, user }) -> void
//   news2_history({ bed }) -> News2[]                                  (oldest first)
//   devices_scan({ seconds }) -> ScanResult[]                          (nearest first; "no_adapter" in simulated mode)
//   device_assign({ address, bed, kind }) -> void
//   device_remove({ address }) -> void                                  (bare address or DeviceView.device, "ble-<address>")
//   sync_status() -> SyncView | null                                   (null: no FHIR server configured)
//   fhir_find_patient({ mrn }) -> PatientMatch[]                       ("no_fhir" when none configured)
//   fhir_link_patient({ bed, patient }) -> void                        (patient: "Patient/<id>")
//   dead_letters() -> DeadLetter[]
