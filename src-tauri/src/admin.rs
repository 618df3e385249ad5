//! Operator commands on the store: `vigil export`, `vigil store verify`,
//! `vigil key rotate` / `log`, `vigil fhir dead-letters` / `requeue`,
//! `vigil user`, `vigil audit`. They open the store with the same key rules as the
//! app and the gateway, and print no patient data except what was asked
//! to be exported (to stdout only). Each needs a Vigil user whose
//! role allows it ([`crate::cli_auth`]) and writes an audit record with that
//! user as actor and the operating-system user (`cli os:<name>`) in its detail.

use crate::cli::{fail, ExportArgs, Global, RequeueArgs};
use crate::cli_auth::{self, finish};
use std::path::Path;
use std::process::ExitCode;
use vigil_core::cli_user::{CliCommand, CliUser};
use vigil_core::config;
use vigil_store::{KeySource, Store};

/// Opens the store and signs `--user` in for `command`.
pub(crate) fn open(global: &Global, command: CliCommand) -> Result<(tokio::runtime::Runtime, Store, CliUser), ExitCode> {
    let credentials = cli_auth::credentials(global)?;
    let (rt, store) = open_store(global).map_err(|e| fail(&e))?;
    let user = cli_auth::sign_in(&rt, &store, &credentials, command)?;
    Ok((rt, store, user))
}

fn open_store(global: &Global) -> Result<(tokio::runtime::Runtime, Store), String> {
    let dir = global.data_dir().map_err(|e| e.to_string())?;
    let key = config::resolve_key(global.key_file.as_deref(), &dir).map_err(|e| e.to_string())?;
    let path = config::store_path(&dir);
    if !path.exists() {
        return Err(format!("no store at {}", path.display()));
    }
    config::secure_data_dir(&dir).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = rt.block_on(Store::open(&path, &key)).map_err(|e| e.to_string())?;
    Ok((rt, store))
}

/// A cell a spreadsheet takes as text, never as a formula: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP, "CSV Injection"), unless it is
/// a plain number ("-3.5" stays a number). Device names come from any BLE peer in radio
/// range and alarm messages and user names carry them: an export must not run them.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && s.parse::<f64>().map_or(true, |v| !v.is_finite()) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// Writes one data row through [`csv_cell`].
fn safe_record<W: std::io::Write, S: AsRef<str>>(
    w: &mut csv::Writer<W>,
    row: impl IntoIterator<Item = S>,
) -> csv::Result<()> {
    w.write_record(row.into_iter().map(|c| csv_cell(c.as_ref()).into_owned()))
}

/// CSV: a header row, then one row per reading, oldest first.
pub fn export(global: &Global, args: &ExportArgs) -> ExitCode {
    if args.to < args.from {
        return fail("--to is before --from");
    }
    let (rt, store, user) = match open(global, cli_auth::EXPORT) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let readings = rt.block_on(store.query_range(args.bed.as_deref(), args.from, args.to));
    finish(&rt, &store, user, readings.is_ok(), format!("readings CSV, bed {}", args.bed.as_deref().unwrap_or("all")));
    let readings = match readings {
        Ok(r) => r,
        Err(e) => {
            rt.block_on(store.close());
            return fail(&e.to_string());
        }
    };
    let result = write_readings_csv(std::io::stdout().lock(), &readings);
    rt.block_on(store.close());
    match result {
        Ok(()) => {
            eprintln!("vigil export: {} readings", readings.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("writing CSV: {e}")),
    }
}

/// The readings CSV of `vigil export` (and `vigil report --format csv`):
/// a header row, then one row per reading, every cell through [`csv_cell`].
pub(crate) fn write_readings_csv<W: std::io::Write>(out: W, readings: &[vigil_model::Reading]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
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
        "quality",
        "status",
    ];
    w.write_record(header).and_then(|_| {
        for r in readings {
            let (value, special) = match r.value {
                vigil_model::Value::Number(v) => (v.to_string(), String::new()),
                vigil_model::Value::Special(s) => (String::new(), s.as_str().to_string()),
            };
            safe_record(&mut w, [
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
                // The device's verdict and status bits, e.g. "questionable",
                // "cuff too loose; body movement detected".
                match r.status.quality {
                    vigil_model::Quality::Valid => "valid".into(),
                    vigil_model::Quality::Questionable => "questionable".into(),
                    vigil_model::Quality::Invalid => "invalid".into(),
                },
                r.status.flags.join("; "),
            ])?;
        }
        w.flush().map_err(csv::Error::from)
    })
}

/// `vigil fhir dead-letters`: one line per dead letter or parked reading,
/// without values (the server's full reason may echo them: shown in the app
/// only).
pub fn fhir_dead_letters(global: &Global) -> ExitCode {
    let (rt, store, user) = match open(global, cli_auth::FHIR_QUEUE) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = rt.block_on(store.dead_letters());
    finish(&rt, &store, user, result.is_ok(), "fhir dead-letters");
    rt.block_on(store.close());
    match result {
        Ok(letters) => {
            println!("id\tat_utc\tkind\tbed\tmdc");
            for d in &letters {
                let kind = match d.kind {
                    vigil_store::DeadLetterKind::Refused => "refused",
                    vigil_store::DeadLetterKind::Parked => "parked",
                };
                println!(
                    "{}\t{}\t{kind}\t{}\t{}",
                    d.id,
                    d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    d.reading.bed,
                    d.reading.code.0
                );
            }
            eprintln!("vigil fhir dead-letters: {}", letters.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// `vigil fhir requeue`: dead letters back into the outbox (one
/// transaction). Asking for ids of which none exists is an error.
pub fn fhir_requeue(global: &Global, args: &RequeueArgs) -> ExitCode {
    let (rt, store, user) = match open(global, cli_auth::FHIR_QUEUE) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ids = (!args.all).then_some(args.ids.as_slice());
    let result = rt.block_on(store.requeue_dead_letters(ids));
    let detail = match &result {
        Ok(n) => format!("fhir requeue, {n} readings"),
        Err(_) => "fhir requeue".to_string(),
    };
    finish(&rt, &store, user, result.is_ok(), detail);
    rt.block_on(store.close());
    match result {
        Ok(0) if !args.all => fail("no dead letter with the given id(s)"),
        Ok(n) => {
            println!("vigil fhir requeue: {n} readings queued for upload again");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Opens every chunk and sealed record; non-zero exit if any fails.
pub fn verify(global: &Global) -> ExitCode {
    let (rt, store, user) = match open(global, cli_auth::STORE_VERIFY) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Checked before this run's records are added (the sign-in's are held till `finish`).
    let result = rt.block_on(store.verify());
    // The audit trail is checked too (`vigil audit verify` prints only it).
    let trail = rt.block_on(store.audit_verify());
    let ok = result.as_ref().is_ok_and(|(_, f)| f.is_empty()) && trail.as_ref().is_ok_and(|r| r.intact());
    finish(&rt, &store, user, ok, "store verify");
    rt.block_on(store.close());
    let (checked, mut failures) = match result {
        Ok((checked, failures)) => (checked, failures.iter().map(|f| f.to_string()).collect::<Vec<_>>()),
        Err(e) => return fail(&e.to_string()),
    };
    match trail {
        Ok(r) => failures.extend(r.faults.iter().map(|f| f.to_string())),
        Err(e) => return fail(&e.to_string()),
    }
    if failures.is_empty() {
        println!("vigil store verify: {checked} chunks, all sealed records and the audit trail authenticated: OK");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
        println!(
            "vigil store verify: {checked} chunks checked, {} failures",
            failures.len()
        );
        ExitCode::FAILURE
    }
}

/// `vigil store backup <file>`: a verified, still encrypted copy of the store,
/// taken while the app or a gateway may be writing it.
pub fn backup(global: &Global, file: &Path) -> ExitCode {
    let key = match global.data_dir().map_err(|e| e.to_string()).and_then(|dir| {
        config::resolve_key(global.key_file.as_deref(), &dir).map_err(|e| e.to_string())
    }) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let (rt, store, user) = match open(global, cli_auth::STORE_BACKUP) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = rt.block_on(store.backup(file, &key));
    finish(&rt, &store, user, result.is_ok(), "store backup");
    rt.block_on(store.close());
    match result {
        Ok(b) => {
            println!(
                "vigil store backup: {} ({:.1} MB, {} chunks verified, newest reading {}); encrypted: restoring it needs this site's passphrase or key file, which is not in the backup",
                b.path.display(),
                b.bytes as f64 / 1e6,
                b.chunks_checked,
                b.activity.newest_reading.map(|t| t.to_rfc3339()).unwrap_or_else(|| "none".into()),
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("backup not written: {e}")),
    }
}

/// `vigil store restore <file> [--force]`: checks the backup, then replaces the
/// store with it (the replaced store is kept aside). The command is audited in
/// the store that is in place afterwards.
pub fn restore(global: &Global, file: &Path, force: bool) -> ExitCode {
    let dir = match global.data_dir() {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let key = match config::resolve_key(global.key_file.as_deref(), &dir) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = config::secure_data_dir(&dir) {
        return fail(&e.to_string());
    }
    let path = config::store_path(&dir);
    let credentials = match cli_auth::credentials(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The current store: its users decide who may restore, and what it holds
    // whether a restore would lose anything. None on a new workstation.
    let (user, current) = if path.exists() {
        let store = match rt.block_on(Store::open(&path, &key)) {
            Ok(s) => s,
            Err(e) => return fail(&format!("{e} (a damaged store is moved aside when Vigil starts; restore after that)")),
        };
        let first = Ok(vigil_core::auth::Actor::os());
        let user = match cli_auth::sign_in_unless_no_users(&rt, &store, &credentials, cli_auth::STORE_RESTORE, first) {
            Ok(u) => u,
            Err(code) => return code,
        };
        let current = rt.block_on(store.activity());
        rt.block_on(store.close());
        match current {
            Ok(c) => (Some(user), Some(c)),
            Err(e) => return fail(&e.to_string()),
        }
    } else {
        (None, None)
    };
    let counters = vigil_store::default_counter_dir();
    let result = rt.block_on(vigil_store::backup::restore(
        file,
        &path,
        &key,
        current.as_ref(),
        force,
        counters.as_deref(),
        chrono::Utc::now(),
    ));
    // Record the command in whichever store is in place now.
    match rt.block_on(Store::open(&path, &key)) {
        Ok(store) => {
            let detail = match &result {
                Ok(r) => format!(
                    "store restore: from a backup with {} chunks; replaced store {}",
                    r.activity.chunks,
                    r.replaced.as_ref().map(|p| format!("kept as {}", p.display())).unwrap_or_else(|| "none".into())
                ),
                Err(_) => "store restore: refused or failed; the store was not replaced".into(),
            };
            let user = match user {
                Some(u) => Ok(u),
                None => cli_auth::sign_in_unless_no_users(
                    &rt,
                    &store,
                    &credentials,
                    cli_auth::STORE_RESTORE,
                    Ok(vigil_core::auth::Actor::os()),
                ),
            };
            match user {
                Ok(u) => finish(&rt, &store, u, result.is_ok(), detail),
                // The restored store's users refuse this user: it is restored, but say so.
                Err(_) => eprintln!("vigil: the restored store does not know this user; the restore was not recorded in its trail"),
            }
            rt.block_on(store.close());
        }
        Err(e) if result.is_ok() => return fail(&format!("restored, but the restored store does not open: {e}")),
        Err(_) => {}
    }
    match result {
        Ok(r) => {
            println!(
                "vigil store restore: {} restored ({} chunks verified, newest reading {}){}",
                file.display(),
                r.chunks_checked,
                r.activity.newest_reading.map(|t| t.to_rfc3339()).unwrap_or_else(|| "none".into()),
                r.replaced.map(|p| format!("; the replaced store is kept as {}", p.display())).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("not restored: {e}")),
    }
}

/// Copies what still opens from a damaged store into the current one and
/// says what could not be recovered (series and time ranges, no values).
pub fn salvage(global: &Global, file: &Path) -> ExitCode {
    let dir = match global.data_dir() {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let key = match config::resolve_key(global.key_file.as_deref(), &dir) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let path = config::store_path(&dir);
    if !file.exists() {
        return fail(&format!("no file {}", file.display()));
    }
    if let (Ok(a), Ok(b)) = (file.canonicalize(), path.canonicalize()) {
        if a == b {
            return fail("that is the current store: salvage copies from a damaged store moved aside");
        }
    }
    let credentials = match cli_auth::credentials(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = match rt.block_on(Store::open(&path, &key)) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    // A store started after the old one was moved aside has no user: salvage brings
    // the accounts back, so it runs without one there (as the first admin would).
    let first = Ok(vigil_core::auth::Actor::os());
    let user = match cli_auth::sign_in_unless_no_users(&rt, &store, &credentials, cli_auth::STORE_SALVAGE, first) {
        Ok(u) => u,
        Err(code) => return code,
    };
    let result = rt.block_on(store.salvage_from(file, &key));
    finish(&rt, &store, user, result.is_ok(), "store salvage");
    rt.block_on(store.close());
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            return fail(&format!(
                "nothing could be recovered from {}: {e}",
                file.display()
            ))
        }
    };
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    println!(
        "vigil store salvage: from {} into {}",
        file.display(),
        path.display()
    );
    println!(
        "recovered: {} chunks ({} readings), {} alarm-log records, {} NEWS2 records, {} admissions, {} users",
        r.chunks_recovered,
        r.readings_recovered,
        r.alarm_records_recovered,
        r.news2_records_recovered,
        r.admissions_recovered,
        r.users_recovered
    );
    println!(
        "already present: {} chunks, {} alarm-log records, {} NEWS2 records, {} admissions, {} users",
        r.chunks_already_present,
        r.alarm_records_already_present,
        r.news2_records_already_present,
        r.admissions_already_present,
        r.users_already_present
    );
    for s in &r.lost_series {
        println!(
            "NOT RECOVERED: bed {} code {} ({}) from {} to {}: {} chunks failed authentication",
            s.bed,
            s.code.0,
            s.code.label(),
            fmt(s.from),
            fmt(s.to),
            s.chunks
        );
    }
    for l in &r.lost_rows {
        let when = l
            .between
            .map(|(a, b)| format!(", written between {} and {}", fmt(a), fmt(b)))
            .unwrap_or_default();
        println!(
            "NOT RECOVERED: {} rows {}..={} on damaged pages (series unknown){when}",
            l.table, l.first_id, l.last_id
        );
    }
    if r.alarm_records_lost > 0 {
        println!("NOT RECOVERED: {} alarm-log records", r.alarm_records_lost);
    }
    if r.news2_records_lost > 0 {
        println!("NOT RECOVERED: {} NEWS2 records", r.news2_records_lost);
    }
    if r.admissions_lost > 0 {
        println!("NOT RECOVERED: {} admissions", r.admissions_lost);
    }
    if r.users_lost > 0 {
        println!("NOT RECOVERED: {} users", r.users_lost);
    }
    for id in &r.admissions_conflicting {
        println!("NOT COPIED: admission {id} is current but its bed now has another patient");
    }
    if r.lost_series.is_empty()
        && r.lost_rows.is_empty()
        && r.alarm_records_lost == 0
        && r.news2_records_lost == 0
        && r.admissions_lost == 0
        && r.users_lost == 0
    {
        println!("everything that was read authenticated");
    }
    if r.read_anything() {
        ExitCode::SUCCESS
    } else {
        fail("nothing could be recovered")
    }
}

/// Rotates the store's key (see `vigil_store::rotate_key`), then removes
/// an OS keychain key that was rotated away from. A new keychain key is
/// stored under a staging entry first, so a failure at any step leaves a
/// key that opens the store somewhere the operator is told of.
pub fn key_rotate(global: &Global, new_key_file: Option<&Path>, new_keychain: bool) -> ExitCode {
    let dir = match global.data_dir() {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let old = match config::resolve_key(global.key_file.as_deref(), &dir) {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    // The user is checked under the old key, before anything changes.
    let user = match open(global, cli_auth::MANAGE_KEYS) {
        Ok((rt, store, user)) => {
            rt.block_on(store.close());
            user
        }
        Err(code) => return code,
    };
    let new = match (new_key_file, new_keychain, std::env::var("VIGIL_NEW_PASSPHRASE")) {
        (Some(p), _, _) => KeySource::KeyFile(p.to_path_buf()),
        (None, true, _) => match config::stage_keychain_key(&dir) {
            Ok(k) => k,
            Err(e) => return fail(&e.to_string()),
        },
        (None, false, Ok(p)) if p.chars().count() >= config::MIN_PASSPHRASE_CHARS => KeySource::passphrase(p, "VIGIL_NEW_PASSPHRASE"),
        _ => return fail(
            "give the new key with --new-key-file <file>, --new-keychain or VIGIL_NEW_PASSPHRASE (at least 12 characters)",
        ),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = match rt.block_on(vigil_store::rotate_key(&config::store_path(&dir), &old, &new)) {
        Ok(r) => r,
        Err(e) => {
            if new_keychain {
                config::discard_staged_keychain_key(&dir);
            }
            // A failed rotation leaves the old key in place: recorded under it.
            if let Ok(store) = rt.block_on(Store::open(&config::store_path(&dir), &old)) {
                finish(&rt, &store, user, false, format!("key rotate to {} failed", new.kind()));
                rt.block_on(store.close());
            }
            return fail(&e.to_string());
        }
    };
    // Recorded under the new key (the old one no longer opens the store).
    match rt.block_on(Store::open(&config::store_path(&dir), &new)) {
        Ok(store) => {
            let detail = format!("key rotate from {} to {}", old.kind(), new.kind());
            finish(&rt, &store, user, true, detail);
            rt.block_on(store.close());
        }
        Err(e) => eprintln!("vigil: the audit record of this rotation could not be written: {e}"),
    }
    eprintln!(
        "vigil: store key rotated from {} to {}: new data keys {:?}, kept (still in use) {:?}, destroyed {:?}",
        old.describe(),
        new.describe(),
        report.created,
        report.kept,
        report.destroyed
    );
    let keychain = if new_keychain {
        config::commit_staged_keychain_key(&dir)
    } else if matches!(old, KeySource::Keychain(_)) {
        config::remove_keychain_key(&dir)
    } else {
        Ok(())
    };
    match keychain {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// Prints the key log, oldest first: UTC time, operation, key, detail.
pub fn key_log(global: &Global) -> ExitCode {
    let (rt, store, user) = match open(global, cli_auth::MANAGE_KEYS) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let log = rt.block_on(store.key_log());
    finish(&rt, &store, user, log.is_ok(), "key log");
    match log {
        Ok(events) => {
            for e in events {
                let key = match (e.key_id, e.purpose.as_deref()) {
                    (Some(id), Some(p)) => format!("key {id} ({p})"),
                    (Some(id), None) => format!("key {id}"),
                    _ => "-".to_string(),
                };
                println!(
                    "{}  {:<12}  {:<18}  {}",
                    e.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    e.op.as_str(),
                    key,
                    e.detail
                );
            }
            rt.block_on(store.close());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// The alarm log as CSV: one row per alarm condition (start, end, bed,
/// kind, priority, parameter, value, limit), plus who acknowledged it.
pub fn alarms_export(
    global: &Global,
    bed: Option<&str>,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    events: bool,
) -> ExitCode {
    use vigil_alarms::{AlarmEvent, AlarmEventKind, AlarmKind};
    let (rt, store, user) = match open(global, cli_auth::ALARMS_EXPORT) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let log = rt.block_on(store.alarm_log(bed, from, to));
    finish(&rt, &store, user, log.is_ok(), format!("alarms export, bed {}", bed.unwrap_or("all")));
    rt.block_on(store.close());
    let log = match log {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    if events {
        return alarm_events_export(log);
    }
    #[derive(Default)]
    struct Row {
        start: String,
        end: String,
        bed: String,
        kind: String,
        priority: String,
        parameter: String,
        value: String,
        limit: String,
        acknowledged_by: String,
        message: String,
    }
    let mut rows: std::collections::BTreeMap<u64, Row> = Default::default();
    let mut skipped = 0;
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for rec in log {
        let Ok(ev) = serde_json::from_value::<AlarmEvent>(rec.event) else {
            skipped += 1;
            continue;
        };
        let Some(id) = ev.id else { continue }; // bed-level (audio pause) records
        let row = rows.entry(id).or_default();
        match &ev.event {
            AlarmEventKind::Started { value, limit } => {
                row.start = time(ev.at);
                row.bed = ev.bed.clone();
                row.priority = ev
                    .priority
                    .map(|p| format!("{p:?}").to_lowercase())
                    .unwrap_or_default();
                row.value = value.map(|v| v.to_string()).unwrap_or_default();
                row.limit = limit.map(|v| v.to_string()).unwrap_or_default();
                row.message = ev.message.clone();
                match &ev.kind {
                    Some(AlarmKind::Physiological { parameter, .. }) => {
                        row.kind = "physiological".into();
                        row.parameter = parameter.label().to_string();
                    }
                    Some(AlarmKind::Technical { kind, parameter, .. }) => {
                        row.kind = "technical".into();
                        row.parameter = technical_parameter(*kind, *parameter);
                    }
                    Some(AlarmKind::News2) => {
                        row.kind = "news2".into();
                        row.parameter = "NEWS2".into();
                    }
                    None => {}
                }
            }
            AlarmEventKind::Escalated { .. } => {
                row.priority = ev
                    .priority
                    .map(|p| format!("{p:?}").to_lowercase())
                    .unwrap_or_default();
            }
            AlarmEventKind::Ended { .. } => row.end = time(ev.at),
            AlarmEventKind::Acknowledged { user } => row.acknowledged_by = user.clone(),
            _ => {}
        }
    }
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let result = w
        .write_record([
            "start_utc",
            "end_utc",
            "bed",
            "kind",
            "priority",
            "parameter",
            "value",
            "limit",
            "acknowledged_by",
            "message",
        ])
        .and_then(|_| {
            for r in rows.values().filter(|r| !r.start.is_empty()) {
                safe_record(&mut w, [
                    &r.start,
                    &r.end,
                    &r.bed,
                    &r.kind,
                    &r.priority,
                    &r.parameter,
                    &r.value,
                    &r.limit,
                    &r.acknowledged_by,
                    &r.message,
                ])?;
            }
            w.flush().map_err(csv::Error::from)
        });
    export_done(result, skipped)
}

/// The alarm log as CSV, one row per logged event (`vigil alarms export --events`).
fn alarm_events_export(log: Vec<vigil_store::AlarmRecord>) -> ExitCode {
    use vigil_alarms::{AlarmEvent, AlarmEventKind as E, AlarmKind};
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let header = [
        "at_utc",
        "bed",
        "id",
        "event",
        "kind",
        "priority",
        "parameter",
        "user",
        "message",
    ];
    let mut skipped = 0;
    let result = w.write_record(header).and_then(|_| {
        for rec in log {
            let Ok(ev) = serde_json::from_value::<AlarmEvent>(rec.event) else {
                skipped += 1;
                continue;
            };
            // The event's type as the log stores it ("started", "rearmed", …).
            let event = serde_json::to_value(&ev.event)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let (kind, parameter) = match &ev.kind {
                Some(AlarmKind::Physiological { parameter, .. }) => {
                    ("physiological", parameter.label().to_string())
                }
                Some(AlarmKind::Technical { kind, parameter, .. }) => {
                    ("technical", technical_parameter(*kind, *parameter))
                }
                Some(AlarmKind::News2) => ("news2", "NEWS2".to_string()),
                None => ("", String::new()),
            };
            let user = match &ev.event {
                E::Acknowledged { user } | E::AudioPaused { user, .. } => user.clone(),
                E::LimitChanged { user, .. } => user.clone().unwrap_or_default(),
                _ => String::new(),
            };
            safe_record(&mut w, [
                ev.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ev.bed.clone(),
                ev.id.map(|i| i.to_string()).unwrap_or_default(),
                event,
                kind.to_string(),
                ev.priority.map(|p| p.as_str().to_string()).unwrap_or_default(),
                parameter,
                user,
                ev.message.clone(),
            ])?;
        }
        w.flush().map_err(csv::Error::from)
    });
    export_done(result, skipped)
}

/// The export's `parameter` of a technical alarm: its kind ("Disconnected"),
/// with the parameter it concerns ("SpO2 NoValidMeasurement").
fn technical_parameter(
    kind: vigil_alarms::TechnicalKind,
    parameter: Option<vigil_alarms::Parameter>,
) -> String {
    match parameter {
        Some(p) => format!("{} {kind:?}", p.label()),
        None => format!("{kind:?}"),
    }
}

/// How an alarm export ends: records of an unknown format are reported,
/// a CSV write error fails the command.
fn export_done(result: Result<(), csv::Error>, skipped: usize) -> ExitCode {
    if skipped > 0 {
        eprintln!("vigil alarms export: {skipped} records from an unknown format were skipped");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("writing CSV: {e}")),
    }
}

/// `vigil config check [FILE]`: what Vigil would make of the site configuration here.
pub fn config_check(global: &Global, file: Option<&Path>) -> ExitCode {
    use vigil_core::site::{self, SiteConfig, SiteRole};
    let data_dir = match config::data_dir(global.data_dir.as_deref()) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let installer = file.map(Path::to_path_buf).or_else(site::installer_path);
    let site = match SiteConfig::load_from(installer.as_deref(), &data_dir.join("site.json")) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    if site.files.is_empty() {
        println!("no site configuration file: the defaults below apply");
    }
    for f in &site.files {
        let role = match f.role {
            SiteRole::Installer => "installer's file",
            SiteRole::Local => "data directory's file",
        };
        let who = if f.admin_only {
            "only administrators can change it"
        } else {
            "others than administrators can change it: workstation settings only"
        };
        let taken = if f.sections.is_empty() {
            "nothing (all decided elsewhere)".to_string()
        } else {
            f.sections.join(", ")
        };
        println!("{role}: {}\n  sha256 {}\n  {who}\n  taken from it: {taken}", f.path, f.sha256);
    }
    let rows = site.effective();
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    println!("effective configuration:");
    for r in &rows {
        println!("  {:width$}  {}  [{}]", r.key, r.value, r.source);
    }
    // What Vigil would refuse at start, beyond the file's own rules.
    let mut problems = Vec::new();
    if let Err(e) = site.alarm_preset() {
        problems.push(e.to_string());
    }
    if let Some(f) = &site.fhir {
        if f.gateway_id == site::DEFAULT_GATEWAY_ID {
            problems.push("fhir.gateway_id is not set: upload refuses to start (set one per workstation)".into());
        }
        if let Err(e) = vigil_core::vigil_fhir::FhirClient::new(vigil_core::vigil_fhir::ClientConfig::new(f.base_url.clone())) {
            problems.push(format!("fhir.base_url: {e}"));
        }
    }
    if problems.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("vigil: {p}");
        }
        ExitCode::FAILURE
    }
}

/// Opens the store for `vigil user add`, making it if there is none yet (the
/// installer's first step: the first admin before the first start).
fn open_or_create(global: &Global) -> Result<(tokio::runtime::Runtime, Store), String> {
    let dir = global.data_dir().map_err(|e| e.to_string())?;
    config::secure_data_dir(&dir).map_err(|e| e.to_string())?;
    let key = config::resolve_key(global.key_file.as_deref(), &dir).map_err(|e| e.to_string())?;
    let path = config::store_path(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = rt.block_on(Store::open(&path, &key)).map_err(|e| e.to_string())?;
    Ok((rt, store))
}

/// The new user's password: `VIGIL_NEW_USER_PASSWORD`; for the installer's first
/// admin (no user signs in) also `VIGIL_USER_PASSWORD`, as before roles on the CLI;
/// else typed twice at a prompt (not echoed).
fn new_password(first_admin: bool) -> Result<String, String> {
    let env = |v: &str| std::env::var(v).ok().filter(|p| !p.is_empty());
    if let Some(p) = env(NEW_USER_PASSWORD_ENV).or_else(|| env(cli_auth::USER_PASSWORD_ENV).filter(|_| first_admin)) {
        return Ok(p);
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        let vars = if first_admin {
            format!("{NEW_USER_PASSWORD_ENV} or {}", cli_auth::USER_PASSWORD_ENV)
        } else {
            NEW_USER_PASSWORD_ENV.to_string()
        };
        return Err(format!("no password for the new user: set {vars} or run in a terminal to be asked"));
    }
    let first = prompt_hidden("New user's password (at least 12 characters): ")?;
    vigil_core::auth::check_new_password(&first).map_err(|e| e.to_string())?;
    let second = prompt_hidden("The same password again: ")?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}

pub(crate) fn prompt_hidden(prompt: &str) -> Result<String, String> {
    use std::io::Write;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The new user's password for `vigil user add` (the signing-in user's is `VIGIL_USER_PASSWORD`).
pub const NEW_USER_PASSWORD_ENV: &str = "VIGIL_NEW_USER_PASSWORD";

/// `vigil user add <name> --role <role>`: an admin's, or the installer's first
/// admin on a store with no user (no `--user` then).
pub fn user_add(global: &Global, name: &str, role: &str) -> ExitCode {
    use vigil_core::auth;
    let role: auth::Role = match role.parse() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = auth::check_name(name) {
        return fail(&e.to_string());
    }
    let credentials = match cli_auth::credentials(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (rt, store) = match open_or_create(global) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let first = CliUser::first_admin(name, role);
    let user = match cli_auth::sign_in_unless_no_users(&rt, &store, &credentials, cli_auth::MANAGE_USERS, first) {
        Ok(u) => u,
        Err(code) => return code,
    };
    let what = if user.bootstrap() { "first admin" } else { "user add" };
    let result = match new_password(user.bootstrap()) {
        Ok(password) => rt.block_on(auth::add_user(&store, name, role, &password)).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    finish(&rt, &store, user, result.is_ok(), format!("{what} {name} ({role})"));
    rt.block_on(store.close());
    match result {
        Ok(()) => {
            eprintln!("vigil user add: {name} ({role})");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `vigil user disable <name>`: the user can no longer sign in.
pub fn user_disable(global: &Global, name: &str) -> ExitCode {
    use vigil_core::auth;
    let (rt, store, user) = match open(global, cli_auth::MANAGE_USERS) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = rt.block_on(auth::set_disabled(&store, name, true));
    finish(&rt, &store, user, result.is_ok(), format!("user disable {name}"));
    rt.block_on(store.close());
    match result {
        Ok(()) => {
            eprintln!("vigil user disable: {name} can no longer sign in");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// `vigil user list`: name, role, enabled/disabled, created (tab-separated).
pub fn user_list(global: &Global) -> ExitCode {
    use vigil_core::auth;
    let (rt, store, user) = match open(global, cli_auth::MANAGE_USERS) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = rt.block_on(auth::list_users(&store));
    finish(&rt, &store, user, result.is_ok(), "user list");
    rt.block_on(store.close());
    match result {
        Ok(users) => {
            println!("name\trole\tstatus\tcreated_utc");
            for u in &users {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.name,
                    u.role,
                    if u.disabled { "disabled" } else { "enabled" },
                    u.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// `vigil audit verify`: the whole trail checked; exit 0 only when intact.
pub fn audit_verify(global: &Global) -> ExitCode {
    let (rt, store, user) = match open(global, cli_auth::AUDIT_VERIFY) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Read-only once allowed (a refusal is recorded): a check must not add to (or move
    // the head of) what it checks; appending after a truncated trail would re-sign it.
    let report = rt.block_on(store.audit_verify());
    user.read_only();
    rt.block_on(store.close());
    match report {
        Ok(r) if r.intact() => {
            println!("vigil audit verify: {} records, chain, signatures and head intact: OK", r.records);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            for f in &r.faults {
                println!("FAILED: {f}");
            }
            println!("vigil audit verify: {} records, {} failures", r.records, r.faults.len());
            ExitCode::FAILURE
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// `vigil audit export --format jsonl`: one record per line, oldest first,
/// each with its hash, signature and the trail's public key (a SIEM can
/// check both without the store). Opaque ids only: no names or MRNs.
pub fn audit_export(
    global: &Global,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
    out: Option<&Path>,
) -> ExitCode {
    use std::io::Write;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return fail("--to is before --from");
        }
    }
    let (rt, store, user) = match open(global, cli_auth::AUDIT_EXPORT) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let entries = rt.block_on(store.audit_entries(from, to));
    let key = rt.block_on(store.audit_public_key());
    let report = rt.block_on(store.audit_verify());
    finish(&rt, &store, user, entries.is_ok(), "audit export jsonl");
    rt.block_on(store.close());
    let (entries, key, report) = match (entries, key, report) {
        (Ok(e), Ok(k), Ok(r)) => (e, k, r),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(&e.to_string()),
    };
    let mut sink: Box<dyn Write> = match out {
        Some(p) => {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            match o.open(p) {
                Ok(f) => Box::new(std::io::BufWriter::new(f)),
                Err(e) => return fail(&format!("{}: {e}", p.display())),
            }
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let result = (|| -> std::io::Result<()> {
        for e in &entries {
            let mut v = serde_json::to_value(e).map_err(std::io::Error::other)?;
            v["public_key"] = serde_json::Value::String(key.clone());
            serde_json::to_writer(&mut sink, &v).map_err(std::io::Error::other)?;
            sink.write_all(b"\n")?;
        }
        sink.flush()
    })();
    if let Err(e) = result {
        return fail(&format!("writing the export: {e}"));
    }
    eprintln!("vigil audit export: {} records", entries.len());
    if report.intact() {
        ExitCode::SUCCESS
    } else {
        for f in &report.faults {
            eprintln!("vigil: the trail is not intact: {f}");
        }
        ExitCode::FAILURE
    }
}
