//! Device sources: where GATT bytes come from.
//!
//! Every source (the simulated ward, and Bluetooth LE through btleplug) speaks
//! the same [`DeviceEvent`]s into one bounded channel. Sources deliver raw
//! GATT payloads, never decoded values: decoding happens once, in the
//! pipeline, so simulated and real bytes go through the same decoder.

pub mod ble;
pub mod sim;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_gatt::Characteristic;
use vigil_model::{BedId, DeviceId, LinkState, Source};

/// What kind of bedside device this is, for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DeviceKind {
    HeartRateStrap,
    PulseOximeter,
    Thermometer,
    BloodPressureCuff,
    WeightScale,
    GlucoseMeter,
    /// Vigil's simulated respiration sensor (no standard BLE profile exists).
    RespirationSensor,
}

impl DeviceKind {
    pub fn label(self) -> &'static str {
        match self {
            DeviceKind::HeartRateStrap => "Heart rate strap",
            DeviceKind::PulseOximeter => "Pulse oximeter",
            DeviceKind::Thermometer => "Thermometer",
            DeviceKind::BloodPressureCuff => "Blood pressure cuff",
            DeviceKind::WeightScale => "Weight scale",
            DeviceKind::GlucoseMeter => "Glucose meter",
            DeviceKind::RespirationSensor => "Respiration sensor",
        }
    }
}

/// A device assigned to a bed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceDescriptor {
    pub bed: BedId,
    pub device: DeviceId,
    pub kind: DeviceKind,
    pub source: Source,
    /// How often a value is expected; older than this (with some slack) is stale.
    pub expected_interval: std::time::Duration,
}

/// Everything a source can tell the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    /// A device is now assigned to a bed (sent before its first payload).
    Attached(DeviceDescriptor),
    /// Link state changed.
    Link {
        device: DeviceId,
        state: LinkState,
        at: DateTime<Utc>,
    },
    /// A GATT notification / indication / read value arrived.
    Payload {
        device: DeviceId,
        characteristic: Characteristic,
        bytes: Vec<u8>,
        received: DateTime<Utc>,
    },
    /// The device sent a value of a characteristic its assigned kind's
    /// profile does not include (see [`accepts`]): dropped by the source,
    /// undecoded, and counted downstream. `characteristic` is its UUID.
    Refused {
        device: DeviceId,
        characteristic: String,
        at: DateTime<Utc>,
    },
    /// The link's security as the platform reports it, once per connection
    /// (before the device's first value): `bonded` is `None` where the
    /// platform does not say.
    Security {
        device: DeviceId,
        bonded: Option<bool>,
        at: DateTime<Utc>,
    },
}

impl DeviceEvent {
    /// The device the event is about.
    pub fn device(&self) -> &DeviceId {
        match self {
            DeviceEvent::Attached(d) => &d.device,
            DeviceEvent::Link { device, .. }
            | DeviceEvent::Payload { device, .. }
            | DeviceEvent::Refused { device, .. }
            | DeviceEvent::Security { device, .. } => device,
        }
    }
}

/// Whether a device assigned as `kind` may send values of `ch`: the
/// measurement characteristics of that kind's profile, and what any device
/// is read for (Device Information, Battery Level, Current Time). Anything
/// else is refused, never decoded: a device assigned as a heart-rate strap
/// must not put SpO2 or glucose into a bed's record (issue 13). Applied by
/// the BLE source to notifications and by the core to every source's payloads.
pub fn accepts(kind: DeviceKind, ch: Characteristic) -> bool {
    match ch.uuid16() {
        Some(u) => ble::accepts_uuid16(kind, u),
        // The vendor characteristic of Vigil's simulated respiration sensor.
        None => kind == DeviceKind::RespirationSensor,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("device source stopped: the pipeline is gone")]
    PipelineClosed,
    #[error("unknown simulation scenario '{0}'")]
    UnknownScenario(String),
}

/// A device source runs until cancelled, sending events into `tx`.
///
/// `tx` is bounded: a source awaits when the pipeline is busy rather than
/// dropping a reading.
#[allow(async_fn_in_trait)]
pub trait DeviceSource: Send + 'static {
    fn source(&self) -> Source;
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<DeviceEvent>,
        cancel: CancellationToken,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SourceError>> + Send>>;
}
