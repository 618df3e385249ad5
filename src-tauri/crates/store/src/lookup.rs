//! Keyed lookup tags (issue 13 §6): what the plaintext columns hold instead
//! of bed ids, device addresses and series descriptors.
//!
//! A copy of the file without the key must not say which beds, devices or
//! vitals there are, but the store still has to find "the open admission of
//! bed-3" or "the chunks of bed-3's SpO2" with an index. So a lookup column
//! holds HMAC-SHA256 (first [`TAG_LEN`] bytes) of the value under a
//! per-store lookup key, and the value itself is sealed beside it.
//!
//! The lookup key is 32 random bytes sealed under the key-log data key in
//! `lookup_key`, like the integrity key: a key rotation re-wraps the data key
//! it is sealed under (it is referenced) but never changes the lookup key
//! itself, so existing tags keep matching. Each tag is domain-separated by
//! what it names, so a bed's tag never equals a device's.

use crate::keyring::{Keyring, Purpose};
use crate::{db, StoreError};
use ring::hmac;
use sqlx::SqliteConnection;

const AAD_LOOKUP: &[u8] = b"vigil/lookup-key/v1";
/// 128 bits: no two of a store's few hundred beds or series collide.
pub(crate) const TAG_LEN: usize = 16;

/// The open store's lookup key.
pub(crate) struct Lookup {
    key: hmac::Key,
}

impl Lookup {
    fn tag(&self, domain: &str, parts: &[&[u8]]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain.as_bytes());
        for p in parts {
            // Length-prefixed: ("ab", "c") and ("a", "bc") differ.
            ctx.update(&(p.len() as u32).to_le_bytes());
            ctx.update(p);
        }
        ctx.sign().as_ref()[..TAG_LEN].to_vec()
    }

    pub(crate) fn bed(&self, bed: &str) -> Vec<u8> {
        self.tag("bed", &[bed.as_bytes()])
    }

    pub(crate) fn bed_code(&self, bed: &str, code: u32) -> Vec<u8> {
        self.tag("bed-code", &[bed.as_bytes(), &code.to_le_bytes()])
    }

    /// An admission id (the NEWS2 log's "this stay" lookup).
    pub(crate) fn admission(&self, id: &str) -> Vec<u8> {
        self.tag("admission", &[id.as_bytes()])
    }

    pub(crate) fn address(&self, address: &str) -> Vec<u8> {
        self.tag("device", &[address.as_bytes()])
    }

    /// A whole series descriptor (admission, bed, device, code, unit, source).
    pub(crate) fn series(
        &self,
        admission: &str,
        bed: &str,
        device: &str,
        code: u32,
        unit: &str,
        source: &str,
    ) -> Vec<u8> {
        self.tag(
            "series",
            &[
                admission.as_bytes(),
                bed.as_bytes(),
                device.as_bytes(),
                &code.to_le_bytes(),
                unit.as_bytes(),
                source.as_bytes(),
            ],
        )
    }
}

/// Loads the lookup key, creating it (in `conn`'s transaction) on the first
/// open under schema 11.
pub(crate) async fn load_or_create(
    conn: &mut SqliteConnection,
    keys: &Keyring,
) -> Result<Lookup, StoreError> {
    let what = "opening the lookup key";
    let row: Option<(i64, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, nonce, sealed FROM lookup_key WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(what))?;
    if let Some((key_id, nonce, sealed)) = row {
        let plain = keys
            .open(Purpose::Log, key_id, AAD_LOOKUP, &nonce, &sealed)
            .map_err(|_| StoreError::TamperedRecord {
                table: "lookup_key",
                id: 1,
            })?;
        return Ok(Lookup {
            key: hmac::Key::new(hmac::HMAC_SHA256, &plain),
        });
    }
    let raw = crate::crypto::KeyBytes::generate();
    let s = keys.seal(conn, Purpose::Log, AAD_LOOKUP, &raw.0).await?;
    sqlx::query("INSERT INTO lookup_key (id, key_id, nonce, sealed) VALUES (1, ?, ?, ?)")
        .bind(s.key_id)
        .bind(s.nonce)
        .bind(s.sealed)
        .execute(&mut *conn)
        .await
        .map_err(db(what))?;
    Ok(Lookup {
        key: hmac::Key::new(hmac::HMAC_SHA256, &raw.0),
    })
}
