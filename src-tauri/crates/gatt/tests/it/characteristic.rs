//! UUID parsing, names, ids; parse_hex.

use vigil_gatt::{parse_hex, Characteristic, DecodeError, SIM_RESP_RATE};

#[test]
fn accepted_spellings() {
    for s in [
        "2A37",
        "2a37",
        "0x2A37",
        "0X2a37",
        " 2a37 ",
        "00002a37-0000-1000-8000-00805f9b34fb",
        "00002A37-0000-1000-8000-00805F9B34FB",
    ] {
        assert_eq!(
            Characteristic::from_uuid_str(s).unwrap(),
            Characteristic::HeartRateMeasurement,
            "{s}"
        );
    }
    assert_eq!(
        Characteristic::from_uuid_str("7F1D0001-5A5E-4C1B-9A1E-56494749C001").unwrap(),
        Characteristic::SimRespRate
    );
    assert_eq!(
        "2a5f".parse::<Characteristic>().unwrap(),
        Characteristic::PlxContinuousMeasurement
    );
}

#[test]
fn rejected_spellings() {
    for s in [
        "",
        "2A00",
        "zzzz",
        "2A3",
        "12A37",
        "0x",
        "00002a37-0000-1000-8000-00805f9b34fc",
        "10002a37-0000-1000-8000-00805f9b34fb",
        "7f1d0002-5a5e-4c1b-9a1e-56494749c001",
        "+a37",
    ] {
        match Characteristic::from_uuid_str(s) {
            Err(DecodeError::UnknownCharacteristic(got)) => assert_eq!(got, s),
            other => panic!("{s:?}: {other:?}"),
        }
    }
}

#[test]
fn ids_and_names() {
    let hr = Characteristic::HeartRateMeasurement;
    assert_eq!(hr.uuid16(), Some(0x2A37));
    assert_eq!(hr.short_id(), "2a37");
    assert_eq!(hr.name(), "Heart Rate Measurement");
    assert_eq!(hr.uuid128(), "00002a37-0000-1000-8000-00805f9b34fb");
    assert_eq!(hr.to_string(), "2a37 (Heart Rate Measurement)");
    let sim = Characteristic::SimRespRate;
    assert_eq!(sim.uuid16(), None);
    assert_eq!(sim.short_id(), SIM_RESP_RATE);
    assert_eq!(sim.name(), "Vigil simulated respiration rate");
    let expected = [
        (0x2A37, "2a37"),
        (0x2A5E, "2a5e"),
        (0x2A5F, "2a5f"),
        (0x2A1C, "2a1c"),
        (0x2A1E, "2a1e"),
        (0x2A35, "2a35"),
        (0x2A36, "2a36"),
        (0x2A9D, "2a9d"),
        (0x2A18, "2a18"),
        (0x2A19, "2a19"),
        (0x2A29, "2a29"),
        (0x2A24, "2a24"),
        (0x2A25, "2a25"),
        (0x2A27, "2a27"),
        (0x2A26, "2a26"),
        (0x2A28, "2a28"),
        (0x2A23, "2a23"),
        (0x2A50, "2a50"),
        (0x2A2B, "2a2b"),
    ];
    for (uuid, id) in expected {
        let c = Characteristic::from_uuid16(uuid).unwrap();
        assert_eq!(c.short_id(), id);
    }
}

#[test]
fn every_characteristic_round_trips_through_its_ids() {
    for c in Characteristic::ALL {
        assert_eq!(Characteristic::from_uuid_str(&c.short_id()).unwrap(), c);
        assert_eq!(Characteristic::from_uuid_str(&c.uuid128()).unwrap(), c);
        assert_eq!(
            Characteristic::from_uuid_str(&c.uuid128().to_uppercase()).unwrap(),
            c
        );
        if let Some(u) = c.uuid16() {
            assert_eq!(Characteristic::from_uuid_str(&format!("0x{u:04X}")).unwrap(), c);
        }
        assert!(!c.name().is_empty());
    }
}

#[test]
fn hex_spellings() {
    for s in [
        "0048",
        "00 48",
        "00:48",
        "0x00 0x48",
        "0x0048",
        "00-48",
        " 0 0 4 8 ",
        "00,48",
    ] {
        assert_eq!(parse_hex(s).unwrap(), vec![0x00, 0x48], "{s}");
    }
    assert_eq!(parse_hex("DEADbeef").unwrap(), vec![0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    for s in ["0", "zz", "00 4", "0x0g", "00 48 +", "é0"] {
        assert!(matches!(parse_hex(s), Err(DecodeError::BadHex(_))), "{s}");
    }
}
