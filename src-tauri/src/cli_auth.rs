//! The Vigil user of a store command, in one place for every command
//! (issue 14): `--user <name>` (or `VIGIL_USER`), the password from
//! `VIGIL_USER_PASSWORD` or a hidden prompt. The core checks the password
//! and the role ([`vigil_core::cli_user`]); a refusal exits with
//! [`REFUSED`] and one line saying why.

use crate::cli::Global;
use std::process::ExitCode;
use vigil_core::auth::{Action, Actor, AuthError};
use vigil_core::cli_user::{CliCommand, CliUser};
use vigil_core::CoreError;
use vigil_store::Store;

/// The exit code of a command the user may not run (no user, a wrong password,
/// a role the matrix does not allow); 1 stays "the command failed".
pub const REFUSED: u8 = 2;

/// The signing-in user's password (and, for the installer's first admin only,
/// the new admin's: see `admin::user_add`).
pub const USER_PASSWORD_ENV: &str = "VIGIL_USER_PASSWORD";

pub const EXPORT: CliCommand = CliCommand {
    audit: "export",
    action: Action::Export,
};
/// The alarm log leaves the store as a file: an export (the screen's alarm log is `alarm_log` too).
pub const ALARMS_EXPORT: CliCommand = CliCommand {
    audit: "alarm_log",
    action: Action::Export,
};
/// Store verify and salvage open every sealed record with the store key: the key custodian's (admin) work.
pub const STORE_VERIFY: CliCommand = CliCommand {
    audit: "store_verify",
    action: Action::ManageKeys,
};
pub const STORE_SALVAGE: CliCommand = CliCommand {
    audit: "store_salvage",
    action: Action::ManageKeys,
};
pub const STORE_BACKUP: CliCommand = CliCommand {
    audit: "store_backup",
    action: Action::ManageKeys,
};
pub const STORE_RESTORE: CliCommand = CliCommand {
    audit: "store_restore",
    action: Action::ManageKeys,
};
pub const MANAGE_KEYS: CliCommand = CliCommand {
    audit: "manage_keys",
    action: Action::ManageKeys,
};
pub const FHIR_QUEUE: CliCommand = CliCommand {
    audit: "fhir_queue",
    action: Action::FhirQueue,
};
pub const MANAGE_USERS: CliCommand = CliCommand {
    audit: "manage_users",
    action: Action::ManageUsers,
};
/// The trail is the record of what users did: who manages users checks and exports it.
pub const AUDIT_VERIFY: CliCommand = CliCommand {
    audit: "audit_verify",
    action: Action::ManageUsers,
};
pub const AUDIT_EXPORT: CliCommand = CliCommand {
    audit: "audit_export",
    action: Action::ManageUsers,
};

/// `--user` and its password, None without `--user`. The password is read
/// before the store is opened; none available is a refusal.
pub fn credentials(global: &Global) -> Result<Option<(String, String)>, ExitCode> {
    let Some(name) = global.user.clone() else {
        return Ok(None);
    };
    if let Some(p) = std::env::var(USER_PASSWORD_ENV).ok().filter(|p| !p.is_empty()) {
        return Ok(Some((name, p)));
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(refused(&format!(
            "no password for --user {name}: set {USER_PASSWORD_ENV} or run in a terminal to be asked"
        )));
    }
    match crate::admin::prompt_hidden(&format!("Password of Vigil user {name}: ")) {
        Ok(p) => Ok(Some((name, p))),
        Err(e) => Err(refused(&e)),
    }
}

/// Signs `--user` in for `command` on the open store (see [`CliUser::sign_in`]).
pub fn sign_in(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    credentials: &Option<(String, String)>,
    command: CliCommand,
) -> Result<CliUser, ExitCode> {
    let c = credentials.as_ref().map(|(n, p)| (n.as_str(), p.as_str()));
    rt.block_on(CliUser::sign_in(store, c, command))
        .map_err(|e| refusal(rt, store, e))
}

/// Like [`sign_in`], but with no user in the store at all, `first` runs the command
/// (the installer's first admin, salvage into a new store).
pub fn sign_in_unless_no_users(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    credentials: &Option<(String, String)>,
    command: CliCommand,
    first: Result<Actor, AuthError>,
) -> Result<CliUser, ExitCode> {
    let c = credentials.as_ref().map(|(n, p)| (n.as_str(), p.as_str()));
    rt.block_on(CliUser::sign_in_unless_no_users(store, c, command, first))
        .map_err(|e| refusal(rt, store, e))
}

/// Closes the store and says why the command was not run.
fn refusal(rt: &tokio::runtime::Runtime, store: &Store, e: CoreError) -> ExitCode {
    // A clone shares the pool: closing it closes the store.
    rt.block_on(store.clone().close());
    match e {
        CoreError::Auth(e) => refused(&e.to_string()),
        e => crate::cli::fail(&e.to_string()),
    }
}

pub fn refused(msg: &str) -> ExitCode {
    eprintln!("vigil: refused: {msg}");
    ExitCode::from(REFUSED)
}

/// Records the command with how it ended and writes the run's records; a failure
/// to is said on stderr and never fails the command (it already happened).
pub fn finish(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    user: CliUser,
    ok: bool,
    detail: impl Into<String>,
) {
    if let Err(e) = rt.block_on(user.finish(store, ok, detail)) {
        eprintln!("vigil: the audit record of this command could not be written: {e}");
    }
}
