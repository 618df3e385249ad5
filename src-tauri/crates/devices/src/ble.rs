//! Real Bluetooth LE bedside devices, through btleplug.
//!
//! [`BleSource`] is the [`DeviceSource`] for real devices (`Source::Real`). It
//! is given the ward's [`Assignment`]s (device address → bed, kind) and, for
//! each, keeps a link up for as long as it runs. Devices are added, moved and
//! removed while it runs through its [`BleControl`] ([`BleSource::control`]):
//! each link has its own cancellation, so changing one device never touches
//! the links of the others.
//!
//! 1. `Attached` for every assigned device at start (before any data), and
//!    for a device attached later when it is attached, with the kind's
//!    [`expected_interval`].
//! 2. `Connecting`; finds the device (scanning only while a device is not yet
//!    known to the platform), connects, discovers services: `Connected`.
//! 3. Reads the Device Information Service and the Battery Level and sends
//!    them as `Payload`s of their own characteristics: the pipeline decodes
//!    them like any other value, so real and simulated devices are learnt the
//!    same way. Where the device has the Current Time Service (0x1805) with a
//!    readable Current Time (0x2A2B), its clock is read too, stamped with the
//!    middle of the read: the core learns the device's clock offset from it
//!    before any stored record arrives.
//!    Right after `Connected`, the link's security (bonded or not, as the
//!    platform says: `ble/security.rs`) is sent as `Security`, before any value.
//! 4. Subscribes to the measurement characteristics of the kind's profile
//!    (HRS 0x2A37; PLXS 0x2A5F/0x2A5E; HTS 0x2A1C/0x2A1E; BLS 0x2A35/0x2A36;
//!    WSS 0x2A9D; GLS 0x2A18) and to Battery Level notifications where
//!    offered. A glucose meter is then asked for all its stored records through
//!    the Record Access Control Point (0x2A52, "report stored records / all").
//! 5. Only the assigned kind's profile is accepted ([`crate::accepts`]): a
//!    notification of any other characteristic (an "HR strap" sending SpO2)
//!    is never forwarded as a payload but reported as `Refused`, which the
//!    core counts on the device.
//!    Forwards every subscribed notification as raw bytes (`Payload`), stamped with the
//!    injected clock. `Receiving` is claimed only when the first live
//!    measurement that decodes to a value arrives: a device that connects but
//!    never sends (or sends only garbage) stays `Connected`, and the core's
//!    data-age watchdog does the rest. A stored record (one with a sequence
//!    number) claims nothing: it may be days old, and the core judges its age. Malformed payloads are forwarded all the same
//!    (the pipeline logs the decode error without patient data) and the link
//!    stays up.
//! 6. On link loss (`CentralEvent::DeviceDisconnected`, a periodic
//!    `is_connected` check, or the adapter powering off) it reports
//!    `Disconnected` / `AdapterOff` and reconnects by itself with exponential
//!    backoff (0.5 s doubling to 30 s by default), immediately once the adapter
//!    is powered on again. The per-peripheral notification stream does *not*
//!    end on disconnect with btleplug, which is why central events are watched.
//! 7. [`BleControl::detach`] stops that device's link only: it disconnects
//!    the device (releasing any scan it was waiting on) and sends nothing
//!    more about it; there is no "detached" event, the owner forgets the
//!    device itself. [`BleControl::attach`] of an address already attached
//!    elsewhere is a move: the old link is stopped (and the device
//!    disconnected) before the new one starts with a fresh `Attached`.
//!    Commands sent while the adapter is still being opened are applied to
//!    the assignment list and take effect when it opens.
//!
//! **Glucose records and duplicates.** Every RACP download sends *all* stored
//! records, so each reconnect re-sends records already received. They are all
//! forwarded: the Glucose Measurement carries a sequence number
//! (`vigil_gatt::Decoded::sequence`), and de-duplication by (device, sequence
//! number) is done downstream, in the core's ward state (seeded from the
//! store at start, so it survives restarts).
//!
//! **Platforms.** Only btleplug's platform-neutral API is used, so this builds
//! for BlueZ (Linux), WinRT (Windows) and CoreBluetooth (macOS). Devices are
//! matched by Bluetooth address; CoreBluetooth hides addresses, so there an
//! assignment's `address` is the platform peripheral id that [`scan`] reports.
//! btleplug has no pairing API. On Linux whether a link is bonded is read
//! from BlueZ over D-Bus, and [`pair`] asks BlueZ to bond (`ble/security.rs`);
//! other platforms report bonding as unknown and pair through the operating
//! system's Bluetooth settings.
//!
//! Also here: [`scan`] for the "Add device" screen, [`adapter_present`] to
//! choose between real and simulated devices, [`set_device_clock`] for
//! devices with a writable Current Time Service, and [`pair`].

mod backoff;
mod central;
mod link;
mod profile;
mod security;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use btleplug::api::{Central as _, CentralState, Peripheral as _, WriteType};
use chrono::NaiveDateTime;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vigil_model::{BedId, Clock, DeviceId, Source, SystemClock};

pub(crate) use profile::accepts as accepts_uuid16;
pub use profile::{expected_interval, kind_for_service, SUPPORTED_SERVICES};

/// Whether Vigil can run a device of this kind over Bluetooth LE (it has a
/// GATT profile: a respiration sensor, say, has none).
pub fn supports(kind: DeviceKind) -> bool {
    profile::profile(kind).is_some()
}

use crate::{DeviceDescriptor, DeviceEvent, DeviceKind, DeviceSource, SourceError};

/// One device assigned to a bed.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Bluetooth address "AA:BB:CC:DD:EE:FF" (any case, with or without
    /// colons); on macOS the peripheral id [`scan`] reported.
    pub address: String,
    pub bed: BedId,
    pub kind: DeviceKind,
    /// How often the device is expected to send; `None`: the kind's default
    /// ([`expected_interval`]).
    pub expected_interval: Option<Duration>,
}

impl Assignment {
    pub fn new(address: impl Into<String>, bed: impl Into<BedId>, kind: DeviceKind) -> Self {
        Assignment {
            address: address.into(),
            bed: bed.into(),
            kind,
            expected_interval: None,
        }
    }
}

/// How to run the Bluetooth LE source.
#[derive(Clone)]
pub struct BleConfig {
    pub assignments: Vec<Assignment>,
    /// Stamps received payloads and link changes.
    pub clock: Arc<dyn Clock>,
    /// First reconnect delay; doubles after each failure up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Longest wait for a connection (including service resolution).
    pub connect_timeout: Duration,
    /// How long to look (scan) for a device the platform does not know yet.
    pub find_timeout: Duration,
    /// Longest wait for one GATT operation (discover, read, subscribe, write).
    pub gatt_timeout: Duration,
    /// How often a connected link is double-checked with `is_connected`, in
    /// case a disconnect event is missed (e.g. bluetoothd restarted).
    pub link_check_every: Duration,
}

impl BleConfig {
    pub fn new(assignments: Vec<Assignment>, clock: Arc<dyn Clock>) -> Self {
        BleConfig {
            assignments,
            clock,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(35),
            find_timeout: Duration::from_secs(10),
            gatt_timeout: Duration::from_secs(10),
            link_check_every: Duration::from_secs(5),
        }
    }
}

impl Default for BleConfig {
    fn default() -> Self {
        BleConfig::new(Vec::new(), Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for BleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleConfig")
            .field("assignments", &self.assignments)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

/// Errors of the Bluetooth LE layer. Messages name devices by address and
/// never carry measurement values.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    #[error("no Bluetooth adapter")]
    NoAdapter,
    #[error("the Bluetooth adapter is switched off")]
    AdapterOff,
    #[error("device {0} not found")]
    NotFound(String),
    #[error("device {device} does not offer {what}")]
    Missing { device: String, what: String },
    #[error("{} has no Bluetooth LE profile", .0.label())]
    UnsupportedKind(DeviceKind),
    #[error("invalid Bluetooth address '{0}'")]
    BadAddress(String),
    #[error("device {0} is assigned twice")]
    DuplicateAssignment(String),
    #[error("the Bluetooth source is not running")]
    Stopped,
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("pairing failed: {0}")]
    Pairing(String),
    #[error("bluetooth: {0}")]
    Btle(#[from] btleplug::Error),
}

const ID_PREFIX: &str = "ble-";

/// The stable device id of a Bluetooth LE device: "ble-" + its address.
pub fn device_id(address: &str) -> DeviceId {
    format!(
        "{ID_PREFIX}{}",
        normalize_address(address).unwrap_or_else(|_| address.to_string())
    )
}

/// The address in a [`device_id`] (or the argument itself when it is a bare address).
pub fn address_of(id: &str) -> &str {
    id.strip_prefix(ID_PREFIX).unwrap_or(id)
}

/// "aa:bb:cc:dd:ee:ff" / "aabbccddeeff" → "AA:BB:CC:DD:EE:FF"; anything
/// else non-empty (a CoreBluetooth peripheral id) is kept as given.
pub fn normalize_address(address: &str) -> Result<String, BleError> {
    let a = address.trim();
    if a.is_empty() || a.chars().any(char::is_whitespace) {
        return Err(BleError::BadAddress(address.to_string()));
    }
    Ok(match a.parse::<btleplug::api::BDAddr>() {
        Ok(addr) => addr.to_string(),
        Err(_) => a.to_string(),
    })
}

/// Bluetooth LE devices assigned to beds; a [`DeviceSource`] with `Source::Real`.
pub struct BleSource {
    cfg: BleConfig,
    control: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
}

/// What a [`BleControl`] asks of the running source; each is acknowledged
/// once applied.
pub(crate) enum Command {
    Attach(Assignment, oneshot::Sender<()>),
    Detach(String, oneshot::Sender<()>),
}

/// Changes a [`BleSource`]'s assignments while it runs, one device at a time
/// (the other devices' links are left alone). Cheap to clone. Commands sent
/// before the source runs (or while it is still opening the adapter) are
/// applied when it gets to them; once the source has stopped they fail with
/// [`BleError::Stopped`].
#[derive(Clone)]
pub struct BleControl {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for BleControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleControl").finish_non_exhaustive()
    }
}

impl BleControl {
    /// Assigns a device: `Attached`, then its link starts. An address already
    /// attached to another bed (or as another kind) is moved: its link is
    /// stopped and started again with the new assignment. Attaching it again
    /// unchanged does nothing. Returns once the source has applied it.
    pub async fn attach(&self, mut a: Assignment) -> Result<(), BleError> {
        if profile::profile(a.kind).is_none() {
            return Err(BleError::UnsupportedKind(a.kind));
        }
        a.address = normalize_address(&a.address)?;
        let (done, applied) = oneshot::channel();
        self.tx
            .send(Command::Attach(a, done))
            .map_err(|_| BleError::Stopped)?;
        applied.await.map_err(|_| BleError::Stopped)
    }

    /// Removes a device: its link stops and the device is disconnected. Sends
    /// no event (the owner forgets the device). Returns once the link has
    /// stopped; an address that is not attached is fine.
    pub async fn detach(&self, address: &str) -> Result<(), BleError> {
        let address = normalize_address(address_of(address))?;
        let (done, applied) = oneshot::channel();
        self.tx
            .send(Command::Detach(address, done))
            .map_err(|_| BleError::Stopped)?;
        applied.await.map_err(|_| BleError::Stopped)
    }

    /// Whether the source has stopped (or was dropped without running).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl BleSource {
    /// Checks the assignments: every kind needs a BLE profile, every address
    /// must be valid and assigned once.
    pub fn new(mut cfg: BleConfig) -> Result<Self, BleError> {
        let mut seen = std::collections::HashSet::new();
        for a in &mut cfg.assignments {
            if profile::profile(a.kind).is_none() {
                return Err(BleError::UnsupportedKind(a.kind));
            }
            a.address = normalize_address(&a.address)?;
            if !seen.insert(a.address.to_ascii_uppercase()) {
                return Err(BleError::DuplicateAssignment(a.address.clone()));
            }
        }
        let (control, commands) = mpsc::unbounded_channel();
        Ok(BleSource {
            cfg,
            control,
            commands,
        })
    }

    /// The handle that attaches and detaches devices while the source runs.
    pub fn control(&self) -> BleControl {
        BleControl {
            tx: self.control.clone(),
        }
    }

    /// What the pipeline is told about each device, in assignment order.
    pub fn descriptors(&self) -> Vec<DeviceDescriptor> {
        self.cfg.assignments.iter().map(descriptor).collect()
    }
}

fn descriptor(a: &Assignment) -> DeviceDescriptor {
    DeviceDescriptor {
        bed: a.bed.clone(),
        device: device_id(&a.address),
        kind: a.kind,
        source: Source::Real,
        expected_interval: a.expected_interval.unwrap_or_else(|| expected_interval(a.kind)),
    }
}

impl DeviceSource for BleSource {
    fn source(&self) -> Source {
        Source::Real
    }

    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<DeviceEvent>,
        cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>> {
        let BleSource { cfg, commands, .. } = *self;
        Box::pin(central::run(cfg, commands, tx, cancel))
    }
}

/// A device found by [`scan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovered {
    /// What to put in an [`Assignment`]: the Bluetooth address (on macOS the
    /// peripheral id). Two devices with the same name differ here.
    pub address: String,
    /// Advertised name, if any.
    pub name: Option<String>,
    /// Signal strength in dBm (higher is nearer).
    pub rssi: i16,
    /// Supported health services it advertises (16-bit UUIDs).
    pub services: Vec<u16>,
    /// What it measures, one kind per supported service.
    pub kinds: Vec<DeviceKind>,
    /// Whether the platform holds a bond with it (`None`: does not say);
    /// see `ble/security.rs`.
    pub bonded: Option<bool>,
}

/// Scans for `duration` and lists the devices that advertise a supported
/// health service (HRS, PLXS, HTS, BLS, WSS, GLS), nearest (strongest RSSI)
/// first, one entry per address. Devices not heard during this scan (no
/// RSSI) are left out: they are not in range. Fails with
/// [`BleError::AdapterOff`] rather than switching the adapter on.
pub async fn scan(duration: Duration) -> Result<Vec<Discovered>, BleError> {
    let _one_at_a_time = central::SCAN_LOCK.lock().await;
    let adapter = central::one_off_adapter().await?;
    if adapter.adapter_state().await? != CentralState::PoweredOn {
        return Err(BleError::AdapterOff);
    }
    let filter = btleplug::api::ScanFilter {
        services: profile::supported_service_uuids(),
    };
    adapter.start_scan(filter).await?;
    tokio::time::sleep(duration).await;
    let peripherals = adapter.peripherals().await;
    if let Err(e) = adapter.stop_scan().await {
        tracing::debug!(error = %e, "stopping the scan failed");
    }
    let mut found: Vec<Discovered> = Vec::new();
    for p in peripherals? {
        let Some(props) = p.properties().await? else {
            continue;
        };
        let Some(rssi) = props.rssi else {
            continue;
        };
        // Filter here as well: a platform may ignore the scan filter, and
        // BlueZ merges the filters of all its clients.
        let mut services: Vec<u16> = props
            .services
            .iter()
            .filter_map(profile::short)
            .filter(|s| kind_for_service(*s).is_some())
            .collect();
        services.sort_unstable();
        services.dedup();
        if services.is_empty() {
            continue;
        }
        let address = central::peripheral_address(&p);
        if found.iter().any(|d| d.address == address) {
            continue;
        }
        let bonded = security::bonded(&p).await;
        found.push(Discovered {
            bonded,
            address,
            name: props.local_name.or(props.advertisement_name),
            rssi,
            kinds: services.iter().filter_map(|s| kind_for_service(*s)).collect(),
            services,
        });
    }
    found.sort_by(|a, b| b.rssi.cmp(&a.rssi).then_with(|| a.address.cmp(&b.address)));
    Ok(found)
}

/// Whether a Bluetooth adapter is there (powered or not): the app uses real
/// devices when it is, the simulator otherwise. Never blocks for long.
pub async fn adapter_present() -> bool {
    match tokio::time::timeout(Duration::from_secs(5), central::one_off_adapter()).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no Bluetooth adapter");
            false
        }
        Err(_) => false,
    }
}

/// Asks the platform to bond with a device (BlueZ `Device1.Pair()`, see
/// `ble/security.rs`) and returns the bonding state read back. A running
/// link is left up: BlueZ encrypts it with the new keys, and its next
/// connection reports the bond by itself.
pub async fn pair(address: &str) -> Result<Option<bool>, BleError> {
    let address = normalize_address(address)?;
    let _no_scan_meanwhile = central::SCAN_LOCK.lock().await;
    let adapter = central::one_off_adapter().await?;
    if adapter.adapter_state().await? != CentralState::PoweredOn {
        return Err(BleError::AdapterOff);
    }
    let p = central::find_with_scan(&adapter, &address, Duration::from_secs(10)).await?;
    tokio::time::timeout(
        security::PAIR_TIMEOUT + Duration::from_secs(5),
        security::pair(&p),
    )
    .await
    .map_err(|_| BleError::Timeout("pairing"))??;
    Ok(security::bonded(&p).await)
}

/// A link for one GATT operation outside a running [`BleSource`] (set the
/// clock, read Device Information): found by a short scan, connected unless
/// a running source already holds the link (then shared, not dropped), and
/// disconnected afterwards only if it was connected here. Holds the scan
/// lock meanwhile: BlueZ refuses a second discovery from the same client.
struct OneOffLink {
    p: btleplug::platform::Peripheral,
    connected_here: bool,
    _no_scan_meanwhile: tokio::sync::MutexGuard<'static, ()>,
}

/// How long one GATT step of a one-off link may take.
const ONE_OFF_TIMEOUT: Duration = Duration::from_secs(10);

impl OneOffLink {
    async fn open(address: &str) -> Result<OneOffLink, BleError> {
        let lock = central::SCAN_LOCK.lock().await;
        let adapter = central::one_off_adapter().await?;
        if adapter.adapter_state().await? != CentralState::PoweredOn {
            return Err(BleError::AdapterOff);
        }
        let p = central::find_with_scan(&adapter, address, ONE_OFF_TIMEOUT).await?;
        let connected_here = !p.is_connected().await.unwrap_or(false);
        if connected_here {
            tokio::time::timeout(Duration::from_secs(35), p.connect())
                .await
                .map_err(|_| BleError::Timeout("connect"))??;
        }
        let link = OneOffLink {
            p,
            connected_here,
            _no_scan_meanwhile: lock,
        };
        let discovered = tokio::time::timeout(ONE_OFF_TIMEOUT, link.p.discover_services())
            .await
            .map_err(|_| BleError::Timeout("service discovery"))
            .and_then(|r| r.map_err(BleError::from));
        if let Err(e) = discovered {
            link.close().await;
            return Err(e);
        }
        Ok(link)
    }

    async fn close(self) {
        if self.connected_here {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.p.disconnect()).await;
        }
    }
}

/// Sets a device's clock through its Current Time Service (0x1805 / 0x2A2B),
/// where the device offers it writable. `local_time` is the ward's local wall
/// time (device clocks are local). Connects if needed (and then disconnects
/// again); a link a running [`BleSource`] holds is shared, not dropped.
pub async fn set_device_clock(address: &str, local_time: NaiveDateTime) -> Result<(), BleError> {
    let address = normalize_address(address)?;
    let link = OneOffLink::open(&address).await?;
    let p = &link.p;
    let result = async {
        let ct = p
            .characteristics()
            .into_iter()
            .find(|c| {
                profile::short(&c.uuid) == Some(profile::CURRENT_TIME)
                    && profile::short(&c.service_uuid) == Some(profile::CURRENT_TIME_SERVICE)
                    && c.properties.contains(btleplug::api::CharPropFlags::WRITE)
            })
            .ok_or_else(|| BleError::Missing {
                device: address.clone(),
                what: "a writable Current Time (0x2A2B)".into(),
            })?;
        let bytes = profile::current_time_bytes(local_time);
        tokio::time::timeout(ONE_OFF_TIMEOUT, p.write(&ct, &bytes, WriteType::WithResponse))
            .await
            .map_err(|_| BleError::Timeout("write current time"))??;
        Ok(())
    }
    .await;
    link.close().await;
    result
}

/// Reads a device's Device Information (DIS 1.1: manufacturer, model, serial
/// number, revisions, System ID) before it is assigned, so the nurse can tell
/// two devices with the same name apart by the serial on their label.
/// Connects if needed and disconnects again. A value the device sends
/// malformed is left out (and logged), never guessed; a device without DIS
/// gives an empty list.
pub async fn identify(address: &str) -> Result<Vec<vigil_gatt::DeviceInfoField>, BleError> {
    let address = normalize_address(address)?;
    let link = OneOffLink::open(&address).await?;
    let mut fields = Vec::new();
    let chars = link.p.characteristics();
    for c in chars.iter().filter(|c| {
        profile::short(&c.uuid).is_some_and(|u| profile::DEVICE_INFO.contains(&u))
            && c.properties.contains(btleplug::api::CharPropFlags::READ)
    }) {
        let Some(ch) = profile::short(&c.uuid).and_then(vigil_gatt::Characteristic::from_uuid16) else {
            continue;
        };
        match tokio::time::timeout(ONE_OFF_TIMEOUT, link.p.read(c)).await {
            Ok(Ok(bytes)) => match vigil_gatt::decode(ch, &bytes) {
                Ok(d) => fields.extend(d.info),
                Err(e) => tracing::warn!(device = %address, characteristic = ch.name(), error = %e, "malformed Device Information value"),
            },
            Ok(Err(e)) => tracing::debug!(device = %address, error = %e, "Device Information read failed"),
            Err(_) => tracing::debug!(device = %address, "Device Information read timed out"),
        }
    }
    link.close().await;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            normalize_address("aa:bb:cc:dd:ee:0f").unwrap(),
            "AA:BB:CC:DD:EE:0F"
        );
        assert_eq!(normalize_address("aabbccddee0f").unwrap(), "AA:BB:CC:DD:EE:0F");
        assert_eq!(device_id("aa:bb:cc:dd:ee:0f"), "ble-AA:BB:CC:DD:EE:0F");
        assert!(normalize_address(" ").is_err());
        // A CoreBluetooth peripheral id is kept as it is.
        let id = "6F0B5C4A-2E4B-4C5B-9C3A-1E2D3C4B5A69";
        assert_eq!(normalize_address(id).unwrap(), id);
    }

    #[test]
    fn assignments_are_checked() {
        let cfg = |a: Vec<Assignment>| BleConfig::new(a, Arc::new(SystemClock));
        let hr = |addr: &str| Assignment::new(addr, "bed-1", DeviceKind::HeartRateStrap);
        assert!(matches!(
            BleSource::new(cfg(vec![hr("AA:BB:CC:DD:EE:01"), hr("aabbccddee01")])),
            Err(BleError::DuplicateAssignment(_))
        ));
        assert!(matches!(
            BleSource::new(cfg(vec![Assignment::new(
                "AA:BB:CC:DD:EE:01",
                "bed-1",
                DeviceKind::RespirationSensor
            )])),
            Err(BleError::UnsupportedKind(_))
        ));
        let src = BleSource::new(cfg(vec![hr("aa:bb:cc:dd:ee:01")])).unwrap();
        let d = &src.descriptors()[0];
        assert_eq!(d.device, "ble-AA:BB:CC:DD:EE:01");
        assert_eq!(d.source, Source::Real);
        assert_eq!(d.expected_interval, Duration::from_secs(1));
    }
}
