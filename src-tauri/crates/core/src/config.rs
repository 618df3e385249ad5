//! Where Vigil keeps its data and where its key comes from.

use std::path::{Path, PathBuf};
use vigil_store::KeySource;

/// The environment variable a headless box passes its passphrase in.
pub const PASSPHRASE_ENV: &str = "VIGIL_PASSPHRASE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no key for the encrypted store: set {PASSPHRASE_ENV} or pass --key-file <file> \
         (create one with `vigil key new <file>`). Vigil never writes unencrypted data."
    )]
    NoKey,
    #[error("cannot find a user data directory; pass --data-dir <dir>")]
    NoDataDir,
    #[error("site configuration: {0}")]
    Site(String),
}

/// The user data directory, e.g. `~/.local/share/vigil` on Linux,
/// `%APPDATA%\vigil` on Windows, `~/Library/Application Support/vigil` on macOS.
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    dirs::data_dir()
        .map(|d| d.join("vigil"))
        .ok_or(ConfigError::NoDataDir)
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("vigil.db")
}

/// Picks the key source: an explicit key file wins, then `VIGIL_PASSPHRASE`.
/// With neither, Vigil refuses to start.
pub fn resolve_key(key_file: Option<&Path>) -> Result<KeySource, ConfigError> {
    if let Some(p) = key_file {
        return Ok(KeySource::KeyFile(p.to_path_buf()));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if !p.is_empty() => Ok(KeySource::passphrase(p, PASSPHRASE_ENV)),
        _ => Err(ConfigError::NoKey),
    }
}

/// Whether this machine has a Bluetooth adapter the OS knows of.
///
/// Linux lists adapters under /sys/class/bluetooth; elsewhere btleplug's
/// adapter enumeration is the test (see the `ble` source).
pub fn bluetooth_adapter_present() -> bool {
    std::fs::read_dir("/sys/class/bluetooth")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}
