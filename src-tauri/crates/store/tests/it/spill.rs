//! The spill file: readings the database could not take, kept encrypted
//! beside it, read back exactly once, tampering and crashes reported.

use super::{key, reading, rt, t};
use vigil_model::{Mdc, Reading, Special, Value};
use vigil_store::{KeySource, Store, StoreError};

fn batch(from: i64, n: i64) -> Vec<Reading> {
    (from..from + n)
        .map(|s| {
            let v = if s % 7 == 0 {
                Value::Special(Special::NaN)
            } else {
                Value::Number(60.0 + (s % 40) as f64)
            };
            reading("bed-1", Mdc::ECG_HEART_RATE, v, t(s))
        })
        .collect()
}

async fn stored(store: &Store) -> Vec<Reading> {
    store
        .query_range(None, t(-1), t(100_000))
        .await
        .unwrap()
}

#[test]
fn spilled_readings_come_back_whole_and_land_exactly_once() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db"), &key()).await.unwrap();
        let mut w = store.start_spill().unwrap();
        w.write(&batch(0, 100)).unwrap();
        w.write(&batch(100, 50)).unwrap();
        assert_eq!(w.readings(), 150);
        let path = w.path().to_path_buf();
        drop(w);
        assert_eq!(store.spill_files(), vec![path.clone()]);
        // Encrypted: no reading's device id or unit in the clear.
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(9).any(|w| w == b"bed-1-dev"), "spill file holds plaintext");

        let c = store.read_spill(&path).unwrap();
        assert!(c.damage.is_none(), "{:?}", c.damage);
        assert_eq!(c.frames.len(), 2);
        assert_eq!(c.frames[0].1, batch(0, 100), "a frame reads back as written");
        for (n, r) in &c.frames {
            assert!(store.append_spilled(&c.id, *n, r).await.unwrap());
        }
        // A crash before the file was removed: applying it again stores nothing twice.
        for (n, r) in &c.frames {
            assert!(!store.append_spilled(&c.id, *n, r).await.unwrap());
        }
        store.finish_spill(&c).await.unwrap();
        assert!(store.spill_files().is_empty());
        assert!(!path.exists());
        assert_eq!(stored(&store).await, batch(0, 150));
    });
}

#[test]
fn a_frame_cut_short_by_a_crash_is_reported_and_the_frames_before_it_kept() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db"), &key()).await.unwrap();
        let mut w = store.start_spill().unwrap();
        w.write(&batch(0, 30)).unwrap();
        w.write(&batch(30, 30)).unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let c = store.read_spill(&path).unwrap();
        assert_eq!(c.frames.len(), 1);
        assert!(c.damage.as_deref().unwrap().contains("frame 1 is cut short"), "{:?}", c.damage);
        // Kept aside, never deleted, and not applied again.
        store.finish_spill(&c).await.unwrap();
        assert!(store.spill_files().is_empty());
        assert!(path.with_file_name(format!("{}.damaged", path.file_name().unwrap().to_string_lossy())).exists());
    });
}

#[test]
fn an_altered_or_reordered_frame_fails_authentication() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db"), &key()).await.unwrap();
        let mut w = store.start_spill().unwrap();
        w.write(&batch(0, 20)).unwrap();
        w.write(&batch(20, 20)).unwrap();
        w.write(&batch(40, 20)).unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        let good = std::fs::read(&path).unwrap();

        // One flipped bit in the last frame.
        let mut bad = good.clone();
        let last = bad.len() - 5;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let c = store.read_spill(&path).unwrap();
        assert_eq!(c.frames.len(), 2);
        assert!(c.damage.as_deref().unwrap().contains("frame 2 failed authentication"));

        // Frames 1 and 2 swapped: each is bound to its place.
        let header = 32; // magic, file id, key id
        let frame_len = |at: usize| 4 + u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) as usize;
        let f0 = frame_len(header);
        let f1 = frame_len(header + f0);
        let mut swapped = good[..header + f0].to_vec();
        swapped.extend_from_slice(&good[header + f0 + f1..]);
        swapped.extend_from_slice(&good[header + f0..header + f0 + f1]);
        std::fs::write(&path, &swapped).unwrap();
        let c = store.read_spill(&path).unwrap();
        assert_eq!(c.frames.len(), 1, "a moved frame opened");
        assert!(c.damage.is_some());
    });
}

#[test]
fn a_spill_file_of_another_store_does_not_open() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&dir.path().join("a.db"), &key()).await.unwrap();
        let mut w = a.start_spill().unwrap();
        w.write(&batch(0, 5)).unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        let b = Store::open(
            &dir.path().join("b.db"),
            &KeySource::passphrase("another passphrase entirely", "test"),
        )
        .await
        .unwrap();
        let err = b.read_spill(&path).unwrap_err();
        assert!(matches!(err, StoreError::Spill(_)));
        assert!(err.to_string().contains("does not open with this store's key"), "{err}");
        // Nor is a random file taken for one.
        std::fs::write(dir.path().join("junk"), b"not a spill file at all").unwrap();
        assert!(b.read_spill(&dir.path().join("junk")).unwrap_err().to_string().contains("not a Vigil spill file"));
    });
}
