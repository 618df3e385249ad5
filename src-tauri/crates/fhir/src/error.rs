//! Errors of the FHIR client and sync.
//!
//! No error here carries a token, a key, a URL query (it may hold an MRN) or a resource
//! body. A server's OperationOutcome is kept whole in [`Outcome`] (its `details` and
//! `diagnostics` can echo submitted values, so they are meant for the dead-letter list
//! shown to authorised users) but `Display` prints only the issue severities, codes and
//! element paths: safe for logs.

use serde_json::Value as Json;
use std::fmt;
use std::time::Duration;

/// One `OperationOutcome.issue` (R4 operationoutcome.html).
#[derive(Clone, PartialEq, Default)]
pub struct Issue {
    pub severity: String,
    pub code: String,
    /// `details.text`: may echo values.
    pub details: Option<String>,
    /// `diagnostics`: may echo values.
    pub diagnostics: Option<String>,
    pub expression: Vec<String>,
}

/// A parsed OperationOutcome.
#[derive(Clone, PartialEq, Default)]
pub struct Outcome {
    pub issues: Vec<Issue>,
}

/// Longest text kept from an outcome for the dead-letter list.
pub const MAX_OUTCOME_TEXT: usize = 2000;

impl Outcome {
    /// Parses an OperationOutcome; `None` for anything else.
    pub fn from_json(v: &Json) -> Option<Outcome> {
        if v.get("resourceType")?.as_str()? != "OperationOutcome" {
            return None;
        }
        let s = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_string);
        let issues = v
            .get("issue")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|i| Issue {
                        severity: s(i.get("severity")).unwrap_or_default(),
                        code: s(i.get("code")).unwrap_or_default(),
                        details: s(i.get("details").and_then(|d| d.get("text"))),
                        diagnostics: s(i.get("diagnostics")),
                        expression: i
                            .get("expression")
                            .and_then(Json::as_array)
                            .map(|e| e.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Outcome { issues })
    }

    /// The full text (details and diagnostics included), truncated to
    /// [`MAX_OUTCOME_TEXT`]: for the dead-letter list, never for logs.
    pub fn full_text(&self) -> String {
        let mut out = String::new();
        for (n, i) in self.issues.iter().enumerate() {
            if n > 0 {
                out.push_str("; ");
            }
            out.push_str(&format!("{} {}", i.severity, i.code));
            if !i.expression.is_empty() {
                out.push_str(&format!(" at {}", i.expression.join(", ")));
            }
            if let Some(d) = &i.details {
                out.push_str(&format!(": {d}"));
            }
            if let Some(d) = &i.diagnostics {
                out.push_str(&format!(" ({d})"));
            }
        }
        truncate(out, MAX_OUTCOME_TEXT)
    }
}

pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Log-safe: severities, codes and paths only.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .issues
            .iter()
            .map(|i| {
                if i.expression.is_empty() {
                    format!("{} {}", i.severity, i.code)
                } else {
                    format!("{} {} at {}", i.severity, i.code, i.expression.join(","))
                }
            })
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Outcome({self})")
    }
}

/// What went wrong talking to the FHIR server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No HTTP response: refused, reset, timed out, TLS failure. `kind` is a fixed label.
    #[error("network error: {kind}")]
    Network { kind: &'static str },
    /// An HTTP error status.
    #[error("HTTP {status}{}", outcome.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    Http {
        status: u16,
        /// From `Retry-After` (seconds or HTTP-date), on 429/503 typically.
        retry_after: Option<Duration>,
        outcome: Option<Outcome>,
    },
    /// The token endpoint refused or failed (status and OAuth error code only).
    #[error("authorization failed: {0}")]
    Auth(String),
    /// Bad configuration (URL, key, CA bundle).
    #[error("configuration: {0}")]
    Config(String),
    /// The server answered something that is not the FHIR we asked for.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// A 3xx. Redirects are never followed: one could lead a bearer token or patient data
    /// to another host or over plain http. The target is not shown (it may carry a query).
    #[error(
        "{what} answered HTTP {status} (a redirect); redirects are not followed: configure the final URL"
    )]
    Redirect { what: &'static str, status: u16 },
}

impl Error {
    /// Worth retrying the same request later (network, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } => true,
            Error::Http { status, .. } => matches!(status, 408 | 429) || *status >= 500,
            Error::Auth(_) => true,
            Error::Config(_) | Error::Protocol(_) | Error::Redirect { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a reqwest error without its Display (which may include the URL).
    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Error {
        if let Some(kind) = tls_kind(e) {
            return Error::Network { kind };
        }
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "body"
        } else if e.is_request() {
            "request"
        } else {
            "other"
        };
        Error::Network { kind }
    }
}

/// A fixed label for a TLS failure somewhere in `e`'s source chain. rustls reaches us
/// wrapped in `std::io::Error`s (hyper-rustls, then hyper-util), whose `source()` skips the
/// wrapped error itself: those are unwrapped with `get_ref`.
fn tls_kind(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::CertificateError as C;
    let mut next = Some(e);
    while let Some(mut err) = next {
        next = err.source();
        while let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            err = inner;
        }
        let tls = err.downcast_ref::<rustls::Error>();
        if let Some(t) = tls {
            return Some(match t {
                rustls::Error::InvalidCertificate(c) => match c {
                    C::UnknownIssuer => "TLS: server certificate not trusted (unknown issuer)",
                    C::NotValidForName | C::NotValidForNameContext { .. } => {
                        "TLS: server certificate not valid for this host name"
                    }
                    C::Expired | C::ExpiredContext { .. } => "TLS: server certificate expired",
                    C::NotValidYet | C::NotValidYetContext { .. } => "TLS: server certificate not yet valid",
                    C::Revoked => "TLS: server certificate revoked",
                    _ => "TLS: server certificate rejected",
                },
                rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(_) => {
                    "TLS: handshake refused (no common protocol version or cipher suite?)"
                }
                _ => "TLS: handshake failed",
            });
        }
    }
    None
}
