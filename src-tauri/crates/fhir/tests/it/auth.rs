//! SMART Backend Services against the test server's token endpoint (signature checked by
//! Node's crypto), and bearer tokens on FHIR requests.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use serde_json::{json, Value as Json};
use vigil_fhir::{Auth, ClientConfig, Error, FhirClient, SigningKey, SmartBackend, Syncer};
use vigil_model::SystemClock;

use crate::support::*;
use crate::upload::{drain, linked_outbox};

fn smart_client(server: &TestServer, key: SigningKey) -> Arc<FhirClient> {
    let mut cfg = ClientConfig::new(server.base());
    cfg.auth = Auth::Smart(Arc::new(SmartBackend {
        token_url: server.token_url().parse().unwrap(),
        client_id: "vigil-gw".into(),
        kid: Some("k1".into()),
        key,
        scope: "system/Observation.write system/Device.write system/Patient.read".into(),
    }));
    Arc::new(FhirClient::new(cfg).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es384_backend_services_token_is_fetched_cached_and_refreshed() {
    let server = TestServer::start().await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref(); // 0x04 ‖ X ‖ Y
    let jwk = json!({ "kty": "EC", "crv": "P-384",
        "x": URL_SAFE_NO_PAD.encode(&point[1..49]), "y": URL_SAFE_NO_PAD.encode(&point[49..]) });
    // Patients are created before auth is switched on (admin path, not the client's).
    let (outbox, _) = linked_outbox(&server, &mixed_readings(30)).await;
    server.configure_auth(jwk, "vigil-gw", 2).await;

    // Without a token: 401.
    let anon = server.client();
    let e = anon.count("Observation", &[]).await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 401, .. }), "{e}");

    let client = smart_client(&server, SigningKey::es384_from_pkcs8(pkcs8.as_ref()).unwrap());
    let mut s = Syncer::new(client.clone(), fast_config(), Arc::new(SystemClock));
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, 30);
    assert_eq!(client.tokens_fetched(), 1, "one token for all requests");
    assert_eq!(client.count("Observation", &[]).await.unwrap(), 30);
    // The 2 s token is refreshed 1 s before it expires.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(client.count("Observation", &[]).await.unwrap(), 30);
    assert_eq!(client.tokens_fetched(), 2);

    // A client whose key the server does not know: the token endpoint refuses.
    let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let bad = smart_client(&server, SigningKey::es384_from_pkcs8(other.as_ref()).unwrap());
    let e = bad.count("Observation", &[]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "authorization failed: token endpoint HTTP 400: invalid_client"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs384_backend_services() {
    let server = TestServer::start().await;
    // An RSA key from Node's crypto (ring cannot generate RSA keys).
    let out = std::process::Command::new(node())
        .arg("-e")
        .arg(
            "const {privateKey, publicKey} = require('node:crypto').generateKeyPairSync('rsa', {modulusLength: 2048});\
             console.log(JSON.stringify({pem: privateKey.export({type: 'pkcs8', format: 'pem'}), jwk: publicKey.export({format: 'jwk'})}))",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let keys: Json = serde_json::from_slice(&out.stdout).unwrap();
    let (outbox, _) = linked_outbox(&server, &mixed_readings(10)).await;
    server.configure_auth(keys["jwk"].clone(), "vigil-gw", 300).await;
    let key = SigningKey::rs384_from_pem(keys["pem"].as_str().unwrap()).unwrap();
    let client = smart_client(&server, key);
    let report = drain(
        &mut Syncer::new(client.clone(), fast_config(), Arc::new(SystemClock)),
        &outbox,
    )
    .await;
    assert_eq!(report.acked, 10);
    assert_eq!(client.tokens_fetched(), 1);
    assert!(
        SigningKey::rs384_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err()
    );
    server.stop().await;
}
