//! Vigil over MQTT (issue 17, hospital scale): a bedside or gateway publishes its ward's
//! live state to a broker ([`Publisher`]), and a central station rebuilds every ward of a
//! site from the broker ([`Mirror`]) instead of connecting to each bed. Topic tree,
//! payloads, QoS and retain: `docs/mqtt.md` (and the feed contract's MQTT section).
//!
//! MQTT 5 (`rumqttc::v5`): its retain flag on delivery tells a retained replay (at
//! subscribe) from a live message (§3.3.1.3 with Retain As Published = 0), which is how the
//! mirror tells "heard now" from "was once said". TLS is rustls with ring (no OpenSSL).

pub mod central;
pub mod mirror;
pub mod payload;
pub mod publisher;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use mirror::{Liveness, Mirror, MirrorConfig, MirrorWard};
pub use publisher::{Publisher, PublisherConfig, PublisherStats};
pub use vigil_core::site::check_topic_segment;

use rumqttc::v5::MqttOptions;
use rumqttc::{TlsConfiguration, Transport};

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A setting that cannot work (a bad URL, a topic level with a wildcard, …).
    #[error("{0}")]
    Config(String),
    /// A CA, certificate or key file that does not load.
    #[error("mqtt TLS: {0}")]
    Tls(String),
}

/// Where the broker is and how to authenticate to it.
#[derive(Clone)]
pub struct Broker {
    /// `mqtts://host[:port]` or `mqtt://<loopback>[:port]` ([`vigil_core::site::check_mqtt_broker`]).
    pub url: String,
    /// PEM CA certificate(s) the broker's certificate must chain to; None: the OS roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for brokers that require them.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.url)
            .field("ca", &self.ca)
            .field("client_cert", &self.client_cert)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker with no TLS files and no credentials.
    pub fn new(url: impl Into<String>) -> Broker {
        Broker {
            url: url.into(),
            ca: None,
            client_cert: None,
            client_key: None,
            username: None,
            password: None,
        }
    }

    /// From the site configuration's `mqtt` section; the password from the variable it
    /// names (an error if that variable is not set: a configured password must not be
    /// silently left out).
    pub fn from_site(m: &vigil_core::site::MqttSite) -> Result<Broker, MqttError> {
        Self::from_fields(&m.broker, &m.ca, &m.client_cert, &m.client_key, &m.username, &m.password_env)
    }

    /// From the central station's `central.mqtt` section: the same fields, the same rules.
    pub fn from_central(m: &vigil_core::central::CentralMqtt) -> Result<Broker, MqttError> {
        Self::from_fields(&m.broker, &m.ca, &m.client_cert, &m.client_key, &m.username, &m.password_env)
    }

    fn from_fields(
        broker: &str,
        ca: &Option<PathBuf>,
        client_cert: &Option<PathBuf>,
        client_key: &Option<PathBuf>,
        username: &Option<String>,
        password_env: &Option<String>,
    ) -> Result<Broker, MqttError> {
        let password = match password_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                MqttError::Config(format!(
                    "mqtt: the password variable {var} named by password_env is not set"
                ))
            })?),
        };
        Ok(Broker {
            url: broker.to_string(),
            ca: ca.clone(),
            client_cert: client_cert.clone(),
            client_key: client_key.clone(),
            username: username.clone(),
            password,
        })
    }

    /// Client options for this broker: address, TLS, credentials. `client_id` must be
    /// unique per connection at the broker (a second client with the same id takes over).
    pub(crate) fn options(&self, client_id: &str, keep_alive: Duration) -> Result<MqttOptions, MqttError> {
        let url = vigil_core::site::check_mqtt_broker(&self.url).map_err(MqttError::Config)?;
        let tls = url.scheme() == "mqtts";
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(MqttError::Config("mqtt broker: no host".into())),
        };
        // IANA: 1883 MQTT, 8883 MQTT over TLS.
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let mut o = MqttOptions::new(client_id, host, port);
        // rumqttc refuses (panics on) less than 5 s.
        o.set_keep_alive(keep_alive.max(Duration::from_secs(5)));
        o.set_connection_timeout(5);
        // Vigil's payloads are small (a device view is under 1 KiB); 256 KiB leaves room
        // for a bed with many alarms without letting a broker push arbitrary sizes.
        o.set_max_packet_size(Some(256 * 1024));
        if tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
                self.tls_config()?,
            ))));
        } else if self.password.is_some() {
            // Loopback only (checked above), but a password in the clear is still refused:
            // anyone on the host could read it off the loopback interface.
            return Err(MqttError::Config(
                "mqtt: a password is sent only over mqtts:// (TLS)".into(),
            ));
        }
        if let Some(user) = &self.username {
            o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        Ok(o)
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, MqttError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let tls = |m: String| MqttError::Tls(m);
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect())
                    .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(tls(format!("CA file {}: no certificate", path.display())));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err(tls(
                        "no CA given (mqtt.ca) and no system root certificates found".into()
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_root_certificates(roots);
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect())
                    .map_err(|e| tls(format!("client certificate {}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls(format!("client key {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls(format!("client certificate: {e}")))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err(tls(
                "client certificate and key are given together or not at all".into()
            )),
        }
    }
}

/// `vigil/<site>/<ward>`, with both levels checked.
pub fn ward_root(site: &str, ward: &str) -> Result<String, MqttError> {
    check_topic_segment("site", site).map_err(MqttError::Config)?;
    check_topic_segment("ward", ward).map_err(MqttError::Config)?;
    Ok(format!("vigil/{site}/{ward}"))
}

/// A client id unique per process and purpose (MQTT 5 §3.1.3.1: the broker drops an
/// older connection with the same id).
pub(crate) fn client_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:08x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
