//! Where the key-encryption key (KEK) comes from, and how it is derived.
//!
//! Vigil never writes unencrypted data: with no key source it refuses to
//! start. A passphrase goes through Argon2id (RFC 9106) with a per-database
//! salt; a site key file holds 32 random bytes (64 hex characters) and must
//! not be readable by group or others.

use crate::crypto::KeyBytes;
use crate::StoreError;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Argon2id cost parameters, stored beside the salt so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's minimum recommendation for Argon2id (19 MiB, 2 passes, 1 lane):
    /// unlocking stays well under a second on a 2-core bedside box.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

/// Where the KEK comes from. `describe()` says which, for the operator.
pub enum KeySource {
    /// A passphrase (from `VIGIL_PASSPHRASE` or typed by the operator); `origin` says which.
    Passphrase {
        secret: Zeroizing<String>,
        origin: &'static str,
    },
    /// A site key file with 32 random bytes as 64 hex characters.
    KeyFile(PathBuf),
    /// Raw key material from an OS keychain.
    Keychain(KeyBytes),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KeySource {
    pub fn passphrase(secret: impl Into<String>, origin: &'static str) -> Self {
        KeySource::Passphrase {
            secret: Zeroizing::new(secret.into()),
            origin,
        }
    }

    /// A one-line, secret-free description: "passphrase (VIGIL_PASSPHRASE)".
    pub fn describe(&self) -> String {
        match self {
            KeySource::Passphrase { origin, .. } => format!("passphrase ({origin})"),
            KeySource::KeyFile(p) => format!("key file {}", p.display()),
            KeySource::Keychain(_) => "OS keychain".to_string(),
        }
    }

    pub(crate) fn needs_salt(&self) -> bool {
        matches!(self, KeySource::Passphrase { .. })
    }

    /// Derives the KEK. `salt`/`params` are only used for passphrases.
    pub(crate) fn derive(&self, salt: &[u8], params: KdfParams) -> Result<KeyBytes, StoreError> {
        match self {
            KeySource::Passphrase { secret, .. } => {
                if secret.is_empty() {
                    return Err(StoreError::Key("the passphrase is empty".into()));
                }
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
                        .map_err(|e| StoreError::Key(format!("bad Argon2id parameters: {e}")))?,
                );
                let mut out = [0u8; 32];
                argon
                    .hash_password_into(secret.as_bytes(), salt, &mut out)
                    .map_err(|e| StoreError::Key(format!("Argon2id failed: {e}")))?;
                let k = KeyBytes(out);
                out.iter_mut().for_each(|b| *b = 0);
                Ok(k)
            }
            KeySource::KeyFile(path) => read_key_file(path),
            KeySource::Keychain(k) => Ok(k.clone()),
        }
    }
}

/// Reads a site key file, refusing one that others can read.
pub fn read_key_file(path: &Path) -> Result<KeyBytes, StoreError> {
    let err = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
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
    let _ = meta;
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| err("expected 64 hexadecimal characters".into()))?,
    );
    KeyBytes::from_slice(&bytes).ok_or_else(|| err("expected 64 hexadecimal characters".into()))
}

/// Creates a new site key file (mode 0600) with 32 random bytes; never overwrites.
pub fn create_key_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    let err = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let key = KeyBytes::random(&ring::rand::SystemRandom::new());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
    let text = Zeroizing::new(hex::encode(key.0));
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| err(e.to_string()))?;
    f.sync_all().map_err(|e| err(e.to_string()))
}
