//! Local user accounts, sealed: one row per user, its record (role,
//! Argon2id password hash, disabled flag) sealed under the log key with the
//! user's name bound into the AAD. An edited role, a hash copied from
//! another user or a row renamed fails to open ([`StoreError::TamperedRecord`]).
//!
//! The store does not interpret roles (the core does); it keeps them as text.
//! Passwords are hashed here with Argon2id at RFC 9106's second recommended
//! parameters (m = 64 MiB, t = 3, p = 4) and a random 16-byte salt.
//!
//! Not detected: a whole row deleted, or replaced by an older sealed copy of
//! the same user's row (e.g. to undo a disable). The signed audit trail
//! (issue 14, later) is where that shows.

use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

const AAD_USER: &[u8] = b"vigil/user/v1/";

/// One user account as stored (the hash is a PHC string; never logged).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub disabled: bool,
    /// µs UTC.
    pub created: i64,
}

impl UserRecord {
    pub fn created_at(&self) -> DateTime<Utc> {
        micros_to_utc(self.created)
    }
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

fn argon2() -> argon2::Argon2<'static> {
    let p = crate::KdfParams::RFC9106_SECOND;
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).expect("valid Argon2 parameters"),
    )
}

/// Hashes a password with Argon2id (RFC 9106 second recommendation) and a
/// random salt; a PHC string (`$argon2id$v=19$m=65536,t=3,p=4$…`).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .expect("OS random generator failed");
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id hashing")
        .to_string()
}

/// Whether `password` matches the PHC string `hash`. The parameters of the
/// hash are checked first: anything weaker than RFC 9106's second
/// recommendation (an edit can't get here: the record is sealed) is refused.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let min = crate::KdfParams::RFC9106_SECOND;
    if params.m_cost() < min.m_cost_kib
        || params.t_cost() < min.t_cost
        || params.p_cost() < min.p_cost
        || params.m_cost() > 1024 * 1024
        || params.t_cost() > 16
    {
        return false;
    }
    argon2().verify_password(password.as_bytes(), &parsed).is_ok()
}

pub(crate) fn aad(name: &str) -> Vec<u8> {
    [AAD_USER, &(name.len() as u32).to_le_bytes(), name.as_bytes()].concat()
}

impl Store {
    /// Adds a user; false (nothing written) when the name is taken.
    pub async fn add_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let what = "adding a user";
        let mut tx = self.begin_write(what).await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = ?1")
            .bind(&user.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(what))?;
        if taken.is_some() {
            return Ok(false);
        }
        self.write_user(&mut tx, user, what).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(true)
    }

    /// Replaces an existing user's record (role, hash, disabled); false when
    /// there is no such user.
    pub async fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let what = "updating a user";
        let mut tx = self.begin_write(what).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = ?1")
            .bind(&user.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(what))?;
        if exists.is_none() {
            return Ok(false);
        }
        self.write_user(&mut tx, user, what).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(true)
    }

    async fn write_user(
        &self,
        tx: &mut crate::write::WriteTx,
        user: &UserRecord,
        what: &'static str,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec(user).expect("json serialises");
        let s = self.keys.seal(tx, Purpose::Log, &aad(&user.name), &body).await?;
        sqlx::query(
            "INSERT INTO users (name, nonce, sealed, key_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET nonce = ?2, sealed = ?3, key_id = ?4",
        )
        .bind(&user.name)
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(s.key_id)
        .execute(&mut **tx)
        .await
        .map_err(db(what))?;
        Ok(())
    }

    /// One user by name (None: no such user); an altered row is an error.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT rowid, name, nonce, sealed, key_id FROM users WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a user"))?;
        row.map(|r| self.open_user(&r)).transpose()
    }

    /// Every user, by name; a row that fails to open is returned as its error.
    pub async fn users(&self) -> Result<Vec<Result<UserRecord, StoreError>>, StoreError> {
        let rows = sqlx::query("SELECT rowid, name, nonce, sealed, key_id FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading users"))?;
        Ok(rows.iter().map(|r| self.open_user(r)).collect())
    }

    /// How many user rows there are (whether they open or not).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting users"))
    }

    fn open_user(&self, row: &sqlx::sqlite::SqliteRow) -> Result<UserRecord, StoreError> {
        let name: String = row.get("name");
        let bad = || StoreError::TamperedRecord {
            table: "users",
            id: row.get("rowid"),
        };
        let plain = self
            .keys
            .open(
                Purpose::Log,
                row.get("key_id"),
                &aad(&name),
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| bad())?;
        let user: UserRecord = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if user.name != name {
            return Err(bad());
        }
        Ok(user)
    }
}
