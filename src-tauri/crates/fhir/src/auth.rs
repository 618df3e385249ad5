//! Authorisation: a static bearer token, or SMART Backend Services
//! (<https://hl7.org/fhir/smart-app-launch/backend-services.html>): OAuth 2.0
//! client-credentials where the client authenticates with a JWT it signs itself
//! (RFC 7523; `client_assertion_type = urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
//!
//! The assertion: header `{alg: RS384|ES384, typ: JWT, kid}` (`kid` always: SMART requires
//! it, the server finds the client's key in its JWKS by it), claims `iss` = `sub` = client
//! id, `aud` = token URL, `exp` ≤ 5 minutes ahead, unique `jti`. The access token is cached
//! and fetched again [`REFRESH_MARGIN`] (at most half its lifetime) before it expires, or at
//! once after a 401.
//!
//! Keys and tokens are held in [`Secret`]s / ring key pairs whose `Debug` shows nothing; no
//! log line or error contains them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde_json::{json, Value as Json};
use tokio::sync::Mutex;

use crate::error::Error;

/// Fetch a new token when the cached one has less than this left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The longest a token is used before fetching a new one, whatever `expires_in` says.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The shortest lifetime assumed for a token.
pub const MIN_TOKEN_TTL: Duration = Duration::from_secs(2);

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The private key that signs client assertions.
pub enum SigningKey {
    Rs384(RsaKeyPair),
    Es384(EcdsaKeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigningKey::Rs384(_) => "SigningKey(RS384, ***)",
            SigningKey::Es384(_) => "SigningKey(ES384, ***)",
        })
    }
}

/// DER bytes of the first `-----BEGIN <label>-----` block of a PEM text.
pub fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

/// Reads a SMART private key file (PKCS#8 PEM), refusing it the way the store refuses its
/// key file (`vigil_store::keys::read_key_file`): not a regular file, or readable or
/// writable by group or others (unix mode & 0o077), is an error naming the fix. The text is
/// zeroed when dropped. Errors carry the path and the reason only, never key material.
pub fn read_private_key_file(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, Error> {
    let err = |reason: String| Error::Config(format!("SMART key file {}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(e.kind().to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "permissions {mode:o} let others read it; run `chmod 600` on it"
            )));
        }
    }
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| err(e.kind().to_string()))
}

impl SigningKey {
    /// The key in a SMART private key file ([`read_private_key_file`]) for `alg` (ES384 or
    /// RS384).
    pub fn from_pem_file(path: &std::path::Path, alg: &str) -> Result<Self, Error> {
        let pem = read_private_key_file(path)?;
        let key = match alg {
            "ES384" => Self::es384_from_pem(&pem),
            "RS384" => Self::rs384_from_pem(&pem),
            other => {
                return Err(Error::Config(format!(
                    "SMART alg {other}: expected ES384 or RS384"
                )))
            }
        };
        key.map_err(|e| Error::Config(format!("SMART key file {}: {e}", path.display())))
    }

    /// An RSA key (PKCS#8, `-----BEGIN PRIVATE KEY-----`) for RS384.
    pub fn rs384_from_pem(pem: &str) -> Result<Self, Error> {
        let der =
            pem_block(pem, "PRIVATE KEY").ok_or_else(|| Error::Config("RSA key: no PKCS#8 PEM".into()))?;
        RsaKeyPair::from_pkcs8(&der)
            .map(SigningKey::Rs384)
            .map_err(|_| Error::Config("RSA key rejected".into()))
    }

    /// A P-384 key (PKCS#8, `-----BEGIN PRIVATE KEY-----`) for ES384.
    pub fn es384_from_pem(pem: &str) -> Result<Self, Error> {
        let der =
            pem_block(pem, "PRIVATE KEY").ok_or_else(|| Error::Config("EC key: no PKCS#8 PEM".into()))?;
        Self::es384_from_pkcs8(&der)
    }

    pub fn es384_from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map(SigningKey::Es384)
        .map_err(|_| Error::Config("EC P-384 key rejected".into()))
    }

    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Rs384(_) => "RS384",
            SigningKey::Es384(_) => "ES384",
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rs384(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA384, &rng, msg, &mut sig)
                    .map_err(|_| Error::Config("RSA signing failed".into()))?;
                Ok(sig)
            }
            // FIXED signing gives r‖s, the JWS encoding (RFC 7518 §3.4).
            SigningKey::Es384(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Config("EC signing failed".into())),
        }
    }
}

/// SMART Backend Services registration of this gateway.
#[derive(Debug)]
pub struct SmartBackend {
    pub token_url: url::Url,
    pub client_id: String,
    /// Key id registered with the server (JWKS `kid`); SMART Backend Services requires it
    /// in every assertion's header.
    pub kid: String,
    pub key: SigningKey,
    /// e.g. `system/Observation.write system/Device.write system/Patient.read`.
    pub scope: String,
}

/// How requests are authorised.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// A static bearer token (from the keychain / encrypted config).
    Bearer(Secret),
    Smart(Arc<SmartBackend>),
}

impl SmartBackend {
    /// The signed client assertion (compact JWS).
    pub fn assertion(&self, now_unix: i64) -> Result<String, Error> {
        if self.kid.trim().is_empty() {
            return Err(Error::Config("SMART kid is empty".into()));
        }
        let header = json!({ "alg": self.key.alg(), "typ": "JWT", "kid": self.kid });
        let mut jti = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut jti);
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url.as_str(),
            "exp": now_unix + 240,
            "iat": now_unix,
            "jti": hex::encode(jti),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

struct Cached {
    token: Secret,
    /// Expiry minus min([`REFRESH_MARGIN`], half the lifetime).
    refresh_at: Instant,
}

/// Hands out bearer tokens: static, or SMART with caching and refresh.
pub(crate) struct TokenSource {
    auth: Auth,
    cache: Mutex<Option<Cached>>,
    fetched: std::sync::atomic::AtomicU64,
}

impl TokenSource {
    pub(crate) fn new(auth: Auth) -> Self {
        TokenSource {
            auth,
            cache: Mutex::new(None),
            fetched: Default::default(),
        }
    }

    /// How many tokens were fetched from the token endpoint.
    pub(crate) fn fetched(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A 401 can be cured by fetching a new token.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self.auth, Auth::Smart(_))
    }

    /// Forget the cached token (after a 401).
    pub(crate) async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Option<Secret>, Error> {
        let smart = match &self.auth {
            Auth::None => return Ok(None),
            Auth::Bearer(t) => return Ok(Some(t.clone())),
            Auth::Smart(s) => s,
        };
        // Held across the fetch: one refresh at a time, the others wait and reuse it.
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(Some(c.token.clone()));
            }
        }
        let assertion = smart.assertion(chrono::Utc::now().timestamp())?;
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", &smart.scope)
            .append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .append_pair("client_assertion", &assertion)
            .finish();
        let resp = http
            .post(smart.token_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| Error::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(Error::Redirect {
                what: "token endpoint",
                status,
            });
        }
        let body: Json = crate::client::read_capped(resp, crate::client::MAX_BODY)
            .await
            .map(|b| serde_json::from_slice(&b).unwrap_or(Json::Null))?;
        if status != 200 {
            // OAuth error code only (RFC 6749 §5.2); error_description may echo input.
            let code = body
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("no error code");
            return Err(Error::Auth(format!("token endpoint HTTP {status}: {code}")));
        }
        let token = body
            .get("access_token")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::Auth("token response without access_token".into()))?;
        // RFC 6749 §5.1: seconds, RECOMMENDED. Absent: assume 5 minutes. Clamped to
        // [MIN_TOKEN_TTL, MAX_TOKEN_TTL] so that a huge value cannot overflow the clock (a
        // panic in the sync task) nor keep a revoked token in use for days, and a zero one
        // cannot make every request fetch a new token.
        let ttl = body
            .get("expires_in")
            .and_then(Json::as_u64)
            .unwrap_or(300)
            .clamp(MIN_TOKEN_TTL.as_secs(), MAX_TOKEN_TTL.as_secs());
        let lifetime = Duration::from_secs(ttl);
        let cached = Cached {
            token: Secret::new(token),
            refresh_at: Instant::now() + lifetime - REFRESH_MARGIN.min(lifetime / 2),
        };
        let t = cached.token.clone();
        *cache = Some(cached);
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(ttl_s = ttl, "fhir: fetched access token");
        Ok(Some(t))
    }
}
