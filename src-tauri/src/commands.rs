//! Tauri commands: each a few lines that call `vigil-core` and turn its
//! errors into `{code, message}` for the screen.

use crate::cli::StartOptions;
use crate::AppState;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tauri::State;
use vigil_core::view::{AdmissionView, AppInfo, WardSnapshot, WardUpdate};
use vigil_core::{AdmitRequest, CoreError, Vigil};
use vigil_store::KeySource;

/// An error as the UI receives it. Messages carry no patient data.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export, rename = "CommandError")]
pub struct CmdError {
    pub code: &'static str,
    pub message: String,
}

impl From<CoreError> for CmdError {
    fn from(e: CoreError) -> Self {
        CmdError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn locked() -> CmdError {
    CmdError {
        code: "locked",
        message: "Vigil is locked: enter the store passphrase".into(),
    }
}

async fn core(state: &AppState) -> Result<Arc<Vigil>, CmdError> {
    state.vigil.read().await.clone().ok_or_else(locked)
}

pub async fn start_core(start: &StartOptions, key: KeySource) -> Result<Arc<Vigil>, CmdError> {
    let vigil = Vigil::start(start.core_config(key)?).await?;
    tracing::info!(key = %vigil.info().key_source, mode = vigil.info().mode, "store unlocked");
    let site = vigil_core::site::SiteConfig::load(&start.data_dir()?)?;
    vigil.set_idle_lock(site.session.idle_lock());
    let vigil = Arc::new(vigil);
    if let Some(feed) = &site.feed {
        // The bedside goes on monitoring when its feed cannot start: the central station
        // shows this feed as lost, and the reason is logged here.
        if let Err(e) = vigil_feed::start_site(vigil.clone(), feed).await {
            tracing::error!(error = %e, "live feed not started");
            eprintln!("vigil: {e}");
        }
    }
    // Publishing to the site's broker (issue 17): a setting that cannot work is logged,
    // never a reason to stop monitoring. It stops with the core.
    if let Err(e) = crate::mqtt::start(&vigil, &crate::mqtt::MqttFlags::default(), &site) {
        tracing::error!(error = %e, "mqtt: not publishing");
    }
    Ok(vigil)
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, CmdError> {
    Ok(core(&state).await?.info().clone())
}

/// What the first-start / unlock screen offers (no core yet: answers while locked).
#[tauri::command]
pub async fn key_setup(state: State<'_, AppState>) -> Result<vigil_core::config::KeySetup, CmdError> {
    let dir = state.start.data_dir()?;
    Ok(vigil_core::config::KeySetup::for_data_dir(&dir)?)
}

/// Starts the core with the key `key` gives, unless it already runs (then its info): the
/// write lock makes two unlocks at once start one core.
async fn unlock_with(
    state: &AppState,
    key: impl FnOnce() -> Result<KeySource, CmdError>,
) -> Result<AppInfo, CmdError> {
    let mut slot = state.vigil.write().await;
    if let Some(v) = slot.as_ref() {
        return Ok(v.info().clone());
    }
    let vigil = start_core(&state.start, key()?).await?;
    let info = vigil.info().clone();
    *slot = Some(vigil);
    Ok(info)
}

/// Unlocks the store with a passphrase typed at the workstation. At first start (no store
/// yet) it creates the store: the passphrase must be long enough and typed twice (`confirm`).
#[tauri::command]
pub async fn unlock(
    state: State<'_, AppState>,
    passphrase: String,
    confirm: Option<String>,
) -> Result<AppInfo, CmdError> {
    let data_dir = state.start.data_dir()?;
    unlock_with(&state, || {
        let setup = vigil_core::config::KeySetup::for_data_dir(&data_dir)?;
        if let Some(fixed) = setup.fixed.filter(|f| *f != vigil_core::site::KeyChoice::Passphrase) {
            return Err(CmdError {
                code: "key_fixed",
                message: format!("the site configuration keeps this store's key elsewhere ({fixed:?}): no passphrase"),
            });
        }
        if passphrase.is_empty() || passphrase.chars().count() > 1024 {
            return Err(CmdError {
                code: "weak_passphrase",
                message: "enter the passphrase (at most 1024 characters)".into(),
            });
        }
        if setup.first_start {
            vigil_core::config::check_new_passphrase(&passphrase)?;
            if confirm.as_deref() != Some(passphrase.as_str()) {
                return Err(CmdError {
                    code: "passphrase_mismatch",
                    message: "the two passphrases differ: type the same one twice".into(),
                });
            }
        }
        Ok(KeySource::passphrase(passphrase, "entered at the workstation"))
    })
    .await
}

/// First start, the operator's choice: keep the store's key in the OS keychain of this user
/// (anyone who can run programs as this user can then open the store; the screen says so).
#[tauri::command]
pub async fn unlock_with_keychain(state: State<'_, AppState>) -> Result<AppInfo, CmdError> {
    let data_dir = state.start.data_dir()?;
    unlock_with(&state, || Ok(vigil_core::config::create_keychain_key(&data_dir)?)).await
}

/// Who is signed in (if anyone), what they may do, and whether any user exists yet.
#[tauri::command]
pub async fn session(state: State<'_, AppState>) -> Result<vigil_core::guarded::SessionState, CmdError> {
    Ok(core(&state).await?.session_state().await?)
}

/// Signs a user in on this workstation (replacing whoever was signed in).
#[tauri::command]
pub async fn sign_in(
    state: State<'_, AppState>,
    name: String,
    password: String,
) -> Result<vigil_core::auth::SessionView, CmdError> {
    Ok(core(&state).await?.sign_in(&name, &password).await?)
}

/// Input at the workstation (throttled by the screen): the idle lock starts again.
#[tauri::command]
pub async fn session_touch(state: State<'_, AppState>) -> Result<(), CmdError> {
    core(&state).await?.touch_session();
    Ok(())
}

/// Break-glass: emergency clinical access for 15 minutes, with a reason (flagged on every action).
#[tauri::command]
pub async fn break_glass(
    state: State<'_, AppState>,
    reason: String,
) -> Result<vigil_core::auth::SessionView, CmdError> {
    Ok(core(&state).await?.break_glass(&reason)?)
}

/// A shift PIN (4-8 digits) for the signed-in user, after a sign-in with the password.
#[tauri::command]
pub async fn set_pin(state: State<'_, AppState>, pin: String) -> Result<(), CmdError> {
    Ok(core(&state).await?.set_pin(&pin).await?)
}

/// Signs out: monitoring and alarms go on; actions and patient identity need a sign-in.
#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>) -> Result<(), CmdError> {
    core(&state).await?.sign_out();
    Ok(())
}

/// First start with no user at all: the first admin, password typed twice.
#[tauri::command]
pub async fn create_first_admin(
    state: State<'_, AppState>,
    name: String,
    password: String,
    confirm: String,
) -> Result<vigil_core::auth::SessionView, CmdError> {
    if password != confirm {
        return Err(CmdError {
            code: "password_mismatch",
            message: "the two passwords differ: type the same one twice".into(),
        });
    }
    Ok(core(&state).await?.create_first_admin(&name, &password).await?)
}

#[tauri::command]
pub async fn ward_snapshot(state: State<'_, AppState>) -> Result<WardSnapshot, CmdError> {
    Ok(core(&state).await?.snapshot_for_session())
}

/// Starts batching live updates (every 250 ms, alarms at once) for the screen,
/// which pulls them with `ward_next` (see feed.rs for why not a Channel).
/// Returns the subscription; a later call (a reloaded page) replaces it.
#[tauri::command]
pub async fn ward_subscribe(state: State<'_, AppState>) -> Result<u64, CmdError> {
    let vigil = core(&state).await?;
    // Subscribed before this command returns: the screen reads its snapshot
    // after, so every later change reaches it.
    let rx = vigil.subscribe();
    let feed = state.feed.clone();
    let subscription = feed.subscribe();
    tauri::async_runtime::spawn(async move {
        vigil
            .stream_updates(rx, Duration::from_millis(250), |u| {
                // Patient identity only while a user who may see it is signed in.
                feed.push(subscription, vigil.update_for_session(u))
            })
            .await;
    });
    Ok(subscription)
}

/// The live changes since the screen's last pull, waiting until there are some;
/// null once the subscription was replaced.
#[tauri::command]
pub async fn ward_next(
    state: State<'_, AppState>,
    subscription: u64,
) -> Result<Option<WardUpdate>, CmdError> {
    Ok(state.feed.next(subscription).await)
}

#[tauri::command]
pub async fn admit(state: State<'_, AppState>, request: AdmitRequest) -> Result<AdmissionView, CmdError> {
    Ok(core(&state).await?.user_admit(request).await?)
}

#[tauri::command]
pub async fn discharge(state: State<'_, AppState>, bed: String) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_discharge(&bed).await?)
}

/// Pauses alarm audio at a bed for the site's pause time (2 min by default).
#[tauri::command]
pub async fn alarm_pause(state: State<'_, AppState>, bed: String) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_pause_audio(&bed).await?)
}

/// Acknowledges the alarms the screen displayed (their ids; one for a single
/// alarm, all shown for "acknowledge all"). Returns how many were acknowledged.
#[tauri::command]
pub async fn alarm_acknowledge(
    state: State<'_, AppState>,
    bed: String,
    alarms: Vec<u64>,
) -> Result<usize, CmdError> {
    Ok(core(&state).await?.user_acknowledge(&bed, &alarms).await?)
}

/// Whether the screen can sound alarms; when not, every bed shows "ALARM SOUND UNAVAILABLE".
#[tauri::command]
pub async fn alarm_audio_status(state: State<'_, AppState>, available: bool) -> Result<(), CmdError> {
    core(&state).await?.report_audio(available).await;
    Ok(())
}

/// The bed's alarm log for the last `hours` (decrypted records).
#[tauri::command]
pub async fn alarm_log(
    state: State<'_, AppState>,
    bed: String,
    hours: i64,
) -> Result<Vec<vigil_store::AlarmRecord>, CmdError> {
    Ok(core(&state)
        .await?
        .user_alarm_log(&bed, hours.clamp(1, 24 * 90))
        .await?)
}

/// A patient-specific alarm limit (reverts at discharge).
#[tauri::command]
pub async fn alarm_set_limit(
    state: State<'_, AppState>,
    bed: String,
    parameter: String,
    low: Option<f64>,
    high: Option<f64>,
) -> Result<(), CmdError> {
    Ok(core(&state)
        .await?
        .user_set_limit(&bed, &parameter, low, high)
        .await?)
}

/// A nurse's NEWS2 entry, e.g. `{"parameter":"consciousness","value":"alert"}`.
#[tauri::command]
pub async fn news2_enter(
    state: State<'_, AppState>,
    bed: String,
    entry: vigil_core::alarming::News2Entry,
) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_enter_news2(&bed, entry).await?)
}

/// The bed's NEWS2 scores, oldest first.
#[tauri::command]
pub async fn news2_history(
    state: State<'_, AppState>,
    bed: String,
) -> Result<Vec<vigil_alarms::News2>, CmdError> {
    Ok(core(&state).await?.user_news2_history(&bed)?)
}

/// Nearby Bluetooth LE health devices, nearest first.
#[tauri::command]
pub async fn devices_scan(
    state: State<'_, AppState>,
    seconds: u64,
) -> Result<Vec<vigil_core::ScanResult>, CmdError> {
    Ok(core(&state).await?.user_scan(seconds).await?)
}

#[tauri::command]
pub async fn device_assign(
    state: State<'_, AppState>,
    address: String,
    bed: String,
    kind: String,
) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_assign_device(&address, &bed, &kind).await?)
}

#[tauri::command]
pub async fn device_remove(state: State<'_, AppState>, address: String) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_remove_device(&address).await?)
}

/// FHIR upload health (null when no server is configured).
#[tauri::command]
pub async fn sync_status(state: State<'_, AppState>) -> Result<Option<vigil_core::SyncView>, CmdError> {
    Ok(core(&state).await?.user_sync_status().await?)
}

/// Patients on the FHIR server with this MRN.
#[tauri::command]
pub async fn fhir_find_patient(
    state: State<'_, AppState>,
    mrn: String,
) -> Result<Vec<vigil_core::PatientMatch>, CmdError> {
    Ok(core(&state).await?.user_find_patient(&mrn).await?)
}

/// Links the bed's admission to a FHIR Patient ("Patient/<id>").
#[tauri::command]
pub async fn fhir_link_patient(
    state: State<'_, AppState>,
    bed: String,
    patient: String,
) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_link_patient(&bed, &patient).await?)
}

/// Readings the FHIR server refused, with its reasons.
#[tauri::command]
pub async fn dead_letters(state: State<'_, AppState>) -> Result<Vec<vigil_store::DeadLetter>, CmdError> {
    Ok(core(&state).await?.user_dead_letters().await?)
}

/// Puts dead letters and parked readings (all when `ids` is null) back in the
/// upload queue; how many (clinicians and admins).
#[tauri::command]
pub async fn fhir_requeue(state: State<'_, AppState>, ids: Option<Vec<i64>>) -> Result<u64, CmdError> {
    Ok(core(&state).await?.user_requeue_dead_letters(ids.as_deref()).await?)
}

/// A bed's trends over a range: summaries for long ranges, raw samples when zoomed in.
#[tauri::command]
pub async fn trend(state: State<'_, AppState>, request: vigil_core::trends::TrendRequest) -> Result<vigil_core::trends::TrendView, CmdError> {
    Ok(core(&state).await?.user_trend(&request).await?)
}

/// Every admission, current and past, newest first (clinicians); names only
/// for a role that may see them, each showing audited.
#[tauri::command]
pub async fn admissions(state: State<'_, AppState>) -> Result<Vec<vigil_core::review::AdmissionListItem>, CmdError> {
    Ok(core(&state).await?.user_admissions().await?)
}

/// The flowsheet of a bed's range or of a range inside one stay: one column
/// per local hour in the site's zone (clinicians).
#[tauri::command]
pub async fn flowsheet(
    state: State<'_, AppState>,
    request: vigil_core::review::FlowsheetRequest,
) -> Result<vigil_core::review::FlowsheetView, CmdError> {
    let site = vigil_core::site::SiteConfig::load(&state.start.data_dir()?)?;
    let preset = site.alarm_preset()?;
    let (tz, _) = site.time_zone();
    Ok(core(&state).await?.user_flowsheet(&request, tz, preset).await?)
}

/// A printable PDF report of a bed over a range, or of a range inside one
/// stay when `admission` is given (clinicians, `Action::Export`), written as a
/// new 0600 file in the user's Documents directory (else the data directory);
/// returns its path. The PDF holds the patient's identity; the path names
/// only the bed and the range.
#[tauri::command]
pub async fn report_pdf(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    bed: String,
    admission: Option<String>,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<String, CmdError> {
    use tauri::Manager;
    let data_dir = state.start.data_dir()?;
    let site = vigil_core::site::SiteConfig::load(&data_dir)?;
    let preset = site.alarm_preset()?;
    let (tz, _) = site.time_zone();
    let vigil = core(&state).await?;
    let report = match &admission {
        Some(id) => vigil.user_admission_report(id, from, to, tz, preset).await?,
        None => vigil.user_report(&bed, from, to, tz, preset).await?,
    };
    // The stay's bed and the part of the range inside it.
    let (bed, from) = (report.header.bed.clone(), report.from);
    let failed = |message: String| CmdError { code: "report", message };
    let pdf = vigil_report::render_pdf(&report).map_err(|e| failed(format!("laying out the report: {e}")))?;
    let dir = app.path().document_dir().ok().filter(|d| d.is_dir()).unwrap_or(data_dir);
    let stem = format!("vigil-report-{bed}-{}", from.format("%Y%m%dT%H%MZ"));
    let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    for n in 1..100 {
        let name = if n == 1 { format!("{stem}.pdf") } else { format!("{stem}-{n}.pdf") };
        let path = dir.join(name);
        match crate::report::write_new(&path, |f| std::io::Write::write_all(f, &pdf)) {
            Ok(()) => return Ok(path.display().to_string()),
            // Never over another report: the next free name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(failed(format!("{}: {e}", path.display()))),
        }
    }
    Err(failed(format!("no free file name for {stem}.pdf in {}", dir.display())))
}

/// A scanned device's Device Information (serial number, model, System ID), read before assigning it.
#[tauri::command]
pub async fn device_identify(state: State<'_, AppState>, address: String) -> Result<vigil_core::view::DeviceInfoView, CmdError> {
    Ok(core(&state).await?.user_identify_device(&address).await?)
}

/// Bonds with a Bluetooth device (BlueZ `Pair()`); the bonding state read back.
#[tauri::command]
pub async fn device_pair(state: State<'_, AppState>, address: String) -> Result<Option<bool>, CmdError> {
    Ok(core(&state).await?.user_pair_device(&address).await?)
}

/// Sets a Bluetooth device's clock (Current Time Service) to this workstation's local time.
#[tauri::command]
pub async fn device_set_clock(state: State<'_, AppState>, address: String) -> Result<(), CmdError> {
    Ok(core(&state).await?.user_set_device_clock(&address).await?)
}

impl From<vigil_core::config::ConfigError> for CmdError {
    fn from(e: vigil_core::config::ConfigError) -> Self {
        use vigil_core::config::ConfigError as E;
        CmdError {
            code: match e {
                E::WeakPassphrase => "weak_passphrase",
                E::NoKeychain => "no_keychain",
                E::KeySourceFixed { .. } => "key_fixed",
                _ => "config",
            },
            message: e.to_string(),
        }
    }
}

impl From<tauri_plugin_updater::Error> for CmdError {
    fn from(e: tauri_plugin_updater::Error) -> Self {
        CmdError {
            code: match e {
                tauri_plugin_updater::Error::Minisign(_) => "update_signature",
                _ => "update",
            },
            message: crate::updates::describe(&e),
        }
    }
}

fn update_endpoint(state: &AppState) -> Result<Option<url::Url>, CmdError> {
    let site = vigil_core::site::SiteConfig::load(&state.start.data_dir()?)?;
    Ok(crate::updates::endpoint(&site))
}

/// The About panel: version, commit and build date (`src-tauri/build.rs`), intended use,
/// licence, where the SBOM is, and the update setup.
#[tauri::command]
pub async fn about(state: State<'_, AppState>) -> Result<vigil_core::view::AboutView, CmdError> {
    let endpoint = update_endpoint(&state)?.map(|u| u.to_string());
    Ok(vigil_core::view::AboutView {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: env!("VIGIL_COMMIT").into(),
        build_date: env!("VIGIL_BUILD_DATE").into(),
        intended_use: vigil_core::view::INTENDED_USE.into(),
        licence: "Apache-2.0 (the LICENSE file, installed with Vigil)".into(),
        sbom: vigil_core::view::SBOM_LOCATION.into(),
        update: core(&state).await?.update_setup(endpoint),
    })
}

/// "Check for updates" (any signed-in user; audited): asks the site's update server.
#[tauri::command]
pub async fn update_check(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
) -> Result<vigil_core::update::UpdateCheck, CmdError> {
    let vigil = core(&state).await?;
    let endpoint = update_endpoint(&state)?;
    let ticket = vigil.user_check_updates(endpoint.is_some())?;
    let monitored = ticket.monitored as u32;
    let r = match endpoint {
        Some(e) => crate::updates::check(crate::updates::updater(&app, e, None)?).await,
        None => unreachable!("refused above"),
    };
    match r {
        Ok(u) => {
            let available = u.as_ref().map(|u| u.version.clone());
            vigil.update_done(
                ticket,
                true,
                match &available {
                    Some(v) => format!("update {v} available (running {})", env!("CARGO_PKG_VERSION")),
                    None => format!("up to date ({})", env!("CARGO_PKG_VERSION")),
                },
            );
            Ok(vigil_core::update::UpdateCheck {
                current: env!("CARGO_PKG_VERSION").into(),
                available,
                notes: u.as_ref().and_then(|u| u.body.clone()),
                pub_date: u.as_ref().and_then(|u| u.date).map(|d| d.to_string()),
                monitored_beds: monitored,
            })
        }
        Err(e) => {
            vigil.update_done(ticket, false, format!("check failed: {}", crate::updates::describe(&e)));
            Err(e.into())
        }
    }
}

/// "Install" (admin; while beds are monitored, `confirm_beds` must be the number of beds
/// the confirmation named): downloads, verifies the signature, installs, restarts Vigil.
/// Every step's outcome is in the audit trail.
#[tauri::command]
pub async fn update_install(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    confirm_beds: Option<u32>,
) -> Result<String, CmdError> {
    let vigil = core(&state).await?;
    let endpoint = update_endpoint(&state)?;
    let ticket = vigil.user_install_update(endpoint.is_some(), confirm_beds.map(|n| n as usize))?;
    let Some(endpoint) = endpoint else { unreachable!("refused above") };
    // Windows: the installer is started and this process ends inside `install`; commit what
    // the monitor holds first (elsewhere the restart below goes through RunEvent::Exit).
    let v = vigil.clone();
    let b = crate::updates::updater(&app, endpoint, None)?.on_before_exit(move || {
        let v = v.clone();
        let _ = std::thread::spawn(move || tauri::async_runtime::block_on(v.shutdown())).join();
    });
    let update = match crate::updates::check(b).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            vigil.update_done(ticket, true, format!("nothing to install: up to date ({})", env!("CARGO_PKG_VERSION")));
            return Ok(format!("Vigil {} is up to date", env!("CARGO_PKG_VERSION")));
        }
        Err(e) => {
            vigil.update_done(ticket, false, format!("install failed: {}", crate::updates::describe(&e)));
            return Err(e.into());
        }
    };
    let version = update.version.clone();
    match crate::updates::install(&update).await {
        Ok(()) => {
            vigil.update_done(ticket, true, format!("update {version} installed over {}; restarting", env!("CARGO_PKG_VERSION")));
            // Through RunEvent::Exit: the core commits every reading, then Vigil starts again.
            app.restart();
        }
        Err(e) => {
            vigil.update_done(ticket, false, format!("update {version}: {}", crate::updates::describe(&e)));
            Err(e.into())
        }
    }
}

/// The central station's feeds (`site.json` `central.feeds`) with each token read from its
/// environment variable now (issue 17). Answers with no core running (`vigil central`
/// starts none). The tokens go to this app's own webview only, which opens the WebSockets.
#[tauri::command]
pub async fn central_config(state: State<'_, AppState>) -> Result<Vec<vigil_core::central::CentralFeedView>, CmdError> {
    let site = vigil_core::site::SiteConfig::load(&state.start.data_dir()?)?;
    Ok(site
        .central
        .map(|c| c.views(|name| std::env::var(name).ok()))
        .unwrap_or_default())
}

/// The wards of site.json `central.mqtt` as the broker has them (issue 17), or None when the
/// section is not set. The page polls this every 500 ms rather than being pushed: each
/// answer is the whole picture of every ward at one instant (no update to miss, nothing to
/// resync), a poll that stops answering is itself seen by the page's watchdog (a push that
/// stops is indistinguishable from a quiet ward), and 2 Hz is well inside the feed's 3 s
/// loss budget. (A Channel would also make WebKitGTK's web process keep a script per
/// message: see feed.rs.)
/// (Async: off the main thread, which draws the window.)
#[tauri::command]
pub async fn central_mqtt(state: State<'_, AppState>) -> Result<Option<vigil_core::central::BrokerWardsView>, CmdError> {
    Ok(match &*state.broker.lock().unwrap() {
        None => None,
        Some(crate::BrokerWards::Running(m)) => Some(m.view()),
        Some(crate::BrokerWards::Failed(v)) => Some(v.clone()),
    })
}
