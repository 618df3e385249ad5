// The IPC contract between the Rust shell (src-tauri/src/commands.rs) and the UI.
//
// Every type here is generated from the Rust type the command returns or takes,
// by ts-rs (`#[derive(TS)]`), into ./generated when `cargo test` runs. Do not
// write shapes by hand: change the Rust type, run `cargo test`, and commit the
// regenerated ./generated files (`./dev test` fails when they are out of date).
// UI code imports from this file only.
//
// Numbers: Rust's 64-bit integers (ids, epoch ms) arrive as plain JSON numbers.
// Times: DateTime<Utc> fields are RFC 3339 UTC strings; the views' `*_ms` fields
// are epoch milliseconds UTC.

// ------------------------------------------------------------------ app, ward (vigil-core `view`)

/** How Vigil is running (`mode` is "simulated" or "real"); shown in the header so simulated data is never mistaken for real. */
export type { AppInfo } from "./generated/AppInfo";
export type { AboutView } from "./generated/AboutView";
export type { UpdateSetup } from "./generated/UpdateSetup";
export type { UpdateCheck } from "./generated/UpdateCheck";
export type { SiteFile } from "./generated/SiteFile";
export type { KeySetup } from "./generated/KeySetup";
export type { KeyChoice } from "./generated/KeyChoice";
export type { SiteRole } from "./generated/SiteRole";
export type { DeviceInfoView } from "./generated/DeviceInfoView";
export type { DeviceKind } from "./generated/DeviceKind";
export type { LinkState } from "./generated/LinkState";
export type { ReadingView } from "./generated/ReadingView";
export type { Source } from "./generated/Source";
export type { Special } from "./generated/Special";
export type { PatientCategory } from "./generated/PatientCategory";
export type { AdmitRequest } from "./generated/AdmitRequest";
/** Errors from commands arrive as this shape (src-tauri/src/commands.rs `CmdError`). */
export type { CommandError } from "./generated/CommandError";

export type { AdmissionView } from "./generated/AdmissionView";
export type { BedView } from "./generated/BedView";
export type { DeviceView } from "./generated/DeviceView";
/** Full state, returned by `ward_snapshot` and sent again when beds change. */
export type { WardSnapshot } from "./generated/WardSnapshot";
/** Batched live update, pulled with ward_next (about every 250 ms; alarms at once). */
export type { WardUpdate } from "./generated/WardUpdate";

// ------------------------------------------------------------------ alarms (vigil-alarms engine.rs, limits.rs)

export type { Priority } from "./generated/Priority";
export type { AlarmSignal } from "./generated/AlarmSignal";
export type { Colour } from "./generated/Colour";
export type { AlarmParameter } from "./generated/AlarmParameter";
export type { AlarmPatientCategory } from "./generated/AlarmPatientCategory";
export type { TechnicalKind } from "./generated/TechnicalKind";
export type { Direction } from "./generated/Direction";
export type { AlarmKind } from "./generated/AlarmKind";
export type { ActiveAlarm } from "./generated/ActiveAlarm";
export type { AudioState } from "./generated/AudioState";
export type { AlarmLimit } from "./generated/AlarmLimit";
export type { ParameterLimit } from "./generated/ParameterLimit";
export type { BedAlarmState } from "./generated/BedAlarmState";
export type { AlarmEventKind } from "./generated/AlarmEventKind";
export type { EndReason } from "./generated/EndReason";
export type { ResumeReason } from "./generated/ResumeReason";
export type { AlarmEvent } from "./generated/AlarmEvent";
/** One row of `alarm_log` (vigil-store). */
export type { AlarmRecord } from "./generated/AlarmRecord";

// ------------------------------------------------------------------ NEWS2 (vigil-alarms news2.rs; News2Entry: vigil-core alarming.rs)

export type { News2 } from "./generated/News2";
export type { News2View } from "./generated/News2View";
export type { News2Param } from "./generated/News2Param";
export type { ParamScore } from "./generated/ParamScore";
export type { SubScore } from "./generated/SubScore";
export type { News2Risk } from "./generated/News2Risk";
export type { SpO2Scale } from "./generated/SpO2Scale";
export type { Consciousness } from "./generated/Consciousness";
export type { AirOrOxygen } from "./generated/AirOrOxygen";
export type { News2Entry } from "./generated/News2Entry";

// ------------------------------------------------------------------ devices (scan/assign; vigil-core)

export type { ScanResult } from "./generated/ScanResult";

// ------------------------------------------------------------------ trends (vigil-core `trends`)

/** `trend({ request })`: a bed's parameters over a range (raw samples up to 2 h, summaries beyond). */
export type { TrendRequest } from "./generated/TrendRequest";
export type { TrendView } from "./generated/TrendView";
export type { TrendSeries } from "./generated/TrendSeries";
export type { TrendMark } from "./generated/TrendMark";

// ------------------------------------------------------------------ past admissions and the flowsheet (vigil-core `review`)

/** `admissions()`: every stay, newest first; `display_name` only where the role may see it. */
export type { AdmissionListItem } from "./generated/AdmissionListItem";
/** `flowsheet({ request })`: one column per local hour (site zone, DST right), hourly medians, NEWS2, alarms. */
export type { FlowsheetRequest } from "./generated/FlowsheetRequest";
export type { FlowsheetView } from "./generated/FlowsheetView";
export type { News2HourView } from "./generated/News2HourView";
export type { News2ScoreView } from "./generated/News2ScoreView";
export type { News2PartView } from "./generated/News2PartView";
export type { News2EntryView } from "./generated/News2EntryView";
export type { FlowColumnView } from "./generated/FlowColumnView";
export type { FlowRowView } from "./generated/FlowRowView";
export type { FlowCellView } from "./generated/FlowCellView";

// ------------------------------------------------------------------ FHIR upload (vigil-core, vigil-store, vigil-model)

/** `sync_status()`; null when no FHIR server is configured. */
export type { SyncView } from "./generated/SyncView";
/** `fhir_find_patient({mrn})`: a FHIR Patient found by MRN, for the nurse to confirm. */
export type { PatientMatch } from "./generated/PatientMatch";
/** `dead_letters()`: a reading the FHIR server refused (or that was parked), with the reason. */
export type { DeadLetter } from "./generated/DeadLetter";
export type { DeadLetterKind } from "./generated/DeadLetterKind";
/** A reading as stored (vigil_model::Reading). */
export type { StoredReading } from "./generated/StoredReading";
export type { ReadingValue } from "./generated/ReadingValue";

// Commands (invoke):
//   app_info() -> AppInfo
//   about() -> AboutView; update_check() -> UpdateCheck; update_install({ confirmBeds }) -> string
//     ("updates_off", "forbidden", "update_needs_confirmation", "update_signature", "update")
//   unlock({ passphrase }) -> AppInfo                                  ("weak_passphrase" under 8 characters)
//   ward_snapshot() -> WardSnapshot
//   ward_subscribe() -> u64 (subscription); ward_next({ subscription }) -> WardUpdate | null (long-poll)
//   admit({ request: AdmitRequest }) -> AdmissionView
//   discharge({ bed: string }) -> void
//   alarm_pause({ bed, user }) -> void
//   alarm_acknowledge({ bed, alarms: number[], user }) -> number       (acknowledges exactly those ids still shown; returns how many)
//   alarm_audio_status({ available: boolean }) -> void                 (false: "ALARM SOUND UNAVAILABLE" at every bed)
//   alarm_log({ bed, hours }) -> AlarmRecord[]                         (oldest first)
//   alarm_set_limit({ bed, parameter: AlarmParameter, low: number | null, high: number | null, user }) -> void
//   news2_enter({ bed, entry: News2Entry, user }) -> void
//   news2_history({ bed }) -> News2[]                                  (oldest first)
//   devices_scan({ seconds }) -> ScanResult[]                          (nearest first; "no_adapter" in simulated mode)
//   device_assign({ address, bed, kind }) -> void
//   device_remove({ address }) -> void                                  (bare address or DeviceView.device, "ble-<address>")
//   device_pair({ address }) -> boolean | null                           (bond through BlueZ; bonded as read back)
//   device_set_clock({ address }) -> void                              (Current Time Service: the workstation's local time)
//   device_identify({ address }) -> DeviceInfoView                     (reads DIS over a short link: serial, model, System ID)
//   trend({ request: TrendRequest }) -> TrendView                      (clinicians; gaps are null values; `admission`: kept inside that stay)
//   report_pdf({ bed, admission: string | null, from, to }) -> string   (clinicians; the saved PDF's path)
//   admissions() -> AdmissionListItem[]                                 (clinicians; newest first)
//   flowsheet({ request: FlowsheetRequest }) -> FlowsheetView           (clinicians; hours in the site's zone)
//   sync_status() -> SyncView | null                                   (null: no FHIR server configured)
//   fhir_find_patient({ mrn }) -> PatientMatch[]                       ("no_fhir" when none configured)
//   fhir_link_patient({ bed, patient }) -> void                        (patient: "Patient/<id>")
//   dead_letters() -> DeadLetter[]
//   fhir_requeue({ ids: number[] | null }) -> number                   (null: all; back in the upload queue, each sent once)

// ------------------------------------------------------------------ users and sessions (vigil-core `auth`, `guarded`)

export type { Role } from "./generated/Role";
/** Everything a user can ask for; the core checks each against the signed-in user's role. */
export type { Action } from "./generated/Action";
/** The signed-in user: name, role and what they may do. */
export type { SessionView } from "./generated/SessionView";
// The live feed (docs/feed.md): envelope for central stations and integration engines.
export type { FeedMessage } from "./generated/FeedMessage";
export type { FeedCommand } from "./generated/FeedCommand";
export type { StationInfo } from "./generated/StationInfo";
/** `session`: who is signed in (null: nobody) and whether any user exists yet. */
export type { SessionState } from "./generated/SessionState";

// ------------------------------------------------------------------ central station (vigil-core `central`, issue 17)

/** `central_config()`: the feeds of site.json `central.feeds`, each with its token from the environment or why not. */
export type { CentralFeedView } from "./generated/CentralFeedView";
/** `central_mqtt()`: the wards of site.json `central.mqtt` as the broker has them (null: not configured). */
export type { BrokerWardsView } from "./generated/BrokerWardsView";
export type { BrokerWardView } from "./generated/BrokerWardView";
/** A broker ward's liveness: anything but `online` is a lost ward. */
export type { BrokerLiveness } from "./generated/BrokerLiveness";
