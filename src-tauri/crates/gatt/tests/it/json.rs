//! The CLI contract: `vigil decode 2A37 0048` prints serde_json of Decoded.

use crate::dec;

fn json(c: &str, hex: &str) -> String {
    serde_json::to_string(&dec(c, hex)).unwrap()
}

#[test]
fn heart_rate_contract_prefix() {
    let s = json("2A37", "0048");
    assert!(
        s.starts_with(
            r#"{"characteristic":"2a37","measurements":[{"mdc":147842,"value":72.0,"unit":"/min"}]"#
        ),
        "{s}"
    );
    assert_eq!(
        s,
        r#"{"characteristic":"2a37","measurements":[{"mdc":147842,"value":72.0,"unit":"/min"}],"sensor_contact":"not_supported"}"#
    );
}

#[test]
fn special_values_serialise_as_null_plus_kind() {
    for (raw, kind) in [
        ("FF 07", "nan"),
        ("00 08", "nres"),
        ("FE 07", "+inf"),
        ("02 08", "-inf"),
        ("01 08", "reserved"),
    ] {
        let s = json("2A5F", &format!("00 {raw} 48 00"));
        let want = format!(
            r#"{{"characteristic":"2a5f","measurements":[{{"mdc":150456,"value":null,"special":"{kind}","unit":"%"}},{{"mdc":149530,"value":72.0,"unit":"/min"}}]}}"#
        );
        assert_eq!(s, want);
    }
}

#[test]
fn optional_fields_appear_only_when_set() {
    let s = json("2A37", "16 3C 00 04");
    assert_eq!(
        s,
        r#"{"characteristic":"2a37","measurements":[{"mdc":147842,"value":60.0,"unit":"/min"}],"sensor_contact":"detected","rr_intervals_s":[1.0]}"#
    );
    let s = json("2A1C", "06 6E 01 00 FF E8 07 03 0F 0A 1E 05 06");
    assert_eq!(
        s,
        r#"{"characteristic":"2a1c","measurements":[{"mdc":150364,"value":36.6,"unit":"Cel","exponent":-1}],"device_time":"2024-03-15T10:30:05","site":"mouth"}"#
    );
    let s = json("2A2B", "E8 07 03 0F 0A 1E 05 05 80 01");
    assert_eq!(
        s,
        r#"{"characteristic":"2a2b","measurements":[],"device_time":"2024-03-15T10:30:05.500","status":["manual time update"]}"#
    );
    let s = json("2A19", "57");
    assert_eq!(
        s,
        r#"{"characteristic":"2a19","measurements":[],"battery_percent":87}"#
    );
    let s = json("2A29", "41 63 6D 65");
    assert_eq!(
        s,
        r#"{"characteristic":"2a29","measurements":[],"info":{"manufacturer_name":"Acme"}}"#
    );
    let s = json("7f1d0001-5a5e-4c1b-9a1e-56494749c001", "00 10 00");
    assert_eq!(
        s,
        r#"{"characteristic":"7f1d0001-5a5e-4c1b-9a1e-56494749c001","measurements":[{"mdc":151562,"value":16.0,"unit":"/min"}],"simulated":true}"#
    );
    let s = json("2A9D", "00 FF FF");
    assert_eq!(
        s,
        r#"{"characteristic":"2a9d","measurements":[{"mdc":188736,"value":null,"special":"nan","unit":"kg"}],"status":["measurement unsuccessful"],"quality":"invalid"}"#
    );
}

#[test]
fn every_measurement_has_mdc_value_unit() {
    let payloads = [
        ("2A37", "19 48 00 E8 03 00 04"),
        (
            "2A5F",
            "1F 61 00 48 00 60 00 49 00 62 00 47 00 00 20 20 80 00 19 F0",
        ),
        ("2A35", "1E 78 00 50 00 A5 F3 E8 07 03 0F 0A 1E 05 48 00 03 2A 00"),
        ("2A9D", "0E C9 36 E8 07 03 0F 0A 1E 05 01 F3 00 D6 06"),
        ("2A18", "1B 01 00 E8 07 03 0F 0A 1E 00 0F 00 5F B0 11 03 00"),
    ];
    for (c, hex) in payloads {
        let v: serde_json::Value = serde_json::to_value(dec(c, hex)).unwrap();
        assert_eq!(v["characteristic"], c.to_lowercase());
        for m in v["measurements"].as_array().unwrap() {
            assert!(m["mdc"].is_u64(), "{m}");
            assert!(m["value"].is_f64() || (m["value"].is_null() && m["special"].is_string()));
            assert!(m["unit"].is_string());
        }
    }
}

#[test]
fn error_display_is_one_line() {
    let e = vigil_gatt::decode(vigil_gatt::Characteristic::BatteryLevel, &[150]).unwrap_err();
    let s = e.to_string();
    assert_eq!(
        s,
        "2a19 (Battery Level): invalid value at byte 0: battery level 150 % is above 100"
    );
    assert!(!s.contains('\n'));
}
