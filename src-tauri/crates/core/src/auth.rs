//! Who may do what (issue 14): local users, the workstation's session, the
//! permission matrix, sign-in rate limiting, and the one seam through which
//! every action passes with its actor ([`Auth::record_action`], the signed
//! audit trail's entry: [`crate::audit`]).
//!
//! The matrix is checked here, in the core, for every action: the shell and
//! the screen only ask [`crate::Vigil::session`] what the signed-in user may
//! do, to hide what they may not. Without a session the workstation keeps
//! monitoring and alarming (numerics, alarms, sound: [`Action::Monitor`]
//! needs no session); every other action and all PHI need one.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ts_rs::TS;
use crate::audit::AuditQueue;
use std::sync::Arc;
use vigil_store::{Outcome, Store, StoreError, UserRecord};

/// Shortest password a new user may have.
pub const PASSWORD_MIN: usize = 12;
/// Longest password accepted (Argon2 takes any length; a pasted document is refused).
pub const PASSWORD_MAX: usize = 1024;
/// Longest user name.
pub const NAME_MAX: usize = 64;
/// Longest wait a run of wrong passwords for one name builds up.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Role {
    Nurse,
    Clinician,
    Admin,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Nurse, Role::Clinician, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::Clinician => "clinician",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Role, AuthError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AuthError::BadRole(s.chars().take(32).collect()))
    }
}

/// Everything a user can ask Vigil to do (each IPC and CLI command maps to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Action {
    /// Numerics, alarms and their sound, device states: no session needed.
    Monitor,
    /// Patient names, MRNs and dates of birth on screen.
    ViewPatient,
    Admit,
    Discharge,
    ScanDevices,
    PairDevice,
    AssignDevice,
    RemoveDevice,
    SetDeviceClock,
    Acknowledge,
    PauseAudio,
    EnterNews2,
    SetLimit,
    /// Searching the FHIR server by MRN and linking the admission to a Patient.
    LinkPatient,
    /// A bed's NEWS2 history and other trends.
    Trends,
    /// A bed's alarm log.
    AlarmLog,
    /// Reports and exports of a bed's data.
    Export,
    /// FHIR upload problems: dead letters, re-sending them.
    FhirQueue,
    ManageUsers,
    SiteConfig,
    ManageKeys,
    /// Asking the site's update server whether a newer Vigil exists (issue 16).
    CheckUpdates,
    /// Installing an update: restarts Vigil (see [`crate::update::may_install`]).
    InstallUpdate,
}

impl Action {
    pub const ALL: [Action; 23] = [
        Action::Monitor,
        Action::ViewPatient,
        Action::Admit,
        Action::Discharge,
        Action::ScanDevices,
        Action::PairDevice,
        Action::AssignDevice,
        Action::RemoveDevice,
        Action::SetDeviceClock,
        Action::Acknowledge,
        Action::PauseAudio,
        Action::EnterNews2,
        Action::SetLimit,
        Action::LinkPatient,
        Action::Trends,
        Action::AlarmLog,
        Action::Export,
        Action::FhirQueue,
        Action::ManageUsers,
        Action::SiteConfig,
        Action::ManageKeys,
        Action::CheckUpdates,
        Action::InstallUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        // Stable names, the same as the JSON ones (a test checks).
        match self {
            Action::Monitor => "monitor",
            Action::ViewPatient => "view_patient",
            Action::Admit => "admit",
            Action::Discharge => "discharge",
            Action::ScanDevices => "scan_devices",
            Action::PairDevice => "pair_device",
            Action::AssignDevice => "assign_device",
            Action::RemoveDevice => "remove_device",
            Action::SetDeviceClock => "set_device_clock",
            Action::Acknowledge => "acknowledge",
            Action::PauseAudio => "pause_audio",
            Action::EnterNews2 => "enter_news2",
            Action::SetLimit => "set_limit",
            Action::LinkPatient => "link_patient",
            Action::Trends => "trends",
            Action::AlarmLog => "alarm_log",
            Action::Export => "export",
            Action::FhirQueue => "fhir_queue",
            Action::ManageUsers => "manage_users",
            Action::SiteConfig => "site_config",
            Action::ManageKeys => "manage_keys",
            Action::CheckUpdates => "check_updates",
            Action::InstallUpdate => "install_update",
        }
    }
}

/// The permission matrix.
///
/// | role | may |
/// |---|---|
/// | viewer | the monitor with patient names (read-only) |
/// | nurse | viewer + admit/discharge, devices (scan, pair, assign, remove, set clock), acknowledge/pause, NEWS2 entries, a patient's limits, FHIR patient link |
/// | clinician | nurse + trends, alarm log, reports/exports, FHIR upload queue |
/// | admin | the monitor without PHI, users, site configuration, devices, keys, FHIR upload queue, installing updates |
///
/// Any signed-in user may check for updates (it asks the site's server, changes nothing).
pub fn allows(role: Role, action: Action) -> bool {
    use Action as A;
    if action == A::CheckUpdates {
        return true;
    }
    let nurse = matches!(
        action,
        A::Monitor
            | A::ViewPatient
            | A::Admit
            | A::Discharge
            | A::ScanDevices
            | A::PairDevice
            | A::AssignDevice
            | A::RemoveDevice
            | A::SetDeviceClock
            | A::Acknowledge
            | A::PauseAudio
            | A::EnterNews2
            | A::SetLimit
            | A::LinkPatient
    );
    match role {
        Role::Viewer => matches!(action, A::Monitor | A::ViewPatient),
        Role::Nurse => nurse,
        Role::Clinician => nurse || matches!(action, A::Trends | A::AlarmLog | A::Export | A::FhirQueue),
        Role::Admin => matches!(
            action,
            A::Monitor
                | A::ScanDevices
                | A::PairDevice
                | A::AssignDevice
                | A::RemoveDevice
                | A::SetDeviceClock
                | A::FhirQueue
                | A::ManageUsers
                | A::SiteConfig
                | A::ManageKeys
                | A::InstallUpdate
        ),
    }
}

/// What a role may do, in [`Action::ALL`]'s order.
pub fn permissions(role: Role) -> Vec<Action> {
    Action::ALL.into_iter().filter(|a| allows(role, *a)).collect()
}

/// Who does something: a signed-in user (name and role; on the CLI too, see
/// [`crate::cli_user`]), or the operating-system user (`os:<name>`, no role) of a
/// CLI command refused for want of a Vigil user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Option<Role>,
    /// Acting under break-glass emergency access (flagged in the audit trail).
    pub break_glass: bool,
}

impl Actor {
    /// No one signed in at the workstation (monitoring, refused attempts).
    pub fn signed_out() -> Actor {
        Actor {
            name: "(signed out)".into(),
            role: None,
            break_glass: false,
        }
    }

    /// The operating-system user running the CLI: `os:<name>`.
    pub fn os() -> Actor {
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Actor {
            name: format!("os:{name}"),
            role: None,
            break_glass: false,
        }
    }
}

/// Logs an action (who, what, which admission id — never a patient's name,
/// MRN, date of birth or values); [`Auth::record_action`] also writes it to
/// the signed audit trail.
fn log_action(actor: &Actor, action: &str, admission: Option<&str>, outcome: Outcome) {
    let admission = admission.unwrap_or("-");
    match outcome {
        Outcome::Success if actor.break_glass => {
            tracing::warn!(actor = %actor.name, action, admission, break_glass = true, "action under emergency access")
        }
        Outcome::Success => tracing::info!(actor = %actor.name, action, admission, "action"),
        Outcome::Refused => tracing::warn!(actor = %actor.name, action, admission, "action refused"),
        Outcome::Failed => tracing::warn!(actor = %actor.name, action, admission, "action failed"),
    }
}

/// The signed-in user as the screen sees it: who, which role, what they may do.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SessionView {
    pub user: String,
    pub role: Role,
    pub may: Vec<Action>,
    /// Seconds of break-glass emergency access left (null: none); `may` includes it.
    pub break_glass_s: Option<u64>,
    /// Signed in with the password: a shift PIN may be set for the next sign-ins.
    pub can_set_pin: bool,
}

/// A remote connection's own session (a central station on the live feed): checked by
/// [`Auth::sign_in_remote`], held by that connection only, never the workstation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSession {
    user: String,
    role: Role,
    origin: &'static str,
}

impl RemoteSession {
    /// The actor recorded for what this session does: "<user> (<origin>)".
    pub fn actor(&self) -> Actor {
        Actor {
            name: format!("{} ({})", self.user, self.origin),
            role: Some(self.role),
            break_glass: false,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Where it acts from ("central").
    pub fn origin(&self) -> &'static str {
        self.origin
    }

    /// Whether this session's role allows `action`.
    pub fn may(&self, action: Action) -> bool {
        action == Action::Monitor || allows(self.role, action)
    }

    /// The session as a client sees it (no PIN, no break-glass remotely).
    pub fn view(&self) -> SessionView {
        SessionView {
            user: self.user.clone(),
            role: self.role,
            may: permissions(self.role),
            break_glass_s: None,
            can_set_pin: false,
        }
    }
}

/// How long a shift PIN works after it was set (a full sign-in with the password before).
pub const PIN_SHIFT: Duration = Duration::from_secs(12 * 3600);
/// Wrong PINs after which the PIN is gone (the password is needed again).
pub const PIN_TRIES: u32 = 3;

/// A shift PIN: 4 to 8 digits.
pub fn is_pin(s: &str) -> bool {
    (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// How long break-glass emergency access lasts.
pub const BREAK_GLASS: Duration = Duration::from_secs(15 * 60);
/// Shortest and longest reason for break-glass access, in characters.
pub const REASON_MIN: usize = 10;
pub const REASON_MAX: usize = 500;

/// What break-glass adds: the clinical actions (a nurse's and a clinician's).
pub fn allows_in_emergency(action: Action) -> bool {
    allows(Role::Clinician, action)
}

/// A user as `vigil user list` shows it (no hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first: this action needs a signed-in user")]
    NotSignedIn,
    /// A CLI store command run without `--user`.
    #[error("this command needs a Vigil user: --user <name> (or VIGIL_USER), password from VIGIL_USER_PASSWORD or the prompt")]
    CliNoUser,
    /// A CLI store command on a store with no user yet.
    #[error("this store has no Vigil user yet: the installer creates the first admin with `vigil user add <name> --role admin`")]
    NoUsers,
    /// The installer's first user (no `--user` needed) must be an admin.
    #[error("the first user must be an admin: `vigil user add <name> --role admin`")]
    FirstUserNotAdmin,
    #[error("a {role} may not {}", .action.as_str().replace('_', " "))]
    Forbidden { role: Role, action: Action },
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many wrong passwords for this user: try again in {0} s")]
    RateLimited(u64),
    #[error("the password needs at least {PASSWORD_MIN} characters (at most {PASSWORD_MAX})")]
    WeakPassword,
    #[error("a user name has 1 to {NAME_MAX} letters, digits, '.', '_' or '-'")]
    BadName,
    #[error("unknown role '{0}': expected nurse, clinician, admin or viewer")]
    BadRole(String),
    #[error("user '{0}' already exists")]
    UserExists(String),
    #[error("no user '{0}'")]
    NoSuchUser(String),
    #[error("user record '{0}' failed authentication: it was altered")]
    TamperedUser(String),
    #[error(
        "give a reason for emergency access ({REASON_MIN} to {REASON_MAX} characters, no control characters)"
    )]
    BadReason,
    #[error("this role already has clinical access: no emergency access needed")]
    NoBreakGlassNeeded,
    #[error("a shift PIN has 4 to 8 digits, and is set after signing in with the password")]
    BadPin,
    /// A store started after the old one was moved aside as damaged has no users: offering
    /// "create the first administrator" there would hand admin rights to whoever is at the
    /// workstation. The accounts come back through the installer's tools.
    #[error(
        "the sign-in accounts were in the damaged store that was moved aside: an installer restores them \
         (vigil store salvage <file>) or creates an administrator (vigil user add <name> --role admin)"
    )]
    UsersInDamagedStore,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NotSignedIn => "not_signed_in",
            AuthError::CliNoUser => "cli_no_user",
            AuthError::NoUsers => "no_users",
            AuthError::FirstUserNotAdmin => "first_user_not_admin",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::BadCredentials => "bad_credentials",
            AuthError::Disabled => "disabled",
            AuthError::RateLimited(_) => "rate_limited",
            AuthError::WeakPassword => "weak_password",
            AuthError::BadName => "bad_name",
            AuthError::BadRole(_) => "bad_role",
            AuthError::UserExists(_) => "user_exists",
            AuthError::NoSuchUser(_) => "no_such_user",
            AuthError::TamperedUser(_) => "tampered_user",
            AuthError::BadReason => "bad_reason",
            AuthError::NoBreakGlassNeeded => "no_break_glass_needed",
            AuthError::BadPin => "bad_pin",
            AuthError::UsersInDamagedStore => "users_in_damaged_store",
        }
    }
}

/// A user name: 1–64 of `[A-Za-z0-9._-]` (no PHI, safe in logs).
pub fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = (1..=NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadName)
    }
}

pub fn check_new_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

/// Adds a user to the store (hashes the password with Argon2id).
pub async fn add_user(store: &Store, name: &str, role: Role, password: &str) -> Result<(), CoreError> {
    check_name(name)?;
    check_new_password(password)?;
    let record = UserRecord {
        name: name.to_string(),
        role: role.as_str().to_string(),
        password_hash: vigil_store::hash_password(password),
        disabled: false,
        created: chrono::Utc::now().timestamp_micros(),
    };
    if store.add_user(&record).await? {
        Ok(())
    } else {
        Err(AuthError::UserExists(name.to_string()).into())
    }
}

/// Disables (or re-enables) a user; a disabled user cannot sign in.
pub async fn set_disabled(store: &Store, name: &str, disabled: bool) -> Result<(), CoreError> {
    let mut u = load(store, name)
        .await?
        .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
    u.disabled = disabled;
    store.update_user(&u).await?;
    Ok(())
}

/// Every user (an altered record is an error naming it).
pub async fn list_users(store: &Store) -> Result<Vec<UserView>, CoreError> {
    let mut out = Vec::new();
    for u in store.users().await? {
        let u = u.map_err(|_| AuthError::TamperedUser("?".into()))?;
        out.push(view(&u)?);
    }
    Ok(out)
}

fn view(u: &UserRecord) -> Result<UserView, AuthError> {
    Ok(UserView {
        name: u.name.clone(),
        role: u
            .role
            .parse()
            .map_err(|_| AuthError::TamperedUser(u.name.clone()))?,
        disabled: u.disabled,
        created: u.created_at(),
    })
}

async fn load(store: &Store, name: &str) -> Result<Option<UserRecord>, CoreError> {
    match store.user(name).await {
        Ok(u) => Ok(u),
        Err(StoreError::TamperedRecord { .. }) => Err(AuthError::TamperedUser(name.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// The delay a run of `failures` wrong passwords for one name imposes
/// before the next attempt: 1 s, 2 s, 4 s … up to [`MAX_DELAY`].
pub fn delay_after(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (failures - 1).min(16)).min(MAX_DELAY)
}

#[derive(Debug, Clone)]
struct Session {
    name: String,
    role: Role,
    /// The last input or action (the idle lock counts from here).
    last_active: Instant,
    /// Break-glass emergency access: until when, and why (kept for the audit trail; never logged: it may name a patient).
    glass: Option<(Instant, String)>,
    /// Signed in with the password (not a shift PIN): only then may a PIN be set.
    full: bool,
}

impl Session {
    fn glass_active(&self, now: Instant) -> bool {
        self.glass.as_ref().is_some_and(|(until, _)| now < *until)
    }

    fn actor(&self, break_glass: bool) -> Actor {
        Actor {
            name: self.name.clone(),
            role: Some(self.role),
            break_glass,
        }
    }

    /// Whether this session may do `action` at `now`; the second: only by break-glass.
    fn allows(&self, action: Action, now: Instant) -> (bool, bool) {
        if allows(self.role, action) {
            (true, false)
        } else if self.glass_active(now) && allows_in_emergency(action) {
            (true, true)
        } else {
            (false, false)
        }
    }

    fn view(&self, now: Instant) -> SessionView {
        let glass = self.glass_active(now);
        SessionView {
            user: self.name.clone(),
            role: self.role,
            may: Action::ALL
                .into_iter()
                .filter(|a| self.allows(*a, now).0)
                .collect(),
            break_glass_s: self
                .glass
                .as_ref()
                .filter(|_| glass)
                .map(|(until, _)| until.saturating_duration_since(now).as_secs().max(1)),
            can_set_pin: self.full,
        }
    }
}

/// A shift PIN as held in memory (never stored): its Argon2id hash, until when, wrong tries.
struct Pin {
    hash: String,
    until: Instant,
    wrong: u32,
}

#[derive(Default)]
struct Throttle {
    /// Per name: consecutive failures and when the next attempt may come.
    names: HashMap<String, (u32, Instant)>,
    failed_total: u64,
}

/// The workstation's session and sign-in throttle.
#[derive(Default)]
pub struct Auth {
    session: Mutex<Option<Session>>,
    throttle: Mutex<Throttle>,
    /// The idle lock (site `session.idle_lock_s`); None: never.
    idle: Mutex<Option<Duration>>,
    /// Shift PINs by user name (in memory only: a restart needs the password).
    pins: Mutex<HashMap<String, Pin>>,
    /// Records for the signed audit trail (written by [`crate::audit::run`]).
    audit: Arc<AuditQueue>,
    /// Where the actions come from when not the screen (`cli os:<name>`): put before
    /// each record's detail, so a CLI record names the OS user beside the Vigil user.
    origin: Option<String>,
}

impl Auth {
    /// The audit records this workstation's actions queue.
    pub fn audit_queue(&self) -> Arc<AuditQueue> {
        self.audit.clone()
    }

    /// The seam of the audit trail: every action, with its actor and
    /// (opaque) admission, passes here: logged, and queued for the signed
    /// trail (never waiting on the store).
    pub fn record_action(
        &self,
        actor: &Actor,
        action: &str,
        admission: Option<&str>,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        log_action(actor, action, admission, outcome);
        let detail = match (&self.origin, detail) {
            (Some(o), Some(d)) => Some(format!("{o}: {d}")),
            (Some(o), None) => Some(o.clone()),
            (None, d) => d,
        };
        self.audit
            .push(crate::audit::record(actor, action, admission, outcome, detail));
    }

    /// An [`Auth`] whose records go to `queue` (the one the watchdog watches:
    /// [`crate::pipeline::Stats::audit`]).
    pub fn with_queue(queue: Arc<AuditQueue>) -> Auth {
        Auth {
            audit: queue,
            ..Auth::default()
        }
    }

    /// An [`Auth`] for one CLI command (see [`crate::cli_user`]): its records' detail
    /// starts with `origin` (`cli os:<name>`).
    pub fn with_origin(origin: String) -> Auth {
        Auth {
            origin: Some(origin),
            ..Auth::default()
        }
    }

    /// Sets the idle lock: a session without input or action for this long ends.
    pub fn set_idle_lock(&self, idle: Option<Duration>) {
        *self.idle.lock().unwrap() = idle;
    }

    /// The session at `now`, ended first if it has been idle too long
    /// (names, MRNs and DOBs leave the screen; monitoring goes on).
    fn current(&self, now: Instant) -> Option<Session> {
        let idle = *self.idle.lock().unwrap();
        let mut slot = self.session.lock().unwrap();
        if let (Some(s), Some(idle)) = (slot.as_ref(), idle) {
            if now.saturating_duration_since(s.last_active) > idle {
                tracing::info!(user = %s.name, idle_s = idle.as_secs(), "idle lock: signed out");
                self.audit.push(crate::audit::record(
                    &s.actor(false),
                    "sign_out",
                    None,
                    Outcome::Success,
                    Some("idle lock".into()),
                ));
                *slot = None;
            }
        }
        slot.clone()
    }

    /// Sets a shift PIN for the signed-in user (who signed in with the
    /// password): for [`PIN_SHIFT`] they may sign in on this workstation with
    /// name and PIN instead of the password. Kept in memory only, hashed.
    pub async fn set_pin(&self, pin: &str, now: Instant) -> Result<(), AuthError> {
        let s = self.current(now).ok_or(AuthError::NotSignedIn)?;
        if !is_pin(pin) || !s.full {
            return Err(AuthError::BadPin);
        }
        let pin = pin.to_string();
        let hash = tokio::task::spawn_blocking(move || vigil_store::hash_password(&pin))
            .await
            .map_err(|_| AuthError::BadPin)?;
        self.pins.lock().unwrap().insert(
            s.name.clone(),
            Pin {
                hash,
                until: now + PIN_SHIFT,
                wrong: 0,
            },
        );
        tracing::info!(user = %s.name, "shift PIN set");
        Ok(())
    }

    /// Checks a shift PIN; a wrong one counts, and [`PIN_TRIES`] of them remove it.
    async fn check_pin(&self, name: &str, pin: &str, now: Instant) -> bool {
        let hash = {
            let mut pins = self.pins.lock().unwrap();
            pins.retain(|_, p| p.until > now);
            pins.get(name).map(|p| p.hash.clone())
        };
        let Some(hash) = hash else {
            verify_password_blocking(pin.to_string(), dummy_hash().to_string()).await;
            return false;
        };
        let ok = verify_password_blocking(pin.to_string(), hash).await;
        let mut pins = self.pins.lock().unwrap();
        if !ok {
            if let Some(p) = pins.get_mut(name) {
                p.wrong += 1;
                if p.wrong >= PIN_TRIES {
                    pins.remove(name);
                    tracing::warn!(user = %name, "shift PIN removed after {PIN_TRIES} wrong tries: the password is needed");
                }
            }
        }
        ok
    }

    /// Input at the workstation: the signed-in user is still there.
    pub fn touch(&self, now: Instant) {
        if self.current(now).is_some() {
            if let Some(s) = self.session.lock().unwrap().as_mut() {
                s.last_active = s.last_active.max(now);
            }
        }
    }

    /// Checks a name and password against the store and, when they match an
    /// enabled user, makes them the signed-in user (replacing anyone else).
    /// Wrong attempts for a name are rate-limited (see [`delay_after`]) and
    /// counted; an attempt during the wait is refused without checking.
    pub async fn sign_in(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        now: Instant,
    ) -> Result<SessionView, CoreError> {
        let (user, role, pin_try) = self.check_credentials(store, name, password, now, true, None).await?;
        *self.session.lock().unwrap() = Some(Session {
            name: user.clone(),
            role,
            last_active: now,
            glass: None,
            full: !pin_try,
        });
        self.record_action(
            &Actor {
                name: user,
                role: Some(role),
                break_glass: false,
            },
            "sign_in",
            None,
            Outcome::Success,
            pin_try.then(|| "shift PIN".to_string()),
        );
        Ok(self.session_at(now).expect("just signed in"))
    }

    /// Checks a user's name and password for a remote connection (a central station on
    /// the live feed): the same users and password rules as the workstation's sign-in
    /// and the same wrong-attempt delays, counted apart from the workstation's (per
    /// origin), and the workstation's session is left as it is. A shift
    /// PIN is not accepted (it was set at this workstation, for this workstation).
    /// The session's actor is named "<user> (<origin>)", e.g. "nurse.kim (central)".
    pub async fn sign_in_remote(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        origin: &'static str,
        now: Instant,
    ) -> Result<RemoteSession, CoreError> {
        let (user, role, _) = self.check_credentials(store, name, password, now, false, Some(origin)).await?;
        let s = RemoteSession { user, role, origin };
        self.record_action(&s.actor(), "sign_in", None, Outcome::Success, Some(origin.to_string()));
        Ok(s)
    }

    /// The session as the store has it now, checked before each remote command: a
    /// connection can stay open for a whole shift, and an account disabled or removed
    /// since its sign-in must lose its rights at once, a changed role take effect at once.
    pub async fn refresh_remote(&self, store: &Store, s: &RemoteSession) -> Result<RemoteSession, CoreError> {
        let refused = |why: &str| {
            self.record_action(&s.actor(), "command", None, Outcome::Refused, Some(format!("{}: {why}", s.origin)));
        };
        let Some(user) = load(store, &s.user).await? else {
            refused("account removed");
            return Err(AuthError::NoSuchUser(s.user.clone()).into());
        };
        if user.disabled {
            refused("account disabled");
            return Err(AuthError::Disabled.into());
        }
        let role: Role = user.role.parse().map_err(|_| AuthError::TamperedUser(user.name.clone()))?;
        Ok(RemoteSession {
            user: user.name,
            role,
            origin: s.origin,
        })
    }

    /// A remote session ends (signed out, or its connection closed).
    pub fn sign_out_remote(&self, s: &RemoteSession) {
        self.record_action(&s.actor(), "sign_out", None, Outcome::Success, Some(s.origin.to_string()));
    }

    /// The remote session's actor for `action`, or why not, checked against the same
    /// permission matrix as the screen's; recorded like [`Auth::authorize_then_record`]
    /// (a refusal here, an allowed action by the caller with its outcome).
    pub fn authorize_remote(
        &self,
        s: &RemoteSession,
        action: Action,
        admission: Option<&str>,
    ) -> Result<Actor, AuthError> {
        let actor = s.actor();
        if allows(s.role, action) {
            Ok(actor)
        } else {
            self.record_action(&actor, action.as_str(), admission, Outcome::Refused, Some(s.origin.to_string()));
            Err(AuthError::Forbidden { role: s.role, action })
        }
    }

    /// Name and password (or, when `allow_pin`, a shift PIN) checked against the store,
    /// with the per-name throttle; on success the user's name, role and whether a PIN
    /// was used. Failures are recorded (with `origin`, when remote).
    async fn check_credentials(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        now: Instant,
        allow_pin: bool,
        origin: Option<&'static str>,
    ) -> Result<(String, Role, bool), CoreError> {
        let why = |d: &str| Some(match origin {
            Some(o) => format!("{o}: {d}"),
            None => d.to_string(),
        });
        // One throttle per name and origin: wrong passwords sent from a central station
        // slow that name's sign-ins from central, never the nurse's own at this
        // workstation (a feed token holder must not be able to lock a bedside out).
        let key: String = origin
            .unwrap_or("")
            .chars()
            .chain(std::iter::once('\0'))
            .chain(name.chars().take(NAME_MAX + 1))
            .collect();
        if let Some((_, next)) = self.throttle.lock().unwrap().names.get(&key) {
            if now < *next {
                let wait = (*next - now).as_secs_f64().ceil() as u64;
                tracing::warn!("sign-in refused: rate-limited");
                self.record_action(&attempted(name), "sign_in", None, Outcome::Refused, why("rate-limited"));
                return Err(AuthError::RateLimited(wait.max(1)).into());
            }
        }
        let user = if check_name(name).is_ok() && password.len() <= PASSWORD_MAX * 4 {
            load(store, name).await?
        } else {
            None
        };
        // A shift PIN (4-8 digits) can never be a password (at least 12 characters).
        let pin_try = is_pin(password);
        let ok = match &user {
            Some(u) if pin_try && allow_pin => self.check_pin(&u.name, password, now).await,
            Some(u) if !pin_try => verify_password_blocking(password.to_string(), u.password_hash.clone()).await,
            _ => {
                // The same work as a real check: no timing tells which names exist.
                verify_password_blocking(password.to_string(), dummy_hash().to_string()).await;
                false
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            let mut t = self.throttle.lock().unwrap();
            t.failed_total += 1;
            if t.names.len() > 10_000 {
                t.names.retain(|_, (_, next)| *next > now);
            }
            let e = t.names.entry(key).or_insert((0, now));
            e.0 += 1;
            e.1 = now + delay_after(e.0);
            tracing::warn!(
                failed_total = t.failed_total,
                "sign-in failed: wrong user name or password"
            );
            drop(t);
            self.record_action(&attempted(name), "sign_in", None, Outcome::Failed, why("wrong user name or password"));
            return Err(AuthError::BadCredentials.into());
        };
        self.throttle.lock().unwrap().names.remove(&key);
        if user.disabled {
            self.record_action(&attempted(&user.name), "sign_in", None, Outcome::Refused, why("account disabled"));
            return Err(AuthError::Disabled.into());
        }
        let role: Role = user
            .role
            .parse()
            .map_err(|_| AuthError::TamperedUser(user.name.clone()))?;
        Ok((user.name, role, pin_try))
    }

    pub fn sign_out(&self) {
        let ended = self.session.lock().unwrap().take();
        if let Some(s) = ended {
            self.record_action(&s.actor(false), "sign_out", None, Outcome::Success, None);
        }
    }

    pub fn session(&self) -> Option<SessionView> {
        self.session_at(Instant::now())
    }

    pub fn session_at(&self, now: Instant) -> Option<SessionView> {
        self.current(now).map(|s| s.view(now))
    }

    /// Break-glass: the signed-in user whose role lacks clinical access takes
    /// it for [`BREAK_GLASS`], giving a reason. Shown on screen (the session
    /// says how long is left) and flagged on every action taken under it.
    pub fn break_glass(&self, reason: &str, now: Instant) -> Result<SessionView, AuthError> {
        let reason = reason.trim();
        let n = reason.chars().count();
        if !(REASON_MIN..=REASON_MAX).contains(&n) || reason.chars().any(char::is_control) {
            return Err(AuthError::BadReason);
        }
        if self.current(now).is_none() {
            return Err(AuthError::NotSignedIn);
        }
        let mut slot = self.session.lock().unwrap();
        let s = slot.as_mut().ok_or(AuthError::NotSignedIn)?;
        if Action::ALL
            .into_iter()
            .all(|a| !allows_in_emergency(a) || allows(s.role, a))
        {
            return Err(AuthError::NoBreakGlassNeeded);
        }
        s.glass = Some((now + BREAK_GLASS, reason.to_string()));
        s.last_active = s.last_active.max(now);
        let (actor, view) = (s.actor(true), s.view(now));
        drop(slot);
        // The reason is free text (it may name a patient): kept in memory
        // for the session, not in the trail that is exported.
        self.record_action(
            &actor,
            "break_glass",
            None,
            Outcome::Success,
            Some(format!("{} minutes", BREAK_GLASS.as_secs() / 60)),
        );
        Ok(view)
    }

    /// Whether the signed-in user (if any) may do `action` (no record).
    pub fn may(&self, action: Action) -> bool {
        if action == Action::Monitor {
            return true;
        }
        let now = Instant::now();
        self.current(now).is_some_and(|s| s.allows(action, now).0)
    }

    /// The signed-in actor for `action`, or why not. Passes every attempt,
    /// allowed or refused, through [`Auth::record_action`] (monitoring only when refused).
    pub fn authorize(&self, action: Action, admission: Option<&str>) -> Result<Actor, AuthError> {
        self.authorize_at(action, admission, Instant::now())
    }

    /// [`Auth::authorize`] at `now`; an allowed action counts as activity.
    pub fn authorize_at(
        &self,
        action: Action,
        admission: Option<&str>,
        now: Instant,
    ) -> Result<Actor, AuthError> {
        self.check_at(action, admission, now, true)
    }

    /// Like [`Auth::authorize`], but an allowed action is not recorded yet:
    /// the caller records it with its outcome ([`Auth::record_action`]) once
    /// it ran. A refusal is recorded here.
    pub fn authorize_then_record(&self, action: Action, admission: Option<&str>) -> Result<Actor, AuthError> {
        self.check_at(action, admission, Instant::now(), false)
    }

    fn check_at(
        &self,
        action: Action,
        admission: Option<&str>,
        now: Instant,
        record_allowed: bool,
    ) -> Result<Actor, AuthError> {
        let session = self.current(now);
        let Some(s) = session else {
            if action == Action::Monitor {
                return Ok(Actor::signed_out());
            }
            self.record_action(&Actor::signed_out(), action.as_str(), admission, Outcome::Refused, None);
            return Err(AuthError::NotSignedIn);
        };
        let (ok, glass) = s.allows(action, now);
        let actor = s.actor(glass);
        // Monitoring (numerics, alarms, upload counts) is not PHI: polled
        // every few seconds, it would drown the trail.
        if !ok {
            self.record_action(&actor, action.as_str(), admission, Outcome::Refused, None);
        } else if action != Action::Monitor && record_allowed {
            self.record_action(&actor, action.as_str(), admission, Outcome::Success, None);
        }
        if ok {
            if action != Action::Monitor {
                self.touch(now);
            }
            Ok(actor)
        } else {
            Err(AuthError::Forbidden { role: s.role, action })
        }
    }

    /// Wrong sign-ins since start (all names).
    pub fn failed_sign_ins(&self) -> u64 {
        self.throttle.lock().unwrap().failed_total
    }
}

/// The actor of a sign-in attempt: the name typed, when it is a valid user
/// name (anything else might be a password typed in the wrong field).
pub(crate) fn attempted(name: &str) -> Actor {
    Actor {
        name: if check_name(name).is_ok() {
            name.to_string()
        } else {
            "(invalid name)".into()
        },
        role: None,
        break_glass: false,
    }
}

/// Argon2id at 64 MiB takes a moment: off the async threads.
async fn verify_password_blocking(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || vigil_store::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| vigil_store::hash_password("not a password of anyone's"))
}
