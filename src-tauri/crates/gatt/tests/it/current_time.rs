//! Current Time 0x2A2B (CTS 1.1 §3.1): the device's clock, no measurement.

use chrono::{NaiveDate, Timelike};
use vigil_gatt::{decode, encode, Characteristic};

use crate::{assert_invalid, assert_trailing, assert_truncated, dec, err};

#[test]
fn exact_time_256_and_adjust_reason() {
    // The CTS 1.1 field layout: Date Time 2024-03-15 10:30:05, Day of Week 5
    // (Friday), Fractions256 0x80 (= 0.5 s), Adjust Reason 0x01 (manual).
    let d = dec("2A2B", "E8 07 03 0F 0A 1E 05 05 80 01");
    assert_eq!(d.characteristic, "2a2b");
    assert!(d.is_current_time());
    assert!(d.measurements.is_empty(), "a clock reading is not a measurement");
    assert_eq!(d.sequence, None);
    let t = NaiveDate::from_ymd_opt(2024, 3, 15)
        .unwrap()
        .and_hms_milli_opt(10, 30, 5, 500)
        .unwrap();
    assert_eq!(d.device_time, Some(t));
    assert_eq!(d.status, vec!["manual time update"]);
}

#[test]
fn vectors() {
    // 2026-05-01 23:59:59 (a Friday), 255/256 s, no adjustment.
    let d = dec("2A2B", "EA 07 05 01 17 3B 3B 05 FF 00");
    let t = d.device_time.unwrap();
    assert_eq!(t.format("%Y-%m-%d %H:%M:%S").to_string(), "2026-05-01 23:59:59");
    assert_eq!(t.nanosecond(), 255 * 3_906_250);
    assert!(d.status.is_empty());
    // Day of Week unknown (0) is allowed; all four reasons; RFU bits ignored.
    let d = dec("2A2B", "D0 07 02 1D 00 00 00 00 00 FF");
    assert_eq!(
        d.device_time.unwrap().to_string(),
        "2000-02-29 00:00:00",
        "a leap day"
    );
    assert_eq!(
        d.status,
        vec![
            "manual time update",
            "external reference time update",
            "change of time zone",
            "change of DST"
        ]
    );
    // Not a glucose record, not a measurement: the other decoders say no.
    assert!(!dec("2A19", "50").is_current_time());
}

#[test]
fn unknown_date_is_no_time() {
    // Year, month or day 0: the clock is not set. Not an error.
    for hex in [
        "00 00 03 0F 0A 1E 05 05 00 00",
        "E8 07 00 0F 0A 1E 05 00 00 00",
        "E8 07 03 00 0A 1E 05 00 00 00",
        "00 00 00 00 00 00 00 00 00 00",
    ] {
        let d = dec("2A2B", hex);
        assert!(d.is_current_time() && d.device_time.is_none(), "{hex}");
    }
}

#[test]
fn invalid_fields() {
    assert_invalid(err("2A2B", "E8 07 0D 0F 0A 1E 05 05 00 00"), 2); // month 13
    assert_invalid(err("2A2B", "E8 07 02 1E 0A 1E 05 05 00 00"), 3); // 30 February
    assert_invalid(err("2A2B", "E8 07 03 0F 18 1E 05 05 00 00"), 4); // 24 h
    assert_invalid(err("2A2B", "E8 07 03 0F 0A 1E 3C 05 00 00"), 6); // 60 s
    assert_invalid(err("2A2B", "01 00 03 0F 0A 1E 05 05 00 00"), 0); // year 1
    assert_invalid(err("2A2B", "E8 07 03 0F 0A 1E 05 08 00 00"), 7); // day of week RFU
}

#[test]
fn truncated_and_trailing() {
    assert_truncated(err("2A2B", ""), 0, 7, 0);
    assert_truncated(err("2A2B", "E8 07 03 0F 0A 1E"), 0, 7, 6);
    assert_truncated(err("2A2B", "E8 07 03 0F 0A 1E 05"), 7, 1, 0);
    assert_truncated(err("2A2B", "E8 07 03 0F 0A 1E 05 05"), 8, 1, 0);
    assert_truncated(err("2A2B", "E8 07 03 0F 0A 1E 05 05 80"), 9, 1, 0);
    assert_trailing(err("2A2B", "E8 07 03 0F 0A 1E 05 05 80 01 00"), 10, 1);
}

#[test]
fn encoder_round_trip() {
    let t = NaiveDate::from_ymd_opt(2026, 3, 14)
        .unwrap()
        .and_hms_milli_opt(15, 9, 26, 500)
        .unwrap();
    // 2026-03-14 is a Saturday (6); 0.5 s = 128/256; manual update.
    let bytes = encode::current_time(t, 0x01);
    assert_eq!(bytes, [0xEA, 0x07, 3, 14, 15, 9, 26, 6, 128, 0x01]);
    let d = decode(Characteristic::CurrentTime, &bytes).unwrap();
    assert_eq!(d.device_time, Some(t));
    // A year the Date Time cannot carry goes out as an unknown date.
    let far = NaiveDate::from_ymd_opt(1400, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let d = decode(Characteristic::CurrentTime, &encode::current_time(far, 0)).unwrap();
    assert_eq!(d.device_time, None);
}
