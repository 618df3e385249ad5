//! Site configuration: what an installer sets for a hospital, in JSON.
//!
//! Two files are read. The installer's — `$VIGIL_SITE_CONFIG`, else the system-wide place an
//! MSI/DMG/deb installer drops it (`/etc/vigil/site.json`, `%ProgramData%\Vigil\site.json`,
//! `/Library/Application Support/Vigil/site.json`) — decides the sections that steer
//! clinical behaviour and where data goes ([`PROTECTED`]: `alarms`, `fhir`, `ble`). The
//! data directory's `site.json` may set the workstation's `beds` and `storage`; it may set a
//! protected section only when no one but an administrator can write it (a gateway's
//! root-owned data directory), and a file anyone else can change that sets one is refused
//! with an error naming the file and why — never silently half-applied.
//!
//! ```json
//! { "beds": 16,
//!   "alarms": { "adult": { "spo2": { "low": 92 } } },
//!   "fhir": { "base_url": "https://fhir.example.org/R4",
//!             "mrn_system": "urn:oid:1.2.3.4",
//!             "smart": { "token_url": "https://fhir.example.org/auth/token",
//!                        "client_id": "vigil-ward-3", "key_file": "/etc/vigil/smart-key.pem",
//!                        "alg": "ES384", "kid": "ward-3-2026" },
//!             "ca_bundle": "/etc/vigil/hospital-ca.pem",
//!             "gateway_id": "ward-3-station-1", "allow_simulated": false,
//!             "outage_alarm_s": 900, "dead_letter_alarm": 1 } }
//! ```
//! Secrets are never in this file: a static token comes from the environment
//! variable it names (`bearer_token_env`), a SMART key from a 0600 key file.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use std::path::{Path, PathBuf};

/// The effective configuration: both files combined (see [`SiteConfig::load`]).
#[derive(Debug, Clone, Default)]
pub struct SiteConfig {
    /// Beds at this workstation (1 to [`MAX_BEDS`]; `--beds` overrides it).
    pub beds: Option<u16>,
    /// Alarm preset overlay (see `vigil_alarms::SitePreset::from_json`).
    pub alarms: Option<serde_json::Value>,
    pub fhir: Option<FhirSite>,
    /// The Bluetooth policy (`ble.require_bonded`).
    pub ble: Option<BleSite>,
    /// The store key's source, when the installer fixes it.
    pub key: Option<KeySite>,
    pub storage: StorageSite,
    /// Sign-in policy: the idle lock (`session.idle_lock_s`).
    pub session: SessionSite,
    /// The ward's IANA time zone (`"timezone": "Europe/London"`): reports'
    /// local hours. A workstation setting; checked when the file is read.
    pub timezone: Option<chrono_tz::Tz>,
    /// Where updates come from (`updates.endpoint`); None: updates are off.
    pub updates: Option<UpdatesSite>,
    /// The live feed for central stations (`feed`, docs/feed.md); None: no feed.
    pub feed: Option<FeedSite>,
    /// The ward's live state to an MQTT broker (`mqtt`, issue 17); None: not published.
    pub mqtt: Option<MqttSite>,
    /// The feeds a central station watches (`central.feeds`, see [`crate::central`]).
    pub central: Option<crate::central::CentralSite>,
    /// The first file any value was taken from (for the operator's log line).
    pub source: Option<PathBuf>,
    /// The files read, with what was taken from each (About panel, `vigil config check`).
    pub files: Vec<SiteFile>,
}

/// Sign-in policy: `"session": {"idle_lock_s": 300}`. After that long without input at
/// the workstation the signed-in user is signed out: names, MRNs and DOBs leave the
/// screen, monitoring and alarms go on, any action needs a sign-in again. 0 = never;
/// shorter than [`IDLE_LOCK_MIN`] counts as that (the screen reports input every few
/// seconds, and a nurse must not be signed out while typing). Protected: only the installer's (or an administrator-only) file sets it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSite {
    #[serde(default = "default_idle_lock_s")]
    pub idle_lock_s: u64,
}

impl Default for SessionSite {
    fn default() -> Self {
        SessionSite {
            idle_lock_s: default_idle_lock_s(),
        }
    }
}

fn default_idle_lock_s() -> u64 {
    300
}

/// The shortest idle lock, in seconds.
pub const IDLE_LOCK_MIN: u64 = 30;

impl SessionSite {
    /// The idle time after which the session ends (None: never).
    pub fn idle_lock(&self) -> Option<std::time::Duration> {
        (self.idle_lock_s > 0)
            .then(|| std::time::Duration::from_secs(self.idle_lock_s.clamp(IDLE_LOCK_MIN, 24 * 3600)))
    }
}

/// Signed updates (issue 16): `"updates": {"endpoint": "https://updates.example.org/vigil/{{target}}/{{arch}}/{{current_version}}"}`.
/// Hospital IT decides whether and from where a workstation updates: no section = updates
/// off. Protected (only the installer's or an administrator-only file): a nurse's account
/// must not point the workstation at another server. The artifact's signature is checked
/// against the key built into the app whatever the server, so this decides only where
/// from and whether at all. Checked as untrusted input ([`crate::update::check_endpoint`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesSite {
    pub endpoint: String,
}

/// The live feed (issue 17, docs/feed.md): `"feed": {"listen": "0.0.0.0:8443", "tls_cert":
/// "/etc/vigil/feed.pem", "tls_key": "/etc/vigil/feed.key", "token_env": "VIGIL_FEED_TOKEN"}`.
/// It sends the ward's numerics and alarms off this machine and takes acknowledgements back:
/// protected, like `fhir`. Without a certificate it serves plain ws on loopback only; the token
/// is never in the file, only the name of the variable holding it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSite {
    /// `host:port` (port 0: any free port, printed at start).
    pub listen: String,
    /// PEM certificate chain and key for wss (both or neither).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The environment variable holding the bearer token: `VIGIL_FEED_<NAME>`.
    #[serde(default = "default_feed_token_env")]
    pub token_env: String,
    /// The station's name in every snapshot (default: the host name).
    #[serde(default)]
    pub name: Option<String>,
}

/// The feed token's variable when the site names none.
pub const FEED_TOKEN_ENV: &str = "VIGIL_FEED_TOKEN";

fn default_feed_token_env() -> String {
    FEED_TOKEN_ENV.into()
}

impl FeedSite {
    /// Checks a feed section (untrusted input); the message names the field.
    pub fn check(&self) -> Result<(), String> {
        check_listen(&self.listen).map_err(|e| format!("feed.listen: {e}"))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("feed: set both tls_cert and tls_key (wss), or neither (plain ws on loopback only)".into());
        }
        if self.tls_cert.is_none() {
            let host = self.listen.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or("");
            if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                if !ip.is_loopback() {
                    return Err(format!(
                        "feed.listen {:?} is not loopback: plain ws on loopback only; set tls_cert and tls_key to listen there",
                        self.listen
                    ));
                }
            }
        }
        let env_ok = self.token_env.len() > "VIGIL_FEED_".len()
            && self.token_env.starts_with("VIGIL_FEED_")
            && self.token_env.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !env_ok {
            // Naming any variable would let a site file publish e.g. VIGIL_PASSPHRASE as the token.
            return Err(format!(
                "feed.token_env must name a variable VIGIL_FEED_<NAME> (capitals, digits, _), not {:?}",
                self.token_env
            ));
        }
        if let Some(n) = &self.name {
            if n.trim().is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
                return Err("feed.name: 1 to 64 characters, no control characters".into());
            }
        }
        Ok(())
    }
}

/// `host:port`: a host name or IP (IPv6 in brackets) and a port number.
pub fn check_listen(listen: &str) -> Result<(), String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| format!("{listen:?} is not host:port"))?;
    port.parse::<u16>()
        .map_err(|_| format!("{listen:?}: the port must be a number 0 to 65535"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let ok_name = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok_name || host.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!("{listen:?}: the host must be a name or an IP address"))
    }
}

/// Publishing the ward to an MQTT broker (issue 17, `vigil-mqtt`, docs/mqtt.md):
/// `"mqtt": {"broker": "mqtts://broker.example.org:8883", "site": "north", "ward": "icu-3",
/// "ca": "/etc/vigil/mqtt-ca.pem", "username": "ward-3", "password_env": "VIGIL_MQTT_PASSWORD"}`.
/// Protected like `fhir`: it decides where patient data goes. Checked as untrusted input
/// ([`check_mqtt`]); the password comes from the environment variable it names, never
/// from the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSite {
    /// `mqtts://host[:port]`, or `mqtt://` to a loopback address only (no TLS).
    pub broker: String,
    /// Topic levels `vigil/<site>/<ward>/…`.
    pub site: String,
    pub ward: String,
    /// CA certificate(s), PEM, the broker's certificate must chain to (default: the
    /// operating system's roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require them; both or neither.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// The variable holding the password: `VIGIL_MQTT_<NAME>`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Commands (acknowledge, pause) from the broker. Refused when set: every command is
    /// authorised by a signed-in user's role, and an MQTT message carries no sign-in.
    #[serde(default)]
    pub accept_commands: bool,
}

/// The prefix of the only environment variables a site file may take the MQTT password from.
pub const MQTT_PASSWORD_ENV_PREFIX: &str = "VIGIL_MQTT_";

/// Checks a broker address as untrusted input: `mqtts://host[:port]` (TLS), or `mqtt://` to
/// a loopback address (127.0.0.0/8, ::1, localhost) only, so patient data never crosses a
/// network in the clear. No path, query, user or password in the URL.
pub fn check_mqtt_broker(broker: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(broker).map_err(|e| format!("mqtt broker {broker:?}: {e}"))?;
    let host = u.host().ok_or_else(|| format!("mqtt broker {broker:?}: no host"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("mqtt broker: no user or password in the URL (username, password_env)".into());
    }
    if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
        return Err(format!("mqtt broker {broker:?}: only scheme, host and port"));
    }
    let loopback = match host {
        // `mqtt:` is not a WHATWG special scheme: its IPv4 host arrives as a name.
        url::Host::Domain(d) => {
            d.eq_ignore_ascii_case("localhost") || d.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        }
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    };
    match u.scheme() {
        "mqtts" => Ok(u),
        "mqtt" if loopback => Ok(u),
        "mqtt" => Err(format!(
            "mqtt broker {broker:?}: plain mqtt:// only to a loopback address; use mqtts:// (TLS)"
        )),
        other => Err(format!("mqtt broker {broker:?}: scheme {other:?}, expected mqtts:// (or mqtt:// on loopback)")),
    }
}

/// One topic level taken from a site, ward, bed or device id (MQTT 5.0 §4.7: `/` separates
/// levels, `+` and `#` are wildcards; §1.5.4: no U+0000). Refused rather than escaped, so a
/// subscriber's filter always means what it says.
pub fn check_topic_segment(what: &str, s: &str) -> Result<(), String> {
    let why = if s.is_empty() {
        "is empty"
    } else if s.len() > 128 {
        "is longer than 128 bytes"
    } else if s.contains(['/', '+', '#']) {
        "contains '/', '+' or '#' (MQTT topic separator or wildcard)"
    } else if s.chars().any(char::is_control) {
        "contains a control character"
    } else if s.starts_with('$') {
        "starts with '$' (reserved for broker topics)"
    } else {
        return Ok(());
    };
    Err(format!("mqtt {what} {s:?} {why}"))
}

/// `mqtt` as untrusted input (see [`MqttSite`]).
pub fn check_mqtt(m: &MqttSite) -> Result<(), String> {
    check_mqtt_connection(
        "mqtt",
        &m.broker,
        m.client_cert.is_some(),
        m.client_key.is_some(),
        m.password_env.as_deref(),
    )?;
    check_topic_segment("site", &m.site)?;
    check_topic_segment("ward", &m.ward)?;
    if m.accept_commands {
        return Err("mqtt.accept_commands is not supported: acknowledge and pause need a signed-in user, \
                    and an MQTT message carries no sign-in (use the bedside screen)"
            .into());
    }
    Ok(())
}

/// The connection part of an MQTT section (`mqtt`, `central.mqtt`; `section` names it in
/// messages): the broker address ([`check_mqtt_broker`]), client certificate and key
/// together, and the password only from a `VIGIL_MQTT_<NAME>` variable.
pub fn check_mqtt_connection(
    section: &str,
    broker: &str,
    client_cert: bool,
    client_key: bool,
    password_env: Option<&str>,
) -> Result<(), String> {
    check_mqtt_broker(broker)?;
    if client_cert != client_key {
        return Err(format!("{section}.client_cert and {section}.client_key are set together or not at all"));
    }
    if let Some(name) = password_env {
        let ok = name.len() > MQTT_PASSWORD_ENV_PREFIX.len()
            && name.starts_with(MQTT_PASSWORD_ENV_PREFIX)
            && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(format!(
                "{section}.password_env must name a variable {MQTT_PASSWORD_ENV_PREFIX}<NAME> (capitals, digits, _), not {name:?}"
            ));
        }
    }
    Ok(())
}

/// Where the store lives: when to warn that the disk is filling.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSite {
    /// Free space (MB) below which every bed shows "low disk space", before
    /// the disk is full and recording stops. Default 200 MB (16 beds at 1 Hz
    /// store well under 50 MB a day).
    #[serde(default = "default_low_disk_mb")]
    pub low_disk_mb: u64,
}

impl Default for StorageSite {
    fn default() -> Self {
        StorageSite {
            low_disk_mb: default_low_disk_mb(),
        }
    }
}

fn default_low_disk_mb() -> u64 {
    200
}

/// Bluetooth LE link policy: `"ble": {"require_bonded": true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BleSite {
    /// Refuse data from links that are not bonded (or whose bonding the
    /// platform cannot tell: Windows and macOS today), with a technical
    /// alarm at the bed. Off: an unbonded link is labelled "not bonded" on
    /// the screen, never silently trusted. Default off.
    #[serde(default)]
    pub require_bonded: bool,
}

/// The most beds one workstation or gateway serves.
pub const MAX_BEDS: u16 = 64;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSite {
    pub base_url: String,
    /// Identifier system of the hospital's MRNs, for Patient search.
    #[serde(default = "default_mrn_system")]
    pub mrn_system: String,
    /// Name of an environment variable holding a static bearer token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    #[serde(default)]
    pub smart: Option<SmartSite>,
    /// PEM bundle of the site CA to trust for the server certificate.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Trust only the site CA, not the public web roots.
    #[serde(default)]
    pub site_ca_only: bool,
    /// This gateway's identity (its FHIR PhgDevice): must be set, unique per workstation;
    /// sync refuses to start with the default (see `fhir_devices::gateway_info`).
    #[serde(default = "default_gateway")]
    pub gateway_id: String,
    /// Upload readings of simulated devices (labelled HTEST test data) to this server. Off by
    /// default: a production server never receives simulated readings.
    #[serde(default)]
    pub allow_simulated: bool,
    /// How long the server may be unreachable (no successful upload while
    /// readings wait) before every bed shows a delivery-failure technical
    /// alarm (IEC 60601-1-8 §6.11.2). Default 15 minutes.
    #[serde(default = "default_outage_alarm_s")]
    pub outage_alarm_s: u64,
    /// Readings set aside (refused by the server, or parked after failing again
    /// and again) from which every bed shows the delivery-failure technical
    /// alarm, until they are re-queued (`vigil fhir requeue`). Default 1: any;
    /// 0 = never.
    #[serde(default = "default_dead_letter_alarm")]
    pub dead_letter_alarm: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmartSite {
    pub token_url: String,
    pub client_id: String,
    pub key_file: PathBuf,
    #[serde(default = "default_alg")]
    pub alg: String,
    /// Key id of the client's public key in the server's JWKS: required (SMART Backend
    /// Services puts it in every assertion's header).
    pub kid: String,
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_mrn_system() -> String {
    "urn:vigil:mrn".into()
}
fn default_outage_alarm_s() -> u64 {
    15 * 60
}
/// The `gateway_id` when site.json names none: not an identity, sync refuses it.
pub const DEFAULT_GATEWAY_ID: &str = "vigil-gateway";

fn default_dead_letter_alarm() -> u64 {
    1
}
fn default_gateway() -> String {
    DEFAULT_GATEWAY_ID.into()
}
fn default_alg() -> String {
    "ES384".into()
}
fn default_scope() -> String {
    "system/Observation.write system/Device.write system/Patient.read".into()
}

/// The system-wide place an installer drops the site configuration.
pub fn system_path() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("ProgramData").map(|p| PathBuf::from(p).join("Vigil").join("site.json"))
    } else if cfg!(target_os = "macos") {
        Some(PathBuf::from("/Library/Application Support/Vigil/site.json"))
    } else {
        Some(PathBuf::from("/etc/vigil/site.json"))
    }
}

/// Where the installer's file is looked for: `$VIGIL_SITE_CONFIG` (another place for the
/// same file: it is trusted by who can write it, not by how it was named), else
/// [`system_path`].
pub fn installer_path() -> Option<PathBuf> {
    std::env::var_os("VIGIL_SITE_CONFIG")
        .map(PathBuf::from)
        .or_else(system_path)
}

/// The sections that steer clinical behaviour or where data goes: taken only from a file that
/// only an administrator can change (issue 13 §5). A nurse's account must not be able to
/// widen alarm limits, point the upload (and its CA) at another server, accept unbonded
/// Bluetooth links, or show another server's beds as a station's at the central station.
pub const PROTECTED: [&str; 9] = ["alarms", "fhir", "ble", "key", "session", "updates", "feed", "mqtt", "central"];

/// Where the store's key comes from, when the installer decides it for the site (issue 13
/// §2): `"passphrase"` (typed at each start, or `VIGIL_PASSPHRASE`), `"key_file"` (with
/// `key_file`), or `"keychain"` (the OS keychain of the user running Vigil).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum KeyChoice {
    Passphrase,
    KeyFile,
    Keychain,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySite {
    pub source: KeyChoice,
    /// The site key file, for `"source": "key_file"`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// One file as written, before the two are combined.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFileContent {
    #[serde(default)]
    beds: Option<u16>,
    #[serde(default)]
    alarms: Option<serde_json::Value>,
    #[serde(default)]
    fhir: Option<FhirSite>,
    #[serde(default)]
    ble: Option<BleSite>,
    #[serde(default)]
    key: Option<KeySite>,
    #[serde(default)]
    storage: Option<StorageSite>,
    #[serde(default)]
    session: Option<SessionSite>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    updates: Option<UpdatesSite>,
    #[serde(default)]
    feed: Option<FeedSite>,
    #[serde(default)]
    mqtt: Option<MqttSite>,
    #[serde(default)]
    central: Option<crate::central::CentralSite>,
}

impl SiteFileContent {
    fn protected_sections(&self) -> Vec<&'static str> {
        let set = [
            self.alarms.is_some(),
            self.fhir.is_some(),
            self.ble.is_some(),
            self.key.is_some(),
            self.session.is_some(),
            self.updates.is_some(),
            self.feed.is_some(),
            self.mqtt.is_some(),
            self.central.is_some(),
        ];
        PROTECTED.iter().zip(set).filter(|(_, s)| *s).map(|(n, _)| *n).collect()
    }
}

/// Which of the two files a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SiteRole {
    /// The installer's file (`/etc/vigil/site.json` or `$VIGIL_SITE_CONFIG`).
    Installer,
    /// `<data dir>/site.json`: workstation settings only, unless only an administrator can
    /// write it.
    Local,
}

/// A configuration file in use, for the About panel and `vigil config check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SiteFile {
    pub role: SiteRole,
    pub path: String,
    /// SHA-256 of the file's bytes (hex), so an installer can tell which version is in use.
    pub sha256: String,
    /// Only an administrator can change it (see [`writable_by_others`]).
    pub admin_only: bool,
    /// The sections taken from this file.
    pub sections: Vec<String>,
}

impl SiteConfig {
    /// Reads the installer's file and the data directory's, and combines them: the
    /// installer's file decides `alarms`, `fhir` and `ble` when it sets them; the local file
    /// may set them only when no one but an administrator can write it (an error otherwise,
    /// never silently ignored); `beds` and `storage` in the local file override the
    /// installer's. No file found is the default configuration.
    pub fn load(data_dir: &Path) -> Result<SiteConfig, ConfigError> {
        Self::load_from(installer_path().as_deref(), &data_dir.join("site.json"))
    }

    /// [`load`](Self::load) with both paths given (`vigil config check <file>`, tests).
    pub fn load_from(installer: Option<&Path>, local: &Path) -> Result<SiteConfig, ConfigError> {
        let mut c = SiteConfig::default();
        let mut session_taken = false;
        let files = [
            installer.map(|p| (p, SiteRole::Installer)),
            Some((local, SiteRole::Local)),
        ];
        for (path, role) in files.into_iter().flatten() {
            let Some((mut file, content, trust)) = read_file(path, role)? else {
                continue;
            };
            let protected = content.protected_sections();
            if let (false, Err(why)) = (protected.is_empty(), trust) {
                return Err(refused(path, &protected, &why));
            }
            let mut taken = Vec::new();
            let mut take = |name: &str, set: bool, taken_before: bool| {
                if set && !taken_before {
                    taken.push(name.to_string());
                    true
                } else {
                    if set {
                        tracing::warn!(section = name, path = %path.display(),
                            "ignored: the installer's site configuration decides this section");
                    }
                    false
                }
            };
            // The installer's file is read first: what it sets, a local file cannot change.
            if take("alarms", content.alarms.is_some(), c.alarms.is_some()) {
                c.alarms = content.alarms;
            }
            if take("fhir", content.fhir.is_some(), c.fhir.is_some()) {
                c.fhir = content.fhir;
            }
            if take("ble", content.ble.is_some(), c.ble.is_some()) {
                c.ble = content.ble;
            }
            if take("key", content.key.is_some(), c.key.is_some()) {
                c.key = content.key;
            }
            if take("updates", content.updates.is_some(), c.updates.is_some()) {
                c.updates = content.updates;
            }
            if take("feed", content.feed.is_some(), c.feed.is_some()) {
                c.feed = content.feed;
            }
            if take("mqtt", content.mqtt.is_some(), c.mqtt.is_some()) {
                c.mqtt = content.mqtt;
            }
            if take("central", content.central.is_some(), c.central.is_some()) {
                c.central = content.central;
            }
            if take("session", content.session.is_some(), session_taken) {
                c.session = content.session.unwrap_or_default();
                session_taken = true;
            }
            // Workstation settings: the local file's override the installer's defaults.
            if take("beds", content.beds.is_some(), false) {
                c.beds = content.beds;
            }
            if take("timezone", content.timezone.is_some(), false) {
                c.timezone = content.timezone.as_deref().and_then(|z| z.parse().ok());
            }
            if take("storage", content.storage.is_some(), false) {
                c.storage = content.storage.unwrap_or_default();
            }
            // What this file took (only ever a workstation setting an earlier file also set,
            // never a protected section an earlier file decided) is no longer the earlier's.
            for earlier in c.files.iter_mut() {
                earlier.sections.retain(|s| !taken.contains(s));
            }
            file.sections = taken;
            c.files.push(file);
        }
        c.source = c.files.iter().find(|f| !f.sections.is_empty()).map(|f| PathBuf::from(&f.path));
        Ok(c)
    }

    /// The ward's time zone and where it came from: `timezone` in the site
    /// configuration, else the operating system's zone, else UTC.
    pub fn time_zone(&self) -> (chrono_tz::Tz, &'static str) {
        if let Some(z) = self.timezone {
            return (z, "site configuration");
        }
        match iana_time_zone::get_timezone().ok().and_then(|n| n.parse().ok()) {
            Some(z) => (z, "operating system"),
            None => (chrono_tz::UTC, "default (UTC)"),
        }
    }

    /// The site's alarm preset (the standard one when none is configured).
    pub fn alarm_preset(&self) -> Result<vigil_alarms::SitePreset, ConfigError> {
        match &self.alarms {
            None => Ok(vigil_alarms::SitePreset::standard()),
            Some(v) => vigil_alarms::SitePreset::from_json(&v.to_string())
                .map_err(|e| ConfigError::Site(format!("alarms: {e}"))),
        }
    }
}

/// One site file read and checked: the file, its content, and whether only an
/// administrator can change it (why not, if not).
type ReadFile = (SiteFile, SiteFileContent, Result<(), String>);

/// Reads and checks one file; `None` when there is none.
fn read_file(path: &Path, role: SiteRole) -> Result<Option<ReadFile>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Site(format!("{}: {e}", path.display()))),
    };
    let at = |msg: String| ConfigError::Site(format!("{}: {msg}", path.display()));
    let content: SiteFileContent = serde_json::from_slice(&bytes).map_err(|e| at(e.to_string()))?;
    if content.beds.is_some_and(|n| !(1..=MAX_BEDS).contains(&n)) {
        return Err(at(format!("beds must be 1 to {MAX_BEDS}")));
    }
    if let Some(name) = content.fhir.as_ref().and_then(|f| f.bearer_token_env.as_deref()) {
        check_token_env(name).map_err(at)?;
    }
    if let Some(z) = content.timezone.as_deref() {
        z.parse::<chrono_tz::Tz>()
            .map_err(|_| at(format!("timezone {z:?} is not an IANA time zone name (e.g. \"Europe/London\")")))?;
    }
    if let Some(u) = &content.updates {
        crate::update::check_endpoint(&u.endpoint).map_err(at)?;
    }
    if let Some(f) = &content.feed {
        f.check().map_err(at)?;
    }
    if let Some(m) = &content.mqtt {
        check_mqtt(m).map_err(at)?;
    }
    if let Some(c) = &content.central {
        c.check().map_err(at)?;
    }
    if let Some(k) = &content.key {
        if (k.source == KeyChoice::KeyFile) != k.key_file.is_some() {
            return Err(at("key.key_file is set with \"source\": \"key_file\", and only then".into()));
        }
    }
    let trust = admin_only(path);
    let file = SiteFile {
        role,
        path: path.display().to_string(),
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes)),
        admin_only: trust.is_ok(),
        sections: Vec::new(),
    };
    Ok(Some((file, content, trust)))
}

/// The static token's variable must be one of Vigil's FHIR variables: naming any variable
/// would let a site file send e.g. `VIGIL_PASSPHRASE` to the server it names.
fn check_token_env(name: &str) -> Result<(), String> {
    let ok = name.len() > TOKEN_ENV_PREFIX.len()
        && name.starts_with(TOKEN_ENV_PREFIX)
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "fhir.bearer_token_env must name a variable {TOKEN_ENV_PREFIX}<NAME> (capitals, digits, _), not {name:?}"
        ))
    }
}

/// The prefix of the only environment variables a site file may take a token from.
pub const TOKEN_ENV_PREFIX: &str = "VIGIL_FHIR_";

fn refused(path: &Path, sections: &[&str], why: &str) -> ConfigError {
    ConfigError::Site(format!(
        "{}: sets {} but {why}; alarm limits, the FHIR server, the Bluetooth policy, the \
         key source, the update server, the live feed, the MQTT broker and the central station's feeds are taken only from a file only an administrator can change (the \
         installer's {})",
        path.display(),
        sections.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        system_path().map(|p| p.display().to_string()).unwrap_or_else(|| "site.json".into()),
    ))
}

/// `Ok` when no one but an administrator can change the file: on Unix the file and every
/// directory above it are owned by root and not writable by group or others (a directory
/// with the sticky bit, like /tmp, only lets its owners rename entries, so it passes) — the
/// rule sudo and sshd apply to their own files. `Err` says why not, for the operator.
///
/// Windows: ACLs are not read; only the installer's place (`%ProgramData%\Vigil`, which the
/// MSI creates writable by Administrators only) counts as administrators-only, and
/// `$VIGIL_SITE_CONFIG` or the data directory (the user's own `%APPDATA%`) never do.
#[cfg(unix)]
pub fn admin_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let real = path
        .canonicalize()
        .map_err(|e| format!("it cannot be resolved ({e})"))?;
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if meta.uid() != 0 {
        return Err(format!("it is owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("its mode {:o} lets group or others write it", meta.mode() & 0o777));
    }
    for dir in real.ancestors().skip(1) {
        let m = std::fs::metadata(dir).map_err(|e| e.to_string())?;
        let sticky = m.mode() & 0o1000 != 0;
        if m.uid() != 0 || (m.mode() & 0o022 != 0 && !sticky) {
            return Err(format!(
                "its directory {} can be changed by uid {} or by others",
                dir.display(),
                m.uid()
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn admin_only(path: &Path) -> Result<(), String> {
    let is_system = system_path()
        .and_then(|s| s.canonicalize().ok())
        .zip(path.canonicalize().ok())
        .is_some_and(|(s, p)| s == p);
    if is_system {
        Ok(())
    } else {
        Err("only the installer's %ProgramData%\\Vigil\\site.json counts as administrators-only on Windows".into())
    }
}

/// One line of `vigil config check`: a setting, its effective value, where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub key: String,
    pub value: String,
    /// The file's path, or "default".
    pub source: String,
}

impl SiteConfig {
    /// Every setting with its effective value and source, for installers
    /// (`vigil config check`). Secrets are never in the file, so none are shown.
    pub fn effective(&self) -> Vec<Effective> {
        let source = |section: &str| {
            self.files
                .iter()
                .find(|f| f.sections.iter().any(|s| s == section))
                .map(|f| f.path.clone())
                .unwrap_or_else(|| "default".into())
        };
        let mut out = Vec::new();
        let mut push = |key: String, value: String, section: &str| {
            out.push(Effective {
                key,
                value,
                source: source(section),
            })
        };
        push(
            "beds".into(),
            self.beds.map_or("not set (4, or --beds)".into(), |b| b.to_string()),
            "beds",
        );
        push(
            "timezone".into(),
            match self.timezone {
                Some(z) => z.name().to_string(),
                None => format!("not set ({}, {})", self.time_zone().0.name(), self.time_zone().1),
            },
            "timezone",
        );
        push(
            "alarms".into(),
            self.alarms
                .as_ref()
                .map_or("the standard preset".into(), |a| format!("the standard preset with {a}")),
            "alarms",
        );
        match &self.fhir {
            None => push("fhir".into(), "not set (no upload)".into(), "fhir"),
            Some(f) => {
                let json = serde_json::to_value(f).unwrap_or_default();
                flatten("fhir", &json, &mut |k, v| push(k, v, "fhir"));
            }
        }
        let ble = serde_json::to_value(self.ble.clone().unwrap_or_default()).unwrap_or_default();
        flatten("ble", &ble, &mut |k, v| push(k, v, "ble"));
        match &self.key {
            None => push("key.source".into(), "not fixed (chosen at first start)".into(), "key"),
            Some(k) => {
                let json = serde_json::to_value(k).unwrap_or_default();
                flatten("key", &json, &mut |k, v| push(k, v, "key"));
            }
        }
        match &self.updates {
            None => push("updates.endpoint".into(), "not set (updates off)".into(), "updates"),
            Some(u) => push("updates.endpoint".into(), u.endpoint.clone(), "updates"),
        }
        match &self.feed {
            None => push("feed".into(), "not set (no live feed)".into(), "feed"),
            Some(f) => {
                let json = serde_json::to_value(f).unwrap_or_default();
                flatten("feed", &json, &mut |k, v| push(k, v, "feed"));
            }
        }
        match &self.mqtt {
            None => push("mqtt".into(), "not set (not published)".into(), "mqtt"),
            Some(m) => {
                let json = serde_json::to_value(m).unwrap_or_default();
                flatten("mqtt", &json, &mut |k, v| push(k, v, "mqtt"));
            }
        }
        match &self.central {
            None => push("central.feeds".into(), "not set".into(), "central"),
            Some(c) => {
                for f in &c.feeds {
                    let what = format!("{} (token from {})", f.url, f.token_env);
                    push(format!("central.feeds.{}", f.name.trim()), what, "central");
                }
                if let Some(m) = &c.mqtt {
                    let json = serde_json::to_value(m).unwrap_or_default();
                    flatten("central.mqtt", &json, &mut |k, v| push(k, v, "central"));
                }
            }
        }
        let storage = serde_json::to_value(&self.storage).unwrap_or_default();
        flatten("storage", &storage, &mut |k, v| push(k, v, "storage"));
        let session = serde_json::to_value(&self.session).unwrap_or_default();
        flatten("session", &session, &mut |k, v| push(k, v, "session"));
        out
    }
}

/// `{"a": {"b": 1}}` under `prefix` as `prefix.a.b = 1`, in key order.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut dyn FnMut(String, String)) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Null => out(prefix.to_string(), "not set".into()),
        serde_json::Value::String(s) => out(prefix.to_string(), s.clone()),
        other => out(prefix.to_string(), other.to_string()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Writes `json` to `dir/name` (mode 0644) and returns its path.
    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, json).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Whether files this test creates are root's: only then can one be administrators-only.
    fn running_as_root(dir: &Path) -> bool {
        std::fs::metadata(dir).unwrap().uid() == 0
    }

    #[test]
    fn a_feed_section_is_checked_as_untrusted_input() {
        let dir = tempfile::tempdir().unwrap();
        let bad = [
            (r#"{"listen": "nowhere"}"#, "host:port"),
            (r#"{"listen": "127.0.0.1:99999"}"#, "port"),
            (r#"{"listen": "0.0.0.0:8443"}"#, "loopback"),
            (r#"{"listen": "127.0.0.1:0", "tls_cert": "/etc/vigil/feed.pem"}"#, "both"),
            (r#"{"listen": "127.0.0.1:0", "token_env": "VIGIL_PASSPHRASE"}"#, "VIGIL_FEED_"),
            (r#"{"listen": "127.0.0.1:0", "token": "secret"}"#, "unknown field"),
        ];
        for (feed, says) in bad {
            let p = write(dir.path(), "installer.json", &format!(r#"{{"feed": {feed}}}"#));
            let e = SiteConfig::load_from(Some(&p), &dir.path().join("none.json")).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("installer.json"), "{feed}: {e}");
        }
        let ok = r#"{"feed": {"listen": "0.0.0.0:8443", "tls_cert": "/etc/vigil/feed.pem", "tls_key": "/etc/vigil/feed.key"}}"#;
        let p = write(dir.path(), "installer.json", ok);
        if !running_as_root(dir.path()) {
            return; // a protected section is taken only from an administrators-only file
        }
        let c = SiteConfig::load_from(Some(&p), &dir.path().join("none.json")).unwrap();
        let f = c.feed.unwrap();
        assert_eq!((f.listen.as_str(), f.token_env.as_str()), ("0.0.0.0:8443", FEED_TOKEN_ENV));
    }

    #[test]
    fn the_ward_time_zone_is_an_iana_name_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let local = write(dir.path(), "site.json", r#"{ "timezone": "Europe/London" }"#);
        let c = SiteConfig::load_from(None, &local).unwrap();
        assert_eq!(c.time_zone(), (chrono_tz::Europe::London, "site configuration"));
        let local = write(dir.path(), "site.json", r#"{ "timezone": "Mars/Olympus" }"#);
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("Mars/Olympus") && e.contains("IANA"), "{e}");
        // Unset: the OS zone, else UTC; never an error.
        let local = write(dir.path(), "site.json", r#"{ "beds": 2 }"#);
        let (_, from) = SiteConfig::load_from(None, &local).unwrap().time_zone();
        assert!(from == "operating system" || from == "default (UTC)");
    }

    /// Issue 17: the broker patient data goes to is hospital IT's decision, checked as
    /// untrusted input: TLS unless on this host, topic levels that mean what they say, the
    /// password never in the file.
    #[test]
    fn the_mqtt_broker_is_protected_tls_off_this_host_and_its_topic_levels_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ok = r#"{ "mqtt": { "broker": "mqtts://broker.example.org", "site": "north", "ward": "icu-3",
                      "username": "ward-3", "password_env": "VIGIL_MQTT_PASSWORD" } }"#;
        let local = write(dir.path(), "site.json", ok);
        let c = SiteConfig::load_from(None, &local).unwrap();
        let m = c.mqtt.as_ref().unwrap();
        assert_eq!((m.site.as_str(), m.ward.as_str()), ("north", "icu-3"));
        let row = c.effective().into_iter().find(|e| e.key == "mqtt.broker").unwrap();
        assert_eq!(row.value, "mqtts://broker.example.org");
        for (json, why) in [
            (r#""broker": "mqtt://broker.example.org", "site": "n", "ward": "w""#, "loopback"),
            (r#""broker": "https://broker.example.org", "site": "n", "ward": "w""#, "scheme"),
            (r#""broker": "mqtts://u:p@broker.example.org", "site": "n", "ward": "w""#, "no user or password"),
            (r#""broker": "mqtt://127.0.0.1:1883", "site": "n/s", "ward": "w""#, "mqtt site"),
            (r#""broker": "mqtt://localhost", "site": "n", "ward": "icu+""#, "wildcard"),
            (r#""broker": "mqtt://[::1]", "site": "n", "ward": "w", "password_env": "VIGIL_PASSPHRASE""#, "VIGIL_MQTT_"),
            (r#""broker": "mqtts://b.example", "site": "n", "ward": "w", "client_key": "/k.pem""#, "together"),
            (r#""broker": "mqtts://b.example", "site": "n", "ward": "w", "accept_commands": true"#, "signed-in user"),
            (r#""broker": "mqtts://b.example", "site": "n", "ward": "w", "password": "x""#, "unknown field"),
        ] {
            let local = write(dir.path(), "site.json", &format!(r#"{{ "mqtt": {{ {json} }} }}"#));
            let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
            assert!(e.contains(why), "{json}: {e}");
        }
        assert!(check_mqtt_broker("mqtt://127.0.0.1:1883").is_ok() && check_mqtt_broker("mqtt://[::1]").is_ok());
        // A user-writable file cannot set it.
        let local = write(dir.path(), "site.json", ok);
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("`mqtt`") && e.contains("MQTT broker"), "{e}");
    }

    /// Issue 16: where updates come from is hospital IT's decision, checked as untrusted input.
    #[test]
    fn the_update_server_is_off_by_default_protected_and_https() {
        let dir = tempfile::tempdir().unwrap();
        let local = write(dir.path(), "site.json", r#"{ "beds": 2 }"#);
        let c = SiteConfig::load_from(None, &local).unwrap();
        assert!(c.updates.is_none(), "no section: updates off");
        let row = c.effective().into_iter().find(|e| e.key == "updates.endpoint").unwrap();
        assert_eq!((row.value.as_str(), row.source.as_str()), ("not set (updates off)", "default"));
        // A user-writable file cannot set it (unless root owns it all, as in a container).
        let local = write(dir.path(), "site.json", r#"{ "updates": { "endpoint": "https://updates.example/latest.json" } }"#);
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("`updates`") && e.contains("update server"), "{e}");
        // Plain http to a real host is refused whoever wrote the file.
        let local = write(dir.path(), "site.json", r#"{ "updates": { "endpoint": "http://updates.example/latest.json" } }"#);
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("must use https"), "{e}");
        assert!(!PROTECTED.is_empty() && PROTECTED.contains(&"updates"));
    }

    /// Issue 17: which servers' beds the central station shows is hospital IT's decision,
    /// and a feed token never travels in the clear nor comes from an arbitrary variable.
    #[test]
    fn the_central_stations_feeds_are_protected_tls_and_tokens_from_feed_variables() {
        let dir = tempfile::tempdir().unwrap();
        let ok = r#"{ "central": { "feeds": [ { "name": "Ward 3", "url": "wss://ward3.example/feed", "token_env": "VIGIL_FEED_TOKEN_WARD3" } ] } }"#;
        let local = write(dir.path(), "site.json", ok);
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("`central`"), "{e}");
        let installer = write(dir.path(), "installer.json", ok);
        let c = SiteConfig::load_from(Some(&installer), &dir.path().join("none.json"));
        if running_as_root(dir.path()) {
            let c = c.unwrap();
            assert_eq!(c.central.unwrap().feeds[0].token_env, "VIGIL_FEED_TOKEN_WARD3");
        }
        for (bad, why) in [
            (r#"{ "central": { "feeds": [ { "name": "W", "url": "ws://10.1.1.1:7000/feed", "token_env": "VIGIL_FEED_TOKEN" } ] } }"#, "wss://"),
            (r#"{ "central": { "feeds": [ { "name": "W", "url": "wss://h/feed", "token_env": "VIGIL_PASSPHRASE" } ] } }"#, "token_env"),
            (r#"{ "central": { "feeds": [ { "name": "W", "url": "wss://h/feed", "token": "abc" } ] } }"#, "token"),
        ] {
            let local = write(dir.path(), "site.json", bad);
            let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// Issue 17: the broker a central station reads is the same kind of setting as the
    /// ward's own `mqtt` (where patient data comes from): protected, TLS off this host, the
    /// password only from a `VIGIL_MQTT_` variable, topic levels that mean what they say.
    #[test]
    fn the_central_stations_broker_is_protected_and_checked_like_the_mqtt_section() {
        let dir = tempfile::tempdir().unwrap();
        let ok = r#"{ "central": { "mqtt": { "broker": "mqtts://broker.example.org", "site": "north",
                      "wards": ["icu-3", "ward-7"], "username": "central", "password_env": "VIGIL_MQTT_CENTRAL" } } }"#;
        let local = write(dir.path(), "site.json", ok);
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("`central`"), "{e}");
        let installer = write(dir.path(), "installer.json", ok);
        if running_as_root(dir.path()) {
            let c = SiteConfig::load_from(Some(&installer), &dir.path().join("none.json")).unwrap();
            let m = c.central.as_ref().unwrap().mqtt.as_ref().unwrap();
            assert_eq!(m.wards.as_deref(), Some(&["icu-3".to_string(), "ward-7".to_string()][..]));
            assert!(c.central.as_ref().unwrap().feeds.is_empty());
            let row = c.effective().into_iter().find(|e| e.key == "central.mqtt.broker").unwrap();
            assert_eq!(row.value, "mqtts://broker.example.org");
        }
        for (json, why) in [
            (r#""broker": "mqtt://broker.example.org", "site": "n""#, "loopback"),
            (r#""broker": "mqtts://u:p@broker.example.org", "site": "n""#, "no user or password"),
            (r#""broker": "mqtt://127.0.0.1:1883", "site": "n/s""#, "mqtt site"),
            (r#""broker": "mqtt://127.0.0.1:1883", "site": "n", "wards": ["icu+"]"#, "wildcard"),
            (r#""broker": "mqtt://127.0.0.1:1883", "site": "n", "wards": ["a", "a"]"#, "twice"),
            (r#""broker": "mqtt://127.0.0.1:1883", "site": "n", "wards": []"#, "1 to 64 wards"),
            (r#""broker": "mqtt://[::1]", "site": "n", "password_env": "VIGIL_PASSPHRASE""#, "central.mqtt.password_env"),
            (r#""broker": "mqtts://b.example", "site": "n", "client_key": "/k.pem""#, "together"),
            (r#""broker": "mqtts://b.example", "site": "n", "accept_commands": true"#, "unknown field"),
            (r#""broker": "mqtts://b.example", "site": "n", "password": "x""#, "unknown field"),
        ] {
            let local = write(dir.path(), "site.json", &format!(r#"{{ "central": {{ "mqtt": {{ {json} }} }} }}"#));
            let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
            assert!(e.contains(why), "{json}: {e}");
        }
        let local = write(dir.path(), "site.json", r#"{ "central": {} }"#);
        let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
        assert!(e.contains("feeds, mqtt, or both"), "{e}");
    }

    const FHIR: &str = r#"{ "fhir": { "base_url": "https://fhir.example/R4", "gateway_id": "ward-3" } }"#;

    /// Issue 13 §5: a nurse's account can write the data directory; it must not be able to
    /// widen alarm limits, redirect the upload or relax the Bluetooth policy.
    #[test]
    fn a_site_file_others_can_write_is_refused_for_alarms_fhir_and_ble() {
        let dir = tempfile::tempdir().unwrap();
        let root = running_as_root(dir.path());
        for section in [
            r#"{ "alarms": { "adult": { "spo2": { "low": 70 } } } }"#,
            FHIR,
            r#"{ "ble": { "require_bonded": false } }"#,
        ] {
            let local = write(dir.path(), "site.json", section);
            // World-writable: anyone on the machine could have written it.
            std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
            let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
            assert!(e.contains("sets `") && e.contains("only an administrator"), "{e}");
            assert!(e.contains("mode 666") || !root, "{e}");
            // Owned by someone other than root (as root, hand it to nobody).
            std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o644)).unwrap();
            if root {
                std::os::unix::fs::chown(&local, Some(65534), None).unwrap();
            }
            let e = SiteConfig::load_from(None, &local).unwrap_err().to_string();
            assert!(e.contains("owned by uid"), "{e}");
            std::fs::remove_file(&local).unwrap();
        }
        // Workstation settings from a user-writable file are fine.
        let local = write(dir.path(), "site.json", r#"{ "beds": 6, "storage": { "low_disk_mb": 500 } }"#);
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o666)).unwrap();
        let c = SiteConfig::load_from(None, &local).unwrap();
        assert_eq!((c.beds, c.storage.low_disk_mb), (Some(6), 500));
        assert_eq!(c.files[0].sections, ["beds", "storage"]);
        assert!(!c.files[0].admin_only);
    }

    #[test]
    fn the_installers_file_decides_alarms_fhir_and_ble_and_the_local_file_its_workstation() {
        let dir = tempfile::tempdir().unwrap();
        let installer = write(
            dir.path(),
            "installer.json",
            r#"{ "beds": 16, "alarms": { "adult": { "spo2": { "low": 92 } } },
                 "fhir": { "base_url": "https://fhir.example/R4", "gateway_id": "ward-3" },
                 "ble": { "require_bonded": true } }"#,
        );
        let data = tempfile::tempdir().unwrap();
        let local = write(data.path(), "site.json", r#"{ "beds": 4 }"#);
        let loaded = SiteConfig::load_from(Some(&installer), &local);
        if !running_as_root(dir.path()) {
            // Not root: the "installer's" file is this user's own, so it is refused (as it
            // must be); the rest of this test needs files only root can change.
            assert!(loaded.unwrap_err().to_string().contains("owned by uid"));
            return;
        }
        let c = loaded.unwrap();
        assert_eq!(c.beds, Some(4), "the workstation's own bed count");
        assert_eq!(c.fhir.as_ref().unwrap().gateway_id, "ward-3");
        assert!(c.ble.as_ref().unwrap().require_bonded);
        assert_eq!(c.files[0].role, SiteRole::Installer);
        assert!(c.files[0].admin_only);
        assert_eq!(c.files[0].sections, ["alarms", "fhir", "ble"], "beds went to the local file");
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&installer).unwrap()));
        assert_eq!(c.files[0].sha256, digest);
        let eff = c.effective();
        let row = |k: &str| eff.iter().find(|e| e.key == k).cloned().unwrap();
        assert_eq!(row("beds").source, local.display().to_string());
        assert_eq!(row("fhir.base_url").value, "https://fhir.example/R4");
        assert_eq!(row("fhir.base_url").source, installer.display().to_string());
        assert_eq!(row("storage.low_disk_mb").source, "default");

        // An administrators-only local file cannot override what the installer set either.
        let local = write(data.path(), "site.json", r#"{ "ble": { "require_bonded": false } }"#);
        let c = SiteConfig::load_from(Some(&installer), &local).unwrap();
        assert!(c.ble.unwrap().require_bonded);
        // …but fills in what the installer left out (a gateway's root-owned data directory).
        let only_beds = write(dir.path(), "beds.json", r#"{ "beds": 2 }"#);
        let c = SiteConfig::load_from(Some(&only_beds), &local).unwrap();
        assert!(!c.ble.unwrap().require_bonded);
    }

    /// `bearer_token_env` naming any variable would let a site file send e.g. the store's
    /// passphrase to the server it names.
    #[test]
    fn the_static_token_comes_only_from_a_vigil_fhir_variable() {
        let dir = tempfile::tempdir().unwrap();
        for (name, ok) in [
            ("VIGIL_FHIR_TOKEN", true),
            ("VIGIL_PASSPHRASE", false),
            ("HOME", false),
            ("VIGIL_FHIR_", false),
            ("vigil_fhir_token", false),
        ] {
            let p = write(
                dir.path(),
                "site.json",
                &format!(
                    r#"{{ "beds": 2, "fhir": {{ "base_url": "https://f/R4", "bearer_token_env": "{name}" }} }}"#
                ),
            );
            let r = SiteConfig::load_from(None, &p);
            match (ok, r) {
                (false, Err(e)) => assert!(e.to_string().contains("VIGIL_FHIR_<NAME>"), "{e}"),
                (true, Err(e)) => assert!(e.to_string().contains("owned by uid"), "{name}: {e}"),
                (true, Ok(_)) => {}
                (false, Ok(_)) => panic!("{name} accepted"),
            }
        }
    }
}
