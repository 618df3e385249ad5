//! Site configuration: what an installer sets for a hospital, in one JSON
//! file. Looked up at `$VIGIL_SITE_CONFIG`, then `<data dir>/site.json`, then
//! the system-wide place an MSI/DMG/deb installer drops it
//! (`/etc/vigil/site.json`, `%ProgramData%\Vigil\site.json`,
//! `/Library/Application Support/Vigil/site.json`).
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
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Beds at this workstation (1 to [`MAX_BEDS`]; `--beds` overrides it).
    #[serde(default)]
    pub beds: Option<u16>,
    /// Alarm preset overlay (see `vigil_alarms::SitePreset::from_json`).
    #[serde(default)]
    pub alarms: Option<serde_json::Value>,
    #[serde(default)]
    pub fhir: Option<FhirSite>,
    #[serde(default)]
    pub storage: StorageSite,
    /// Bluetooth LE link policy.
    #[serde(default)]
    pub ble: Option<BleSite>,
    /// Where this configuration was read from (for the operator).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Where the store lives: when to warn that the disk is filling.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

fn system_path() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("ProgramData").map(|p| PathBuf::from(p).join("Vigil").join("site.json"))
    } else if cfg!(target_os = "macos") {
        Some(PathBuf::from("/Library/Application Support/Vigil/site.json"))
    } else {
        Some(PathBuf::from("/etc/vigil/site.json"))
    }
}

impl SiteConfig {
    /// Reads the first site configuration found; none found is the default.
    pub fn load(data_dir: &Path) -> Result<SiteConfig, ConfigError> {
        let candidates = std::env::var_os("VIGIL_SITE_CONFIG")
            .map(PathBuf::from)
            .into_iter()
            .chain([data_dir.join("site.json")])
            .chain(system_path());
        for path in candidates {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let mut c: SiteConfig = serde_json::from_str(&text)
                        .map_err(|e| ConfigError::Site(format!("{}: {e}", path.display())))?;
                    if c.beds.is_some_and(|n| !(1..=MAX_BEDS).contains(&n)) {
                        return Err(ConfigError::Site(format!(
                            "{}: beds must be 1 to {MAX_BEDS}",
                            path.display()
                        )));
                    }
                    c.source = Some(path);
                    return Ok(c);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ConfigError::Site(format!("{}: {e}", path.display()))),
            }
        }
        Ok(SiteConfig::default())
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
