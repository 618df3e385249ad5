//! Software updates (issue 16): when one may be installed, and where they come from.
//!
//! The shell downloads and installs through the Tauri updater plugin, which verifies the
//! artifact's minisign signature against the public key compiled into the app; this module
//! holds the rules that are Vigil's own, pure and unit-tested:
//! - only a role that manages the installation (admin, [`Action::InstallUpdate`]) installs;
//! - installing restarts Vigil, so monitoring and alarms stop for the restart: while any bed
//!   is monitored (a patient admitted or a device connected) the install needs an explicit
//!   confirmation that names how many beds, and that confirmation must match the ward *now*
//!   (a patient admitted after the dialog was shown makes it stale) — IEC 62304 §5.1 /
//!   IEC 60601-1-8 §6.7: a workstation must never stop alarming without the user knowing;
//! - the endpoint is the site's choice (`site.json` `updates.endpoint`, installer's file):
//!   none configured = updates off; https only, except plain http to a loopback address for
//!   tests.

use crate::auth::{allows, Action, Actor, Role};
use crate::view::{BedView, DeviceView};
use serde::Serialize;
use ts_rs::TS;
use vigil_model::LinkState;

/// Why an update may not be installed now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRefusal {
    #[error("a {0} may not install updates: only an administrator manages the installation")]
    Role(Role),
    /// Beds are monitored and the user has not confirmed this number of beds.
    #[error(
        "{beds} {} monitored: installing the update restarts Vigil, and monitoring and alarms \
         stop at {} until it is back; confirm to install",
        if *.beds == 1 { "bed is" } else { "beds are" },
        if *.beds == 1 { "that bed" } else { "those beds" }
    )]
    NeedsConfirmation { beds: usize },
    #[error("no update server is configured for this site (site.json `updates.endpoint`): updates are off")]
    NotConfigured,
}

impl UpdateRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            UpdateRefusal::Role(_) => "forbidden",
            UpdateRefusal::NeedsConfirmation { .. } => "update_needs_confirmation",
            UpdateRefusal::NotConfigured => "updates_off",
        }
    }
}

/// Whether `role` may install an update now, with `monitored` beds being monitored and the
/// user having confirmed `confirmed` beds (the number the dialog showed; None: no
/// confirmation). A confirmation counts only for the number of beds monitored now.
pub fn may_install(role: Role, monitored: usize, confirmed: Option<usize>) -> Result<(), UpdateRefusal> {
    if !allows(role, Action::InstallUpdate) {
        return Err(UpdateRefusal::Role(role));
    }
    if monitored > 0 && confirmed != Some(monitored) {
        return Err(UpdateRefusal::NeedsConfirmation { beds: monitored });
    }
    Ok(())
}

/// A device that is (or is becoming) a live source of readings and alarms.
fn device_live(state: LinkState) -> bool {
    !matches!(state, LinkState::Disconnected | LinkState::AdapterOff)
}

/// How many beds are monitored: a patient admitted, or a device connected (or connecting,
/// or stale: its link is up and its alarms are live).
pub fn monitored_beds(beds: &[BedView], devices: &[DeviceView]) -> usize {
    beds.iter()
        .filter(|b| b.admission.is_some() || devices.iter().any(|d| d.bed == b.bed && device_live(d.state)))
        .count()
}

/// The update server of the site (`"updates": {"endpoint": "https://…"}`), checked as
/// untrusted input. `{{target}}`, `{{arch}}`, `{{current_version}}` and `{{bundle_type}}`
/// are filled in by the updater.
pub fn check_endpoint(endpoint: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(endpoint).map_err(|e| format!("updates.endpoint is not a URL ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        // Credentials in a URL end up in logs and the About panel.
        return Err("updates.endpoint must not carry a user name or password".into());
    }
    if u.fragment().is_some() {
        return Err("updates.endpoint must not have a #fragment".into());
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        // A name could resolve anywhere: only an address literal counts as loopback.
        _ => false,
    };
    match u.scheme() {
        "https" if u.host().is_some() => Ok(u),
        "http" if loopback => Ok(u),
        "http" => {
            Err("updates.endpoint must use https (plain http only to a loopback address, for tests)".into())
        }
        s => Err(format!("updates.endpoint must use https, not {s}")),
    }
}

/// What the About panel shows of the update setup.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct UpdateSetup {
    /// The site's update server; null: updates are off.
    pub endpoint: Option<String>,
    /// The signed-in user may install (admin).
    pub may_install: bool,
    /// Beds monitored now (a confirmation must name this number).
    pub monitored_beds: u32,
}

/// The answer to "Check for updates".
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct UpdateCheck {
    pub current: String,
    /// The newer version the server offers; null: up to date.
    pub available: Option<String>,
    pub notes: Option<String>,
    pub pub_date: Option<String>,
    pub monitored_beds: u32,
}

/// An allowed update action, to be recorded with its outcome ([`crate::Vigil::update_done`]).
pub struct UpdateTicket {
    pub(crate) actor: Actor,
    pub(crate) action: Action,
    /// Beds monitored when it was allowed.
    pub monitored: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_admin_installs() {
        for role in Role::ALL {
            let r = may_install(role, 0, None);
            assert_eq!(r.is_ok(), role == Role::Admin, "{role}");
            if role != Role::Admin {
                assert_eq!(r.unwrap_err(), UpdateRefusal::Role(role));
            }
        }
        // A confirmation does not widen the role.
        assert_eq!(
            may_install(Role::Clinician, 3, Some(3)),
            Err(UpdateRefusal::Role(Role::Clinician))
        );
    }

    #[test]
    fn monitored_beds_need_a_confirmation_naming_how_many_and_that_monitoring_stops() {
        assert_eq!(
            may_install(Role::Admin, 0, None),
            Ok(()),
            "an idle ward installs at once"
        );
        let e = may_install(Role::Admin, 3, None).unwrap_err();
        assert_eq!(e, UpdateRefusal::NeedsConfirmation { beds: 3 });
        let text = e.to_string();
        assert!(text.starts_with("3 beds are monitored"), "{text}");
        assert!(text.contains("monitoring and alarms stop"), "{text}");
        assert!(text.contains("restarts Vigil"), "{text}");
        assert!(
            UpdateRefusal::NeedsConfirmation { beds: 1 }
                .to_string()
                .starts_with("1 bed is monitored"),
            "singular"
        );
        assert_eq!(may_install(Role::Admin, 3, Some(3)), Ok(()));
        // Confirmed for 2, but a patient was admitted since: the user has not seen 3.
        assert_eq!(
            may_install(Role::Admin, 3, Some(2)),
            Err(UpdateRefusal::NeedsConfirmation { beds: 3 })
        );
        assert_eq!(
            may_install(Role::Admin, 1, Some(0)),
            Err(UpdateRefusal::NeedsConfirmation { beds: 1 })
        );
    }

    #[test]
    fn a_bed_is_monitored_with_a_patient_or_a_live_device() {
        let bed = |id: &str, admitted: bool| BedView {
            bed: id.into(),
            label: id.into(),
            admission: admitted.then(|| crate::view::AdmissionView {
                id: format!("adm-{id}"),
                display_name: String::new(),
                mrn: String::new(),
                date_of_birth: String::new(),
                category: vigil_store::PatientCategory::Adult,
                admitted_at: String::new(),
                fhir_patient: None,
            }),
        };
        let beds = [
            bed("bed-1", true),
            bed("bed-2", false),
            bed("bed-3", false),
            bed("bed-4", false),
        ];
        assert_eq!(monitored_beds(&beds, &[]), 1);
        assert!(
            device_live(LinkState::Receiving)
                && device_live(LinkState::Stale)
                && device_live(LinkState::Connecting)
        );
        assert!(!device_live(LinkState::Disconnected) && !device_live(LinkState::AdapterOff));
    }

    #[test]
    fn the_endpoint_is_https_or_loopback_http_only() {
        for ok in [
            "https://updates.example.org/vigil/{{target}}/{{arch}}/{{current_version}}",
            "https://updates.example.org/latest.json",
            "http://127.0.0.1:8123/latest.json",
            "http://[::1]:8123/latest.json",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}: {:?}", check_endpoint(ok));
        }
        for (bad, why) in [
            ("http://updates.example.org/latest.json", "https"),
            ("http://localhost:8123/latest.json", "https"),
            ("http://10.0.0.1/latest.json", "https"),
            ("ftp://updates.example.org/latest.json", "not ftp"),
            ("file:///tmp/latest.json", "not file"),
            (
                "https://it:secret@updates.example.org/latest.json",
                "user name or password",
            ),
            ("https://updates.example.org/latest.json#x", "fragment"),
            ("updates.example.org/latest.json", "not a URL"),
        ] {
            let e = check_endpoint(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
