//! Issue 14: the signed audit trail reaches the FHIR server as `AuditEvent`s —
//! every record once, after a restart and after an answer that was lost (the
//! cursor put back), with no patient identity in them.

use super::{admit, config, support::TestServer, PASS};
use std::time::Duration;
use vigil_core::auth::{self, Role};
use vigil_core::Vigil;
use vigil_store::KeySource;

const PW: &str = "a long enough password";

/// Waits until the server holds `n` AuditEvents (or fails after 30 s).
async fn wait_for(server: &TestServer, n: u64) -> u64 {
    let client = server.client();
    let mut have = 0;
    for _ in 0..300 {
        have = client.count("AuditEvent", &[]).await.unwrap();
        if have >= n {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    have
}

async fn trail_len(dir: &std::path::Path) -> (u64, String) {
    let store = vigil_store::Store::open(&dir.join("vigil.db"), &KeySource::passphrase(PASS, "test"))
        .await
        .unwrap();
    let n = store.audit_entries(None, None).await.unwrap().len() as u64;
    let id = store.store_id().to_string();
    store.close().await;
    (n, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_uploads_as_audit_events_exactly_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), &server.base())).await.unwrap();
    auth::add_user(v.store(), "nina", Role::Nurse, PW).await.unwrap();
    assert!(v.sign_in("nina", "not the password").await.is_err());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.sign_in("nina", PW).await.unwrap();
    v.user_admit(admit("bed-1", "MRN-AUDIT-1")).await.unwrap();
    v.user_pause_audio("bed-1").await.unwrap();
    v.sign_out();
    // The sync status counts records still to send until the server has them all.
    let mut pending = u64::MAX;
    for _ in 0..100 {
        // Records still queued in memory (sign_out's) are not in the trail
        // yet: the server must have every record written, queued ones included.
        pending = v.sync_status().await.unwrap().audit_pending + v.audit_status().pending;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "audit records left unsent");
    v.shutdown().await;
    let (records, store_id) = trail_len(dir.path()).await;
    assert!(records >= 5, "{records} records");
    assert_eq!(wait_for(&server, records).await, records, "every record, once");

    // What the server holds: the record's name, the actor, the action; never the patient.
    let client = server.client();
    let b = client
        .search("AuditEvent", &[("entity-name:exact", &format!("{store_id}/1")), ("_count", "10")])
        .await
        .unwrap();
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(1), "{b}");
    let all = client.search("AuditEvent", &[("_count", "1000")]).await.unwrap().to_string();
    assert!(all.contains("\"admit\"") && all.contains("urn:vigil:user"), "{all}");
    assert!(!all.contains("Test Person") && !all.contains("MRN-AUDIT-1") && !all.contains("1961-02-03"));

    // The answer to the last batch was lost: the cursor is back at 0 and everything is
    // sent again. The conditional create finds each event; nothing doubles.
    reset_cursor(&dir.path().join("vigil.db")).await;
    let v = Vigil::start(config(dir.path(), &server.base())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    v.shutdown().await;
    let (records, _) = trail_len(dir.path()).await;
    // The restart's own records (none needed here) go up too; each record exactly once.
    assert_eq!(wait_for(&server, records).await, records);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.count("AuditEvent", &[]).await.unwrap(), records, "no duplicates");
}

/// Puts the upload cursor back to the start (as if every answer had been lost). The
/// store's API only moves it forward, so the file is edited directly.
async fn reset_cursor(path: &std::path::Path) {
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    sqlx::query("UPDATE meta SET value = 0 WHERE key = 'audit_uploaded_seq'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
