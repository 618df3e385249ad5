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
        kid: "k1".into(),
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

async fn post_assertion(server: &TestServer, assertion: &str) -> (u16, Json) {
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("scope", "system/Observation.write")
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", assertion)
        .finish();
    let r = reqwest::Client::new()
        .post(server.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// SMART Backend Services (backend-services.html, RFC 7523): every assertion names its key
/// (`kid`), its `aud` is exactly the token endpoint, and a `jti` is good once; the test
/// server's token endpoint checks all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_checks_kid_exact_aud_and_a_fresh_jti() {
    let server = TestServer::start().await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref();
    let jwk = json!({ "kty": "EC", "crv": "P-384",
        "x": URL_SAFE_NO_PAD.encode(&point[1..49]), "y": URL_SAFE_NO_PAD.encode(&point[49..]) });
    server.configure_auth(jwk, "vigil-gw", 300).await;
    let backend = |kid: &str, token_url: String| SmartBackend {
        token_url: token_url.parse().unwrap(),
        client_id: "vigil-gw".into(),
        kid: kid.into(),
        key: SigningKey::es384_from_pkcs8(pkcs8.as_ref()).unwrap(),
        scope: "system/Observation.write".into(),
    };
    let now = chrono::Utc::now().timestamp();
    let good = backend("k1", server.token_url()).assertion(now).unwrap();
    let header: Json =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], "k1");
    let (status, body) = post_assertion(&server, &good).await;
    assert_eq!(status, 200, "{body}");
    // The same assertion again: its jti was used.
    let (status, body) = post_assertion(&server, &good).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("jti reused"))
    );
    // Another key id.
    let other_kid = backend("k2", server.token_url()).assertion(now).unwrap();
    let (status, body) = post_assertion(&server, &other_kid).await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("kid")));
    // An aud that only ends like the token URL.
    let near = server.token_url().replace("/auth/token", "/x/auth/token");
    let wrong_aud = backend("k1", near).assertion(now).unwrap();
    let (status, body) = post_assertion(&server, &wrong_aud).await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("aud")));
    // No kid is not an assertion Vigil makes.
    assert!(backend(" ", server.token_url()).assertion(now).is_err());
    server.stop().await;
}

/// The SMART private key file is refused like the store's key file when others can read it.
#[cfg(unix)]
#[test]
fn a_smart_key_file_readable_by_others_is_refused() {
    use base64::engine::general_purpose::STANDARD;
    use std::os::unix::fs::PermissionsExt;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smart-key.pem");
    std::fs::write(&path, &pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = SigningKey::from_pem_file(&path, "ES384").unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    SigningKey::from_pem_file(&path, "ES384").unwrap();
    assert!(SigningKey::from_pem_file(&path, "HS256").is_err());
    assert!(
        SigningKey::from_pem_file(dir.path(), "ES384").is_err(),
        "a directory"
    );
}
