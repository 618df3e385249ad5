//! The first open under schema 11 (issue 13 §6): older rows move to their
//! sealed shape.
//!
//! Migration 0011 only creates the new tables (`*_next`): tags and seals
//! need the lookup key and the data keys, which SQL cannot reach. Here, in
//! one transaction, every admission, series, alarm record, device and bed
//! setting is read in its schema-10 shape, sealed again with its bed id,
//! address, descriptor and times inside, written with keyed tags, and the
//! old tables are dropped (with `secure_delete`, so their pages are
//! zeroed, not left readable in the free list). Series keep their ids:
//! chunks name them and bind them into their AAD, so no chunk is touched.
//!
//! A row that no longer opens (or whose integrity MAC already failed) is
//! carried over with its sealed blob as it was and a failing MAC: the
//! upgrade never turns an edited row into a valid one, and never drops it;
//! `vigil store verify` reports it as before.

use crate::chunks::{self, SeriesKey};
use crate::integrity::{Delta, Integrity, F};
use crate::keyring::{Keyring, Purpose};
use crate::logs::{self, AlarmBody, DeviceBody};
use crate::lookup::{self, Lookup};
use crate::settings::{self, SettingsBody};
use crate::vault::{self, Stay};
use crate::{db, Patient, StoreError};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use vigil_model::AdmissionId;

/// The tables schema 11 reshapes (each has a `<name>_next` until moved).
const TABLES: [&str; 5] = ["admissions", "series", "alarm_log", "devices", "bed_settings"];

/// A MAC no row has: keeps a row failing its integrity check.
const FAILED_MAC: [u8; 32] = [0; 32];

/// Loads the lookup key (creating it on the first open under schema 11) and
/// moves schema-10 rows if there are any to move.
pub(crate) async fn run(pool: &SqlitePool, keys: &Keyring) -> Result<Lookup, StoreError> {
    let what = "upgrading the store to schema 11";
    let mut conn = pool.acquire().await.map_err(db(what))?;
    if !pending(&mut conn).await? {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        let l = lookup::load_or_create(&mut tx, keys).await?;
        tx.commit().await.map_err(db(what))?;
        return Ok(l);
    }
    // Replacing a parent table (series, admissions) is SQLite's "12-step"
    // table rebuild: foreign keys off, and the legacy rename, which leaves
    // the children's REFERENCES clauses naming the table as they did.
    // Both are per connection and must be set outside the transaction.
    let set = |on: bool| {
        let (on, off) = if on { ("ON", "OFF") } else { ("OFF", "ON") };
        [
            format!("PRAGMA foreign_keys = {on}"),
            format!("PRAGMA legacy_alter_table = {off}"),
            format!("PRAGMA secure_delete = {off}"),
        ]
    };
    for p in set(false) {
        sqlx::query(&p).execute(&mut *conn).await.map_err(db(what))?;
    }
    let result = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db(what))?;
        let l = lookup::load_or_create(&mut tx, keys).await?;
        // Asked again under the write lock: another process opening the
        // same store may have moved the rows meanwhile.
        if !pending(&mut tx).await? {
            tx.commit().await.map_err(db(what))?;
            return Ok(l);
        }
        let ik = crate::integrity::load(&mut tx, keys).await?;
        let moved = move_rows(&mut tx, keys, &l, ik.as_ref()).await?;
        let broken: Option<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(what))?;
        if let Some(t) = broken {
            return Err(StoreError::Upgrade(format!(
                "it would leave a dangling reference in {t}"
            )));
        }
        tx.commit().await.map_err(db(what))?;
        tracing::info!(
            rows = moved,
            "schema 11: bed ids, addresses, series and admission times sealed"
        );
        Ok(l)
    }
    .await;
    // Back to the pool's settings whatever happened (the connection is reused).
    let mut reset = Ok(());
    for p in set(true) {
        if let Err(e) = sqlx::query(&p).execute(&mut *conn).await {
            reset = Err(e);
        }
    }
    if let Err(e) = reset {
        // Do not hand a connection without foreign keys back to the pool.
        conn.detach();
        tracing::warn!(error = %e, "restoring connection settings after the schema 11 upgrade failed; connection dropped");
    }
    result
}

/// Whether migration 0011's new tables still wait for the rows.
async fn pending(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'series_next'")
        .fetch_one(&mut *conn)
        .await
        .map_err(db("upgrading the store to schema 11"))
}

/// Renames the old tables aside, the new ones into place, moves every row;
/// returns how many rows moved.
async fn move_rows(
    tx: &mut SqliteConnection,
    keys: &Keyring,
    l: &Lookup,
    ik: Option<&Integrity>,
) -> Result<u64, StoreError> {
    let what = "upgrading the store to schema 11";
    for t in TABLES {
        for stmt in [
            format!("ALTER TABLE {t} RENAME TO {t}_v10"),
            format!("ALTER TABLE {t}_next RENAME TO {t}"),
        ] {
            sqlx::query(&stmt).execute(&mut *tx).await.map_err(db(what))?;
        }
    }
    let mut delta = Delta::default();
    let mut n = 0;
    n += admissions(tx, keys, l, ik, &mut delta).await?;
    n += series(tx, keys, l).await?;
    // The alarm log can hold many rows: seals counted once at the end.
    let mut sealed_under = std::collections::BTreeSet::new();
    n += alarms(tx, keys, l, ik, &mut delta, &mut sealed_under).await?;
    for key_id in sealed_under {
        keys.persist_count(tx, key_id).await?;
    }
    n += devices(tx, keys, l, ik, &mut delta).await?;
    n += bed_settings(tx, keys, l).await?;
    for t in TABLES {
        sqlx::query(&format!("DROP TABLE {t}_v10"))
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
    }
    if let Some(ik) = ik {
        ik.apply(tx, delta).await?;
    }
    Ok(n)
}

/// Whether a schema-10 row's MAC held (true without an integrity key: the
/// first open under schema 7 MACs the new rows afterwards).
fn mac_held(ik: Option<&Integrity>, table: &str, fields: &[F<'_>], mac: Option<&[u8]>) -> bool {
    ik.is_none_or(|ik| ik.check(table, fields, mac))
}

/// Settles a rewritten row of `table` (also its digest scope), found by
/// `key_column = key`: the digest takes its new MAC if the old one held and
/// its record opened; else the row and the digest get [`FAILED_MAC`], so it
/// keeps failing verification (never made valid by the upgrade).
#[allow(clippy::too_many_arguments)]
async fn settle<K>(
    tx: &mut SqliteConnection,
    ik: Option<&Integrity>,
    delta: &mut Delta,
    table: &str,
    key_column: &str,
    key: K,
    old: Option<&[u8]>,
    new: &[u8],
    ok: bool,
) -> Result<(), StoreError>
where
    K: Send + sqlx::Type<sqlx::Sqlite> + for<'q> sqlx::Encode<'q, sqlx::Sqlite>,
{
    if ik.is_none() {
        return Ok(());
    }
    delta.remove(table, old);
    delta.add(table, if ok { new } else { &FAILED_MAC[..] });
    if !ok {
        let sql = format!("UPDATE {table} SET mac = ? WHERE {key_column} = ?");
        sqlx::query(&sql)
            .bind(&FAILED_MAC[..])
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db("upgrading: marking a row that failed"))?;
    }
    Ok(())
}

async fn admissions(
    tx: &mut SqliteConnection,
    keys: &Keyring,
    l: &Lookup,
    ik: Option<&Integrity>,
    delta: &mut Delta,
) -> Result<u64, StoreError> {
    let what = "upgrading admissions";
    let rows = sqlx::query(
        "SELECT id, bed, admitted_at, discharged_at, nonce, sealed, key_id, mac FROM admissions_v10",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db(what))?;
    for r in &rows {
        let id: String = r.get("id");
        let bed: String = r.get("bed");
        let (admitted, discharged): (i64, Option<i64>) = (r.get("admitted_at"), r.get("discharged_at"));
        let old: Option<Vec<u8>> = r.get("mac");
        let held = mac_held(
            ik,
            "admissions",
            &[F::S(&id), F::S(&bed), F::I(admitted), F::N(discharged)],
            old.as_deref(),
        );
        let patient = keys
            .open(
                Purpose::Phi,
                r.get("key_id"),
                &vault::legacy_patient_aad(&id, &bed),
                &r.get::<Vec<u8>, _>("nonce"),
                &r.get::<Vec<u8>, _>("sealed"),
            )
            .ok()
            .and_then(|p| serde_json::from_slice::<Patient>(&p).ok());
        let (mac, opened) = match patient {
            Some(patient) => {
                let stay = Stay {
                    patient,
                    bed,
                    admitted_at: admitted,
                    discharged_at: discharged,
                };
                (
                    vault::insert_admission_row(tx, keys, l, ik, &id, &stay, what).await?,
                    true,
                )
            }
            None => {
                // Carried as it was: it keeps failing to open.
                sqlx::query(
                    "INSERT INTO admissions (id, bed_tag, open, nonce, sealed, key_id) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(l.bed(&bed))
                .bind(discharged.is_none() as i64)
                .bind(r.get::<Vec<u8>, _>("nonce"))
                .bind(r.get::<Vec<u8>, _>("sealed"))
                .bind(r.get::<i64, _>("key_id"))
                .execute(&mut *tx)
                .await
                .map_err(db(what))?;
                (Vec::new(), false)
            }
        };
        let ok = held && opened;
        settle(tx, ik, delta, "admissions", "id", &id, old.as_deref(), &mac, ok).await?;
    }
    Ok(rows.len() as u64)
}

async fn series(tx: &mut SqliteConnection, keys: &Keyring, l: &Lookup) -> Result<u64, StoreError> {
    let rows = sqlx::query("SELECT id, admission, bed, device, code, unit, source FROM series_v10")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("upgrading series"))?;
    for r in &rows {
        let key = SeriesKey {
            admission: r.get("admission"),
            bed: r.get("bed"),
            device: r.get("device"),
            code: r.get::<i64, _>("code") as u32,
            unit: r.get("unit"),
            source: if r.get::<String, _>("source") == "simulated" {
                "simulated"
            } else {
                "real"
            },
        };
        chunks::insert_series_as(tx, keys, l, &key, Some(r.get("id"))).await?;
    }
    Ok(rows.len() as u64)
}

async fn alarms(
    tx: &mut SqliteConnection,
    keys: &Keyring,
    l: &Lookup,
    ik: Option<&Integrity>,
    delta: &mut Delta,
    sealed_under: &mut std::collections::BTreeSet<i64>,
) -> Result<u64, StoreError> {
    let what = "upgrading the alarm log";
    let rows = sqlx::query("SELECT id, bed, at, nonce, sealed, key_id, mac FROM alarm_log_v10")
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what))?;
    for r in &rows {
        let (id, at): (i64, i64) = (r.get("id"), r.get("at"));
        let bed: String = r.get("bed");
        let old: Option<Vec<u8>> = r.get("mac");
        let held = mac_held(ik, "alarm_log", &[F::I(id), F::S(&bed), F::I(at)], old.as_deref());
        let event = keys
            .open(
                Purpose::Readings,
                r.get("key_id"),
                &[logs::id_aad(logs::AAD_ALARM_V1, id), bed.as_bytes().to_vec()].concat(),
                &r.get::<Vec<u8>, _>("nonce"),
                &r.get::<Vec<u8>, _>("sealed"),
            )
            .ok()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok());
        let (mac, opened) = match event {
            Some(event) => (
                logs::insert_alarm_row(tx, keys, l, ik, id, at, &AlarmBody { bed, event }, sealed_under)
                    .await?,
                true,
            ),
            None => {
                sqlx::query("INSERT INTO alarm_log (id, bed_tag, at, nonce, sealed, key_id) VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(id)
                    .bind(l.bed(&bed))
                    .bind(at)
                    .bind(r.get::<Vec<u8>, _>("nonce"))
                    .bind(r.get::<Vec<u8>, _>("sealed"))
                    .bind(r.get::<i64, _>("key_id"))
                    .execute(&mut *tx)
                    .await
                    .map_err(db(what))?;
                (Vec::new(), false)
            }
        };
        let ok = held && opened;
        settle(tx, ik, delta, "alarm_log", "id", id, old.as_deref(), &mac, ok).await?;
    }
    Ok(rows.len() as u64)
}

async fn devices(
    tx: &mut SqliteConnection,
    keys: &Keyring,
    l: &Lookup,
    ik: Option<&Integrity>,
    delta: &mut Delta,
) -> Result<u64, StoreError> {
    let what = "upgrading devices";
    let rows =
        sqlx::query("SELECT address, bed, kind, added_at, nonce, sealed, key_id, mac FROM devices_v10")
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
    for r in &rows {
        let (address, bed, kind): (String, String, String) = (r.get("address"), r.get("bed"), r.get("kind"));
        let added_at: i64 = r.get("added_at");
        let old: Option<Vec<u8>> = r.get("mac");
        let held = mac_held(
            ik,
            "devices",
            &[F::S(&address), F::S(&bed), F::S(&kind), F::I(added_at)],
            old.as_deref(),
        );
        // Device Information, if any; one that does not open leaves the
        // device failing (as it failed to list before).
        let (info, opened) = match (
            r.get::<Option<Vec<u8>>, _>("nonce"),
            r.get::<Option<Vec<u8>>, _>("sealed"),
        ) {
            (Some(n), Some(s)) => match keys
                .open(
                    Purpose::Readings,
                    r.get("key_id"),
                    &[logs::AAD_DEVICE_V1, address.as_bytes()].concat(),
                    &n,
                    &s,
                )
                .ok()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            {
                Some(v) => (Some(v), true),
                None => (None, false),
            },
            _ => (None, true),
        };
        let body = DeviceBody {
            address,
            bed,
            kind,
            info,
        };
        let mac = logs::write_device_row(tx, keys, l, ik, added_at, &body).await?;
        let ok = held && opened;
        settle(tx, ik, delta, "devices", "address_tag", l.address(&body.address), old.as_deref(), &mac, ok).await?;
    }
    Ok(rows.len() as u64)
}

async fn bed_settings(tx: &mut SqliteConnection, keys: &Keyring, l: &Lookup) -> Result<u64, StoreError> {
    let what = "upgrading bed settings";
    let rows = sqlx::query("SELECT bed, admission, saved_at, nonce, sealed, key_id FROM bed_settings_v10")
        .fetch_all(&mut *tx)
        .await
        .map_err(db(what))?;
    for r in &rows {
        let bed: String = r.get("bed");
        let admission = r.get::<Option<String>, _>("admission").map(AdmissionId);
        let saved_at: i64 = r.get("saved_at");
        let opened = keys
            .open(
                Purpose::Readings,
                r.get("key_id"),
                &settings::aad(
                    settings::AAD_SETTINGS_V1,
                    bed.as_bytes(),
                    admission.as_ref(),
                    saved_at,
                ),
                &r.get::<Vec<u8>, _>("nonce"),
                &r.get::<Vec<u8>, _>("sealed"),
            )
            .ok()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok());
        match opened {
            Some(s) => {
                let body = SettingsBody { bed, settings: s };
                settings::write_settings_row(tx, keys, l, admission.as_ref(), saved_at, &body).await?;
            }
            None => {
                // Carried as it was: it keeps failing to open, at its bed.
                sqlx::query(
                    "INSERT INTO bed_settings (bed_tag, admission, saved_at, nonce, sealed, key_id) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(l.bed(&bed))
                .bind(admission.as_ref().map(|a| a.0.as_str()))
                .bind(saved_at)
                .bind(r.get::<Vec<u8>, _>("nonce"))
                .bind(r.get::<Vec<u8>, _>("sealed"))
                .bind(r.get::<i64, _>("key_id"))
                .execute(&mut *tx)
                .await
                .map_err(db(what))?;
            }
        }
    }
    Ok(rows.len() as u64)
}
