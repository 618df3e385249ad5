//! AES-256-GCM sealing (ring).
//!
//! A key-encryption key (KEK) comes from outside the database: a passphrase
//! through Argon2id, a site key file or the OS keychain. It wraps the
//! data-encryption keys (DEKs) kept in the database, one active per purpose
//! (readings, patient identity, key log) plus older ones still needed for
//! reading: see `keyring`. Nonces are 96 random bits from the OS generator,
//! so NIST SP 800-38D §8.3 allows at most 2^32 seals per key; `keyring`
//! counts them and replaces a key well before.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;

/// Raw key bytes, wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes(pub(crate) [u8; KEY_LEN]);

impl KeyBytes {
    pub fn random(rng: &SystemRandom) -> Self {
        let mut k = [0u8; KEY_LEN];
        rng.fill(&mut k).expect("OS random generator failed");
        KeyBytes(k)
    }
    /// 32 fresh random bytes from the OS generator.
    pub fn generate() -> Self {
        Self::random(&SystemRandom::new())
    }
    /// The key as hex, for storing in an OS keychain (never logged).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.iter().map(|b| format!("{b:02x}")).collect())
    }
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let mut k = [0u8; KEY_LEN];
        if b.len() != KEY_LEN {
            return None;
        }
        k.copy_from_slice(b);
        Some(KeyBytes(k))
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// An AES-256-GCM key ready to seal and open.
pub struct SealingKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Authentication failed: wrong key, or the data was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

impl SealingKey {
    pub fn new(bytes: &KeyBytes) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes.0).expect("32-byte key");
        SealingKey {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// Encrypts `plain` bound to `aad`; returns (nonce, ciphertext‖tag).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("OS random generator failed");
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .expect("AES-GCM seal cannot fail for in-range lengths");
        (nonce.to_vec(), buf)
    }

    /// Decrypts and authenticates; any change to nonce, aad or ciphertext fails.
    pub fn open(&self, aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| OpenError)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

pub fn tag_len() -> usize {
    aead::AES_256_GCM.tag_len()
}
