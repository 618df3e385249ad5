//! Integration tests of the simulated ward, through the public API only.
//!
//! Most tests run on tokio's paused clock: sleeps complete instantly and in
//! order, so 20 simulated minutes take milliseconds and every timestamp is
//! exact. A few use the real `ScaledClock` to check pacing and cancellation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_devices::sim::{Scenario, SimConfig, SimulatedWard};
use vigil_devices::{DeviceEvent, DeviceKind, DeviceSource, SourceError};
use vigil_gatt::{decode, Characteristic, Decoded, SensorContact};
use vigil_model::{Clock, LinkState, Mdc, ScaledClock, Source, Special, Value};

fn origin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap()
}

/// Simulated time = tokio time since creation; deterministic when paused.
struct TokioClock {
    t0: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        origin() + chrono::Duration::from_std(self.t0.elapsed()).unwrap()
    }
}

fn event_time(e: &DeviceEvent) -> Option<DateTime<Utc>> {
    match e {
        DeviceEvent::Attached(_) => None,
        DeviceEvent::Link { at, .. } | DeviceEvent::Refused { at, .. } | DeviceEvent::Security { at, .. } => Some(*at),
        DeviceEvent::Payload { received, .. } => Some(*received),
    }
}

/// Everything the ward sends in the first `minutes` simulated minutes.
/// Call from a `start_paused` test.
async fn run_for(scenario: Scenario, beds: usize, seed: u64, minutes: i64) -> Vec<DeviceEvent> {
    let clock = Arc::new(TokioClock {
        t0: tokio::time::Instant::now(),
    });
    let ward = SimulatedWard::new(SimConfig {
        scenario,
        beds,
        seed,
        clock,
    });
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Box::new(ward).run(tx, cancel.clone()));
    let end = origin() + chrono::Duration::minutes(minutes);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        if event_time(&e).is_some_and(|t| t >= end) {
            break;
        }
        events.push(e);
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    events
}

/// (device, seconds since start, decoded) of every payload.
fn decoded(events: &[DeviceEvent]) -> Vec<(String, f64, Decoded)> {
    events
        .iter()
        .filter_map(|e| match e {
            DeviceEvent::Payload {
                device,
                characteristic,
                bytes,
                received,
            } => {
                let d = decode(*characteristic, bytes)
                    .unwrap_or_else(|err| panic!("{device}: {characteristic} {bytes:02x?}: {err}"));
                let t = (*received - origin()).num_milliseconds() as f64 / 1000.0;
                Some((device.clone(), t, d))
            }
            _ => None,
        })
        .collect()
}

fn value(d: &Decoded, code: Mdc) -> Option<Value> {
    d.measurements
        .iter()
        .find(|m| m.code() == code)
        .map(|m| m.value())
}

fn mean_in(samples: &[(String, f64, Decoded)], device: &str, code: Mdc, from_s: f64, to_s: f64) -> f64 {
    let xs: Vec<f64> = samples
        .iter()
        .filter(|(dev, t, _)| dev == device && (from_s..to_s).contains(t))
        .filter_map(|(_, _, d)| value(d, code).and_then(Value::number))
        .collect();
    assert!(!xs.is_empty(), "no {code:?} from {device} in {from_s}..{to_s}");
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_events() {
    let a = run_for(Scenario::Ward, 8, 42, 12).await;
    let b = run_for(Scenario::Ward, 8, 42, 12).await;
    // At least the HR strap and oximeter of every bed, every second.
    assert!(a.len() > 8 * 2 * 12 * 60, "{} events", a.len());
    assert_eq!(a, b);
    let c = run_for(Scenario::Ward, 8, 43, 12).await;
    assert_ne!(a, c, "another seed gives other numbers");
}

#[tokio::test(start_paused = true)]
async fn every_payload_decodes_in_every_scenario() {
    for &scenario in Scenario::ALL {
        let events = run_for(scenario, 2, 7, 15).await;
        let samples = decoded(&events);
        assert!(
            samples.len() > 2 * 15 * 60,
            "{scenario}: {} payloads",
            samples.len()
        );
        let specials = samples
            .iter()
            .flat_map(|(_, _, d)| &d.measurements)
            .filter(|m| m.special.is_some())
            .count();
        if scenario == Scenario::SpecialValues {
            assert!(specials > 5, "special-values sent {specials} specials");
        } else {
            assert_eq!(specials, 0, "{scenario} sent specials");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn special_values_are_nan_spo2_nres_pr_and_nan_temperature() {
    let samples = decoded(&run_for(Scenario::SpecialValues, 4, 1, 30).await);
    let specials: Vec<(Mdc, Special)> = samples
        .iter()
        .flat_map(|(_, _, d)| &d.measurements)
        .filter_map(|m| m.special.map(|s| (m.code(), s)))
        .collect();
    for want in [
        (Mdc::PULS_OXIM_SAT_O2, Special::NaN),
        (Mdc::PULS_OXIM_PULS_RATE, Special::NRes),
        (Mdc::TEMP_BODY, Special::NaN),
    ] {
        assert!(specials.contains(&want), "no {want:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn devices_attach_then_connect_then_receive() {
    let events = run_for(Scenario::Stable, 2, 3, 1).await;
    let attached: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DeviceEvent::Attached(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(attached.len(), 10);
    assert!(
        events[..10].iter().all(|e| matches!(e, DeviceEvent::Attached(_))),
        "all attach first"
    );
    let hr = attached
        .iter()
        .find(|d| d.device == "sim-bed-1-hr")
        .expect("bed 1 HR strap");
    assert_eq!(
        (hr.bed.as_str(), hr.kind, hr.source),
        ("bed-1", DeviceKind::HeartRateStrap, Source::Simulated)
    );
    assert_eq!(hr.expected_interval, Duration::from_secs(1));
    for d in &attached {
        // Per device: Attached, Connecting, Connected, then payloads with
        // Receiving announced before the first measurement.
        let mine: Vec<_> = events
            .iter()
            .filter(|e| *e.device() == d.device)
            .collect();
        assert!(matches!(mine[0], DeviceEvent::Attached(_)));
        assert!(matches!(
            mine[1],
            DeviceEvent::Link {
                state: LinkState::Connecting,
                ..
            }
        ));
        assert!(matches!(
            mine[2],
            DeviceEvent::Link {
                state: LinkState::Connected,
                ..
            }
        ));
        assert!(
            matches!(
                mine[3],
                DeviceEvent::Payload {
                    characteristic: Characteristic::BatteryLevel,
                    ..
                }
            ),
            "{}: battery read on connect",
            d.device
        );
        if d.kind != DeviceKind::BloodPressureCuff {
            assert!(
                matches!(
                    mine[4],
                    DeviceEvent::Link {
                        state: LinkState::Receiving,
                        ..
                    }
                ),
                "{}",
                d.device
            );
        }
    }
    let kinds: Vec<_> = attached
        .iter()
        .filter(|d| d.bed == "bed-2")
        .map(|d| (d.kind, d.expected_interval))
        .collect();
    for (kind, secs) in [
        (DeviceKind::HeartRateStrap, 1),
        (DeviceKind::PulseOximeter, 1),
        (DeviceKind::RespirationSensor, 4),
        (DeviceKind::Thermometer, 60),
        (DeviceKind::BloodPressureCuff, 300),
    ] {
        assert!(kinds.contains(&(kind, Duration::from_secs(secs))), "{kind:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn send_rates_rr_intervals_and_device_clocks() {
    let samples = decoded(&run_for(Scenario::Stable, 1, 5, 11).await);
    let count = |dev: &str, ch: &str| {
        samples
            .iter()
            .filter(|(d, _, x)| d == dev && x.characteristic == ch)
            .count()
    };
    let hr = count("sim-bed-1-hr", "2a37");
    assert!((655..=660).contains(&hr), "{hr} HR payloads in 11 min");
    assert!((163..=165).contains(&count("sim-bed-1-resp", vigil_gatt::SIM_RESP_RATE)));
    assert!((10..=11).contains(&count("sim-bed-1-temp", "2a1c")));
    // Cuff: ~10 s after start, then every 5 minutes.
    let bp: Vec<f64> = samples
        .iter()
        .filter(|(d, _, x)| d == "sim-bed-1-nibp" && x.characteristic == "2a35")
        .map(|s| s.1)
        .collect();
    assert_eq!(bp, [10.0, 310.0, 610.0]);
    // Battery every minute per device, plus the read on connect.
    assert!((11..=12).contains(&count("sim-bed-1-spo2", "2a19")));

    // RR intervals agree with the reported heart rate.
    let (mut beats, mut rr_sum, mut bpm_sum) = (0, 0.0, 0.0);
    let (mut first, mut last) = (f64::MAX, 0.0);
    for (_, t, d) in samples
        .iter()
        .filter(|(d, _, x)| d == "sim-bed-1-hr" && x.characteristic == "2a37")
    {
        (first, last) = (first.min(*t), *t);
        assert_eq!(d.sensor_contact, Some(SensorContact::Detected));
        bpm_sum += value(d, Mdc::ECG_HEART_RATE).and_then(Value::number).unwrap();
        beats += d.rr_intervals_s.len();
        rr_sum += d.rr_intervals_s.iter().sum::<f64>();
    }
    let mean_hr = bpm_sum / hr as f64;
    assert!((60.0..85.0).contains(&mean_hr), "{mean_hr}");
    assert!((60.0 / (rr_sum / beats as f64) - mean_hr).abs() < 2.0);
    // The beats tile the time the strap was on, from 1 s before its first
    // notification to its last (less the beat still in progress).
    assert!(
        (rr_sum - (last - first + 1.0)).abs() < 1.5,
        "beats cover the time: {rr_sum} in {first}..{last}"
    );

    // Thermometer and cuff stamp readings with their own, offset clocks.
    for dev in ["sim-bed-1-temp", "sim-bed-1-nibp"] {
        let offsets: Vec<i64> = samples
            .iter()
            .filter(|(d, _, x)| d == dev && x.device_time.is_some())
            .map(|(_, t, x)| (x.device_time.unwrap() - origin().naive_utc()).num_seconds() - *t as i64)
            .collect();
        assert!(!offsets.is_empty());
        assert!(
            offsets.iter().all(|o| *o == offsets[0]),
            "{dev}: steady offset {offsets:?}"
        );
        assert!((5..=300).contains(&offsets[0].abs()), "{dev}: {}", offsets[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn deterioration_trends_down() {
    let samples = decoded(&run_for(Scenario::Deterioration, 2, 11, 20).await);
    for bed in ["bed-1", "bed-2"] {
        let (hr, ox, resp) = (
            format!("sim-{bed}-hr"),
            format!("sim-{bed}-spo2"),
            format!("sim-{bed}-resp"),
        );
        let early_hr = mean_in(&samples, &hr, Mdc::ECG_HEART_RATE, 0.0, 120.0);
        let late_hr = mean_in(&samples, &hr, Mdc::ECG_HEART_RATE, 1080.0, 1200.0);
        assert!(late_hr > early_hr + 30.0, "{bed}: HR {early_hr} → {late_hr}");
        let early_spo2 = mean_in(&samples, &ox, Mdc::PULS_OXIM_SAT_O2, 0.0, 120.0);
        let late_spo2 = mean_in(&samples, &ox, Mdc::PULS_OXIM_SAT_O2, 1080.0, 1200.0);
        assert!(
            late_spo2 < early_spo2 - 5.0,
            "{bed}: SpO2 {early_spo2} → {late_spo2}"
        );
        let late_rr = mean_in(&samples, &resp, Mdc::RESP_RATE, 1080.0, 1200.0);
        assert!(late_rr > 24.0, "{bed}: RR {late_rr}");
    }
}

#[tokio::test(start_paused = true)]
async fn desaturation_and_fever_show() {
    let samples = decoded(&run_for(Scenario::Ward, 4, 2, 16).await);
    let spo2 = |dev: &str| {
        samples
            .iter()
            .filter(|(d, _, _)| d == dev)
            .filter_map(|(_, _, x)| value(x, Mdc::PULS_OXIM_SAT_O2).and_then(Value::number))
            .fold(100.0, f64::min)
    };
    assert!(spo2("sim-bed-3-spo2") <= 84.0, "bed 3 desaturates");
    assert!(spo2("sim-bed-1-spo2") >= 95.0, "bed 1 is stable");
    let temp = mean_in(&samples, "sim-bed-4-temp", Mdc::TEMP_BODY, 900.0, 960.0);
    assert!(temp > 39.2, "bed 4 fever: {temp}");
}

#[tokio::test(start_paused = true)]
async fn sensor_off_says_no_contact_in_the_bytes() {
    let samples = decoded(&run_for(Scenario::SensorOff, 1, 9, 10).await);
    let contact: Vec<_> = samples
        .iter()
        .filter(|(d, _, _)| d == "sim-bed-1-hr")
        .filter_map(|(_, _, x)| x.sensor_contact)
        .collect();
    let off = contact
        .iter()
        .filter(|c| **c == SensorContact::NotDetected)
        .count();
    // Contact lost for 30 s every 3 min, and the strap keeps sending.
    assert!((80..=120).contains(&off), "{off} payloads without contact");
    assert!(contact.len() > 590, "{}", contact.len());
    assert!(contact.contains(&SensorContact::Detected));
}

#[tokio::test(start_paused = true)]
async fn out_of_range_oximeter_disconnects_and_comes_back() {
    let events = run_for(Scenario::OutOfRange, 1, 4, 10).await;
    let ox = "sim-bed-1-spo2";
    // Out of range from Disconnected until Connected (the battery is read
    // on connect); Receiving follows with the first measurement.
    let mut gone_since = None;
    let mut reconnected_after = None;
    let (mut outages, mut back) = (0, 0);
    let mut other_payloads_while_gone = 0;
    for e in &events {
        match e {
            DeviceEvent::Link { device, state, at } if device == ox => match state {
                LinkState::Disconnected => {
                    outages += 1;
                    gone_since = Some(*at);
                }
                LinkState::Connected => reconnected_after = gone_since.take(),
                LinkState::Receiving => {
                    if let Some(since) = reconnected_after.take() {
                        let gone = (*at - since).num_seconds();
                        assert!((45..=60).contains(&gone), "out of range for {gone} s");
                        back += 1;
                    }
                }
                LinkState::Connecting => {}
                other => panic!("unexpected {other:?}"),
            },
            DeviceEvent::Payload { device, .. } if device == ox => {
                assert!(gone_since.is_none(), "oximeter payload while out of range")
            }
            DeviceEvent::Payload { .. } if gone_since.is_some() => other_payloads_while_gone += 1,
            _ => {}
        }
    }
    assert!(outages >= 2, "{outages} outages in 10 min");
    assert!(back >= 2);
    assert!(other_payloads_while_gone > 40, "other devices carry on");
}

#[tokio::test(start_paused = true)]
async fn low_battery_drains_to_a_few_percent() {
    let samples = decoded(&run_for(Scenario::LowBattery, 1, 6, 30).await);
    let levels: Vec<u8> = samples
        .iter()
        .filter(|(d, _, _)| d == "sim-bed-1-hr")
        .filter_map(|(_, _, x)| x.battery_percent)
        .collect();
    assert!((14..=16).contains(&levels[0]), "{levels:?}");
    assert!(levels.windows(2).all(|w| w[1] <= w[0]), "{levels:?}");
    assert_eq!(*levels.last().unwrap(), 3, "{levels:?}");
}

#[tokio::test]
async fn cancel_stops_promptly_even_when_the_pipeline_is_full() {
    let clock = Arc::new(ScaledClock::new(origin(), 1.0));
    for capacity in [1024, 1] {
        let ward = SimulatedWard::new(SimConfig::new(Scenario::Ward, clock.clone()));
        let (tx, _rx) = mpsc::channel(capacity);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Box::new(ward).run(tx, cancel.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        let done = tokio::time::timeout(Duration::from_millis(500), task).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "capacity {capacity}: {done:?}");
    }
}

#[tokio::test]
async fn closed_pipeline_is_an_error() {
    let clock = Arc::new(ScaledClock::new(origin(), 100.0));
    let ward = SimulatedWard::new(SimConfig::new(Scenario::Stable, clock));
    assert_eq!(ward.source(), Source::Simulated);
    assert_eq!(ward.beds(), ["bed-1", "bed-2", "bed-3", "bed-4"]);
    let (tx, rx) = mpsc::channel(16);
    drop(rx);
    let done = tokio::time::timeout(
        Duration::from_secs(5),
        Box::new(ward).run(tx, CancellationToken::new()),
    )
    .await;
    assert!(matches!(done, Ok(Err(SourceError::PipelineClosed))), "{done:?}");
}

/// 16 beds at 1000× must keep pace with the clock: 3 real seconds are 50
/// simulated minutes, ~110,000 events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_up_at_speed_1000_with_16_beds() {
    let clock = Arc::new(ScaledClock::new(origin(), 1000.0));
    let ward = SimulatedWard::new(SimConfig {
        scenario: Scenario::Ward,
        beds: 16,
        seed: 1,
        clock: clock.clone(),
    });
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Box::new(ward).run(tx, cancel.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut hr_payloads: HashMap<String, usize> = HashMap::new();
    let mut last = origin();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let DeviceEvent::Payload {
            device,
            characteristic: Characteristic::HeartRateMeasurement,
            received,
            ..
        } = &e
        {
            *hr_payloads.entry(device.clone()).or_default() += 1;
            last = *received;
        }
    }
    let sim_s = (clock.now() - origin()).num_seconds();
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(hr_payloads.len(), 16);
    let lag = sim_s - (last - origin()).num_seconds();
    let fewest = *hr_payloads.values().min().unwrap() as i64;
    eprintln!("{sim_s} simulated s, lag {lag} s, fewest HR payloads {fewest}");
    assert!(lag < 30, "simulation lags the clock by {lag} s");
    assert!(
        fewest > sim_s * 9 / 10 - 10,
        "{fewest} HR payloads in {sim_s} simulated s"
    );
}
