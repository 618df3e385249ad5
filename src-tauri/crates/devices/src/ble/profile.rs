//! Which GATT services and characteristics each kind of device uses.
//!
//! Assigned numbers: Bluetooth SIG Assigned Numbers §3.4 (services) and §3.8
//! (characteristics); every 16-bit UUID lives in the Bluetooth Base UUID
//! (Core Specification Vol 3, Part B §2.5.1).

use std::time::Duration;

use btleplug::api::bleuuid::uuid_from_u16;
use chrono::NaiveDateTime;
use uuid::Uuid;

use crate::DeviceKind;

pub(crate) const HEART_RATE: u16 = 0x180D;
pub(crate) const PULSE_OXIMETER: u16 = 0x1822;
pub(crate) const HEALTH_THERMOMETER: u16 = 0x1809;
pub(crate) const BLOOD_PRESSURE: u16 = 0x1810;
pub(crate) const WEIGHT_SCALE: u16 = 0x181D;
pub(crate) const GLUCOSE: u16 = 0x1808;
pub(crate) const CURRENT_TIME_SERVICE: u16 = 0x1805;

pub(crate) const BATTERY_LEVEL: u16 = 0x2A19;
/// Glucose Record Access Control Point (GLS 1.0 §3.3.2.8).
pub(crate) const RACP: u16 = 0x2A52;
/// Current Time (CTS 1.1 §3.1).
pub(crate) const CURRENT_TIME: u16 = 0x2A2B;
/// Service Changed (Core Specification Vol 3, Part G §7.1): GATT's own indication.
pub(crate) const SERVICE_CHANGED: u16 = 0x2A05;

/// Device Information Service characteristics, read once per connection in
/// this order: manufacturer, model, serial, hardware/firmware/software
/// revision, System ID, PnP ID (DIS 1.1 §3).
pub(crate) const DEVICE_INFO: [u16; 8] = [0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28, 0x2A23, 0x2A50];

/// RACP "Report stored records" (op code 0x01) with operator "All records"
/// (0x01), no operand (GLS 1.0 §3.3.2.8 / GSS "Record Access Control Point").
pub(crate) const RACP_REPORT_ALL: [u8; 2] = [0x01, 0x01];

/// The health services Vigil can take a device for, with the kind each means.
pub const SUPPORTED_SERVICES: [(u16, DeviceKind); 6] = [
    (HEART_RATE, DeviceKind::HeartRateStrap),
    (PULSE_OXIMETER, DeviceKind::PulseOximeter),
    (HEALTH_THERMOMETER, DeviceKind::Thermometer),
    (BLOOD_PRESSURE, DeviceKind::BloodPressureCuff),
    (WEIGHT_SCALE, DeviceKind::WeightScale),
    (GLUCOSE, DeviceKind::GlucoseMeter),
];

/// What Vigil does with a device of one kind once connected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    /// Measurement characteristics to subscribe to (those the device has).
    pub measurements: &'static [u16],
    /// Download stored records through the RACP after connecting (GLS).
    pub racp: bool,
}

/// The Bluetooth LE profile of a kind; `None` for Vigil's simulated-only
/// respiration sensor.
pub(crate) fn profile(kind: DeviceKind) -> Option<Profile> {
    let (measurements, racp): (&'static [u16], bool) = match kind {
        // HRS 1.0 §3.1: Heart Rate Measurement, notify.
        DeviceKind::HeartRateStrap => (&[0x2A37], false),
        // PLXS 1.0 §3.1/3.2: continuous (notify) and spot-check (indicate).
        DeviceKind::PulseOximeter => (&[0x2A5F, 0x2A5E], false),
        // HTS 1.0 §3.1/3.3: Temperature Measurement (indicate), Intermediate (notify).
        DeviceKind::Thermometer => (&[0x2A1C, 0x2A1E], false),
        // BLS 1.1 §3.1/3.2: BP Measurement (indicate), Intermediate Cuff Pressure (notify).
        DeviceKind::BloodPressureCuff => (&[0x2A35, 0x2A36], false),
        // WSS 1.0 §3.2: Weight Measurement, indicate.
        DeviceKind::WeightScale => (&[0x2A9D], false),
        // GLS 1.0 §3.3.2: Glucose Measurement, notify, in answer to the RACP.
        DeviceKind::GlucoseMeter => (&[0x2A18], true),
        DeviceKind::RespirationSensor => return None,
    };
    Some(Profile { measurements, racp })
}

/// Whether a device assigned as `kind` may send values of this characteristic
/// (see [`crate::accepts`]): its profile's measurements (and the RACP of a
/// glucose meter), plus Device Information, Battery Level and Current Time,
/// which every device may be read for.
pub(crate) fn accepts(kind: DeviceKind, uuid16: u16) -> bool {
    if DEVICE_INFO.contains(&uuid16) || uuid16 == BATTERY_LEVEL || uuid16 == CURRENT_TIME {
        return true;
    }
    profile(kind).is_some_and(|p| p.measurements.contains(&uuid16) || (p.racp && uuid16 == RACP))
}

/// How often a device of this kind is expected to send; the core's
/// watchdog marks the device stale when data is older (plus slack).
/// Continuous sensors stream every second; spot-check devices measure when a
/// nurse (or the cuff's cycle) makes them, so their interval is long.
pub fn expected_interval(kind: DeviceKind) -> Duration {
    Duration::from_secs(match kind {
        DeviceKind::HeartRateStrap | DeviceKind::PulseOximeter => 1,
        DeviceKind::RespirationSensor => 4,
        DeviceKind::Thermometer => 60,
        DeviceKind::BloodPressureCuff => 5 * 60,
        DeviceKind::GlucoseMeter => 8 * 60 * 60,
        DeviceKind::WeightScale => 24 * 60 * 60,
    })
}

/// The kind a supported health service means.
pub fn kind_for_service(uuid16: u16) -> Option<DeviceKind> {
    SUPPORTED_SERVICES
        .iter()
        .find(|(s, _)| *s == uuid16)
        .map(|(_, k)| *k)
}

pub(crate) fn uuid(uuid16: u16) -> Uuid {
    uuid_from_u16(uuid16)
}

/// The 16-bit assigned number of a UUID in the Bluetooth Base UUID range.
pub(crate) fn short(uuid: &Uuid) -> Option<u16> {
    let v = uuid.as_u128();
    let base = uuid_from_u16(0).as_u128();
    (v & !(0xFFFF_u128 << 96) == base).then_some((v >> 96) as u16)
}

/// The supported health services, as UUIDs (scan filter).
pub(crate) fn supported_service_uuids() -> Vec<Uuid> {
    SUPPORTED_SERVICES.iter().map(|(s, _)| uuid(*s)).collect()
}

/// Current Time characteristic value (CTS 1.1 §3.1, GSS "Current Time"):
/// Exact Time 256 (Date Time, Day of Week 1 = Monday .. 7 = Sunday,
/// Fractions256) followed by Adjust Reason, bit 0 "manual time update".
/// Device clocks are local wall-clock time, so `local` is local time. The
/// layout is the gatt crate's, which also decodes what is read back.
pub(crate) fn current_time_bytes(local: NaiveDateTime) -> [u8; 10] {
    vigil_gatt::encode::current_time(local, 0x01)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_uuid_round_trip() {
        assert_eq!(short(&uuid(0x2A37)), Some(0x2A37));
        assert_eq!(uuid(0x180D).to_string(), "0000180d-0000-1000-8000-00805f9b34fb");
        let vendor = Uuid::parse_str(vigil_gatt::SIM_RESP_RATE).unwrap();
        assert_eq!(short(&vendor), None);
    }

    #[test]
    fn current_time_layout() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 3, 14)
            .unwrap()
            .and_hms_milli_opt(15, 9, 26, 500)
            .unwrap();
        // 2026-03-14 is a Saturday (6); 0.5 s = 128/256.
        assert_eq!(
            current_time_bytes(t),
            [0xEA, 0x07, 3, 14, 15, 9, 26, 6, 128, 0x01]
        );
        // What the link reads back after connecting decodes to the same instant.
        let read =
            vigil_gatt::decode(vigil_gatt::Characteristic::CurrentTime, &current_time_bytes(t)).unwrap();
        assert_eq!(read.device_time, Some(t));
        assert!(read.is_current_time() && read.measurements.is_empty());
    }

    #[test]
    fn a_kind_accepts_only_its_own_measurements() {
        use vigil_gatt::Characteristic as C;
        let hr = DeviceKind::HeartRateStrap;
        assert!(crate::accepts(hr, C::HeartRateMeasurement));
        assert!(crate::accepts(hr, C::BatteryLevel) && crate::accepts(hr, C::SerialNumber));
        assert!(crate::accepts(hr, C::CurrentTime));
        for foreign in [C::PlxContinuousMeasurement, C::GlucoseMeasurement, C::SimRespRate] {
            assert!(!crate::accepts(hr, foreign), "{foreign:?}");
        }
        assert!(accepts(DeviceKind::GlucoseMeter, RACP) && !accepts(hr, RACP));
        assert!(crate::accepts(DeviceKind::RespirationSensor, C::SimRespRate));
        assert!(!crate::accepts(
            DeviceKind::RespirationSensor,
            C::HeartRateMeasurement
        ));
        // Every kind accepts every characteristic of its own profile.
        for (_, kind) in SUPPORTED_SERVICES {
            for &m in profile(kind).unwrap().measurements {
                assert!(
                    crate::accepts(kind, C::from_uuid16(m).unwrap()),
                    "{kind:?} {m:04x}"
                );
            }
        }
    }

    #[test]
    fn every_ble_kind_has_a_profile() {
        for (_, kind) in SUPPORTED_SERVICES {
            assert!(profile(kind).is_some());
            assert_eq!(
                kind_for_service(SUPPORTED_SERVICES.iter().find(|s| s.1 == kind).unwrap().0),
                Some(kind)
            );
        }
        assert!(profile(DeviceKind::RespirationSensor).is_none());
    }
}
