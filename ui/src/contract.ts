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
}

/** Batched live update over a Tauri Channel, about every 250 ms. */
export interface WardUpdate {
  now_ms: number; // the core's clock; use it (not Date.now()) to compute data age
  readings: ReadingView[];
  devices: DeviceView[]; // only devices whose status changed
  beds: BedView[] | null; // set when an admission/discharge happened
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

// Commands (invoke):
//   app_info() -> AppInfo
//   ward_snapshot() -> WardSnapshot
//   ward_subscribe({ channel: Channel<WardUpdate> }) -> void
//   admit({ request: AdmitRequest }) -> AdmissionView
//   discharge({ bed: string }) -> void
