//! Vigil's encrypted local store.
//!
//! Every reading is sealed with AES-256-GCM before it touches disk. Readings
//! of one series (admission × bed × device × code) are grouped into chunks,
//! encoded compactly ([`codec`]), sealed with an AAD that binds the chunk to
//! its series and time range, and written in one SQLite transaction per
//! batch. Patient identity lives in a separate table under its own key
//! ([`Patient`]). Bed ids, device addresses and series descriptors are
//! sealed too; lookups go through keyed tags ([`lookup`]). Callers see a small API — append a batch, query a series,
//! latest per bed, admit/discharge — so the layout can change behind it.

mod audit;
pub mod backup;
mod chunks;
mod codec;
pub mod crypto;
mod frames;
mod integrity;
mod keylog;
mod keyring;
pub mod keys;
mod logs;
mod lookup;
mod news2;
mod range;
mod salvage;
mod settings;
pub mod spill;
mod upgrade;
mod users;
mod vault;
mod write;

use chrono::{DateTime, NaiveDate, Utc};
use keyring::Keyring;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use ts_rs::TS;
use vigil_model::{AdmissionId, Mdc, Source};

pub use audit::{entry_hash, AuditEntry, AuditFault, AuditRecord, AuditReport, Outcome};
pub use chunks::{ChunkStats, CompactionReport, TrendBucket, COMPACT_GROUPS, WINDOW_US};
pub use range::{AdmissionSummary, CheckedReadings, ChunkFailure, ChunkSource, Selection};
pub use codec::CodecError;
pub use integrity::{default_counter_dir, Rollback, COUNTER_DIR_ENV};
pub use keylog::{KeyEvent, KeyOp};
pub use keyring::{RotationReport, SEAL_BUDGET, SEAL_LIMIT};
pub use keys::{create_key_file, KdfParams, KeySource};
pub use logs::{
    AlarmRecord, DeadLetter, DeadLetterKind, DeviceAssignment, OutboxEntry, OutboxStatus, SetAside,
};
pub use news2::News2Record;
pub use salvage::{LostRows, LostSeries, SalvageReport};
pub use settings::SavedSettings;
pub use spill::{SpillContents, SpillWriter};
pub use users::{hash_password, verify_password, UserRecord};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the migrations not yet applied. sqlx takes no lock on SQLite, so two
/// processes opening an old store at once (the gateway starting while `vigil
/// store verify` runs) can race on the same migration: the loser's statement
/// fails ("table … already exists") and rolls back. It then runs again and
/// finds the migration applied by the other; a migration that fails for any
/// other reason fails the same way each time and is returned.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut wait = std::time::Duration::from_millis(50);
    for _ in 0..5 {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::ExecuteMigration(..)) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(MIGRATOR.run(pool).await?)
}

/// Everything that can go wrong in the store. Messages never carry patient
/// data or values: only ids, paths and reasons.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Db {
        context: &'static str,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the key does not open this database (wrong passphrase, key file or keychain entry); nothing was changed")]
    WrongKey,
    #[error("key error: {0}")]
    Key(String),
    /// The KDF parameters stored in the file are outside what Vigil accepts:
    /// the file was edited (a downgrade) or is not Vigil's.
    #[error("the store's key-derivation parameters were altered ({0}); the store was not unlocked and nothing was changed")]
    KdfParams(String),
    /// A data key reached its seal limit and could not be replaced.
    #[error("data key {0} has sealed as often as AES-GCM with random nonces allows; it could not be replaced, so nothing more is written under it")]
    KeyBudget(i64),
    /// Another process rotated the store's keys while this one had it open.
    #[error(
        "the store's data keys were rotated by another process; restart Vigil to unlock with the new key"
    )]
    KeysChanged,
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("chunk {chunk} of series {series} failed authentication: it was altered, moved or truncated")]
    Tampered { chunk: i64, series: i64 },
    #[error("ingest frame {frame} failed authentication: it was altered, moved or truncated")]
    TamperedFrame { frame: i64 },
    #[error("no admission {0} in this store")]
    UnknownAdmission(String),
    #[error("{table} record {id} failed authentication: it was altered or moved")]
    TamperedRecord { table: &'static str, id: i64 },
    #[error("{table} record {id} is missing: it was deleted")]
    MissingRecord { table: &'static str, id: i64 },
    #[error("chunks {} and {} of series {series} hold readings at the same time: a replayed copy of old data", chunks.0, chunks.1)]
    Overlap { series: i64, chunks: (i64, i64) },
    #[error("admission {0} failed authentication: its sealed record was altered or moved")]
    TamperedAdmission(String),
    #[error("chunk {chunk} authenticated but could not be decoded: {source}")]
    Corrupt { chunk: i64, source: CodecError },
    #[error("bed {0} already has an admitted patient")]
    BedOccupied(String),
    #[error("bed {0} has no admitted patient")]
    BedEmpty(String),
    #[error("invalid patient details: {0}")]
    InvalidPatient(String),
    /// The database file itself is damaged (SQLite reports it malformed or
    /// not a database, or its integrity check fails). Not a wrong key.
    #[error("the database {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("{0}")]
    Spill(String),
    /// A backup or restore could not be made or was refused (the message says why).
    #[error("{0}")]
    Backup(String),
    /// Moving an older store's rows to the sealed layout of schema 11
    /// failed; the transaction rolled back and the next open tries again.
    #[error("the store could not be upgraded to schema 11 ({0}); nothing was changed")]
    Upgrade(String),
    /// A row's plaintext columns (bed, times, state, sequence number) do
    /// not match its integrity MAC: edited in the file, or copied.
    #[error(
        "{table} record {id} failed its integrity check: its bed, time or state was altered in the file"
    )]
    IntegrityRow { table: &'static str, id: String },
    /// A scope's rows do not add up to its sealed digest: rows were
    /// deleted, added or replaced behind the store's back.
    #[error("{scope}: {rows} rows, the sealed count says {sealed}{}", if rows == sealed { " (rows were replaced)" } else { "" })]
    ScopeMismatch { scope: String, rows: u64, sealed: u64 },
    /// A sealed digest (or the store counter) failed authentication.
    #[error("the sealed digest of {scope} failed authentication: it was altered or copied from another copy of the store")]
    DigestTampered { scope: String },
    /// The file is older than its last use (counter behind its mirror).
    #[error("the store was rolled back to an older copy: its counter is {store}, but {} says {mirror}", path.display())]
    RolledBack { store: i64, mirror: i64, path: PathBuf },
}

impl StoreError {
    /// Whether this error says the database file is damaged (as opposed to a
    /// wrong key, a busy database or a permission or disk error).
    pub fn is_damaged(&self) -> bool {
        match self {
            StoreError::Damaged { .. } => true,
            StoreError::Db { source, .. } => sqlite_damaged(source),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlite_damaged(e),
            _ => false,
        }
    }
}

/// SQLITE_CORRUPT (11, and its extended codes) or SQLITE_NOTADB (26).
fn sqlite_damaged(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 11 | 26)),
        _ => false,
    }
}

fn damaged(path: &Path, e: StoreError) -> StoreError {
    if e.is_damaged() && !matches!(e, StoreError::Damaged { .. }) {
        StoreError::Damaged {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    } else {
        e
    }
}

/// A damaged store moved aside at start (see [`Store::open_or_recover`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Where the damaged file is now (never deleted).
    pub path: PathBuf,
    /// Why it was moved: what SQLite or the integrity check said.
    pub reason: String,
}

pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// Statements sent to the connection as one query string, so in one round
/// trip: sqlx runs every statement of a string in order, and positional `?`
/// parameters continue from one statement to the next (so no `?NNN` here).
/// Each round trip hands the statement to sqlx's connection thread and
/// waits for its answer (two thread wake-ups): for the writer's 0.5 s
/// flush those switches, not SQLite, were most of the CPU.
#[derive(Default)]
pub(crate) struct Script<'q> {
    sql: String,
    args: sqlx::sqlite::SqliteArguments<'q>,
}

impl<'q> Script<'q> {
    /// This script with `sql` (no parameters) run before its statements.
    pub(crate) fn after(mut self, sql: &str) -> Self {
        self.sql.insert_str(0, &format!("{sql};\n"));
        self
    }
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self
    }
    pub(crate) fn bind<T>(&mut self, v: T) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        use sqlx::Arguments;
        // Encoding an integer, float, text or blob cannot fail.
        self.args.add(v).expect("binding a parameter");
        self
    }
    /// Runs every statement; returns the rows any of them returned.
    pub(crate) async fn run(
        self,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
        if self.sql.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_with(&self.sql, self.args).fetch_all(conn).await
    }
}

/// Patient category, which sets alarm defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum PatientCategory {
    Adult,
    Paediatric,
    Neonatal,
}

/// Who the patient is. Sealed under the PHI key; never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub display_name: String,
    pub mrn: String,
    pub date_of_birth: NaiveDate,
    pub category: PatientCategory,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Debug output ends up in logs and panics: keep PHI out of it.
        f.debug_struct("Patient")
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admission {
    pub id: AdmissionId,
    pub bed: String,
    pub patient: Patient,
    pub admitted_at: DateTime<Utc>,
    pub discharged_at: Option<DateTime<Utc>>,
}

/// Which readings a series query wants.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub bed: String,
    pub code: Mdc,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The encrypted store. Cheap to clone (a pool and the keyring behind `Arc`).
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    keys: std::sync::Arc<Keyring>,
    path: PathBuf,
    outbox: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Series rows never change once written: remember their ids.
    series_cache: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<chunks::SeriesKey, i64>>>,
    /// The other way round, for reads: a series' descriptor is sealed, so
    /// each is opened once, not once per chunk.
    series_by_id: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<i64, std::sync::Arc<chunks::SeriesKey>>>,
    >,
    /// Keyed tags of bed ids, device addresses and series (schema 11).
    lookup: std::sync::Arc<lookup::Lookup>,
    /// Row MACs, scope digests and the rollback counter (schema 7).
    integrity: std::sync::Arc<integrity::Integrity>,
    /// The audit trail's signing key, loaded (or made) at first use.
    audit: std::sync::Arc<tokio::sync::OnceCell<audit::AuditKey>>,
    /// The connection every write transaction runs on.
    write: write::WriteConn,
}

pub(crate) const AAD_CHUNK: &[u8] = b"vigil/chunk/v1";
pub(crate) const AAD_SUMMARY: &[u8] = b"vigil/summary/v1";

pub(crate) fn source_str(s: Source) -> &'static str {
    match s {
        Source::Real => "real",
        Source::Simulated => "simulated",
    }
}

pub(crate) fn micros_to_utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl Store {
    /// Opens (or creates) the store at `path` with the key from `key`.
    ///
    /// An existing database is checked against the key before anything is
    /// written: a wrong key returns [`StoreError::WrongKey`] and changes nothing.
    ///
    /// A damaged file (SQLite says malformed or not a database, or `PRAGMA
    /// quick_check` fails) returns [`StoreError::Damaged`] and is not
    /// written to. The key is checked first when the key table can be read,
    /// so a wrong key on a damaged file is still [`StoreError::WrongKey`].
    ///
    /// The store counter is mirrored in [`default_counter_dir`] (see
    /// [`Store::open_with_counter_dir`]).
    pub async fn open(path: &Path, key: &KeySource) -> Result<Store, StoreError> {
        Self::open_with_counter_dir(path, key, default_counter_dir().as_deref()).await
    }

    /// [`Store::open`] with the counter mirror in `counter_dir` (None: no
    /// mirror, no rollback detection). A file whose counter is behind its
    /// mirror opens (monitoring must go on) but is reported by
    /// [`Store::rolled_back`] and `verify`.
    pub async fn open_with_counter_dir(
        path: &Path,
        key: &KeySource,
        counter_dir: Option<&Path>,
    ) -> Result<Store, StoreError> {
        let existed = path.exists();
        let (pool, keys) = Self::open_pool(path, key, existed)
            .await
            .map_err(|e| damaged(path, e))?;
        // Schema 11: the lookup key, and at the first open the move of the
        // older rows to their sealed shape (before the integrity check of
        // a pre-schema-7 store MACs the rows in that shape).
        let lookup = match upgrade::run(&pool, &keys).await {
            Ok(l) => l,
            Err(e) => {
                pool.close().await;
                return Err(damaged(path, e));
            }
        };
        let integrity = match integrity::init(&pool, &keys, counter_dir).await {
            Ok(i) => i,
            Err(e) => {
                pool.close().await;
                return Err(damaged(path, e));
            }
        };
        Ok(Store {
            integrity: std::sync::Arc::new(integrity),
            pool,
            keys: std::sync::Arc::new(keys),
            path: path.to_path_buf(),
            outbox: Default::default(),
            series_cache: Default::default(),
            audit: Default::default(),
            series_by_id: Default::default(),
            lookup: std::sync::Arc::new(lookup),
            write: Default::default(),
        })
    }

    /// Opens the store at `path`; if the file is damaged, moves it aside as
    /// `<name>.corrupt-<UTC time>` (with its `-wal`/`-shm` files, never
    /// deleted) and starts a fresh store at `path` under the same key
    /// source. The fresh store has new data keys wrapped by the same
    /// key-encryption key, so `vigil store salvage` can later copy what
    /// still opens from the damaged file. A wrong key, a permission or
    /// disk error is returned as before: nothing is moved.
    pub async fn open_or_recover(
        path: &Path,
        key: &KeySource,
    ) -> Result<(Store, Option<MovedAside>), StoreError> {
        match Store::open(path, key).await {
            Ok(s) => Ok((s, None)),
            Err(StoreError::Damaged { reason, .. }) => {
                let aside = move_aside(path, Utc::now())?;
                tracing::error!(moved_to = %aside.display(), %reason, "the store is damaged: moved aside, starting a new one");
                let store = Store::open(path, key).await?;
                Ok((store, Some(MovedAside { path: aside, reason })))
            }
            Err(e) => Err(e),
        }
    }

    async fn open_pool(
        path: &Path,
        key: &KeySource,
        existed: bool,
    ) -> Result<(SqlitePool, Keyring), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Key(format!("cannot create data directory {}: {e}", dir.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed batch survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        // Retention frees pages with `PRAGMA incremental_vacuum`. The mode is
        // set once, on one connection, where there is no database yet (it
        // takes effect only before the first table; SQLite writes it into the
        // header there and then). Never on the pool's connections: setting it
        // writes the header, so each new connection (a trend read) waited for
        // the write lock, up to the busy timeout.
        if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            use sqlx::{ConnectOptions, Connection};
            let create = opts.clone().auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental);
            create
                .connect()
                .await
                .map_err(db("creating the database"))?
                .close()
                .await
                .map_err(db("creating the database"))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A file, not a server: nothing can hang up on an idle connection,
            // so sqlx's ping before each acquire is a wasted round trip to the
            // connection's thread on every write (the writer's 0.5 s flush).
            .test_before_acquire(false)
            // A failed write must never wedge the store. sqlx rolls back a
            // dropped transaction in the background; when SQLite has already
            // rolled it back itself (disk full, I/O error, RAISE(ROLLBACK))
            // that ROLLBACK fails and the connection stays "inside a
            // transaction" for good: every later write then fails with
            // "begin_with at non-zero transaction depth". So a returning
            // connection is flushed (the ping runs after the queued rollback)
            // and, if still in a transaction, closed: the pool opens a fresh one.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if conn.is_in_transaction() {
                        conn.ping().await?;
                        if conn.is_in_transaction() {
                            let rollback = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                            tracing::warn!(
                                rolled_back = rollback.is_ok(),
                                "a failed write left its connection in a transaction; replacing the connection"
                            );
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
            })
            .connect_with(opts)
            .await
            .map_err(db("opening the database"))?;

        let result = async {
            if keyring::has_keys(&pool).await? {
                // The key first: a wrong key is refused even on a damaged file.
                let unlocked = keyring::unlock(&pool, key).await?;
                quick_check(&pool, path).await?;
                migrate(&pool).await?;
                Keyring::load(&pool, unlocked).await
            } else {
                if existed {
                    quick_check(&pool, path).await?;
                }
                migrate(&pool).await?;
                Keyring::create(&pool, key).await
            }
        }
        .await;
        match result {
            Ok(keys) => Ok((pool, keys)),
            Err(e) => {
                // Release the file before anyone moves it.
                pool.close().await;
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a write transaction. A data key that reached its seal budget
    /// is replaced first, in its own transaction (a failure there is logged
    /// and retried at the next write: the budget leaves ample headroom).
    pub(crate) async fn begin_write(&self, context: &'static str) -> Result<write::WriteTx, StoreError> {
        let mut tx = self.begin_write_deferred(context).await?;
        tx.ensure_begun().await.map_err(db(context))?;
        Ok(tx)
    }

    /// [`Store::begin_write`] whose `BEGIN` goes out with the first
    /// statements run through [`write::WriteTx::run_first`].
    pub(crate) async fn begin_write_deferred(&self, context: &'static str) -> Result<write::WriteTx, StoreError> {
        if self.keys.rotation_due() {
            let spill_keys = self.spill_key_ids();
            if let Err(e) = self.keys.rotate_due(&self.pool, &spill_keys).await {
                tracing::warn!(error = %e, "replacing a data key at its seal budget failed; retrying at the next write");
            }
        }
        self.write.begin_deferred(&self.pool).await.map_err(db(context))
    }

    /// Lowers the number of seals after which a data key is replaced
    /// (default [`SEAL_BUDGET`]); it can only be lowered. For tests and
    /// drills that prove the automatic replacement.
    pub fn lower_seal_budget(&self, seals: u64) {
        self.keys.lower_budget(seals);
    }

    /// Moves everything from the write-ahead log into the database file, then
    /// closes the pool: after a clean shutdown the file stands alone (a copy
    /// or backup of it is complete).
    pub async fn close(self) {
        self.write.close().await;
        if let Err(e) = self.raise_counter().await {
            tracing::warn!(error = %e, "raising the store counter at close failed");
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint at close failed; the log is kept and replayed on open");
        }
        // sqlx hands a released connection back to the pool from a spawned
        // task. One still on its way when `close()` has already emptied the
        // idle list lands idle afterwards and is closed only when the pool is
        // dropped, on its worker thread, after `close` has returned: the WAL
        // then vanishes under a caller that copies the files (a CI failure).
        // So wait, briefly, until every connection is home.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.pool.num_idle() < self.pool.size() as usize && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        self.pool.close().await;
    }
}

/// Rotates the key of the store at `path` from `old` to `new` for real:
/// new data keys for everything written from now on, the older data keys
/// re-wrapped under the new key only while something references them and
/// destroyed otherwise, a new salt and today's Argon2id parameters for a
/// passphrase, every step in the key log. One transaction: a crash leaves
/// the old keys or the new ones. Old data is not re-encrypted: it stays
/// readable under its own (re-wrapped) key until compaction or retention
/// rewrites or removes it; the next rotation then destroys that key.
///
/// Stop Vigil first: a running Vigil notices (its writes fail with
/// [`StoreError::KeysChanged`] and spill) and must be restarted.
pub async fn rotate_key(path: &Path, old: &KeySource, new: &KeySource) -> Result<RotationReport, StoreError> {
    if !path.exists() {
        return Err(StoreError::Key(format!("no store at {}", path.display())));
    }
    let store = Store::open(path, old).await?;
    let spill_keys = store.spill_key_ids();
    let result = store.keys.rotate_kek(&store.pool, old, new, &spill_keys).await;
    store.close().await;
    result
}

/// `PRAGMA quick_check`: b-tree structure, page and record formats.
async fn quick_check(pool: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(5)")
        .fetch_all(pool)
        .await
        .map_err(db("checking the database"))?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Damaged {
        path: path.to_path_buf(),
        reason: format!("integrity check failed: {}", rows.join("; ")),
    })
}

/// Renames `path` (and its `-wal`/`-shm` files, which SQLite finds by name)
/// to `<name>.corrupt-<UTC time>`; returns the new path.
pub fn move_aside(path: &Path, now: DateTime<Utc>) -> Result<PathBuf, StoreError> {
    move_aside_as(path, "corrupt", now)
}

/// Moves the store and its `-wal`/`-shm` files to `<name>.<why>-<UTC time>`.
pub(crate) fn move_aside_as(path: &Path, why: &str, now: DateTime<Utc>) -> Result<PathBuf, StoreError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = path.with_file_name(format!("{name}.{why}-{}", now.format("%Y%m%dT%H%M%S%.3fZ")));
    let io = |e: std::io::Error, p: &Path| {
        StoreError::Key(format!(
            "cannot move the store {} aside: {e}",
            p.display()
        ))
    };
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            std::fs::rename(&from, format!("{}{suffix}", aside.display())).map_err(|e| io(e, &from))?;
        }
    }
    std::fs::rename(path, &aside).map_err(|e| io(e, path))?;
    Ok(aside)
}

#[cfg(test)]
mod send {
    /// The app awaits `open` inside Tauri commands, which need `Send`
    /// futures (sqlx's generic executors can make one not `Send`).
    #[allow(dead_code)]
    fn open_is_send(p: &std::path::Path, k: &crate::KeySource) {
        fn is_send<T: Send>(_: T) {}
        is_send(async move {
            let _ = crate::Store::open(p, k).await;
        });
    }
}
