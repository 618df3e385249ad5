//! Where Vigil keeps its data and where its key comes from.

use std::path::{Path, PathBuf};
use vigil_store::KeySource;

/// The environment variable a headless box passes its passphrase in.
pub const PASSPHRASE_ENV: &str = "VIGIL_PASSPHRASE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no key for the encrypted store: set {PASSPHRASE_ENV}, pass --key-file <file> \
         (create one with `vigil key new <file>`), or run where an OS keychain is unlocked. \
         Vigil never writes unencrypted data."
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

/// `--data-dir` when given, else the user data directory.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(d) => Ok(d.to_path_buf()),
        None => default_data_dir(),
    }
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("vigil.db")
}

/// Picks the key source: an explicit key file wins, then `VIGIL_PASSPHRASE`,
/// then the OS keychain (Secret Service, macOS Keychain, Windows Credential
/// Manager). With none of them, Vigil refuses to start (the app asks for a
/// passphrase instead).
pub fn resolve_key(key_file: Option<&Path>, data_dir: &Path) -> Result<KeySource, ConfigError> {
    if let Some(p) = key_file {
        return Ok(KeySource::KeyFile(p.to_path_buf()));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if !p.is_empty() => return Ok(KeySource::passphrase(p, PASSPHRASE_ENV)),
        _ => {}
    }
    keychain_key(data_dir).ok_or(ConfigError::NoKey)
}

/// The keychain entry holding this data directory's key-encryption key.
fn keychain_entry(data_dir: &Path) -> Option<keyring::Entry> {
    let dir = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    keyring::Entry::new("vigil", &format!("store-kek {}", dir.display())).ok()
}

/// The key-encryption key from the OS keychain. For a new store (no database
/// yet) a random key is created there; an existing store is only opened with
/// a keychain key that was made for it. `None` when there is no usable
/// keychain (a headless box, CI) or no entry for an existing store.
pub fn keychain_key(data_dir: &Path) -> Option<KeySource> {
    let entry = keychain_entry(data_dir)?;
    match entry.get_password() {
        Ok(hex_key) => {
            let bytes = zeroize::Zeroizing::new(hex::decode(hex_key.trim()).ok()?);
            vigil_store::crypto::KeyBytes::from_slice(&bytes).map(KeySource::Keychain)
        }
        Err(keyring::Error::NoEntry) if !store_path(data_dir).exists() => {
            let key = vigil_store::crypto::KeyBytes::generate();
            match entry.set_password(&key.to_hex()) {
                Ok(()) => Some(KeySource::Keychain(key)),
                Err(e) => {
                    tracing::debug!(error = %e, "OS keychain cannot store a key");
                    None
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "no key in the OS keychain");
            None
        }
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
