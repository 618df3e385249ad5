//! Device events through the real pipeline step (`pipeline::on_event` /
//! `on_watchdog`: ward, decoders, `Alarming`, alarm engine) with the device
//! ids the app really uses (`sim-bed-1-oxi`, `ble-<address>`), on a clock the
//! test moves. Issue 10, items 2–5: a device's technical condition must
//! silence exactly its own values, everywhere the app names it.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};
use vigil_alarms::{ActiveAlarm, AlarmEvent, AlarmKind, Direction, Parameter, SitePreset, TechnicalKind};
use vigil_core::alarming::Alarming;
use vigil_core::pipeline::{self, Context, Stats};
use vigil_core::ward::Ward;
use vigil_devices::{DeviceDescriptor, DeviceEvent, DeviceKind};
use vigil_gatt::{encode, Characteristic};
use vigil_model::{Clock, LinkState, Source, Value};

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

/// One workstation's pipeline state, stepped by hand.
struct Rig {
    ctx: Context,
    clock: Arc<ManualClock>,
    log: Arc<Mutex<Vec<AlarmEvent>>>,
}

impl Rig {
    fn new() -> Rig {
        let clock = Arc::new(ManualClock(Mutex::new(t0())));
        let beds = ["bed-1", "bed-2"].map(String::from);
        let (live, _) = broadcast::channel(4096);
        let (log_tx, mut log_rx) = mpsc::channel::<vigil_core::pipeline::LogBatch>(64);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(e) = log_rx.recv().await {
                sink.lock().unwrap().extend(e.events);
            }
        });
        let ctx = Context {
            ward: Arc::new(Mutex::new(Ward::new(beds, vec![]))),
            alarming: Arc::new(Mutex::new(Alarming::new(SitePreset::standard(), t0()))),
            live,
            alarm_log: log_tx,
            clock: clock.clone(),
            stats: Arc::new(Stats::default()),
        };
        Rig { ctx, clock, log }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock to `s` seconds, running the 1 s watchdog on the way.
    async fn until(&self, s: i64) {
        while self.now() < t0() + Duration::seconds(s) {
            *self.clock.0.lock().unwrap() += Duration::seconds(1);
            pipeline::on_watchdog(&self.ctx).await;
        }
    }

    async fn event(&self, ev: DeviceEvent) {
        pipeline::on_event(ev, &self.ctx).await;
    }

    async fn attach(&self, device: &str, bed: &str, kind: DeviceKind, source: Source) {
        self.event(DeviceEvent::Attached(DeviceDescriptor {
            bed: bed.into(),
            device: device.into(),
            kind,
            source,
            expected_interval: std::time::Duration::from_secs(1),
        }))
        .await;
    }

    async fn link(&self, device: &str, state: LinkState) {
        let at = self.now();
        self.event(DeviceEvent::Link {
            device: device.into(),
            state,
            at,
        })
        .await;
    }

    async fn notify(&self, device: &str, characteristic: Characteristic, bytes: Vec<u8>) {
        let received = self.now();
        self.event(DeviceEvent::Payload {
            device: device.into(),
            characteristic,
            bytes,
            received,
        })
        .await;
    }

    async fn spo2(&self, device: &str, v: f64) {
        let bytes = encode::plx_continuous(Value::Number(v), Value::Number(80.0), None);
        self.notify(device, Characteristic::PlxContinuousMeasurement, bytes)
            .await;
    }

    async fn hr(&self, device: &str, bpm: u16, contact: bool) {
        let bytes = encode::heart_rate(bpm, Some(contact), &[]);
        self.notify(device, Characteristic::HeartRateMeasurement, bytes)
            .await;
    }

    /// One value a second from `from` to `to` s, with the watchdog between.
    async fn stream(&self, from: i64, to: i64, f: impl AsyncFn(&Rig)) {
        for s in from..=to {
            self.until(s).await;
            f(self).await;
        }
    }

    fn alarms(&self, bed: &str) -> Vec<ActiveAlarm> {
        self.ctx.alarming.lock().unwrap().state(bed, self.now()).active
    }
}

fn phys(a: &ActiveAlarm) -> Option<(Parameter, Direction)> {
    match a.kind {
        AlarmKind::Physiological { parameter, direction } => Some((parameter, direction)),
        _ => None,
    }
}

fn technical(a: &ActiveAlarm) -> Option<(String, TechnicalKind)> {
    match &a.kind {
        AlarmKind::Technical { device, kind, .. } => Some((device.clone(), *kind)),
        _ => None,
    }
}

/// Sounding now (condition present, not acknowledged).
fn sounding(alarms: &[ActiveAlarm]) -> Vec<&ActiveAlarm> {
    alarms.iter().filter(|a| a.audible).collect()
}

const OXI: &str = "sim-bed-1-oxi";
const STRAP: &str = "ble-AA:BB:CC:DD:EE:01";

#[tokio::test]
async fn sensor_off_ends_the_straps_heart_rate_alarm_and_replaces_it() {
    let rig = Rig::new();
    rig.attach(STRAP, "bed-1", DeviceKind::HeartRateStrap, Source::Real)
        .await;
    rig.link(STRAP, LinkState::Connected).await;
    rig.stream(1, 12, async |r: &Rig| r.hr(STRAP, 135, true).await)
        .await;
    let a = rig.alarms("bed-1");
    assert_eq!(
        phys(&a[0]),
        Some((Parameter::HeartRate, Direction::High)),
        "{a:?}"
    );
    // The strap loses skin contact: it keeps notifying, without a rate.
    rig.stream(13, 40, async |r: &Rig| r.hr(STRAP, 135, false).await)
        .await;
    let a = rig.alarms("bed-1");
    // (NEWS2 still counts the last pulse the strap measured: that is a score
    // of recent observations, not a live value.)
    let s: Vec<_> = sounding(&a)
        .into_iter()
        .filter(|x| x.kind != AlarmKind::News2)
        .collect();
    assert_eq!(s.len(), 1, "only the technical alarm sounds: {a:?}");
    assert_eq!(
        technical(s[0]),
        Some((STRAP.to_string(), TechnicalKind::SensorOff))
    );
    assert!(
        s[0].message
            .starts_with("Heart rate strap (ble-AA:BB:CC:DD:EE:01)"),
        "{}",
        s[0].message
    );
    assert!(
        a.iter().all(|x| phys(x).is_none()),
        "the old HR alarm still shown: {a:?}"
    );
}

#[tokio::test]
async fn a_disconnected_oximeter_ends_its_alarm_and_its_pending_condition_never_starts() {
    let rig = Rig::new();
    rig.attach(OXI, "bed-1", DeviceKind::PulseOximeter, Source::Simulated)
        .await;
    rig.link(OXI, LinkState::Connected).await;
    // 5 s of 84 %: pending (10 s delay).
    rig.stream(1, 5, async |r: &Rig| r.spo2(OXI, 84.0).await).await;
    rig.link(OXI, LinkState::Disconnected).await;
    rig.until(40).await;
    let a = rig.alarms("bed-1");
    assert!(
        a.iter().all(|x| phys(x).is_none()),
        "a pending condition started after the link was lost: {a:?}"
    );
    assert_eq!(
        a.iter().filter_map(technical).collect::<Vec<_>>(),
        vec![(OXI.to_string(), TechnicalKind::Disconnected)]
    );
}

#[tokio::test]
async fn connected_but_silent_is_no_data_and_a_lost_link_stays_an_alarm_until_data() {
    let rig = Rig::new();
    rig.attach(OXI, "bed-1", DeviceKind::PulseOximeter, Source::Simulated)
        .await;
    rig.link(OXI, LinkState::Connected).await;
    rig.until(10).await;
    let kinds = |r: &Rig| {
        r.alarms("bed-1")
            .iter()
            .filter_map(technical)
            .map(|t| t.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&rig),
        vec![TechnicalKind::NoData],
        "connected and silent for 10 s"
    );
    rig.spo2(OXI, 97.0).await;
    assert!(kinds(&rig).is_empty());
    // Link lost, back up, but nothing arrives: still an alarm.
    rig.until(12).await;
    rig.link(OXI, LinkState::Disconnected).await;
    rig.until(14).await;
    rig.link(OXI, LinkState::Connected).await;
    rig.until(16).await;
    assert_eq!(
        kinds(&rig),
        vec![TechnicalKind::Disconnected],
        "a link without data is not back"
    );
    rig.until(30).await;
    assert!(kinds(&rig).contains(&TechnicalKind::Disconnected));
    assert!(
        kinds(&rig).contains(&TechnicalKind::NoData),
        "silent since the reconnect"
    );
    rig.spo2(OXI, 97.0).await;
    assert!(kinds(&rig).is_empty(), "data is back: {:?}", rig.alarms("bed-1"));
}

#[tokio::test]
async fn moving_a_device_takes_its_alarms_to_the_new_bed() {
    let rig = Rig::new();
    rig.attach(STRAP, "bed-1", DeviceKind::HeartRateStrap, Source::Real)
        .await;
    rig.link(STRAP, LinkState::Connected).await;
    rig.stream(1, 12, async |r: &Rig| r.hr(STRAP, 130, true).await)
        .await;
    rig.notify(STRAP, Characteristic::BatteryLevel, encode::battery(10))
        .await;
    assert_eq!(sounding(&rig.alarms("bed-1")).len(), 2);
    // Reassigned to bed 2 (the BLE source re-attaches the same device id).
    rig.attach(STRAP, "bed-2", DeviceKind::HeartRateStrap, Source::Real)
        .await;
    rig.link(STRAP, LinkState::Connected).await;
    assert!(
        sounding(&rig.alarms("bed-1")).is_empty(),
        "stranded at bed 1: {:?}",
        rig.alarms("bed-1")
    );
    rig.notify(STRAP, Characteristic::BatteryLevel, encode::battery(10))
        .await;
    rig.stream(13, 24, async |r: &Rig| r.hr(STRAP, 130, true).await)
        .await;
    let at2 = rig.alarms("bed-2");
    assert!(
        at2.iter()
            .any(|a| phys(a) == Some((Parameter::HeartRate, Direction::High))),
        "{at2:?}"
    );
    assert!(at2
        .iter()
        .any(|a| technical(a).is_some_and(|t| t.1 == TechnicalKind::LowBattery)));
    assert!(sounding(&rig.alarms("bed-1")).is_empty());
}

#[tokio::test]
async fn discharge_leaves_a_still_disconnected_device_alarming_for_the_next_patient() {
    let rig = Rig::new();
    rig.attach(OXI, "bed-1", DeviceKind::PulseOximeter, Source::Simulated)
        .await;
    rig.link(OXI, LinkState::Connected).await;
    rig.stream(1, 12, async |r: &Rig| r.spo2(OXI, 84.0).await).await;
    rig.link(OXI, LinkState::Disconnected).await;
    // The store refuses writes (the writer's health, read by the watchdog).
    rig.ctx
        .stats
        .store_failing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    rig.until(13).await;
    let out = rig.ctx.alarming.lock().unwrap().discharge("bed-1", rig.now());
    rig.ctx.publish(out).await;
    rig.until(60).await;
    let kinds: Vec<_> = sounding(&rig.alarms("bed-1"))
        .into_iter()
        .filter_map(technical)
        .map(|t| t.1)
        .collect();
    assert_eq!(
        kinds,
        vec![TechnicalKind::StoreFailure, TechnicalKind::Disconnected]
    );
    // The alarm log has the discharge ending the patient's alarms only.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let log = rig.log.lock().unwrap();
    let discharged: Vec<_> = log
        .iter()
        .filter(|e| {
            e.event
                == vigil_alarms::AlarmEventKind::Ended {
                    reason: vigil_alarms::EndReason::Discharged,
                }
        })
        .map(|e| e.kind.clone())
        .collect();
    assert!(!discharged.is_empty());
    assert!(
        discharged
            .iter()
            .all(|k| !matches!(k, Some(AlarmKind::Technical { .. }))),
        "{discharged:?}"
    );
}

#[tokio::test]
async fn an_oximeter_sending_only_invalid_values_is_a_technical_alarm() {
    let rig = Rig::new();
    rig.attach(OXI, "bed-1", DeviceKind::PulseOximeter, Source::Simulated)
        .await;
    rig.link(OXI, LinkState::Connected).await;
    rig.stream(1, 15, async |r: &Rig| {
        let bytes = encode::plx_continuous(
            Value::Special(vigil_model::Special::NaN),
            Value::Special(vigil_model::Special::NaN),
            None,
        );
        r.notify(OXI, Characteristic::PlxContinuousMeasurement, bytes)
            .await;
    })
    .await;
    let a = rig.alarms("bed-1");
    let titles: Vec<_> = a
        .iter()
        .filter(|x| x.audible)
        .map(|x| x.message.clone())
        .collect();
    assert!(
        titles
            .iter()
            .any(|m| m.starts_with("SpO2 \u{2014} no valid measurement")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|m| m.starts_with("Pulse \u{2014} no valid measurement")),
        "{titles:?}"
    );
}

/// Issue 13 §1, through the pipeline step every source feeds: a device
/// attached as a heart-rate strap that sends PLX Continuous Measurement
/// (whatever source it comes from) has it dropped undecoded and counted: no
/// SpO2 reading for the store, no SpO2 on the screen, no desaturation alarm.
#[tokio::test]
async fn an_hr_strap_sending_spo2_starts_nothing_and_is_counted() {
    let rig = Rig::new();
    rig.attach(STRAP, "bed-1", DeviceKind::HeartRateStrap, Source::Real)
        .await;
    rig.link(STRAP, LinkState::Connected).await;
    let mut stored = Vec::new();
    for s in 1..=40 {
        rig.until(s).await;
        let bytes = encode::plx_continuous(Value::Number(80.0), Value::Number(72.0), None);
        let ev = DeviceEvent::Payload {
            device: STRAP.into(),
            characteristic: Characteristic::PlxContinuousMeasurement,
            bytes,
            received: rig.now(),
        };
        stored.extend(pipeline::on_event(ev, &rig.ctx).await.unwrap_or_default());
    }
    assert!(stored.is_empty(), "readings for the store: {stored:?}");
    let a = rig.alarms("bed-1");
    assert!(
        a.iter().all(|x| phys(x).is_none()),
        "a physiological alarm: {a:?}"
    );
    let snap = rig.ctx.ward.lock().unwrap().snapshot(rig.now());
    assert!(snap.latest.is_empty(), "{:?}", snap.latest);
    assert_eq!(snap.devices[0].foreign_values, 40);
    assert_eq!(rig.ctx.stats.get(&rig.ctx.stats.foreign_values), 40);
}
