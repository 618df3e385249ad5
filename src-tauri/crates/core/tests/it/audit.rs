//! Issue 14: actions through the core's guarded paths (the ones the Tauri
//! commands call) reach the signed audit trail with the signed-in user as
//! actor, refused ones as refused; a trail that refuses writes never stops
//! monitoring, is counted, and its records are written once it heals.

use crate::config;
use std::time::Duration;
use vigil_core::auth::{self, Role};
use vigil_core::{AdmitRequest, Vigil};
use vigil_devices::sim::Scenario;
use vigil_store::{AuditEntry, KeySource, Outcome, Store};

const PW: &str = "a long enough password";

fn admit(bed: &str) -> AdmitRequest {
    AdmitRequest {
        bed: bed.into(),
        display_name: "Audra Trailsworth".into(),
        mrn: "MRN-AUDIT-1".into(),
        date_of_birth: "1970-01-02".into(),
        category: "adult".into(),
    }
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The trail after shutdown, checked whole.
async fn trail(dir: &std::path::Path) -> Vec<AuditEntry> {
    let store = Store::open(
        &dir.join("vigil.db"),
        &KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let report = store.audit_verify().await.unwrap();
    assert!(report.intact(), "{:?}", report.faults);
    let all = store.audit_entries(None, None).await.unwrap();
    store.close().await;
    all
}

fn find<'a>(t: &'a [AuditEntry], actor: &str, action: &str, outcome: Outcome) -> Option<&'a AuditEntry> {
    t.iter()
        .find(|e| e.record.actor == actor && e.record.action == action && e.record.outcome == outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_actions_are_audited_with_the_signed_in_user_and_refusals_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    v.create_first_admin("root-admin", PW).await.unwrap();
    v.sign_out();
    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();
    auth::add_user(v.store(), "vic", Role::Viewer, PW).await.unwrap();

    // Signed out: refused and recorded.
    assert!(v.user_admit(admit("bed-1")).await.is_err());
    assert!(v.sign_in("mallory", "not the password").await.is_err());
    v.sign_in("ann", PW).await.unwrap();
    let adm = v.user_admit(admit("bed-1")).await.unwrap();
    v.user_set_limit("bed-1", "heart_rate", Some(40.0), Some(130.0))
        .await
        .unwrap();
    v.user_acknowledge("bed-1", &[]).await.unwrap();
    v.user_pause_audio("bed-1").await.unwrap();
    assert!(v.user_discharge("bed-3").await.is_err(), "nobody at bed-3");
    let _ = v.snapshot_for_session();
    v.sign_out();
    v.sign_in("vic", PW).await.unwrap();
    assert!(v.user_discharge("bed-1").await.is_err());
    assert!(v.user_alarm_log("bed-1", 1).await.is_err());
    v.break_glass("patient deteriorating, clinician not on ward")
        .unwrap();
    v.user_alarm_log("bed-1", 1).await.unwrap();
    v.sign_out();
    assert!(wait_until(|| v.audit_status().pending == 0).await);
    let status = v.audit_status();
    assert!(
        !status.failing && status.errors == 0 && status.lost == 0,
        "{status:?}"
    );
    v.shutdown().await;

    let t = trail(dir.path()).await;
    assert!(find(&t, "root-admin", "manage_users", Outcome::Success).is_some());
    let refused = find(&t, "(signed out)", "admit", Outcome::Refused).expect("signed-out admit");
    assert_eq!(refused.record.role, None);
    assert!(
        find(&t, "mallory", "sign_in", Outcome::Failed).is_some(),
        "a wrong password"
    );
    let signed_in = find(&t, "ann", "sign_in", Outcome::Success).unwrap();
    assert_eq!(signed_in.record.role.as_deref(), Some("nurse"));
    assert!(!signed_in.record.workstation.is_empty());
    let admitted = find(&t, "ann", "admit", Outcome::Success).unwrap();
    assert_eq!(
        admitted.record.admission.as_deref(),
        Some(adm.id.as_str()),
        "the new admission"
    );
    // Allowed, then failed (no one at bed-3): recorded as failed, once.
    let failed: Vec<_> = t
        .iter()
        .filter(|e| e.record.action == "discharge" && e.record.actor == "ann")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].record.outcome, Outcome::Failed);
    for action in ["set_limit", "acknowledge", "pause_audio", "view_patient"] {
        let e = find(&t, "ann", action, Outcome::Success).unwrap_or_else(|| panic!("{action}"));
        assert_eq!(e.record.admission.as_deref(), Some(adm.id.as_str()), "{action}");
    }
    assert!(find(&t, "ann", "sign_out", Outcome::Success).is_some());
    let d = find(&t, "vic", "discharge", Outcome::Refused).unwrap();
    assert_eq!(d.record.admission.as_deref(), Some(adm.id.as_str()));
    assert!(find(&t, "vic", "alarm_log", Outcome::Refused).is_some());
    let glass = find(&t, "vic", "break_glass", Outcome::Success).unwrap();
    assert!(glass.record.break_glass);
    let under = t
        .iter()
        .rfind(|e| e.record.actor == "vic" && e.record.action == "alarm_log")
        .unwrap();
    assert_eq!(under.record.outcome, Outcome::Success);
    assert!(under.record.break_glass, "flagged as emergency access");
    // No PHI anywhere in the trail.
    let text = serde_json::to_string(&t).unwrap();
    for phi in [
        "Audra",
        "Trailsworth",
        "MRN-AUDIT-1",
        "1970-01-02",
        "deteriorating",
    ] {
        assert!(!text.contains(phi), "{phi} in the trail");
    }
    // Monitoring polls are not in it.
    assert!(t.iter().all(|e| e.record.action != "monitor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_trail_never_stops_monitoring_is_counted_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TRIGGER inject_fault BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        .execute(&db)
        .await
        .unwrap();
    // Actions go on while the trail refuses their records.
    v.sign_in("ann", PW).await.unwrap();
    v.user_admit(admit("bed-2")).await.unwrap();
    v.user_set_limit("bed-2", "heart_rate", Some(40.0), Some(130.0))
        .await
        .unwrap();
    assert!(
        wait_until(|| v.audit_status().failing).await,
        "failure not visible"
    );
    let stored = v.stats().get(&v.stats().stored);
    assert!(
        wait_until(|| v.stats().get(&v.stats().stored) > stored).await,
        "monitoring stopped"
    );
    let s = v.audit_status();
    assert!(s.errors > 0 && s.pending >= 3 && s.lost == 0, "{s:?}");
    sqlx::query("DROP TRIGGER inject_fault")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    assert!(
        wait_until(|| {
            let s = v.audit_status();
            !s.failing && s.pending == 0
        })
        .await,
        "{:?}",
        v.audit_status()
    );
    v.shutdown().await;
    let t = trail(dir.path()).await;
    for action in ["sign_in", "admit", "set_limit"] {
        assert!(find(&t, "ann", action, Outcome::Success).is_some(), "{action}");
    }
}

/// Beds showing an "audit trail failure" whose condition stands (not latched).
fn audit_failure_at(v: &Vigil) -> Vec<String> {
    use vigil_alarms::{AlarmKind, TechnicalKind};
    v.snapshot()
        .alarms
        .into_iter()
        .filter(|b| {
            b.active.iter().any(|a| {
                matches!(a.kind, AlarmKind::Technical { kind: TechnicalKind::AuditFailure, .. }) && !a.latched
            })
        })
        .map(|b| b.bed)
        .collect()
}

/// Issue 14: a trail that cannot be written is visible on screen: a technical
/// alarm "audit trail failure" at every bed while its writes fail (injected as
/// above), gone once they work again and the held records are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_trail_is_a_technical_alarm_at_every_bed_until_it_heals() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();
    assert!(audit_failure_at(&v).is_empty());
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TRIGGER inject_fault BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        .execute(&db)
        .await
        .unwrap();
    v.sign_in("ann", PW).await.unwrap();
    assert!(
        wait_until(|| audit_failure_at(&v).len() == 4).await,
        "no audit trail failure at every bed: {:?} ({:?})",
        audit_failure_at(&v),
        v.audit_status()
    );
    let alarm = v.snapshot().alarms[0]
        .active
        .iter()
        .find(|a| matches!(a.kind, vigil_alarms::AlarmKind::Technical { kind: vigil_alarms::TechnicalKind::AuditFailure, .. }))
        .cloned()
        .unwrap();
    assert!(alarm.message.contains("audit trail"), "{}", alarm.message);
    sqlx::query("DROP TRIGGER inject_fault")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    assert!(
        wait_until(|| audit_failure_at(&v).is_empty()).await,
        "still alarming after the trail healed: {:?}",
        v.audit_status()
    );
    assert_eq!(v.audit_status().pending, 0);
    v.shutdown().await;
    let t = trail(dir.path()).await;
    assert!(find(&t, "ann", "sign_in", Outcome::Success).is_some(), "the held record was lost");
}

/// Issue 16: installing an update restarts Vigil, so monitoring stops for the restart. Only
/// an admin installs; while beds are monitored only with a confirmation naming how many (a
/// stale count is refused); every check, install and refusal is in the signed trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_admin_only_confirmed_while_beds_are_monitored_and_audited() {
    use vigil_core::update::UpdateRefusal;
    use vigil_core::CoreError;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let beds = v.snapshot().beds.len();
    assert!(beds >= 2);
    // The simulated ward: every bed's devices connect and send.
    assert!(wait_until(|| v.monitored_beds() == beds).await, "beds monitored: {}", v.monitored_beds());
    v.create_first_admin("root-admin", PW).await.unwrap();
    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();

    // No update server in the site configuration: updates are off, and that is recorded.
    let e = v.user_check_updates(false).err().unwrap();
    assert_eq!(e.code(), "updates_off");
    let t = v.user_check_updates(true).unwrap();
    v.update_done(t, true, "up to date (0.1.0)".into());

    // Beds monitored: no install without a confirmation naming exactly how many.
    let e = v.user_install_update(true, None).err().unwrap();
    assert!(matches!(&e, CoreError::Update(UpdateRefusal::NeedsConfirmation { beds: b }) if *b == beds), "{e}");
    assert!(e.to_string().starts_with(&format!("{beds} beds are monitored")), "{e}");
    assert!(e.to_string().contains("monitoring and alarms stop"), "{e}");
    assert!(v.user_install_update(true, Some(beds - 1)).is_err(), "a stale count");
    let t = v.user_install_update(true, Some(beds)).expect("confirmed for the beds monitored now");
    v.update_done(t, false, "update 9.9.9: refused: the update's signature does not verify; nothing was installed".into());

    // A nurse may check, never install, confirmation or not.
    v.sign_in("ann", PW).await.unwrap();
    let e = v.user_install_update(true, Some(beds)).err().unwrap();
    assert_eq!(e.code(), "forbidden");
    assert!(v.update_setup(None).endpoint.is_none() && !v.update_setup(None).may_install);
    v.sign_out();
    assert!(wait_until(|| v.audit_status().pending == 0).await);
    v.shutdown().await;

    let t = trail(dir.path()).await;
    let detail = |e: &AuditEntry| e.record.detail.clone().unwrap_or_default();
    let off = find(&t, "root-admin", "check_updates", Outcome::Refused).expect("updates off, recorded");
    assert!(detail(off).contains("updates are off"), "{off:?}");
    assert!(find(&t, "root-admin", "check_updates", Outcome::Success).is_some());
    let asked: Vec<_> = t
        .iter()
        .filter(|e| e.record.action == "install_update" && e.record.outcome == Outcome::Refused && e.record.actor == "root-admin")
        .collect();
    assert_eq!(asked.len(), 2, "no confirmation, then a stale one: {asked:?}");
    assert!(asked.iter().all(|e| detail(e).contains(&format!("{beds} beds are monitored"))));
    let failed = find(&t, "root-admin", "install_update", Outcome::Failed).expect("the install's outcome");
    assert!(detail(failed).contains("signature does not verify"), "{failed:?}");
    assert!(detail(failed).contains(&format!("confirmed with {beds} bed(s) monitored")), "{failed:?}");
    let nurse = find(&t, "ann", "install_update", Outcome::Refused).expect("the nurse's refusal");
    assert_eq!(nurse.record.role.as_deref(), Some("nurse"));
}
