//! A small FHIR R4 REST client (R4 http.html): batch, create, read, search.
//!
//! * TLS by rustls, TLS 1.2 minimum; the server certificate is checked against the
//!   built-in web PKI roots and/or a site CA bundle (PEM). Plain `http` is refused except
//!   to a loopback address (tests, a local relay).
//! * Authorisation per [`Auth`]: none, static bearer, or SMART Backend Services; after a
//!   401 the token is fetched again once.
//! * Redirects are never followed, for FHIR requests and the token request alike: a 3xx
//!   is [`Error::Redirect`].
//! * Errors carry status codes and OperationOutcome issue codes, never URLs with queries
//!   (a patient search has the MRN in it), tokens or bodies (see [`crate::error`]).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use url::Url;

use crate::auth::{Auth, TokenSource};
use crate::bundle::{self, EntryResult};
use crate::error::{Error, Outcome};

pub const FHIR_JSON: &str = "application/fhir+json";

/// How to reach the FHIR server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// FHIR base, e.g. `https://fhir.hospital.example/R4`.
    pub base_url: String,
    pub auth: Auth,
    /// Site CA bundle (PEM, one or more certificates) to trust for the server certificate.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Also trust the built-in web PKI roots (default true; false = site CA only).
    pub builtin_roots: bool,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            auth: Auth::None,
            ca_bundle_pem: None,
            builtin_roots: true,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest response body read (a batch-response for a full window is well under 1 MiB):
/// a server, or something posing as one, cannot make the uploader hold unbounded memory.
pub const MAX_BODY: usize = 8 << 20;

/// The body of `resp`, refused (never truncated) when larger than `cap` bytes, whether
/// `Content-Length` says so or the chunks do.
pub(crate) async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, Error> {
    let too_big = || Error::Protocol(format!("response body larger than {} MiB", cap >> 20));
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::from_reqwest(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Just enough of a Patient to let a nurse confirm the match. `Debug` shows only the
/// reference (no identity in logs).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PatientSummary {
    /// `Patient/<id>`: what Observations use as `subject`.
    pub reference: String,
    /// The identifier value that matched the searched system.
    pub mrn: Option<String>,
    pub family: Option<String>,
    pub given: Vec<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
}

impl std::fmt::Debug for PatientSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PatientSummary({}, identity hidden)", self.reference)
    }
}

impl PatientSummary {
    fn from_resource(p: &Json, system: &str) -> Option<Self> {
        let id = p.get("id")?.as_str()?;
        let s = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_string);
        let mrn = p
            .get("identifier")
            .and_then(Json::as_array)
            .and_then(|ids| {
                ids.iter()
                    .find(|i| i.get("system").and_then(Json::as_str) == Some(system))
            })
            .and_then(|i| s(i.get("value")));
        let names = p.get("name").and_then(Json::as_array);
        let name = names.and_then(|n| {
            n.iter()
                .find(|n| n.get("use").and_then(Json::as_str) == Some("official"))
                .or_else(|| n.first())
        });
        Some(PatientSummary {
            reference: format!("Patient/{id}"),
            mrn,
            family: s(name.and_then(|n| n.get("family"))),
            given: name
                .and_then(|n| n.get("given"))
                .and_then(Json::as_array)
                .map(|g| g.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            birth_date: s(p.get("birthDate")),
            gender: s(p.get("gender")),
        })
    }
}

/// A FHIR R4 client for one server.
/// A Device on the server and how many Devices carry its identifier there (more than one:
/// duplicates someone else created; Vigil uses the lowest id and says so in its status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    pub reference: String,
    pub matches: usize,
}

pub struct FhirClient {
    http: reqwest::Client,
    base: Url,
    tokens: TokenSource,
}

impl std::fmt::Debug for FhirClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FhirClient({})", self.base)
    }
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        None => false,
    }
}

/// `https`, or `http` to loopback only.
fn check_scheme(u: &Url, what: &str) -> Result<(), Error> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(u) => Ok(()),
        _ => Err(Error::Config(format!(
            "{what} must be https (http only to loopback)"
        ))),
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let d = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(d.to_std().unwrap_or(Duration::ZERO))
}

impl FhirClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, Error> {
        let mut base =
            Url::parse(&cfg.base_url).map_err(|_| Error::Config("FHIR base URL does not parse".into()))?;
        check_scheme(&base, "FHIR base URL")?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .tls_built_in_root_certs(cfg.builtin_roots)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            // Never follow a redirect (reqwest follows up to 10 by default, https → http
            // included): a 3xx is an error (see `Error::Redirect`). Also covers the token
            // request, which uses this client.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigil-fhir/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &cfg.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| Error::Config("CA bundle is not valid PEM".into()))?;
            if certs.is_empty() {
                return Err(Error::Config("CA bundle holds no certificate".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Auth::Smart(s) = &cfg.auth {
            check_scheme(&s.token_url, "token URL")?;
        }
        if is_loopback(&base) {
            b = b.no_proxy();
        }
        let http = b.build().map_err(|_| Error::Config("HTTP client".into()))?;
        Ok(FhirClient {
            http,
            base,
            tokens: TokenSource::new(cfg.auth),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Tokens fetched from a SMART token endpoint so far.
    pub fn tokens_fetched(&self) -> u64 {
        self.tokens.fetched()
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, Error> {
        let mut u = self
            .base
            .join(path)
            .map_err(|_| Error::Config("bad request path".into()))?;
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        Ok(u)
    }

    /// One request with auth (a 401 refreshes the token and retries once); JSON back.
    async fn request(&self, method: Method, url: Url, body: Option<&Json>) -> Result<Json, Error> {
        let mut refreshed = false;
        loop {
            let mut rb = self
                .http
                .request(method.clone(), url.clone())
                .header("accept", FHIR_JSON);
            if let Some(t) = self.tokens.token(&self.http).await? {
                rb = rb.bearer_auth(t.expose());
            }
            if let Some(b) = body {
                rb = rb.header("content-type", FHIR_JSON).body(b.to_string());
            }
            let resp = rb.send().await.map_err(|e| Error::from_reqwest(&e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed && self.tokens.refreshable() {
                self.tokens.invalidate().await;
                refreshed = true;
                continue;
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            if status.is_redirection() {
                return Err(Error::Redirect {
                    what: "FHIR server",
                    status: status.as_u16(),
                });
            }
            let bytes = read_capped(resp, MAX_BODY).await?;
            let json: Option<Json> = serde_json::from_slice(&bytes).ok();
            if !status.is_success() {
                return Err(Error::Http {
                    status: status.as_u16(),
                    retry_after,
                    outcome: json.as_ref().and_then(Outcome::from_json),
                });
            }
            return json
                .ok_or_else(|| Error::Protocol(format!("HTTP {} without a JSON body", status.as_u16())));
        }
    }

    /// POSTs a batch Bundle of conditional creates of `resources` (see [`bundle::batch`]);
    /// one result per resource, in order.
    pub async fn batch(&self, resources: &[Json]) -> Result<Vec<EntryResult>, Error> {
        let b = bundle::batch(resources);
        let resp = self.request(Method::POST, self.base.clone(), Some(&b)).await?;
        bundle::parse_batch_response(&resp, resources.len()).map_err(Error::Protocol)
    }

    /// Plain create (`POST [base]/[type]`); the created resource back.
    pub async fn create(&self, resource: &Json) -> Result<Json, Error> {
        let ty = resource
            .get("resourceType")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::Config("resource without resourceType".into()))?;
        self.request(Method::POST, self.url(ty, &[])?, Some(resource))
            .await
    }

    /// Read by reference (`Type/id`).
    pub async fn read(&self, reference: &str) -> Result<Json, Error> {
        self.request(Method::GET, self.url(reference, &[])?, None).await
    }

    /// Search (`GET [base]/[type]?params`); the searchset Bundle (first page only).
    pub async fn search(&self, resource_type: &str, params: &[(&str, &str)]) -> Result<Json, Error> {
        self.request(Method::GET, self.url(resource_type, params)?, None)
            .await
    }

    /// Number of matches (`_summary=count`).
    pub async fn count(&self, resource_type: &str, params: &[(&str, &str)]) -> Result<u64, Error> {
        let mut p = params.to_vec();
        p.push(("_summary", "count"));
        let b = self.search(resource_type, &p).await?;
        b.get("total")
            .and_then(Json::as_u64)
            .ok_or_else(|| Error::Protocol("searchset without total".into()))
    }

    /// Patients with this identifier (`Patient?identifier=system|value`), e.g. by MRN.
    pub async fn search_patient_by_mrn(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Vec<PatientSummary>, Error> {
        let token = format!("{system}|{value}");
        let b = self.search("Patient", &[("identifier", &token)]).await?;
        Ok(b.get("entry")
            .and_then(Json::as_array)
            .map(|es| {
                es.iter()
                    .filter_map(|e| e.get("resource"))
                    .filter(|r| r.get("resourceType").and_then(Json::as_str) == Some("Patient"))
                    .filter_map(|r| PatientSummary::from_resource(r, system))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Conditional create of Device resources; their `Device/<id>` references, in order.
    pub async fn ensure_devices(&self, devices: &[Json]) -> Result<Vec<DeviceRef>, Error> {
        let results = self.batch(devices).await?;
        let mut out = Vec::with_capacity(devices.len());
        for (resource, r) in devices.iter().zip(results) {
            out.push(match r {
                EntryResult::Stored {
                    location: Some(l), ..
                } => DeviceRef {
                    reference: bundle::reference_from_location(&l, "Device")
                        .ok_or_else(|| Error::Protocol("Device location without an id".into()))?,
                    matches: 1,
                },
                // No location to go by, or 412: the identifier matched more than one
                // Device (R4 http.html "Conditional update": "Multiple matches: The server
                // returns a 412 Precondition Failed error"). Never stall on it: find them.
                EntryResult::Stored { location: None, .. }
                | EntryResult::Retry {
                    status: Some(412), ..
                } => self.resolve_device(resource, 0).await?,
                // Some servers (Medplum) answer multiple matches with a 400 on the request
                // URL instead: a refusal only if the identifier is not held more than once.
                EntryResult::Rejected { status: 400, outcome } => {
                    match self.resolve_device(resource, 2).await {
                        Ok(r) => r,
                        Err(Error::Protocol(_)) => {
                            return Err(Error::Http {
                                status: 400,
                                retry_after: None,
                                outcome,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                EntryResult::Rejected { status, outcome }
                | EntryResult::Retry {
                    status: Some(status),
                    outcome,
                } => {
                    return Err(Error::Http {
                        status,
                        retry_after: None,
                        outcome,
                    })
                }
                EntryResult::Retry { status: None, .. } => {
                    return Err(Error::Protocol("Device entry without status".into()))
                }
            });
        }
        Ok(out)
    }

    /// The Device with `resource`'s identifier when the server did not say which: searches
    /// `Device?identifier=system|value`, takes the lowest id (the same choice on every pass
    /// and every gateway) and updates that one by id with what Vigil knows. Creates it when
    /// none exists. Fewer than `at_least` matches is `Error::Protocol` (nothing to resolve).
    async fn resolve_device(&self, resource: &Json, at_least: usize) -> Result<DeviceRef, Error> {
        let id = resource
            .get("identifier")
            .and_then(|i| i.get(0))
            .and_then(|i| Some(format!("{}|{}", i.get("system")?.as_str()?, i.get("value")?.as_str()?)))
            .ok_or_else(|| Error::Protocol("Device without an identifier to resolve".into()))?;
        let found = self
            .search("Device", &[("identifier", id.as_str()), ("_count", "100")])
            .await?;
        let mut ids: Vec<String> = found
            .get("entry")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource")?.get("id")?.as_str().map(String::from))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() < at_least {
            return Err(Error::Protocol(format!(
                "{} Devices with this identifier, expected at least {at_least}",
                ids.len()
            )));
        }
        let Some(first) = ids.first() else {
            let created = self.create(resource).await?;
            let id = created
                .get("id")
                .and_then(Json::as_str)
                .ok_or_else(|| Error::Protocol("created Device without an id".into()))?;
            return Ok(DeviceRef {
                reference: format!("Device/{id}"),
                matches: 1,
            });
        };
        let reference = format!("Device/{first}");
        let mut update = resource.clone();
        update["id"] = Json::String(first.clone());
        self.request(Method::PUT, self.url(&reference, &[])?, Some(&update))
            .await?;
        Ok(DeviceRef {
            reference,
            matches: ids.len(),
        })
    }
}
