//! The real Bluetooth LE source (btleplug → bluez-async → libdbus) against a
//! fake BlueZ on a private D-Bus system bus: no radio, no kernel Bluetooth.
//!
//! Each scenario checks what Vigil acts on: link states in order, payloads
//! that the pipeline's decoder (`vigil_gatt::decode`) reads back, and that no
//! payload is lost or duplicated across reconnects. See `harness.rs` for how
//! every scenario gets its own process and bus. Needs `dbus-daemon` and
//! Python with dbus-fast (tests/ble/requirements.txt).

mod harness;

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::json;
use vigil_devices::ble::{self, Assignment};
use vigil_devices::{DeviceEvent, DeviceKind};
use vigil_gatt::{encode, Characteristic, DeviceInfoField};
use vigil_model::{LinkState, Value};

use harness::{
    attached, decoded, device_of, heart_rates, is_link, payload_of, position, states, test_config, FakeBluez,
    Run,
};

/// A scenario: an async test body run in its own process with its own bus.
macro_rules! scenario {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            harness::isolated(concat!(module_path!(), "::", stringify!($name)), || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async $body)
            });
        }
    };
}

const STRAP: &str = "AA:BB:CC:DD:EE:01";
const STRAP_ID: &str = "ble-AA:BB:CC:DD:EE:01";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hr(bpm: u16) -> String {
    hex(&encode::heart_rate(bpm, Some(true), &[]))
}

fn strap(address: &str, name: &str, rssi: i16) -> serde_json::Value {
    json!({
        "address": address, "name": name, "rssi": rssi,
        "services": ["180d", "180f"], "battery": 87,
        "dis": {"manufacturer": "Polar Electro Oy", "model": "H10", "serial": "C0680226", "firmware": "5.0.0"},
    })
}

fn strap_at(bed: &str, address: &str) -> Assignment {
    Assignment::new(address, bed, DeviceKind::HeartRateStrap)
}

async fn add_strap(fake: &mut FakeBluez) {
    fake.add(strap(STRAP, "Polar H10", -50)).await;
}

/// A stored glucose record (GLS): sequence number, a fixed base time, mg/dL.
fn glucose(seq: u16, mg_dl: f64) -> String {
    let t = NaiveDate::from_ymd_opt(2026, 5, 1)
        .unwrap()
        .and_hms_opt(7, 30, 0)
        .unwrap();
    hex(&encode::glucose_mg_dl(seq, t, Value::Number(mg_dl)))
}

/// Link states without the optional `Disconnected` that may precede
/// `AdapterOff` (depends on which signal a link sees first).
fn without(states: Vec<LinkState>, drop: LinkState) -> Vec<LinkState> {
    states.into_iter().filter(|s| *s != drop).collect()
}

scenario! {
    /// First connect: Attached, Connecting, Connected, DIS + battery read,
    /// then Receiving with the first heart rate; notifications arrive as
    /// payloads the decoder reads; stopping disconnects the device.
    async fn first_connect_streams_heart_rate_with_device_info() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        // Lower-case on purpose: addresses are normalised.
        let mut run = Run::start(test_config(vec![strap_at("bed-1", &STRAP.to_lowercase())]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        // 60 bpm, contact detected, one RR interval of 1.000 s (gatt.md example).
        fake.notify(STRAP, "2a37", "163C0004").await;
        fake.notify(STRAP, "2a19", "56").await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 2).await;
        run.payloads(STRAP_ID, Characteristic::BatteryLevel, 2).await;
        let log = run.stop().await;

        match &log[0] {
            DeviceEvent::Attached(d) => {
                assert_eq!(d.device, STRAP_ID);
                assert_eq!(d.bed, "bed-1");
                assert_eq!(d.kind, DeviceKind::HeartRateStrap);
                assert_eq!(d.source, vigil_model::Source::Real);
                assert_eq!(d.expected_interval, Duration::from_secs(1));
            }
            other => panic!("first event must be Attached, got {other:?}"),
        }
        use LinkState::*;
        assert_eq!(states(&log, STRAP_ID), [Connecting, Connected, Receiving]);
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 60.0]);
        let rr = decoded(&log, STRAP_ID, Characteristic::HeartRateMeasurement)[1].clone().unwrap();
        assert_eq!(rr.rr_intervals_s, [1.0]);

        // Device information, read after Connected and before any data.
        let connected = position(&log, |e| is_link(e, STRAP_ID, Connected)).unwrap();
        let receiving = position(&log, |e| is_link(e, STRAP_ID, Receiving)).unwrap();
        let info: Vec<(usize, DeviceInfoField)> = log
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                DeviceEvent::Payload { characteristic, bytes, .. } => {
                    Some((i, vigil_gatt::decode(*characteristic, bytes).ok()?.info?))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            info.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(),
            [
                DeviceInfoField::ManufacturerName("Polar Electro Oy".into()),
                DeviceInfoField::ModelNumber("H10".into()),
                DeviceInfoField::SerialNumber("C0680226".into()),
                DeviceInfoField::FirmwareRevision("5.0.0".into()),
            ]
        );
        assert!(info.iter().all(|(i, _)| *i > connected && *i < receiving));
        // Battery: the read (87) and one notification (86); the read is not
        // forwarded twice even though bluetoothd also signals it.
        let battery: Vec<u8> = decoded(&log, STRAP_ID, Characteristic::BatteryLevel)
            .into_iter()
            .map(|d| d.unwrap().battery_percent.unwrap())
            .collect();
        assert_eq!(battery, [87, 86]);
        // Receiving is announced before the first heart rate.
        let first_hr = position(&log, |e| {
            harness::payload_of(e, STRAP_ID, Characteristic::HeartRateMeasurement).is_some()
        });
        assert!(receiving < first_hr.unwrap());
        // Receive times come from the clock, in order.
        let times: Vec<_> = log
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Payload { received, .. } => Some(*received),
                _ => None,
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // Stopping the source releases the device.
        fake.wait(STRAP, "disconnected", None).await;
    }
}

scenario! {
    /// Link loss: Disconnected, automatic reconnect after the backoff,
    /// Receiving again; every value arrives exactly once.
    async fn link_loss_reconnects_without_losing_or_duplicating() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        for bpm in [70, 71, 72] {
            fake.notify(STRAP, "2a37", &hr(bpm)).await;
        }
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 3).await;

        fake.cmd(json!({"cmd": "drop_link", "address": STRAP})).await;
        let down = run.link(STRAP_ID, LinkState::Disconnected).await;
        let again = run.link(STRAP_ID, LinkState::Connecting).await;
        let at = |e: &DeviceEvent| match e {
            DeviceEvent::Link { at, .. } => *at,
            _ => unreachable!(),
        };
        let waited = (at(&again) - at(&down)).to_std().unwrap();
        assert!(waited >= Duration::from_millis(450), "reconnected after {waited:?}, before the backoff");

        // Sent once the source has subscribed again.
        for bpm in [73, 74] {
            fake.notify(STRAP, "2a37", &hr(bpm)).await;
        }
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 5).await;
        let log = run.stop().await;
        assert_eq!(heart_rates(&log, STRAP_ID), [70.0, 71.0, 72.0, 73.0, 74.0]);
        use LinkState::*;
        assert_eq!(
            states(&log, STRAP_ID),
            [Connecting, Connected, Receiving, Disconnected, Connecting, Connected, Receiving]
        );
        assert_eq!(fake.state(STRAP).await["connects"], json!(2));
    }
}

scenario! {
    /// Adapter switched off: the device is reported AdapterOff (the source
    /// does not switch the adapter back on, nor retry while it is off); on
    /// power-on it reconnects by itself.
    async fn adapter_off_then_on_reconnects() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 1).await;

        fake.cmd(json!({"cmd": "power", "on": false})).await;
        run.link(STRAP_ID, LinkState::AdapterOff).await;
        run.settle(Duration::from_millis(2500)).await;
        let off_at = position(&run.log, |e| is_link(e, STRAP_ID, LinkState::AdapterOff)).unwrap();
        assert!(
            run.log[off_at + 1..].iter().all(|e| !matches!(e, DeviceEvent::Link { .. })),
            "link changes while the adapter is off: {:#?}",
            &run.log[off_at + 1..]
        );
        let st = fake.state(STRAP).await;
        assert_eq!(st["powered"], json!(false), "the source must not power the adapter on");
        assert_eq!(st["attempts"], json!(1), "no connect attempts while off");

        fake.cmd(json!({"cmd": "power", "on": true})).await;
        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 2).await;
        let log = run.stop().await;
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 73.0]);
        use LinkState::*;
        assert_eq!(
            without(states(&log, STRAP_ID), Disconnected),
            [Connecting, Connected, Receiving, AdapterOff, Connecting, Connected, Receiving]
        );
    }
}

scenario! {
    /// A device that connects and subscribes but never sends: Connected, and
    /// never Receiving (the core's watchdog takes it from there).
    async fn connected_but_silent_never_claims_receiving() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        fake.wait(STRAP, "notifying", Some("2a37")).await;
        // Longer than the link check period: the link is up and stays quiet.
        run.settle(Duration::from_millis(2500)).await;
        let log = run.stop().await;
        assert_eq!(states(&log, STRAP_ID), [LinkState::Connecting, LinkState::Connected]);
        assert!(heart_rates(&log, STRAP_ID).is_empty());
        assert_eq!(decoded(&log, STRAP_ID, Characteristic::HeartRateMeasurement).len(), 0);
    }
}

scenario! {
    /// A malformed notification is forwarded as it came (the pipeline logs
    /// the decode error); it is not taken for data, and the device keeps
    /// working: the next good value arrives.
    async fn malformed_notification_is_forwarded_and_device_stays_usable() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        // Flags say uint16 heart rate, but only one byte follows.
        fake.notify(STRAP, "2a37", "0148").await;
        fake.notify(STRAP, "2a37", &hr(72)).await;
        let got = run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 2).await;
        let log = run.stop().await;
        assert_eq!(got[0], [0x01, 0x48]);
        let d = decoded(&log, STRAP_ID, Characteristic::HeartRateMeasurement);
        assert!(d[0].as_ref().unwrap_err().contains("2a37"), "{:?}", d[0]);
        assert_eq!(d[1].as_ref().unwrap().measurements[0].value, Some(72.0));
        use LinkState::*;
        assert_eq!(states(&log, STRAP_ID), [Connecting, Connected, Receiving]);
        // Receiving comes with the good value, not the malformed one.
        let hr_positions: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, e)| harness::payload_of(e, STRAP_ID, Characteristic::HeartRateMeasurement).is_some())
            .map(|(i, _)| i)
            .collect();
        let receiving = position(&log, |e| is_link(e, STRAP_ID, Receiving)).unwrap();
        assert!(hr_positions[0] < receiving && receiving < hr_positions[1]);
    }
}

scenario! {
    /// Connection refused three times, then accepted: each failure is
    /// reported, retries back off (0.5 s, 1 s, 2 s), and data flows after.
    async fn refused_connections_back_off_then_succeed() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        fake.cmd(json!({"cmd": "refuse_connects", "address": STRAP, "count": 3})).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 1).await;
        let log = run.stop().await;
        use LinkState::*;
        assert_eq!(
            states(&log, STRAP_ID),
            [
                Connecting, Disconnected, Connecting, Disconnected, Connecting, Disconnected,
                Connecting, Connected, Receiving
            ]
        );
        let links: Vec<(LinkState, chrono::DateTime<chrono::Utc>)> = log
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Link { state, at, .. } => Some((*state, *at)),
                _ => None,
            })
            .collect();
        let waits: Vec<Duration> = links
            .windows(2)
            .filter(|w| w[0].0 == Disconnected && w[1].0 == Connecting)
            .map(|w| (w[1].1 - w[0].1).to_std().unwrap())
            .collect();
        assert_eq!(waits.len(), 3);
        for (wait, expected) in waits.iter().zip([500, 1000, 2000]) {
            let expected = Duration::from_millis(expected);
            assert!(
                *wait >= expected.mul_f64(0.9) && *wait < expected + Duration::from_millis(1500),
                "backoff {waits:?}"
            );
        }
        let st = fake.state(STRAP).await;
        assert_eq!((st["attempts"].clone(), st["connects"].clone()), (json!(4), json!(1)));
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0]);
    }
}

scenario! {
    /// Glucose meter: after connecting, its clock is read (Current Time) and
    /// then "report all stored records" is sent on the RACP; every record
    /// arrives. After a reconnect the meter re-sends all of them plus the new
    /// one: all forwarded, with their sequence numbers (de-duplication by
    /// sequence number is the core's job). Records are old data: they never
    /// make the link claim `Receiving` (the core judges their age).
    async fn glucose_records_downloaded_on_every_connect() {
        const METER: &str = "AA:BB:CC:DD:EE:20";
        const METER_ID: &str = "ble-AA:BB:CC:DD:EE:20";
        let mut fake = FakeBluez::start().await;
        fake.add(json!({
            "address": METER, "name": "Contour", "rssi": -55, "services": ["1808", "180f", "1805"],
            "records": [glucose(1, 95.0), glucose(2, 110.0), glucose(3, 142.0)],
            // The meter's clock runs 1 h 30 min ahead of UTC.
            "clock_offset_s": 5400,
        }))
        .await;
        let mut run = Run::start(test_config(vec![Assignment::new(METER, "bed-2", DeviceKind::GlucoseMeter)]));
        run.payloads(METER_ID, Characteristic::GlucoseMeasurement, 3).await;
        assert_eq!(fake.state(METER).await["written"]["2a52"], json!(["0101"]));

        // A new measurement, then a link loss and reconnect. The fake answers
        // each request with the records stored when it came in (as a meter
        // does), so record 4 belongs to the second download only, however
        // late the first one's transfer finishes on a busy machine.
        fake.cmd(json!({"cmd": "add_record", "address": METER, "hex": glucose(4, 88.0)})).await;
        fake.cmd(json!({"cmd": "drop_link", "address": METER})).await;
        run.link(METER_ID, LinkState::Disconnected).await;
        run.payloads(METER_ID, Characteristic::GlucoseMeasurement, 7).await;
        let log = run.stop().await;

        let records: Vec<(u16, f64)> = decoded(&log, METER_ID, Characteristic::GlucoseMeasurement)
            .into_iter()
            .map(|d| {
                let d = d.unwrap();
                (d.sequence.unwrap(), d.measurements[0].value.unwrap())
            })
            .collect();
        let seqs: Vec<u16> = records.iter().map(|r| r.0).collect();
        assert_eq!(seqs, [1, 2, 3, 1, 2, 3, 4]);
        assert!((records[6].1 - 88.0).abs() < 1e-9, "{records:?}");
        assert_eq!(fake.state(METER).await["written"]["2a52"], json!(["0101", "0101"]));
        use LinkState::*;
        assert_eq!(
            states(&log, METER_ID),
            [Connecting, Connected, Disconnected, Connecting, Connected]
        );

        // The clock was read on each connect, before that connect's records,
        // and stamped with the gateway time it was current at.
        let is_clock = |e: &DeviceEvent| payload_of(e, METER_ID, Characteristic::CurrentTime).is_some();
        let is_record = |e: &DeviceEvent| payload_of(e, METER_ID, Characteristic::GlucoseMeasurement).is_some();
        let second = log.iter().rposition(|e| is_link(e, METER_ID, Connecting)).unwrap();
        let (first_half, second_half) = log.split_at(second);
        for half in [first_half, second_half] {
            let clock = half.iter().position(is_clock).expect("Current Time read on connect");
            let record = half.iter().position(is_record).expect("records downloaded");
            assert!(clock < record, "the clock is read before the records are asked for");
            let DeviceEvent::Payload { bytes, received, .. } = &half[clock] else { unreachable!() };
            let read = vigil_gatt::decode(Characteristic::CurrentTime, bytes).unwrap();
            let offset = read.device_time.unwrap() - received.naive_utc();
            assert!((offset.num_milliseconds() - 5_400_000).abs() < 500, "offset {offset}");
        }
    }
}

scenario! {
    /// "Add device": only health devices, nearest first; two straps with the
    /// same name are told apart by address.
    async fn scan_lists_health_devices_by_signal_and_address() {
        let mut fake = FakeBluez::start().await;
        fake.add(strap("AA:BB:CC:DD:EE:01", "Polar H10", -70)).await;
        let mut bonded = strap("AA:BB:CC:DD:EE:02", "Polar H10", -45);
        bonded["paired"] = json!(true);
        fake.add(bonded).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:03", "name": "Braun ThermoScan", "rssi": -60,
                        "services": ["1809", "180f"]})).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:04", "name": "Headphones", "rssi": -30,
                        "services": ["110b"]})).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:05", "name": "Beacon", "rssi": -20,
                        "services": []})).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:06", "name": "A&D UA-651", "rssi": -80,
                        "services": ["1810", "1809"]})).await;
        assert!(ble::adapter_present().await);

        let found = ble::scan(Duration::from_millis(800)).await.unwrap();
        let summary: Vec<(&str, Option<&str>, i16)> =
            found.iter().map(|d| (d.address.as_str(), d.name.as_deref(), d.rssi)).collect();
        assert_eq!(
            summary,
            [
                ("AA:BB:CC:DD:EE:02", Some("Polar H10"), -45),
                ("AA:BB:CC:DD:EE:03", Some("Braun ThermoScan"), -60),
                ("AA:BB:CC:DD:EE:01", Some("Polar H10"), -70),
                ("AA:BB:CC:DD:EE:06", Some("A&D UA-651"), -80),
            ]
        );
        assert_eq!(found[0].kinds, [DeviceKind::HeartRateStrap]);
        assert_eq!(found[0].services, [0x180D]);
        assert_eq!(found[3].kinds, [DeviceKind::Thermometer, DeviceKind::BloodPressureCuff]);
        // Link security for the Add-device list (issue 13): BlueZ's bonding state.
        let bonding: Vec<Option<bool>> = found.iter().map(|d| d.bonded).collect();
        assert_eq!(bonding, [Some(true), Some(false), Some(false), Some(false)]);
        assert_eq!(fake.state("AA:BB:CC:DD:EE:01").await["discovering"], json!(false), "scan stopped");
        // Scanning again (the screen reopened) works on the same connection.
        let again = ble::scan(Duration::from_millis(300)).await.unwrap();
        assert_eq!(again, found);
    }
}

scenario! {
    /// Two straps with the same name at neighbouring beds: each value is
    /// attributed to the right device (by address), none crosses over.
    async fn same_name_devices_at_two_beds_stay_apart() {
        const OTHER: &str = "AA:BB:CC:DD:EE:02";
        const OTHER_ID: &str = "ble-AA:BB:CC:DD:EE:02";
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        fake.add(strap(OTHER, "Polar H10", -52)).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP), strap_at("bed-2", OTHER)]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        fake.notify(OTHER, "2a37", &hr(80)).await;
        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 2).await;
        run.payloads(OTHER_ID, Characteristic::HeartRateMeasurement, 1).await;
        let log = run.stop().await;
        let beds: Vec<(String, String)> = log
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Attached(d) => Some((d.device.clone(), d.bed.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            beds,
            [(STRAP_ID.to_string(), "bed-1".to_string()), (OTHER_ID.to_string(), "bed-2".to_string())]
        );
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 73.0]);
        assert_eq!(heart_rates(&log, OTHER_ID), [80.0]);
    }
}

scenario! {
    /// No adapter: `adapter_present` is false (the app falls back to the
    /// simulator), and a source started anyway reports AdapterOff.
    async fn no_adapter_is_reported() {
        let _fake = FakeBluez::start_with(&["--no-adapter"]).await;
        assert!(!ble::adapter_present().await);
        assert!(matches!(ble::scan(Duration::from_millis(100)).await, Err(ble::BleError::NoAdapter)));
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        run.link(STRAP_ID, LinkState::AdapterOff).await;
        let log = run.stop().await;
        assert!(matches!(log[0], DeviceEvent::Attached(_)));
        assert_eq!(states(&log, STRAP_ID), [LinkState::AdapterOff]);
    }
}

scenario! {
    /// Current Time Service: the device clock is set with the CTS layout,
    /// and the link the call opened is closed again.
    async fn device_clock_is_set_through_current_time_service() {
        const THERMO: &str = "AA:BB:CC:DD:EE:30";
        let mut fake = FakeBluez::start().await;
        fake.add(json!({"address": THERMO, "name": "Thermo", "rssi": -60, "services": ["1809", "1805"]}))
            .await;
        let t = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap().and_hms_milli_opt(15, 9, 26, 500).unwrap();
        ble::set_device_clock(THERMO, t).await.unwrap();
        let st = fake.state(THERMO).await;
        // 2026 LE, March 14, 15:09:26, Saturday (6), 128/256 s, manual update.
        assert_eq!(st["written"]["2a2b"], json!(["ea07030e0f091a068001"]));
        assert_eq!(st["connected"], json!(false));

        // A device without CTS says so.
        fake.add(strap(STRAP, "Polar H10", -50)).await;
        let err = ble::set_device_clock(STRAP, t).await.unwrap_err();
        assert!(matches!(err, ble::BleError::Missing { .. }), "{err}");
    }
}

scenario! {
    /// Issue 13 §1: before a device is assigned, its Device Information is read
    /// over a one-off link (the serial on its label tells same-named devices
    /// apart), and that link is closed again.
    async fn device_information_is_read_before_assignment_and_the_link_closed() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let info = ble::identify(STRAP).await.unwrap();
        use vigil_gatt::DeviceInfoField as F;
        assert!(info.contains(&F::SerialNumber("C0680226".into())), "{info:?}");
        assert!(info.contains(&F::ModelNumber("H10".into())), "{info:?}");
        assert!(info.contains(&F::ManufacturerName("Polar Electro Oy".into())), "{info:?}");
        assert_eq!(fake.state(STRAP).await["connected"], json!(false));
        // No such device in range: a clear error, not an empty answer.
        assert!(ble::identify("AA:BB:CC:DD:EE:99").await.is_err());
    }
}

const OTHER: &str = "AA:BB:CC:DD:EE:02";
const OTHER_ID: &str = "ble-AA:BB:CC:DD:EE:02";
const HRM: Characteristic = Characteristic::HeartRateMeasurement;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Two straps (bed 1, bed 2) both streaming one value each.
async fn two_streaming(fake: &mut FakeBluez) -> Run {
    add_strap(fake).await;
    fake.add(strap(OTHER, "Polar H10", -52)).await;
    let mut run = Run::start(test_config(vec![
        strap_at("bed-1", STRAP),
        strap_at("bed-2", OTHER),
    ]));
    fake.notify(STRAP, "2a37", &hr(72)).await;
    fake.notify(OTHER, "2a37", &hr(80)).await;
    run.payloads(STRAP_ID, HRM, 1).await;
    run.payloads(OTHER_ID, HRM, 1).await;
    run
}

/// Waits until the adapter is (not) discovering.
async fn scanning(fake: &mut FakeBluez, want: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while fake.state(STRAP).await["discovering"] != json!(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "discovering never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

scenario! {
    /// A device assigned while another streams: the new one is attached and
    /// connects, the first one's link is never touched (no Connecting or
    /// Disconnected after the attach, one connection), both devices' values
    /// arrive. Attaching it again unchanged does nothing.
    async fn attaching_a_device_leaves_the_others_streaming() {
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        fake.add(strap(OTHER, "Polar H10", -52)).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        run.payloads(STRAP_ID, HRM, 1).await;
        run.control.attach(strap_at("bed-2", &OTHER.to_lowercase())).await.unwrap();
        fake.notify(OTHER, "2a37", &hr(80)).await;
        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(OTHER_ID, HRM, 1).await;
        run.payloads(STRAP_ID, HRM, 2).await;
        run.control.attach(strap_at("bed-2", OTHER)).await.unwrap();
        fake.notify(OTHER, "2a37", &hr(81)).await;
        run.payloads(OTHER_ID, HRM, 2).await;
        let log = run.stop().await;

        use LinkState::*;
        assert_eq!(states(&log, STRAP_ID), [Connecting, Connected, Receiving]);
        assert_eq!(states(&log, OTHER_ID), [Connecting, Connected, Receiving]);
        assert_eq!(attached(&log), pairs(&[(STRAP_ID, "bed-1"), (OTHER_ID, "bed-2")]));
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 73.0]);
        assert_eq!(heart_rates(&log, OTHER_ID), [80.0, 81.0]);
        assert_eq!(fake.state(STRAP).await["connects"], json!(1));
        assert_eq!(fake.state(OTHER).await["connects"], json!(1));
    }
}

scenario! {
    /// Detaching a device stops its link only: it is disconnected by the time
    /// `detach` returns and nothing more is heard of it, while the other
    /// device keeps streaming on its first connection. A device detached
    /// while it is still being looked for stops the scan it asked for.
    async fn detaching_a_device_stops_only_its_link() {
        const GHOST: &str = "AA:BB:CC:DD:EE:09";
        const GHOST_ID: &str = "ble-AA:BB:CC:DD:EE:09";
        let mut fake = FakeBluez::start().await;
        let mut run = two_streaming(&mut fake).await;
        // By device id, as the screen names it.
        run.control.detach(OTHER_ID).await.unwrap();
        assert_eq!(fake.state(OTHER).await["connected"], json!(false));
        // Whatever was sent before `detach` returned.
        run.settle(Duration::from_millis(100)).await;
        let detached_at = run.log.len();

        // A device nobody has seen: its link scans for it; detached, the scan stops.
        assert_eq!(fake.state(STRAP).await["discovering"], json!(false));
        run.control.attach(strap_at("bed-3", GHOST)).await.unwrap();
        scanning(&mut fake, true).await;
        run.control.detach(GHOST).await.unwrap();
        scanning(&mut fake, false).await;
        run.settle(Duration::from_millis(100)).await;
        let ghost_gone_at = run.log.len();

        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(STRAP_ID, HRM, 2).await;
        // Longer than the link check period.
        run.settle(Duration::from_millis(1500)).await;
        assert_eq!(fake.state(STRAP).await["discovering"], json!(false), "no scan after the detach");
        let log = run.stop().await;

        assert!(
            log[detached_at..].iter().all(|e| device_of(e) != OTHER_ID),
            "events after the detach: {:#?}",
            &log[detached_at..]
        );
        assert!(log[ghost_gone_at..].iter().all(|e| device_of(e) != GHOST_ID));
        use LinkState::*;
        assert_eq!(states(&log, STRAP_ID), [Connecting, Connected, Receiving]);
        assert_eq!(states(&log, OTHER_ID), [Connecting, Connected, Receiving]);
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 73.0]);
        assert_eq!(heart_rates(&log, OTHER_ID), [80.0]);
        assert_eq!(fake.state(STRAP).await["connects"], json!(1));
        assert_eq!(fake.state(OTHER).await["connected"], json!(false));
    }
}

scenario! {
    /// Moving a device to another bed (attaching its address again with
    /// another bed): a fresh `Attached`, its link alone reconnects, the other
    /// device is untouched.
    async fn moving_a_device_restarts_only_its_link() {
        let mut fake = FakeBluez::start().await;
        let mut run = two_streaming(&mut fake).await;
        run.control.attach(strap_at("bed-3", OTHER)).await.unwrap();
        fake.notify(OTHER, "2a37", &hr(81)).await;
        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(OTHER_ID, HRM, 2).await;
        run.payloads(STRAP_ID, HRM, 2).await;
        let log = run.stop().await;

        assert_eq!(
            attached(&log),
            pairs(&[(STRAP_ID, "bed-1"), (OTHER_ID, "bed-2"), (OTHER_ID, "bed-3")])
        );
        use LinkState::*;
        assert_eq!(states(&log, STRAP_ID), [Connecting, Connected, Receiving]);
        assert_eq!(
            states(&log, OTHER_ID),
            [Connecting, Connected, Receiving, Connecting, Connected, Receiving]
        );
        // Its values after the move come after the new Attached.
        let moved = position(&log, |e| matches!(e, DeviceEvent::Attached(d) if d.bed == "bed-3")).unwrap();
        let second = log
            .iter()
            .rposition(|e| payload_of(e, OTHER_ID, HRM).is_some())
            .unwrap();
        assert!(moved < second);
        assert_eq!(heart_rates(&log, OTHER_ID), [80.0, 81.0]);
        assert_eq!(fake.state(STRAP).await["connects"], json!(1));
        assert_eq!(fake.state(OTHER).await["connects"], json!(2));
    }
}

scenario! {
    /// Commands sent while there is no adapter yet are not lost: an attached
    /// device is announced (and reported adapter-off like the others), a
    /// detached one is dropped from the list the links will start from.
    async fn commands_before_the_adapter_opens_are_kept() {
        let _fake = FakeBluez::start_with(&["--no-adapter"]).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        run.link(STRAP_ID, LinkState::AdapterOff).await;
        run.control.attach(strap_at("bed-2", OTHER)).await.unwrap();
        run.link(OTHER_ID, LinkState::AdapterOff).await;
        run.control.detach(STRAP).await.unwrap();
        run.control.attach(strap_at("bed-2", OTHER)).await.unwrap();
        let log = run.stop().await;
        assert_eq!(attached(&log), pairs(&[(STRAP_ID, "bed-1"), (OTHER_ID, "bed-2")]));
        assert_eq!(states(&log, OTHER_ID), [LinkState::AdapterOff]);
        assert_eq!(states(&log, STRAP_ID), [LinkState::AdapterOff]);
    }
}

/// PLX Continuous Measurement: SpO2 97 %, pulse 72 /min (no flags).
const SPO2_97: &str = "0061004800";

scenario! {
    /// Issue 13 §1: a device assigned as a heart-rate strap that also
    /// notifies PLX Continuous Measurement (never subscribed to) has those
    /// values refused: no PLX payload is forwarded, each is reported as
    /// `Refused` (the core counts them), and its heart rates still flow.
    async fn a_strap_notifying_spo2_has_it_refused_never_forwarded() {
        let mut fake = FakeBluez::start().await;
        let mut impostor = strap(STRAP, "Polar H10", -40);
        impostor["services"] = json!(["180d", "180f", "1822"]);
        fake.add(impostor).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP)]));
        fake.notify(STRAP, "2a37", &hr(72)).await;
        for _ in 0..3 {
            fake.cmd(json!({"cmd": "notify", "address": STRAP, "char": "2a5f", "hex": SPO2_97, "force": true, "timeout": 20}))
                .await;
        }
        fake.notify(STRAP, "2a37", &hr(73)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 2).await;
        let log = run.stop().await;
        assert_eq!(heart_rates(&log, STRAP_ID), [72.0, 73.0]);
        assert!(
            log.iter().all(|e| payload_of(e, STRAP_ID, Characteristic::PlxContinuousMeasurement).is_none()),
            "an SpO2 value from an HR strap was forwarded"
        );
        let refused: Vec<&str> = log
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Refused { device, characteristic, .. } if device == STRAP_ID => Some(characteristic.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(refused.len(), 3, "{log:#?}");
        assert!(refused.iter().all(|c| c.starts_with("00002a5f")), "{refused:?}");
    }
}

scenario! {
    /// Issue 13 §1: each connection reports its link security, read from
    /// BlueZ's Device1 Bonded/Paired over D-Bus, after `Connected` and
    /// before the device's first value: a paired device bonded, an unpaired
    /// one not.
    async fn link_security_is_read_from_bluez_before_any_value() {
        const PAIRED: &str = "AA:BB:CC:DD:EE:02";
        const PAIRED_ID: &str = "ble-AA:BB:CC:DD:EE:02";
        let mut fake = FakeBluez::start().await;
        add_strap(&mut fake).await;
        let mut paired = strap(PAIRED, "Polar H10", -45);
        paired["paired"] = json!(true);
        fake.add(paired).await;
        let mut run = Run::start(test_config(vec![strap_at("bed-1", STRAP), strap_at("bed-2", PAIRED)]));
        fake.notify(STRAP, "2a37", &hr(70)).await;
        fake.notify(PAIRED, "2a37", &hr(80)).await;
        run.payloads(STRAP_ID, Characteristic::HeartRateMeasurement, 1).await;
        run.payloads(PAIRED_ID, Characteristic::HeartRateMeasurement, 1).await;
        let log = run.stop().await;
        for (id, bonded) in [(STRAP_ID, false), (PAIRED_ID, true)] {
            let security = position(&log, |e| matches!(e, DeviceEvent::Security { device, .. } if device == id))
                .unwrap_or_else(|| panic!("no Security event for {id}: {log:#?}"));
            let DeviceEvent::Security { bonded: got, .. } = &log[security] else { unreachable!() };
            assert_eq!(*got, Some(bonded), "{id}");
            let connected = position(&log, |e| is_link(e, id, LinkState::Connected)).unwrap();
            let first_value = position(&log, |e| device_of(e) == id && matches!(e, DeviceEvent::Payload { .. })).unwrap();
            assert!(connected < security && security < first_value, "{id}: {connected} {security} {first_value}");
        }
    }
}
