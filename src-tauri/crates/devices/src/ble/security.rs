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
//! btleplug's peripheral id names. Pairing itself (`Pair()` with an agent) is
//! done once in the operating system's Bluetooth settings (see
//! ARCHITECTURE.md). Windows and macOS: not read here (`None`, "unknown"):
//! with `require_bonded` such links are refused, so that policy is for Linux
//! gateways until those platforms are wired in.

use btleplug::platform::Peripheral;

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

    pub async fn bonded(p: &Peripheral) -> Option<bool> {
        // btleplug's id on BlueZ is the object path below /org/bluez/.
        let path = format!("/org/bluez/{}", p.id());
        tokio::task::spawn_blocking(move || read(&path))
            .await
            .ok()
            .flatten()
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
}
