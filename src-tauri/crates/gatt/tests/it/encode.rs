//! Encoder → decoder round trips for every simulator builder.

use chrono::NaiveDate;
use vigil_gatt::{decode, encode, Characteristic as C, DeviceInfoField, SensorContact};
use vigil_model::{Special, Value};

fn t() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 11, 25)
        .unwrap()
        .and_hms_opt(8, 15, 42)
        .unwrap()
}

fn n(v: f64) -> Value {
    Value::Number(v)
}

#[test]
fn heart_rate() {
    let d = decode(C::HeartRateMeasurement, &encode::heart_rate(72, None, &[])).unwrap();
    assert_eq!(d.measurements[0].value(), n(72.0));
    assert_eq!(d.sensor_contact, Some(SensorContact::NotSupported));
    let p = encode::heart_rate(300, Some(true), &[1024, 512]);
    assert_eq!(p[0] & 1, 1, "uint16 format above 255");
    let d = decode(C::HeartRateMeasurement, &p).unwrap();
    assert_eq!(d.measurements[0].value(), n(300.0));
    assert_eq!(d.sensor_contact, Some(SensorContact::Detected));
    assert_eq!(d.rr_intervals_s, vec![1.0, 0.5]);
    let d = decode(C::HeartRateMeasurement, &encode::heart_rate(0, Some(false), &[])).unwrap();
    assert_eq!(d.sensor_contact, Some(SensorContact::NotDetected));
    assert_eq!(encode::heart_rate(72, None, &[]), vec![0x00, 0x48]);
    assert_eq!(
        encode::heart_rate(60, Some(true), &[1024]),
        vec![0x16, 0x3C, 0x00, 0x04]
    );
}

#[test]
fn plx() {
    assert_eq!(
        encode::plx_continuous(n(97.0), n(72.0), None),
        vec![0x00, 0x61, 0x00, 0x48, 0x00]
    );
    let d = decode(
        C::PlxContinuousMeasurement,
        &encode::plx_continuous(n(96.5), Value::Special(Special::NaN), Some(n(3.2))),
    )
    .unwrap();
    let v: Vec<_> = d.measurements.iter().map(|m| (m.mdc, m.value())).collect();
    assert_eq!(
        v,
        vec![
            (150456, n(96.5)),
            (149530, Value::Special(Special::NaN)),
            (150488, n(3.2))
        ]
    );
    let d = decode(
        C::PlxSpotCheckMeasurement,
        &encode::plx_spot_check(n(99.0), n(61.0), Some(t())),
    )
    .unwrap();
    assert_eq!(d.device_time, Some(t()));
    assert_eq!(d.measurements[1].value(), n(61.0));
}

#[test]
fn temperature() {
    assert_eq!(
        encode::temperature(n(36.6), None, None),
        vec![0x00, 0x6E, 0x01, 0x00, 0xFF]
    );
    for c in [C::TemperatureMeasurement, C::IntermediateTemperature] {
        let d = decode(c, &encode::temperature(n(38.25), Some(t()), Some(6))).unwrap();
        assert_eq!(d.measurements[0].value(), n(38.25));
        assert_eq!(d.measurements[0].unit, "Cel");
        assert_eq!(d.measurements[0].exponent, Some(-2));
        assert_eq!(d.device_time, Some(t()));
        assert_eq!(d.site, Some("mouth"));
    }
}

#[test]
fn blood_pressure() {
    assert_eq!(
        encode::blood_pressure(n(120.0), n(80.0), n(93.3), None, None),
        vec![0x00, 0x78, 0x00, 0x50, 0x00, 0xA5, 0xF3]
    );
    let d = decode(
        C::BloodPressureMeasurement,
        &encode::blood_pressure(n(141.0), n(92.0), n(108.3), Some(t()), Some(n(77.0))),
    )
    .unwrap();
    let v: Vec<_> = d
        .measurements
        .iter()
        .map(|m| (m.mdc, m.value(), m.unit))
        .collect();
    assert_eq!(
        v,
        vec![
            (150021, n(141.0), "mm[Hg]"),
            (150022, n(92.0), "mm[Hg]"),
            (150023, n(108.3), "mm[Hg]"),
            (149546, n(77.0), "/min"),
        ]
    );
    assert_eq!(d.device_time, Some(t()));
    let d = decode(
        C::IntermediateCuffPressure,
        &encode::intermediate_cuff_pressure(n(160.0)),
    )
    .unwrap();
    assert_eq!(d.measurements.len(), 1);
    assert_eq!(
        (d.measurements[0].mdc, d.measurements[0].value()),
        (150300, n(160.0))
    );
}

#[test]
fn weight() {
    let d = decode(C::WeightMeasurement, &encode::weight_kg(n(70.12), Some(t()))).unwrap();
    assert_eq!(d.measurements[0].value(), n(70.12)); // 14024 × 0.005
    assert_eq!(d.device_time, Some(t()));
    let d = decode(C::WeightMeasurement, &encode::weight_kg(n(70.123), None)).unwrap();
    assert_eq!(d.measurements[0].value(), n(70.125)); // rounded to 0.005 kg
    for bad in [Value::Special(Special::NaN), n(-1.0), n(400.0)] {
        let d = decode(C::WeightMeasurement, &encode::weight_kg(bad, None)).unwrap();
        assert_eq!(d.status, vec!["measurement unsuccessful"]);
    }
}

#[test]
fn glucose() {
    let p = encode::glucose_mg_dl(9, t(), n(95.0));
    assert_eq!(
        p,
        vec![0x02, 0x09, 0x00, 0xE9, 0x07, 11, 25, 8, 15, 42, 0x5F, 0xB0, 0x11]
    );
    let d = decode(C::GlucoseMeasurement, &p).unwrap();
    assert_eq!(d.measurements[0].value(), n(95.0));
    assert_eq!(d.measurements[0].unit, "mg/dL");
    assert_eq!(d.sequence, Some(9));
    assert_eq!(d.device_time, Some(t()));
    for v in [42.0, 110.5, 399.0, 1234.0] {
        let d = decode(C::GlucoseMeasurement, &encode::glucose_mg_dl(1, t(), n(v))).unwrap();
        assert_eq!(d.measurements[0].value(), n(v));
    }
    let d = decode(
        C::GlucoseMeasurement,
        &encode::glucose_mg_dl(1, t(), Value::Special(Special::NRes)),
    )
    .unwrap();
    assert_eq!(d.measurements[0].value(), Value::Special(Special::NRes));
}

#[test]
fn battery_resp_rate_system_id() {
    let d = decode(C::BatteryLevel, &encode::battery(87)).unwrap();
    assert_eq!(d.battery_percent, Some(87));
    assert!(decode(C::BatteryLevel, &encode::battery(101)).is_err());
    let d = decode(C::SimRespRate, &encode::resp_rate(n(16.0))).unwrap();
    assert_eq!(d.measurements[0].value(), n(16.0));
    assert_eq!(encode::resp_rate(n(16.0)), vec![0x00, 0x10, 0x00]);
    let d = decode(C::SimRespRate, &encode::resp_rate(Value::Special(Special::NaN))).unwrap();
    assert_eq!(d.measurements[0].value(), Value::Special(Special::NaN));
    let d = decode(C::SystemId, &encode::system_id(0x123456, 0xFFFE9ABCDE)).unwrap();
    assert!(
        matches!(d.info, Some(DeviceInfoField::SystemId { ref eui64, .. }) if eui64 == "12-34-56-FF-FE-9A-BC-DE")
    );
}

#[test]
fn date_time() {
    assert_eq!(encode::date_time(t()), [0xE9, 0x07, 11, 25, 8, 15, 42]);
    let old = NaiveDate::from_ymd_opt(1500, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert_eq!(encode::date_time(old), [0; 7]);
}
