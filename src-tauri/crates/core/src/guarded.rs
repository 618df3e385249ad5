//! What the signed-in user asks for: every action of the screen, checked
//! against the session and the permission matrix ([`crate::auth`]) before
//! it runs, with the actor taken from the session (never from the caller).
//! The Tauri commands call only these.

use crate::auth::{Action, Actor, RemoteSession, SessionView};
use crate::view::{AdmissionView, WardSnapshot, WardUpdate};
use crate::{alarming, AdmitRequest, CoreError, PatientMatch, ScanResult, SyncView, Vigil};
use std::collections::HashSet;
use std::time::Instant;

/// The workstation's session for the screen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SessionState {
    /// The signed-in user; null when signed out.
    pub signed_in: Option<SessionView>,
    /// False at first start: the screen offers to create the first admin.
    pub has_users: bool,
    /// No user, because the store was moved aside as damaged and a new one started: no
    /// first-admin offer (anyone at the workstation could take it); an installer restores
    /// the accounts ([`crate::auth::AuthError::UsersInDamagedStore`]).
    pub users_lost: bool,
}

impl Vigil {
    pub async fn session_state(&self) -> Result<SessionState, CoreError> {
        let has_users = self.has_users().await?;
        Ok(SessionState {
            signed_in: self.session(),
            has_users,
            users_lost: !has_users && self.info.store_recovered_from.is_some(),
        })
    }

    /// Signs a user in on this workstation (see [`crate::auth::Auth::sign_in`]).
    pub async fn sign_in(&self, name: &str, password: &str) -> Result<SessionView, CoreError> {
        self.auth
            .sign_in(&self.store, name, password, Instant::now())
            .await
    }

    pub fn sign_out(&self) {
        self.auth.sign_out()
    }

    /// How writing the signed audit trail goes (failing, held, lost).
    pub fn audit_status(&self) -> crate::audit::AuditStatus {
        self.auth.audit_queue().status()
    }

    /// The signed-in user, their role and what they may do; None when signed out.
    pub fn session(&self) -> Option<SessionView> {
        self.auth.session()
    }

    /// Sets the idle lock (site `session.idle_lock_s`; None: never).
    pub fn set_idle_lock(&self, idle: Option<std::time::Duration>) {
        self.auth.set_idle_lock(idle)
    }

    /// Input at the workstation (the screen reports it): the idle lock starts again.
    pub fn touch_session(&self) {
        self.auth.touch(Instant::now())
    }

    /// Break-glass emergency access for the signed-in user, with a reason (see [`crate::auth::Auth::break_glass`]).
    pub fn break_glass(&self, reason: &str) -> Result<SessionView, CoreError> {
        Ok(self.auth.break_glass(reason, Instant::now())?)
    }

    /// A shift PIN for the signed-in user (see [`crate::auth::Auth::set_pin`]).
    pub async fn set_pin(&self, pin: &str) -> Result<(), CoreError> {
        Ok(self.auth.set_pin(pin, Instant::now()).await?)
    }

    /// Wrong sign-ins since start.
    pub fn failed_sign_ins(&self) -> u64 {
        self.auth.failed_sign_ins()
    }

    /// Whether any user exists (the first start offers to create an admin when not).
    pub async fn has_users(&self) -> Result<bool, CoreError> {
        Ok(self.store.user_count().await? > 0)
    }

    /// The first admin, only while there is no user at all, and never in a store that
    /// replaced a damaged one (its users were in the old file).
    pub async fn create_first_admin(&self, name: &str, password: &str) -> Result<SessionView, CoreError> {
        let has_users = self.has_users().await?;
        if !has_users && self.info.store_recovered_from.is_some() {
            self.auth.record_action(
                &Actor::signed_out(),
                Action::ManageUsers.as_str(),
                None,
                vigil_store::Outcome::Refused,
                Some("first admin refused: store replaced after damage".into()),
            );
            return Err(crate::auth::AuthError::UsersInDamagedStore.into());
        }
        if has_users {
            return Err(crate::auth::AuthError::Forbidden {
                role: crate::auth::Role::Admin,
                action: Action::ManageUsers,
            }
            .into());
        }
        crate::auth::add_user(&self.store, name, crate::auth::Role::Admin, password).await?;
        self.auth.record_action(
            &Actor {
                name: name.to_string(),
                role: Some(crate::auth::Role::Admin),
                break_glass: false,
            },
            Action::ManageUsers.as_str(),
            None,
            vigil_store::Outcome::Success,
            Some(format!("first admin {name} created")),
        );
        self.sign_in(name, password).await
    }

    /// The current admission id at `bed` (opaque; for the action record).
    pub(crate) fn admission_at(&self, bed: &str) -> Option<String> {
        self.ctx
            .ward
            .lock()
            .unwrap()
            .beds()
            .into_iter()
            .find(|b| b.bed == bed)
            .and_then(|b| b.admission.map(|a| a.id))
    }

    /// The signed-in actor for `action` at `bed`, or the refusal (recorded either way).
    pub fn authorize(&self, action: Action, bed: Option<&str>) -> Result<Actor, CoreError> {
        let admission = bed.and_then(|b| self.admission_at(b));
        Ok(self.auth.authorize(action, admission.as_deref())?)
    }

    /// Checks `action` at `bed` (a refusal is recorded); the caller runs it
    /// and hands its result to [`Vigil::recorded`].
    fn begin(&self, action: Action, bed: Option<&str>) -> Result<Allowed, CoreError> {
        let admission = bed.and_then(|b| self.admission_at(b));
        let actor = self.auth.authorize_then_record(action, admission.as_deref())?;
        Ok(Allowed {
            actor,
            action,
            admission,
        })
    }

    /// Records an allowed action with how it ended (an error is `failed`), and passes its result on.
    fn recorded<T>(&self, a: Allowed, result: Result<T, CoreError>) -> Result<T, CoreError> {
        let outcome = if result.is_ok() {
            vigil_store::Outcome::Success
        } else {
            vigil_store::Outcome::Failed
        };
        self.auth
            .record_action(&a.actor, a.action.as_str(), a.admission.as_deref(), outcome, None);
        result
    }

    /// Whether the signed-in user (if any) may see patient names, MRNs, DOBs.
    pub fn may_view_patients(&self) -> bool {
        self.auth.may(Action::ViewPatient)
    }

    /// The ward for the screen: patient identity blanked unless the
    /// signed-in user may see it (numerics, alarms and devices always).
    pub fn snapshot_for_session(&self) -> WardSnapshot {
        let mut s = self.snapshot();
        if self.may_view_patients() {
            // Names on screen are a PHI access: one record per admission shown.
            for a in s.beds.iter().filter_map(|b| b.admission.as_ref()) {
                let _ = self.auth.authorize(Action::ViewPatient, Some(&a.id));
            }
        } else {
            for b in &mut s.beds {
                if let Some(a) = b.admission.as_mut() {
                    redact(a);
                }
            }
        }
        s
    }

    /// A live update for the screen, redacted like [`Vigil::snapshot_for_session`].
    pub fn update_for_session(&self, mut u: WardUpdate) -> WardUpdate {
        if !self.may_view_patients() {
            for b in u.beds.iter_mut().flatten() {
                if let Some(a) = b.admission.as_mut() {
                    redact(a);
                }
            }
        }
        u
    }

    pub async fn user_admit(&self, request: AdmitRequest) -> Result<AdmissionView, CoreError> {
        let mut a = self.begin(Action::Admit, Some(&request.bed))?;
        let r = self.admit(request).await;
        // The new admission is the one concerned.
        if let Ok(v) = &r {
            a.admission = Some(v.id.clone());
        }
        self.recorded(a, r)
    }

    pub async fn user_discharge(&self, bed: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::Discharge, Some(bed))?;
        let r = self.discharge(bed).await;
        self.recorded(a, r)
    }

    /// Signs a user in for a remote connection (a central station on the live feed):
    /// its own session, the workstation's untouched (see [`crate::auth::Auth::sign_in_remote`]).
    pub async fn remote_sign_in(
        &self,
        name: &str,
        password: &str,
        origin: &'static str,
    ) -> Result<RemoteSession, CoreError> {
        self.auth
            .sign_in_remote(&self.store, name, password, origin, Instant::now())
            .await
    }

    pub fn remote_sign_out(&self, s: &RemoteSession) {
        self.auth.sign_out_remote(s)
    }

    /// Checks `action` at `bed` for a remote session (a refusal is recorded).
    /// The account is read again first (disabled, removed or a new role since sign-in).
    async fn begin_remote(
        &self,
        s: &RemoteSession,
        action: Action,
        bed: Option<&str>,
    ) -> Result<Allowed, CoreError> {
        let now = self.auth.refresh_remote(&self.store, s).await?;
        let admission = bed.and_then(|b| self.admission_at(b));
        let actor = self.auth.authorize_remote(&now, action, admission.as_deref())?;
        Ok(Allowed {
            actor,
            action,
            admission,
        })
    }

    /// Audio pause from a remote session: the same [`Vigil::pause_audio`] as the screen,
    /// by "<user> (central)".
    pub async fn remote_pause_audio(&self, s: &RemoteSession, bed: &str) -> Result<(), CoreError> {
        let a = self.begin_remote(s, Action::PauseAudio, Some(bed)).await?;
        let r = self.pause_audio(bed, &a.actor.name).await;
        self.recorded(a, r)
    }

    /// Acknowledge from a remote session: the same [`Vigil::acknowledge`] as the screen,
    /// by "<user> (central)" (alarm log, audit trail and the bedside's alarm row).
    pub async fn remote_acknowledge(
        &self,
        s: &RemoteSession,
        bed: &str,
        alarms: &[u64],
    ) -> Result<usize, CoreError> {
        let a = self.begin_remote(s, Action::Acknowledge, Some(bed)).await?;
        let r = self.acknowledge(bed, alarms, &a.actor.name).await;
        self.recorded(a, r)
    }

    /// The ward for a remote connection, only the beds it chose: patient identity blanked
    /// unless its session may see it. Each admission shown to the session is recorded in
    /// the audit trail once (`shown` holds those already recorded; the caller empties it
    /// when the session changes), not once per snapshot: a slow client is sent snapshot
    /// after snapshot, and the trail must say who saw which patient, not how often.
    pub fn snapshot_for_remote(
        &self,
        s: Option<&RemoteSession>,
        beds: &crate::feed::BedFilter,
        shown: &mut HashSet<String>,
    ) -> WardSnapshot {
        let mut snap = beds.snapshot(self.snapshot());
        let ids = snap
            .beds
            .iter()
            .filter_map(|b| b.admission.as_ref())
            .map(|a| a.id.as_str());
        if !self.record_shown(s, ids, shown) {
            for b in &mut snap.beds {
                if let Some(a) = b.admission.as_mut() {
                    redact(a);
                }
            }
        }
        snap
    }

    /// A live update for a remote connection, redacted and recorded like
    /// [`Vigil::snapshot_for_remote`] (an admission first shown in an update, a new
    /// admit, is recorded then).
    pub fn update_for_remote(
        &self,
        s: Option<&RemoteSession>,
        mut u: WardUpdate,
        shown: &mut HashSet<String>,
    ) -> WardUpdate {
        let ids = u
            .beds
            .iter()
            .flatten()
            .filter_map(|b| b.admission.as_ref())
            .map(|a| a.id.as_str());
        if !self.record_shown(s, ids, shown) {
            for b in u.beds.iter_mut().flatten() {
                if let Some(a) = b.admission.as_mut() {
                    redact(a);
                }
            }
        }
        u
    }

    /// Whether `s` may see patient identity; if so, records a view of each admission in
    /// `ids` not yet in `shown`.
    fn record_shown<'a>(
        &self,
        s: Option<&RemoteSession>,
        ids: impl Iterator<Item = &'a str>,
        shown: &mut HashSet<String>,
    ) -> bool {
        let Some(s) = s.filter(|s| s.may(Action::ViewPatient)) else {
            return false;
        };
        for id in ids {
            if shown.contains(id) {
                continue;
            }
            if let Ok(actor) = self.auth.authorize_remote(s, Action::ViewPatient, Some(id)) {
                self.auth.record_action(
                    &actor,
                    Action::ViewPatient.as_str(),
                    Some(id),
                    vigil_store::Outcome::Success,
                    Some(s.origin().to_string()),
                );
                shown.insert(id.to_string());
            }
        }
        true
    }

    pub async fn user_pause_audio(&self, bed: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::PauseAudio, Some(bed))?;
        let r = self.pause_audio(bed, &a.actor.name).await;
        self.recorded(a, r)
    }

    pub async fn user_acknowledge(&self, bed: &str, alarms: &[u64]) -> Result<usize, CoreError> {
        let a = self.begin(Action::Acknowledge, Some(bed))?;
        let r = self.acknowledge(bed, alarms, &a.actor.name).await;
        self.recorded(a, r)
    }

    pub async fn user_set_limit(
        &self,
        bed: &str,
        parameter: &str,
        low: Option<f64>,
        high: Option<f64>,
    ) -> Result<(), CoreError> {
        let a = self.begin(Action::SetLimit, Some(bed))?;
        let r = self.set_limit(bed, parameter, low, high, &a.actor.name).await;
        self.recorded(a, r)
    }

    pub async fn user_enter_news2(&self, bed: &str, entry: alarming::News2Entry) -> Result<(), CoreError> {
        let a = self.begin(Action::EnterNews2, Some(bed))?;
        let r = self.enter_news2(bed, entry, &a.actor.name).await;
        self.recorded(a, r)
    }

    pub fn user_news2_history(&self, bed: &str) -> Result<Vec<vigil_alarms::News2>, CoreError> {
        self.authorize(Action::Trends, Some(bed))?;
        Ok(self.news2_history(bed))
    }

    /// A printable report of a bed over a range (clinicians: `Action::Export`,
    /// recorded with the admission). `tz` and `preset` come from the site.
    pub async fn user_report(
        &self,
        bed: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
        preset: vigil_alarms::SitePreset,
    ) -> Result<vigil_report::Report, CoreError> {
        let a = self.begin(Action::Export, Some(bed))?;
        let r = self.report_of(bed, from, to, tz, preset, &a.actor.name).await;
        self.recorded(a, r)
    }

    /// The report of a range inside one stay, current or past (the admissions
    /// screen): recorded with that admission, not with whoever is at the bed now.
    pub async fn user_admission_report(
        &self,
        admission: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
        preset: vigil_alarms::SitePreset,
    ) -> Result<vigil_report::Report, CoreError> {
        let actor = self.auth.authorize_then_record(Action::Export, Some(admission))?;
        let a = Allowed {
            actor,
            action: Action::Export,
            admission: Some(admission.to_string()),
        };
        let r = match self.within_stay(admission, from, to).await {
            Ok((bed, from, to)) => self.report_of(&bed, from, to, tz, preset, &a.actor.name).await,
            Err(e) => Err(e),
        };
        self.recorded(a, r)
    }

    async fn report_of(
        &self,
        bed: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
        preset: vigil_alarms::SitePreset,
        by: &str,
    ) -> Result<vigil_report::Report, CoreError> {
        let req = crate::report::Request {
            scope: crate::report::Scope::Bed {
                bed: bed.to_string(),
                from,
                to,
            },
            now: self.clock().now(),
            tz,
            ward: "Vigil patient monitoring".into(),
            generated_by: by.to_string(),
            preset,
        };
        crate::report::build(&self.store, &req)
            .await
            .map(|b| b.report)
            .map_err(CoreError::from)
    }

    /// A bed's trends, or a stay's by admission id (clinicians; under break-glass too).
    pub async fn user_trend(
        &self,
        req: &crate::trends::TrendRequest,
    ) -> Result<crate::trends::TrendView, CoreError> {
        let admission = req.admission.clone().or_else(|| self.admission_at(&req.bed));
        self.auth.authorize(Action::Trends, admission.as_deref())?;
        self.trend(req).await
    }

    pub async fn user_alarm_log(
        &self,
        bed: &str,
        hours: i64,
    ) -> Result<Vec<vigil_store::AlarmRecord>, CoreError> {
        let a = self.begin(Action::AlarmLog, Some(bed))?;
        let r = self.alarm_log(Some(bed), hours).await;
        self.recorded(a, r)
    }

    pub async fn user_scan(&self, seconds: u64) -> Result<Vec<ScanResult>, CoreError> {
        let a = self.begin(Action::ScanDevices, None)?;
        let r = self.scan(seconds).await;
        self.recorded(a, r)
    }

    pub async fn user_assign_device(&self, address: &str, bed: &str, kind: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::AssignDevice, Some(bed))?;
        let r = self.assign_device(address, bed, kind).await;
        self.recorded(a, r)
    }

    pub async fn user_remove_device(&self, address: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::RemoveDevice, None)?;
        let r = self.remove_device(address).await;
        self.recorded(a, r)
    }

    /// Reading a scanned device's Device Information is part of scanning for it.
    pub async fn user_identify_device(
        &self,
        address: &str,
    ) -> Result<crate::view::DeviceInfoView, CoreError> {
        self.authorize(Action::ScanDevices, None)?;
        self.identify_device(address).await
    }

    pub async fn user_pair_device(&self, address: &str) -> Result<Option<bool>, CoreError> {
        let a = self.begin(Action::PairDevice, None)?;
        let r = self.pair_device(address).await;
        self.recorded(a, r)
    }

    pub async fn user_set_device_clock(&self, address: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::SetDeviceClock, None)?;
        let r = self.set_device_clock(address).await;
        self.recorded(a, r)
    }

    /// FHIR upload health: counts only, part of the monitor.
    pub async fn user_sync_status(&self) -> Result<Option<SyncView>, CoreError> {
        self.authorize(Action::Monitor, None)?;
        Ok(self.sync_status().await)
    }

    pub async fn user_find_patient(&self, mrn: &str) -> Result<Vec<PatientMatch>, CoreError> {
        let a = self.begin(Action::LinkPatient, None)?;
        let r = self.find_patient(mrn).await;
        self.recorded(a, r)
    }

    pub async fn user_link_patient(&self, bed: &str, patient: &str) -> Result<(), CoreError> {
        let a = self.begin(Action::LinkPatient, Some(bed))?;
        let r = self.link_patient(bed, patient).await;
        self.recorded(a, r)
    }

    pub async fn user_dead_letters(&self) -> Result<Vec<vigil_store::DeadLetter>, CoreError> {
        let a = self.begin(Action::FhirQueue, None)?;
        let r = self.dead_letters().await;
        self.recorded(a, r)
    }

    pub async fn user_requeue_dead_letters(&self, ids: Option<&[i64]>) -> Result<u64, CoreError> {
        let a = self.begin(Action::FhirQueue, None)?;
        let r = self.requeue_dead_letters(ids).await;
        self.recorded(a, r)
    }
}

/// Updates (issue 16): the shell checks and installs through the updater plugin; the core
/// decides who may and when ([`crate::update::may_install`]) and records every check,
/// install and refusal in the audit trail.
impl Vigil {
    /// Beds monitored now: a patient admitted or a device connected.
    pub fn monitored_beds(&self) -> usize {
        let s = self.snapshot();
        crate::update::monitored_beds(&s.beds, &s.devices)
    }

    /// The About panel's update line: the site's server (None: updates off), whether the
    /// signed-in user may install, beds monitored now. Not an action: nothing recorded.
    pub fn update_setup(&self, endpoint: Option<String>) -> crate::update::UpdateSetup {
        crate::update::UpdateSetup {
            endpoint,
            may_install: self.auth.may(Action::InstallUpdate),
            monitored_beds: self.monitored_beds() as u32,
        }
    }

    /// "Check for updates" (any signed-in user): allowed, or refused and recorded. The
    /// caller asks the server and records how it went with [`Vigil::update_done`].
    pub fn user_check_updates(&self, configured: bool) -> Result<crate::update::UpdateTicket, CoreError> {
        self.update_begin(Action::CheckUpdates, configured, None)
    }

    /// "Install": an admin, and while beds are monitored a confirmation naming how many
    /// (`confirmed`: the number the user confirmed). Refusals are recorded with why.
    pub fn user_install_update(
        &self,
        configured: bool,
        confirmed: Option<usize>,
    ) -> Result<crate::update::UpdateTicket, CoreError> {
        self.update_begin(Action::InstallUpdate, configured, Some(confirmed))
    }

    fn update_begin(
        &self,
        action: Action,
        configured: bool,
        install: Option<Option<usize>>,
    ) -> Result<crate::update::UpdateTicket, CoreError> {
        use crate::update::UpdateRefusal;
        // The role first: a refusal is recorded by the session check.
        let actor = self.auth.authorize_then_record(action, None)?;
        let monitored = self.monitored_beds();
        let refused = |e: UpdateRefusal| {
            self.auth.record_action(
                &actor,
                action.as_str(),
                None,
                vigil_store::Outcome::Refused,
                Some(e.to_string()),
            );
            Err(CoreError::Update(e))
        };
        if !configured {
            return refused(UpdateRefusal::NotConfigured);
        }
        if let Some(confirmed) = install {
            let role = actor.role.unwrap_or(crate::auth::Role::Viewer);
            if let Err(e) = crate::update::may_install(role, monitored, confirmed) {
                return refused(e);
            }
        }
        Ok(crate::update::UpdateTicket {
            actor,
            action,
            monitored,
        })
    }

    /// Records how an allowed update check or install ended, with what (versions, the
    /// updater's error; never patient data).
    pub fn update_done(&self, t: crate::update::UpdateTicket, ok: bool, detail: String) {
        let outcome = if ok {
            vigil_store::Outcome::Success
        } else {
            vigil_store::Outcome::Failed
        };
        let detail = if t.action == Action::InstallUpdate && t.monitored > 0 {
            format!("{detail} (confirmed with {} bed(s) monitored)", t.monitored)
        } else {
            detail
        };
        self.auth
            .record_action(&t.actor, t.action.as_str(), None, outcome, Some(detail));
    }
}

/// An action the session allows, not yet recorded.
struct Allowed {
    actor: Actor,
    action: Action,
    admission: Option<String>,
}

fn redact(a: &mut AdmissionView) {
    a.display_name = String::new();
    a.mrn = String::new();
    a.date_of_birth = String::new();
    a.fhir_patient = None;
}
