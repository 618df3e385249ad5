//! Whose data a bed takes: the checks between a device's bytes and the ward
//! (issue 13 §1, "a device in radio range can feed a bed made-up vitals").
//!
//! A Bluetooth device is assigned by its address, and an address is easy to
//! copy. So, for every payload, before it is decoded into readings
//! ([`crate::ward::Ward::admit`]):
//!
//! * **The assigned kind's profile only** (every source): a value of a
//!   characteristic the kind does not include (an "HR strap" notifying SpO2
//!   or glucose) is dropped undecoded and counted on the device
//!   (`DeviceView::foreign_values`). The BLE source refuses such
//!   notifications itself and reports them (`DeviceEvent::Refused`), counted
//!   the same way.
//! * **Pinned identity** (real devices): the Device Information serial number
//!   and System ID read on the first connection after a nurse assigned the
//!   device are pinned with the assignment (sealed in the store's device
//!   registry, so across restarts). Those reads come before any value on
//!   every connection; at the first value of a connection the identity read
//!   on it is compared with the pin: a pinned field that now differs, or is
//!   missing, is "device identity changed" — a high technical alarm at the
//!   bed, and all its data refused until a nurse assigns the device again
//!   (which pins the identity then on the link, or the next one read). Fields
//!   the device never had are not compared (such a device is known by its
//!   address only, which the device table shows as "not pinned").
//! * **Link security** (real devices): whether the link is bonded, as the
//!   platform says (`DeviceEvent::Security`), is shown on the device. With
//!   the site's `"ble": {"require_bonded": true}` a link that is not bonded
//!   (or whose bonding is unknown) has its data refused, with a technical
//!   alarm; without it the device is labelled "not bonded".
//!
//! Refused data never becomes a reading: it is not stored, shown, alarmed on
//! or uploaded. Counts are per device, and logs carry device ids only.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
use vigil_store::Store;

use crate::ward::Ward;

/// What identifies a physical device beyond its address: Device Information
/// Serial Number String (0x2A25) and System ID (0x2A23, as its EUI-64).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub serial: Option<String>,
    pub system_id: Option<String>,
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.serial.is_none() && self.system_id.is_none()
    }

    /// Whether `seen` contradicts this pin: a pinned field that differs or
    /// is missing. Fields not pinned are not compared.
    pub fn contradicted_by(&self, seen: &Identity) -> bool {
        let differs = |pin: &Option<String>, now: &Option<String>| pin.is_some() && pin != now;
        differs(&self.serial, &seen.serial) || differs(&self.system_id, &seen.system_id)
    }
}

/// Why a device's data is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Refusal {
    /// Reconnected with another serial number or System ID than pinned.
    IdentityChanged,
    /// The site requires bonded links; this one is not (or cannot be told).
    NotBonded,
}

/// One device's trust state, kept by the ward with the device.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeviceTrust {
    /// A real device (pinning and the bonding policy apply; not to
    /// simulated or replayed ones).
    pub real: bool,
    /// The site's `ble.require_bonded`.
    pub require_bonded: bool,
    /// The identity pinned with its assignment.
    pub pin: Option<Identity>,
    /// As the platform last said (`None`: not said, or unknown).
    pub bonded: Option<bool>,
    /// A `Security` event has arrived (the policy alarms only then).
    pub security_known: bool,
    /// The identity read since the link last came up.
    pub seen: Identity,
    /// The identity has been checked on this connection.
    pub checked: bool,
    /// Set when a connection's identity contradicted the pin; cleared only
    /// by a nurse assigning the device again.
    pub identity_changed: bool,
    /// Values outside the assigned kind's profile, dropped.
    pub foreign: u64,
    /// Values refused because of a [`Refusal`].
    pub refused: u64,
}

impl DeviceTrust {
    /// A new connection: its identity is read afresh.
    pub fn begin_session(&mut self) {
        self.seen = Identity::default();
        self.checked = false;
    }

    /// Why data from this device is refused now, if it is.
    pub fn refusal(&self) -> Option<Refusal> {
        if !self.real {
            None
        } else if self.identity_changed {
            Some(Refusal::IdentityChanged)
        } else if self.require_bonded && self.bonded != Some(true) {
            Some(Refusal::NotBonded)
        } else {
            None
        }
    }

    /// What the screen (and the alarms) see: a not-bonded refusal only once
    /// the link has said how secure it is, so a device still connecting for
    /// the first time does not alarm.
    pub fn shown_refusal(&self) -> Option<Refusal> {
        match self.refusal() {
            Some(Refusal::NotBonded) if !self.security_known => None,
            other => other,
        }
    }

    /// At a connection's first value (DIS is read before any): pins the
    /// identity read if none is pinned (returned, to be saved), or flags a
    /// contradiction of the pin.
    pub fn check_identity(&mut self) -> Option<Identity> {
        if !self.real || self.checked {
            return None;
        }
        self.checked = true;
        match &self.pin {
            Some(pin) => {
                if pin.contradicted_by(&self.seen) {
                    self.identity_changed = true;
                }
                None
            }
            None if !self.seen.is_empty() => {
                self.pin = Some(self.seen.clone());
                self.pin.clone()
            }
            None => None,
        }
    }
}

/// The pin as the store's device registry keeps it (in the device's sealed
/// information): `{"pin": {"serial": …, "system_id": …}}`, `{"pin": null}`
/// when none is pinned.
pub fn pin_json(pin: Option<&Identity>) -> serde_json::Value {
    serde_json::json!({ "pin": pin })
}

/// The pin in a device's stored information, if any.
pub fn pin_from_json(info: &serde_json::Value) -> Option<Identity> {
    serde_json::from_value(info.get("pin")?.clone()).ok()
}

/// Saves the identities the pipeline pins (a device's first connection
/// after its assignment) into the store's device registry, once a second
/// and at shutdown. A pin that fails to save is kept and tried again.
pub async fn save_pins(ward: Arc<Mutex<Ward>>, store: Store, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut failed: Vec<(String, Identity)> = Vec::new();
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            _ = cancel.cancelled() => true,
        };
        let mut pins = std::mem::take(&mut failed);
        pins.extend(ward.lock().unwrap().take_new_pins());
        for (device, pin) in pins {
            let address = vigil_devices::ble::address_of(&device);
            match store.set_device_info(address, &pin_json(Some(&pin))).await {
                Ok(()) => tracing::info!(device = %device, "device identity pinned"),
                Err(e) => {
                    tracing::warn!(device = %device, error = %e, "pinning a device identity failed; retrying");
                    failed.push((device, pin));
                }
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: Option<&str>, system_id: Option<&str>) -> Identity {
        Identity {
            serial: serial.map(String::from),
            system_id: system_id.map(String::from),
        }
    }

    #[test]
    fn a_pinned_field_that_differs_or_is_missing_contradicts_the_pin() {
        let pin = id(Some("C0680226"), Some("0011223344556677"));
        assert!(!pin.contradicted_by(&pin.clone()));
        assert!(pin.contradicted_by(&id(Some("X1"), Some("0011223344556677"))));
        assert!(pin.contradicted_by(&id(Some("C0680226"), Some("FFFF"))));
        assert!(
            pin.contradicted_by(&id(None, Some("0011223344556677"))),
            "an impostor cannot hide its serial"
        );
        // A field never pinned is not compared.
        assert!(!id(Some("S"), None).contradicted_by(&id(Some("S"), Some("any"))));
    }

    #[test]
    fn the_pin_round_trips_through_the_registry_json() {
        let pin = id(Some("SN1"), None);
        assert_eq!(pin_from_json(&pin_json(Some(&pin))), Some(pin));
        assert_eq!(pin_from_json(&pin_json(None)), None);
        assert_eq!(pin_from_json(&serde_json::json!({"manufacturer": "x"})), None);
    }

    #[test]
    fn the_site_policy_parses_and_unknown_fields_are_refused() {
        let site: crate::site::BleSite = serde_json::from_str(r#"{"require_bonded": true}"#).unwrap();
        assert_eq!(site, crate::site::BleSite { require_bonded: true });
        let none: crate::site::BleSite = serde_json::from_str("{}").unwrap();
        assert!(!none.require_bonded);
        assert!(serde_json::from_str::<crate::site::BleSite>(r#"{"require_bonding": true}"#).is_err());
    }

    #[test]
    fn not_bonded_is_refused_only_under_the_policy_and_alarmed_once_known() {
        let mut t = DeviceTrust {
            real: true,
            ..Default::default()
        };
        assert_eq!(t.refusal(), None);
        t.require_bonded = true;
        assert_eq!(
            t.refusal(),
            Some(Refusal::NotBonded),
            "unknown is refused (fail closed)"
        );
        assert_eq!(t.shown_refusal(), None, "not alarmed before the link said");
        t.security_known = true;
        t.bonded = Some(false);
        assert_eq!(t.shown_refusal(), Some(Refusal::NotBonded));
        t.bonded = Some(true);
        assert_eq!(t.refusal(), None);
        t.identity_changed = true;
        assert_eq!(t.refusal(), Some(Refusal::IdentityChanged));
        // Simulated devices are never refused for their link.
        let sim = DeviceTrust {
            require_bonded: true,
            ..Default::default()
        };
        assert_eq!(sim.refusal(), None);
    }

    #[test]
    fn the_first_connection_pins_and_a_later_one_is_checked_against_it() {
        let mut t = DeviceTrust {
            real: true,
            ..Default::default()
        };
        t.begin_session();
        t.seen = id(Some("SN1"), Some("EUI"));
        assert_eq!(t.check_identity(), Some(id(Some("SN1"), Some("EUI"))));
        assert_eq!(t.check_identity(), None, "once per connection");
        t.begin_session();
        t.seen = id(Some("SN2"), Some("EUI"));
        assert_eq!(t.check_identity(), None);
        assert!(t.identity_changed);
        // A later connection with the right identity does not clear it: only a nurse does.
        t.begin_session();
        t.seen = id(Some("SN1"), Some("EUI"));
        t.check_identity();
        assert_eq!(t.refusal(), Some(Refusal::IdentityChanged));
    }
}
