//! The Vigil user of a CLI store command (issue 14): the same roles as the
//! screen, checked here in the core for every command that touches the store.
//!
//! A command names itself ([`CliCommand`]: its name in the audit trail and the
//! [`Action`] of the permission matrix it needs, the same action the screen
//! needs for the same thing). [`CliUser::sign_in`] checks the password through
//! [`Auth::sign_in`] (Argon2id, the same dummy work for unknown names, the
//! same records) and the role through [`auth::allows`]. Every record of the
//! run has the Vigil user as actor (as on the screen) and starts its detail
//! with `cli os:<name>`, the operating-system user who ran it.
//!
//! Only on a store with no user at all does a command run without one
//! ([`CliUser::sign_in_unless_no_users`]): the installer's first admin, and
//! salvaging the accounts of a damaged store into the new, empty one.

use crate::auth::{self, Action, Actor, Auth, AuthError, Role};
use crate::CoreError;
use std::time::Instant;
use vigil_store::{Outcome, Store, StoreError};

/// A CLI command that touches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliCommand {
    /// Its action name in the audit trail (`export`, `store_verify`, …).
    pub audit: &'static str,
    /// What the permission matrix must allow the user's role.
    pub action: Action,
}

/// A user allowed to run one CLI command. Its records (the sign-in, the
/// command) are held until [`CliUser::finish`]: a command that checks the
/// audit trail checks it before anything is added to it.
pub struct CliUser {
    auth: Auth,
    actor: Actor,
    command: CliCommand,
    bootstrap: bool,
}

/// `cli os:<name>`: the origin put before the detail of every record of a CLI run.
fn origin() -> String {
    format!("cli {}", Actor::os().name)
}

impl CliUser {
    /// Signs `credentials` (name, password) in for `command`, or says why not.
    /// A refusal (no user given, a store with no user, a wrong password, a
    /// disabled account, a role the matrix does not allow) is written to the
    /// audit trail before this returns, as the command's action with outcome
    /// `refused`.
    pub async fn sign_in(
        store: &Store,
        credentials: Option<(&str, &str)>,
        command: CliCommand,
    ) -> Result<CliUser, CoreError> {
        let auth = Auth::with_origin(origin());
        match check(&auth, store, credentials, command).await {
            Ok(actor) => Ok(CliUser {
                auth,
                actor,
                command,
                bootstrap: false,
            }),
            Err(e) => {
                flush_or_log(&auth, store).await;
                if matches!(e, CoreError::Auth(AuthError::BadCredentials)) {
                    // Why: each CLI run is a new process, so the screen's in-memory
                    // throttle cannot build up; a pause per wrong password keeps a
                    // guessing script at the screen's first step (1 s) per try.
                    tokio::time::sleep(auth::delay_after(1)).await;
                }
                Err(e)
            }
        }
    }

    /// For what an installer runs on a store with no user yet: the first admin
    /// (`vigil user add <name> --role admin`) and salvaging the accounts of a damaged
    /// store moved aside (`vigil store salvage`). With no user at all in the store,
    /// no `--user` is needed (anyone holding the store key could make the first
    /// admin anyway) and `first` is the actor, or why not; once a user exists, as
    /// [`CliUser::sign_in`].
    pub async fn sign_in_unless_no_users(
        store: &Store,
        credentials: Option<(&str, &str)>,
        command: CliCommand,
        first: Result<Actor, AuthError>,
    ) -> Result<CliUser, CoreError> {
        if store.user_count().await? > 0 {
            return CliUser::sign_in(store, credentials, command).await;
        }
        let auth = Auth::with_origin(origin());
        match first {
            Ok(actor) => Ok(CliUser {
                auth,
                actor,
                command,
                bootstrap: true,
            }),
            Err(e) => {
                auth.record_action(
                    &Actor::os(),
                    command.audit,
                    None,
                    Outcome::Refused,
                    Some(e.to_string()),
                );
                flush_or_log(&auth, store).await;
                Err(e.into())
            }
        }
    }

    /// The installer's first admin `name`, if `role` is admin (for [`CliUser::sign_in_unless_no_users`]).
    pub fn first_admin(name: &str, role: Role) -> Result<Actor, AuthError> {
        if role != Role::Admin {
            return Err(AuthError::FirstUserNotAdmin);
        }
        Ok(Actor {
            name: name.to_string(),
            role: Some(Role::Admin),
            break_glass: false,
        })
    }

    /// Allowed without a user, the store having none ([`CliUser::sign_in_unless_no_users`]).
    pub fn bootstrap(&self) -> bool {
        self.bootstrap
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Ends an allowed command that writes nothing, not even its sign-in (`vigil audit
    /// verify`: a check must not add to what it checks). Its refusals are recorded.
    pub fn read_only(self) {}

    /// Records the command with how it ended (`detail`: what it did, no PHI) and
    /// writes the run's records to `store` (after a key rotation: the store
    /// under its new key). Err: the trail refused them (the command itself
    /// already happened: the caller says so, it does not undo it).
    pub async fn finish(self, store: &Store, ok: bool, detail: impl Into<String>) -> Result<(), StoreError> {
        self.finish_for(store, None, ok, detail).await
    }

    /// [`CliUser::finish`] for a command about one admission (its opaque id in the record).
    pub async fn finish_for(
        self,
        store: &Store,
        admission: Option<&str>,
        ok: bool,
        detail: impl Into<String>,
    ) -> Result<(), StoreError> {
        let outcome = if ok { Outcome::Success } else { Outcome::Failed };
        self.auth.record_action(
            &self.actor,
            self.command.audit,
            admission,
            outcome,
            Some(detail.into()),
        );
        self.auth.audit_queue().flush(store).await
    }
}

async fn check(
    auth: &Auth,
    store: &Store,
    credentials: Option<(&str, &str)>,
    command: CliCommand,
) -> Result<Actor, CoreError> {
    let refuse = |actor: &Actor, why: &str| {
        auth.record_action(
            actor,
            command.audit,
            None,
            Outcome::Refused,
            Some(why.to_string()),
        );
    };
    let Some((name, password)) = credentials else {
        refuse(&Actor::os(), "no --user");
        return Err(if store.user_count().await? == 0 {
            AuthError::NoUsers
        } else {
            AuthError::CliNoUser
        }
        .into());
    };
    if store.user_count().await? == 0 {
        refuse(&Actor::os(), "no user in the store");
        return Err(AuthError::NoUsers.into());
    }
    let view = match auth.sign_in(store, name, password, Instant::now()).await {
        Ok(v) => v,
        Err(e) => {
            // Auth::sign_in recorded the attempt (`sign_in`); the command's refusal too.
            refuse(&auth::attempted(name), &e.to_string());
            return Err(e);
        }
    };
    let actor = Actor {
        name: view.user,
        role: Some(view.role),
        break_glass: false,
    };
    if !auth::allows(view.role, command.action) {
        let e = AuthError::Forbidden {
            role: view.role,
            action: command.action,
        };
        refuse(&actor, &e.to_string());
        return Err(e.into());
    }
    Ok(actor)
}

/// Writes a refusal's records; a failure to is logged (the refusal stands).
async fn flush_or_log(auth: &Auth, store: &Store) {
    if let Err(e) = auth.audit_queue().flush(store).await {
        tracing::error!(error = %e, "the audit record of this refusal could not be written");
    }
}
