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
    /// The OS keychain refused an operation (no secret service, locked, …).
    #[error("OS keychain: {0}")]
    Keychain(String),
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

/// Where a new keychain key waits during `vigil key rotate --new-keychain`
/// until the store has been rotated to it (so the entry in use is never
/// overwritten before the store no longer needs it).
fn staging_entry(data_dir: &Path) -> Option<keyring::Entry> {
    let dir = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    keyring::Entry::new("vigil", &format!("store-kek-next {}", dir.display())).ok()
}

fn keychain_error(what: &str, e: keyring::Error) -> ConfigError {
    ConfigError::Keychain(format!("{what}: {e}"))
}

/// Makes a new random key and keeps it in the staging keychain entry;
/// returns it as the key to rotate to.
pub fn stage_keychain_key(data_dir: &Path) -> Result<KeySource, ConfigError> {
    let entry = staging_entry(data_dir).ok_or(ConfigError::Keychain("no usable keychain".into()))?;
    let key = vigil_store::crypto::KeyBytes::generate();
    entry
        .set_password(&key.to_hex())
        .map_err(|e| keychain_error("cannot store the new key", e))?;
    Ok(KeySource::Keychain(key))
}

/// After the store was rotated to the staged key: it replaces the old
/// key in this data directory's entry (the old key is gone from the
/// keychain) and the staging entry is deleted.
pub fn commit_staged_keychain_key(data_dir: &Path) -> Result<(), ConfigError> {
    let (Some(staged), Some(main)) = (staging_entry(data_dir), keychain_entry(data_dir)) else {
        return Err(ConfigError::Keychain("no usable keychain".into()));
    };
    let hex_key = zeroize::Zeroizing::new(staged.get_password().map_err(|e| {
        keychain_error(
            "cannot read the new key back (it is in entry \"store-kek-next\")",
            e,
        )
    })?);
    main.set_password(&hex_key).map_err(|e| {
        keychain_error(
            "the store now opens only with the new key, kept in keychain entry \"store-kek-next\"; storing it as the store's entry failed",
            e,
        )
    })?;
    if let Err(e) = staged.delete_credential() {
        tracing::warn!(error = %e, "the staging keychain entry could not be deleted");
    }
    Ok(())
}

/// A rotation to a staged key failed: the staged key is not needed.
pub fn discard_staged_keychain_key(data_dir: &Path) {
    if let Some(e) = staging_entry(data_dir) {
        let _ = e.delete_credential();
    }
}

/// Removes this data directory's key from the OS keychain (after the store
/// was rotated to another key source). No entry is not an error.
pub fn remove_keychain_key(data_dir: &Path) -> Result<(), ConfigError> {
    let entry = keychain_entry(data_dir).ok_or(ConfigError::Keychain("no usable keychain".into()))?;
    match entry.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(keychain_error(
            "the store was rotated, but its old key could not be removed from the keychain; remove entry \"store-kek\" by hand",
            e,
        )),
    }
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
