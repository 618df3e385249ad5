//! Backup and restore of the encrypted store (issue 16).
//!
//! A backup is SQLite's `VACUUM INTO` of the open store: one consistent
//! snapshot taken in a read transaction, so the monitor goes on writing
//! while it runs. It is the store file itself, still sealed: readings,
//! patient details and the wrapped data keys stay encrypted, and it opens
//! only with the site's key (passphrase or key file), which is never in it.
//!
//! A restore never replaces anything it has not checked: the backup is
//! copied beside the store, opened with the key and verified (every chunk,
//! sealed record and the audit trail) before the current store is moved
//! aside (`<name>.replaced-<UTC>`, never deleted) and the copy renamed into
//! place. A store in use by a running monitor is never replaced: running
//! monitors hold [`InUse::shared`], restore needs [`InUse::exclusive`].
//!
//! The copy is an older state of the store on purpose, so its rollback
//! counter and audit-head mirrors (outside the data directory) are reset to
//! it: otherwise the next open would report the restore as a rollback.

use crate::{db, KeySource, Store, StoreError};
use chrono::{DateTime, Utc};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// What a store holds, to tell whether replacing it would lose anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The store's random id (the same in its backups).
    pub store_id: String,
    /// End of the newest chunk of readings.
    pub newest_reading: Option<DateTime<Utc>>,
    /// Chunks and ingest frames of readings, admissions and audit records.
    pub chunks: i64,
    pub admissions: i64,
    pub audit_records: i64,
}

impl Activity {
    /// Whether `self` (the current store) holds something `backup` does
    /// not: newer readings or audit records of the same store, or any data
    /// at all when the backup is of another store.
    pub fn is_newer_than(&self, backup: &Activity) -> bool {
        if self.store_id != backup.store_id {
            return self.chunks > 0 || self.admissions > 0;
        }
        self.newest_reading > backup.newest_reading || self.audit_records > backup.audit_records
    }
}

/// A finished backup: where, how big, and what it holds (verified).
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    pub activity: Activity,
    /// Chunks opened and authenticated in the copy.
    pub chunks_checked: u64,
}

/// A finished restore.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Where the replaced store was moved (None: there was none).
    pub replaced: Option<PathBuf>,
    pub activity: Activity,
    pub chunks_checked: u64,
}

/// Advisory lock on `<store>.in-use`: shared while a monitor (the app, the
/// gateway, a replay) writes the store, exclusive while a restore replaces
/// it. Released when dropped, or by the OS when the process dies.
#[derive(Debug)]
pub struct InUse(#[allow(dead_code)] File);

impl InUse {
    fn file(store: &Path) -> Result<File, StoreError> {
        let path = PathBuf::from(format!("{}.in-use", store.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(&path, e))?;
        }
        OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io(&path, e))
    }

    /// Taken by a running monitor; many may share it.
    pub fn shared(store: &Path) -> Result<InUse, StoreError> {
        let f = Self::file(store)?;
        f.lock_shared().map_err(|e| io(store, e))?;
        Ok(InUse(f))
    }

    /// Taken by a restore; `None` while any monitor has the store.
    pub fn exclusive(store: &Path) -> Result<Option<InUse>, StoreError> {
        let f = Self::file(store)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(InUse(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(store, e)),
        }
    }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backup(format!("{}: {e}", path.display()))
}

impl Store {
    /// What this store holds (see [`Activity`]).
    pub async fn activity(&self) -> Result<Activity, StoreError> {
        // Readings are in chunks and, not yet compacted, in ingest frames.
        let (newest, chunks): (Option<i64>, i64) = sqlx::query_as(
            "SELECT max(t1), sum(n) FROM (SELECT max(t1) AS t1, count(*) AS n FROM chunks
                                          UNION ALL SELECT max(t1), count(*) FROM frames)",
        )
            .fetch_one(&self.pool)
            .await
            .map_err(db("reading the store's extent"))?;
        let admissions: i64 = sqlx::query_scalar("SELECT count(*) FROM admissions")
            .fetch_one(&self.pool)
            .await
            .map_err(db("reading the store's extent"))?;
        let audit_records: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(db("reading the store's extent"))?;
        Ok(Activity {
            store_id: self.integrity.store_id().to_string(),
            newest_reading: newest.map(crate::micros_to_utc),
            chunks,
            admissions,
            audit_records,
        })
    }

    /// Writes a consistent, still encrypted copy of the store to `dest`
    /// (which must not exist; created 0600), then opens the copy with `key`
    /// and verifies it. A copy that fails verification is removed and the
    /// failures returned: a backup that cannot be restored is no backup.
    pub async fn backup(&self, dest: &Path, key: &KeySource) -> Result<Backup, StoreError> {
        if dest.exists() {
            return Err(StoreError::Backup(format!(
                "{} already exists; a backup never overwrites a file",
                dest.display()
            )));
        }
        // An empty file first, so the copy is created with the store's
        // permissions (VACUUM INTO accepts an empty target).
        create_private(dest)?;
        let target = dest.to_str().ok_or_else(|| StoreError::Backup(format!("{} is not valid UTF-8", dest.display())))?;
        if let Err(e) = sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await {
            let _ = std::fs::remove_file(dest);
            return Err(db("writing the backup")(e));
        }
        let checked = verify_copy(dest, key).await;
        let (activity, chunks_checked) = match checked {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(dest);
                return Err(e);
            }
        };
        let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(Backup { path: dest.to_path_buf(), bytes, activity, chunks_checked })
    }
}

/// Opens a copy (no rollback mirror: it is not the live store) and checks
/// every chunk, sealed record and the audit trail.
async fn verify_copy(path: &Path, key: &KeySource) -> Result<(Activity, u64), StoreError> {
    let store = Store::open_with_counter_dir(path, key, None).await?;
    let result = async {
        let (checked, failures) = store.verify().await?;
        let trail = store.audit_verify().await?;
        let mut problems: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
        problems.extend(trail.faults.iter().map(|f| f.to_string()));
        if !problems.is_empty() {
            return Err(StoreError::Backup(format!(
                "the backup {} does not verify ({} problems; first: {})",
                path.display(),
                problems.len(),
                problems[0]
            )));
        }
        Ok((store.activity().await?, checked))
    }
    .await;
    store.close().await;
    result
}

fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map(drop).map_err(|e| io(path, e))
}

/// Replaces the store at `target` with the backup at `backup` (left as it
/// is). `current` is what the store at `target` holds (None: no store, or
/// one too damaged to read); a store holding something the backup does not
/// is replaced only with `force`. Refused while a monitor has the store.
pub async fn restore(
    backup: &Path,
    target: &Path,
    key: &KeySource,
    current: Option<&Activity>,
    force: bool,
    counter_dir: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Restored, StoreError> {
    let Some(_lock) = InUse::exclusive(target)? else {
        return Err(StoreError::Backup(
            "Vigil is running on this store (the app, a gateway or a replay): stop it, then restore".into(),
        ));
    };
    if !backup.is_file() {
        return Err(StoreError::Backup(format!("no backup file {}", backup.display())));
    }
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let name = target.file_name().unwrap_or_default().to_string_lossy().to_string();
    let copy = target.with_file_name(format!("{name}.restoring-{stamp}"));
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    create_private(&copy)?;
    let copied = std::fs::copy(backup, &copy).and_then(|_| File::open(&copy)?.sync_all());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&copy);
        return Err(io(&copy, e));
    }
    let checked = verify_copy(&copy, key).await;
    let (activity, chunks_checked) = match checked {
        Ok(x) => x,
        Err(e) => {
            remove_with_sidecars(&copy);
            return Err(e);
        }
    };
    if let Some(cur) = current.filter(|c| !force && c.is_newer_than(&activity)) {
        remove_with_sidecars(&copy);
        return Err(StoreError::Backup(format!(
            "the current store holds data the backup does not (newest reading {}, {} audit records; backup: {}, {}); \
             use --force to replace it anyway (it is moved aside, not deleted)",
            when(cur.newest_reading),
            cur.audit_records,
            when(activity.newest_reading),
            activity.audit_records
        )));
    }
    let replaced = if target.exists() {
        Some(crate::move_aside_as(target, "replaced", now)?)
    } else {
        None
    };
    std::fs::rename(&copy, target).map_err(|e| io(target, e))?;
    remove_with_sidecars(&copy);
    // The restored file is an older state by intent: its mirrors start again from it.
    if let Some(dir) = counter_dir {
        for ext in ["counter", "audit-head"] {
            let _ = std::fs::remove_file(dir.join(format!("{}.{ext}", activity.store_id)));
        }
    }
    Ok(Restored { replaced, activity, chunks_checked })
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_else(|| "none".into())
}

/// Removes a file and the `-wal`/`-shm`/`.in-use` files SQLite and
/// [`InUse`] leave beside it.
fn remove_with_sidecars(path: &Path) {
    for suffix in ["-wal", "-shm", ".in-use"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let _ = std::fs::remove_file(path);
}
