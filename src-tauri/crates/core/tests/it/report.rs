//! Issue 15: a bed's printable report through the guarded entry point the
//! screen's "Report…" button uses — clinicians only, read from the store.

use super::config;
use std::time::Duration;
use vigil_core::auth::{self, AuthError, Role};
use vigil_core::{CoreError, Vigil};
use vigil_devices::sim::Scenario;

const PW: &str = "a long enough password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_gets_a_verified_report_of_a_bed_and_a_nurse_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    auth::add_user(v.store(), "cleo", Role::Clinician, PW).await.unwrap();
    auth::add_user(v.store(), "nina", Role::Nurse, PW).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();
    let from = now - chrono::Duration::hours(1);
    let preset = vigil_alarms::SitePreset::standard();

    v.sign_in("nina", PW).await.unwrap();
    assert!(matches!(
        v.user_report("bed-1", from, now, chrono_tz::Europe::London, preset.clone()).await,
        Err(CoreError::Auth(AuthError::Forbidden { .. }))
    ));
    v.sign_out();
    v.sign_in("cleo", PW).await.unwrap();
    let r = v.user_report("bed-1", from, now, chrono_tz::Europe::London, preset.clone()).await.unwrap();
    assert_eq!(r.header.bed, "bed-1");
    assert_eq!(r.generated_by, "cleo");
    assert!(r.charts.iter().any(|c| c.label == "HR" && c.unit == "/min" && !c.samples.is_empty()));
    assert!(r.completeness.chunks_verified > 0);
    assert!(r.completeness.failed_chunks.is_empty());
    let pdf = vigil_report::render_pdf(&r).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    // The log-safe form names no patient.
    assert!(!format!("{r:?}").contains("name"));

    // Nothing stored in a range long ago: a clear error, not an empty PDF.
    let old = from - chrono::Duration::days(20);
    let err = v.user_report("bed-1", old, old + chrono::Duration::hours(1), chrono_tz::UTC, preset).await.unwrap_err();
    assert!(err.to_string().contains("nothing stored"), "{err}");
    assert_eq!(err.code(), "report_empty");
    v.shutdown().await;
}

/// A clinician reading a report must see that a step in SpO2 came with a
/// new probe: the devices section says which device measured when, and the
/// chart marks the change. Read back from the real PDF by poppler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_which_oximeter_measured_when() {
    use super::trends::{oximeter_swapped, OXI_A, OXI_B, SWAP_S};
    let dir = tempfile::tempdir().unwrap();
    let (v, start) = oximeter_swapped(dir.path()).await;
    auth::add_user(v.store(), "cleo", Role::Clinician, PW).await.unwrap();
    v.sign_in("cleo", PW).await.unwrap();
    let end = start + chrono::Duration::hours(1) + chrono::Duration::seconds(1);
    let preset = vigil_alarms::SitePreset::standard();
    let r = v.user_report("bed-1", start, end, chrono_tz::UTC, preset).await.unwrap();
    let spo2 = r.charts.iter().find(|c| c.label == "SpO2").unwrap();
    let marks: Vec<_> = spo2
        .events
        .iter()
        .filter(|e| e.kind == vigil_report::EventKind::DeviceChange)
        .map(|e| (e.at, e.label.as_str()))
        .collect();
    let swap = start + chrono::Duration::seconds(SWAP_S);
    assert_eq!(marks, vec![(swap, format!("SpO2: device changed to {OXI_B}").as_str())]);

    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, vigil_report::render_pdf(&r).unwrap()).unwrap();
    let out = std::process::Command::new("pdftotext").arg(&pdf).arg("-").output().expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    // The first reading came one second in; the new probe's at 00:30:30.
    let line = format!("SpO2: device {OXI_A} from 00:00, device {OXI_B} from 00:30");
    assert!(text.contains(&line), "no device change line in the report");
    assert!(text.contains(&format!("PR (SpO2): device {OXI_A} from 00:00, device {OXI_B} from 00:30")));
    v.shutdown().await;
}
