//! IEEE 11073-20601 SFLOAT / FLOAT: special values, signs, exponents.

use vigil_gatt::encode;
use vigil_gatt::num::{Float, Number};
use vigil_model::{Special, Value};

fn finite(m: i32, e: i8) -> Number {
    Number::Finite(Float::new(m, e))
}

#[test]
fn sfloat_specials() {
    let cases = [
        (0x07FF, Special::NaN),
        (0x0800, Special::NRes),
        (0x07FE, Special::PosInfinity),
        (0x0802, Special::NegInfinity),
        (0x0801, Special::Reserved),
    ];
    for (raw, s) in cases {
        assert_eq!(Number::from_sfloat(raw), Number::Special(s));
        assert_eq!(Number::from_sfloat(raw).value(), Value::Special(s));
        assert_eq!(encode::sfloat_special(s), raw.to_le_bytes());
    }
}

#[test]
fn float_specials() {
    let cases = [
        (0x007F_FFFF, Special::NaN),
        (0x0080_0000, Special::NRes),
        (0x007F_FFFE, Special::PosInfinity),
        (0x0080_0002, Special::NegInfinity),
        (0x0080_0001, Special::Reserved),
    ];
    for (raw, s) in cases {
        assert_eq!(Number::from_float(raw), Number::Special(s));
        assert_eq!(encode::float32_special(s), raw.to_le_bytes());
    }
}

#[test]
fn specials_only_at_exponent_zero() {
    // Same mantissas with another exponent are ordinary numbers (F.8/F.9).
    assert_eq!(Number::from_sfloat(0x17FF), finite(2047, 1));
    assert_eq!(Number::from_sfloat(0xF800), finite(-2048, -1));
    assert_eq!(Number::from_sfloat(0x1802), finite(-2046, 1));
    assert_eq!(Number::from_float(0x017F_FFFF), finite(8_388_607, 1));
    assert_eq!(Number::from_float(0xFF80_0000), finite(-8_388_608, -1));
}

#[test]
fn sfloat_signs_and_exponents() {
    assert_eq!(Number::from_sfloat(0x0000), finite(0, 0));
    assert_eq!(Number::from_sfloat(0xFFFF), finite(-1, -1));
    assert_eq!(Number::from_sfloat(0xFFFF).value(), Value::Number(-0.1));
    assert_eq!(Number::from_sfloat(0x8800), finite(-2048, -8));
    assert_eq!(Number::from_sfloat(0x87FF), finite(2047, -8));
    assert_eq!(Number::from_sfloat(0x7FFF), finite(-1, 7));
    assert_eq!(Number::from_sfloat(0x7FFF).value(), Value::Number(-1e7));
    assert_eq!(Number::from_sfloat(0x77FF).value(), Value::Number(2.047e10));
    assert_eq!(Number::from_sfloat(0xE16D).value(), Value::Number(3.65));
    assert_eq!(Number::from_sfloat(0xFE93).value(), Value::Number(-36.5));
}

#[test]
fn float_signs_and_exponents() {
    assert_eq!(Number::from_float(0xFFFF_FFFF), finite(-1, -1));
    assert_eq!(Number::from_float(0x8080_0000), finite(-8_388_608, -128));
    assert_eq!(Number::from_float(0x7F00_0001), finite(1, 127));
    assert_eq!(Number::from_float(0xFE00_0E4A).value(), Value::Number(36.58));
    assert_eq!(Number::from_float(0xFFFF_FE93).value(), Value::Number(-36.5));
    assert_eq!(Number::from_float(0x0000_0000).value(), Value::Number(0.0));
}

#[test]
fn encoders_handle_out_of_range() {
    // exponent raised until the mantissa fits
    assert_eq!(
        Number::from_sfloat(u16::from_le_bytes(encode::sfloat(5000.0, 0))),
        finite(500, 1)
    );
    // at exponent 0, ±2046/2047 would collide with specials
    assert_eq!(
        Number::from_sfloat(u16::from_le_bytes(encode::sfloat(2046.0, 0))),
        finite(205, 1)
    );
    assert_eq!(
        Number::from_sfloat(u16::from_le_bytes(encode::sfloat(2045.0, 0))),
        finite(2045, 0)
    );
    // beyond the range: ±INF; NaN: NaN
    assert_eq!(
        encode::sfloat(1e30, 0),
        encode::sfloat_special(Special::PosInfinity)
    );
    assert_eq!(
        encode::sfloat(-1e30, 0),
        encode::sfloat_special(Special::NegInfinity)
    );
    assert_eq!(encode::sfloat(f64::NAN, 0), encode::sfloat_special(Special::NaN));
    assert_eq!(
        encode::sfloat(f64::INFINITY, -1),
        encode::sfloat_special(Special::PosInfinity)
    );
    assert_eq!(
        encode::float32(f64::NEG_INFINITY, 0),
        encode::float32_special(Special::NegInfinity)
    );
    // exponent clamped to the SFLOAT range, then raised until 12 bits suffice
    assert_eq!(
        Number::from_sfloat(u16::from_le_bytes(encode::sfloat(1.0, -20))),
        finite(1000, -3)
    );
    assert_eq!(
        Number::from_sfloat(u16::from_le_bytes(encode::sfloat(0.123, -8))),
        finite(1230, -4)
    );
}

#[test]
fn value_encoders_choose_the_precision() {
    let dec16 = |v: f64| Number::from_sfloat(u16::from_le_bytes(encode::sfloat_value(Value::Number(v))));
    assert_eq!(dec16(97.0), finite(97, 0));
    assert_eq!(dec16(36.6), finite(366, -1));
    assert_eq!(dec16(93.333), finite(933, -1));
    assert_eq!(dec16(-0.25), finite(-25, -2));
    let dec32 = |v: f64| Number::from_float(u32::from_le_bytes(encode::float32_value(Value::Number(v))));
    assert_eq!(dec32(36.6), finite(366, -1));
    assert_eq!(dec32(37.25), finite(3725, -2));
    assert_eq!(
        encode::float32_value(Value::Special(Special::NRes)),
        encode::float32_special(Special::NRes)
    );
}
