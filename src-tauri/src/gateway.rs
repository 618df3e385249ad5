//! `vigil gateway`: the pipeline with no window, for a bedside box.
//!
//! Status lines on stderr carry counts only, never patient data. SIGINT or
//! SIGTERM stops the sources, commits every reading received and exits 0.
//! If the store refuses writes, shutdown still ends within about 10 s: what
//! the writer held goes to spill files beside the store (recorded at the next
//! start), the exit message says how many readings were kept that way and how
//! many (and alarm-log records) were not recorded at all, and the exit status is 3.

use crate::cli::{fail, GatewayArgs, Global, StartOptions};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;
use vigil_core::{SimSettings, Vigil};

/// SIGTERM/SIGINT with a failing store still ends within this (the writer
/// spills what it holds after `pipeline::SHUTDOWN_GRACE`).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(9);

pub fn run(global: Global, args: GatewayArgs) -> ExitCode {
    let key = match global
        .data_dir()
        .and_then(|d| vigil_core::config::resolve_key_with(global.key_file.as_deref(), global.keychain, &d))
    {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let start = StartOptions {
        data_dir: global.data_dir,
        key_file: global.key_file,
        keychain: global.keychain,
        sim: SimSettings {
            scenario: args.simulate.unwrap_or_default(),
            seed: args.seed,
            ..SimSettings::default()
        },
        beds: global.beds,
        speed: args.speed,
        retention_days: global.retention_days,
        devices: if args.simulate.is_some() {
            vigil_core::DeviceMode::Simulated
        } else {
            vigil_core::DeviceMode::Auto
        },
    };
    let cfg = match start.core_config(key) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let beds = cfg.sim.beds;
    let site_feed = match start.data_dir().and_then(|d| vigil_core::site::SiteConfig::load(&d)) {
        Ok(site) => site.feed,
        Err(e) => return fail(&e.to_string()),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async move {
        let vigil = match Vigil::start(cfg).await {
            Ok(v) => std::sync::Arc::new(v),
            Err(e) => return fail(&e.to_string()),
        };
        let info = vigil.info();
        let devices = match &info.scenario {
            Some(sc) => format!("SIMULATED (scenario '{sc}', {beds} beds, speed {}x)", args.speed),
            None => format!("Bluetooth LE ({beds} beds)"),
        };
        eprintln!(
            "vigil gateway: store {} unlocked with {}; devices: {devices}",
            vigil.store().path().display(),
            info.key_source,
        );
        if let Some(aside) = &info.store_recovered_from {
            eprintln!(
                "vigil gateway: RECORDING UNAVAILABLE: the store was damaged and moved aside to {aside}; \
                 a new store was started and monitoring continues. Copy back what still opens with \
                 `vigil store salvage {aside}`"
            );
        }
        if let Some(why) = &info.store_rolled_back {
            eprintln!(
                "vigil gateway: STORE ROLLED BACK: the store file is older than its last use ({why}); \
                 recent records may be missing. Monitoring continues; run `vigil store verify`"
            );
        }
        // The live feed (issue 17): `--feed`, else the site's `feed` section. A feed that
        // cannot start as configured stops the gateway with the reason, never runs open.
        let feed = match feed_site(args.feed.clone(), site_feed) {
            None => None,
            Some(site) => match vigil_feed::start_site(vigil.clone(), &site).await {
                Ok(f) => Some(f),
                Err(e) => {
                    vigil.shutdown().await;
                    return fail(&e.to_string());
                }
            },
        };
        let mut status = tokio::time::interval(Duration::from_secs(args.status_every.max(1)));
        status.tick().await;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                sig = &mut stop => {
                    eprintln!("vigil gateway: {sig} received, committing readings and stopping");
                    break;
                }
                _ = status.tick() => status_line(&vigil, feed.as_ref()).await,
            }
        }
        // Bounded: with a failing store the writer gives up after its grace
        // period; anything else stuck is cut off here.
        let bounded = tokio::time::timeout(SHUTDOWN_BOUND, vigil.shutdown()).await.is_ok();
        let s = vigil.stats();
        if !bounded {
            // What the writer still held will not be recorded.
            let held = s.backlog.swap(0, Ordering::Relaxed);
            s.unrecorded.fetch_add(held, Ordering::Relaxed);
            eprintln!(
                "vigil gateway: shutdown did not finish within {} s; stopping anyway",
                SHUTDOWN_BOUND.as_secs()
            );
        }
        status_line(&vigil, feed.as_ref()).await;
        let lost_alarms = s.get(&s.alarm_records_lost);
        let spilled = s.get(&s.spilled);
        match s.unrecorded_summary() {
            None if bounded && lost_alarms == 0 && spilled == 0 => {
                eprintln!("vigil gateway: stopped cleanly");
                ExitCode::SUCCESS
            }
            summary => {
                eprintln!(
                    "vigil gateway: stopped with the store failing: {}; {spilled} readings kept in spill files beside the store (recorded at the next start); {lost_alarms} alarm-log records not recorded",
                    summary.unwrap_or_else(|| "0 readings not recorded".into())
                );
                ExitCode::from(3)
            }
        }
    })
}

/// The feed to serve: `--feed HOST:PORT` (with the site's TLS and token settings, if any),
/// else the site's `feed` section.
fn feed_site(
    flag: Option<String>,
    site: Option<vigil_core::site::FeedSite>,
) -> Option<vigil_core::site::FeedSite> {
    match (flag, site) {
        (Some(listen), Some(s)) => Some(vigil_core::site::FeedSite { listen, ..s }),
        (Some(listen), None) => Some(vigil_core::site::FeedSite {
            listen,
            tls_cert: None,
            tls_key: None,
            token_env: vigil_core::site::FEED_TOKEN_ENV.into(),
            name: None,
        }),
        (None, s) => s,
    }
}

async fn status_line(v: &Vigil, feed: Option<&vigil_feed::Feed>) {
    let s = v.stats();
    let (devices, receiving) = v.device_counts();
    let fhir = match v.sync_status().await {
        Some(st) => format!(
            ", fhir {} (pending {}, uploaded {}, dead letters {}, parked {}{})",
            if st.healthy { "ok" } else { "NOT SYNCING" },
            st.pending,
            st.uploaded,
            st.dead_letters,
            st.parked,
            if st.duplicate_devices > 0 {
                format!(", {} Devices duplicated on the server", st.duplicate_devices)
            } else {
                String::new()
            }
        ),
        None => String::new(),
    };
    // Said only when something is wrong: the audit trail refusing writes.
    let a = v.audit_status();
    let audit = if a.failing || a.lost > 0 {
        format!(
            ", audit trail {} (held {}, not recorded {})",
            if a.failing { "FAILING" } else { "ok" },
            a.pending,
            a.lost
        )
    } else {
        String::new()
    };
    let feed = feed.map_or(String::new(), |f| {
        let st = f.stats();
        format!(
            ", feed clients {} (replaced by a snapshot {}, closed too slow {})",
            st.connected.load(Ordering::Relaxed),
            st.overflows.load(Ordering::Relaxed),
            st.too_slow.load(Ordering::Relaxed)
        )
    });
    eprintln!(
        "vigil gateway: devices {receiving}/{devices} receiving, payloads {}, readings {}, stored {}, decode errors {}, store {}{fhir}{audit}{feed}",
        s.get(&s.payloads),
        s.get(&s.readings),
        s.get(&s.stored),
        s.get(&s.decode_errors),
        if s.store_failing.load(Ordering::Relaxed) {
            format!(
                "RECORDING INTERRUPTED (held {} in memory, {} in spill files, not recorded {})",
                s.get(&s.backlog),
                s.get(&s.spilled),
                s.get(&s.unrecorded)
            )
        } else {
            "ok".to_string()
        },
    );
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
