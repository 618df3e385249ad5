//! Users: sealed records, Argon2id hashes, tamper detection.

use super::*;
use vigil_store::{hash_password, verify_password, UserRecord};

fn user(name: &str, role: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        role: role.into(),
        password_hash: hash_password("correct horse battery"),
        disabled: false,
        created: 1,
    }
}

#[test]
fn password_hash_is_argon2id_at_rfc9106_second_recommendation() {
    let h = hash_password("correct horse battery");
    assert!(h.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{h}");
    assert!(verify_password("correct horse battery", &h));
    assert!(!verify_password("correct horse batterz", &h));
    // Weaker parameters are refused even with the right password.
    let weak = argon2::password_hash::PasswordHasher::hash_password(
        &argon2::Argon2::default(),
        b"correct horse battery",
        &argon2::password_hash::SaltString::encode_b64(&[7u8; 16]).unwrap(),
    )
    .unwrap()
    .to_string();
    assert!(!verify_password("correct horse battery", &weak));
    assert!(!verify_password("x", "not a hash"));
}

#[test]
fn users_round_trip_and_an_edited_role_is_detected() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        assert_eq!(store.user_count().await.unwrap(), 0);
        let ann = user("ann", "nurse");
        assert!(store.add_user(&ann).await.unwrap());
        assert!(
            !store.add_user(&user("ann", "admin")).await.unwrap(),
            "names are unique"
        );
        assert!(store.add_user(&user("bob", "admin")).await.unwrap());
        assert_eq!(store.user("ann").await.unwrap().unwrap(), ann);
        assert!(store.user("nobody").await.unwrap().is_none());
        let mut disabled = ann.clone();
        disabled.disabled = true;
        assert!(store.update_user(&disabled).await.unwrap());
        assert!(!store.update_user(&user("carl", "viewer")).await.unwrap());
        assert!(store.user("ann").await.unwrap().unwrap().disabled);
        let names: Vec<String> = store
            .users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.unwrap().name)
            .collect();
        assert_eq!(names, ["ann", "bob"]);
        store.close().await;

        // Give ann bob's sealed record (role admin): it no longer opens.
        sql(
            &path,
            "UPDATE users SET nonce = (SELECT nonce FROM users WHERE name = 'bob'),
                              sealed = (SELECT sealed FROM users WHERE name = 'bob') WHERE name = 'ann'",
        )
        .await;
        // And flip a byte of bob's.
        sql(
            &path,
            "UPDATE users SET sealed = sealed || x'00' WHERE name = 'bob'",
        )
        .await;
        let store = Store::open(&path, &key()).await.unwrap();
        assert!(matches!(
            store.user("ann").await,
            Err(StoreError::TamperedRecord { table: "users", .. })
        ));
        assert!(store.users().await.unwrap().iter().all(|u| u.is_err()));
        store.close().await;
    });
}
