//! The signed audit trail (issue 14): who did what, to which admission, when
//! and where — one sealed, hash-chained, Ed25519-signed record per action.
//!
//! * **Sealed.** Each record is sealed under the key-log data key with the
//!   AAD binding its sequence number: an edited row, or one moved to another
//!   position (re-ordered, replayed), fails to open.
//! * **Chained.** Each record carries its predecessor's hash; its own hash is
//!   SHA-256 over that, its sequence number, a random salt (so a hash cannot
//!   be brute-forced back to a guessable record) and the record. Sequence
//!   numbers are contiguous from 1: a deleted record is a gap.
//! * **Signed.** Each record's hash is signed with the store's Ed25519 key
//!   (seed sealed like the integrity key, `audit_key`), so an exported trail
//!   can be checked by a SIEM with the public key alone.
//! * **A signed head** (count + last hash) in the file catches a truncation;
//!   its copy outside the data directory, beside the store counter, catches
//!   the whole file put back to an older copy (it says more records, or a
//!   different record at its count, than the file holds).
//!
//! Someone who holds the store key can unseal the signing key and rewrite
//! the trail; the head mirror (or a SIEM's copy) is then what still shows it.

use crate::keyring::Purpose;
use crate::{db, Store, StoreError};
use chrono::{DateTime, Utc};
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::Zeroizing;

const AAD_KEY: &[u8] = b"vigil/audit-key/v1";
const AAD_RECORD: &[u8] = b"vigil/audit/v1/";
const HASH_CONTEXT: &[u8] = b"vigil/audit-hash/v1\n";
const SIG_CONTEXT: &[u8] = b"vigil/audit-sig/v1\n";
const HEAD_CONTEXT: &[u8] = b"vigil/audit-head/v1\n";

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Allowed and done (or at least allowed: the record is written at the check).
    Success,
    /// Refused by the permission matrix, or not signed in.
    Refused,
    /// Tried and failed (a wrong password, a CLI command that errored).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// One audited action. Never a name, MRN, date of birth or value: the
/// admission is its opaque id, `detail` is for ids and kinds only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// A user name, `os:<name>` for the CLI, or `(signed out)`.
    pub actor: String,
    pub role: Option<String>,
    /// A stable action name (`admit`, `sign_in`, `cli_export`, …).
    pub action: String,
    pub outcome: Outcome,
    /// The opaque admission id concerned, if any.
    pub admission: Option<String>,
    /// The workstation (host name) the action was taken at.
    pub workstation: String,
    /// Taken under break-glass emergency access.
    pub break_glass: bool,
    /// Ids and kinds only (a user name added, a device address): no PHI.
    pub detail: Option<String>,
}

/// A record as stored and exported: the record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    /// Random, hex: makes the hash unguessable from a guessable record.
    pub salt: String,
    /// The previous record's hash (hex; 64 zeros for the first).
    pub prev: String,
    /// SHA-256 (hex) over prev, seq, salt and the record (see [`entry_hash`]).
    pub hash: String,
    /// Ed25519 signature (hex) over seq and hash.
    pub sig: String,
}

/// What the sealed blob holds (the hash is recomputed, never trusted).
#[derive(Serialize, Deserialize)]
struct Sealed {
    salt: String,
    prev: String,
    sig: String,
    record: AuditRecord,
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    salt: &'a str,
    record: &'a AuditRecord,
}

/// The hash of record `seq`: SHA-256 over a context string, the previous
/// hash, and the JSON of `{seq, salt, record}` (fields in that order).
pub fn entry_hash(prev: &[u8], seq: i64, salt: &str, record: &AuditRecord) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(HASH_CONTEXT);
    ctx.update(prev);
    ctx.update(&serde_json::to_vec(&Hashed { seq, salt, record }).expect("serialises"));
    ctx.finish().as_ref().try_into().expect("32 bytes")
}

fn sig_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    [SIG_CONTEXT, &seq.to_le_bytes()[..], hash].concat()
}

fn head_message(store_id: &str, n: i64, hash: &[u8]) -> Vec<u8> {
    [
        HEAD_CONTEXT,
        &(store_id.len() as u32).to_le_bytes()[..],
        store_id.as_bytes(),
        &n.to_le_bytes()[..],
        hash,
    ]
    .concat()
}

fn record_aad(seq: i64) -> Vec<u8> {
    [AAD_RECORD, &seq.to_le_bytes()[..]].concat()
}

/// What `vigil audit verify` found wrong, first problem first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFault {
    #[error("audit record {seq} failed authentication: it was edited, or moved from another position (re-ordered or replayed)")]
    Unreadable { seq: i64 },
    #[error("audit records {from} to {to} are missing: deleted")]
    Missing { from: i64, to: i64 },
    #[error("audit record {seq} does not follow record {}: inserted, re-ordered or replayed", seq - 1)]
    Chain { seq: i64 },
    #[error("audit record {seq} is not signed by this store's audit key")]
    Signature { seq: i64 },
    #[error("the audit trail's sealed head says {head} records, the file holds {rows}: records were truncated or added behind its back")]
    Head { head: i64, rows: i64 },
    #[error(
        "the audit trail's sealed head does not authenticate: it was altered or signed with another key"
    )]
    HeadTampered,
    #[error("the audit trail's public key in the file is not its signing key's")]
    PublicKey,
    #[error("the audit trail was rolled back to an older copy: it holds {rows} records, but {} says {mirror}", path.display())]
    RolledBack { rows: i64, mirror: i64, path: PathBuf },
    #[error("audit record {seq} is not the one {} recorded: the trail was rewritten", path.display())]
    Rewritten { seq: i64, path: PathBuf },
    #[error("the audit head mirror {} does not authenticate", path.display())]
    MirrorTampered { path: PathBuf },
}

/// The result of [`Store::audit_verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Records in the file.
    pub records: i64,
    pub faults: Vec<AuditFault>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.faults.is_empty()
    }
}

/// The open store's audit signing key.
pub(crate) struct AuditKey {
    pair: Ed25519KeyPair,
    /// False once the head mirror was found ahead of, or different from,
    /// this file: never overwrite that evidence.
    mirror_ok: AtomicBool,
}

/// A head mirror as read: count, last hash.
struct MirrorHead {
    n: i64,
    hash: Vec<u8>,
}

impl Store {
    fn audit_mirror_path(&self) -> Option<PathBuf> {
        self.integrity.side_file("audit-head")
    }

    /// Loads (or makes, at first use) the signing key.
    async fn audit_key(&self) -> Result<&AuditKey, StoreError> {
        self.audit
            .get_or_try_init(|| async {
                let what = "opening the audit key";
                let mut tx = self.begin_write(what).await?;
                let row: Option<(i64, Vec<u8>, Vec<u8>)> =
                    sqlx::query_as("SELECT key_id, nonce, sealed FROM audit_key WHERE id = 1")
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db(what))?;
                let bad = || StoreError::TamperedRecord {
                    table: "audit_key",
                    id: 1,
                };
                let pair = match row {
                    Some((key_id, nonce, sealed)) => {
                        let seed = self
                            .keys
                            .open(Purpose::Log, key_id, AAD_KEY, &nonce, &sealed)
                            .map_err(|_| bad())?;
                        Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| bad())?
                    }
                    None => {
                        let mut seed = Zeroizing::new([0u8; 32]);
                        ring::rand::SystemRandom::new()
                            .fill(&mut seed[..])
                            .map_err(|_| StoreError::Key("OS random generator failed".into()))?;
                        let pair = Ed25519KeyPair::from_seed_unchecked(&seed[..]).map_err(|_| bad())?;
                        let s = self.keys.seal(&mut tx, Purpose::Log, AAD_KEY, &seed[..]).await?;
                        sqlx::query(
                            "INSERT INTO audit_key (id, public_key, key_id, nonce, sealed) VALUES (1, ?, ?, ?, ?)",
                        )
                        .bind(pair.public_key().as_ref())
                        .bind(s.key_id)
                        .bind(s.nonce)
                        .bind(s.sealed)
                        .execute(&mut *tx)
                        .await
                        .map_err(db(what))?;
                        pair
                    }
                };
                tx.commit().await.map_err(db(what))?;
                let key = AuditKey {
                    pair,
                    mirror_ok: AtomicBool::new(true),
                };
                // A file behind (or beside) its head mirror keeps the mirror as evidence.
                if let Some(path) = self.audit_mirror_path() {
                    if let Some(Err(f)) = self.check_mirror(&key, &path).await? {
                        tracing::error!(fault = %f, "the audit trail does not match its head mirror");
                        key.mirror_ok.store(false, Ordering::Relaxed);
                    }
                }
                Ok(key)
            })
            .await
    }

    /// The trail's public key (hex), for exports and SIEMs.
    pub async fn audit_public_key(&self) -> Result<String, StoreError> {
        Ok(hex::encode(self.audit_key().await?.pair.public_key().as_ref()))
    }

    /// Appends records in one transaction, in order.
    pub async fn audit_append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let key = self.audit_key().await?;
        self.append_signed(records, &key.pair).await
    }

    /// Appends a record signed with `seed` instead of the store's key: only
    /// for tamper tests ("a record signed with another key").
    #[doc(hidden)]
    pub async fn audit_append_signed_by(
        &self,
        record: &AuditRecord,
        seed: &[u8; 32],
    ) -> Result<(), StoreError> {
        self.audit_key().await?;
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| StoreError::Key("bad seed".into()))?;
        self.append_signed(std::slice::from_ref(record), &pair).await
    }

    async fn append_signed(&self, records: &[AuditRecord], pair: &Ed25519KeyPair) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let key = self.audit_key().await?;
        let what = "writing the audit trail";
        let mut tx = self.begin_write(what).await?;
        let (mut n, mut prev) = read_head(&mut tx).await?;
        let rng = ring::rand::SystemRandom::new();
        for record in records {
            n += 1;
            let mut salt = [0u8; 16];
            rng.fill(&mut salt)
                .map_err(|_| StoreError::Key("OS random generator failed".into()))?;
            let salt = hex::encode(salt);
            let hash = entry_hash(&prev, n, &salt, record);
            let sig = pair.sign(&sig_message(n, &hash));
            let body = Sealed {
                salt,
                prev: hex::encode(&prev),
                sig: hex::encode(sig.as_ref()),
                record: record.clone(),
            };
            let s = self
                .keys
                .seal(
                    &mut tx,
                    Purpose::Log,
                    &record_aad(n),
                    &serde_json::to_vec(&body).expect("serialises"),
                )
                .await?;
            sqlx::query("INSERT INTO audit_log (seq, key_id, nonce, sealed) VALUES (?, ?, ?, ?)")
                .bind(n)
                .bind(s.key_id)
                .bind(s.nonce)
                .bind(s.sealed)
                .execute(&mut *tx)
                .await
                .map_err(db(what))?;
            prev = hash.to_vec();
        }
        let head_sig = key.pair.sign(&head_message(self.integrity.store_id(), n, &prev));
        sqlx::query(
            "INSERT INTO audit_head (id, n, hash, sig) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET n = ?1, hash = ?2, sig = ?3",
        )
        .bind(n)
        .bind(&prev)
        .bind(head_sig.as_ref())
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        tx.commit().await.map_err(db(what))?;
        if key.mirror_ok.load(Ordering::Relaxed) {
            if let Some(path) = self.audit_mirror_path() {
                self.write_mirror(key, &path, n, &prev);
            }
        }
        Ok(())
    }

    /// Every record that opens, oldest first, optionally within `[from, to)`.
    /// Use [`Store::audit_verify`] to know the trail is whole.
    pub async fn audit_entries(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for (seq, opened) in self.audit_rows().await? {
            if let Some(e) = opened {
                let hash = entry_hash(&hex::decode(&e.prev).unwrap_or_default(), seq, &e.salt, &e.record);
                if from.is_some_and(|f| e.record.at < f) || to.is_some_and(|t| e.record.at >= t) {
                    continue;
                }
                out.push(AuditEntry {
                    seq,
                    record: e.record,
                    salt: e.salt,
                    prev: e.prev,
                    hash: hex::encode(hash),
                    sig: e.sig,
                });
            }
        }
        Ok(out)
    }

    /// Up to `limit` records after `seq`, in order, stopping before the first
    /// that does not open (an uploader must not skip over a damaged record:
    /// `vigil audit verify` names it). For the FHIR upload's cursor.
    pub async fn audit_entries_after(&self, seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for (seq, opened) in self.audit_rows_after(seq, limit).await? {
            let Some(e) = opened else { break };
            let hash = entry_hash(&hex::decode(&e.prev).unwrap_or_default(), seq, &e.salt, &e.record);
            out.push(AuditEntry {
                seq,
                record: e.record,
                salt: e.salt,
                prev: e.prev,
                hash: hex::encode(hash),
                sig: e.sig,
            });
        }
        Ok(out)
    }

    /// The store's random id (names its audit records outside the file, e.g. in FHIR).
    pub fn store_id(&self) -> &str {
        self.integrity.store_id()
    }

    /// The last audit record accepted by the FHIR server (0: none yet).
    pub async fn audit_uploaded(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'audit_uploaded_seq'")
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading the audit upload cursor"))?;
        Ok(v.unwrap_or(0))
    }

    /// How many records the trail holds (its last sequence number).
    pub async fn audit_len(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting the audit trail"))
    }

    /// Moves the upload cursor forward (never back).
    pub async fn set_audit_uploaded(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('audit_uploaded_seq', ?1)
             ON CONFLICT(key) DO UPDATE SET value = max(value, ?1)",
        )
        .bind(seq)
        .execute(&self.pool)
        .await
        .map_err(db("moving the audit upload cursor"))?;
        Ok(())
    }

    /// Every row: its seq and its opened body (None: it did not open).
    async fn audit_rows(&self) -> Result<Vec<(i64, Option<Sealed>)>, StoreError> {
        self.audit_rows_after(0, i64::MAX).await
    }

    async fn audit_rows_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, Option<Sealed>)>, StoreError> {
        let rows = sqlx::query("SELECT seq, key_id, nonce, sealed FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the audit trail"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let seq: i64 = r.get("seq");
                let opened = self
                    .keys
                    .open(
                        Purpose::Log,
                        r.get("key_id"),
                        &record_aad(seq),
                        &r.get::<Vec<u8>, _>("nonce"),
                        &r.get::<Vec<u8>, _>("sealed"),
                    )
                    .ok()
                    .and_then(|p| serde_json::from_slice::<Sealed>(&p).ok());
                (seq, opened)
            })
            .collect())
    }

    /// Checks the whole trail: every record opens at its position, follows
    /// its predecessor, is signed by this store's key; the head and its
    /// mirror outside the data directory agree with the file.
    pub async fn audit_verify(&self) -> Result<AuditReport, StoreError> {
        let key = match self.audit_key().await {
            Ok(k) => k,
            Err(StoreError::TamperedRecord { .. }) => {
                return Ok(AuditReport {
                    records: 0,
                    faults: vec![AuditFault::Signature { seq: 0 }],
                })
            }
            Err(e) => return Err(e),
        };
        let public = UnparsedPublicKey::new(&ED25519, key.pair.public_key().as_ref().to_vec());
        let mut faults = Vec::new();
        let stored_pk: Option<Vec<u8>> = sqlx::query_scalar("SELECT public_key FROM audit_key WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading the audit key"))?;
        if stored_pk.as_deref() != Some(key.pair.public_key().as_ref()) {
            faults.push(AuditFault::PublicKey);
        }
        let rows = self.audit_rows().await?;
        let mut expected = 1i64;
        // The previous record's hash, when it could be computed.
        let mut prev: Option<Vec<u8>> = Some(vec![0u8; 32]);
        let mut last_hash = vec![0u8; 32];
        for (seq, opened) in &rows {
            let seq = *seq;
            if seq != expected {
                faults.push(AuditFault::Missing {
                    from: expected,
                    to: seq - 1,
                });
                prev = None;
            }
            expected = seq + 1;
            let Some(e) = opened else {
                faults.push(AuditFault::Unreadable { seq });
                prev = None;
                continue;
            };
            let claimed_prev = hex::decode(&e.prev).unwrap_or_default();
            if prev.as_ref().is_some_and(|p| *p != claimed_prev) {
                faults.push(AuditFault::Chain { seq });
            }
            let hash = entry_hash(&claimed_prev, seq, &e.salt, &e.record);
            let sig = hex::decode(&e.sig).unwrap_or_default();
            if public.verify(&sig_message(seq, &hash), &sig).is_err() {
                faults.push(AuditFault::Signature { seq });
            }
            prev = Some(hash.to_vec());
            last_hash = hash.to_vec();
        }
        let count = rows.last().map_or(0, |r| r.0);
        let head: Option<(i64, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT n, hash, sig FROM audit_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading the audit head"))?;
        match head {
            None if rows.is_empty() => {}
            None => faults.push(AuditFault::Head { head: 0, rows: count }),
            Some((n, hash, sig)) => {
                let msg = head_message(self.integrity.store_id(), n, &hash);
                if public.verify(&msg, &sig).is_err() {
                    faults.push(AuditFault::HeadTampered);
                } else if n != count || (prev.is_some() && hash != last_hash) {
                    faults.push(AuditFault::Head { head: n, rows: count });
                }
            }
        }
        if let Some(path) = self.audit_mirror_path() {
            if let Some(Err(f)) = self.check_mirror(key, &path).await? {
                faults.push(f);
            }
        }
        Ok(AuditReport {
            records: rows.len() as i64,
            faults,
        })
    }

    /// Compares the head mirror with the file: None when there is no
    /// mirror, Ok when the file holds the mirrored record at its count.
    async fn check_mirror(
        &self,
        key: &AuditKey,
        path: &std::path::Path,
    ) -> Result<Option<Result<(), AuditFault>>, StoreError> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(None);
        };
        let Some(m) = parse_mirror(key, self.integrity.store_id(), &text) else {
            return Ok(Some(Err(AuditFault::MirrorTampered {
                path: path.to_path_buf(),
            })));
        };
        let mut conn = self.pool.acquire().await.map_err(db("reading the audit trail"))?;
        let (rows, _) = read_head(&mut conn).await?;
        let rows = rows.max(
            sqlx::query_scalar::<_, i64>("SELECT coalesce(max(seq), 0) FROM audit_log")
                .fetch_one(&mut *conn)
                .await
                .map_err(db("reading the audit trail"))?,
        );
        if m.n > rows {
            return Ok(Some(Err(AuditFault::RolledBack {
                rows,
                mirror: m.n,
                path: path.to_path_buf(),
            })));
        }
        if m.n == 0 {
            return Ok(Some(Ok(())));
        }
        let row = sqlx::query("SELECT key_id, nonce, sealed FROM audit_log WHERE seq = ?")
            .bind(m.n)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading the audit trail"))?;
        let hash = row.and_then(|r| {
            let plain = self
                .keys
                .open(
                    Purpose::Log,
                    r.get("key_id"),
                    &record_aad(m.n),
                    &r.get::<Vec<u8>, _>("nonce"),
                    &r.get::<Vec<u8>, _>("sealed"),
                )
                .ok()?;
            let e: Sealed = serde_json::from_slice(&plain).ok()?;
            Some(entry_hash(&hex::decode(&e.prev).ok()?, m.n, &e.salt, &e.record).to_vec())
        });
        if hash.as_deref() == Some(&m.hash[..]) {
            Ok(Some(Ok(())))
        } else {
            Ok(Some(Err(AuditFault::Rewritten {
                seq: m.n,
                path: path.to_path_buf(),
            })))
        }
    }

    /// Writes the head mirror if `n` is ahead of it (atomic rename, 0600).
    fn write_mirror(&self, key: &AuditKey, path: &std::path::Path, n: i64, hash: &[u8]) {
        let store_id = self.integrity.store_id();
        if let Ok(text) = std::fs::read_to_string(path) {
            if parse_mirror(key, store_id, &text).is_some_and(|m| m.n >= n) {
                return;
            }
        }
        let sig = key.pair.sign(&head_message(store_id, n, hash));
        let body = format!(
            "{store_id} {n} {} {}\n",
            hex::encode(hash),
            hex::encode(sig.as_ref())
        );
        if let Err(e) = crate::integrity::write_private(path, &body) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the audit head mirror; rollback detection of the trail is weaker until it can");
        }
    }
}

fn parse_mirror(key: &AuditKey, store_id: &str, text: &str) -> Option<MirrorHead> {
    let mut it = text.split_whitespace();
    let (id, n, hash, sig) = (
        it.next()?,
        it.next()?.parse::<i64>().ok()?,
        hex::decode(it.next()?).ok()?,
        hex::decode(it.next()?).ok()?,
    );
    let public = UnparsedPublicKey::new(&ED25519, key.pair.public_key().as_ref());
    (id == store_id && public.verify(&head_message(store_id, n, &hash), &sig).is_ok())
        .then_some(MirrorHead { n, hash })
}

async fn read_head(conn: &mut SqliteConnection) -> Result<(i64, Vec<u8>), StoreError> {
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as("SELECT n, hash FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("reading the audit head"))?;
    Ok(head.unwrap_or((0, vec![0u8; 32])))
}
