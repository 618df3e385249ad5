//! Issue 13 §6: the data directory is this user's alone, the store files are 0600.

#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use vigil_core::Vigil;
use vigil_devices::sim::Scenario;

use crate::config;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_made_private_and_one_someone_else_owns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v = Vigil::start(config(&data, Scenario::Stable, 10.0)).await.unwrap();
    v.shutdown().await;
    assert_eq!(mode(&data), 0o700, "created private");
    for f in std::fs::read_dir(&data).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("vigil.db") {
            assert_eq!(mode(&f.path()), 0o600, "{:?}", f.file_name());
        }
    }

    // Opened up (an old install, a careless copy) and a store file others can read: this
    // user's own, so made private at start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("vigil.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let v = Vigil::start(config(&data, Scenario::Stable, 10.0)).await.unwrap();
    v.shutdown().await;
    assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));

    // A store file someone else planted, or someone else's directory: refused (as root, hand
    // them to nobody; a user cannot make that here).
    if std::fs::metadata(&data).unwrap().uid() == 0 {
        std::os::unix::fs::chown(&db, Some(65534), None).unwrap();
        let e = Vigil::start(config(&data, Scenario::Stable, 10.0)).await.err().unwrap().to_string();
        assert!(e.contains("vigil.db belongs to uid 65534"), "{e}");
        std::os::unix::fs::chown(&db, Some(0), None).unwrap();
        std::os::unix::fs::chown(&data, Some(65534), None).unwrap();
        let e = Vigil::start(config(&data, Scenario::Stable, 10.0)).await.err().unwrap().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
    }
}
