//! The worked examples in shared/reference/gatt.md, byte for byte.

use vigil_gatt::SensorContact;

use crate::{dec, vals};

#[test]
fn hr_uint8_no_contact() {
    let d = dec("2A37", "00 48");
    assert_eq!(vals(&d), vec![(147842, Some(72.0), "/min")]);
    assert_eq!(d.sensor_contact, Some(SensorContact::NotSupported));
    assert!(d.rr_intervals_s.is_empty());
}

#[test]
fn hr_contact_detected_one_rr() {
    let d = dec("2A37", "16 3C 00 04");
    assert_eq!(vals(&d), vec![(147842, Some(60.0), "/min")]);
    assert_eq!(d.sensor_contact, Some(SensorContact::Detected));
    assert_eq!(d.rr_intervals_s, vec![1.0]);
}

#[test]
fn plx_continuous_normal() {
    let d = dec("2A5F", "00 61 00 48 00");
    assert_eq!(
        vals(&d),
        vec![(150456, Some(97.0), "%"), (149530, Some(72.0), "/min")]
    );
}

#[test]
fn temperature_36_6() {
    let d = dec("2A1C", "00 6E 01 00 FF");
    assert_eq!(vals(&d), vec![(150364, Some(36.6), "Cel")]);
    assert_eq!(d.measurements[0].exponent, Some(-1));
}

#[test]
fn blood_pressure_120_80_93_3() {
    let d = dec("2A35", "00 78 00 50 00 A5 F3");
    assert_eq!(
        vals(&d),
        vec![
            (150021, Some(120.0), "mm[Hg]"),
            (150022, Some(80.0), "mm[Hg]"),
            (150023, Some(93.3), "mm[Hg]"),
        ]
    );
}
