//! Issue 16: an update is installed only when its signature verifies against the app's key.
//!
//! The real updater plugin (`tauri-plugin-updater`, registered as the app registers it:
//! `vigil_app::updates::plugin()` with the app's own `plugins.updater` settings from
//! `tauri.conf.json`, only the public key swapped for a key pair made here) checks a
//! `latest.json` served on 127.0.0.1 by a small HTTP server in this test, downloads the
//! artifact and installs it over a throwaway "installed Vigil" file. Genuine: installed.
//! One byte changed, signed by another key, or a manifest announcing another version than
//! the one signed: refused with a signature error, and the installed file is untouched.
//! No traffic leaves the loopback interface.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What the server serves: the manifest and the artifact; how often the artifact was fetched.
#[derive(Default)]
struct Served {
    manifest: String,
    artifact: Vec<u8>,
    downloads: usize,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: `/latest.json` and `/vigil.AppImage`, one
/// request per connection.
fn serve(state: Arc<Mutex<Served>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Headers up to the blank line (no request body on a GET).
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, ctype, body) = {
                let mut s = state.lock().unwrap();
                match path.as_str() {
                    "/latest.json" => ("200 OK", "application/json", s.manifest.clone().into_bytes()),
                    "/vigil.AppImage" => {
                        s.downloads += 1;
                        ("200 OK", "application/octet-stream", s.artifact.clone())
                    }
                    _ => ("404 Not Found", "text/plain", b"not found".to_vec()),
                }
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn
                .write_all(head.as_bytes())
                .and_then(|_| conn.write_all(&body));
        }
    });
    port
}

/// A key pair as `tauri signer generate` makes one: the public key as the config holds it
/// (base64 of the minisign public key file).
fn key_pair() -> (String, minisign::KeyPair) {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let pk = kp.pk.to_box().unwrap().to_string();
    (b64(pk.as_bytes()), kp)
}

/// A signature as `tauri signer sign --app-version <v>` writes it (the `.sig` file, base64):
/// the trusted comment binds the version.
fn sign(kp: &minisign::KeyPair, data: &[u8], version: &str) -> String {
    let trusted = format!("timestamp:1796000000\tfile:vigil.AppImage\tversion:{version}");
    let sig = minisign::sign(
        Some(&kp.pk),
        &kp.sk,
        std::io::Cursor::new(data),
        Some(&trusted),
        Some("signature from tauri secret key"),
    )
    .unwrap();
    b64(sig.to_string().as_bytes())
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn manifest(port: u16, version: &str, signature: &str) -> String {
    serde_json::json!({
        "version": version,
        "notes": "test release",
        "pub_date": "2026-12-01T00:00:00Z",
        "platforms": {
            tauri_plugin_updater::target().unwrap(): {
                "url": format!("http://127.0.0.1:{port}/vigil.AppImage"),
                "signature": signature,
            }
        }
    })
    .to_string()
}

/// The app's `plugins.updater` from `tauri.conf.json`, with the test's public key.
fn app_updater_config(test_pubkey: &str) -> serde_json::Value {
    let conf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tauri.conf.json")).unwrap(),
    )
    .unwrap();
    let mut updater = conf["plugins"]["updater"].clone();
    // The project's own key is a minisign public key (its private half is not in the repository).
    let real = updater["pubkey"].as_str().expect("plugins.updater.pubkey is set");
    assert!(!real.is_empty() && real != test_pubkey);
    assert_eq!(
        updater["requireSignedVersion"], true,
        "a manifest cannot pair a new version with an old artifact"
    );
    updater["pubkey"] = test_pubkey.into();
    updater
}

/// An ELF file (what the plugin installs on Linux outside a .deb/.rpm install).
fn artifact(version: &str) -> Vec<u8> {
    let mut a = b"\x7fELF\x02\x01\x01\x00".to_vec();
    a.resize(200, 0);
    a.extend_from_slice(format!("vigil {version} test artifact").as_bytes());
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_update_installs_and_a_tampered_or_foreign_one_is_refused_with_nothing_installed() {
    let (pubkey, kp) = key_pair();
    let mut ctx = tauri::test::mock_context(tauri::test::noop_assets());
    ctx.config_mut()
        .plugins
        .0
        .insert("updater".into(), app_updater_config(&pubkey));
    let app = tauri::test::mock_builder()
        .plugin(vigil_app::updates::plugin())
        .build(ctx)
        .unwrap();
    let handle = app.handle().clone();

    let state = Arc::new(Mutex::new(Served::default()));
    let port = serve(state.clone());
    // The endpoint goes through the site configuration's rule (https, or http to loopback).
    let endpoint =
        vigil_core::update::check_endpoint(&format!("http://127.0.0.1:{port}/latest.json")).unwrap();

    let genuine = artifact("9.9.9");
    let signature = sign(&kp, &genuine, "9.9.9");
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("Vigil.AppImage");
    let old = b"vigil 0.1.0 as installed".to_vec();

    // Each attempt: the installed Vigil as it was, the server's manifest and artifact.
    let attempt = |manifest: String, served: Vec<u8>| {
        std::fs::write(&installed, &old).unwrap();
        let mut s = state.lock().unwrap();
        s.manifest = manifest;
        s.artifact = served;
        s.downloads = 0;
    };
    let run = || async {
        let b = vigil_app::updates::updater(&handle, endpoint.clone(), Some(&installed)).unwrap();
        let update = vigil_app::updates::check(b)
            .await
            .unwrap()
            .expect("9.9.9 is newer");
        assert_eq!(update.version, "9.9.9");
        vigil_app::updates::install(&update).await
    };

    // (a) The genuine artifact: verified and installed.
    attempt(manifest(port, "9.9.9", &signature), genuine.clone());
    run().await.expect("the genuine, signed artifact installs");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        genuine,
        "the new version is installed"
    );

    // (b) One byte of the artifact changed (a compromised mirror, a flipped bit): refused.
    let mut tampered = genuine.clone();
    tampered[150] ^= 0x01;
    attempt(manifest(port, "9.9.9", &signature), tampered);
    let e = run().await.expect_err("a tampered artifact must be refused");
    assert!(
        matches!(e, tauri_plugin_updater::Error::Minisign(_)),
        "a signature error, not {e:?}"
    );
    let said = vigil_app::updates::describe(&e);
    assert!(
        said.contains("signature does not verify") && said.contains("nothing was installed"),
        "{said}"
    );
    assert_eq!(
        state.lock().unwrap().downloads,
        1,
        "refused after downloading it, by its signature"
    );
    assert_eq!(std::fs::read(&installed).unwrap(), old, "nothing installed");

    // (c) Signed, but by another key than the app's: refused.
    let (_, other) = key_pair();
    attempt(
        manifest(port, "9.9.9", &sign(&other, &genuine, "9.9.9")),
        genuine.clone(),
    );
    let e = run().await.expect_err("another key's signature must be refused");
    assert!(matches!(e, tauri_plugin_updater::Error::Minisign(_)), "{e:?}");
    assert_eq!(std::fs::read(&installed).unwrap(), old, "nothing installed");

    // (d) A genuine, signed older release offered as 9.9.9 (a downgrade by manifest): refused.
    let older = artifact("0.0.9");
    attempt(manifest(port, "9.9.9", &sign(&kp, &older, "0.0.9")), older);
    let e = run()
        .await
        .expect_err("a release signed for another version must be refused");
    assert!(
        matches!(e, tauri_plugin_updater::Error::SignedVersionMismatch { .. }),
        "{e:?}"
    );
    assert_eq!(std::fs::read(&installed).unwrap(), old, "nothing installed");
}
