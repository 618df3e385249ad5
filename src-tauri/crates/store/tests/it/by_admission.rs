//! Admission-keyed reads for clinicians' reports (issue 15): every admission
//! listed, readings by admission, and a range read that verifies each chunk
//! and names the ones that fail instead of failing or hiding them.

use super::*;
use vigil_store::Selection;

fn admitted(bed: &str, adm: &AdmissionId, v: f64, at: DateTime<Utc>) -> Reading {
    Reading {
        admission: Some(adm.clone()),
        ..reading(bed, Mdc::ECG_HEART_RATE, Value::Number(v), at)
    }
}

#[test]
fn admissions_past_and_current_and_readings_by_admission() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        // First stay on bed-1, discharged; then a second patient on bed-1.
        let a = store.admit("bed-1", patient(), t(0)).await.unwrap();
        store.append(&[admitted("bed-1", &a.id, 70.0, t(10)), admitted("bed-1", &a.id, 71.0, t(20))]).await.unwrap();
        store.discharge("bed-1", t(100)).await.unwrap();
        // Between the two stays: nobody admitted.
        store.append(&[reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(60.0), t(150))]).await.unwrap();
        let b = store.admit("bed-1", patient(), t(200)).await.unwrap();
        store.append(&[admitted("bed-1", &b.id, 90.0, t(210))]).await.unwrap();
        // Another bed's reading in the same range stays out.
        let c = store.admit("bed-2", patient(), t(0)).await.unwrap();
        store.append(&[admitted("bed-2", &c.id, 50.0, t(15))]).await.unwrap();

        let all = store.admissions().await.unwrap();
        assert_eq!(all.len(), 3);
        let first = all.iter().find(|x| x.id == a.id).unwrap();
        assert_eq!((first.bed.as_str(), first.admitted_at, first.discharged_at), ("bed-1", t(0), Some(t(100))));
        assert!(all.iter().find(|x| x.id == b.id).unwrap().discharged_at.is_none());

        let values = |rs: &[Reading]| rs.iter().map(|r| r.value).collect::<Vec<_>>();
        let ra = store.query_admission(&a.id.0, t(0), t(1000)).await.unwrap();
        assert_eq!(values(&ra), vec![Value::Number(70.0), Value::Number(71.0)]);
        let rb = store.query_admission(&b.id.0, t(0), t(1000)).await.unwrap();
        assert_eq!(values(&rb), vec![Value::Number(90.0)]);
        // The range narrows it.
        assert_eq!(store.query_admission(&a.id.0, t(15), t(1000)).await.unwrap().len(), 1);
        // The bed's whole range holds all four of bed-1, admitted or not.
        let bed = store.read_checked(Selection::Bed("bed-1"), t(0), t(1000)).await.unwrap();
        assert_eq!(bed.readings.len(), 4);
        assert!(bed.failed.is_empty());
        assert_eq!(bed.chunks_verified, 3, "one chunk per append and series");

        let err = store.query_admission("no-such-admission", t(0), t(1000)).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownAdmission(_)), "{err}");
        store.close().await;
    });
}

#[test]
fn a_failing_chunk_is_listed_and_the_rest_still_read() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let a = store.admit("bed-1", patient(), t(0)).await.unwrap();
        for i in 0..3 {
            store.append(&[admitted("bed-1", &a.id, 70.0 + i as f64, t(10 * i))]).await.unwrap();
        }
        store.close().await;
        sql(&path, "UPDATE chunks SET sealed = zeroblob(length(sealed)) WHERE id = 2").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let got = store.read_checked(Selection::Admission(&a.id.0), t(0), t(100)).await.unwrap();
        assert_eq!(got.readings.len(), 2);
        assert_eq!(got.chunks_verified, 2);
        assert_eq!(got.failed.len(), 1);
        let f = &got.failed[0];
        assert_eq!((f.chunk, f.code, f.from, f.to), (2, Some(Mdc::ECG_HEART_RATE), t(10), t(10)));
        assert!(f.reason.contains("chunk 2"), "{}", f.reason);
        assert!(!f.reason.contains("Zebedee"));
        // The strict query refuses instead.
        assert!(store.query_admission(&a.id.0, t(0), t(100)).await.is_err());
        store.close().await;
    });
}
