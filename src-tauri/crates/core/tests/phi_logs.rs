//! Issue 14: a full scenario through the core's real paths — a patient
//! admitted with a name, MRN and date of birth, a deteriorating ward raising
//! alarms, acknowledge and pause, a NEWS2 entry, a patient limit, the alarm
//! log and the readings read back, a wrong sign-in, discharge — with every
//! log line at TRACE level captured, then scanned: the patient's name, MRN,
//! date of birth and measured values must appear nowhere.
//!
//! Its own test binary: the log subscriber is process-wide, and no other
//! test's patients or values may mix into what is scanned.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil_core::auth::{self, Role};
use vigil_core::{AdmitRequest, Config, DeviceMode, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::ScaledClock;
use vigil_store::KeySource;

const NAME: &str = "Phiona Leakwell";
const MRN: &str = "MRN-LEAK-8841";
const DOB: &str = "1947-07-19";
const PW: &str = "a long enough password";

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The distinct non-integer values as a log would print them ("36.8",
/// "36.85"). Whole numbers are left out: 72 also appears in times, ports and
/// counts, so a hit would say nothing.
fn printed_forms(values: &[f64]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for v in values.iter().filter(|v| v.fract() != 0.0 && v.is_finite()) {
        out.insert(format!("{v}"));
        out.insert(format!("{v:.1}"));
        out.insert(format!("{v:.2}"));
    }
    out.retain(|s| !s.ends_with(".0") && !s.ends_with(".00"));
    out
}

/// Number-like tokens of the log: runs of digits and dots, so "01:13:36.8123Z"
/// gives "36.8123", never "36.8". The values of sqlx's query timings
/// (`elapsed=37.4µs elapsed_secs=3.74e-5`) are left out: they are durations sqlx
/// measured, and one once matched a temperature of 37.4 by chance (CI, stop 26).
fn numeric_tokens(log: &str) -> std::collections::BTreeSet<&str> {
    log.split_whitespace()
        .filter(|field| !TIMING_FIELDS.iter().any(|k| field.starts_with(k)))
        .flat_map(|field| field.split(|c: char| !(c.is_ascii_digit() || c == '.')))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// sqlx's per-query timing fields (its `sqlx::query` events).
const TIMING_FIELDS: [&str; 2] = ["elapsed=", "elapsed_secs="];

#[test]
fn sqlx_timings_are_not_read_as_values_but_everything_else_is() {
    let line = "DEBUG sqlx::query: rows_returned=1 elapsed=37.4µs elapsed_secs=3.74e-5 spo2 37.4";
    let tokens = numeric_tokens(line);
    assert!(tokens.contains("37.4"), "the value after the timings is still seen");
    assert!(!tokens.contains("3.74"));
    let timings_only = "DEBUG sqlx::query: elapsed=37.4µs elapsed_secs=3.74e-5";
    assert!(!numeric_tokens(timings_only).contains("37.4"));
}

#[test]
fn a_full_scenario_logs_no_name_mrn_dob_or_value() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let values = rt.block_on(async {
        let start = chrono::Utc::now();
        let cfg = Config {
            data_dir: dir.path().to_path_buf(),
            key: KeySource::passphrase("phi-log-test-passphrase", "test"),
            clock: Arc::new(ScaledClock::new(start, 60.0)),
            sim: SimSettings {
                scenario: Scenario::Deterioration,
                beds: 2,
                seed: 11,
            },
            retention: Default::default(),
            low_disk_bytes: 0,
            site_files: Vec::new(),
            alarm_preset: Default::default(),
            devices: DeviceMode::Simulated,
            fhir: None,
            ble: Default::default(),
        };
        let v = Vigil::start(cfg).await.unwrap();
        auth::add_user(v.store(), "nina", Role::Nurse, PW).await.unwrap();
        auth::add_user(v.store(), "carl", Role::Clinician, PW).await.unwrap();
        assert!(v.sign_in("nina", "not the password").await.is_err());
        tokio::time::sleep(Duration::from_millis(1100)).await; // the wrong password's hold
        v.sign_in("nina", PW).await.unwrap();
        v.user_admit(AdmitRequest {
            bed: "bed-1".into(),
            display_name: NAME.into(),
            mrn: MRN.into(),
            date_of_birth: DOB.into(),
            category: "adult".into(),
        })
        .await
        .unwrap();
        // 20 simulated minutes of deterioration: alarms start and escalate.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let ids: Vec<u64> = v
            .snapshot()
            .alarms
            .iter()
            .filter(|b| b.bed == "bed-1")
            .flat_map(|b| b.active.iter().map(|a| a.id))
            .collect();
        assert!(!ids.is_empty(), "the deteriorating patient raised no alarm");
        v.user_acknowledge("bed-1", &ids).await.unwrap();
        v.user_pause_audio("bed-1").await.unwrap();
        let entry = serde_json::from_value(serde_json::json!({"parameter": "temperature", "value": 38.65})).unwrap();
        v.user_enter_news2("bed-1", entry).await.unwrap();
        v.user_set_limit("bed-1", "heart_rate", Some(45.5), Some(131.5)).await.unwrap();
        v.sign_out();
        v.sign_in("carl", PW).await.unwrap();
        let log = v
            .user_alarm_log("bed-1", 24)
            .await
            .unwrap();
        assert!(!log.is_empty());
        v.user_news2_history("bed-1").unwrap();
        // The stored NEWS2 history read back for a report and the trend marks.
        let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();
        let report = v
            .user_report("bed-1", start, now, chrono_tz::UTC, vigil_alarms::SitePreset::standard())
            .await
            .unwrap();
        assert!(!report.news2.is_empty(), "the report has the stored NEWS2");
        v.user_trend(&vigil_core::trends::TrendRequest {
            bed: "bed-1".into(),
            admission: None,
            codes: vec![vigil_model::Mdc::ECG_HEART_RATE.0],
            from: start,
            to: now,
            points: 100,
        })
        .await
        .unwrap();
        v.sign_out();
        v.sign_in("nina", PW).await.unwrap();
        v.user_discharge("bed-1").await.unwrap();
        let readings = v
            .store()
            .query_range(Some("bed-1"), start, start + chrono::Duration::days(1))
            .await
            .unwrap();
        assert!(readings.len() > 100, "{} readings", readings.len());
        v.shutdown().await;
        let mut values: Vec<f64> = readings.iter().filter_map(|r| r.value.number()).collect();
        values.extend([38.65, 45.5, 131.5]);
        values
    });

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.lines().count() > 20, "too little was logged to say anything:\n{log}");
    for (what, phi) in [("name", NAME), ("MRN", MRN), ("date of birth", DOB)] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(phi)).collect();
        assert!(hits.is_empty(), "the patient's {what} is in the log:\n{}", hits.join("\n"));
    }
    // Parts of the name too (a log could print "Leakwell, P.").
    assert!(!log.contains("Leakwell"), "part of the name is in the log");
    let tokens = numeric_tokens(&log);
    let leaked: Vec<String> = printed_forms(&values)
        .into_iter()
        .filter(|v| tokens.contains(v.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "measured or entered values in the log: {leaked:?}\n{}",
        log.lines()
            .filter(|l| leaked.iter().any(|v| numeric_tokens(l).contains(v.as_str())))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "{} log lines, {} distinct non-integer values checked: no name, MRN, DOB or value",
        log.lines().count(),
        printed_forms(&values).len()
    );
}
