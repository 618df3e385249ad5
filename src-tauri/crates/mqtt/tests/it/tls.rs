//! TLS to the broker: a throwaway CA and server certificate made at test time with the
//! `openssl` tool (as the FHIR TLS test does), Mosquitto's listener with
//! cafile/certfile/keyfile, and clients that trust that CA (or do not).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::broker::Mosquitto;
use crate::*;
use vigil_mqtt::{Broker, Liveness};

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("run the `openssl` command-line tool (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ca.pem and server.pem/server.key (SAN 127.0.0.1, localhost) in `dir`.
fn pki(dir: &Path) {
    // Mosquitto started as root reads them after dropping to its own user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n[dn]\nCN = Vigil MQTT test CA\n\
         [v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )
    .unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(
        dir,
        &format!("req -x509 -config ca.cnf {ec} -keyout ca.key -out ca.pem -days 2"),
    );
    std::fs::write(
        dir.join("server.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = Vigil MQTT test broker\n\
         [v3]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    openssl(
        dir,
        &format!("req -new -config server.cnf {ec} -keyout server.key -out server.csr"),
    );
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile server.cnf -extensions v3 -out server.pem",
    );
    for f in ["ca.pem", "server.pem", "server.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_client_trusting_the_sites_ca_gets_the_ward_and_others_do_not() {
    let certs = tempfile::tempdir().unwrap();
    pki(certs.path());
    let d = certs.path().display();
    let broker = Mosquitto::with_listener(&format!(
        "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n"
    ));
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let trusted = || Broker {
        ca: Some(certs.path().join("ca.pem")),
        ..Broker::new(url.clone())
    };

    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let p = publisher(&v, trusted());
    let m = mirror(trusted());
    until("the ward over TLS", Duration::from_secs(20), || {
        m.ward(WARD).is_some_and(|w| {
            w.liveness == Liveness::Online && w.snapshot.beds.len() == 4 && !w.snapshot.latest.is_empty()
        })
    })
    .await;

    // The OS roots do not include the test CA: no connection, nothing mirrored, and the
    // ward it cannot see is not reported at all (never as online).
    let stranger = mirror(Broker::new(url.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!stranger.connected());
    assert!(stranger.wards().is_empty());
    // Plain MQTT to the TLS listener does not get through either.
    let plain = mirror(Broker::new(format!("mqtt://127.0.0.1:{}", broker.port)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(plain.wards().is_empty());
    assert!(!broker.log().contains("nurse"), "no PHI in the broker's log");

    plain.stop().await;
    stranger.stop().await;
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}

#[test]
fn a_password_goes_only_over_tls() {
    let b = Broker {
        username: Some("ward-3".into()),
        password: Some("secret".into()),
        ..Broker::new("mqtt://127.0.0.1:1883")
    };
    assert!(!format!("{b:?}").contains("secret"), "Debug hides the password");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = Mirror::start(MirrorConfig::new(b, SITE))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("only over mqtts"), "{e}");
    });
}
