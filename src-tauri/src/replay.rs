//! `vigil replay <script.csv>`: a script of device events through the real
//! pipeline (see `vigil_core::replay` for the script, the clock and ticks).
//!
//! The script is read and checked before the store is opened, and its
//! admissions against the store before anything is applied, so a malformed
//! line leaves the data directory as it was. Errors and the summary line
//! carry counts, line numbers and names from the script, never values.

use crate::cli::{bed_count, fail, Global, ReplayArgs, StartOptions};
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use vigil_core::replay::{self, ReplayError};
use vigil_core::{SimSettings, Vigil};
use vigil_model::ManualClock;

pub fn run(global: Global, args: ReplayArgs) -> ExitCode {
    let name = args.script.display().to_string();
    let text = match std::fs::read_to_string(&args.script) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {name}: {e}")),
    };
    let dir = match global.data_dir() {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    // The beds the workstation has decide which beds a script may name.
    let site = match vigil_core::site::SiteConfig::load(&dir) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let beds: Vec<String> = (1..=bed_count(global.beds, &site))
        .map(|i| format!("bed-{i}"))
        .collect();
    let script = match replay::parse(&text, &beds) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{name} {e}")),
    };

    let key = match vigil_core::config::resolve_key_with(global.key_file.as_deref(), global.keychain, &dir) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let start = StartOptions {
        data_dir: global.data_dir,
        key_file: global.key_file,
        keychain: global.keychain,
        sim: SimSettings::default(),
        beds: global.beds,
        speed: 1.0,
        retention_days: global.retention_days,
        devices: vigil_core::DeviceMode::Replay,
    };
    let mut cfg = match start.core_config(key) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let started_at = args.start.unwrap_or_else(replay::default_start);
    let clock = Arc::new(ManualClock::new(started_at));
    cfg.clock = clock.clone();
    // Replayed readings are never uploaded to the hospital's FHIR server.
    cfg.fhir = None;

    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async move {
        let vigil = match Vigil::start(cfg).await {
            Ok(v) => v,
            Err(e) => return fail(&e.to_string()),
        };
        let feed = vigil
            .take_replay_feed()
            .expect("the core started in replay mode has a feed");
        let admitted: BTreeSet<String> = vigil
            .snapshot()
            .beds
            .into_iter()
            .filter(|b| b.admission.is_some())
            .map(|b| b.bed)
            .collect();
        let result = match script.check_admissions(&admitted) {
            Ok(()) => replay::run(&vigil, feed, &clock, &script, args.speed).await,
            Err(e) => {
                // The feed holds the pipeline's input open: let it go, or
                // shutdown would wait for the pipeline forever.
                drop(feed);
                Err(ReplayError::from(e))
            }
        };
        // Commits what was replayed (all of it, or up to a failed action).
        vigil.shutdown().await;
        match result {
            Ok(lines) => {
                let s = vigil.stats();
                let (received, stored) = (s.get(&s.readings), s.get(&s.stored));
                eprintln!(
                    "vigil replay: {lines} lines, {:.1} s of script time from {}; readings {received}, readings stored {stored}, alarms started {}, decode errors {}",
                    script.duration_ms() as f64 / 1000.0,
                    started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    s.get(&s.alarms_started),
                    s.get(&s.decode_errors),
                );
                // A replay is an import: it waits for the store, so every
                // reading lands unless the store still refused at shutdown.
                if stored == received {
                    return ExitCode::SUCCESS;
                }
                eprintln!(
                    "vigil replay: not every reading is stored: {} kept in spill files beside the store (recorded at the next start){}",
                    s.get(&s.spilled),
                    s.unrecorded_summary().map(|u| format!(", {u}")).unwrap_or_default(),
                );
                ExitCode::from(3)
            }
            Err(e @ (ReplayError::Script(_) | ReplayError::Action { .. })) => fail(&format!("{name} {e}")),
            Err(e) => fail(&e.to_string()),
        }
    })
}
