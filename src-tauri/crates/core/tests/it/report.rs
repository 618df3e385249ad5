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
