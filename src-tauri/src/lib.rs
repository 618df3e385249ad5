//! The Vigil binary: a thin shell over `vigil-core`.
//!
//! With no subcommand it opens the desktop app (Tauri); `vigil gateway` runs
//! the same pipeline headless; `vigil decode` checks one GATT payload. All
//! logic lives in the core crates; this crate only parses arguments, wires
//! Tauri commands and the live feed the screen pulls, and turns errors into messages.

pub mod admin;
pub mod cli;
pub mod cli_auth;
mod commands;
mod feed;
pub mod heap;
pub mod gateway;
pub mod mqtt;
pub mod replay;
pub mod report;
pub mod updates;

use std::sync::Arc;
use tauri::Manager;
use vigil_core::Vigil;

/// The app's shared state: the running core, once unlocked.
pub struct AppState {
    pub vigil: tokio::sync::RwLock<Option<Arc<Vigil>>>,
    pub start: cli::StartOptions,
    /// Live updates waiting for the screen to pull them.
    pub feed: Arc<feed::Feed>,
    /// `vigil central` with site.json `central.mqtt`: the site's wards read from the broker.
    pub broker: std::sync::Mutex<Option<BrokerWards>>,
}

/// The central station's broker mirror, or why it is not running.
pub enum BrokerWards {
    Running(vigil_mqtt::central::CentralMirror),
    Failed(vigil_core::central::BrokerWardsView),
}

/// Which page the app's window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The bedside monitor (`index.html`) over this workstation's own core.
    Monitor,
    /// `vigil central`: the central station page (`central.html`) watching other Vigils'
    /// feeds (issue 17). No local core: no devices, no simulated ward, no store.
    Central,
}

/// Sets `name` for this process and the WebKit processes it starts, unless it is
/// set already (an explicit value, e.g. to compare, is left alone).
#[cfg(target_os = "linux")]
fn env_default(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        std::env::set_var(name, value);
    }
}

/// Runs the desktop app.
pub fn run_app(start: cli::StartOptions, page: Page) -> anyhow::Result<()> {
    // WebKitGTK's accelerated compositing (software GL where there is no GPU,
    // as under Xvfb) held ~200 MiB more in the web process, and growing, for the
    // same page (issue 16 soak, 16 beds at 240x: 440-530 MiB with it, 230-280
    // without). The screen is 2D text and boxes: CPU painting is plenty. Set
    // before GTK/WebKit start (the web process inherits it); an explicit
    // WEBKIT_DISABLE_COMPOSITING_MODE (e.g. =0 to compare) is left alone.
    #[cfg(target_os = "linux")]
    env_default("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    // JavaScriptCore's mini mode for the page (a JSC option the web process
    // reads from its environment): its default heap sizing suits a browser on a
    // desktop with gigabytes to spare and let a page that never stops updating
    // saw up to ~80 MiB above its floor between full collections. Issue 16 soak,
    // 16 beds at 240x, 4 min each: web process 257-312 MiB by default, 231-253
    // in mini mode, for ~15% more of the web process's CPU (collections run
    // sooner). An explicit JSC_forceMiniVMMode (=false to compare) is left alone.
    #[cfg(target_os = "linux")]
    env_default("JSC_forceMiniVMMode", "true");
    let state = AppState {
        vigil: tokio::sync::RwLock::new(None),
        start,
        feed: Arc::default(),
        broker: std::sync::Mutex::new(None),
    };
    let app = tauri::Builder::default()
        .manage(state)
        // Signed updates: the key is in tauri.conf.json; the server in site.json (issue 16).
        .plugin(updates::plugin())
        .setup(move |app| {
            if page == Page::Central {
                // The page reads its feeds with `central_config` and the broker's wards with
                // `central_mqtt`; it needs no store key.
                start_broker_mirror(&app.state::<AppState>());
                return Ok(());
            }
            let state = app.state::<AppState>();
            // Unlock straight away when a key is configured (key file or
            // VIGIL_PASSPHRASE); otherwise the screen asks for the passphrase.
            let data_dir = state.start.data_dir();
            if let Ok(key) =
                data_dir.and_then(|d| {
                    vigil_core::config::resolve_key_with(state.start.key_file.as_deref(), state.start.keychain, &d)
                })
            {
                let vigil = tauri::async_runtime::block_on(commands::start_core(&state.start, key))
                    .map_err(|e| e.message)?;
                *tauri::async_runtime::block_on(state.vigil.write()) = Some(vigil);
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::about,
            commands::update_check,
            commands::update_install,
            commands::unlock,
            commands::key_setup,
            commands::unlock_with_keychain,
            commands::session,
            commands::sign_in,
            commands::sign_out,
            commands::session_touch,
            commands::break_glass,
            commands::set_pin,
            commands::create_first_admin,
            commands::ward_snapshot,
            commands::ward_subscribe,
            commands::ward_next,
            commands::admit,
            commands::discharge,
            commands::alarm_pause,
            commands::alarm_acknowledge,
            commands::alarm_audio_status,
            commands::alarm_log,
            commands::alarm_set_limit,
            commands::news2_enter,
            commands::news2_history,
            commands::devices_scan,
            commands::device_assign,
            commands::device_remove,
            commands::device_set_clock,
            commands::device_pair,
            commands::device_identify,
            commands::trend,
            commands::report_pdf,
            commands::admissions,
            commands::flowsheet,
            commands::sync_status,
            commands::fhir_find_patient,
            commands::fhir_link_patient,
            commands::dead_letters,
            commands::fhir_requeue,
            commands::central_config,
            commands::central_mqtt,
        ])
        .build(context(page))?;
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Commit every reading received before the process ends.
            let state = handle.state::<AppState>();
            let vigil = tauri::async_runtime::block_on(async { state.vigil.read().await.clone() });
            if let Some(v) = vigil {
                tauri::async_runtime::block_on(v.shutdown());
            }
        }
    });
    Ok(())
}

/// `vigil central`: starts the mirror of site.json `central.mqtt` (no core: the mirror
/// only reads the broker). A site file that does not load is reported by `central_config`.
fn start_broker_mirror(state: &AppState) {
    let Some(site) = state.start.data_dir().ok().and_then(|d| vigil_core::site::SiteConfig::load(&d).ok()) else {
        return;
    };
    let Some(cfg) = site.central.and_then(|c| c.mqtt) else {
        return;
    };
    // The mirror's task runs on Tauri's Tokio runtime for the life of the app.
    let started = tauri::async_runtime::block_on(async { vigil_mqtt::central::CentralMirror::start(&cfg) });
    let wards = match started {
        Ok(m) => {
            tracing::info!(broker = %cfg.broker, site = %cfg.site, "central: reading the site's wards from the broker");
            BrokerWards::Running(m)
        }
        Err(e) => {
            tracing::error!(error = %e, "central: cannot read the broker");
            BrokerWards::Failed(vigil_mqtt::central::CentralMirror::failed(&cfg, &e))
        }
    };
    *state.broker.lock().unwrap() = Some(wards);
}

/// The bundled configuration, with the window opening `page`.
fn context(page: Page) -> tauri::Context<tauri::Wry> {
    let mut ctx = tauri::generate_context!();
    if page == Page::Central {
        if let Some(w) = ctx.config_mut().app.windows.first_mut() {
            w.url = tauri::WebviewUrl::App("central.html".into());
            w.title = "Vigil — central station".into();
        }
    }
    ctx
}
