//! Operator commands on the store: `vigil export`, `vigil store verify`,
//! `vigil key rotate`. They open the store with the same key rules as the
//! app and the gateway, and print no patient data except what was asked
//! to be exported (to stdout only).

use crate::cli::{fail, ExportArgs, Global};
use std::path::Path;
use std::process::ExitCode;
use vigil_core::config;
use vigil_store::{KeySource, Store};

fn open(global: &Global) -> Result<(tokio::runtime::Runtime, Store), String> {
    let key = config::resolve_key(global.key_file.as_deref()).map_err(|e| e.to_string())?;
    let dir = match &global.data_dir {
        Some(d) => d.clone(),
        None => config::default_data_dir().map_err(|e| e.to_string())?,
    };
    let path = config::store_path(&dir);
    if !path.exists() {
        return Err(format!("no store at {}", path.display()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = rt.block_on(Store::open(&path, &key)).map_err(|e| e.to_string())?;
    Ok((rt, store))
}

/// CSV: a header row, then one row per reading, oldest first.
pub fn export(global: &Global, args: &ExportArgs) -> ExitCode {
    if args.to < args.from {
        return fail("--to is before --from");
    }
    let (rt, store) = match open(global) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let readings = match rt.block_on(store.query_range(args.bed.as_deref(), args.from, args.to)) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let header = [
        "time_utc",
        "bed",
        "device",
        "mdc",
        "value",
        "unit",
        "special",
        "device_time",
        "source",
    ];
    let result = w.write_record(header).and_then(|_| {
        for r in &readings {
            let (value, special) = match r.value {
                vigil_model::Value::Number(v) => (v.to_string(), String::new()),
                vigil_model::Value::Special(s) => (String::new(), s.as_str().to_string()),
            };
            w.write_record([
                r.received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                r.bed.clone(),
                r.device.clone(),
                r.code.0.to_string(),
                value,
                r.unit.clone(),
                special,
                r.device_time
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                    .unwrap_or_default(),
                match r.source {
                    vigil_model::Source::Real => "real".into(),
                    vigil_model::Source::Simulated => "simulated".into(),
                },
            ])?;
        }
        w.flush().map_err(csv::Error::from)
    });
    rt.block_on(store.close());
    match result {
        Ok(()) => {
            eprintln!("vigil export: {} readings", readings.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("writing CSV: {e}")),
    }
}

/// Opens every chunk and sealed record; non-zero exit if any fails.
pub fn verify(global: &Global) -> ExitCode {
    let (rt, store) = match open(global) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let result = rt.block_on(store.verify());
    rt.block_on(store.close());
    match result {
        Ok((checked, failures)) if failures.is_empty() => {
            println!("vigil store verify: {checked} chunks and all sealed records authenticated: OK");
            ExitCode::SUCCESS
        }
        Ok((checked, failures)) => {
            for f in &failures {
                println!("FAILED: {f}");
            }
            println!(
                "vigil store verify: {checked} chunks checked, {} failures",
                failures.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Re-wraps the data keys under a new key-encryption key.
pub fn key_rotate(global: &Global, new_key_file: Option<&Path>) -> ExitCode {
    let old = match config::resolve_key(global.key_file.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let new =
        match (new_key_file, std::env::var("VIGIL_NEW_PASSPHRASE")) {
            (Some(p), _) => KeySource::KeyFile(p.to_path_buf()),
            (None, Ok(p)) if p.chars().count() >= 8 => KeySource::passphrase(p, "VIGIL_NEW_PASSPHRASE"),
            _ => return fail(
                "give the new key with --new-key-file <file> or VIGIL_NEW_PASSPHRASE (at least 8 characters)",
            ),
        };
    let dir = match &global.data_dir {
        Some(d) => d.clone(),
        None => match config::default_data_dir() {
            Ok(d) => d,
            Err(e) => return fail(&e.to_string()),
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(vigil_store::rotate_key(&config::store_path(&dir), &old, &new)) {
        Ok(()) => {
            eprintln!(
                "vigil: store key rotated from {} to {}",
                old.describe(),
                new.describe()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}
