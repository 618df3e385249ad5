//! TLS against the real server: a throwaway CA and server certificates made at test time
//! (the `openssl` command-line tool, in a temp dir; nothing is committed), the server in
//! https mode, and the client's trust settings (`ca_bundle_pem`, `builtin_roots`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use vigil_fhir::{ClientConfig, Error, FhirClient, MemoryOutbox, Syncer};
use vigil_model::{AdmissionId, SystemClock};

use crate::support::*;
use crate::upload::drain;

/// A throwaway CA in a temp dir that signs server certificates.
struct Pki {
    dir: tempfile::TempDir,
    serial: u32,
}

/// Runs `openssl` in `dir` with `args` (split at spaces: file names here have none).
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("run the `openssl` command-line tool (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A new CA (P-256, valid 2 days) named `name`.
    fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let cnf = format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n[dn]\nCN = {name}\n\
             [v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n"
        );
        std::fs::write(dir.path().join("ca.cnf"), cnf).unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        openssl(
            dir.path(),
            &format!("req -x509 -config ca.cnf {ec} -keyout ca.key -out ca.pem -days 2"),
        );
        Pki { dir, serial: 1 }
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.pem")).unwrap()
    }

    /// A server certificate for `sans` (openssl subjectAltName syntax, e.g.
    /// "IP:127.0.0.1,DNS:localhost") signed by this CA: (certificate, key) PEM paths.
    fn server_cert(&mut self, file: &str, sans: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        self.serial += 1;
        let cnf = format!(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = Vigil test server\n\
             [v3]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = {sans}\nsubjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n"
        );
        std::fs::write(d.join(format!("{file}.cnf")), cnf).unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        openssl(
            d,
            &format!("req -new -config {file}.cnf {ec} -keyout {file}.key -out {file}.csr"),
        );
        openssl(
            d,
            &format!(
                "x509 -req -in {file}.csr -CA ca.pem -CAkey ca.key -set_serial {} -days 2 \
                 -extfile {file}.cnf -extensions v3 -out {file}.pem",
                self.serial
            ),
        );
        (d.join(format!("{file}.pem")), d.join(format!("{file}.key")))
    }
}

const LOOPBACK_SANS: &str = "IP:127.0.0.1,DNS:localhost";

fn client(base: String, ca: Option<Vec<u8>>, builtin_roots: bool) -> Arc<FhirClient> {
    let mut cfg = ClientConfig::new(base);
    cfg.ca_bundle_pem = ca;
    cfg.builtin_roots = builtin_roots;
    Arc::new(FhirClient::new(cfg).unwrap())
}

fn patient() -> serde_json::Value {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:1.2.3.4", "value": "MRN-TLS" }],
        "name": [{ "use": "official", "family": "Tls", "given": ["Test"] }]
    })
}

/// The client's error for a refused handshake: a network error whose label says TLS.
fn assert_tls_error(e: &Error, expect: &str) {
    let text = e.to_string();
    eprintln!("refused as expected: {text}");
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    assert!(text.contains(expect), "{text:?} should mention {expect:?}");
}

/// Nothing reached the FHIR store.
async fn assert_nothing_stored(server: &TestServer) {
    let stats = server.stats().await;
    for t in ["Patient", "Observation", "Device"] {
        assert_eq!(stats["resources"][t], 0, "{t} stored: {stats}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_site_ca_only_uploads_readings() {
    let mut pki = Pki::new("Vigil test CA");
    let (cert, key) = pki.server_cert("server", LOOPBACK_SANS);
    let server = TestServer::start_tls(&cert, &key).await;
    assert!(server.base().starts_with("https://127.0.0.1:"));
    let c = client(server.base(), Some(pki.ca_pem()), false);

    let created = c
        .create(&patient())
        .await
        .expect("create over TLS with the site CA");
    let patient_ref = format!("Patient/{}", created["id"].as_str().unwrap());
    let n = 12;
    let outbox = MemoryOutbox::new();
    outbox.link(AdmissionId(ADMISSION.into()), patient_ref.clone());
    for r in mixed_readings(n) {
        outbox.push(r);
    }
    let mut s = Syncer::new(c.clone(), fast_config(), Arc::new(SystemClock));
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, n as u64);
    assert_eq!(outbox.pending_len(), 0);
    assert_eq!(server.observations().await, n as u64);
    assert_eq!(c.count("Observation", &[]).await.unwrap(), n as u64);

    // The certificate names localhost too.
    let by_name = client(
        format!("https://localhost:{}/fhir/R4", server.port),
        Some(pki.ca_pem()),
        false,
    );
    assert_eq!(by_name.read(&patient_ref).await.unwrap()["id"], created["id"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_the_site_ca_is_refused_and_uploads_nothing() {
    let mut pki = Pki::new("Vigil test CA");
    let (cert, key) = pki.server_cert("server", LOOPBACK_SANS);
    let server = TestServer::start_tls(&cert, &key).await;

    // Built-in web PKI roots only.
    let c = client(server.base(), None, true);
    let e = c.create(&patient()).await.unwrap_err();
    assert_tls_error(&e, "certificate");
    assert!(e.is_transient(), "a fixed certificate lets a later retry succeed");

    // The Syncer: a failed pass, the readings stay queued, a readable status.
    let outbox = MemoryOutbox::new();
    outbox.link(AdmissionId(ADMISSION.into()), "Patient/unknown");
    for r in mixed_readings(3) {
        outbox.push(r);
    }
    let mut s = Syncer::new(c, fast_config(), Arc::new(SystemClock));
    let err = s.pass(&outbox).await.unwrap_err();
    eprintln!("sync pass: {err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(outbox.pending_len(), 3);
    let status = s.status().borrow().clone();
    assert!(!status.healthy);
    assert!(status.last_error.unwrap_or_default().contains("certificate"));

    // Another CA, site CA only: unknown issuer too.
    let other = Pki::new("Some other CA");
    let c = client(server.base(), Some(other.ca_pem()), false);
    assert_tls_error(&c.create(&patient()).await.unwrap_err(), "certificate");

    assert_nothing_stored(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_for_another_host_is_refused() {
    let mut pki = Pki::new("Vigil test CA");
    let (cert, key) = pki.server_cert("other", "DNS:other.example");
    let server = TestServer::start_tls(&cert, &key).await;
    let c = client(server.base(), Some(pki.ca_pem()), false);
    let e = c.create(&patient()).await.unwrap_err();
    assert_tls_error(&e, "not valid for");
    let by_name = client(
        format!("https://localhost:{}/fhir/R4", server.port),
        Some(pki.ca_pem()),
        false,
    );
    assert_tls_error(&by_name.create(&patient()).await.unwrap_err(), "not valid for");
    assert_nothing_stored(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_server_is_refused() {
    let mut pki = Pki::new("Vigil test CA");
    let (cert, key) = pki.server_cert("server", LOOPBACK_SANS);
    let server = TestServer::start_tls_max(&cert, &key, "TLSv1.1").await;
    // Control: the server does complete a TLS 1.1 handshake (OpenSSL's own client, which
    // needs security level 0 for it). The admin endpoints are out of reach for the test's
    // rustls client too, so no stats here.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", server.port),
            "-tls1_1",
        ])
        .args(["-cipher", "DEFAULT@SECLEVEL=0", "-CAfile"])
        .arg(pki.dir.path().join("ca.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Protocol  : TLSv1.1"),
        "{text}"
    );

    let c = client(server.base(), Some(pki.ca_pem()), false);
    assert_tls_error(&c.create(&patient()).await.unwrap_err(), "TLS: handshake refused");
    server.stop().await;
}
