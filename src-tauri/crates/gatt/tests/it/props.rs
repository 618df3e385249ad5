//! Property tests: no input panics; numeric formats round-trip.

use chrono::NaiveDate;
use proptest::prelude::*;
use vigil_gatt::num::{Float, Number};
use vigil_gatt::{decode, encode, parse_hex, Characteristic, SensorContact};
use vigil_model::{Special, Value};

fn any_characteristic() -> impl Strategy<Value = Characteristic> {
    proptest::sample::select(Characteristic::ALL.to_vec())
}

fn encode_number16(n: Number) -> [u8; 2] {
    match n {
        Number::Finite(f) => encode::sfloat(f.to_f64(), f.exponent),
        Number::Special(s) => encode::sfloat_special(s),
    }
}

fn encode_number32(n: Number) -> [u8; 4] {
    match n {
        Number::Finite(f) => encode::float32(f.to_f64(), f.exponent),
        Number::Special(s) => encode::float32_special(s),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(c in any_characteristic(), bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        if let Ok(d) = decode(c, &bytes) {
            prop_assert_eq!(&d.characteristic, &c.short_id());
            prop_assert!(serde_json::to_string(&d).is_ok());
        }
    }

    /// Plausible payloads: a flags byte with the low bits varied and a body
    /// long enough to hold every optional field, truncated at random.
    #[test]
    fn flagged_payloads_never_panic(
        c in any_characteristic(),
        flags in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..40),
        cut in 0usize..41,
    ) {
        let mut p = vec![flags];
        p.extend(body.iter().take(cut));
        let _ = decode(c, &p);
    }

    #[test]
    fn sfloat_bits_round_trip(raw in any::<u16>()) {
        let n = Number::from_sfloat(raw);
        prop_assert_eq!(encode_number16(n), raw.to_le_bytes());
    }

    #[test]
    fn float_bits_round_trip(raw in any::<u32>()) {
        let n = Number::from_float(raw);
        prop_assert_eq!(encode_number32(n), raw.to_le_bytes());
    }

    #[test]
    fn sfloat_mantissa_exponent_round_trip(m in -2045i32..=2045, e in -8i8..=7) {
        let v = Float::new(m, e).to_f64();
        let back = Number::from_sfloat(u16::from_le_bytes(encode::sfloat(v, e)));
        prop_assert_eq!(back, Number::Finite(Float::new(m, e)));
    }

    #[test]
    fn float_mantissa_exponent_round_trip(m in -8_388_605i32..=8_388_605, e in any::<i8>()) {
        let v = Float::new(m, e).to_f64();
        let back = Number::from_float(u32::from_le_bytes(encode::float32(v, e)));
        prop_assert_eq!(back, Number::Finite(Float::new(m, e)));
    }

    #[test]
    fn sfloat_value_is_close(v in -2000.0f64..2000.0) {
        let back = Number::from_sfloat(u16::from_le_bytes(encode::sfloat_value(Value::Number(v))));
        match back.value() {
            // 12-bit mantissa: one decimal below 204.5, whole numbers above.
            Value::Number(x) => {
                let tol = if v.abs() < 204.0 { 0.05 } else { 0.5 };
                prop_assert!((x - v).abs() <= tol + 1e-9, "{} vs {}", x, v)
            }
            Value::Special(s) => prop_assert!(false, "special {:?}", s),
        }
    }

    #[test]
    fn specials_round_trip(i in 0usize..5) {
        let s = [Special::NaN, Special::NRes, Special::PosInfinity, Special::NegInfinity, Special::Reserved][i];
        prop_assert_eq!(Number::from_sfloat(u16::from_le_bytes(encode::sfloat_special(s))), Number::Special(s));
        prop_assert_eq!(Number::from_float(u32::from_le_bytes(encode::float32_special(s))), Number::Special(s));
    }

    #[test]
    fn heart_rate_builder_round_trips(
        bpm in any::<u16>(),
        contact in proptest::option::of(any::<bool>()),
        rr in proptest::collection::vec(any::<u16>(), 0..9),
    ) {
        let d = decode(Characteristic::HeartRateMeasurement, &encode::heart_rate(bpm, contact, &rr)).unwrap();
        prop_assert_eq!(d.measurements[0].value, Some(f64::from(bpm)));
        let want = match contact {
            None => SensorContact::NotSupported,
            Some(false) => SensorContact::NotDetected,
            Some(true) => SensorContact::Detected,
        };
        prop_assert_eq!(d.sensor_contact, Some(want));
        let rr_s: Vec<f64> = rr.iter().map(|&r| f64::from(r) / 1024.0).collect();
        prop_assert_eq!(d.rr_intervals_s, rr_s);
    }

    #[test]
    fn date_time_round_trips(
        y in 1582i32..=9999, mo in 1u32..=12, dd in 1u32..=28,
        h in 0u32..24, mi in 0u32..60, s in 0u32..60,
    ) {
        let t = NaiveDate::from_ymd_opt(y, mo, dd).unwrap().and_hms_opt(h, mi, s).unwrap();
        let p = encode::temperature(Value::Number(37.0), Some(t), None);
        let d = decode(Characteristic::TemperatureMeasurement, &p).unwrap();
        prop_assert_eq!(d.device_time, Some(t));
    }

    #[test]
    fn vital_builders_round_trip(
        spo2 in 700u32..=1000, pr in 20u32..=250, sys in 60u32..=250, temp in 300u32..=430,
    ) {
        let spo2 = f64::from(spo2) / 10.0;
        let temp = f64::from(temp) / 10.0;
        let d = decode(
            Characteristic::PlxContinuousMeasurement,
            &encode::plx_continuous(Value::Number(spo2), Value::Number(f64::from(pr)), None),
        ).unwrap();
        prop_assert_eq!(d.measurements[0].value, Some(spo2));
        prop_assert_eq!(d.measurements[1].value, Some(f64::from(pr)));
        let d = decode(
            Characteristic::TemperatureMeasurement,
            &encode::temperature(Value::Number(temp), None, None),
        ).unwrap();
        prop_assert_eq!(d.measurements[0].value, Some(temp));
        let s = f64::from(sys);
        let d = decode(
            Characteristic::BloodPressureMeasurement,
            &encode::blood_pressure(Value::Number(s), Value::Number(s / 2.0), Value::Number(s * 2.0 / 3.0), None, None),
        ).unwrap();
        prop_assert_eq!(d.measurements[0].value, Some(s));
        prop_assert_eq!(d.measurements[1].value, Some(s / 2.0));
        let d = decode(Characteristic::SimRespRate, &encode::resp_rate(Value::Number(f64::from(pr) / 10.0))).unwrap();
        prop_assert_eq!(d.measurements[0].value, Some(f64::from(pr) / 10.0));
    }

    #[test]
    fn parse_hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..32), sep in 0usize..4) {
        let sep = [" ", "", ":", " 0x"][sep];
        let s = bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(sep);
        prop_assert_eq!(parse_hex(&s).unwrap(), bytes);
    }

    #[test]
    fn uuid_parsing_never_panics(s in ".{0,40}") {
        let _ = Characteristic::from_uuid_str(&s);
        let _ = parse_hex(&s);
    }
}
