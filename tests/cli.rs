//! The `vigil` binary as a user runs it: `decode`, `gateway`, `key new`.
//! Real processes, real signals, real SQLite files in temp dirs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env_remove("VIGIL_PASSPHRASE").env("VIGIL_LOG", "warn");
    for v in ["VIGIL_USER", "VIGIL_USER_PASSWORD", "VIGIL_NEW_USER_PASSWORD"] {
        c.env_remove(v);
    }
    // Store counter mirrors (rollback detection) out of the user's config.
    c.env(
        "VIGIL_STORE_COUNTER_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-counters"),
    );
    c
}

// ---- Vigil users of the store commands (issue 14) ----

/// The test admin (the installer's first, added without `--user`) and clinician.
const ADMIN: &str = "t-admin";
const CLINICIAN: &str = "t-clin";

fn password_of(user: &str) -> String {
    format!("{user} password")
}

/// Adds [`ADMIN`] (the first admin: no `--user`) and [`CLINICIAN`] (by the admin)
/// to the store in `dir`, opened as `key` sets up a command; once per directory
/// (a marker file), except after `forget_users`.
fn ensure_users(dir: &Path, key: &dyn Fn(&mut Command)) {
    let marker = dir.join(".test-users");
    if marker.exists() {
        return;
    }
    add_user(dir, key, ADMIN, "admin", None);
    add_user(dir, key, CLINICIAN, "clinician", Some(ADMIN));
    std::fs::write(marker, "").unwrap();
}

/// `vigil user add <name> --role <role>`, as `by` (None: the first admin).
fn add_user(dir: &Path, key: &dyn Fn(&mut Command), name: &str, role: &str, by: Option<&str>) {
    let mut c = vigil();
    key(&mut c);
    c.args(["user", "add", name, "--role", role, "--data-dir"]).arg(dir);
    match by {
        Some(admin) => c
            .env("VIGIL_USER", admin)
            .env("VIGIL_USER_PASSWORD", password_of(admin))
            .env("VIGIL_NEW_USER_PASSWORD", password_of(name)),
        None => c.env("VIGIL_USER_PASSWORD", password_of(name)),
    };
    let out = c.output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The users of `dir` are gone (its store was moved aside): [`ensure_users`] adds them again.
fn forget_users(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(".test-users"));
}

/// Signs a store command in as the user whose role allows it: a clinician
/// exports (readings, alarms), an admin does the rest.
fn signed<'a>(c: &'a mut Command, args: &[&str]) -> &'a mut Command {
    let user = match args.first() {
        Some(&"export") | Some(&"alarms") | Some(&"report") | Some(&"admissions") => CLINICIAN,
        _ => ADMIN,
    };
    c.env("VIGIL_USER", user).env("VIGIL_USER_PASSWORD", password_of(user))
}

fn passphrase(p: &'static str) -> impl Fn(&mut Command) {
    move |c: &mut Command| {
        c.env("VIGIL_PASSPHRASE", p);
    }
}

#[test]
fn decode_prints_the_json_contract() {
    let out = vigil().args(["decode", "2A37", "0048"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.starts_with(
            r#"{"characteristic":"2a37","measurements":[{"mdc":147842,"value":72.0,"unit":"/min"}]"#
        ),
        "{s}"
    );

    // Full 128-bit UUID, spaces in the hex, special values.
    let out = vigil()
        .args([
            "decode",
            "00002A5F-0000-1000-8000-00805F9B34FB",
            "00",
            "FF",
            "07",
            "48",
            "00",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["measurements"][0]["mdc"], 150456);
    assert_eq!(v["measurements"][0]["value"], serde_json::Value::Null);
    assert_eq!(v["measurements"][0]["special"], "nan");
    assert_eq!(v["measurements"][1]["value"], 72.0);

    // A device's clock (Current Time, CTS): a time, no measurement.
    let out = vigil()
        .args(["decode", "2A2B", "E8 07 03 0F 0A 1E 05 05 80 01"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["device_time"], "2024-03-15T10:30:05.500");
    assert_eq!(v["measurements"], serde_json::json!([]));
}

#[test]
fn decode_rejects_malformed_input_with_one_line() {
    for args in [
        vec!["2A37", "01", "48"],
        vec!["2A37", "zz"],
        vec!["2A99", "00"],
        vec!["2A19", "65"],
    ] {
        let out = vigil().arg("decode").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    let out = vigil().args(["decode", "2A37", "01", "48"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("2a37") && err.contains("byte 1"), "{err}");
}

#[test]
fn gateway_refuses_to_start_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil()
        .args(["gateway", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VIGIL_PASSPHRASE"));
    assert!(
        !dir.path().join("vigil.db").exists(),
        "created a store without a key"
    );
}

/// An installer checks what is installed with `--version` on whatever
/// command they are looking at; it needs no key, store or user.
#[test]
fn version_is_answered_by_every_subcommand_with_the_commit() {
    let empty = tempfile::tempdir().unwrap();
    for args in [
        &["--version"][..],
        &["gateway", "--version"],
        &["replay", "--version"],
        &["decode", "--version"],
        &["store", "verify", "--version"],
        &["key", "rotate", "--version"],
        &["report", "--version"],
        &["audit", "export", "--version"],
        &["user", "add", "--version"],
    ] {
        let out = vigil().arg("--data-dir").arg(empty.path()).args(args).output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(s.contains(env!("CARGO_PKG_VERSION")) && s.contains("(commit "), "{args:?}: {s}");
    }
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none(), "--version touched the data directory");
}

#[test]
fn gateway_help_lists_scenarios() {
    let out = vigil().args(["gateway", "--help"]).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    for name in [
        "ward",
        "stable",
        "deterioration",
        "desaturation",
        "fever",
        "sensor-off",
        "out-of-range",
        "low-battery",
        "special-values",
    ] {
        assert!(s.contains(name), "--help does not list {name}");
    }
}

/// Runs the gateway until `stored` readings are reported, then sends `signal`.
fn run_gateway_and_stop(dir: &Path, key_args: &[&str], signal: i32) -> String {
    let mut child = vigil()
        .args([
            "gateway",
            "--simulate",
            "ward",
            "--speed",
            "30",
            "--status-every",
            "1",
            "--data-dir",
        ])
        .arg(dir)
        .args(key_args)
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc_kill(child.id() as i32, signal) };
    let started = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        out.status.success(),
        "gateway exit: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// `vigil gateway --feed`: a central station connects with the token and gets the ward's
/// snapshot then numbered updates; without a token the gateway refuses to start rather
/// than serve an open feed, and plain ws is refused off loopback.
#[test]
fn gateway_serves_the_live_feed_with_a_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let token = "cli-feed-token-0123456789abcdef";
    let start = |listen: &str, token: Option<&str>| {
        let mut c = vigil();
        c.args(["gateway", "--simulate", "stable", "--speed", "10", "--feed", listen, "--data-dir"])
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
            .env_remove("VIGIL_FEED_TOKEN")
            .stderr(Stdio::piped());
        if let Some(t) = token {
            c.env("VIGIL_FEED_TOKEN", t);
        }
        c
    };
    let out = start("127.0.0.1:0", None).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no token configured") && err.contains("VIGIL_FEED_TOKEN"), "{err}");
    let out = start("0.0.0.0:0", Some(token)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("loopback only"), "{err}");

    let mut child = start("127.0.0.1:0", Some(token)).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("feed: listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("the gateway prints the feed's address");
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with("/feed"), "{url}");
    let addr = url.trim_start_matches("ws://").trim_end_matches("/feed").to_string();
    // tungstenite's own (large) handshake error: the test matches on it.
    #[allow(clippy::result_large_err)]
    let connect = |auth: Option<&str>| {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.as_str().into_client_request().unwrap();
        if let Some(t) = auth {
            req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        tungstenite::client(req, std::net::TcpStream::connect(&addr).unwrap())
    };
    match connect(Some("wrong-token-0123456789abcdef")) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => assert_eq!(r.status(), 401),
        other => panic!("a wrong token must be refused with 401, got {:?}", other.map(|_| ())),
    }
    let (mut ws, _) = connect(Some(token)).map_err(|e| e.to_string()).unwrap();
    let mut next = || loop {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
        }
    };
    let snap = next();
    assert_eq!((snap["type"].as_str(), snap["seq"].as_u64(), snap["schema"].as_u64()), (Some("snapshot"), Some(1), Some(1)));
    assert_eq!(snap["ward"]["beds"].as_array().unwrap().len(), 4);
    for seq in 2..6 {
        let m = next();
        assert_eq!((m["type"].as_str(), m["seq"].as_u64()), (Some("update"), Some(seq)));
    }
    unsafe { libc_kill(child.id() as i32, SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The last status line's "readings N" and "stored N".
fn counts(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("readings "))
        .expect("a status line");
    let num = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num("readings "), num("stored "))
}

#[test]
fn gateway_stops_cleanly_on_sigterm_with_every_reading_durable() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_gateway_and_stop(dir.path(), &[], SIGTERM);
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    assert!(stderr.contains("SIMULATED"), "{stderr}");
    let (readings, stored) = counts(&stderr);
    assert!(readings > 100, "too few readings: {readings}");
    assert_eq!(readings, stored, "readings received but not stored");

    // Everything counted is in the file, decryptable with the key.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = rt.block_on(async {
        let key = vigil_store::KeySource::passphrase("gateway-test-passphrase", "test");
        let store = vigil_store::Store::open(&dir.path().join("vigil.db"), &key)
            .await
            .unwrap();
        let from = chrono::Utc::now() - chrono::Duration::days(1);
        let to = chrono::Utc::now() + chrono::Duration::days(1);
        let all = store.query_range(None, from, to).await.unwrap();
        assert!(all.iter().all(|r| r.source == vigil_model::Source::Simulated));
        all.len() as u64
    });
    assert_eq!(n, stored);
}

/// IT backs up a workstation while its gateway records, and restores it:
/// never under a running monitor, never over newer data without --force,
/// and the replaced store is kept. The restored store verifies (no false
/// "rolled back") and holds exactly the backup's readings.
#[test]
fn store_backup_while_the_gateway_writes_and_restore_after_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let key = passphrase("gateway-test-passphrase");
    ensure_users(dir.path(), &key);
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let mut gateway = vigil()
        .args(["gateway", "--simulate", "ward", "--speed", "30", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .stderr(log)
        .spawn()
        .unwrap();
    let store_cmd = |args: &[&str]| {
        let mut c = vigil();
        signed(&mut c, args);
        c.args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
            .output()
            .unwrap()
    };
    std::thread::sleep(Duration::from_secs(3));
    let backup = dir.path().join("backup.db");
    let out = store_cmd(&["store", "backup", backup.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("chunks verified") && said.contains("encrypted"), "{said}");

    let out = store_cmd(&["store", "restore", backup.to_str().unwrap(), "--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("running"), "restored under a running gateway: {err}");

    std::thread::sleep(Duration::from_secs(1));
    unsafe { libc_kill(gateway.id() as i32, SIGTERM) };
    assert!(gateway.wait().unwrap().success());

    let out = store_cmd(&["store", "restore", backup.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--force"), "replaced newer data: {err}");

    let out = store_cmd(&["store", "restore", backup.to_str().unwrap(), "--force"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("kept as"), "{said}");
    let out = store_cmd(&["store", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let count = |path: &Path| {
        rt.block_on(async {
            let key = vigil_store::KeySource::passphrase("gateway-test-passphrase", "test");
            let s = vigil_store::Store::open_with_counter_dir(path, &key, None).await.unwrap();
            let from = chrono::Utc::now() - chrono::Duration::days(2);
            let to = chrono::Utc::now() + chrono::Duration::days(2);
            let n = s.query_range(None, from, to).await.unwrap().len();
            s.close().await;
            n
        })
    };
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains("vigil.db.replaced-"))
        .expect("the replaced store is kept");
    let (restored, in_backup, replaced) = (count(&dir.path().join("vigil.db")), count(&backup), count(&aside));
    assert!(in_backup > 0);
    assert_eq!(restored, in_backup);
    assert!(replaced > in_backup, "the gateway went on after the backup: {replaced} vs {in_backup}");
}

#[test]
fn gateway_with_a_key_file_says_so_and_sigint_works() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("site.key");
    let out = vigil().args(["key", "new"]).arg(&key).output().unwrap();
    assert!(out.status.success());
    let stderr = run_gateway_and_stop(dir.path(), &["--key-file", key.to_str().unwrap()], SIGINT);
    assert!(stderr.contains("unlocked with key file"), "{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    let (readings, stored) = counts(&stderr);
    assert_eq!(readings, stored);
    // Refuses to overwrite an existing key file.
    assert!(!vigil()
        .args(["key", "new"])
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn beds_come_from_the_site_configuration_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.json"), r#"{ "beds": 6 }"#).unwrap();
    let stderr = run_gateway_and_stop(dir.path(), &[], SIGTERM);
    assert!(stderr.contains("6 beds"), "{stderr}");
    let stderr = run_gateway_and_stop(dir.path(), &["--beds", "3"], SIGTERM);
    assert!(stderr.contains("3 beds"), "{stderr}");

    std::fs::write(dir.path().join("site.json"), r#"{ "beds": 0 }"#).unwrap();
    let out = vigil()
        .args(["gateway", "--simulate", "ward", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("beds must be 1 to 64"), "{err}");
}

#[test]
fn gateway_with_the_wrong_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    let out = vigil()
        .args(["gateway", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "not-the-passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("wrong passphrase"), "{err}");
}

fn tamper(db: &Path, stmt: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(stmt).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    });
}

#[test]
fn export_csv_and_store_verify() {
    let dir = tempfile::tempdir().unwrap();
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(2)).to_rfc3339();
    ensure_users(dir.path(), &passphrase("gateway-test-passphrase"));
    let run = |args: &[&str]| {
        signed(&mut vigil(), args)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
            .output()
            .unwrap()
    };
    let out = run(&[
        "export", "--bed", "bed-2", "--from", &from, "--to", &to, "--format", "csv",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time_utc,bed,device,mdc,value,unit,special,device_time,source,quality,status"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() > 50, "{} rows", rows.len());
    assert!(rows
        .iter()
        .all(|r| r.contains(",bed-2,") && r.contains(",simulated,")));
    assert!(rows
        .iter()
        .any(|r| r.contains(",147842,") && r.contains(",/min,")));
    // All beds without --bed.
    let all = run(&["export", "--from", &from, "--to", &to]);
    let all = String::from_utf8(all.stdout).unwrap();
    assert!(all.lines().count() > rows.len() + 1);
    assert!(all.contains(",bed-1,") && all.contains(",bed-4,"));
    // A bad time is a readable error.
    let bad = run(&["export", "--from", "yesterday", "--to", &to]);
    assert!(!bad.status.success());

    let ok = run(&["store", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));
    tamper(
        &dir.path().join("vigil.db"),
        "UPDATE chunks SET sealed = randomblob(length(sealed)) WHERE id = (SELECT min(id) FROM chunks)",
    );
    let failed = run(&["store", "verify"]);
    assert!(!failed.status.success());
    let report = String::from_utf8_lossy(&failed.stdout);
    assert!(
        report.contains("FAILED") && report.contains("failed authentication"),
        "{report}"
    );
}

/// Issue 13 §4 through `vigil store verify`: the newest chunk of a series
/// deleted, an alarm-log record moved in time, a device moved to another
/// bed, a discharge undone, an outbox row deleted, and the whole file put
/// back to an older copy are each reported by table and id (or scope), with
/// a non-zero exit; after a real gateway run nothing is.
#[test]
fn store_verify_reports_deleted_rows_edited_state_and_a_rolled_back_file() {
    let dir = tempfile::tempdir().unwrap();
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    let db = dir.path().join("vigil.db");
    ensure_users(dir.path(), &passphrase("gateway-test-passphrase"));
    let verify = || {
        let out = signed(&mut vigil(), &["store"])
            .args(["store", "verify", "--data-dir"])
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (ok, report) = verify();
    assert!(ok, "a normal gateway run is reported: {report}");
    let pristine = dir.path().join("pristine.db");
    std::fs::copy(&db, &pristine).unwrap();

    // A store API run on the copy writes what the gateway does not (device,
    // admission and discharge, alarm records, outbox), then each edit.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let key = vigil_store::KeySource::passphrase("gateway-test-passphrase", "test");
        let counters = Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-counters");
        let store = vigil_store::Store::open_with_counter_dir(&db, &key, Some(&counters))
            .await
            .unwrap();
        store.set_outbox_enabled(true);
        store.assign_device("AA:BB:CC:00:00:01", "bed-1", "hr_strap").await.unwrap();
        let _ = store.discharge("bed-7", chrono::Utc::now()).await;
        let p = vigil_store::Patient {
            display_name: "Test Patient".into(),
            mrn: "MRN-1".into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap(),
            category: vigil_store::PatientCategory::Adult,
        };
        let a = store.admit("bed-7", p, chrono::Utc::now()).await.unwrap();
        let mut r = store.latest().await.unwrap().remove(0);
        r.bed = "bed-7".into();
        r.admission = Some(a.id.clone());
        store.append(&[r.clone()]).await.unwrap();
        r.received += chrono::Duration::seconds(1);
        store.append(&[r]).await.unwrap();
        store.discharge("bed-7", chrono::Utc::now()).await.unwrap();
        store
            .log_alarms(&[("bed-7".into(), chrono::Utc::now(), serde_json::json!({"x": 1}))])
            .await
            .unwrap();
        store.close().await;
    });
    let (ok, report) = verify();
    assert!(ok, "{report}");
    tamper(&db, "DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)");
    tamper(&db, "UPDATE alarm_log SET at = at - 3600000000 WHERE id = (SELECT max(id) FROM alarm_log)");
    // Bed ids and addresses are sealed (schema 11): the file shows keyed
    // tags. The one device moved to another tag; the one discharged
    // admission (bed-7's) made open again.
    tamper(&db, "UPDATE devices SET bed_tag = x'00112233445566778899aabbccddeeff'");
    tamper(&db, "UPDATE admissions SET open = 1 WHERE open = 0");
    tamper(&db, "DELETE FROM outbox WHERE seq = (SELECT max(seq) FROM outbox)");
    let (ok, report) = verify();
    assert!(!ok, "{report}");
    for want in [
        "the sealed count says",
        "chunks of series",
        "alarm_log record",
        "failed its integrity check: its bed, time or state was altered in the file",
        "devices record ",
        "admissions record",
        "outbox: ",
    ] {
        assert!(report.contains(want), "no {want:?} in\n{report}");
    }

    // The whole file put back to the copy taken before the API run.
    std::fs::copy(&pristine, &db).unwrap();
    let (ok, report) = verify();
    assert!(!ok, "{report}");
    assert!(report.contains("rolled back to an older copy"), "{report}");
}

/// `vigil fhir requeue` puts dead letters back in the outbox once; `--id`
/// of none is an error; one of `--all` / `--id` is required.
#[test]
fn fhir_requeue_puts_dead_letters_back_in_the_outbox_once() {
    let dir = tempfile::tempdir().unwrap();
    let pass = "requeue-test-passphrase";
    let key = vigil_store::KeySource::passphrase(pass, "VIGIL_PASSPHRASE");
    let db = dir.path().join("vigil.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let counters = Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-counters");
        let store = vigil_store::Store::open_with_counter_dir(&db, &key, Some(&counters))
            .await
            .unwrap();
            let st = store.outbox_status().await.unwrap();
            store.close().await;
            (st.pending_readings, st.dead_letters)
        })
    };
    rt.block_on(async {
        let counters = Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-counters");
        let store = vigil_store::Store::open_with_counter_dir(&db, &key, Some(&counters))
            .await
            .unwrap();
        for v in [70.0, 71.0, 72.0] {
            let r = vigil_model::Reading {
                bed: "bed-1".into(),
                admission: Some(vigil_model::AdmissionId("adm-1".into())),
                device: "hr-1".into(),
                code: vigil_model::Mdc::ECG_HEART_RATE,
                value: vigil_model::Value::Number(v),
                unit: "/min".into(),
                device_time: None,
                received: chrono::Utc::now(),
                source: vigil_model::Source::Real,
                status: Default::default(),
            };
            store.dead_letter(&r, "HTTP 422: refused").await.unwrap();
        }
        store.close().await;
    });
    ensure_users(dir.path(), &passphrase(pass));
    let run = |args: &[&str]| {
        signed(&mut vigil(), args)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", pass)
            .output()
            .unwrap()
    };
    let list = run(&["fhir", "dead-letters"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.lines().nth(1).unwrap().starts_with("1\t") && list.contains("\trefused\tbed-1\t147842"));
    assert!(!list.contains("70"), "no values: {list}");

    assert!(
        !run(&["fhir", "requeue"]).status.success(),
        "--all or --id required"
    );
    let one = run(&["fhir", "requeue", "--id", "2"]);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert!(String::from_utf8_lossy(&one.stdout).contains("1 readings"));
    assert_eq!(status(&rt), (1, 2));
    let again = run(&["fhir", "requeue", "--id", "2"]);
    assert!(!again.status.success(), "already re-queued");
    assert_eq!(status(&rt), (1, 2));
    let all = run(&["fhir", "requeue", "--all"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("2 readings"));
    assert_eq!(status(&rt), (3, 0));
}

#[test]
fn key_rotation_makes_new_data_keys_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    let key = dir.path().join("new.key");
    assert!(vigil()
        .args(["key", "new"])
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
    ensure_users(dir.path(), &passphrase("gateway-test-passphrase"));
    let out = signed(&mut vigil(), &["key"])
        .args(["key", "rotate", "--new-key-file"])
        .arg(&key)
        .arg("--data-dir")
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify = |args: &[&str], pass: Option<&str>| {
        let mut c = vigil();
        signed(&mut c, &["store"])
            .args(["store", "verify", "--data-dir"])
            .arg(dir.path())
            .args(args);
        if let Some(p) = pass {
            c.env("VIGIL_PASSPHRASE", p);
        }
        c.output().unwrap().status.success()
    };
    assert!(
        verify(&["--key-file", key.to_str().unwrap()], None),
        "the new key opens the store"
    );
    assert!(
        !verify(&[], Some("gateway-test-passphrase")),
        "the old passphrase no longer does"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("new data keys"), "{stderr}");
    // The key log shows the rotation, authenticated.
    let log = signed(&mut vigil(), &["key"])
        .args(["key", "log", "--key-file"])
        .arg(&key)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(log.status.success(), "{}", String::from_utf8_lossy(&log.stderr));
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.contains("rotated") && log.contains("from passphrase to key file"),
        "{log}"
    );
}

#[test]
fn after_kill_9_at_most_the_last_second_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = vigil()
        .args(["gateway", "--simulate", "stable", "--status-every", "1", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not a fixed sleep: on a loaded machine unlocking (Argon2id) and starting can
    // take seconds. Kill once the gateway says readings are stored, plus a second.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("readings ") && counts(&line).1 > 0 {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the gateway stored readings within 60 s");
    std::thread::sleep(Duration::from_millis(1200));
    let killed_at = chrono::Utc::now();
    child.kill().unwrap(); // SIGKILL: no clean shutdown
    child.wait().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let key = vigil_store::KeySource::passphrase("gateway-test-passphrase", "test");
        let store = vigil_store::Store::open(&dir.path().join("vigil.db"), &key)
            .await
            .unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        let all = store
            .query_range(
                None,
                killed_at - chrono::Duration::minutes(5),
                killed_at + chrono::Duration::minutes(1),
            )
            .await
            .unwrap();
        let newest = all
            .iter()
            .map(|r| r.received)
            .max()
            .expect("readings were stored");
        let missing = killed_at - newest;
        assert!(
            missing <= chrono::Duration::seconds(1),
            "newest stored reading is {missing} before the kill"
        );
    });
}

/// Runs `script` (sh) in `dir` inside a private D-Bus session with a keyring of its own (a
/// fresh login keyring, created by the script's `gnome-keyring-daemon --unlock`), with no
/// passphrase in the environment.
fn in_keyring_session(dir: &Path, script: &str) -> std::process::Output {
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .current_dir(dir)
        .env_remove("VIGIL_PASSPHRASE")
        .env_remove("VIGIL_NEW_PASSPHRASE")
        .env_remove("VIGIL_NEW_USER_PASSWORD")
        // The store commands' user: the first admin, added by the script.
        .env("VIGIL_USER", ADMIN)
        .env("VIGIL_USER_PASSWORD", password_of(ADMIN))
        .env("VIGIL_LOG", "warn")
        .env("XDG_DATA_HOME", dir.join("xdg-data"))
        .env("XDG_RUNTIME_DIR", dir)
        .output()
        .expect("dbus-run-session (Debian package dbus) is needed for this test")
}

/// The store key kept in a real OS keychain: GNOME Keyring's Secret Service
/// in a private D-Bus session (what a Linux desktop has). Only when chosen (`--keychain`,
/// issue 13 §2): with a keychain present and no choice, no key is put there and the store
/// is not created.
#[test]
fn the_key_can_live_in_the_os_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_vigil");
    let script = format!(
        "printf 'keyring-test-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90
         {bin} gateway --simulate stable --data-dir '{d}' 2>nochoice.log && exit 93
         grep -q 'no key for the encrypted store' nochoice.log || exit 94
         test -e '{d}/vigil.db' && exit 95
         {bin} gateway --keychain --simulate stable --speed 20 --status-every 1 --data-dir '{d}' 2>gw.log &
         pid=$!; sleep 3; kill -TERM $pid; wait $pid || exit 91
         cat gw.log >&2
         {bin} user add {ADMIN} --role admin --data-dir '{d}' || exit 96
         {bin} store verify --data-dir '{d}' || exit 92",
        d = dir.path().display()
    );
    let out = in_keyring_session(dir.path(), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status.code());
    assert!(stderr.contains("unlocked with OS keychain"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    // Without the keychain (and no other key) the same store stays closed.
    let out = vigil()
        .args(["store", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));
}

/// Rotating to and from the OS keychain (issue 13 §3): `--new-keychain`
/// replaces the entry's key, rotating to a key file removes the entry, and
/// `vigil key log` shows both rotations. GNOME Keyring's Secret Service in a
/// private D-Bus session, as above.
#[test]
fn rotating_away_from_the_keychain_removes_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_vigil");
    let script = format!(
        "printf 'keyring-test-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90
         {bin} gateway --keychain --simulate stable --speed 20 --status-every 1 --data-dir '{d}' 2>gw.log &
         pid=$!; sleep 3; kill -TERM $pid; wait $pid || exit 91
         {bin} user add {ADMIN} --role admin --data-dir '{d}' || exit 99
         {bin} key rotate --new-keychain --data-dir '{d}' || exit 92
         {bin} store verify --data-dir '{d}' >/dev/null || exit 93
         {bin} key new '{d}/site.key' || exit 94
         {bin} key rotate --new-key-file '{d}/site.key' --data-dir '{d}' || exit 95
         {bin} store verify --data-dir '{d}' 2>verify.err && exit 96
         grep -q 'no key' verify.err || exit 97
         {bin} key log --key-file '{d}/site.key' --data-dir '{d}' || exit 98",
        d = dir.path().display()
    );
    let out = in_keyring_session(dir.path(), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status.code());
    assert!(stdout.contains("from OS keychain to OS keychain"), "{stdout}");
    assert!(stdout.contains("from OS keychain to key file"), "{stdout}");
    assert!(stdout.contains("destroyed"), "{stdout}");
}

// ---- vigil replay -------------------------------------------------------

/// The replay's default start (`vigil replay --help`): script time 0.
const REPLAY_START: &str = "2026-01-01T00:00:00Z";

fn replay_script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/replay")
        .join(name)
}

/// Runs `vigil <args> --data-dir <dir>` with the test passphrase.
/// Store commands are signed in ([`ensure_users`], [`signed`]).
fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let store_command = !matches!(args.first(), Some(&"replay") | Some(&"decode") | Some(&"gateway"));
    if store_command {
        ensure_users(dir, &passphrase("replay-test-passphrase"));
    }
    let mut c = vigil();
    if store_command {
        signed(&mut c, args);
    }
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("VIGIL_PASSPHRASE", "replay-test-passphrase")
        .output()
        .unwrap()
}

fn replay(dir: &Path, script: &Path) -> std::process::Output {
    run_in(dir, &["replay", script.to_str().unwrap()])
}

/// CSV with `header` as maps from column to value.
fn csv_maps(csv: &[u8], header: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv_reader(csv);
    let columns: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(columns.join(","), header);
    r.records()
        .map(|rec| {
            columns
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// `vigil alarms export` rows as maps from column to value.
fn alarm_rows(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let out = run_in(dir, &["alarms", "export", "--format", "csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    csv_maps(
        &out.stdout,
        "start_utc,end_utc,bed,kind,priority,parameter,value,limit,acknowledged_by,message",
    )
}

/// `vigil export` over the replay's first hour: (header, rows).
fn reading_rows(dir: &Path) -> Vec<Vec<String>> {
    let out = run_in(
        dir,
        &["export", "--from", REPLAY_START, "--to", "2026-01-01T01:00:00Z"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut r = csv_reader(&out.stdout);
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>().join(","),
        "time_utc,bed,device,mdc,value,unit,special,device_time,source,quality,status"
    );
    r.records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect()
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().from_reader(bytes)
}

/// Seconds from the replay's start to an RFC 3339 time in the export.
fn script_s(t: &str) -> f64 {
    let start = chrono::DateTime::parse_from_rfc3339(REPLAY_START).unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
    (t - start).num_milliseconds() as f64 / 1000.0
}

#[test]
fn replay_of_a_desaturation_raises_the_spo2_alarm_at_its_script_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(dir.path(), &replay_script("desaturation.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("32 lines") && stderr.contains("readings 60, readings stored 60,"),
        "{stderr}"
    );

    let rows = alarm_rows(dir.path());
    let spo2: Vec<_> = rows.iter().filter(|r| r["parameter"] == "SpO2").collect();
    assert_eq!(spo2.len(), 1, "{rows:#?}");
    let a = spo2[0];
    assert_eq!(
        (a["bed"].as_str(), a["kind"].as_str()),
        ("bed-1", "physiological")
    );
    assert_eq!(a["value"], "80");
    // 80 % from 6 s, condition delay 10 s (adult preset): 16 s, within a tick.
    let at = script_s(&a["start_utc"]);
    assert!((16.0..=17.0).contains(&at), "SpO2 alarm at {at} s");
    // The disconnect at 31 s is a technical alarm, at that moment.
    let link = rows
        .iter()
        .find(|r| r["kind"] == "technical" && r["parameter"] == "Disconnected")
        .unwrap_or_else(|| panic!("no disconnection alarm: {rows:#?}"));
    assert_eq!(script_s(&link["start_utc"]), 31.0);

    // Every notification's readings are stored at script time, labelled simulated.
    let readings = reading_rows(dir.path());
    assert_eq!(readings.len(), 60);
    assert!(readings
        .iter()
        .all(|r| r[1] == "bed-1" && r[2] == "oxi-1" && r[8] == "simulated"));
    let spo2: Vec<_> = readings.iter().filter(|r| r[3] == "150456").collect();
    assert_eq!(spo2.len(), 30);
    assert_eq!((script_s(&spo2[0][0]), spo2[0][4].as_str()), (1.0, "97"));
    assert_eq!((script_s(&spo2[29][0]), spo2[29][4].as_str()), (30.0, "80"));

    // Replayed again into the same directory: a second, separate alarm (ids
    // never repeat in one log), the same script times.
    assert!(replay(dir.path(), &replay_script("desaturation.csv"))
        .status
        .success());
    let rows = alarm_rows(dir.path());
    let starts: Vec<f64> = rows
        .iter()
        .filter(|r| r["parameter"] == "SpO2")
        .map(|r| script_s(&r["start_utc"]))
        .collect();
    assert_eq!(starts, vec![at, at], "{rows:#?}");
}

/// A replay is an import (the 7½-day replay that logged "store path full"
/// lost 1,190 readings): every replayed reading is stored exactly once, and
/// the summary's counts are what the store then holds.
#[test]
fn replay_of_a_long_script_stores_every_reading_and_its_summary_counts_match_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("long.csv");
    // Two beds, HR strap and oximeter, every second for the hour that
    // `reading_rows` exports: 1 + 2 readings per bed and second.
    let seconds = 3599;
    let mut text = String::from("t_ms,bed,device,kind,event,characteristic,payload\n");
    for bed in ["bed-1", "bed-2"] {
        text += &format!("0,{bed},hr-{bed},hr-strap,connect,,\n0,{bed},oxi-{bed},oximeter,connect,,\n");
    }
    for t in 1..=seconds {
        for bed in ["bed-1", "bed-2"] {
            text += &format!("{},{bed},hr-{bed},hr-strap,notify,2A37,00 48\n", t * 1000);
            text += &format!("{},{bed},oxi-{bed},oximeter,notify,2A5F,00 61 00 48 00\n", t * 1000);
        }
    }
    std::fs::write(&script, text).unwrap();
    let out = replay(dir.path(), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not recorded"), "{stderr}");
    let expected = 2 * 3 * seconds;
    assert!(
        stderr.contains(&format!("readings {expected}, readings stored {expected},")),
        "{stderr}"
    );
    let rows = reading_rows(dir.path());
    assert_eq!(rows.len(), expected);
    let distinct: std::collections::BTreeSet<_> = rows.iter().map(|r| (r[0].clone(), r[2].clone(), r[3].clone())).collect();
    assert_eq!(distinct.len(), expected, "a reading stored twice");
}

#[test]
fn replay_applies_admit_acknowledge_pause_and_discharge() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(dir.path(), &replay_script("nurse-actions.csv"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = alarm_rows(dir.path());
    let spo2: Vec<_> = rows
        .iter()
        .filter(|r| r["parameter"] == "SpO2" && r["bed"] == "bed-2")
        .collect();
    // Neonatal limits (high SpO2 98 %) from the admission; only one alarm: after
    // the discharge the adult preset has no high SpO2 limit.
    assert_eq!(spo2.len(), 1, "{rows:#?}");
    let a = spo2[0];
    assert_eq!(a["priority"], "low");
    assert_eq!(script_s(&a["start_utc"]), 11.0);
    assert_eq!(a["acknowledged_by"], "replay");
    assert_eq!(script_s(&a["end_utc"]), 20.0, "the discharge ends it");

    // Admissions are checked against the store before anything is applied:
    // discharging an empty bed refuses the whole script, earlier lines included.
    let bad = dir.path().join("discharge-empty.csv");
    std::fs::write(
        &bad,
        "t_ms,bed,device,kind,event,characteristic,payload\n\
         0,bed-3,oxi-3,oximeter,connect,,\n\
         1000,bed-3,oxi-3,oximeter,notify,2A5F,00 61 00 48 00\n\
         2000,bed-3,,,discharge,,\n",
    )
    .unwrap();
    let before = reading_rows(dir.path()).len();
    let out = replay(dir.path(), &bad);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("line 4") && err.contains("bed-3 has no patient"),
        "{err}"
    );
    assert_eq!(reading_rows(dir.path()).len(), before, "half-applied");
}

#[test]
fn replay_refuses_a_malformed_script_with_its_line_and_stores_nothing() {
    let good = "t_ms,bed,device,kind,event,characteristic,payload\n\
                # comment\n\
                0,bed-1,oxi-1,oximeter,connect,,\n\
                1000,bed-1,oxi-1,oximeter,notify,2A5F,00 61 00 48 00\n";
    for (bad, want) in [
        ("2000,bed-1,oxi-1,oximeter,notify,2A5F,00 6X 00 48 00", "not hex"),
        (
            "2000,bed-1,oxi-1,oximeter,notfy,2A5F,00 61 00 48 00",
            "unknown event 'notfy'",
        ),
        (
            "500,bed-1,oxi-1,oximeter,notify,2A5F,00 61 00 48 00",
            "must not decrease",
        ),
        (
            "2000,bed-1,oxi-1,oximeter,notify,2A5F",
            "expected 7 fields, found 6",
        ),
        ("2000,bed-7,,,pause,,", "bed-1 to bed-4"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.csv");
        std::fs::write(&script, format!("{good}{bad}\n3000,bed-1,,,pause,,\n")).unwrap();
        let out = replay(dir.path(), &script);
        assert!(!out.status.success(), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
        assert!(
            err.contains("script.csv line 5: ") && err.contains(want),
            "{bad}: {err}"
        );
        assert!(!err.contains("6X"), "the payload is quoted: {err}");
        assert!(
            !dir.path().join("vigil.db").exists(),
            "{bad}: the store was opened"
        );
    }
    // The beds are the workstation's: --beds 6 makes bed-6 one.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.csv");
    std::fs::write(&script, format!("{good}2000,bed-6,,,pause,,\n")).unwrap();
    let out = run_in(dir.path(), &["replay", script.to_str().unwrap(), "--beds", "6"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn replay_speed_1_runs_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("short.csv");
    std::fs::write(
        &script,
        "t_ms,bed,device,kind,event,characteristic,payload\n\
         0,bed-1,hr-1,hr-strap,connect,,\n\
         1000,bed-1,hr-1,hr-strap,notify,2A37,00 48\n\
         2000,bed-1,hr-1,hr-strap,notify,2A37,00 48\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = run_in(
        dir.path(),
        &[
            "replay",
            script.to_str().unwrap(),
            "--speed",
            "1",
            "--start",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reading_rows(dir.path()).len(), 2);

    let help = vigil().args(["replay", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains(REPLAY_START) && help.contains("SIMULATED"),
        "{help}"
    );
}

// ---- issue 10: alarm safety, driven from the outside by replay scripts ----

/// `vigil alarms export --events` rows as maps from column to value.
fn alarm_events(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let out = run_in(dir, &["alarms", "export", "--events"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    csv_maps(
        &out.stdout,
        "at_utc,bed,id,event,kind,priority,parameter,user,message",
    )
}

/// Replays `script` into a new data directory; the alarm rows afterwards.
fn replayed(script: &str) -> (tempfile::TempDir, Vec<std::collections::BTreeMap<String, String>>) {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(dir.path(), &replay_script(script));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = alarm_rows(dir.path());
    (dir, rows)
}

fn rows_for<'a>(
    rows: &'a [std::collections::BTreeMap<String, String>],
    bed: &str,
    parameter: &str,
) -> Vec<&'a std::collections::BTreeMap<String, String>> {
    rows.iter()
        .filter(|r| r["bed"] == bed && r["parameter"] == parameter)
        .collect()
}

#[test]
fn replay_item_1_invalid_samples_never_restart_the_delay() {
    let (_dir, rows) = replayed("nan-interleaved.csv");
    let spo2 = rows_for(&rows, "bed-1", "SpO2");
    assert_eq!(spo2.len(), 1, "{rows:#?}");
    assert!(
        (11.0..=12.0).contains(&script_s(&spo2[0]["start_utc"])),
        "{:?}",
        spo2[0]
    );
    assert_eq!(spo2[0]["end_utc"], "", "a NaN ended the desaturation alarm");
    let inop = rows_for(&rows, "bed-1", "SpO2 NoValidMeasurement");
    assert_eq!(inop.len(), 1, "{rows:#?}");
    assert!(
        (90.0..=91.0).contains(&script_s(&inop[0]["start_utc"])),
        "{:?}",
        inop[0]
    );
    assert_eq!(script_s(&inop[0]["end_utc"]), 101.0);
}

#[test]
fn replay_item_2_sensor_off_replaces_the_heart_rate_alarm() {
    let (_dir, rows) = replayed("sensor-off.csv");
    let hr = rows_for(&rows, "bed-1", "HR");
    assert_eq!(hr.len(), 1, "{rows:#?}");
    assert!((11.0..=12.0).contains(&script_s(&hr[0]["start_utc"])));
    assert_eq!(
        script_s(&hr[0]["end_utc"]),
        21.0,
        "the HR alarm outlived sensor off"
    );
    let off = rows_for(&rows, "bed-1", "SensorOff");
    assert_eq!(off.len(), 1, "{rows:#?}");
    assert_eq!(script_s(&off[0]["start_utc"]), 21.0);
    assert_eq!(off[0]["end_utc"], "");
}

#[test]
fn replay_item_3_connected_but_silent_alarms_and_a_lost_link_lasts_until_data() {
    let (_dir, rows) = replayed("connect-no-data.csv");
    let no_data = rows_for(&rows, "bed-1", "NoData");
    assert!(
        !no_data.is_empty(),
        "connected and silent raised nothing: {rows:#?}"
    );
    assert!(
        (6.0..=8.0).contains(&script_s(&no_data[0]["start_utc"])),
        "{:?}",
        no_data[0]
    );
    assert_eq!(script_s(&no_data[0]["end_utc"]), 10.0);
    let link = rows_for(&rows, "bed-1", "Disconnected");
    assert_eq!(link.len(), 1, "{rows:#?}");
    assert_eq!(script_s(&link[0]["start_utc"]), 12.0);
    assert_eq!(
        script_s(&link[0]["end_utc"]),
        30.0,
        "a link without data counted as back"
    );
}

#[test]
fn replay_item_4_a_moved_device_leaves_nothing_at_its_old_bed() {
    let (_dir, rows) = replayed("move-bed.csv");
    // (NEWS2 at bed-1 rightly still counts the pulse the strap measured on
    // that bed's patient before it moved: it is a score of observations.)
    let old: Vec<_> = rows
        .iter()
        .filter(|r| r["bed"] == "bed-1" && r["kind"] != "news2")
        .collect();
    assert!(!old.is_empty());
    assert!(
        old.iter().all(|r| !r["end_utc"].is_empty()),
        "stranded at bed-1: {old:#?}"
    );
    let hr = rows_for(&rows, "bed-2", "HR");
    assert_eq!(hr.len(), 1, "{rows:#?}");
    assert!(
        (28.0..=29.0).contains(&script_s(&hr[0]["start_utc"])),
        "{:?}",
        hr[0]
    );
}

#[test]
fn replay_item_5_discharge_keeps_a_standing_technical_alarm() {
    let (_dir, rows) = replayed("discharge-keeps-technical.csv");
    let spo2 = rows_for(&rows, "bed-1", "SpO2");
    assert_eq!(spo2.len(), 1, "{rows:#?}");
    assert_eq!(script_s(&spo2[0]["end_utc"]), 16.0);
    let link = rows_for(&rows, "bed-1", "Disconnected");
    assert_eq!(link.len(), 1, "{rows:#?}");
    assert_eq!(
        link[0]["end_utc"], "",
        "the discharge silenced a disconnected oximeter"
    );
}

#[test]
fn replay_item_6_an_acknowledgement_expires_and_re_arms_on_worsening() {
    let (dir, rows) = replayed("ack-reminder.csv");
    let spo2 = rows_for(&rows, "bed-1", "SpO2");
    assert_eq!(spo2.len(), 1, "{rows:#?}");
    let id_events: Vec<(String, f64)> = alarm_events(dir.path())
        .into_iter()
        .filter(|e| e["parameter"] == "SpO2" && e["bed"] == "bed-1")
        .map(|e| (e["event"].clone(), script_s(&e["at_utc"])))
        .collect();
    let at = |what: &str| -> Vec<f64> {
        id_events
            .iter()
            .filter(|(e, _)| e == what)
            .map(|(_, t)| *t)
            .collect()
    };
    assert_eq!(at("acknowledged"), vec![15.0, 620.0], "{id_events:?}");
    let rearmed = at("rearmed");
    assert_eq!(rearmed.len(), 2, "{id_events:?}");
    assert!(
        (615.0..=616.0).contains(&rearmed[0]),
        "reminder at {}",
        rearmed[0]
    );
    assert_eq!(rearmed[1], 630.0, "worsening re-arms at once");
}

#[test]
fn replay_item_7_acknowledge_covers_only_what_was_displayed() {
    let (_dir, rows) = replayed("ack-displayed.csv");
    let spo2 = rows_for(&rows, "bed-1", "SpO2");
    assert_eq!(spo2[0]["acknowledged_by"], "replay", "{rows:#?}");
    let nibp = rows_for(&rows, "bed-1", "NIBP sys");
    assert_eq!(nibp.len(), 1, "{rows:#?}");
    assert_eq!(nibp[0]["priority"], "high");
    assert_eq!(script_s(&nibp[0]["start_utc"]), 12.0);
    assert_eq!(
        nibp[0]["acknowledged_by"], "",
        "an alarm the nurse never saw was acknowledged"
    );
}

#[test]
fn replay_item_9_a_new_alarm_breaks_through_a_pause_held_by_an_acknowledged_one() {
    let (dir, _) = replayed("pause-breakthrough.csv");
    let events = alarm_events(dir.path());
    let paused = events
        .iter()
        .find(|e| e["event"] == "audio_paused")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(script_s(&paused["at_utc"]), 13.0);
    let resumed = events
        .iter()
        .find(|e| e["event"] == "audio_resumed")
        .unwrap_or_else(|| panic!("the pause was never broken through: {events:#?}"));
    let t = script_s(&resumed["at_utc"]);
    assert!(
        t <= 24.0,
        "resumed at {t} s, not by the SpO2 alarm's start: {resumed:?}"
    );
    assert!(
        resumed["message"].contains("new medium-priority alarm"),
        "{resumed:?}"
    );
}

#[test]
fn replay_item_11_hypothermia_and_a_news2_single_3_alarm_at_medium() {
    let (_dir, rows) = replayed("hypothermia.csv");
    let temp = rows_for(&rows, "bed-1", "Temp");
    assert_eq!(temp.len(), 1, "{rows:#?}");
    assert_eq!(script_s(&temp[0]["start_utc"]), 1.0);
    assert_eq!(temp[0]["priority"], "medium");
    let news2 = rows_for(&rows, "bed-1", "NEWS2");
    assert_eq!(news2.len(), 1, "{rows:#?}");
    assert_eq!(news2[0]["priority"], "medium");
    assert!(news2[0]["message"].contains("low-medium"), "{:?}", news2[0]);
}

/// Overwrites 4 KiB in the middle of `db` with random bytes.
fn random_4k_in_the_middle(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(db).unwrap().len();
    assert!(len > 64 * 1024, "store too small to damage in the middle: {len}");
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(len / 2 - 1000)).unwrap();
    f.write_all(&noise).unwrap();
    f.sync_all().unwrap();
}

fn corrupt_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("vigil.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect()
}

#[test]
fn a_corrupt_store_at_start_does_not_stop_monitoring_and_salvage_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        ensure_users(dir.path(), &passphrase("gateway-test-passphrase"));
        signed(&mut vigil(), args)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
            .output()
            .unwrap()
    };
    let from = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let rows = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().count() - 1
    };
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    let before = rows(run(&["export", "--from", &from, "--to", &to]));
    let db = dir.path().join("vigil.db");
    random_4k_in_the_middle(&db);

    // The gateway monitors, says recording restarted, and stops cleanly.
    let stderr = run_gateway_and_stop(dir.path(), &[], SIGTERM);
    assert!(stderr.contains("RECORDING UNAVAILABLE"), "{stderr}");
    let (readings, stored) = counts(&stderr);
    assert!(readings > 100, "not monitoring: {stderr}");
    assert_eq!(readings, stored);
    let aside = corrupt_files(dir.path());
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(stderr.contains(&aside[0].display().to_string()), "{stderr}");
    // The users were in the store moved aside: the installer adds an admin again.
    forget_users(dir.path());
    let ok = run(&["store", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let fresh = rows(run(&["export", "--from", &from, "--to", &to]));
    assert_eq!(fresh as u64, stored, "the new store holds only the new run");

    // Salvage copies back what still opens, and says what did not.
    let out = run(&["store", "salvage", aside[0].to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("recovered: "), "{report}");
    let after = rows(run(&["export", "--from", &from, "--to", &to]));
    let salvaged = after - fresh;
    assert!(salvaged > before / 2, "salvaged {salvaged} of {before}: {report}");
    assert!(salvaged <= before, "salvaged {salvaged} of {before}: {report}");
    if salvaged < before {
        assert!(report.contains("NOT RECOVERED"), "{report}");
    }
    let ok = run(&["store", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    // Salvaging again duplicates nothing.
    run(&["store", "salvage", aside[0].to_str().unwrap()]);
    assert_eq!(rows(run(&["export", "--from", &from, "--to", &to])), after);
    // Not a database at all: a clear error, non-zero.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let out = run(&["store", "salvage", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing could be recovered"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_passphrase_on_a_corrupt_store_is_refused_and_nothing_is_moved() {
    let dir = tempfile::tempdir().unwrap();
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    run_gateway_and_stop(dir.path(), &[], SIGTERM);
    random_4k_in_the_middle(&dir.path().join("vigil.db"));
    let out = vigil()
        .args(["gateway", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "not-the-passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(corrupt_files(dir.path()).is_empty());
}

/// The store fails (a disk-full-like fault injected from a second
/// connection: every insert into the chunk table rolls its transaction back)
/// while the gateway runs; SIGTERM still ends it within the stated bound
/// (10 s) and the exit message says how many readings were not recorded.
#[test]
fn gateway_shutdown_with_a_failing_store_is_bounded_and_the_next_start_records_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = vigil()
        .args([
            "gateway",
            "--simulate",
            "ward",
            "--speed",
            "30",
            "--status-every",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER inject_fault BEFORE INSERT ON chunks \
             BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    });
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc_kill(child.id() as i32, SIGTERM) };
    let started = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(12) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "gateway still running 12 s after SIGTERM: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("RECORDING INTERRUPTED"),
        "no status line says so: {stderr}"
    );
    let last = stderr.lines().last().unwrap();
    let count_before = |what: &str| -> u64 {
        let at = last.find(what).unwrap_or_else(|| panic!("no '{what}' in {last}"));
        last[..at]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count before '{what}' in {last}"))
    };
    let unrecorded = count_before(" readings not recorded");
    let spilled = count_before(" readings kept in spill files");
    // The status line printed after the stop (the exit message also says "readings ").
    let (readings, stored) = counts(&stderr[..stderr.rfind(last).unwrap()]);
    assert!(spilled > 0, "nothing kept for the next start: {last}");
    assert_eq!(unrecorded, 0, "the disk had room for a spill file: {last}");
    assert_eq!(
        readings,
        stored + spilled + unrecorded,
        "every reading is stored, spilled or counted: {stderr}"
    );
    // The store heals (the fault is removed); the next start records what
    // was kept, exactly once.
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER inject_fault")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let again = run_gateway_and_stop(dir.path(), &[], SIGTERM);
    assert!(again.contains("stopped cleanly"), "{again}");
    let (readings2, stored2) = counts(&again);
    assert_eq!(
        stored2,
        readings2 + spilled,
        "the kept readings were not recorded once: {again}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".spill-"))
        .collect();
    assert!(
        left.is_empty(),
        "spill files left after they were recorded: {left:?}"
    );
}

/// Issue 13 §6: a device name is whatever a BLE peer in radio range says; it reaches both
/// CSV exports (the readings' device column, and technical alarm messages). A spreadsheet
/// must show it as text, never run it as a formula (OWASP CSV injection), while numbers,
/// negative ones included, stay numbers.
#[test]
fn both_csv_exports_neutralise_cells_a_spreadsheet_would_run_as_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("formula.csv");
    std::fs::write(
        &script,
        "t_ms,bed,device,kind,event,characteristic,payload\n\
         0,bed-1,=2+5,oximeter,connect,,\n\
         1000,bed-1,=2+5,oximeter,notify,2A5F,00 61 00 48 00\n\
         2000,bed-1,=2+5,oximeter,disconnect,,\n\
         3000,bed-1,@SUM(1+1),thermometer,connect,,\n\
         4000,bed-1,@SUM(1+1),thermometer,notify,2A1C,00 6E 01 00 FF\n\
         5000,bed-1,@SUM(1+1),thermometer,disconnect,,\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = replay(&data, &script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let formula = |c: &str| c.starts_with(['=', '+', '-', '@', '\t', '\r']) && c.parse::<f64>().is_err();
    let readings = reading_rows(&data);
    assert!(readings.iter().any(|r| r[2] == "'=2+5"), "{readings:?}");
    assert!(readings.iter().any(|r| r[2] == "'@SUM(1+1)"), "{readings:?}");
    // 0x016E × 10^-1 = 36.6: a plain number, unchanged.
    assert!(readings.iter().any(|r| r[4] == "36.6"), "{readings:?}");
    let alarms = alarm_rows(&data);
    let events = alarm_events(&data);
    // Inside a cell a formula character is harmless: the message keeps the name as sent.
    assert!(
        alarms.iter().any(|r| r["message"].contains("(=2+5)")),
        "a disconnection alarm names the device: {alarms:?}"
    );
    for cell in readings
        .iter()
        .flatten()
        .chain(alarms.iter().flat_map(|r| r.values()))
        .chain(events.iter().flat_map(|r| r.values()))
    {
        assert!(!formula(cell), "a cell a spreadsheet would run: {cell:?}");
    }
}

/// Issue 13 §5: installers check a site file before shipping it; a file others can change
/// that sets `fhir` is refused, at start and by the check, with the file and the reason.
#[cfg(unix)]
#[test]
fn config_check_prints_each_setting_with_its_source_and_refuses_a_user_writable_fhir_section() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let installer = dir.path().join("installer.json");
    std::fs::write(
        &installer,
        r#"{ "beds": 8, "fhir": { "base_url": "https://fhir.example/R4", "gateway_id": "ward-3-station-1" } }"#,
    )
    .unwrap();
    std::fs::set_permissions(&installer, std::fs::Permissions::from_mode(0o644)).unwrap();
    let root = std::fs::metadata(&installer).unwrap().uid() == 0;
    let out = vigil()
        .args(["config", "check"])
        .arg(&installer)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if root {
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let line = stdout.lines().find(|l| l.trim_start().starts_with("fhir.base_url")).unwrap();
        assert!(line.contains("https://fhir.example/R4") && line.contains("installer.json"), "{line}");
        let beds = stdout.lines().find(|l| l.trim_start().starts_with("beds")).unwrap();
        assert!(beds.contains('8'), "{beds}");
        assert!(stdout.contains("sha256 ") && stdout.contains("only administrators can change it"), "{stdout}");
    } else {
        assert!(!out.status.success() && stderr.contains("owned by uid"), "{stderr}");
    }

    // The data directory's file, world-writable, sets the FHIR server: refused by the check
    // and by the gateway at start, naming the file.
    let local = data.join("site.json");
    std::fs::write(&local, r#"{ "fhir": { "base_url": "https://elsewhere.example/R4" } }"#).unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = vigil()
        .args(["config", "check", "--data-dir"])
        .arg(&data)
        .env_remove("VIGIL_SITE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("site.json: sets `fhir`") && stderr.contains("administrator"), "{stderr}");
    let out = vigil()
        .args(["gateway", "--simulate", "stable", "--data-dir"])
        .arg(&data)
        .env("VIGIL_PASSPHRASE", "replay-test-passphrase")
        .env_remove("VIGIL_SITE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the gateway started with a user-writable fhir section");
    assert!(stderr.contains("sets `fhir`"), "{stderr}");
}

/// `vigil config check <installer.json>` with `json` as a world-readable installer's file in
/// `dir` (its own data directory beside it) and one environment variable set.
#[cfg(unix)]
fn config_check(dir: &Path, json: &str, (var, value): (&str, &str)) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let installer = dir.join("installer.json");
    std::fs::write(&installer, json).unwrap();
    std::fs::set_permissions(&installer, std::fs::Permissions::from_mode(0o644)).unwrap();
    vigil()
        .args(["config", "check"])
        .arg(&installer)
        .arg("--data-dir")
        .arg(&data)
        .env(var, value)
        .output()
        .unwrap()
}

/// Issue 17: an installer checks the central station's feeds like any protected section:
/// each shown with its URL and the variable its token comes from (never a token), and a
/// feed that would send its token in the clear over a network is refused, naming it.
#[cfg(unix)]
#[test]
fn config_check_shows_the_central_stations_feeds_and_refuses_plain_ws_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let check = |json: &str| config_check(dir.path(), json, ("VIGIL_FEED_TOKEN_WARD3", "secret-token-value"));
    let out = check(
        r#"{ "central": { "feeds": [ { "name": "Ward 3", "url": "wss://ward3.example:7443/feed", "token_env": "VIGIL_FEED_TOKEN_WARD3" } ] } }"#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let line = stdout.lines().find(|l| l.trim_start().starts_with("central.feeds.Ward 3")).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("wss://ward3.example:7443/feed") && line.contains("VIGIL_FEED_TOKEN_WARD3"), "{line}");
        assert!(!stdout.contains("secret-token-value"), "a token printed");
    } else {
        // Not root: the installer's file cannot be administrators-only here.
        assert!(stderr.contains("owned by uid"), "{stderr}");
    }
    let out = check(
        r#"{ "central": { "feeds": [ { "name": "Ward 3", "url": "ws://10.1.2.3:7000/feed", "token_env": "VIGIL_FEED_TOKEN_WARD3" } ] } }"#,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("central.feeds[0]") && stderr.contains("wss://"), "{stderr}");
}

/// Issue 17: the broker a central station reads (`central.mqtt`) is checked like the ward's
/// own `mqtt` section: shown with the variable its password comes from (never a password),
/// and plain MQTT across a network refused, naming the section.
#[cfg(unix)]
#[test]
fn config_check_shows_the_central_stations_broker_and_refuses_plain_mqtt_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let check = |json: &str| config_check(dir.path(), json, ("VIGIL_MQTT_CENTRAL", "secret-broker-password"));
    let out = check(
        r#"{ "central": { "mqtt": { "broker": "mqtts://broker.example:8883", "site": "north", "wards": ["icu-3"], "username": "central", "password_env": "VIGIL_MQTT_CENTRAL" } } }"#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let line = |k: &str| stdout.lines().find(|l| l.trim_start().starts_with(k)).unwrap_or_else(|| panic!("{k}: {stdout}"));
        assert!(line("central.mqtt.broker").contains("mqtts://broker.example:8883"));
        assert!(line("central.mqtt.password_env").contains("VIGIL_MQTT_CENTRAL"));
        assert!(line("central.mqtt.wards").contains("icu-3"));
        assert!(!stdout.contains("secret-broker-password"), "a password printed");
    } else {
        // Not root: the installer's file cannot be administrators-only here.
        assert!(stderr.contains("owned by uid"), "{stderr}");
    }
    let out = check(r#"{ "central": { "mqtt": { "broker": "mqtt://10.1.2.3:1883", "site": "north" } } }"#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("central.mqtt") && stderr.contains("loopback"), "{stderr}");
}

/// Issue 13 §2: a new store's passphrase has at least 12 characters on every path, the
/// environment included; a store that exists opens with the passphrase it was made with.
#[test]
fn a_short_passphrase_never_creates_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = vigil()
        .arg("replay")
        .arg(replay_script("connect-no-data.csv"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "elevenchars")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    assert!(!dir.path().join("vigil.db").exists(), "a store was created");
}

/// Issue 13 §2: the installer's site configuration can fix the key source; another one is
/// then refused with a clear error (here: the site key file, not a passphrase).
#[cfg(unix)]
#[test]
fn the_site_can_fix_the_key_source() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("site.key");
    assert!(vigil().args(["key", "new"]).arg(&key).status().unwrap().success());
    let site = dir.path().join("site.json");
    std::fs::write(
        &site,
        format!(r#"{{ "key": {{ "source": "key_file", "key_file": "{}" }} }}"#, key.display()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let run = |pass: Option<&str>| {
        let mut c = vigil();
        c.arg("replay")
            .arg(replay_script("connect-no-data.csv"))
            .arg("--data-dir")
            .arg(&data)
            .env("VIGIL_SITE_CONFIG", &site);
        if let Some(p) = pass {
            c.env("VIGIL_PASSPHRASE", p);
        }
        c.output().unwrap()
    };
    if std::fs::metadata(&site).unwrap().uid() != 0 {
        // Not root: this user's own file cannot fix anything.
        let out = run(None);
        assert!(String::from_utf8_lossy(&out.stderr).contains("owned by uid"));
        return;
    }
    // The passphrase in the environment is not used: the site fixed the key file.
    let out = run(Some("a-long-enough-passphrase"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let out = vigil()
        .args(["config", "check", "--data-dir"])
        .arg(&data)
        .env("VIGIL_SITE_CONFIG", &site)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.contains("key.source") && l.contains("key_file")), "{stdout}");
    // The store was made under the key file: the file opens it, a passphrase cannot.
    std::fs::remove_file(&site).unwrap();
    let out = run(Some("a-long-enough-passphrase"));
    assert!(!out.status.success());
    let key_file = key.clone();
    ensure_users(&data, &move |c: &mut Command| {
        c.arg("--key-file").arg(&key_file);
    });
    let out = signed(&mut vigil(), &["store"])
        .args(["store", "verify", "--data-dir"])
        .arg(&data)
        .arg("--key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `vigil user add/list/disable` (issue 14): the installer's tools. A user
/// added here signs in through the core; a disabled one cannot.
#[test]
fn user_add_list_disable_and_a_disabled_user_cannot_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Environment pairs: who signs in, the new user's password.
    let user = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = vigil();
        c.arg("user")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("VIGIL_PASSPHRASE", "user-test-passphrase")
            .env("USER", "installer")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let ada = [("VIGIL_USER", "ada"), ("VIGIL_USER_PASSWORD", "admin password 1")];
    let ada_adds = |password: &'static str| {
        let mut e = ada.to_vec();
        e.push(("VIGIL_NEW_USER_PASSWORD", password));
        e
    };
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // No store yet: `user add` makes it (the first admin before the first start, no --user).
    let out = user(&["add", "ada", "--role", "admin"], &[("VIGIL_USER_PASSWORD", "admin password 1")]);
    assert!(out.status.success(), "{}", err(&out));
    let out = user(&["add", "nora", "--role", "nurse"], &ada_adds("nurse password 1"));
    assert!(out.status.success(), "{}", err(&out));
    // Refusals, each with one clear line.
    let out = user(&["add", "sam", "--role", "nurse"], &ada_adds("short"));
    assert!(!out.status.success());
    assert!(err(&out).contains("at least 12 characters"), "{}", err(&out));
    let out = user(&["add", "sam", "--role", "root"], &ada_adds("long enough password"));
    assert!(!out.status.success());
    assert!(err(&out).contains("unknown role 'root'"), "{}", err(&out));
    let out = user(&["add", "nora", "--role", "admin"], &ada_adds("long enough password"));
    assert!(!out.status.success());
    assert!(err(&out).contains("already exists"), "{}", err(&out));
    let out = user(&["add", "sam", "--role", "nurse"], &ada);
    assert!(!out.status.success());
    assert!(err(&out).contains("VIGIL_NEW_USER_PASSWORD"), "{}", err(&out));
    // The password is never printed.
    assert!(!err(&out).contains("long enough password"));
    // Once a user exists, adding one needs an admin: the first-admin path works once.
    let out = user(&["add", "sam", "--role", "admin"], &[("VIGIL_USER_PASSWORD", "long enough password")]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("needs a Vigil user: --user"), "{}", err(&out));
    let out = user(
        &["add", "sam", "--role", "admin"],
        &[("VIGIL_USER", "nora"), ("VIGIL_USER_PASSWORD", "nurse password 1"), ("VIGIL_NEW_USER_PASSWORD", "long enough password")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("a nurse may not manage users"), "{}", err(&out));

    let out = user(&["list"], &ada);
    assert!(out.status.success(), "{}", err(&out));
    let list = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = list.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert_eq!(list.lines().next(), Some("name\trole\tstatus\tcreated_utc"));
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(rows[0][..3], ["ada", "admin", "enabled"]);
    assert_eq!(rows[1][..3], ["nora", "nurse", "enabled"]);
    assert!(!list.contains("argon2"), "no hashes in the list");

    let sign_in = |name: &str, password: &str| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = vigil_store::Store::open(
                &data.join("vigil.db"),
                &vigil_store::KeySource::passphrase("user-test-passphrase", "test"),
            )
            .await
            .unwrap();
            let r = vigil_core::auth::Auth::default()
                .sign_in(&store, name, password, std::time::Instant::now())
                .await
                .map(|s| (s.user, s.role.as_str()))
                .map_err(|e| e.to_string());
            store.close().await;
            r
        })
    };
    assert_eq!(sign_in("nora", "nurse password 1"), Ok(("nora".into(), "nurse")));
    assert_eq!(
        sign_in("nora", "wrong password!!"),
        Err("wrong user name or password".into())
    );

    let out = user(&["disable", "nora"], &ada);
    assert!(out.status.success(), "{}", err(&out));
    let out = user(&["disable", "nobody"], &ada);
    assert!(!out.status.success());
    assert!(err(&out).contains("no user 'nobody'"), "{}", err(&out));
    let list = String::from_utf8(user(&["list"], &ada).stdout).unwrap();
    assert!(list.contains("nora\tnurse\tdisabled"), "{list}");
    assert_eq!(sign_in("nora", "nurse password 1"), Err("this account is disabled".into()));
    assert_eq!(sign_in("ada", "admin password 1"), Ok(("ada".into(), "admin")));
}

/// Issue 14: CLI commands write audit records with the Vigil user as actor and
/// the OS user in the detail (`cli os:<name>`);
/// `vigil audit export` writes them as JSON lines (chained, signed, no PHI);
/// `vigil audit verify` exits 0 on the untouched trail and names each kind
/// of tampering: edit, delete, insert, re-order, truncate, replay, another
/// signing key, the whole file rolled back.
#[test]
fn audit_verify_catches_every_tampering_and_export_writes_signed_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let counters = dir.path().join("counters");
    let db = data.join("vigil.db");
    // Every command signed in as ada (the first admin); `password`: the new user's.
    let run = |args: &[&str], password: Option<&str>| {
        let mut c = vigil();
        c.args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("VIGIL_PASSPHRASE", "audit-test-passphrase")
            .env("VIGIL_STORE_COUNTER_DIR", &counters)
            .env("USER", "installer")
            .env("VIGIL_USER", "ada")
            .env("VIGIL_USER_PASSWORD", "ada's password 1")
            .stdin(Stdio::null());
        if let Some(p) = password {
            c.env("VIGIL_NEW_USER_PASSWORD", p);
        }
        c.output().unwrap()
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for args in [
        &["user", "add", "ada", "--role", "admin"][..],
        &["user", "add", "nora", "--role", "nurse"],
        &["user", "disable", "nora"],
        &["user", "list"],
        &["store", "verify"],
    ] {
        let out = run(args, Some(if args.get(2) == Some(&"ada") { "ada's password 1" } else { "a long enough password" }));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // The first admin's one record, then a sign-in and the command for each of the 4 others.
    let out = run(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("9 records"), "{}", text(&out));

    let file = dir.path().join("trail.jsonl");
    let out = run(
        &["audit", "export", "--format", "jsonl", "--out", file.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as i64 + 1);
        assert_eq!(l["actor"], "ada", "{l}");
        assert_eq!(l["role"], "admin", "{l}");
        assert!(l["detail"].as_str().unwrap().starts_with("cli os:installer"), "{l}");
        assert_eq!(l["outcome"], "success");
        assert!(l["workstation"].as_str().is_some_and(|w| !w.is_empty()));
        assert_eq!(l["hash"].as_str().unwrap().len(), 64);
        assert_eq!(l["sig"].as_str().unwrap().len(), 128);
        assert_eq!(l["public_key"], lines[0]["public_key"]);
        if i > 0 {
            assert_eq!(l["prev"], lines[i - 1]["hash"], "chained");
        }
        assert!(l.get("password_hash").is_none() && !l.to_string().contains("argon2"));
    }
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "manage_users",
            "sign_in",
            "manage_users",
            "sign_in",
            "manage_users",
            "sign_in",
            "manage_users",
            "sign_in",
            "store_verify"
        ]
    );
    assert_eq!(lines[0]["detail"], "cli os:installer: first admin ada (admin)");
    assert_eq!(lines[4]["detail"], "cli os:installer: user disable nora");
    // The export itself is recorded (with its sign-in); stdout works too, and --from/--to filter.
    let out = run(&["audit", "export", "--format", "jsonl"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 11);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let out = run(&["audit", "export", "--from", &future], None);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", text(&out));

    // Each tampering on the same pristine copy (file and its mirrors).
    let pristine = dir.path().join("pristine");
    let copy_dir = |from: &Path, to: &Path| {
        let _ = std::fs::remove_dir_all(to);
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy_dir(&data, &pristine.join("data"));
    copy_dir(&counters, &pristine.join("counters"));
    let restore = || {
        copy_dir(&pristine.join("data"), &data);
        copy_dir(&pristine.join("counters"), &counters);
    };
    let verify = || {
        let out = run(&["audit", "verify"], None);
        (out.status.success(), text(&out))
    };
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "edit",
            &["UPDATE audit_log SET sealed = substr(sealed, 1, 5) || x'ff' || substr(sealed, 7) WHERE seq = 3"],
            "FAILED: audit record 3 failed authentication",
        ),
        ("delete", &["DELETE FROM audit_log WHERE seq = 2"], "FAILED: audit records 2 to 2 are missing"),
        (
            "insert",
            &["INSERT INTO audit_log (seq, key_id, nonce, sealed) SELECT 16, key_id, nonce, sealed FROM audit_log WHERE seq = 1"],
            "FAILED: audit record 16 failed authentication",
        ),
        (
            "re-order",
            &[
                "UPDATE audit_log SET seq = 100 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 100",
            ],
            "FAILED: audit record 2 failed authentication",
        ),
        (
            "truncate",
            &["DELETE FROM audit_log WHERE seq > 4"],
            "FAILED: the audit trail's sealed head says 15 records, the file holds 4",
        ),
        (
            "replay",
            &["UPDATE audit_log SET nonce = (SELECT nonce FROM audit_log WHERE seq = 1), sealed = (SELECT sealed FROM audit_log WHERE seq = 1) WHERE seq = 4"],
            "FAILED: audit record 4 failed authentication",
        ),
    ];
    for (name, stmts, want) in cases {
        restore();
        for s in stmts {
            tamper(&db, s);
        }
        let (ok, report) = verify();
        assert!(!ok, "{name}: {report}");
        assert!(report.contains(want), "{name}: no {want:?} in\n{report}");
        // `vigil store verify` checks the trail too.
        let out = run(&["store", "verify"], None);
        assert!(!out.status.success() && text(&out).contains(want), "{name}: {}", text(&out));
    }

    // A record sealed with the store's key but signed with another.
    restore();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let key = vigil_store::KeySource::passphrase("audit-test-passphrase", "test");
        let store = vigil_store::Store::open_with_counter_dir(&db, &key, Some(&counters))
            .await
            .unwrap();
        let record = store.audit_entries(None, None).await.unwrap().remove(0).record;
        store.audit_append_signed_by(&record, &[9u8; 32]).await.unwrap();
        store.close().await;
    });
    let (ok, report) = verify();
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAILED: audit record 16 is not signed by this store's audit key"),
        "{report}"
    );

    // The whole file put back to an older copy, its mirrors kept.
    restore();
    let out = run(&["user", "list"], None);
    assert!(out.status.success(), "{}", text(&out));
    let (ok, _) = verify();
    assert!(ok);
    copy_dir(&pristine.join("data"), &data);
    let (ok, report) = verify();
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAILED: the audit trail was rolled back to an older copy: it holds 15 records"),
        "{report}"
    );
}

/// Issue 14: the CLI role matrix. Every store command run as a nurse, a clinician,
/// an admin and a viewer, with a wrong password and without `--user`: allowed
/// exactly as the screen's permission matrix allows the same action (exit 0),
/// refused otherwise (exit 2, one `vigil: refused:` line saying why), and every
/// refusal in the signed audit trail (as the command, outcome `refused`).
#[test]
fn cli_role_matrix_allows_and_refuses_every_store_command_and_audits_each_refusal() {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("new.key");
    let rotated = std::cell::Cell::new(false);
    // The store key: the passphrase, then (after `key rotate`, the last command) the key file.
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = vigil();
        // The default log filter: a refusal is one line on stderr.
        c.args(args).arg("--data-dir").arg(&data).env("USER", "matrix-os").env_remove("VIGIL_LOG").stdin(Stdio::null());
        if rotated.get() {
            c.arg("--key-file").arg(&key_file);
        } else {
            c.env("VIGIL_PASSPHRASE", "matrix-test-passphrase");
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let as_user = |name: &'static str, password: &'static str| vec![("VIGIL_USER", name), ("VIGIL_USER_PASSWORD", password)];

    // An empty store: a command is refused until the first admin, which must be an admin.
    let out = run(&["user", "add", "nina", "--role", "nurse"], &[("VIGIL_USER_PASSWORD", "nina's password")]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("vigil: refused: the first user must be an admin"), "{}", err(&out));
    let out = run(&["user", "add", "ada", "--role", "admin"], &[("VIGIL_USER_PASSWORD", "ada's password")]);
    assert!(out.status.success(), "{}", err(&out));
    let roles = [("nina", "nurse"), ("cleo", "clinician"), ("vic", "viewer"), ("zed", "nurse")];
    for (name, role) in roles {
        let mut env = as_user("ada", "ada's password");
        let password = format!("{name}'s password");
        env.push(("VIGIL_NEW_USER_PASSWORD", &password));
        let out = run(&["user", "add", name, "--role", role], &env);
        assert!(out.status.success(), "{}", err(&out));
    }
    let salvage_from = dir.path().join("copy.db");
    std::fs::copy(data.join("vigil.db"), &salvage_from).unwrap();
    assert!(vigil().args(["key", "new"]).arg(&key_file).status().unwrap().success());

    let admin = ["admin"];
    let clinical = ["clinician"];
    let fhir = ["clinician", "admin"];
    let added = std::cell::Cell::new(0);
    // (arguments, audit action, the roles allowed, the refusal's words); `key rotate` last.
    let commands: Vec<(Vec<String>, &str, &[&str], &str)> = vec![
        (vec!["export".into(), "--from".into(), REPLAY_START.into(), "--to".into(), "2026-01-02T00:00:00Z".into()], "export", &clinical, "export"),
        (vec!["alarms".into(), "export".into()], "alarm_log", &clinical, "export"),
        (vec!["alarms".into(), "export".into(), "--events".into()], "alarm_log", &clinical, "export"),
        (vec!["store".into(), "verify".into()], "store_verify", &admin, "manage keys"),
        (vec!["store".into(), "salvage".into(), salvage_from.to_str().unwrap().into()], "store_salvage", &admin, "manage keys"),
        (vec!["key".into(), "log".into()], "manage_keys", &admin, "manage keys"),
        (vec!["fhir".into(), "dead-letters".into()], "fhir_queue", &fhir, "fhir queue"),
        (vec!["fhir".into(), "requeue".into(), "--all".into()], "fhir_queue", &fhir, "fhir queue"),
        (vec!["user".into(), "add".into(), "NEW".into(), "--role".into(), "viewer".into()], "manage_users", &admin, "manage users"),
        (vec!["user".into(), "disable".into(), "zed".into()], "manage_users", &admin, "manage users"),
        (vec!["user".into(), "list".into()], "manage_users", &admin, "manage users"),
        (vec!["audit".into(), "verify".into()], "audit_verify", &admin, "manage users"),
        (vec!["audit".into(), "export".into(), "--format".into(), "jsonl".into()], "audit_export", &admin, "manage users"),
        (vec!["key".into(), "rotate".into(), "--new-key-file".into(), key_file.to_str().unwrap().into()], "manage_keys", &admin, "manage keys"),
    ];
    let people = [("nina", "nurse"), ("cleo", "clinician"), ("vic", "viewer"), ("ada", "admin")];
    // Refusals expected in the trail: (action, actor) -> how many.
    let mut refused: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (args, action, allowed, words) in &commands {
        let args_for = || {
            let mut a: Vec<String> = args.clone();
            if let Some(n) = a.iter_mut().find(|a| *a == "NEW") {
                added.set(added.get() + 1);
                *n = format!("new-{}", added.get());
            }
            a
        };
        let what = args.join(" ");
        // Wrong password and no --user first: `key rotate` changes the key when allowed.
        let a = args_for();
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut env = as_user("ada", "not ada's password");
        env.push(("VIGIL_NEW_USER_PASSWORD", "a new user's password"));
        let out = run(&a, &env);
        assert_eq!(out.status.code(), Some(2), "{what}, wrong password: {}", err(&out));
        assert_eq!(err(&out), "vigil: refused: wrong user name or password\n", "{what}");
        *refused.entry((action.to_string(), "ada".into())).or_default() += 1;
        let out = run(&a, &[("VIGIL_NEW_USER_PASSWORD", "a new user's password")]);
        assert_eq!(out.status.code(), Some(2), "{what}, no --user: {}", err(&out));
        assert!(err(&out).starts_with("vigil: refused: this command needs a Vigil user: --user"), "{what}: {}", err(&out));
        assert_eq!(err(&out).lines().count(), 1, "{what}: {}", err(&out));
        *refused.entry((action.to_string(), "os:matrix-os".into())).or_default() += 1;
        for (name, role) in people {
            let a = args_for();
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let password = format!("{name}'s password");
            let mut env = vec![("VIGIL_USER", name), ("VIGIL_USER_PASSWORD", password.as_str())];
            env.push(("VIGIL_NEW_USER_PASSWORD", "a new user's password"));
            let out = run(&a, &env);
            if allowed.contains(&role) {
                assert_eq!(out.status.code(), Some(0), "{what} as a {role}: {}", err(&out));
                if a[0] == "key" && a[1] == "rotate" {
                    rotated.set(true);
                }
            } else {
                assert_eq!(out.status.code(), Some(2), "{what} as a {role}: {}", err(&out));
                let line = format!("vigil: refused: a {role} may not {words}");
                assert_eq!(err(&out), format!("{line}\n"), "{what} as a {role}");
                assert!(out.stdout.is_empty(), "{what} as a {role}: nothing printed");
                *refused.entry((action.to_string(), name.into())).or_default() += 1;
            }
        }
    }
    assert!(rotated.get(), "the admin rotated the key");
    // A disabled user is refused too.
    let out = run(&["fhir", "dead-letters"], &as_user("zed", "zed's password"));
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("vigil: refused: this account is disabled"), "{}", err(&out));
    *refused.entry(("fhir_queue".into(), "zed".into())).or_default() += 1;

    let out = run(&["audit", "export", "--format", "jsonl"], &as_user("ada", "ada's password"));
    assert!(out.status.success(), "{}", err(&out));
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["detail"].as_str().unwrap_or("").starts_with("cli os:matrix-os"), "{v}");
        if v["outcome"] == "refused" && v["action"] != "sign_in" {
            let key = (v["action"].as_str().unwrap().to_string(), v["actor"].as_str().unwrap().to_string());
            *found.entry(key).or_default() += 1;
        }
    }
    // The refusal on the empty store (a nurse as the first user) is there too.
    assert_eq!(found.remove(&("manage_users".to_string(), "os:matrix-os".to_string())).unwrap_or(0), refused[&("manage_users".to_string(), "os:matrix-os".to_string())] + 1);
    refused.remove(&("manage_users".to_string(), "os:matrix-os".to_string()));
    assert_eq!(found, refused);
}


// ---- issue 15: clinicians' reports --------------------------------------

/// A replay across the clocks going forward in London (2026-03-29 01:00 UTC):
/// bed-1 admitted at 00:30 UTC, an oximeter every 2 s with SpO2 96, 97, 98 in
/// turn and pulse 72, disconnected 00:50–01:05 (the gap), discharged at 01:30.
/// Returns the data directory and the admission id.
fn report_fixture() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.json"), r#"{ "timezone": "Europe/London" }"#).unwrap();
    let mut s = String::from("t_ms,bed,device,kind,event,characteristic,payload\n0,bed-1,,,admit,,adult\n0,bed-1,oxi-1,oximeter,connect,,\n");
    for i in 1..=1800u32 {
        let t = i * 2000;
        match t {
            1_200_000 => s.push_str(&format!("{t},bed-1,oxi-1,oximeter,disconnect,,\n")),
            1_200_001..2_100_000 => {}
            _ => {
                if t == 2_100_000 {
                    s.push_str(&format!("{},bed-1,oxi-1,oximeter,connect,,\n", t - 1));
                }
                s.push_str(&format!("{t},bed-1,oxi-1,oximeter,notify,2A5F,00 {:02X} 00 48 00\n", 96 + i % 3));
            }
        }
    }
    s.push_str("3600000,bed-1,,,discharge,,\n");
    let script = dir.path().join("report.csv");
    std::fs::write(&script, s).unwrap();
    let out = run_in(dir.path(), &["replay", script.to_str().unwrap(), "--start", "2026-03-29T00:30:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_in(dir.path(), &["admissions"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines[0], "id\tbed\tadmitted\tdischarged");
    assert_eq!(lines.len(), 2, "{list}");
    let cols: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(cols[1..], ["bed-1", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]);
    assert!(!list.contains("Replay patient"), "no names without --with-names");
    (dir, cols[0].to_string())
}

/// A step in SpO2 that came with a new probe: `vigil report` of the bed says
/// which oximeter measured when, in the ward's local time, by the device ids
/// the app shows (a Bluetooth oximeter swapped for another at 10:20 UTC,
/// 12:20 in Paris in summer).
#[test]
fn report_of_a_bed_whose_oximeter_was_swapped_says_which_device_measured_when() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.json"), r#"{ "timezone": "Europe/Paris" }"#).unwrap();
    let (a, b) = ("ble-C4:7C:8D:6A:11:02", "ble-C4:7C:8D:6A:11:07");
    let mut s = format!("t_ms,bed,device,kind,event,characteristic,payload\n0,bed-2,{a},oximeter,connect,,\n");
    for t in (1..=600).map(|i| i * 1000) {
        s.push_str(&format!("{t},bed-2,{a},oximeter,notify,2A5F,00 61 00 48 00\n"));
    }
    s.push_str(&format!("601000,bed-2,{a},oximeter,disconnect,,\n1200000,bed-2,{b},oximeter,connect,,\n"));
    for t in (1200..=1800).map(|i| i * 1000) {
        s.push_str(&format!("{t},bed-2,{b},oximeter,notify,2A5F,00 5C 00 48 00\n"));
    }
    let script = dir.path().join("swap.csv");
    std::fs::write(&script, s).unwrap();
    let out = run_in(dir.path(), &["replay", script.to_str().unwrap(), "--start", "2026-06-01T10:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pdf = dir.path().join("swap.pdf");
    let out = run_in(dir.path(), &["report", "--bed", "bed-2", "--from", "2026-06-01T09:55:00Z", "--to", "2026-06-01T10:35:00Z", "--out", pdf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = pdf_text(&pdf).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains(&format!("SpO2: device {a} from 12:00, device {b} from 12:20")), "{text}");
    // Nothing about a device change where there was none (one device all along).
    let pdf = dir.path().join("after.pdf");
    let out = run_in(dir.path(), &["report", "--bed", "bed-2", "--from", "2026-06-01T10:19:00Z", "--to", "2026-06-01T10:35:00Z", "--out", pdf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = pdf_text(&pdf).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!text.contains("SpO2: device"), "{text}");
}

fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext").arg("-layout").arg(pdf).arg("-").output().expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn report_of_an_admission_across_dst_states_the_gap_and_every_section() {
    let (dir, id) = report_fixture();
    let named = run_in(dir.path(), &["admissions", "--with-names"]);
    assert!(String::from_utf8_lossy(&named.stdout).contains("Replay patient bed-1\tREPLAY-bed-1"));

    let pdf = dir.path().join("report.pdf");
    let out = run_in(dir.path(), &["report", "--admission", &id, "--out", pdf.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Europe/London from site configuration"), "{stderr}");
    assert!(!stderr.contains("Replay patient"), "no names on stderr: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&pdf).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = pdf_text(&pdf);
    for want in [
        "Replay patient bed-1",
        "MRN: REPLAY-bed-1",
        "Trends",
        "Flowsheet",
        "Alarm log",
        "NEWS2 history",
        "Devices",
        "Data completeness",
        "Data INCOMPLETE: 2 gap(s), 0 chunk(s) failed verification",
        // Local times on both sides of the change (00:30 GMT, then BST).
        "29 Mar 2026 00:30 GMT to 29 Mar 2026 02:30 BST",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The gap is named with its local times: last reading 00:50 GMT, next 02:05 BST.
    let gap_lines: Vec<&str> = text.lines().filter(|l| l.contains("(bed-1)") && l.contains("29 Mar")).collect();
    assert_eq!(gap_lines.len(), 2, "one gap per parameter: {gap_lines:?}");
    for l in &gap_lines {
        assert!(l.contains("00:49:58 GMT") && l.contains("02:05:00 BST"), "{l}");
    }
    let pages = text.matches("page ").count();
    assert!(pages >= 1 && text.contains(&format!("page {pages}/{pages}")), "page x/y footer");
    // The flowsheet has no 01:00 column: that local hour did not exist.
    let flow = text.lines().find(|l| l.contains("Parameter") && l.contains("00:00")).unwrap();
    assert!(!flow.contains("01:00"), "{flow}");

    // A page to look at.
    let png_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-output/report");
    std::fs::create_dir_all(&png_dir).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(png_dir.join("cli-page-1"))
        .status()
        .unwrap();
    assert!(status.success());

    // The same file is never written over.
    let again = run_in(dir.path(), &["report", "--admission", &id, "--out", pdf.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn report_csv_holds_the_stored_readings_and_a_bed_range_without_a_patient_says_so() {
    let (dir, id) = report_fixture();
    let csv_path = dir.path().join("readings.csv");
    let out = run_in(dir.path(), &["report", "--admission", &id, "--format", "csv", "--out", csv_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = csv_maps(
        &std::fs::read(&csv_path).unwrap(),
        "time_utc,bed,device,mdc,value,unit,special,device_time,source,quality,status",
    );
    // 1800 notifications less the 449 in the gap, each SpO2 and pulse.
    let spo2: Vec<_> = rows.iter().filter(|r| r["mdc"] == "150456").collect();
    assert_eq!(spo2.len(), 1800 - 449 - 1, "{}", rows.len());
    assert_eq!(rows.len(), 2 * spo2.len());
    for r in &spo2 {
        let i = (script_s_from(&r["time_utc"], "2026-03-29T00:30:00Z") / 2.0).round() as u32;
        assert_eq!(r["value"], (96 + i % 3).to_string(), "{r:?}");
    }
    // The same as `vigil export` over the stay.
    let export = run_in(dir.path(), &["export", "--bed", "bed-1", "--from", "2026-03-29T00:30:00Z", "--to", "2026-03-29T01:30:00Z"]);
    assert_eq!(export.stdout, std::fs::read(&csv_path).unwrap());

    // A bed range after the discharge: nobody admitted, but no data either.
    let pdf = dir.path().join("empty.pdf");
    let out = run_in(dir.path(), &["report", "--bed", "bed-1", "--from", "2026-03-29T02:00:00Z", "--to", "2026-03-29T03:00:00Z", "--out", pdf.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("bed bed-1: nothing stored"), "{msg}");
    assert!(!pdf.exists());
    // Another bed's range with data but no admission: bed-3 replayed unadmitted.
    let script = dir.path().join("bed3.csv");
    std::fs::write(
        &script,
        "t_ms,bed,device,kind,event,characteristic,payload\n0,bed-3,oxi-3,oximeter,connect,,\n1000,bed-3,oxi-3,oximeter,notify,2A5F,00 5F 00 50 00\n2000,bed-3,oxi-3,oximeter,notify,2A5F,00 5F 00 50 00\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["replay", script.to_str().unwrap(), "--start", "2026-03-30T10:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_in(dir.path(), &["report", "--bed", "bed-3", "--from", "2026-03-30T09:00:00Z", "--to", "2026-03-30T11:00:00Z", "--out", pdf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = pdf_text(&pdf);
    assert!(text.contains("No patient admitted"), "{text}");
    assert!(!text.contains("Replay patient"), "{text}");

    // An unknown admission: a readable message, non-zero exit, no file.
    let out = run_in(dir.path(), &["report", "--admission", "no-such-id", "--out", dir.path().join("x.pdf").to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("no admission no-such-id") && msg.contains("vigil admissions"), "{msg}");
    assert!(!dir.path().join("x.pdf").exists());
}

fn script_s_from(t: &str, start: &str) -> f64 {
    let start = chrono::DateTime::parse_from_rfc3339(start).unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
    (t - start).num_milliseconds() as f64 / 1000.0
}

#[test]
fn report_states_a_chunk_that_fails_verification_and_shows_the_rest() {
    let (dir, id) = report_fixture();
    let db = dir.path().join("vigil.db");
    // The newest chunk of the stay, altered in the file.
    tamper(&db, "UPDATE chunks SET sealed = zeroblob(length(sealed)) WHERE id = (SELECT max(id) FROM chunks)");
    let pdf = dir.path().join("tampered.pdf");
    let out = run_in(dir.path(), &["report", "--admission", &id, "--out", pdf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = pdf_text(&pdf);
    assert!(text.contains("1 chunk(s) failed verification"), "{text}");
    assert!(text.contains("Chunks that failed verification"), "{text}");
    assert!(text.contains("of series") && text.contains("altered"), "the reason is printed: {text}");
    // The other parameter's chunk (SpO2 or pulse, whichever was written
    // first) is still shown.
    assert!(text.contains("SpO2 (%)") != text.contains("PR (SpO2) (/min)"), "{text}");
}

/// Issue 15: NEWS2 comes from the store. Patient A on bed-1 (SpO2 97 then 93,
/// a nurse's ACVPU entry of "voice"), discharged; patient B on the same bed
/// (SpO2 91, pulse 120). A's report lists A's NEWS2 history and entry, none
/// of B's; B's report the other way round; nothing of it reaches a log.
#[test]
fn report_of_a_past_admission_lists_its_news2_history_and_entries_and_none_of_the_next_patients() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("t_ms,bed,device,kind,event,characteristic,payload\n0,bed-1,,,admit,,adult\n0,bed-1,oxi-1,oximeter,connect,,\n");
    for i in 1..=180u32 {
        let t = i * 5000;
        // (SpO2, pulse): A 97/72 (0 + 0), A 93/72 (SpO2 2 points), B 91/120 (3 + 2).
        let (spo2, pulse) = match t {
            ..=200_000 => (97, 72),
            200_001..=600_000 => (93, 72),
            _ => (91, 120),
        };
        if t == 300_000 {
            s.push_str("300000,bed-1,,,news2,,consciousness=voice\n");
        }
        if t == 660_000 {
            s.push_str("660000,bed-1,,,admit,,adult\n");
        }
        s.push_str(&format!("{t},bed-1,oxi-1,oximeter,notify,2A5F,00 {spo2:02X} 00 {pulse:02X} 00\n"));
        if t == 600_000 {
            s.push_str("600000,bed-1,,,discharge,,\n");
        }
    }
    s.push_str("900000,bed-1,,,discharge,,\n");
    let script = dir.path().join("news2.csv");
    std::fs::write(&script, s).unwrap();
    let out = replay(dir.path(), &script);
    let log = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    let out = run_in(dir.path(), &["admissions"]);
    let list = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<String> = list.lines().skip(1).map(|l| l.split('\t').next().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2, "{list}");
    let (a, b) = (&ids[0], &ids[1]);

    let report = |id: &str, name: &str| {
        let pdf = dir.path().join(name);
        let out = run_in(dir.path(), &["report", "--admission", id, "--out", pdf.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        let text = pdf_text(&pdf);
        let start = text.find("NEWS2 history").expect("a NEWS2 section");
        let end = text[start..].find("Devices").map_or(text.len(), |e| start + e);
        (text[start..end].to_string(), stderr)
    };
    let (news2_a, stderr_a) = report(a, "a.pdf");
    assert!(!news2_a.contains("None in this range"), "{news2_a}");
    for want in [
        "entered: ACVPU voice (by replay)",
        "SpO2 0",
        "SpO2 2",
        "ACVPU 3 (entered)",
        "HR 0",
        "medium",
    ] {
        assert!(news2_a.contains(want), "no {want:?} in A's NEWS2 history:\n{news2_a}");
    }
    // Only A's stay (00:00 to 00:10): nothing of B's scores or times.
    for not in ["SpO2 3", "HR 2", "00:11:", "00:12:", "00:13:", "00:14:", "00:15:"] {
        assert!(!news2_a.contains(not), "{not:?} of patient B in A's report:\n{news2_a}");
    }
    let (news2_b, stderr_b) = report(b, "b.pdf");
    assert!(news2_b.contains("SpO2 3") && news2_b.contains("HR 2"), "{news2_b}");
    assert!(!news2_b.contains("entered") && !news2_b.contains("SpO2 2"), "{news2_b}");

    // No patient, entered value or score in any log.
    for text in [&log, &stderr_a, &stderr_b] {
        for not in ["Replay patient", "REPLAY-bed-1", "voice", "NEWS2 3", "SpO2 2"] {
            assert!(!text.contains(not), "{not:?} in a log:\n{text}");
        }
    }
    // The NEWS2 log verifies with the rest of the store.
    let out = run_in(dir.path(), &["store", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

// ---- MQTT (issue 17) ----

/// The gateway publishes its ward to a real Mosquitto (started here on a free loopback
/// port, stopped by its pid): a station subscribing later with a plain MQTT client sees
/// retained latest values, the ward online, and after SIGTERM the ward offline.
#[test]
fn gateway_publishes_retained_readings_to_an_mqtt_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
    let mut broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sub = |topic: &str, n: usize| {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-C", &n.to_string()])
            .args(["-W", "20", "-F", "%r %t %p"])
            .output()
            .expect("mosquitto_sub (Debian package mosquitto-clients)");
        String::from_utf8(out.stdout).unwrap()
    };

    // A topic level with a wildcard is refused before anything starts.
    let out = vigil()
        .args(["gateway", "--simulate", "stable", "--mqtt", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--mqtt-site", "north", "--mqtt-ward", "icu/3", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt ward \"icu/3\""), "{err}");

    let child = vigil()
        .args(["gateway", "--simulate", "stable", "--speed", "10", "--status-every", "1"])
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}"), "--mqtt-site", "north", "--mqtt-ward", "icu-3"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "gateway-test-passphrase")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // Subscribed after the values were published: retained, one per bed and code.
    let lines = sub("vigil/north/icu-3/+/reading/+", 8);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    for l in &lines {
        let mut it = l.splitn(3, ' ');
        assert_eq!(it.next(), Some("1"), "retained: {l}");
        let topic = it.next().unwrap();
        let v: serde_json::Value = serde_json::from_str(it.next().unwrap()).unwrap();
        assert_eq!(topic, format!("vigil/north/icu-3/{}/reading/{}", v["reading"]["bed"].as_str().unwrap(), v["reading"]["mdc"]));
        assert_eq!(v["reading"]["source"], "simulated", "the simulated label travels");
        assert!(v["t"].as_i64().unwrap() > 0);
    }
    let status = sub("vigil/north/icu-3/status", 1);
    assert!(status.contains("\"online\":true"), "{status}");

    unsafe { libc_kill(child.id() as i32, SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("publishing the ward to MQTT broker mqtt://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("under vigil/north/icu-3/"), "{stderr}");
    assert!(stderr.contains("mqtt connected (published "), "status line: {stderr}");
    let status = sub("vigil/north/icu-3/status", 1);
    assert!(status.contains("\"online\":false"), "a clean stop says offline: {status}");
    let _ = broker.kill();
    let _ = broker.wait();
}
