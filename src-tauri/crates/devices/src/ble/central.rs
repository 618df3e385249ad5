//! The adapter side: opening it, watching its events, scanning on demand,
//! and running one link task per assigned device.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use btleplug::api::{BDAddr, Central as _, CentralEvent, CentralState, Manager as _, Peripheral as _};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, watch, Mutex};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vigil_model::{Clock, LinkState};

use super::link::Link;
use super::{descriptor, profile, BleConfig, BleError};
use crate::{DeviceEvent, SourceError};

/// The first adapter the platform offers, on a connection of its own (the
/// source's: BlueZ keeps one discovery session per D-Bus client, so the
/// source's scanning and a one-off [`super::scan`] must not share one).
pub(crate) async fn open_adapter() -> Result<Adapter, BleError> {
    first_adapter(&Manager::new().await?).await
}

async fn first_adapter(manager: &Manager) -> Result<Adapter, BleError> {
    manager
        .adapters()
        .await?
        .into_iter()
        .next()
        .ok_or(BleError::NoAdapter)
}

/// The manager the one-off calls ([`super::scan`], [`super::adapter_present`],
/// [`super::set_device_clock`]) share. On BlueZ every `Manager::new` opens a
/// D-Bus connection whose I/O task lives as long as the tokio runtime (btleplug
/// drops the handle that would end it), so a manager per call would leak one
/// connection per "Add device" screen. Consequence: call these from one
/// long-lived runtime (the app's), not from short-lived ones.
static ONE_OFF: std::sync::Mutex<Option<Manager>> = std::sync::Mutex::new(None);

pub(crate) async fn one_off_adapter() -> Result<Adapter, BleError> {
    let cached = ONE_OFF.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let manager = match cached {
        Some(m) => m,
        None => {
            let m = Manager::new().await?;
            *ONE_OFF.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
            m
        }
    };
    first_adapter(&manager).await
}

/// One scan at a time on the shared connection (BlueZ refuses a second
/// StartDiscovery from the same client).
pub(crate) static SCAN_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The address an assignment names this peripheral by: its Bluetooth address,
/// or its platform id where the platform hides addresses (CoreBluetooth).
pub(crate) fn peripheral_address(p: &Peripheral) -> String {
    let addr = p.address();
    if addr == BDAddr::default() {
        p.id().to_string()
    } else {
        addr.to_string()
    }
}

fn matches(p: &Peripheral, address: &str) -> bool {
    peripheral_address(p).eq_ignore_ascii_case(address)
}

pub(crate) async fn lookup(adapter: &Adapter, address: &str) -> Result<Option<Peripheral>, BleError> {
    Ok(adapter
        .peripherals()
        .await?
        .into_iter()
        .find(|p| matches(p, address)))
}

/// Looks a device up, scanning for up to `timeout` if the platform does not
/// know it yet (one-off use: [`super::set_device_clock`]).
pub(crate) async fn find_with_scan(
    adapter: &Adapter,
    address: &str,
    timeout: Duration,
) -> Result<Peripheral, BleError> {
    if let Some(p) = lookup(adapter, address).await? {
        return Ok(p);
    }
    adapter.start_scan(scan_filter()).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let found = loop {
        match lookup(adapter, address).await {
            Ok(Some(p)) => break Ok(p),
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Ok(None) => break Err(BleError::NotFound(address.to_string())),
            Err(e) => break Err(e),
        }
    };
    let _ = adapter.stop_scan().await;
    found
}

/// How often the device list is polled while looking for a device.
pub(crate) const POLL: Duration = Duration::from_millis(200);

fn scan_filter() -> btleplug::api::ScanFilter {
    btleplug::api::ScanFilter {
        services: profile::supported_service_uuids(),
    }
}

/// Scans while at least one link is looking for its device, and only then:
/// a permanent scan costs radio time that connected devices need. Never
/// starts a scan with the adapter off, because starting discovery through
/// BlueZ powers the adapter on, overriding whoever switched it off.
pub(crate) struct Scanner {
    adapter: Adapter,
    state: Mutex<ScanState>,
}

#[derive(Default)]
struct ScanState {
    wanting: HashSet<String>,
    scanning: bool,
    powered: bool,
}

impl Scanner {
    fn new(adapter: Adapter, powered: bool) -> Self {
        Scanner {
            adapter,
            state: Mutex::new(ScanState {
                powered,
                ..ScanState::default()
            }),
        }
    }

    pub async fn want(&self, who: &str) {
        let mut s = self.state.lock().await;
        s.wanting.insert(who.to_string());
        self.update(&mut s).await;
    }

    pub async fn release(&self, who: &str) {
        let mut s = self.state.lock().await;
        s.wanting.remove(who);
        self.update(&mut s).await;
    }

    async fn power(&self, on: bool) {
        let mut s = self.state.lock().await;
        s.powered = on;
        if !on {
            // Powering off ends discovery by itself.
            s.scanning = false;
        }
        self.update(&mut s).await;
    }

    async fn stop(&self) {
        let mut s = self.state.lock().await;
        s.wanting.clear();
        self.update(&mut s).await;
    }

    async fn update(&self, s: &mut ScanState) {
        let want = s.powered && !s.wanting.is_empty();
        if want && !s.scanning {
            match self.adapter.start_scan(scan_filter()).await {
                Ok(()) => s.scanning = true,
                Err(e) => tracing::warn!(error = %e, "starting a Bluetooth scan failed"),
            }
        } else if !want && s.scanning {
            s.scanning = false;
            if let Err(e) = self.adapter.stop_scan().await {
                tracing::debug!(error = %e, "stopping the Bluetooth scan failed");
            }
        }
    }
}

/// Why a task stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    PipelineClosed,
}

/// Where a link's events go: the pipeline's bounded channel, awaited (a busy
/// pipeline slows the source down, it never loses a payload).
#[derive(Clone)]
pub(crate) struct Out {
    pub tx: mpsc::Sender<DeviceEvent>,
    pub cancel: CancellationToken,
    pub clock: Arc<dyn Clock>,
}

impl Out {
    pub async fn send(&self, event: DeviceEvent) -> Result<(), Stop> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Stop::Cancelled),
            sent = self.tx.send(event) => sent.map_err(|_| Stop::PipelineClosed),
        }
    }

    pub async fn sleep(&self, d: Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(Stop::Cancelled),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

/// What every link task shares.
pub(crate) struct Shared {
    pub cfg: BleConfig,
    pub adapter: Adapter,
    pub scanner: Scanner,
    pub events: broadcast::Sender<CentralEvent>,
    pub powered: watch::Receiver<bool>,
    pub out: Out,
}

/// The source: announce every device, open the adapter (retrying while there
/// is none), then run one link per device until cancelled.
pub(crate) async fn run(
    cfg: BleConfig,
    tx: mpsc::Sender<DeviceEvent>,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    // Our own token: when one link finds the pipeline gone, the others stop too.
    let inner = cancel.child_token();
    let out = Out {
        tx,
        cancel: inner.clone(),
        clock: cfg.clock.clone(),
    };
    let result = run_links(cfg, &out).await;
    inner.cancel();
    match result {
        Ok(()) | Err(Stop::Cancelled) => Ok(()),
        Err(Stop::PipelineClosed) => Err(SourceError::PipelineClosed),
    }
}

async fn run_links(cfg: BleConfig, out: &Out) -> Result<(), Stop> {
    for a in &cfg.assignments {
        out.send(DeviceEvent::Attached(descriptor(a))).await?;
    }
    let mut initial = None;
    let (adapter, events) = loop {
        // Subscribe before reading the power state, so no change is missed.
        let opened = async {
            let adapter = open_adapter().await?;
            let events = adapter.events().await?;
            Ok::<_, BleError>((adapter, events))
        };
        match tokio::time::timeout(Duration::from_secs(10), opened).await {
            Ok(Ok(opened)) => break opened,
            Ok(Err(e)) => tracing::warn!(error = %e, "Bluetooth adapter unavailable; retrying"),
            Err(_) => tracing::warn!("opening the Bluetooth adapter timed out; retrying"),
        }
        if initial.is_none() {
            initial = Some(LinkState::AdapterOff);
            for a in &cfg.assignments {
                let at = out.clock.now();
                let device = descriptor(a).device;
                out.send(DeviceEvent::Link {
                    device,
                    state: LinkState::AdapterOff,
                    at,
                })
                .await?;
            }
        }
        out.sleep(cfg.backoff_max).await?;
    };
    let powered = matches!(adapter.adapter_state().await, Ok(CentralState::PoweredOn));
    tracing::info!(
        devices = cfg.assignments.len(),
        powered,
        "Bluetooth LE source started"
    );
    let (events_tx, _) = broadcast::channel(1024);
    let (powered_tx, powered_rx) = watch::channel(powered);
    let shared = Arc::new(Shared {
        scanner: Scanner::new(adapter.clone(), powered),
        adapter,
        events: events_tx,
        powered: powered_rx,
        out: out.clone(),
        cfg: cfg.clone(),
    });

    let mut tasks = JoinSet::new();
    tasks.spawn(dispatch(shared.clone(), events, powered_tx));
    for a in &cfg.assignments {
        tasks.spawn(Link::new(shared.clone(), a.clone(), initial).run());
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Err(Stop::PipelineClosed)) => {
                result = Err(Stop::PipelineClosed);
                out.cancel.cancel();
            }
            Ok(_) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    shared.scanner.stop().await;
    result
}

/// Fans the adapter's events out to the links and tracks the power state.
async fn dispatch(
    shared: Arc<Shared>,
    mut events: std::pin::Pin<Box<dyn futures::Stream<Item = CentralEvent> + Send>>,
    powered: watch::Sender<bool>,
) -> Result<(), Stop> {
    let cancel = shared.out.cancel.clone();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            e = events.next() => e,
        };
        let Some(event) = event else {
            // The connection to the Bluetooth stack is gone: report the
            // adapter as off (links stop and say so) rather than pretend.
            tracing::error!("Bluetooth event stream ended; devices are reported as adapter off");
            powered.send_replace(false);
            cancel.cancelled().await;
            return Ok(());
        };
        if let CentralEvent::StateUpdate(state) = &event {
            let on = *state == CentralState::PoweredOn;
            tracing::info!(powered = on, "Bluetooth adapter power changed");
            powered.send_replace(on);
            shared.scanner.power(on).await;
        }
        // No receivers yet (or any more) is fine.
        let _ = shared.events.send(event);
    }
}
