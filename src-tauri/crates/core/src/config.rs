//! Where Vigil keeps its data and where its key comes from.

use crate::site::{KeyChoice, SiteConfig};
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
    #[error(
        "a new store's passphrase must have at least {MIN_PASSPHRASE_CHARS} characters \
         (a short one falls to a guessing attack on a copy of the file)"
    )]
    WeakPassphrase,
    #[error("the site configuration fixes the store key to {fixed}: {refused} is not used")]
    KeySourceFixed { fixed: &'static str, refused: &'static str },
    #[error("the store key is to be kept in the OS keychain, but no keychain can be used here")]
    NoKeychain,
    /// The data directory others can read or change (issue 13 §6).
    #[error("data directory {dir}: {why}")]
    DataDir { dir: String, why: String },
}

/// Makes sure the data directory is this user's alone before anything is written to it:
/// created with mode 0700 when missing; one that group or others can enter (an older install,
/// a directory made with the default umask) is made 0700, with a warning; one owned by
/// someone else, or store files in it owned by someone else (planted while it was open), are
/// refused with a clear error. The store files are made 0600. Windows: the user's
/// `%APPDATA%` is private by its default ACL (not checked here; see docs/threat-model.md).
pub fn secure_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let err = |why: String| ConfigError::DataDir {
        dir: dir.display().to_string(),
        why,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create it: {e}")))?;
        }
        let meta = std::fs::metadata(dir).map_err(|e| err(e.to_string()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(err(format!(
                "it belongs to uid {}, not to the user running Vigil (uid {me})",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                err(format!("mode {mode:o} lets others in and cannot be changed ({e}); run `chmod 700` on it"))
            })?;
            tracing::warn!(dir = %dir.display(), was = format!("{mode:o}"), "data directory made private (0700)");
        }
        for entry in std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?.flatten() {
            let private = entry.file_name().to_string_lossy().starts_with("vigil.db");
            if let (true, Ok(m)) = (private, entry.metadata()) {
                if m.uid() != me {
                    return Err(err(format!(
                        "{} belongs to uid {}, not to the user running Vigil",
                        entry.path().display(),
                        m.uid()
                    )));
                }
                if m.is_file() && m.mode() & 0o077 != 0 {
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| err(format!("cannot make {} private: {e}", entry.path().display())))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create it: {e}")))?;
    Ok(())
}

/// The fewest characters of a passphrase that protects a new store or replaces a store's
/// key (issue 13 §2; NIST SP 800-63B asks at least 8 for memorised secrets, and this one
/// also guards a file an attacker can copy and attack offline).
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// `Ok` when `passphrase` may protect a new store (or be the new key of a rotation).
pub fn check_new_passphrase(passphrase: &str) -> Result<(), ConfigError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        Err(ConfigError::WeakPassphrase)
    } else {
        Ok(())
    }
}

/// Whether the data directory holds no store yet: the first start, when a key source is
/// chosen.
pub fn first_start(data_dir: &Path) -> bool {
    !store_path(data_dir).exists()
}

fn choice_name(c: KeyChoice) -> &'static str {
    match c {
        KeyChoice::Passphrase => "a passphrase",
        KeyChoice::KeyFile => "the site key file",
        KeyChoice::Keychain => "the OS keychain",
    }
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

/// Picks the key source. When the installer's site configuration fixes it (`"key"`), only
/// that one. Otherwise: an explicit key file, then `VIGIL_PASSPHRASE`, then a key this data
/// directory already keeps in the OS keychain. A keychain key is never created here: at first
/// start the operator chooses (the app's first-start screen), so the keychain never silently
/// replaces the passphrase. With none, `NoKey` (the app asks).
pub fn resolve_key(key_file: Option<&Path>, data_dir: &Path) -> Result<KeySource, ConfigError> {
    resolve_key_with(key_file, false, data_dir)
}

/// [`resolve_key`], where `keychain` is the operator's explicit choice of the OS keychain
/// (`--keychain`): a key is created there for a new store.
pub fn resolve_key_with(key_file: Option<&Path>, keychain: bool, data_dir: &Path) -> Result<KeySource, ConfigError> {
    let site = SiteConfig::load(data_dir)?;
    let env = std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty());
    let passphrase = |p: String| {
        if first_start(data_dir) {
            check_new_passphrase(&p)?;
        }
        Ok(KeySource::passphrase(p, PASSPHRASE_ENV))
    };
    if let Some(fixed) = site.key.as_ref() {
        let refuse = |refused| ConfigError::KeySourceFixed {
            fixed: choice_name(fixed.source),
            refused,
        };
        if keychain && fixed.source != KeyChoice::Keychain {
            return Err(refuse("--keychain"));
        }
        return match fixed.source {
            KeyChoice::KeyFile => match key_file {
                Some(p) if Some(p) != fixed.key_file.as_deref() => Err(refuse("--key-file")),
                _ => Ok(KeySource::KeyFile(fixed.key_file.clone().unwrap_or_default())),
            },
            KeyChoice::Passphrase if key_file.is_some() => Err(refuse("--key-file")),
            KeyChoice::Passphrase => env.map(passphrase).unwrap_or(Err(ConfigError::NoKey)),
            KeyChoice::Keychain if key_file.is_some() => Err(refuse("--key-file")),
            KeyChoice::Keychain if env.is_some() => Err(refuse(PASSPHRASE_ENV)),
            KeyChoice::Keychain => keychain_key(data_dir, true).ok_or(ConfigError::NoKeychain),
        };
    }
    if let Some(p) = key_file {
        return Ok(KeySource::KeyFile(p.to_path_buf()));
    }
    if keychain {
        return keychain_key(data_dir, true).ok_or(ConfigError::NoKeychain);
    }
    if let Some(p) = env {
        return passphrase(p);
    }
    keychain_key(data_dir, false).ok_or(ConfigError::NoKey)
}

/// What the app's first-start (or unlock) screen offers.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct KeySetup {
    /// No store yet: the operator chooses the key source and a new passphrase is asked twice.
    pub first_start: bool,
    /// The OS keychain can hold the key here (offered only at first start, unless fixed).
    pub keychain_available: bool,
    /// The installer's choice, when the site configuration fixes it.
    pub fixed: Option<KeyChoice>,
    /// The fewest characters of a new passphrase.
    pub min_passphrase: u32,
}

impl KeySetup {
    pub fn for_data_dir(data_dir: &Path) -> Result<KeySetup, ConfigError> {
        let site = SiteConfig::load(data_dir)?;
        Ok(KeySetup {
            first_start: first_start(data_dir),
            keychain_available: keychain_usable(data_dir),
            fixed: site.key.map(|k| k.source),
            min_passphrase: MIN_PASSPHRASE_CHARS as u32,
        })
    }
}

/// Whether an OS keychain answers here (read only: nothing is created).
fn keychain_usable(data_dir: &Path) -> bool {
    keychain_entry(data_dir).is_some_and(|e| matches!(e.get_password(), Ok(_) | Err(keyring::Error::NoEntry)))
}

/// The operator chose the OS keychain at first start: a new random key there.
pub fn create_keychain_key(data_dir: &Path) -> Result<KeySource, ConfigError> {
    if !first_start(data_dir) {
        return Err(ConfigError::Site(
            "the store exists: its key source is chosen (rotate with `vigil key rotate`)".into(),
        ));
    }
    keychain_key(data_dir, true).ok_or(ConfigError::NoKeychain)
}

/// The keychain entry holding this data directory's key-encryption key.
fn keychain_entry(data_dir: &Path) -> Option<keyring::Entry> {
    entry_named("store-kek", data_dir)
}

/// The keychain entry `name` for this data directory (by its canonical path).
fn entry_named(name: &str, data_dir: &Path) -> Option<keyring::Entry> {
    let dir = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    keyring::Entry::new("vigil", &format!("{name} {}", dir.display())).ok()
}

/// Where a new keychain key waits during `vigil key rotate --new-keychain`
/// until the store has been rotated to it (so the entry in use is never
/// overwritten before the store no longer needs it).
fn staging_entry(data_dir: &Path) -> Option<keyring::Entry> {
    entry_named("store-kek-next", data_dir)
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

/// The key-encryption key from the OS keychain. With `create`, for a new store (no database
/// yet) a random key is created there; an existing store is only opened with a keychain key
/// that was made for it. `None` when there is no usable keychain (a headless box, CI) or no
/// entry.
pub fn keychain_key(data_dir: &Path, create: bool) -> Option<KeySource> {
    let entry = keychain_entry(data_dir)?;
    match entry.get_password() {
        Ok(hex_key) => {
            let bytes = zeroize::Zeroizing::new(hex::decode(hex_key.trim()).ok()?);
            vigil_store::crypto::KeyBytes::from_slice(&bytes).map(KeySource::Keychain)
        }
        Err(keyring::Error::NoEntry) if create && first_start(data_dir) => {
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
