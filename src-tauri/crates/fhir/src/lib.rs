//! Vigil readings as FHIR R4 and their exactly-once upload.
//!
//! * [`mapping`]: [`vigil_model::Reading`] → `Observation` per the HL7 Personal Health Device
//!   IG and the R4 vital-signs profiles (blood-pressure panels, `dataAbsentReason` for
//!   special values, deterministic identifiers), sensor and gateway `Device`s.
//! * [`audit_event`]: a record of the signed audit trail → `AuditEvent` (uploaded by `core::audit_upload` with conditional create on the record name).
//! * [`bundle`]: batch Bundles of conditional creates (`ifNoneExist`; Devices by conditional
//!   update) and their responses.
//! * [`client`]: [`FhirClient`]: rustls (TLS ≥ 1.2, site CA bundle), bearer or SMART Backend
//!   Services ([`auth`]), batch upload, Patient search by MRN.
//! * [`sync`]: [`Syncer`] drains an [`Outbox`] in insertion order with backoff, `Retry-After`,
//!   dead letters (content refusals only), parking of an entry that keeps failing, and a
//!   [`SyncStatus`]; [`outbox::MemoryOutbox`] for tests. Redirects are never followed.
//!
//! Exactly once = deterministic identifier + conditional create + ack only after 200/201:
//! whatever is lost (request, response, process), a retry cannot duplicate.
//!
//! No token, key, patient identity or measured value reaches a log line or an error's
//! `Display` (see [`error`]).

pub mod audit_event;
pub mod auth;
pub mod bundle;
pub mod client;
pub mod error;
pub mod mapping;
pub mod outbox;
pub mod sync;

pub use auth::{Auth, Secret, SigningKey, SmartBackend};
pub use client::{ClientConfig, DeviceRef, FhirClient, PatientSummary};
pub use error::{Error, Outcome};
pub use mapping::{DeviceInfo, ObservationContext};
pub use outbox::{MemoryOutbox, Outbox, OutboxError, OutboxItem, OutboxStats, SetAside, SetAsideKind};
pub use sync::{Backoff, PassReport, SyncConfig, SyncError, SyncStatus, Syncer};
