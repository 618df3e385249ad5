//! Integrity of the plaintext columns and of the set of rows (issue 13 §4).
//!
//! AES-GCM authenticates what is sealed, but deleting a whole row, editing
//! a plaintext column the AAD does not bind (an alarm's `at`, an outbox
//! reading's `settled`), putting back an older sealed record of the same
//! row (an admission from before its discharge) or rolling the whole file
//! back to an older copy leaves nothing to fail. So:
//!
//! * **Row MACs.** A per-store integrity key (32 random bytes, sealed under
//!   the key-log data key in `integrity`, so a key rotation re-wraps it like
//!   any referenced key) computes HMAC-SHA256 over each clinically relevant
//!   row's id and plaintext columns, kept in the row's `mac` column. Reads
//!   refuse a row whose MAC fails; `verify` names table and id.
//! * **Scope digests.** Per scope (one readings series, all chunks, the
//!   alarm log, admissions, devices, outbox, dead letters) a count and the
//!   sum mod 2^256 of the row MACs (an incremental multiset hash), with a
//!   MAC, in `digests`; updated in the same transaction as every insert,
//!   update and delete (compaction and retention included). A deleted,
//!   added or replayed row changes the count or the sum: `verify` reports
//!   "chunks of series 12: 10 rows, the sealed count says 11".
//! * **Epoch.** A counter (`digests` scope `#epoch`), raised at each open
//!   and close, is bound into every digest MAC (so digests copied from a
//!   newer copy into an older one fail) and mirrored, MACed and tagged with
//!   the store's id, in a small file outside the data directory. A store
//!   whose counter is behind its mirror was rolled back to an older copy:
//!   [`Store::rolled_back`] and `vigil store verify` report it.
//!
//! Residual risk (docs/threat-model.md): someone who can replace both the
//! store and the mirror file, or who holds the key, is not detected.

use crate::keyring::{Keyring, Purpose};
use crate::{db, Script, Store, StoreError};
use ring::hmac;
use sqlx::{Row, SqliteConnection};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const AAD_INTEGRITY: &[u8] = b"vigil/integrity-key/v1/";
/// Scope of the epoch counter in `digests`.
const EPOCH: &str = "#epoch";
/// Environment variable that overrides where the counter mirrors live.
pub const COUNTER_DIR_ENV: &str = "VIGIL_STORE_COUNTER_DIR";

/// One MACed field. Each is tagged and length-prefixed, so no two
/// different rows give the same input.
pub(crate) enum F<'a> {
    I(i64),
    N(Option<i64>),
    S(&'a str),
    B(&'a [u8]),
}

/// A whole-file rollback found at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The counter in the store file.
    pub store: i64,
    /// The counter its mirror outside the data directory holds.
    pub mirror: i64,
    pub mirror_path: PathBuf,
}

/// The open store's integrity key and where its counter is mirrored.
pub(crate) struct Integrity {
    key: hmac::Key,
    store_id: String,
    mirror: Option<PathBuf>,
    rollback: Option<Rollback>,
}

/// Changes to scope digests within one transaction.
#[derive(Default)]
pub(crate) struct Delta(BTreeMap<String, (i64, [u64; 4])>);

/// Constant-time equality of two MACs.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn add256(a: &mut [u64; 4], b: &[u64; 4]) {
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        a[i] = s2;
        carry = c1 || c2;
    }
}

fn neg256(a: &[u64; 4]) -> [u64; 4] {
    let mut n = [!a[0], !a[1], !a[2], !a[3]];
    add256(&mut n, &[1, 0, 0, 0]);
    n
}

fn limbs(b: &[u8]) -> [u64; 4] {
    let mut l = [0u64; 4];
    for (i, c) in b.chunks(8).take(4).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        l[i] = u64::from_le_bytes(w);
    }
    l
}

fn bytes(l: &[u64; 4]) -> Vec<u8> {
    l.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Delta {
    pub(crate) fn add(&mut self, scope: impl Into<String>, mac: &[u8]) {
        let e = self.0.entry(scope.into()).or_insert((0, [0; 4]));
        e.0 += 1;
        add256(&mut e.1, &limbs(mac));
    }
    /// A removed row; `mac` None (a row without one) only lowers the count.
    pub(crate) fn remove(&mut self, scope: impl Into<String>, mac: Option<&[u8]>) {
        let e = self.0.entry(scope.into()).or_insert((0, [0; 4]));
        e.0 -= 1;
        if let Some(m) = mac {
            add256(&mut e.1, &neg256(&limbs(m)));
        }
    }
    pub(crate) fn add_chunk(&mut self, series: i64, mac: &[u8]) {
        self.add(format!("chunks:{series}"), mac);
        self.add("chunks", mac);
    }
    pub(crate) fn remove_chunk(&mut self, series: i64, mac: Option<&[u8]>) {
        self.remove(format!("chunks:{series}"), mac);
        self.remove("chunks", mac);
    }
}

/// Human name of a scope for reports.
pub(crate) fn describe_scope(scope: &str) -> String {
    match scope.strip_prefix("chunks:") {
        Some(series) => format!("chunks of series {series}"),
        None if scope == "chunks" => "chunks (all series)".into(),
        None => scope.to_string(),
    }
}

impl Integrity {
    pub(crate) fn mac(&self, table: &str, fields: &[F<'_>]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        let mut put = |tag: u8, b: &[u8]| {
            ctx.update(&[tag]);
            ctx.update(&(b.len() as u64).to_le_bytes());
            ctx.update(b);
        };
        put(b't', table.as_bytes());
        for f in fields {
            match f {
                F::I(i) => put(b'i', &i.to_le_bytes()),
                F::N(None) => put(b'n', &[]),
                F::N(Some(i)) => put(b'i', &i.to_le_bytes()),
                F::S(s) => put(b's', s.as_bytes()),
                F::B(b) => put(b'b', b),
            }
        }
        ctx.sign().as_ref().to_vec()
    }

    fn digest_mac(&self, scope: &str, n: i64, sum: &[u8], epoch: i64) -> Vec<u8> {
        self.mac(
            "digest",
            &[F::S(&self.store_id), F::S(scope), F::I(n), F::B(sum), F::I(epoch)],
        )
    }

    fn epoch_mac(&self, epoch: i64) -> Vec<u8> {
        self.mac("epoch", &[F::S(&self.store_id), F::I(epoch)])
    }

    pub(crate) fn check(&self, table: &str, fields: &[F<'_>], mac: Option<&[u8]>) -> bool {
        mac.is_some_and(|m| ct_eq(&self.mac(table, fields), m))
    }

    pub(crate) fn rollback(&self) -> Option<&Rollback> {
        self.rollback.as_ref()
    }

    pub(crate) fn store_id(&self) -> &str {
        &self.store_id
    }

    /// A file beside the counter mirror (`<store id>.<ext>`), if mirrors are kept.
    pub(crate) fn side_file(&self, ext: &str) -> Option<PathBuf> {
        self.mirror.as_ref().map(|m| m.with_extension(ext))
    }

    /// Applies `delta` to the digests in the caller's transaction. A digest
    /// whose MAC already fails keeps a failing MAC: a write must never
    /// launder an edit into a valid digest.
    pub(crate) async fn apply(&self, conn: &mut SqliteConnection, delta: Delta) -> Result<(), StoreError> {
        let mut script = Script::default();
        self.apply_into(conn, delta, &mut script).await?;
        script.run(conn).await.map_err(db("updating integrity digests"))?;
        Ok(())
    }

    /// [`Integrity::apply`], the digest writes added to `script` (which the
    /// caller runs in the same transaction) instead of sent on their own.
    /// Digests not in `ahead` (read with the caller's first statement, see
    /// [`Integrity::push_read_ahead`]) are read now, one round trip per
    /// slice of scopes.
    pub(crate) async fn apply_into(
        &self,
        conn: &mut SqliteConnection,
        delta: Delta,
        script: &mut Script<'_>,
    ) -> Result<(), StoreError> {
        self.apply_ahead(conn, delta, script, ReadAhead::default()).await
    }

    /// [`Integrity::apply_into`] with some digests already read.
    pub(crate) async fn apply_ahead(
        &self,
        conn: &mut SqliteConnection,
        delta: Delta,
        script: &mut Script<'_>,
        mut ahead: ReadAhead,
    ) -> Result<(), StoreError> {
        if delta.0.is_empty() {
            return Ok(());
        }
        let what = "updating integrity digests";
        let scopes: Vec<(String, (i64, [u64; 4]))> = delta.0.into_iter().collect();
        // The digests not read ahead: one read per slice of scopes, not one
        // per scope (an append touches one scope per series, and every
        // statement is a round trip to the connection's thread).
        let mut unread: Vec<String> = scopes
            .iter()
            .map(|(s, _)| s.clone())
            .filter(|s| !ahead.asked.contains(s))
            .collect();
        while !unread.is_empty() {
            let rest = unread.split_off(unread.len().min(DIGESTS_PER_STATEMENT));
            let mut read = Script::default();
            Self::push_read_ahead(&mut read, &mut unread);
            let rows = read.run(&mut *conn).await.map_err(db(what))?;
            ahead.merge(ReadAhead::from_rows(&rows, unread)?);
            unread = rest;
        }
        let ReadAhead { epoch, found, .. } = ahead;
        let epoch = epoch.unwrap_or(0);
        // The writes go out with the caller's.
        for part in scopes.chunks(DIGESTS_PER_STATEMENT) {
            let values = vec!["(?, ?, ?, ?)"; part.len()].join(",");
            script.push(&format!(
                "INSERT INTO digests (scope, n, sum, mac) VALUES {values}
                 ON CONFLICT(scope) DO UPDATE SET n = excluded.n, sum = excluded.sum, mac = excluded.mac"
            ));
            for (scope, (dn, dsum)) in part {
                let (n, mut sum, valid) = match found.get(scope) {
                    Some((n, sum, mac)) => {
                        let ok = ct_eq(&self.digest_mac(scope, *n, sum, epoch), mac);
                        (*n, limbs(sum), ok)
                    }
                    None => (0, [0; 4], true),
                };
                add256(&mut sum, dsum);
                let (n, sum) = (n + dn, bytes(&sum));
                let mac = if valid {
                    self.digest_mac(scope, n, &sum, epoch)
                } else {
                    tracing::error!(scope = %describe_scope(scope), "an integrity digest failed authentication before this write; it stays failed");
                    vec![0u8; 32]
                };
                script.bind(scope.clone()).bind(n).bind(sum).bind(mac);
            }
        }
        Ok(())
    }

    /// Adds to `script` the read of `scopes`' digests and the epoch, whose
    /// rows [`ReadAhead::from_rows`] takes: a caller may send it with its
    /// own first statement (one round trip less for the writer's 0.5 s
    /// flush). At most [`DIGESTS_PER_STATEMENT`] scopes are read (`scopes`
    /// is cut to them); [`Integrity::apply_ahead`] reads the rest.
    pub(crate) fn push_read_ahead(script: &mut Script<'_>, scopes: &mut Vec<String>) {
        scopes.truncate(DIGESTS_PER_STATEMENT);
        let marks = vec!["?"; scopes.len() + 1].join(",");
        script.push(&format!(
            "SELECT scope, n, sum, mac FROM digests WHERE scope IN ({marks})"
        ));
        for s in scopes.iter() {
            script.bind(s.clone());
        }
        script.bind(EPOCH);
    }
}

/// Digest rows read ahead of the write that changes them, in the same
/// transaction (see [`Integrity::push_read_ahead`]).
#[derive(Default)]
pub(crate) struct ReadAhead {
    epoch: Option<i64>,
    found: HashMap<String, (i64, Vec<u8>, Vec<u8>)>,
    /// Every scope asked for, found or not (not found: a new scope).
    asked: HashSet<String>,
}

impl ReadAhead {
    /// `rows`: the digest rows the read returned (scope, n, sum, mac);
    /// `asked`: the scopes it asked for.
    pub(crate) fn from_rows(
        rows: &[sqlx::sqlite::SqliteRow],
        asked: Vec<String>,
    ) -> Result<Self, StoreError> {
        let mut found = HashMap::with_capacity(rows.len());
        for r in rows {
            let row = (|| -> Result<_, sqlx::Error> {
                Ok((
                    r.try_get::<String, _>(0)?,
                    (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
                ))
            })()
            .map_err(db("reading integrity digests"))?;
            found.insert(row.0, row.1);
        }
        let epoch = Some(found.remove(EPOCH).map_or(0, |(n, _, _)| n));
        Ok(ReadAhead {
            epoch,
            found,
            asked: asked.into_iter().collect(),
        })
    }

    /// Adds a later read of the same transaction.
    fn merge(&mut self, later: ReadAhead) {
        self.epoch = self.epoch.or(later.epoch);
        self.found.extend(later.found);
        self.asked.extend(later.asked);
    }
}

/// Digest rows read and written per statement (4 parameters each; well
/// under SQLite's parameter limit).
const DIGESTS_PER_STATEMENT: usize = 200;

async fn read_epoch(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let e: Option<i64> = sqlx::query_scalar("SELECT n FROM digests WHERE scope = ?")
        .bind(EPOCH)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("reading the store counter"))?;
    Ok(e.unwrap_or(0))
}

/// Where counter mirrors live by default: `$VIGIL_STORE_COUNTER_DIR`, else
/// the user's configuration directory (`~/.config/vigil/store-counters` on
/// Linux): outside the data directory, so copying an old data directory
/// back does not bring an old mirror with it.
pub fn default_counter_dir() -> Option<PathBuf> {
    match std::env::var_os(COUNTER_DIR_ENV) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => dirs::config_dir().map(|d| d.join("vigil").join("store-counters")),
    }
}

/// Reads a mirror: `store_id epoch mac` (hex); None if absent or not valid.
fn read_mirror(ik: &Integrity, path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    let (id, epoch, mac) = (it.next()?, it.next()?.parse::<i64>().ok()?, it.next()?);
    let mac = hex::decode(mac).ok()?;
    if id != ik.store_id || !ik.check("epoch", &[F::S(&ik.store_id), F::I(epoch)], Some(&mac)) {
        tracing::warn!(path = %path.display(), "the store counter mirror does not authenticate; ignored");
        return None;
    }
    Some(epoch)
}

/// Writes the mirror if `epoch` is ahead of it (atomic rename, 0600).
fn write_mirror(ik: &Integrity, path: &Path, epoch: i64) {
    if read_mirror(ik, path).is_some_and(|m| m >= epoch) {
        return;
    }
    let body = format!("{} {} {}\n", ik.store_id, epoch, hex::encode(ik.epoch_mac(epoch)));
    if let Err(e) = write_private(path, &body) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the store counter mirror; rollback detection is weaker until it can");
    }
}

/// Writes a small file outside the data directory: its directory made
/// 0700 if new, the file 0600, replaced by an atomic rename.
pub(crate) fn write_private(path: &Path, body: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)
}

/// Every MACed row of the store as (table, id, scope, fields, stored mac):
/// the one list both the first-open migration and `verify` walk.
type RowMac = (&'static str, String, String, Vec<u8>, Option<Vec<u8>>);

async fn all_rows(ik: &Integrity, conn: &mut SqliteConnection) -> Result<Vec<RowMac>, StoreError> {
    let what = "reading rows to check";
    let mut out = Vec::new();
    for r in sqlx::query("SELECT id, series_id, t0, t1, n, key_id, nonce, mac FROM chunks")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let (id, series) = (r.get::<i64, _>("id"), r.get::<i64, _>("series_id"));
        out.push((
            "chunks",
            id.to_string(),
            format!("chunks:{series}"),
            chunk_mac(
                ik,
                id,
                series,
                r.get("t0"),
                r.get("t1"),
                r.get("n"),
                r.get("key_id"),
                &r.get::<Vec<u8>, _>("nonce"),
            ),
            r.get("mac"),
        ));
    }
    for r in sqlx::query("SELECT id, t0, t1, n, key_id, nonce, mac FROM frames")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let id: i64 = r.get("id");
        out.push((
            "frames",
            id.to_string(),
            "frames".into(),
            frame_mac(
                ik,
                id,
                r.get("t0"),
                r.get("t1"),
                r.get("n"),
                r.get("key_id"),
                &r.get::<Vec<u8>, _>("nonce"),
            ),
            r.get("mac"),
        ));
    }
    for r in sqlx::query("SELECT id, bed_tag, at, mac FROM alarm_log")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let id: i64 = r.get("id");
        out.push((
            "alarm_log",
            id.to_string(),
            "alarm_log".into(),
            alarm_mac(ik, id, &r.get::<Vec<u8>, _>("bed_tag"), r.get("at")),
            r.get("mac"),
        ));
    }
    // The NEWS2 log (schema 14): absent while an older store is upgraded.
    let has_news2: bool =
        sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'news2_log'")
            .fetch_one(&mut *conn)
            .await
            .map_err(db(what))?;
    if has_news2 {
        for r in sqlx::query("SELECT id, bed_tag, admission_tag, at, mac FROM news2_log")
            .fetch_all(&mut *conn)
            .await
            .map_err(db(what))?
        {
            let id: i64 = r.get("id");
            let m = crate::news2::news2_mac(
                ik,
                id,
                &r.get::<Vec<u8>, _>("bed_tag"),
                r.get::<Option<Vec<u8>>, _>("admission_tag").as_deref(),
                r.get("at"),
            );
            out.push(("news2_log", id.to_string(), "news2_log".into(), m, r.get("mac")));
        }
    }
    for r in sqlx::query("SELECT address_tag, bed_tag, added_at, key_id, nonce, mac FROM devices")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        // Named by its tag (the address is sealed): `verify` shows which row.
        let a: Vec<u8> = r.get("address_tag");
        let m = device_mac(
            ik,
            &a,
            &r.get::<Vec<u8>, _>("bed_tag"),
            r.get("added_at"),
            r.get("key_id"),
            &r.get::<Vec<u8>, _>("nonce"),
        );
        out.push(("devices", hex::encode(a), "devices".into(), m, r.get("mac")));
    }
    for r in sqlx::query("SELECT id, bed_tag, open, key_id, nonce, mac FROM admissions")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let id: String = r.get("id");
        let m = admission_mac(
            ik,
            &id,
            &r.get::<Vec<u8>, _>("bed_tag"),
            r.get("open"),
            r.get("key_id"),
            &r.get::<Vec<u8>, _>("nonce"),
        );
        out.push(("admissions", id, "admissions".into(), m, r.get("mac")));
    }
    for r in sqlx::query("SELECT seq, created, n, mac FROM outbox")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let seq: i64 = r.get("seq");
        out.push((
            "outbox",
            seq.to_string(),
            "outbox".into(),
            outbox_mac(ik, seq, r.get("created"), r.get("n")),
            r.get("mac"),
        ));
    }
    for r in sqlx::query("SELECT id, at, kind, outbox_row, outbox_index, mac FROM dead_letters")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let id: i64 = r.get("id");
        let m = dead_mac(
            ik,
            id,
            r.get("at"),
            r.get("kind"),
            r.get("outbox_row"),
            r.get("outbox_index"),
        );
        out.push((
            "dead_letters",
            id.to_string(),
            "dead_letters".into(),
            m,
            r.get("mac"),
        ));
    }
    for r in sqlx::query("SELECT outbox_row, outbox_index, attempts, settled, mac FROM outbox_items")
        .fetch_all(&mut *conn)
        .await
        .map_err(db(what))?
    {
        let (row, index): (i64, i64) = (r.get("outbox_row"), r.get("outbox_index"));
        let m = item_mac(ik, row, index, r.get("attempts"), r.get("settled"));
        out.push((
            "outbox_items",
            format!("{row}/{index}"),
            "outbox_items".into(),
            m,
            r.get("mac"),
        ));
    }
    Ok(out)
}

/// An outbox reading's state: failed attempts and whether it left the queue.
pub(crate) fn item_mac(ik: &Integrity, row: i64, index: i64, attempts: i64, settled: i64) -> Vec<u8> {
    ik.mac(
        "outbox_items",
        &[F::I(row), F::I(index), F::I(attempts), F::I(settled)],
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn chunk_mac(
    ik: &Integrity,
    id: i64,
    series: i64,
    t0: i64,
    t1: i64,
    n: i64,
    key_id: i64,
    nonce: &[u8],
) -> Vec<u8> {
    ik.mac(
        "chunks",
        &[
            F::I(id),
            F::I(series),
            F::I(t0),
            F::I(t1),
            F::I(n),
            F::I(key_id),
            F::B(nonce),
        ],
    )
}
/// An ingest frame's plaintext columns (schema 15).
pub(crate) fn frame_mac(ik: &Integrity, id: i64, t0: i64, t1: i64, n: i64, key_id: i64, nonce: &[u8]) -> Vec<u8> {
    ik.mac(
        "frames",
        &[F::I(id), F::I(t0), F::I(t1), F::I(n), F::I(key_id), F::B(nonce)],
    )
}

/// An alarm record's bed (tag) and time; its body and bed label are sealed.
pub(crate) fn alarm_mac(ik: &Integrity, id: i64, bed_tag: &[u8], at: i64) -> Vec<u8> {
    ik.mac("alarm_log/v11", &[F::I(id), F::B(bed_tag), F::I(at)])
}
/// A device assignment: which bed (tag), since when, and which sealed
/// record (key and nonce: an older record put back shows).
pub(crate) fn device_mac(
    ik: &Integrity,
    address_tag: &[u8],
    bed_tag: &[u8],
    added_at: i64,
    key_id: i64,
    nonce: &[u8],
) -> Vec<u8> {
    ik.mac(
        "devices/v11",
        &[F::B(address_tag), F::B(bed_tag), F::I(added_at), F::I(key_id), F::B(nonce)],
    )
}
/// An admission: its bed (tag), whether it is open, and which sealed record
/// (the times are in it: a discharge undone by putting the older record
/// back changes the nonce).
pub(crate) fn admission_mac(
    ik: &Integrity,
    id: &str,
    bed_tag: &[u8],
    open: i64,
    key_id: i64,
    nonce: &[u8],
) -> Vec<u8> {
    ik.mac(
        "admissions/v11",
        &[F::S(id), F::B(bed_tag), F::I(open), F::I(key_id), F::B(nonce)],
    )
}
pub(crate) fn outbox_mac(ik: &Integrity, seq: i64, created: i64, n: i64) -> Vec<u8> {
    ik.mac("outbox", &[F::I(seq), F::I(created), F::I(n)])
}
pub(crate) fn dead_mac(
    ik: &Integrity,
    id: i64,
    at: i64,
    kind: &str,
    row: Option<i64>,
    index: Option<i64>,
) -> Vec<u8> {
    ik.mac(
        "dead_letters",
        &[F::I(id), F::I(at), F::S(kind), F::N(row), F::N(index)],
    )
}

/// The integrity key, if the store has one yet (schema 7 creates it at
/// the first open): the schema-11 upgrade MACs the rows it rewrites with it.
pub(crate) async fn load(conn: &mut SqliteConnection, keys: &Keyring) -> Result<Option<Integrity>, StoreError> {
    let row: Option<(String, i64, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT store_id, key_id, nonce, sealed FROM integrity WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("opening the integrity key"))?;
    let Some((store_id, key_id, nonce, sealed)) = row else {
        return Ok(None);
    };
    let aad = [AAD_INTEGRITY, store_id.as_bytes()].concat();
    let plain = keys
        .open(Purpose::Log, key_id, &aad, &nonce, &sealed)
        .map_err(|_| StoreError::TamperedRecord {
            table: "integrity",
            id: 1,
        })?;
    Ok(Some(Integrity {
        key: hmac::Key::new(hmac::HMAC_SHA256, &plain),
        store_id,
        mirror: None,
        rollback: None,
    }))
}

/// Loads (or, on the first open after schema 7, creates) the integrity
/// key; on creation MACs every existing row and seals the digests (the
/// migration of an existing store). Then checks the counter against its
/// mirror and, unless the file was rolled back, raises it.
pub(crate) async fn init(
    pool: &sqlx::SqlitePool,
    keys: &Keyring,
    counter_dir: Option<&Path>,
) -> Result<Integrity, StoreError> {
    let what = "opening the integrity key";
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
    let mut ik = match load(&mut tx, keys).await? {
        Some(ik) => ik,
        None => {
            let raw = crate::crypto::KeyBytes::generate();
            let store_id = uuid::Uuid::new_v4().simple().to_string();
            let aad = [AAD_INTEGRITY, store_id.as_bytes()].concat();
            let s = keys.seal(&mut tx, Purpose::Log, &aad, &raw.0).await?;
            sqlx::query("INSERT INTO integrity (id, store_id, key_id, nonce, sealed) VALUES (1, ?, ?, ?, ?)")
                .bind(&store_id)
                .bind(s.key_id)
                .bind(s.nonce)
                .bind(s.sealed)
                .execute(&mut *tx)
                .await
                .map_err(db(what))?;
            let ik = Integrity {
                key: hmac::Key::new(hmac::HMAC_SHA256, &raw.0),
                store_id,
                mirror: None,
                rollback: None,
            };
            // First open under schema 7: MAC what is there and seal digests.
            let rows = all_rows(&ik, &mut tx).await?;
            let mut delta = Delta::default();
            for (table, id, scope, mac, _) in &rows {
                let sql = match *table {
                    "outbox_items" => {
                        "UPDATE outbox_items SET mac = ?1 WHERE outbox_row = ?2 AND outbox_index = ?3"
                            .to_string()
                    }
                    "devices" => "UPDATE devices SET mac = ?1 WHERE lower(hex(address_tag)) = ?2".to_string(),
                    "outbox" => "UPDATE outbox SET mac = ?1 WHERE seq = ?2".to_string(),
                    t => format!("UPDATE {t} SET mac = ?1 WHERE id = ?2"),
                };
                let (a, b) = id.split_once('/').unwrap_or((id.as_str(), ""));
                let q = sqlx::query(&sql).bind(mac).bind(a);
                let q = if *table == "outbox_items" {
                    q.bind(b.parse::<i64>().unwrap_or_default())
                } else {
                    q
                };
                q.execute(&mut *tx)
                    .await
                    .map_err(db("computing integrity MACs"))?;
                if *table == "chunks" {
                    delta.add("chunks", mac);
                }
                delta.add(scope.clone(), mac);
            }
            if !rows.is_empty() {
                tracing::info!(
                    rows = rows.len(),
                    "schema 7: integrity MACs and digests computed for the existing store"
                );
            }
            ik.apply(&mut tx, delta).await?;
            ik
        }
    };
    ik.mirror = counter_dir.map(|d| d.join(format!("{}.counter", ik.store_id)));
    let epoch = read_epoch(&mut tx).await?;
    if let Some(m) = &ik.mirror {
        if let Some(mirrored) = read_mirror(&ik, m) {
            if mirrored > epoch {
                tracing::error!(
                    store = epoch,
                    mirror = mirrored,
                    "the store file is older than its last use: rolled back to an older copy"
                );
                ik.rollback = Some(Rollback {
                    store: epoch,
                    mirror: mirrored,
                    mirror_path: m.clone(),
                });
            }
        }
    }
    tx.commit().await.map_err(db(what))?;
    if ik.rollback.is_none() {
        bump(&ik, pool).await?;
    }
    Ok(ik)
}

/// Raises the counter, re-MACs every digest under it (one failing before
/// keeps failing) and mirrors it.
pub(crate) async fn bump(ik: &Integrity, pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    let what = "raising the store counter";
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
    let old = read_epoch(&mut tx).await?;
    let new = old + 1;
    let rows: Vec<(String, i64, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT scope, n, sum, mac FROM digests WHERE scope != ?")
            .bind(EPOCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
    for (scope, n, sum, mac) in rows {
        let ok = ct_eq(&ik.digest_mac(&scope, n, &sum, old), &mac);
        let mac = if ok {
            ik.digest_mac(&scope, n, &sum, new)
        } else {
            vec![0u8; 32]
        };
        sqlx::query("UPDATE digests SET mac = ? WHERE scope = ?")
            .bind(mac)
            .bind(&scope)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
    }
    sqlx::query(
        "INSERT INTO digests (scope, n, sum, mac) VALUES (?1, ?2, x'', ?3)
         ON CONFLICT(scope) DO UPDATE SET n = ?2, mac = ?3",
    )
    .bind(EPOCH)
    .bind(new)
    .bind(ik.epoch_mac(new))
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    tx.commit().await.map_err(db(what))?;
    if let Some(m) = &ik.mirror {
        write_mirror(ik, m, new);
    }
    Ok(())
}

impl Store {
    /// The whole-file rollback found at open, if any: the core should raise
    /// a technical alarm; `vigil store verify` reports it and fails.
    pub fn rolled_back(&self) -> Option<&Rollback> {
        self.integrity.rollback()
    }

    /// Checks every row MAC and every scope digest; returns the failures.
    pub(crate) async fn verify_integrity(&self) -> Result<Vec<StoreError>, StoreError> {
        let ik = &*self.integrity;
        // One read transaction: a consistent snapshot (WAL) of rows and
        // digests even while a running Vigil writes.
        let mut conn = self.pool.begin().await.map_err(db("checking integrity"))?;
        let mut failures = Vec::new();
        if let Some(r) = ik.rollback() {
            failures.push(StoreError::RolledBack {
                store: r.store,
                mirror: r.mirror,
                path: r.mirror_path.clone(),
            });
        }
        let epoch_row: Option<(i64, Vec<u8>)> = sqlx::query_as("SELECT n, mac FROM digests WHERE scope = ?")
            .bind(EPOCH)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("checking integrity"))?;
        let epoch = match epoch_row {
            Some((e, mac)) if ik.check("epoch", &[F::S(&ik.store_id), F::I(e)], Some(&mac)) => e,
            Some((e, _)) => {
                failures.push(StoreError::DigestTampered {
                    scope: "store counter".into(),
                });
                e
            }
            None => {
                failures.push(StoreError::DigestTampered {
                    scope: "store counter (missing)".into(),
                });
                0
            }
        };
        let mut found: BTreeMap<String, (i64, [u64; 4])> = BTreeMap::new();
        for (table, id, scope, mac, stored) in all_rows(ik, &mut conn).await? {
            let ok = stored.as_deref().is_some_and(|s| ct_eq(&mac, s));
            // A chunk's (or frame's) MAC covers what its AEAD already binds:
            // one that fails is reported once, by the open in `verify`.
            if !ok && table != "chunks" && table != "frames" {
                failures.push(StoreError::IntegrityRow { table, id });
            }
            // The digests sum the stored MACs (what was added).
            let m = stored.unwrap_or_default();
            for s in if table == "chunks" {
                vec![scope, "chunks".to_string()]
            } else {
                vec![scope]
            } {
                let e = found.entry(s).or_insert((0, [0; 4]));
                e.0 += 1;
                add256(&mut e.1, &limbs(&m));
            }
        }
        let sealed: Vec<(String, i64, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT scope, n, sum, mac FROM digests WHERE scope != ?")
                .bind(EPOCH)
                .fetch_all(&mut *conn)
                .await
                .map_err(db("checking integrity"))?;
        let mut sealed_map = BTreeMap::new();
        for (scope, n, sum, mac) in sealed {
            if !ct_eq(&ik.digest_mac(&scope, n, &sum, epoch), &mac) {
                failures.push(StoreError::DigestTampered {
                    scope: describe_scope(&scope),
                });
            }
            sealed_map.insert(scope, (n, limbs(&sum)));
        }
        let scopes: std::collections::BTreeSet<&String> = found.keys().chain(sealed_map.keys()).collect();
        for scope in scopes {
            let (rows, sum) = found.get(scope).copied().unwrap_or((0, [0; 4]));
            let (n, ssum) = sealed_map.get(scope).copied().unwrap_or((0, [0; 4]));
            if rows != n || sum != ssum {
                failures.push(StoreError::ScopeMismatch {
                    scope: describe_scope(scope),
                    rows: rows.max(0) as u64,
                    sealed: n.max(0) as u64,
                });
            }
        }
        Ok(failures)
    }

    /// Raises the store counter (and its mirror): at open, at close, and
    /// whenever the caller wants a copy taken before now to count as old.
    pub async fn raise_counter(&self) -> Result<(), StoreError> {
        if self.integrity.rollback().is_some() {
            // Keep reporting the rollback: never raise past the mirror silently.
            return Ok(());
        }
        bump(&self.integrity, &self.pool).await
    }
}
