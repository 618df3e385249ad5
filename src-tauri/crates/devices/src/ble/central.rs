//! The adapter side: opening it, watching its events, scanning on demand,
//! and running one link task per assigned device.
//!
//! Every link task has a cancellation token of its own, a child of the
//! source's: [`run_links`] keeps them by address, so a [`super::BleControl`]
//! command attaches or detaches one device without touching the others,
//! while cancelling the source still stops them all. Commands that arrive
//! while the adapter is being opened change the assignment list the links
//! are then started from.

use std::collections::{HashMap, HashSet};
use std::future::Future;
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
use super::{descriptor, profile, Assignment, BleConfig, BleError, Command};
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
/// is none), then run one link per device until cancelled, attaching and
/// detaching devices as `commands` ask.
pub(crate) async fn run(
    cfg: BleConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
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
    let result = run_links(cfg, &mut commands, &out).await;
    inner.cancel();
    match result {
        Ok(()) | Err(Stop::Cancelled) => Ok(()),
        Err(Stop::PipelineClosed) => Err(SourceError::PipelineClosed),
    }
}

/// The same device (addresses compare case-insensitively).
fn same_address(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The key a link is kept under.
fn key(address: &str) -> String {
    address.to_ascii_uppercase()
}

/// Attaching `b` where `a` is attached changes nothing.
fn unchanged(a: &Assignment, b: &Assignment) -> bool {
    a.bed == b.bed && a.kind == b.kind && a.expected_interval == b.expected_interval
}

/// Tells the pipeline about a device: `Attached`, and the state every device
/// is in while the adapter cannot be opened, if it was already reported.
async fn announce(a: &Assignment, initial: Option<LinkState>, out: &Out) -> Result<(), Stop> {
    out.send(DeviceEvent::Attached(descriptor(a))).await?;
    if let Some(state) = initial {
        let at = out.clock.now();
        let device = descriptor(a).device;
        out.send(DeviceEvent::Link { device, state, at }).await?;
    }
    Ok(())
}

/// Before the adapter is open: a command changes the assignment list the
/// links will be started from.
async fn apply_before_open(
    cmd: Command,
    assignments: &mut Vec<Assignment>,
    initial: Option<LinkState>,
    out: &Out,
) -> Result<(), Stop> {
    match cmd {
        Command::Attach(a, done) => {
            let at = assignments
                .iter()
                .position(|x| same_address(&x.address, &a.address));
            if let Some(i) = at {
                if unchanged(&assignments[i], &a) {
                    let _ = done.send(());
                    return Ok(());
                }
                assignments.remove(i);
            }
            announce(&a, initial, out).await?;
            assignments.push(a);
            let _ = done.send(());
        }
        Command::Detach(address, done) => {
            assignments.retain(|x| !same_address(&x.address, &address));
            let _ = done.send(());
        }
    }
    Ok(())
}

/// Awaits `fut` while the adapter is not open yet, applying commands to
/// `assignments` meanwhile (none is lost or held up by a slow open).
async fn meanwhile<T>(
    fut: impl Future<Output = T>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    assignments: &mut Vec<Assignment>,
    initial: Option<LinkState>,
    out: &Out,
) -> Result<T, Stop> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            _ = out.cancel.cancelled() => return Err(Stop::Cancelled),
            Some(cmd) = commands.recv() => apply_before_open(cmd, assignments, initial, out).await?,
            v = &mut fut => return Ok(v),
        }
    }
}

async fn run_links(
    cfg: BleConfig,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    out: &Out,
) -> Result<(), Stop> {
    let mut assignments = cfg.assignments.clone();
    for a in &assignments {
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
        let opened = tokio::time::timeout(Duration::from_secs(10), opened);
        match meanwhile(opened, commands, &mut assignments, initial, out).await? {
            Ok(Ok(opened)) => break opened,
            Ok(Err(e)) => tracing::warn!(error = %e, "Bluetooth adapter unavailable; retrying"),
            Err(_) => tracing::warn!("opening the Bluetooth adapter timed out; retrying"),
        }
        if initial.is_none() {
            initial = Some(LinkState::AdapterOff);
            for a in &assignments {
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
        let wait = tokio::time::sleep(cfg.backoff_max);
        meanwhile(wait, commands, &mut assignments, initial, out).await?;
    };
    let powered = matches!(adapter.adapter_state().await, Ok(CentralState::PoweredOn));
    tracing::info!(
        devices = assignments.len(),
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
        cfg,
    });

    let mut links = Links {
        shared: shared.clone(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        next: 0,
        result: Ok(()),
    };
    let dispatching = dispatch(shared.clone(), events, powered_tx);
    links.tasks.spawn(async move { (None, dispatching.await) });
    for a in assignments {
        links.spawn(a, initial);
    }
    // The dispatcher runs until the source is cancelled, so the set is empty
    // only once everything has stopped.
    loop {
        tokio::select! {
            done = links.tasks.join_next() => match done {
                Some(done) => {
                    links.finished(done);
                }
                None => break,
            },
            Some(cmd) = commands.recv(), if !out.cancel.is_cancelled() => {
                if let Err(stop) = links.command(cmd).await {
                    links.failed(stop);
                }
            }
        }
    }
    shared.scanner.stop().await;
    links.result
}

/// The running link tasks, by address.
struct Links {
    shared: Arc<Shared>,
    /// Link tasks (with their serial number) and the dispatcher (`None`).
    tasks: JoinSet<(Option<u64>, Result<(), Stop>)>,
    running: HashMap<String, Running>,
    next: u64,
    result: Result<(), Stop>,
}

struct Running {
    assignment: Assignment,
    serial: u64,
    cancel: CancellationToken,
}

impl Links {
    /// Starts a link with a cancellation token of its own (a child of the
    /// source's). `initial`: the state already reported for it.
    fn spawn(&mut self, a: Assignment, initial: Option<LinkState>) {
        let cancel = self.shared.out.cancel.child_token();
        let out = Out {
            cancel: cancel.clone(),
            ..self.shared.out.clone()
        };
        let serial = self.next;
        self.next += 1;
        let link = Link::new(self.shared.clone(), out, a.clone(), initial);
        self.tasks.spawn(async move { (Some(serial), link.run().await) });
        self.running.insert(
            key(&a.address),
            Running {
                assignment: a,
                serial,
                cancel,
            },
        );
    }

    /// A task ended; returns its serial number (`None`: the dispatcher).
    fn finished(
        &mut self,
        done: Result<(Option<u64>, Result<(), Stop>), tokio::task::JoinError>,
    ) -> Option<u64> {
        match done {
            Ok((serial, result)) => {
                if let Err(stop) = result {
                    self.failed(stop);
                }
                if let Some(serial) = serial {
                    self.running.retain(|_, r| r.serial != serial);
                }
                serial
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// The pipeline is gone: stop everything.
    fn failed(&mut self, stop: Stop) {
        if stop == Stop::PipelineClosed {
            self.result = Err(Stop::PipelineClosed);
            self.shared.out.cancel.cancel();
        }
    }

    /// Stops the link of `address`, if there is one, and waits until it has
    /// (it disconnects the device on the way out), so that a link started
    /// next for the same device cannot be disturbed by it.
    async fn stop(&mut self, address: &str) {
        let Some(r) = self.running.remove(&key(address)) else {
            return;
        };
        r.cancel.cancel();
        while let Some(done) = self.tasks.join_next().await {
            if self.finished(done) == Some(r.serial) {
                break;
            }
        }
        tracing::info!(device = %descriptor(&r.assignment).device, "link stopped");
    }

    async fn command(&mut self, cmd: Command) -> Result<(), Stop> {
        match cmd {
            Command::Attach(a, done) => {
                let same = self
                    .running
                    .get(&key(&a.address))
                    .is_some_and(|r| unchanged(&r.assignment, &a));
                if !same {
                    // A move: the old link goes first.
                    self.stop(&a.address).await;
                    self.shared
                        .out
                        .send(DeviceEvent::Attached(descriptor(&a)))
                        .await?;
                    tracing::info!(device = %descriptor(&a).device, bed = %a.bed, "device attached");
                    self.spawn(a, None);
                }
                let _ = done.send(());
            }
            Command::Detach(address, done) => {
                self.stop(&address).await;
                let _ = done.send(());
            }
        }
        Ok(())
    }
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
