//! Ingest frames (schema 15): the writer's 0.5 s flushes of one reading per
//! series are stored as one sealed frame per flush. A clinician must see
//! every committed reading at once (not only after compaction), compaction
//! must lose none, and a frame must be as tamper-evident, rotatable,
//! purgeable and salvageable as a chunk.

use super::{key, reading, rt, sql, t};
use chrono::Duration;
use std::path::Path;
use vigil_model::{Mdc, Reading, Value};
use vigil_store::{Selection, Store, StoreError};

const CODES: [Mdc; 6] = [
    Mdc::ECG_HEART_RATE,
    Mdc::PULS_OXIM_SAT_O2,
    Mdc::RESP_RATE,
    Mdc::PULS_OXIM_PULS_RATE,
    Mdc::TEMP_BODY,
    Mdc::PRESS_BLD_NONINV_SYS,
];

fn bed(b: usize) -> String {
    format!("bed-{b}")
}

/// The writer's shape: every 0.5 s a flush holding one reading of half of
/// the 16 beds × 6 parameters (each series at 1 Hz), for `secs` seconds.
/// Values encode (series, second) so a lost or doubled reading shows.
fn flushes(secs: i64) -> Vec<Vec<Reading>> {
    (0..secs * 2)
        .map(|f| {
            let s = f / 2;
            (0..96)
                .filter(|k| k % 2 == (f % 2) as usize)
                .map(|k| {
                    let at = t(s) + Duration::milliseconds((k % 2) as i64 * 500);
                    reading(&bed(k / 6), CODES[k % 6], Value::Number((k * 10_000) as f64 + s as f64), at)
                })
                .collect()
        })
        .collect()
}

async fn write(store: &Store, secs: i64) -> Vec<Reading> {
    let mut all = Vec::new();
    for f in flushes(secs) {
        store.append(&f).await.unwrap();
        all.extend(f);
    }
    sorted(all)
}

/// Readings at the same time and code (different beds) come back in no
/// particular order: compare sorted by bed too.
fn sorted(mut v: Vec<Reading>) -> Vec<Reading> {
    v.sort_by(|a, b| a.received.cmp(&b.received).then(a.code.cmp(&b.code)).then(a.bed.cmp(&b.bed)));
    v
}

fn of(all: &[Reading], b: &str, code: Mdc) -> Vec<Reading> {
    all.iter().filter(|r| r.bed == b && r.code == code).cloned().collect()
}

async fn frames(path: &Path) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM frames").fetch_one(&mut c).await.unwrap()
}

#[test]
fn the_writers_flushes_are_readable_at_once_survive_a_crash_and_compaction_keeps_every_reading() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        // 12 minutes: the first 10-minute window closes, the last 2 stay open.
        let all = write(&store, 720).await;
        let stats = store.chunk_stats().await.unwrap();
        assert_eq!(stats.frames, 1440, "one frame per flush: {stats:?}");
        assert_eq!(stats.chunks, 0, "{stats:?}");
        assert_eq!(stats.readings, all.len() as u64);

        // Readable before any compaction, through every read path.
        let check = |store: Store, all: Vec<Reading>| async move {
            let (from, to) = (t(-1), t(800));
            assert_eq!(sorted(store.query_range(None, from, to).await.unwrap()), all);
            let hr = of(&all, "bed-3", Mdc::ECG_HEART_RATE);
            let q = vigil_store::SeriesQuery { bed: "bed-3".into(), code: Mdc::ECG_HEART_RATE, from, to };
            assert_eq!(store.query_series(&q).await.unwrap(), hr);
            let checked = store.read_checked(Selection::Bed("bed-3"), from, to).await.unwrap();
            assert!(checked.failed.is_empty(), "{:?}", checked.failed);
            assert_eq!(checked.readings.len(), 6 * 720);
            let trend = store.trend("bed-3", Mdc::ECG_HEART_RATE, t(0), t(720), 12).await.unwrap();
            assert!(trend.iter().all(|b| b.count == 60), "{trend:?}");
            assert_eq!(trend[0].min, Some(hr[0].value.number().unwrap()));
            let latest = store.latest().await.unwrap();
            assert_eq!(latest.len(), 96);
            assert!(latest.iter().all(|r| r.received >= t(719)), "{latest:?}");
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
        };
        check(store.clone(), all.clone()).await;

        // A crash (no close, no checkpoint): every committed frame is there.
        drop(store);
        let store = Store::open(&path, &key()).await.unwrap();
        check(store.clone(), all.clone()).await;

        // Compaction as the upkeep runs it: windows closed a minute ago.
        while store.compact(t(720) - Duration::minutes(1)).await.unwrap().more {}
        let stats = store.chunk_stats().await.unwrap();
        assert_eq!(stats.frames, 240, "the open window's 2 minutes stay framed: {stats:?}");
        assert_eq!(stats.unsummarised, 0, "closed window: one summarised chunk per series: {stats:?}");
        assert_eq!(stats.chunks, 96, "{stats:?}");
        check(store.clone(), all.clone()).await;

        // Then everything, as at the end of a stay.
        while store.compact(t(3600)).await.unwrap().more {}
        assert_eq!(store.chunk_stats().await.unwrap().frames, 0);
        check(store.clone(), all.clone()).await;
        store.close().await;
        assert_eq!(frames(&path).await, 0);
    });
}

#[test]
fn a_tampered_deleted_or_replayed_frame_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        write(&store, 30).await;
        store.close().await;

        // Altered ciphertext: verify names the frame, reads refuse it.
        sql(&path, "UPDATE frames SET sealed = zeroblob(length(sealed)) WHERE id = (SELECT min(id) + 3 FROM frames)").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(
            failures.iter().any(|f| matches!(f, StoreError::TamperedFrame { .. })),
            "{failures:?}"
        );
        assert!(store.query_range(None, t(0), t(60)).await.is_err());
        let checked = store.read_checked(Selection::Bed("bed-1"), t(0), t(60)).await.unwrap();
        assert_eq!(checked.failed.len(), 1, "{:?}", checked.failed);
        store.close().await;

        // A deleted frame: the frames digest no longer adds up.
        sql(&path, "DELETE FROM frames WHERE id = (SELECT min(id) + 3 FROM frames)").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(
            failures
                .iter()
                .any(|f| matches!(f, StoreError::ScopeMismatch { scope, .. } if scope == "frames")),
            "{failures:?}"
        );
        store.close().await;
    });
}

#[test]
fn a_frame_put_back_after_compaction_is_a_replay() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        write(&store, 30).await;
        store.close().await;
        sql(&path, "CREATE TABLE kept AS SELECT * FROM frames WHERE id = (SELECT min(id) FROM frames)").await;
        let store = Store::open(&path, &key()).await.unwrap();
        while store.compact(t(3600)).await.unwrap().more {}
        store.close().await;
        sql(&path, "INSERT INTO frames SELECT * FROM kept").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(
            failures
                .iter()
                .any(|f| matches!(f, StoreError::ScopeMismatch { scope, .. } if scope == "frames")),
            "{failures:?}"
        );
    });
}

#[test]
fn key_rotation_retention_and_salvage_cover_frames() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let all = write(&store, 60).await;
        store.close().await;

        // Rotation: the frames stay readable under the new key only.
        let new = vigil_store::KeySource::passphrase("a new passphrase for frames", "test");
        vigil_store::rotate_key(&path, &key(), &new).await.unwrap();
        let store = Store::open(&path, &new).await.unwrap();
        assert_eq!(sorted(store.query_range(None, t(-1), t(100)).await.unwrap()), all);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;

        // Salvage into a fresh store recovers every framed reading.
        let fresh = Store::open(&dir.path().join("fresh.db"), &key()).await.unwrap();
        let report = fresh.salvage_from(&path, &new).await.unwrap();
        assert_eq!(report.readings_recovered, all.len() as u64, "{report:?}");
        assert_eq!(sorted(fresh.query_range(None, t(-1), t(100)).await.unwrap()), all);
        fresh.close().await;

        // Retention: frames older than the cutoff go, newer ones stay.
        let store = Store::open(&path, &new).await.unwrap();
        assert!(store.purge_before(t(30)).await.unwrap() > 0);
        let left = store.query_range(None, t(-1), t(100)).await.unwrap();
        assert!(left.iter().all(|r| r.received >= t(30)) && left.len() == all.len() / 2, "{}", left.len());
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    });
}
