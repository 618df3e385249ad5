//! Battery, Device Information and the simulator's respiration rate.

use vigil_gatt::{decode, Characteristic, DeviceInfoField};

use crate::{assert_invalid, assert_trailing, assert_truncated, dec, err, vals};

#[test]
fn battery_level() {
    for (hex, pct) in [("00", 0), ("32", 50), ("64", 100)] {
        let d = dec("2A19", hex);
        assert_eq!(d.battery_percent, Some(pct));
        assert!(d.measurements.is_empty());
    }
    for hex in ["65", "FF"] {
        assert_invalid(err("2A19", hex), 0);
    }
    assert_truncated(err("2A19", ""), 0, 1, 0);
    assert_trailing(err("2A19", "50 00"), 1, 1);
}

#[test]
fn dis_strings() {
    let cases = [
        ("2A29", DeviceInfoField::ManufacturerName("Acme".into())),
        ("2A24", DeviceInfoField::ModelNumber("Acme".into())),
        ("2A25", DeviceInfoField::SerialNumber("Acme".into())),
        ("2A27", DeviceInfoField::HardwareRevision("Acme".into())),
        ("2A26", DeviceInfoField::FirmwareRevision("Acme".into())),
        ("2A28", DeviceInfoField::SoftwareRevision("Acme".into())),
    ];
    for (c, want) in cases {
        assert_eq!(dec(c, "41 63 6D 65").info, Some(want));
    }
    assert_eq!(
        dec("2A29", "4D C3 BC 6C 6C 65 72").info,
        Some(DeviceInfoField::ManufacturerName("Müller".into()))
    );
    // Trailing NUL padding is dropped; an empty string is a valid value.
    assert_eq!(
        dec("2A25", "41 42 00 00").info,
        Some(DeviceInfoField::SerialNumber("AB".into()))
    );
    assert_eq!(
        dec("2A25", "").info,
        Some(DeviceInfoField::SerialNumber(String::new()))
    );
}

#[test]
fn dis_invalid_utf8_is_an_error_not_lossy() {
    assert_invalid(err("2A29", "41 FF 42"), 1);
    assert_invalid(err("2A24", "C3"), 0);
    assert_invalid(err("2A26", "31 2E 30 C3 28"), 3);
}

#[test]
fn system_id_eui64() {
    // DIS example: OUI 0x123456, Bluetooth address company-assigned part
    // 0x9ABCDE → 0x123456FFFE9ABCDE, sent LSO first.
    let d = dec("2A23", "DE BC 9A FE FF 56 34 12");
    assert_eq!(
        d.info,
        Some(DeviceInfoField::SystemId {
            eui64: "12-34-56-FF-FE-9A-BC-DE".into(),
            oui: 0x123456,
            manufacturer_identifier: 0xFFFE9ABCDE,
        })
    );
    assert_truncated(err("2A23", "DE BC 9A FE FF 56 34"), 5, 3, 2);
    assert_truncated(err("2A23", "DE BC 9A"), 0, 5, 3);
    assert_trailing(err("2A23", "DE BC 9A FE FF 56 34 12 00"), 8, 1);
}

#[test]
fn pnp_id() {
    let d = dec("2A50", "01 0D 00 34 12 00 01");
    assert_eq!(
        d.info,
        Some(DeviceInfoField::PnpId {
            vendor_id_source: 1,
            vendor_id: 0x000D,
            product_id: 0x1234,
            product_version: 0x0100,
        })
    );
    assert_truncated(err("2A50", "02 0D 00 34 12 00"), 5, 2, 1);
    assert_trailing(err("2A50", "02 0D 00 34 12 00 01 00"), 7, 1);
}

#[test]
fn simulated_respiration_rate() {
    let sim = Characteristic::SimRespRate.short_id();
    let d = dec(&sim, "00 10 00");
    assert_eq!(vals(&d), vec![(151562, Some(16.0), "/min")]);
    assert!(d.simulated);
    let d = dec(&sim, "00 B9 F0");
    assert_eq!(d.measurements[0].value, Some(18.5));
    assert_invalid(err(&sim, "01 10 00"), 0);
    assert_invalid(err(&sim, "80 10 00"), 0);
    assert_truncated(err(&sim, "00 10"), 1, 2, 1);
    assert_trailing(err(&sim, "00 10 00 00"), 3, 1);
    // Real characteristics are never marked simulated.
    assert!(
        !decode(Characteristic::HeartRateMeasurement, &[0, 72])
            .unwrap()
            .simulated
    );
}
