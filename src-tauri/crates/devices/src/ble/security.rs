//! Link security: whether the platform holds a bond (long-term keys) with a
//! device, read once per connection and sent as `DeviceEvent::Security`.
//!
//! Why: a device is assigned by its Bluetooth address, and an address is
//! easy to copy. A bonded link is encrypted with keys only the real device
//! holds, so "bonded" is what makes an address mean a device. The core
//! labels an unbonded link on the screen, and refuses its data when the
//! site asks for bonded links (`site.json` `"ble": {"require_bonded": true}`).
//!
//! btleplug has no bonding API. On Linux BlueZ exposes it over D-Bus:
//! `org.bluez.Device1.Bonded` (BlueZ 5.75 and later; keys stored) or, on
//! older BlueZ, `Paired`. It is read on a D-Bus connection of its own (the
//! `dbus` crate btleplug already links), at the device's object path, which
//! btleplug's peripheral id names. [`pair`] asks BlueZ to bond
//! (`Device1.Pair()`): Vigil registers no pairing agent, so BlueZ uses the
//! desktop's default agent where there is one (it asks for a passkey on
//! screen) and "Just Works" (no input, no output) otherwise, which is what
//! most bedside sensors use; a device that needs a passkey and no agent to
//! answer is refused by BlueZ and reported. Windows and macOS: not read here
//! (`None`, "unknown") and not paired here (the OS's Bluetooth settings do
//! it): with `require_bonded` such links are refused, so that policy is for
//! Linux gateways until those platforms are wired in.

use btleplug::platform::Peripheral;

use super::BleError;

/// How long a pairing may take (a passkey typed on the desktop's agent).
pub(crate) const PAIR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks the platform to bond with the device; a device already bonded is fine.
pub(crate) async fn pair(p: &Peripheral) -> Result<(), BleError> {
    imp::pair(p).await
}

/// `Some(true)`: bonded; `Some(false)`: not bonded; `None`: the platform
/// did not say (the read failed, or a platform where it is not read).
pub(crate) async fn bonded(p: &Peripheral) -> Option<bool> {
    imp::bonded(p).await
}

#[cfg(target_os = "linux")]
mod imp {
    use btleplug::api::Peripheral as _;
    use btleplug::platform::Peripheral;
    use std::time::Duration;

    use crate::ble::BleError;

    /// btleplug's id on BlueZ is the object path below /org/bluez/.
    fn path(p: &Peripheral) -> String {
        format!("/org/bluez/{}", p.id())
    }

    pub async fn bonded(p: &Peripheral) -> Option<bool> {
        let path = path(p);
        tokio::task::spawn_blocking(move || read(&path))
            .await
            .ok()
            .flatten()
    }

    pub async fn pair(p: &Peripheral) -> Result<(), BleError> {
        let path = path(p);
        tokio::task::spawn_blocking(move || call_pair(&path))
            .await
            .map_err(|_| BleError::Pairing("the pairing task stopped".into()))?
    }

    fn call_pair(path: &str) -> Result<(), BleError> {
        let conn = dbus::blocking::Connection::new_system().map_err(|e| BleError::Pairing(e.to_string()))?;
        let device = conn.with_proxy("org.bluez", path, super::PAIR_TIMEOUT);
        match device.method_call::<(), _, _, _>("org.bluez.Device1", "Pair", ()) {
            Ok(()) => Ok(()),
            Err(e) if e.name() == Some("org.bluez.Error.AlreadyExists") => Ok(()),
            // BlueZ's error name and message (e.g. AuthenticationFailed): no patient data.
            Err(e) => Err(BleError::Pairing(format!(
                "{}: {}",
                e.name().unwrap_or("error"),
                e.message().unwrap_or("")
            ))),
        }
    }

    fn read(path: &str) -> Option<bool> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        let conn = match dbus::blocking::Connection::new_system() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "no system bus for the bonding state");
                return None;
            }
        };
        let device = conn.with_proxy("org.bluez", path, Duration::from_secs(2));
        let get = |name: &str| device.get::<bool>("org.bluez.Device1", name);
        match get("Bonded").or_else(|_| get("Paired")) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!(error = %e, "bonding state unavailable");
                None
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use btleplug::platform::Peripheral;

    pub async fn bonded(_p: &Peripheral) -> Option<bool> {
        None
    }

    pub async fn pair(_p: &Peripheral) -> Result<(), crate::ble::BleError> {
        Err(crate::ble::BleError::Pairing(
            "pair the device in the operating system's Bluetooth settings".into(),
        ))
    }
}
