//! The key hierarchy at run time: data keys that really rotate.
//!
//! A key-encryption key (KEK) from outside the file (passphrase through
//! Argon2id, key file or OS keychain) wraps any number of data-encryption
//! keys (DEKs) in `data_keys`, each with an id and a purpose (readings,
//! patient identity, key log). One DEK per purpose is active: everything
//! sealed from then on is sealed under it, and every sealed row names its
//! key (`key_id`), so older rows stay readable under their own key.
//!
//! Why: a rotation that only re-wraps the same DEKs leaves the old
//! passphrase plus an old copy of the key rows able to read data written
//! after the rotation. Here a rotation ([`Keyring::rotate_kek`]) makes new
//! DEKs, re-wraps the old ones only while something still references them
//! and destroys the rest.
//!
//! Each DEK counts its seals (persisted in the same transaction as the
//! sealed row): AES-GCM with random 96-bit nonces allows at most 2^32 seals
//! per key (NIST SP 800-38D §8.3), so a key that reaches [`SEAL_BUDGET`] is
//! replaced automatically before the next write transaction.
//!
//! Each wrapped key's AAD binds its id, its purpose and the KDF record
//! (salt and Argon2id parameters, or "no KDF" for a key file or keychain
//! key), so the parameters in the file cannot be swapped or added.

use crate::crypto::{KeyBytes, OpenError, SealingKey};
use crate::keylog::{self, KeyOp};
use crate::keys::{KdfParams, KeySource};
use crate::{db, StoreError};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

/// NIST SP 800-38D §8.3: with random 96-bit nonces one key may seal at most
/// 2^32 times.
pub const SEAL_LIMIT: u64 = 1 << 32;
/// A data key is replaced once it has sealed this often: a quarter of
/// [`SEAL_LIMIT`], so even a key whose replacement keeps failing for a long
/// time stays far from the limit.
pub const SEAL_BUDGET: u64 = 1 << 30;
/// Past this, sealing refuses ([`StoreError::KeyBudget`]): only reached if
/// replacing the key failed for 2^30 seals in a row.
const SEAL_REFUSE: u64 = SEAL_LIMIT / 2;

const AAD_DEK_V1: &[u8] = b"vigil/dek/v1/";
const AAD_DEK_V2: &[u8] = b"vigil/dek/v2/";

/// What a data key protects. Separate keys: a holder of the readings key
/// alone cannot learn who a patient is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    Readings,
    Phi,
    Log,
}

impl Purpose {
    pub(crate) const ALL: [Purpose; 3] = [Purpose::Readings, Purpose::Phi, Purpose::Log];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Purpose::Readings => "readings",
            Purpose::Phi => "phi",
            Purpose::Log => "log",
        }
    }

    fn parse(s: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The ids schema 6 gave the two keys of older stores.
    pub(crate) fn legacy_id(self) -> i64 {
        match self {
            Purpose::Readings => 1,
            Purpose::Phi => 2,
            Purpose::Log => 0,
        }
    }
}

/// How the KEK is derived from a passphrase: salt and Argon2id parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KdfRecord {
    pub(crate) salt: Vec<u8>,
    pub(crate) params: KdfParams,
}

impl KdfRecord {
    /// A fresh random salt with today's parameters (RFC 9106).
    pub(crate) fn fresh() -> KdfRecord {
        let mut salt = vec![0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .expect("OS random generator failed");
        KdfRecord {
            salt,
            params: KdfParams::default(),
        }
    }

    /// The bytes every wrapped key's AAD binds: the parameters and salt,
    /// or "none" for a key that needs no derivation.
    fn binding(rec: Option<&KdfRecord>) -> Vec<u8> {
        match rec {
            None => b"kdf:none".to_vec(),
            Some(r) => {
                let mut b = b"kdf:argon2id/v19/".to_vec();
                for x in [r.params.m_cost_kib, r.params.t_cost, r.params.p_cost] {
                    b.extend_from_slice(&x.to_le_bytes());
                }
                b.extend_from_slice(&(r.salt.len() as u32).to_le_bytes());
                b.extend_from_slice(&r.salt);
                b
            }
        }
    }

    async fn load(conn: &mut SqliteConnection) -> Result<Option<KdfRecord>, StoreError> {
        let row = sqlx::query("SELECT salt, m_cost_kib, t_cost, p_cost FROM kdf WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading key parameters"))?;
        let Some(row) = row else { return Ok(None) };
        let int = |c: &str| u32::try_from(row.get::<i64, _>(c)).unwrap_or(u32::MAX);
        let rec = KdfRecord {
            salt: row.get("salt"),
            params: KdfParams {
                m_cost_kib: int("m_cost_kib"),
                t_cost: int("t_cost"),
                p_cost: int("p_cost"),
            },
        };
        if !(16..=64).contains(&rec.salt.len()) {
            return Err(StoreError::KdfParams(format!(
                "a salt of {} bytes",
                rec.salt.len()
            )));
        }
        rec.params.check()?;
        Ok(Some(rec))
    }

    async fn store(conn: &mut SqliteConnection, rec: Option<&KdfRecord>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kdf")
            .execute(&mut *conn)
            .await
            .map_err(db("storing key parameters"))?;
        if let Some(r) = rec {
            sqlx::query("INSERT INTO kdf (id, salt, m_cost_kib, t_cost, p_cost) VALUES (1, ?, ?, ?, ?)")
                .bind(&r.salt)
                .bind(r.params.m_cost_kib)
                .bind(r.params.t_cost)
                .bind(r.params.p_cost)
                .execute(&mut *conn)
                .await
                .map_err(db("storing key parameters"))?;
        }
        Ok(())
    }
}

fn wrap_aad(version: i64, id: i64, purpose: Purpose, kdf: Option<&KdfRecord>) -> Option<Vec<u8>> {
    match version {
        1 => Some([AAD_DEK_V1, purpose.as_str().as_bytes()].concat()),
        2 => Some(
            [
                AAD_DEK_V2,
                purpose.as_str().as_bytes(),
                b"/",
                &id.to_le_bytes()[..],
                &KdfRecord::binding(kdf),
            ]
            .concat(),
        ),
        _ => None,
    }
}

/// One unwrapped data key.
pub(crate) struct Dek {
    pub(crate) id: i64,
    pub(crate) purpose: Purpose,
    key: SealingKey,
    /// Seals so far (a key from before schema 6 counts as spent).
    seals: AtomicU64,
}

/// A sealed value and the key it was sealed under.
pub(crate) struct Sealed {
    pub(crate) key_id: i64,
    pub(crate) nonce: Vec<u8>,
    pub(crate) sealed: Vec<u8>,
}

/// A data-key row as read from the file, before the keyring is built.
struct DekRow {
    id: i64,
    purpose: Purpose,
    key: KeyBytes,
    seals: Option<i64>,
    active: bool,
    wrap_version: i64,
}

/// A `data_keys` row as stored: id, purpose, nonce, wrapped, wrap version, seals, active.
type RawDek = (i64, String, Vec<u8>, Vec<u8>, i64, Option<i64>, bool);

/// The KEK and the unwrapped data keys of a store that opened.
pub(crate) struct Unlocked {
    kek: SealingKey,
    kdf: Option<KdfRecord>,
    rows: Vec<DekRow>,
}

async fn table_exists(conn: &mut SqliteConnection, name: &str) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("reading the schema"))
}

/// Whether the store has keys yet, in either layout (schema 6's
/// `data_keys`, or the `keys` table before it).
pub(crate) async fn has_keys(pool: &SqlitePool) -> Result<bool, StoreError> {
    let mut conn = pool.acquire().await.map_err(db("reading the schema"))?;
    Ok(table_exists(&mut conn, "data_keys").await? || table_exists(&mut conn, "keys").await?)
}

/// Derives the KEK and unwraps every data key, from either layout. A KEK
/// that opens none of them is [`StoreError::WrongKey`]; one that opens some
/// but not all means a key row was altered.
pub(crate) async fn unlock(pool: &SqlitePool, key: &KeySource) -> Result<Unlocked, StoreError> {
    let mut conn = pool.acquire().await.map_err(db("reading keys"))?;
    let kdf = KdfRecord::load(&mut conn).await?;
    let kek_bytes = match (&kdf, key.needs_salt()) {
        (Some(r), _) => key.derive(&r.salt, r.params)?,
        // Created with a key file or keychain key: a passphrase cannot open it.
        (None, true) => return Err(StoreError::WrongKey),
        (None, false) => key.derive(&[], KdfParams::default())?,
    };
    let kek = SealingKey::new(&kek_bytes);
    let raw: Vec<RawDek> = if table_exists(&mut conn, "data_keys").await? {
        sqlx::query_as(
            "SELECT id, purpose, nonce, wrapped, wrap_version, seals, active FROM data_keys ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db("reading keys"))?
    } else {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT purpose, nonce, wrapped FROM keys")
                .fetch_all(&mut *conn)
                .await
                .map_err(db("reading keys"))?;
        rows.into_iter()
            .map(|(p, n, w)| {
                let id = Purpose::parse(&p).map_or(-1, Purpose::legacy_id);
                (id, p, n, w, 1, None, true)
            })
            .collect()
    };
    let mut rows = Vec::new();
    let mut failed = None;
    for (id, purpose, nonce, wrapped, version, seals, active) in raw {
        let opened = Purpose::parse(&purpose).and_then(|p| {
            let aad = wrap_aad(version, id, p, kdf.as_ref())?;
            let plain = kek.open(&aad, &nonce, &wrapped).ok()?;
            Some((p, KeyBytes::from_slice(&plain)?))
        });
        match opened {
            Some((purpose, key)) => rows.push(DekRow {
                id,
                purpose,
                key,
                seals,
                active,
                wrap_version: version,
            }),
            None => failed = failed.or(Some(id)),
        }
    }
    match failed {
        _ if rows.is_empty() => Err(StoreError::WrongKey),
        Some(id) => Err(StoreError::TamperedRecord {
            table: "data_keys",
            id,
        }),
        None => Ok(Unlocked { kek, kdf, rows }),
    }
}

/// The next key id: never one used before, even by a destroyed key.
async fn next_key_id(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'data_key_hw'), 0),
                    coalesce((SELECT max(id) FROM data_keys), 0)) + 1",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("allocating a key id"))?;
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('data_key_hw', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db("allocating a key id"))?;
    Ok(id)
}

/// Makes a new active data key for `purpose` (the previous one, if any,
/// stays for reading), wrapped under `kek`.
async fn insert_dek(
    conn: &mut SqliteConnection,
    kek: &SealingKey,
    kdf: Option<&KdfRecord>,
    purpose: Purpose,
) -> Result<(i64, KeyBytes), StoreError> {
    let id = next_key_id(conn).await?;
    let dek = KeyBytes::generate();
    let aad = wrap_aad(2, id, purpose, kdf).expect("version 2");
    let (nonce, wrapped) = kek.seal(&aad, &dek.0);
    sqlx::query("UPDATE data_keys SET active = 0 WHERE purpose = ? AND active = 1")
        .bind(purpose.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db("storing a data key"))?;
    sqlx::query(
        "INSERT INTO data_keys (id, purpose, nonce, wrapped, wrap_version, created, seals, active)
         VALUES (?, ?, ?, ?, 2, ?, 0, 1)",
    )
    .bind(id)
    .bind(purpose.as_str())
    .bind(nonce)
    .bind(wrapped)
    .bind(chrono::Utc::now().timestamp_micros())
    .execute(&mut *conn)
    .await
    .map_err(db("storing a data key"))?;
    Ok((id, dek))
}

/// Re-wraps data key `id` (its bytes `dek`) under `kek` with `kdf` bound.
async fn rewrap(
    conn: &mut SqliteConnection,
    kek: &SealingKey,
    kdf: Option<&KdfRecord>,
    id: i64,
    purpose: Purpose,
    dek: &KeyBytes,
) -> Result<(), StoreError> {
    let aad = wrap_aad(2, id, purpose, kdf).expect("version 2");
    let (nonce, wrapped) = kek.seal(&aad, &dek.0);
    sqlx::query("UPDATE data_keys SET nonce = ?, wrapped = ?, wrap_version = 2 WHERE id = ?")
        .bind(nonce)
        .bind(wrapped)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db("re-wrapping a data key"))?;
    Ok(())
}

/// Ids of the data keys some row still needs, plus `extra` (spill files).
///
/// Every table with a `key_id` column counts, found in the schema rather
/// than listed here, so a table added later cannot have its key destroyed
/// by a rotation that forgot it (a row whose `sealed` is NULL counts too:
/// at worst a key is kept longer). The store test
/// `keys::every_sealed_table_names_its_key` checks that each table with a
/// `sealed` column has a `key_id`.
async fn referenced(conn: &mut SqliteConnection, extra: &[i64]) -> Result<HashSet<i64>, StoreError> {
    let what = "finding which data keys are in use";
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT m.name FROM sqlite_master m
         WHERE m.type = 'table' AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'key_id')
         ORDER BY m.name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db(what))?;
    let mut ids: HashSet<i64> = extra.iter().copied().collect();
    if tables.is_empty() {
        return Ok(ids);
    }
    let union = tables
        .iter()
        .map(|t| format!("SELECT key_id FROM \"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let found: Vec<i64> = sqlx::query_scalar(&union)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?;
    ids.extend(found);
    Ok(ids)
}

struct State {
    keys: HashMap<i64, Arc<Dek>>,
    active: HashMap<Purpose, i64>,
}

/// The unwrapped keys of an open store.
pub(crate) struct Keyring {
    kek: SealingKey,
    kdf: Option<KdfRecord>,
    state: RwLock<State>,
    budget: AtomicU64,
    due: AtomicBool,
}

impl Keyring {
    fn build(u: Unlocked) -> Keyring {
        let mut keys = HashMap::new();
        let mut active = HashMap::new();
        for r in u.rows {
            // A key from before schema 6 was never counted: treat it as spent.
            let seals = r.seals.map_or(SEAL_BUDGET, |n| n.max(0) as u64);
            if r.active {
                active.insert(r.purpose, r.id);
            }
            keys.insert(
                r.id,
                Arc::new(Dek {
                    id: r.id,
                    purpose: r.purpose,
                    key: SealingKey::new(&r.key),
                    seals: AtomicU64::new(seals),
                }),
            );
        }
        let ring = Keyring {
            kek: u.kek,
            kdf: u.kdf,
            state: RwLock::new(State { keys, active }),
            budget: AtomicU64::new(SEAL_BUDGET),
            due: AtomicBool::new(false),
        };
        ring.recheck_due();
        ring
    }

    /// A read-only keyring (salvage from a damaged file): nothing is written.
    pub(crate) fn read_only(u: Unlocked) -> Keyring {
        Keyring::build(u)
    }

    /// The keyring of an existing store after its migrations ran: wraps
    /// keys from before schema 6 with the KDF record bound, and makes the
    /// key-log key if there is none.
    pub(crate) async fn load(pool: &SqlitePool, u: Unlocked) -> Result<Keyring, StoreError> {
        let legacy: Vec<(i64, Purpose, KeyBytes)> = u
            .rows
            .iter()
            .filter(|r| r.wrap_version < 2)
            .map(|r| (r.id, r.purpose, r.key.clone()))
            .collect();
        // A purpose without an active key (the key log before schema 6, or
        // an edited file) gets a new one: sealing always has a key.
        let missing: Vec<Purpose> = Purpose::ALL
            .into_iter()
            .filter(|p| !u.rows.iter().any(|r| r.purpose == *p && r.active))
            .collect();
        let ring = Keyring::build(u);
        if legacy.is_empty() && missing.is_empty() {
            return Ok(ring);
        }
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("upgrading the data keys"))?;
        let mut events = Vec::new();
        let mut added = Vec::new();
        for purpose in missing {
            let (id, dek) = insert_dek(&mut tx, &ring.kek, ring.kdf.as_ref(), purpose).await?;
            let why = if purpose == Purpose::Log {
                "key log started"
            } else {
                "no active key of this purpose was found"
            };
            events.push((KeyOp::Created, Some(id), Some(purpose), why.to_string()));
            added.push((id, purpose, dek));
        }
        for (id, purpose, dek) in &legacy {
            rewrap(&mut tx, &ring.kek, ring.kdf.as_ref(), *id, *purpose, dek).await?;
            events.push((
                KeyOp::Rewrapped,
                Some(*id),
                Some(*purpose),
                "schema 6: key parameters bound".to_string(),
            ));
        }
        let log_key = match added.iter().find(|a| a.1 == Purpose::Log) {
            Some((id, _, dek)) => (*id, Arc::new(SealingKey::new(dek))),
            None => {
                let d = ring.active_dek(Purpose::Log);
                let bytes = ring.unwrap_again(&mut tx, d.id).await?;
                (d.id, Arc::new(SealingKey::new(&bytes)))
            }
        };
        for (op, key, purpose, detail) in events {
            keylog::append(&mut tx, (log_key.0, &log_key.1), op, key, purpose, &detail).await?;
        }
        tx.commit().await.map_err(db("upgrading the data keys"))?;
        for (id, purpose, dek) in &added {
            ring.add_active(*id, *purpose, dek);
        }
        ring.recheck_due();
        Ok(ring)
    }

    /// The keys of a new store: a KDF record for a passphrase, one active
    /// data key per purpose, and the key log's first entries.
    pub(crate) async fn create(pool: &SqlitePool, key: &KeySource) -> Result<Keyring, StoreError> {
        let kdf = key.needs_salt().then(KdfRecord::fresh);
        let kek_bytes = match &kdf {
            Some(r) => key.derive(&r.salt, r.params)?,
            None => key.derive(&[], KdfParams::default())?,
        };
        let kek = SealingKey::new(&kek_bytes);
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("creating keys"))?;
        KdfRecord::store(&mut tx, kdf.as_ref()).await?;
        let mut rows = Vec::new();
        for purpose in Purpose::ALL {
            let (id, key) = insert_dek(&mut tx, &kek, kdf.as_ref(), purpose).await?;
            rows.push(DekRow {
                id,
                purpose,
                key,
                seals: Some(0),
                active: true,
                wrap_version: 2,
            });
        }
        let log = rows
            .iter()
            .find(|r| r.purpose == Purpose::Log)
            .expect("a log key");
        let log_key = SealingKey::new(&log.key);
        let detail = format!("new store; {}", describe_kek(key, kdf.as_ref()));
        for r in &rows {
            keylog::append(
                &mut tx,
                (log.id, &log_key),
                KeyOp::Created,
                Some(r.id),
                Some(r.purpose),
                &detail,
            )
            .await?;
        }
        tx.commit().await.map_err(db("committing keys"))?;
        Ok(Keyring::build(Unlocked { kek, kdf, rows }))
    }

    fn active_dek(&self, purpose: Purpose) -> Arc<Dek> {
        let s = self.state.read().unwrap();
        let id = s.active[&purpose];
        s.keys[&id].clone()
    }

    /// The active readings key, for a spill file (sealed outside the database).
    pub(crate) fn spill_key(&self) -> Arc<Dek> {
        self.active_dek(Purpose::Readings)
    }

    fn add_active(&self, id: i64, purpose: Purpose, dek: &KeyBytes) {
        let mut s = self.state.write().unwrap();
        s.keys.insert(
            id,
            Arc::new(Dek {
                id,
                purpose,
                key: SealingKey::new(dek),
                seals: AtomicU64::new(0),
            }),
        );
        s.active.insert(purpose, id);
    }

    /// Unwraps data key `id` again from its row (the keyring keeps no raw key bytes).
    async fn unwrap_again(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
    ) -> Result<Zeroizing<KeyBytes>, StoreError> {
        let row: Option<(String, Vec<u8>, Vec<u8>, i64)> =
            sqlx::query_as("SELECT purpose, nonce, wrapped, wrap_version FROM data_keys WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db("reading a data key"))?;
        let bad = || StoreError::TamperedRecord {
            table: "data_keys",
            id,
        };
        let (purpose, nonce, wrapped, version) = row.ok_or(StoreError::KeysChanged)?;
        let purpose = Purpose::parse(&purpose).ok_or_else(bad)?;
        let aad = wrap_aad(version, id, purpose, self.kdf.as_ref()).ok_or_else(bad)?;
        let plain = self.kek.open(&aad, &nonce, &wrapped).map_err(|_| bad())?;
        KeyBytes::from_slice(&plain).map(Zeroizing::new).ok_or_else(bad)
    }

    /// Lowers the seal budget (tests and drills prove automatic rotation
    /// with it). It can only be lowered: never above [`SEAL_BUDGET`].
    pub(crate) fn lower_budget(&self, n: u64) {
        self.budget.store(n.clamp(1, SEAL_BUDGET), Ordering::Relaxed);
        self.recheck_due();
    }

    fn recheck_due(&self) {
        let budget = self.budget.load(Ordering::Relaxed);
        let s = self.state.read().unwrap();
        let due = s
            .active
            .values()
            .any(|id| s.keys[id].seals.load(Ordering::Relaxed) >= budget);
        self.due.store(due, Ordering::Relaxed);
    }

    /// Whether an active key has reached its budget.
    pub(crate) fn rotation_due(&self) -> bool {
        self.due.load(Ordering::Relaxed)
    }

    /// Seals with `dek`, counting the seal; refuses past [`SEAL_REFUSE`].
    pub(crate) fn seal_counted(
        &self,
        dek: &Dek,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<(u64, Vec<u8>, Vec<u8>), StoreError> {
        let n = dek.seals.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= SEAL_REFUSE {
            return Err(StoreError::KeyBudget(dek.id));
        }
        if n >= self.budget.load(Ordering::Relaxed) {
            self.due.store(true, Ordering::Relaxed);
        }
        let (nonce, sealed) = dek.key.seal(aad, plain);
        Ok((n, nonce, sealed))
    }

    /// Seals under the active key for `purpose` and records the seal count
    /// in the same transaction (`conn`). Fails with
    /// [`StoreError::KeysChanged`] if that key is no longer active in the
    /// file (another process rotated the keys): nothing is written under a
    /// key that may already be destroyed.
    pub(crate) async fn seal(
        &self,
        conn: &mut SqliteConnection,
        purpose: Purpose,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Sealed, StoreError> {
        let sealed = self.seal_deferred(purpose, aad, plain)?;
        self.persist_count(conn, sealed.key_id).await?;
        Ok(sealed)
    }

    /// [`Keyring::seal`] without recording the count: for a transaction
    /// that seals many rows (an append seals one chunk per series), which
    /// must call [`Keyring::persist_count`] for the key before it commits.
    pub(crate) fn seal_deferred(
        &self,
        purpose: Purpose,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Sealed, StoreError> {
        let dek = self.active_dek(purpose);
        let (_, nonce, sealed) = self.seal_counted(&dek, aad, plain)?;
        Ok(Sealed {
            key_id: dek.id,
            nonce,
            sealed,
        })
    }

    /// Records key `key_id`'s seal count (at least what this process
    /// counted) in the caller's transaction; [`StoreError::KeysChanged`] if
    /// the key is no longer active in the file.
    pub(crate) async fn persist_count(
        &self,
        conn: &mut SqliteConnection,
        key_id: i64,
    ) -> Result<(), StoreError> {
        let mut script = crate::Script::default();
        self.persist_count_into(&mut script, key_id);
        let found = script.run(conn).await.map_err(db("counting seals"))?;
        Self::check_counted(found.len(), 1)
    }

    /// [`Keyring::persist_count`] as a statement in the caller's `script`,
    /// which returns one row if the key is still active: the caller passes
    /// the rows the script returned to [`Keyring::check_counted`].
    pub(crate) fn persist_count_into(&self, script: &mut crate::Script<'_>, key_id: i64) {
        let n = self
            .state
            .read()
            .unwrap()
            .keys
            .get(&key_id)
            .map_or(0, |d| d.seals.load(Ordering::Relaxed));
        script
            .push("UPDATE data_keys SET seals = max(coalesce(seals, 0), ?) WHERE id = ? AND active = 1 RETURNING id")
            .bind(n as i64)
            .bind(key_id);
    }

    /// [`StoreError::KeysChanged`] unless every counted key was still active
    /// (one row returned per key).
    pub(crate) fn check_counted(returned: usize, keys: usize) -> Result<(), StoreError> {
        if returned != keys {
            return Err(StoreError::KeysChanged);
        }
        Ok(())
    }

    /// Opens a value sealed under key `key_id`, which must be a key of `purpose`.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        key_id: i64,
        aad: &[u8],
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let dek = self
            .state
            .read()
            .unwrap()
            .keys
            .get(&key_id)
            .cloned()
            .ok_or(OpenError)?;
        if dek.purpose != purpose {
            return Err(OpenError);
        }
        dek.key.open(aad, nonce, sealed)
    }

    /// Replaces every active key that reached its budget, in one
    /// transaction, and destroys older keys nothing references any more.
    /// The keyring switches to the new keys before the commit (no write can
    /// seal in between: this transaction holds the write lock) and back if
    /// the commit fails.
    pub(crate) async fn rotate_due(&self, pool: &SqlitePool, spill_keys: &[i64]) -> Result<(), StoreError> {
        let budget = self.budget.load(Ordering::Relaxed);
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("replacing a spent data key"))?;
        let spent: Vec<Arc<Dek>> = {
            let s = self.state.read().unwrap();
            s.active
                .values()
                .map(|id| s.keys[id].clone())
                .filter(|d| d.seals.load(Ordering::Relaxed) >= budget)
                .collect()
        };
        if spent.is_empty() {
            self.due.store(false, Ordering::Relaxed);
            return Ok(());
        }
        let mut added = Vec::new();
        let mut events = Vec::new();
        for old in &spent {
            let (id, dek) = insert_dek(&mut tx, &self.kek, self.kdf.as_ref(), old.purpose).await?;
            let seals = old.seals.load(Ordering::Relaxed);
            let why = if seals >= SEAL_BUDGET && old.id == old.purpose.legacy_id() {
                format!(
                    "replaces key {} (from before seal counting: treated as spent)",
                    old.id
                )
            } else {
                format!("replaces key {} after {seals} seals (budget {budget})", old.id)
            };
            events.push((KeyOp::AutoRotated, Some(id), Some(old.purpose), why));
            added.push((id, old.purpose, dek));
        }
        // Keys inactive before this rotation and referenced by nothing. The
        // keys just replaced are kept until the next rotation: a reader may
        // still hold them.
        let spent_ids: HashSet<i64> = spent.iter().map(|d| d.id).collect();
        let inactive: Vec<i64> = {
            let s = self.state.read().unwrap();
            let active: HashSet<i64> = s.active.values().copied().collect();
            s.keys.keys().copied().filter(|id| !active.contains(id)).collect()
        };
        let used = referenced(&mut tx, spill_keys).await?;
        let mut destroyed = Vec::new();
        for id in inactive
            .into_iter()
            .filter(|id| !used.contains(id) && !spent_ids.contains(id))
        {
            sqlx::query("DELETE FROM data_keys WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("destroying a data key"))?;
            events.push((
                KeyOp::Destroyed,
                Some(id),
                None,
                "no longer referenced".to_string(),
            ));
            destroyed.push(id);
        }
        // Switch before the commit; undo if it fails.
        let before_active = self.state.read().unwrap().active.clone();
        for (id, purpose, dek) in &added {
            self.add_active(*id, *purpose, dek);
        }
        let result = async {
            let log = self.active_dek(Purpose::Log);
            let bytes = self.unwrap_again(&mut tx, log.id).await?;
            let log_key = SealingKey::new(&bytes);
            for (op, key, purpose, detail) in events {
                keylog::append(&mut tx, (log.id, &log_key), op, key, purpose, &detail).await?;
            }
            tx.commit().await.map_err(db("replacing a spent data key"))
        }
        .await;
        let mut s = self.state.write().unwrap();
        match result {
            Ok(()) => {
                for id in destroyed {
                    s.keys.remove(&id);
                }
                drop(s);
                self.recheck_due();
                Ok(())
            }
            Err(e) => {
                for (id, _, _) in &added {
                    s.keys.remove(id);
                }
                s.active = before_active;
                Err(e)
            }
        }
    }

    /// A real rotation: a new KEK from `new` (a new salt and today's
    /// Argon2id parameters for a passphrase), new data keys for every
    /// purpose, the older keys re-wrapped under the new KEK only while a
    /// row or spill file references them, the rest destroyed, all recorded
    /// in the key log. One transaction: a crash leaves the old keys or the
    /// new ones. The store should be closed afterwards (its keyring still
    /// holds the old KEK).
    pub(crate) async fn rotate_kek(
        &self,
        pool: &SqlitePool,
        old: &KeySource,
        new: &KeySource,
        spill_keys: &[i64],
    ) -> Result<RotationReport, StoreError> {
        let new_kdf = new.needs_salt().then(KdfRecord::fresh);
        let new_kek = SealingKey::new(&match &new_kdf {
            Some(r) => new.derive(&r.salt, r.params)?,
            None => new.derive(&[], KdfParams::default())?,
        });
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("rotating keys"))?;
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, purpose FROM data_keys ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("rotating keys"))?;
        let used = referenced(&mut tx, spill_keys).await?;
        let mut report = RotationReport::default();
        let mut events = Vec::new();
        for (id, purpose) in rows {
            let purpose = Purpose::parse(&purpose).ok_or(StoreError::TamperedRecord {
                table: "data_keys",
                id,
            })?;
            if used.contains(&id) {
                let dek = self.unwrap_again(&mut tx, id).await?;
                rewrap(&mut tx, &new_kek, new_kdf.as_ref(), id, purpose, &dek).await?;
                events.push((
                    KeyOp::Rewrapped,
                    Some(id),
                    Some(purpose),
                    "still referenced: kept for reading".to_string(),
                ));
                report.kept.push(id);
            } else {
                sqlx::query("DELETE FROM data_keys WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("destroying a data key"))?;
                events.push((
                    KeyOp::Destroyed,
                    Some(id),
                    Some(purpose),
                    "no longer referenced".to_string(),
                ));
                report.destroyed.push(id);
            }
        }
        let mut log_key = None;
        for purpose in Purpose::ALL {
            let (id, dek) = insert_dek(&mut tx, &new_kek, new_kdf.as_ref(), purpose).await?;
            events.push((
                KeyOp::Created,
                Some(id),
                Some(purpose),
                "new data key at rotation".to_string(),
            ));
            report.created.push(id);
            if purpose == Purpose::Log {
                log_key = Some((id, SealingKey::new(&dek)));
            }
        }
        KdfRecord::store(&mut tx, new_kdf.as_ref()).await?;
        events.push((
            KeyOp::Rotated,
            None,
            None,
            format!(
                "key-encryption key from {} to {}",
                old.kind(),
                describe_kek(new, new_kdf.as_ref())
            ),
        ));
        let (log_id, log_key) = log_key.expect("a log key");
        for (op, key, purpose, detail) in events {
            keylog::append(&mut tx, (log_id, &log_key), op, key, purpose, &detail).await?;
        }
        tx.commit().await.map_err(db("committing the new keys"))?;
        Ok(report)
    }
}

/// Which data keys a rotation created, kept (re-wrapped) and destroyed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub created: Vec<i64>,
    pub kept: Vec<i64>,
    pub destroyed: Vec<i64>,
}

fn describe_kek(key: &KeySource, kdf: Option<&KdfRecord>) -> String {
    match kdf {
        Some(r) => format!(
            "{} (Argon2id m = {} KiB, t = {}, p = {})",
            key.kind(),
            r.params.m_cost_kib,
            r.params.t_cost,
            r.params.p_cost
        ),
        None => key.kind().to_string(),
    }
}
