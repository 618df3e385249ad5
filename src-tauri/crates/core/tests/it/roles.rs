//! Users, sign-in and the role matrix (issue 14): every action, through the
//! core's guarded entry points, allowed for the right roles and refused with
//! a clear error for the others; a signed-out workstation keeps monitoring
//! but shows no PHI and does nothing else.

use super::config;
use std::time::{Duration, Instant};
use vigil_core::auth::{self, Action, Auth, AuthError, Role};
use vigil_core::{AdmitRequest, CoreError, Vigil};
use vigil_devices::sim::Scenario;

const PW: &str = "a long enough password";

fn admit_request() -> AdmitRequest {
    AdmitRequest {
        bed: "bed-1".into(),
        display_name: "Roleta Matrixson".into(),
        mrn: "MRN-ROLES-1".into(),
        date_of_birth: "1961-02-03".into(),
        category: "adult".into(),
    }
}

/// Runs the guarded entry point of `action`; its authorization outcome
/// (Ok(()) when the check let it through, whatever happened next).
async fn attempt(v: &Vigil, action: Action) -> Result<(), AuthError> {
    let r: Result<(), CoreError> = match action {
        Action::Monitor => v.user_sync_status().await.map(drop),
        Action::ViewPatient => {
            let s = v.snapshot_for_session();
            let shown = s
                .beds
                .iter()
                .filter_map(|b| b.admission.as_ref())
                .any(|a| !a.display_name.is_empty());
            return if shown {
                Ok(())
            } else {
                v.authorize(Action::ViewPatient, None).map(drop).map_err(auth_err)
            };
        }
        Action::Admit => v.user_admit(admit_request()).await.map(drop),
        Action::Discharge => v.user_discharge("bed-2").await,
        Action::ScanDevices => v.user_scan(0).await.map(drop),
        Action::PairDevice => v.user_pair_device("AA:BB:CC:DD:EE:FF").await.map(drop),
        Action::AssignDevice => {
            v.user_assign_device("AA:BB:CC:DD:EE:FF", "bed-3", "pulse_oximeter")
                .await
        }
        Action::RemoveDevice => v.user_remove_device("AA:BB:CC:DD:EE:FF").await,
        Action::SetDeviceClock => v.user_set_device_clock("AA:BB:CC:DD:EE:FF").await,
        Action::Acknowledge => v.user_acknowledge("bed-1", &[]).await.map(drop),
        Action::PauseAudio => v.user_pause_audio("bed-1").await,
        Action::EnterNews2 => {
            let entry =
                serde_json::from_value(serde_json::json!({"parameter":"consciousness","value":"alert"}))
                    .unwrap();
            v.user_enter_news2("bed-1", entry).await
        }
        Action::SetLimit => {
            v.user_set_limit("bed-1", "heart_rate", Some(45.0), Some(125.0))
                .await
        }
        Action::LinkPatient => v.user_find_patient("MRN-X").await.map(drop),
        Action::Trends => v.user_news2_history("bed-1").map(drop),
        Action::AlarmLog => v.user_alarm_log("bed-1", 1).await.map(drop),
        Action::FhirQueue => v.user_dead_letters().await.map(drop),
        // No IPC command yet (reports/exports; users, site and keys are CLI).
        Action::Export
        | Action::ManageUsers
        | Action::SiteConfig
        | Action::ManageKeys
        | Action::CheckUpdates
        | Action::InstallUpdate => {
            v.authorize(action, None).map(drop)
        }
    };
    match r {
        Err(CoreError::Auth(e)) => Err(e),
        _ => Ok(()),
    }
}

fn auth_err(e: CoreError) -> AuthError {
    match e {
        CoreError::Auth(a) => a,
        other => panic!("not an authorization error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix_over_every_action() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    assert!(!v.has_users().await.unwrap());
    for role in Role::ALL {
        auth::add_user(v.store(), role.as_str(), role, PW).await.unwrap();
    }
    // Someone admitted, so there is PHI to show or hide.
    v.sign_in("nurse", PW).await.unwrap();
    v.user_admit(admit_request()).await.unwrap();
    v.sign_out();

    // Signed out: monitoring goes on, nothing else, no PHI.
    assert!(v.session().is_none());
    assert!(v.snapshot().beds.iter().any(|b| b.admission.is_some()));
    for b in v.snapshot_for_session().beds {
        if let Some(a) = b.admission {
            assert!(a.display_name.is_empty() && a.mrn.is_empty() && a.date_of_birth.is_empty());
        }
    }
    for action in Action::ALL {
        let r = attempt(&v, action).await;
        if action == Action::Monitor {
            assert!(r.is_ok(), "signed out: monitoring must go on");
        } else {
            let e = r.expect_err(action.as_str());
            assert!(matches!(e, AuthError::NotSignedIn), "{}: {e}", action.as_str());
            assert_eq!(e.to_string(), "sign in first: this action needs a signed-in user");
        }
    }

    let mut matrix = String::new();
    for role in Role::ALL {
        let s = v.sign_in(role.as_str(), PW).await.unwrap();
        assert_eq!((s.user.as_str(), s.role), (role.as_str(), role));
        assert_eq!(s.may, auth::permissions(role));
        matrix.push_str(&format!("{role}:"));
        for action in Action::ALL {
            let r = attempt(&v, action).await;
            if auth::allows(role, action) {
                assert!(
                    r.is_ok(),
                    "{role} may {}: {:?}",
                    action.as_str(),
                    r.err().map(|e| e.to_string())
                );
                matrix.push_str(&format!(" {}", action.as_str()));
            } else {
                let e = r.expect_err(&format!("{role} must not {}", action.as_str()));
                assert!(
                    matches!(e, AuthError::Forbidden { role: r, action: a } if r == role && a == action),
                    "{e}"
                );
                assert_eq!(
                    e.to_string(),
                    format!("a {role} may not {}", action.as_str().replace('_', " "))
                );
                assert_eq!(CoreError::from(e).code(), "forbidden");
            }
        }
        matrix.push('\n');
        v.sign_out();
    }
    println!("{matrix}");
    // The table of the issue.
    use Action as A;
    for (role, must) in [
        (
            Role::Nurse,
            vec![
                A::Admit,
                A::Discharge,
                A::PairDevice,
                A::AssignDevice,
                A::RemoveDevice,
                A::Acknowledge,
                A::PauseAudio,
                A::EnterNews2,
                A::SetLimit,
                A::ViewPatient,
            ],
        ),
        (
            Role::Clinician,
            vec![
                A::Admit,
                A::Acknowledge,
                A::SetLimit,
                A::Trends,
                A::AlarmLog,
                A::Export,
            ],
        ),
        (
            Role::Admin,
            vec![
                A::ManageUsers,
                A::SiteConfig,
                A::ManageKeys,
                A::AssignDevice,
                A::Monitor,
                A::InstallUpdate,
            ],
        ),
        (Role::Viewer, vec![A::Monitor, A::ViewPatient]),
    ] {
        for a in must {
            assert!(auth::allows(role, a), "{role} {}", a.as_str());
        }
    }
    assert!(!auth::allows(Role::Admin, A::ViewPatient), "admin: no PHI");
    assert!(!auth::allows(Role::Nurse, A::Trends) && !auth::allows(Role::Nurse, A::ManageUsers));
    // Issue 16: anyone signed in may ask whether an update exists; only an admin installs.
    assert_eq!(auth::permissions(Role::Viewer), [A::Monitor, A::ViewPatient, A::CheckUpdates]);
    for role in [Role::Viewer, Role::Nurse, Role::Clinician] {
        assert!(!auth::allows(role, A::InstallUpdate), "{role} must not install updates");
    }

    // Actions carry the authenticated user.
    v.sign_in("clinician", PW).await.unwrap();
    v.user_set_limit("bed-1", "heart_rate", Some(40.0), Some(130.0))
        .await
        .unwrap();
    let log = v.user_alarm_log("bed-1", 1).await.unwrap();
    assert!(
        serde_json::to_string(&log).unwrap().contains("\"clinician\""),
        "the limit change names the signed-in user"
    );
    v.shutdown().await;
}

#[test]
fn action_names_are_their_json_names() {
    for a in Action::ALL {
        assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
    }
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
    }
    assert!("root".parse::<Role>().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_rate_limited_and_counted_and_a_disabled_user_cannot_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let store = v.store();
    auth::add_user(store, "ann", Role::Nurse, PW).await.unwrap();
    assert!(matches!(
        auth::add_user(store, "ann", Role::Admin, PW).await,
        Err(CoreError::Auth(AuthError::UserExists(_)))
    ));
    assert!(matches!(
        auth::add_user(store, "bob", Role::Admin, "short").await,
        Err(CoreError::Auth(AuthError::WeakPassword))
    ));
    assert!(matches!(
        auth::add_user(store, "bad name", Role::Admin, PW).await,
        Err(CoreError::Auth(AuthError::BadName))
    ));

    let a = Auth::default();
    let t0 = Instant::now();
    let err = |r: Result<_, CoreError>| match r {
        Err(CoreError::Auth(e)) => e,
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("signed in"),
    };
    // First wrong password: refused; the next try must wait 1 s.
    assert!(matches!(
        err(a.sign_in(store, "ann", "wrong password!", t0).await),
        AuthError::BadCredentials
    ));
    assert!(matches!(
        err(a.sign_in(store, "ann", PW, t0).await),
        AuthError::RateLimited(1)
    ));
    // Then 2 s, 4 s: exponential per name.
    let t1 = t0 + Duration::from_secs(1);
    assert!(matches!(
        err(a.sign_in(store, "ann", "wrong again!!", t1).await),
        AuthError::BadCredentials
    ));
    assert!(matches!(
        err(a
            .sign_in(store, "ann", PW, t1 + Duration::from_millis(1500))
            .await),
        AuthError::RateLimited(1)
    ));
    let t2 = t1 + Duration::from_secs(2);
    assert!(matches!(
        err(a.sign_in(store, "ann", "and again!!!", t2).await),
        AuthError::BadCredentials
    ));
    assert!(matches!(
        err(a.sign_in(store, "ann", PW, t2).await),
        AuthError::RateLimited(4)
    ));
    // Other names are not held up; unknown names count and wait like real ones.
    assert!(matches!(
        err(a.sign_in(store, "nobody", PW, t2).await),
        AuthError::BadCredentials
    ));
    assert!(matches!(
        err(a.sign_in(store, "nobody", PW, t2).await),
        AuthError::RateLimited(1)
    ));
    assert_eq!(a.failed_sign_ins(), 4);
    assert_eq!(auth::delay_after(30), auth::MAX_DELAY);
    // After the wait, the right password works and clears the run.
    let s = a
        .sign_in(store, "ann", PW, t2 + Duration::from_secs(4))
        .await
        .unwrap();
    assert_eq!((s.user.as_str(), s.role), ("ann", Role::Nurse));
    assert!(a.session().is_some());
    a.sign_out();
    assert!(a.session().is_none());

    // Disabled: the right password no longer signs in.
    auth::set_disabled(store, "ann", true).await.unwrap();
    let t3 = t2 + Duration::from_secs(10);
    assert!(matches!(
        err(a.sign_in(store, "ann", PW, t3).await),
        AuthError::Disabled
    ));
    assert!(a.session().is_none());
    let users = auth::list_users(store).await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].disabled);
    v.shutdown().await;
}

/// Wrong passwords sent from a central station (anyone holding the feed token) are
/// throttled like the workstation's, but never lock the nurse at the bedside out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_central_are_throttled_without_locking_the_bedside_out() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let store = v.store();
    auth::add_user(store, "ann", Role::Nurse, PW).await.unwrap();
    let a = Auth::default();
    let t0 = Instant::now();
    for i in 0..5u64 {
        // Each try after its wait: 1 + 2 + 4 + 8 s of throttle built up from central.
        let at = t0 + Duration::from_secs((1 << i) - 1);
        assert!(matches!(
            a.sign_in_remote(store, "ann", "guessed wrong!", "central", at).await,
            Err(CoreError::Auth(AuthError::BadCredentials))
        ));
    }
    let now = t0 + Duration::from_secs(16);
    assert!(matches!(
        a.sign_in_remote(store, "ann", PW, "central", now).await,
        Err(CoreError::Auth(AuthError::RateLimited(_)))
    ));
    // The nurse at the workstation signs in at once.
    let s = a.sign_in(store, "ann", PW, now).await.unwrap();
    assert_eq!(s.user, "ann");
    // And the bedside's own wrong password does not hold up central beyond its own wait.
    assert!(a.sign_in(store, "ann", "typo at the bedside", now).await.is_err());
    let later = now + Duration::from_secs(60);
    assert!(a.sign_in_remote(store, "ann", PW, "central", later).await.is_ok());
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_lock_ends_the_session_and_the_first_admin_is_offered_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    // No user: the first admin may be made (and is signed in); then never again.
    let s = v.create_first_admin("ada", PW).await.unwrap();
    assert_eq!((s.user.as_str(), s.role), ("ada", Role::Admin));
    assert!(v.has_users().await.unwrap());
    assert!(matches!(
        v.create_first_admin("eve", PW).await,
        Err(CoreError::Auth(AuthError::Forbidden { .. }))
    ));
    v.sign_out();

    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();
    let a = Auth::default();
    a.set_idle_lock(Some(Duration::from_secs(60)));
    let t0 = Instant::now();
    a.sign_in(v.store(), "ann", PW, t0).await.unwrap();
    // Actions and input keep the session.
    let t1 = t0 + Duration::from_secs(50);
    assert_eq!(a.authorize_at(Action::Acknowledge, None, t1).unwrap().name, "ann");
    let t2 = t1 + Duration::from_secs(50);
    a.touch(t2);
    assert!(a.session_at(t2 + Duration::from_secs(59)).is_some());
    // 61 s without either: signed out; monitoring goes on, actions need a sign-in.
    let t3 = t2 + Duration::from_secs(61);
    assert!(a.session_at(t3).is_none());
    assert!(matches!(
        a.authorize_at(Action::Acknowledge, None, t3),
        Err(AuthError::NotSignedIn)
    ));
    assert!(a.authorize_at(Action::Monitor, None, t3).is_ok());
    // The site's default: 5 minutes; 0 = never.
    let site = vigil_core::site::SessionSite::default();
    assert_eq!(site.idle_lock(), Some(Duration::from_secs(300)));
    assert_eq!(vigil_core::site::SessionSite { idle_lock_s: 0 }.idle_lock(), None);
    // Never shorter than a nurse needs between two reported inputs.
    assert_eq!(
        vigil_core::site::SessionSite { idle_lock_s: 5 }.idle_lock(),
        Some(Duration::from_secs(vigil_core::site::IDLE_LOCK_MIN))
    );
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_gives_clinical_access_for_15_minutes_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    auth::add_user(v.store(), "vic", Role::Viewer, PW).await.unwrap();
    auth::add_user(v.store(), "cleo", Role::Clinician, PW)
        .await
        .unwrap();
    let a = Auth::default();
    let t0 = Instant::now();
    assert!(matches!(
        a.break_glass("patient collapsed", t0),
        Err(AuthError::NotSignedIn)
    ));
    a.sign_in(v.store(), "vic", PW, t0).await.unwrap();
    assert!(matches!(
        a.authorize_at(Action::Acknowledge, None, t0),
        Err(AuthError::Forbidden { .. })
    ));
    // A reason is required.
    assert!(matches!(a.break_glass("  short ", t0), Err(AuthError::BadReason)));
    let s = a
        .break_glass("patient collapsed, no nurse at the bed", t0)
        .unwrap();
    assert_eq!(s.break_glass_s, Some(auth::BREAK_GLASS.as_secs()));
    assert!(s.may.contains(&Action::Acknowledge) && s.may.contains(&Action::AlarmLog));
    assert!(
        !s.may.contains(&Action::ManageUsers),
        "break-glass is clinical access only"
    );
    let actor = a
        .authorize_at(Action::Acknowledge, None, t0 + Duration::from_secs(60))
        .unwrap();
    assert!(actor.break_glass, "actions under break-glass are flagged");
    assert!(!a.authorize_at(Action::Monitor, None, t0).unwrap().break_glass);
    // Time-limited.
    let later = t0 + auth::BREAK_GLASS + Duration::from_secs(1);
    a.touch(later - Duration::from_secs(2));
    assert!(matches!(
        a.authorize_at(Action::Acknowledge, None, later),
        Err(AuthError::Forbidden { .. })
    ));
    assert_eq!(a.session_at(later).unwrap().break_glass_s, None);
    // A clinician has nothing to break into.
    a.sign_in(v.store(), "cleo", PW, later).await.unwrap();
    assert!(matches!(
        a.break_glass("patient collapsed, no nurse at the bed", later),
        Err(AuthError::NoBreakGlassNeeded)
    ));
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shift_pin_after_a_full_sign_in_then_three_wrong_pins_need_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    auth::add_user(v.store(), "ann", Role::Nurse, PW).await.unwrap();
    let a = Auth::default();
    let t0 = Instant::now();
    let err = |r: Result<_, CoreError>| match r {
        Err(CoreError::Auth(e)) => e,
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("signed in"),
    };
    // No PIN yet: a PIN does not sign in.
    assert!(matches!(
        err(a.sign_in(v.store(), "ann", "4711", t0).await),
        AuthError::BadCredentials
    ));
    let t1 = t0 + Duration::from_secs(2);
    let s = a.sign_in(v.store(), "ann", PW, t1).await.unwrap();
    assert!(s.can_set_pin);
    assert!(matches!(a.set_pin("12", t1).await, Err(AuthError::BadPin)));
    a.set_pin("4711", t1).await.unwrap();
    a.sign_out();
    // The same shift: name and PIN sign in (but cannot set another PIN).
    let s = a.sign_in(v.store(), "ann", "4711", t1).await.unwrap();
    assert_eq!(
        (s.user.as_str(), s.role, s.can_set_pin),
        ("ann", Role::Nurse, false)
    );
    assert!(matches!(a.set_pin("1234", t1).await, Err(AuthError::BadPin)));
    a.sign_out();
    // Three wrong PINs (waiting out the throttle): the PIN is gone, the password is needed.
    let mut t = t1;
    for i in 1..=3u32 {
        assert!(matches!(
            err(a.sign_in(v.store(), "ann", "0000", t).await),
            AuthError::BadCredentials
        ));
        t += auth::delay_after(i);
    }
    assert!(matches!(
        err(a.sign_in(v.store(), "ann", "4711", t).await),
        AuthError::BadCredentials
    ));
    t += auth::delay_after(4);
    assert!(a.sign_in(v.store(), "ann", PW, t).await.is_ok());
    // After the shift the PIN no longer works.
    a.set_pin("4711", t).await.unwrap();
    a.sign_out();
    assert!(a
        .sign_in(
            v.store(),
            "ann",
            "4711",
            t + auth::PIN_SHIFT + Duration::from_secs(1)
        )
        .await
        .is_err());
    v.shutdown().await;
}
