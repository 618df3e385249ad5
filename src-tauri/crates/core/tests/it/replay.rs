//! `vigil replay` is an import: every replayed reading lands in the store,
//! exactly once, however slow or failing the store is meanwhile. The replay
//! waits for the writer (back-pressure); it never outruns it into "store path
//! full" losses, memory overflow or spill files. The script goes through the
//! real driver (`replay::run`) and pipeline into a real store file whose chunk
//! table refuses writes for a while (a trigger that rolls back the whole
//! transaction, as SQLITE_FULL does).

use crate::config;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vigil_core::{replay, writer, DeviceMode, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::ManualClock;

async fn fault(db: &Path, on: bool) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let stmt = if on {
        "CREATE TRIGGER inject_fault BEFORE INSERT ON chunks BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END"
    } else {
        "DROP TRIGGER inject_fault"
    };
    sqlx::query(stmt).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

const HR: &str = "00 48"; // Heart Rate Measurement (0x2A37): 72 /min
const PLX: &str = "00 61 00 48 00"; // PLX Continuous (0x2A5F): SpO2 97 %, pulse 72 /min

/// Two beds, each with a heart-rate strap and an oximeter sending every
/// second for `seconds`: the shape of the 7½-day replay that lost readings,
/// denser, so that it runs in seconds.
fn script(seconds: u64) -> String {
    let mut s = replay::HEADER.join(",") + "\n";
    for bed in ["bed-1", "bed-2"] {
        s += &format!("0,{bed},hr-{bed},hr-strap,connect,,\n0,{bed},oxi-{bed},oximeter,connect,,\n");
    }
    for t in 1..=seconds {
        for bed in ["bed-1", "bed-2"] {
            s += &format!("{},{bed},hr-{bed},hr-strap,notify,2A37,{HR}\n", t * 1000);
            s += &format!("{},{bed},oxi-{bed},oximeter,notify,2A5F,{PLX}\n", t * 1000);
        }
    }
    s
}

/// Readings the decoder makes of one notification (not what the pipeline counted).
fn readings_of(characteristic: &str, hex: &str) -> u64 {
    let c = vigil_gatt::Characteristic::from_uuid_str(characteristic).unwrap();
    let bytes = vigil_gatt::parse_hex(hex).unwrap();
    vigil_gatt::decode(c, &bytes).unwrap().measurements.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_a_failing_store_waits_for_it_and_stores_every_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let start = replay::default_start();
    let clock = Arc::new(ManualClock::new(start));
    let mut cfg = config(dir.path(), Scenario::Stable, 1.0);
    cfg.devices = DeviceMode::Replay;
    cfg.clock = clock.clone();
    let seconds = 6 * 3600;
    let beds: Vec<String> = (1..=4).map(|i| format!("bed-{i}")).collect();
    let script = replay::parse(&script(seconds), &beds).unwrap();
    let expected = 2 * seconds * (readings_of("2A37", HR) + readings_of("2A5F", PLX));
    assert!(
        expected > 2 * writer::REPLAY_HOLD as u64,
        "{expected} readings: more than the writer may hold"
    );

    let v = Arc::new(Vigil::start(cfg).await.unwrap());
    let feed = v.take_replay_feed().unwrap();

    // The store refuses every write for 3 s once the replay is under way:
    // meanwhile the writer may hold at most its bound and the replay waits.
    let healed = Arc::new(AtomicBool::new(false));
    let most_held = Arc::new(AtomicU64::new(0));
    let saboteur = {
        let (v, db, healed, most_held) = (v.clone(), db.clone(), healed.clone(), most_held.clone());
        tokio::spawn(async move {
            let s = v.stats();
            while s.get(&s.stored) < 10_000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            fault(&db, true).await;
            let until = tokio::time::Instant::now() + Duration::from_secs(3);
            let mut replayed_during_fault = s.get(&s.readings);
            while tokio::time::Instant::now() < until {
                most_held.fetch_max(s.get(&s.backlog) + s.get(&s.spilled), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            replayed_during_fault = s.get(&s.readings) - replayed_during_fault;
            let failed = s.get(&s.store_errors);
            fault(&db, false).await;
            healed.store(true, Ordering::Relaxed);
            (failed, replayed_during_fault)
        })
    };
    let lines = replay::run(&v, feed, &clock, &script, None).await.unwrap();
    assert_eq!(lines, script.steps.len());
    let (failed_writes, replayed_during_fault) = saboteur.await.unwrap();
    assert!(
        healed.load(Ordering::Relaxed),
        "the replay finished before the store healed"
    );
    v.shutdown().await;

    let s = v.stats();
    eprintln!(
        "replay: {expected} readings; store refused {failed_writes} writes; most held {} ; replayed during the 3 s fault {replayed_during_fault}",
        most_held.load(Ordering::Relaxed)
    );
    assert!(
        failed_writes > 0,
        "the store never refused a write: the test proves nothing"
    );
    // Back-pressure: the writer held its bound (plus the batch refused and
    // put back), the replay stopped rather than outrunning a refusing store.
    let held = most_held.load(Ordering::Relaxed);
    assert!(
        held <= (writer::REPLAY_HOLD + writer::BACKLOG_BATCH) as u64,
        "held {held} readings while the store refused"
    );
    // At most: the writer's hold, the batch it had taken out to write when
    // the fault began (that room refills while the write is under way), and
    // what the channel holds (batches of at most 16 readings).
    assert!(
        replayed_during_fault <= (writer::REPLAY_HOLD + writer::BACKLOG_BATCH + writer::REPLAY_CHANNEL * 16) as u64,
        "{replayed_during_fault} readings replayed in 3 s of a refusing store"
    );
    assert_eq!(s.get(&s.unrecorded), 0, "{:?}", s.unrecorded_summary());
    assert_eq!(s.get(&s.spilled), 0);
    assert_eq!(s.get(&s.readings), expected);
    assert_eq!(s.get(&s.stored), expected);
    assert!(
        !std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".spill-")),
        "a replay never spills"
    );

    // The file holds every reading once: none lost, none doubled.
    let store = vigil_store::Store::open(
        &db,
        &vigil_store::KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let all = store
        .query_range(None, start, start + chrono::Duration::seconds(seconds as i64 + 1))
        .await
        .unwrap();
    assert_eq!(all.len() as u64, expected);
    let distinct: std::collections::BTreeSet<_> = all
        .iter()
        .map(|r| (r.device.clone(), r.code.0, r.received))
        .collect();
    assert_eq!(distinct.len() as u64, expected, "a reading stored twice");
    for bed in ["bed-1", "bed-2"] {
        for code in [
            vigil_model::Mdc::ECG_HEART_RATE,
            vigil_model::Mdc::PULS_OXIM_SAT_O2,
        ] {
            let n = all.iter().filter(|r| r.bed == bed && r.code == code).count() as u64;
            assert_eq!(n, seconds, "{bed} {code:?}: one per script second");
        }
    }
    store.close().await;
}
