//! Where the key-encryption key (KEK) comes from, and how it is derived.
//!
//! Vigil never writes unencrypted data: with no key source it refuses to
//! start. A passphrase goes through Argon2id (RFC 9106) with a per-database
//! salt; a site key file holds 32 random bytes (64 hex characters) and must
//! not be readable by group or others. Argon2id's parameters come from the
//! file for an existing store, so they are bounded before use (an edit can
//! neither weaken them nor make the unlock hang).

use crate::crypto::KeyBytes;
use crate::StoreError;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Argon2id cost parameters, stored beside the salt so they can be raised
/// later, and bound into every wrapped data key (see `keyring`), so they
/// cannot be swapped without the unlock failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// RFC 9106 §4's second recommended option: Argon2id with 64 MiB, 3
    /// passes, 4 lanes. New stores and every rotation use these; a store
    /// made with older parameters keeps them until its next rotation.
    fn default() -> Self {
        KdfParams::RFC9106_SECOND
    }
}

impl KdfParams {
    /// RFC 9106 §4, second recommended option (m = 64 MiB, t = 3, p = 4).
    pub const RFC9106_SECOND: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 4,
    };
    /// What stores created before schema 6 used (OWASP's minimum: 19 MiB,
    /// 2 passes, 1 lane). Nothing weaker is accepted from a file: weaker
    /// parameters can only come from an edit (a downgrade).
    pub const LEGACY_MINIMUM: KdfParams = KdfParams {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// More than this is refused too: an edited file must not make the
    /// unlock take hours or exhaust memory.
    const MAX_M_COST_KIB: u32 = 2 * 1024 * 1024;
    const MAX_T_COST: u32 = 16;
    const MAX_P_COST: u32 = 16;

    /// Whether these parameters, read from a file, are acceptable: at least
    /// the legacy minimum's work and at most a bounded amount of memory and
    /// time. The error says which bound, never any secret.
    pub fn check(&self) -> Result<(), StoreError> {
        let min = KdfParams::LEGACY_MINIMUM;
        let work = u64::from(self.m_cost_kib) * u64::from(self.t_cost);
        let min_work = u64::from(min.m_cost_kib) * u64::from(min.t_cost);
        let reason =
            if self.m_cost_kib < min.m_cost_kib || self.t_cost == 0 || self.p_cost == 0 || work < min_work {
                "weaker than the minimum Vigil ever used (a downgrade)"
            } else if self.m_cost_kib > Self::MAX_M_COST_KIB
                || self.t_cost > Self::MAX_T_COST
                || self.p_cost > Self::MAX_P_COST
                || self.m_cost_kib < 8 * self.p_cost
            {
                "beyond the bounds Vigil accepts"
            } else {
                return Ok(());
            };
        Err(StoreError::KdfParams(format!(
            "Argon2id m = {} KiB, t = {}, p = {} is {reason}",
            self.m_cost_kib, self.t_cost, self.p_cost
        )))
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

    /// Derives the KEK. `salt`/`params` are only used for passphrases, and
    /// are checked first ([`KdfParams::check`]). Argon2id's working memory
    /// (64 MiB by default) is ours and wiped afterwards, like the output.
    pub(crate) fn derive(&self, salt: &[u8], params: KdfParams) -> Result<KeyBytes, StoreError> {
        match self {
            KeySource::Passphrase { secret, .. } => {
                if secret.is_empty() {
                    return Err(StoreError::Key("the passphrase is empty".into()));
                }
                params.check()?;
                let argon_params =
                    argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
                        .map_err(|e| StoreError::KdfParams(format!("Argon2id rejects them: {e}")))?;
                let mut memory: Zeroizing<Vec<argon2::Block>> =
                    Zeroizing::new(vec![argon2::Block::default(); argon_params.block_count()]);
                let argon =
                    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params);
                let mut out = Zeroizing::new([0u8; 32]);
                argon
                    .hash_password_into_with_memory(secret.as_bytes(), salt, &mut out[..], &mut memory[..])
                    .map_err(|e| StoreError::Key(format!("Argon2id failed: {e}")))?;
                Ok(KeyBytes(*out))
            }
            KeySource::KeyFile(path) => read_key_file(path),
            KeySource::Keychain(k) => Ok(k.clone()),
        }
    }

    /// The kind of key source, without its origin or path (for the key log).
    pub fn kind(&self) -> &'static str {
        match self {
            KeySource::Passphrase { .. } => "passphrase",
            KeySource::KeyFile(_) => "key file",
            KeySource::Keychain(_) => "OS keychain",
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
