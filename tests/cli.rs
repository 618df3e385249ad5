//! The `vigil` binary as a user runs it: `decode`, `gateway`, `key new`.
//! Real processes, real signals, real SQLite files in temp dirs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env_remove("VIGIL_PASSPHRASE").env("VIGIL_LOG", "warn");
    c
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
    assert!(out.status.success(), "gateway exit: {:?}", out.status);
    String::from_utf8(out.stderr).unwrap()
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

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
