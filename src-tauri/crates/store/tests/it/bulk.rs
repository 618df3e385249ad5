//! A backlog drained or a replay imported (the writer's `BACKLOG_BATCH`,
//! 50 000 readings per append): readings of many series interleaved, grouped
//! by series in one append. Every reading must come back exactly as written,
//! each series in time order, the store verifies, and a key rotation
//! afterwards keeps all of it readable.

use super::*;
use vigil_model::{Quality, Status};

/// A ward's backlog in arrival order: every series once a second,
/// interleaved, with what a real one holds besides plain numbers.
fn backlog(seconds: i64, beds: usize) -> Vec<Reading> {
    let mut out = Vec::new();
    for s in 0..seconds {
        for b in 0..beds {
            for (p, code) in [150456u32, 147842, 150344].into_iter().enumerate() {
                let bed = format!("bed-{b}");
                let mut r = reading(
                    &bed,
                    Mdc(code),
                    Value::Number(60.0 + ((s * 7 + b as i64) % 40) as f64 / 10.0),
                    t(s),
                );
                r.device = format!("{bed}-dev-{p}");
                if b % 2 == 0 {
                    r.admission = Some(AdmissionId(format!("adm-{b}")));
                }
                match (s + b as i64 + p as i64) % 97 {
                    0 => r.value = Value::Special(Special::NaN),
                    1 => {
                        r.status = Status {
                            quality: Quality::Questionable,
                            flags: vec!["cuff too loose".into()],
                        }
                    }
                    2 => r.device_time = Some((t(s) - Duration::milliseconds(1_250)).naive_utc()),
                    _ => {}
                }
                out.push(r);
            }
        }
    }
    out
}

/// Everything in the store, in a comparable order (a series' readings in
/// time order; series by bed, parameter, device).
async fn all(store: &Store) -> Vec<Reading> {
    let mut got = store.query_range(None, t(-10), t(100_000)).await.unwrap();
    got.sort_by(|a, b| (&a.bed, a.code, &a.device).cmp(&(&b.bed, b.code, &b.device)));
    got
}

fn expected(mut rs: Vec<Reading>) -> Vec<Reading> {
    // Stable: readings of one series at the same instant keep arrival order.
    rs.sort_by(|a, b| (&a.bed, a.code, &a.device, a.received).cmp(&(&b.bed, b.code, &b.device, b.received)));
    rs
}

#[test]
fn a_backlog_batch_reads_back_whole_in_order_and_verifies() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        // 16 beds × 3 parameters × 420 s = 20 160 readings in one append,
        // interleaved as a ward's backlog is: 48 series, 420 readings each.
        let mut batch = backlog(420, 16);
        // One series' readings out of arrival order (a device's stored
        // records after live ones), and two at the same instant whose order
        // must be kept.
        let mut late = reading("bed-3", Mdc(150456), Value::Number(55.5), t(3));
        late.device = "bed-3-dev-0".into();
        batch.push(late.clone());
        let mut twin = late.clone();
        twin.value = Value::Number(55.6);
        batch.push(twin);
        store.append(&batch).await.unwrap();

        let got = all(&store).await;
        assert_eq!(got.len(), batch.len());
        assert_eq!(got, expected(batch.clone()));
        // One chunk per series, each sealed and MAC'd: all verify.
        let st = store.chunk_stats().await.unwrap();
        assert_eq!((st.series, st.chunks, st.frames), (48, 48, 0));
        let (chunks, failures) = store.verify().await.unwrap();
        assert_eq!((chunks, failures.len()), (48, 0), "{failures:?}");

        // The same readings in smaller appends (each grouped afresh, its
        // series met in another order first) read back the same.
        let one = dir.path().join("one.db");
        let single = Store::open(&one, &key()).await.unwrap();
        for part in batch.chunks(4_000) {
            single.append(part).await.unwrap();
        }
        assert_eq!(all(&single).await, got);
        single.close().await;

        // A key rotation keeps what the backlog append sealed readable.
        store.close().await;
        vigil_store::rotate_key(&path, &key(), &keys_new_pass())
            .await
            .unwrap();
        let store = Store::open(&path, &keys_new_pass()).await.unwrap();
        assert_eq!(all(&store).await, got);
        let (chunks, failures) = store.verify().await.unwrap();
        assert_eq!((chunks, failures.len()), (48, 0), "{failures:?}");
        store.close().await;
    });
}

fn keys_new_pass() -> KeySource {
    KeySource::passphrase("a completely different passphrase", "test")
}

/// A chunk of a backlog batch is bound to its own id and series like any
/// other: another chunk's sealed bytes copied over it fail verification.
#[test]
fn a_chunk_of_a_backlog_batch_copied_over_another_fails_verification() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        store.append(&backlog(200, 16)).await.unwrap();
        store.close().await;
        sql(
            &path,
            "UPDATE chunks SET nonce = (SELECT nonce FROM chunks ORDER BY id DESC LIMIT 1),
                               sealed = (SELECT sealed FROM chunks ORDER BY id DESC LIMIT 1)
             WHERE id = (SELECT min(id) FROM chunks)",
        )
        .await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (chunks, failures) = store.verify().await.unwrap();
        assert_eq!(chunks, 48);
        assert!(!failures.is_empty(), "a moved chunk must not verify");
        store.close().await;
    });
}
