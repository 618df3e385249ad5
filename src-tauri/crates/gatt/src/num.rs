//! IEEE 11073-20601 decimal floats: 16-bit SFLOAT and 32-bit FLOAT.
//!
//! Health profiles send most clinical values in these formats so that a device
//! can say both the value and the resolution it measured at (36.6 is mantissa
//! 366, exponent -1). We keep mantissa and exponent instead of collapsing to an
//! `f64` early, so a screen can show the precision the device meant, and we
//! keep the reserved "special" values (NaN, NRes, ±INF) apart from numbers so
//! they can never reach a trend, an alarm or a FHIR valueQuantity.
//!
//! Reference: IEEE 11073-20601 Annex F.8 (FLOAT-Type) and F.9 (SFLOAT-Type),
//! as referenced by the Bluetooth GATT Specification Supplement (medfloat16 /
//! medfloat32).

use vigil_model::{Special, Value};

/// A finite decimal number as the device sent it: `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Float {
    pub mantissa: i32,
    pub exponent: i8,
}

impl Float {
    pub const fn new(mantissa: i32, exponent: i8) -> Self {
        Float { mantissa, exponent }
    }

    /// The nearest `f64`. For |exponent| ≤ 22 both the mantissa and the power
    /// of ten are exact in `f64`, so one multiplication or division gives the
    /// correctly rounded decimal (366 / 10 is exactly the double nearest 36.6).
    pub fn to_f64(self) -> f64 {
        let m = f64::from(self.mantissa);
        let e = i32::from(self.exponent);
        if e >= 0 {
            m * 10f64.powi(e)
        } else {
            m / 10f64.powi(-e)
        }
    }

    /// The same mantissa with the exponent moved by `by` (a decimal unit
    /// change such as kg/L → mg/dL, which is exactly ×10^5). `None` if the
    /// exponent would leave the `i8` range.
    pub fn shifted(self, by: i8) -> Option<Float> {
        self.exponent.checked_add(by).map(|exponent| Float {
            mantissa: self.mantissa,
            exponent,
        })
    }
}

/// A decoded SFLOAT/FLOAT: a finite number or one of the reserved values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Number {
    Finite(Float),
    Special(Special),
}

// Raw special values (exponent 0, mantissa at the edges of its range).
// IEEE 11073-20601 F.9: NaN +(2^11 − 1), NRes −(2^11), +INF +(2^11 − 2),
// −INF −(2^11 − 2), reserved −(2^11 − 1).
pub const SFLOAT_NAN: u16 = 0x07FF;
pub const SFLOAT_NRES: u16 = 0x0800;
pub const SFLOAT_POS_INF: u16 = 0x07FE;
pub const SFLOAT_NEG_INF: u16 = 0x0802;
pub const SFLOAT_RESERVED: u16 = 0x0801;
// IEEE 11073-20601 F.8: the same five values with a 24-bit mantissa.
pub const FLOAT_NAN: u32 = 0x007F_FFFF;
pub const FLOAT_NRES: u32 = 0x0080_0000;
pub const FLOAT_POS_INF: u32 = 0x007F_FFFE;
pub const FLOAT_NEG_INF: u32 = 0x0080_0002;
pub const FLOAT_RESERVED: u32 = 0x0080_0001;

/// Largest SFLOAT mantissa magnitude usable at exponent 0 (±2046..2047 and
/// −2048 are taken by the special values there).
const SFLOAT_SAFE: i32 = 2045;
const SFLOAT_MIN: i32 = -2048;
const SFLOAT_MAX: i32 = 2047;
const FLOAT_SAFE: i32 = 8_388_605;
const FLOAT_MIN: i32 = -8_388_608;
const FLOAT_MAX: i32 = 8_388_607;

impl Number {
    /// Decode a 16-bit SFLOAT: 4-bit signed exponent (high), 12-bit signed
    /// mantissa (low). The special values are defined only with exponent 0
    /// (F.9), so `0x17FF` is the number 20470, not NaN.
    pub fn from_sfloat(raw: u16) -> Number {
        match raw {
            SFLOAT_NAN => return Number::Special(Special::NaN),
            SFLOAT_NRES => return Number::Special(Special::NRes),
            SFLOAT_POS_INF => return Number::Special(Special::PosInfinity),
            SFLOAT_NEG_INF => return Number::Special(Special::NegInfinity),
            SFLOAT_RESERVED => return Number::Special(Special::Reserved),
            _ => {}
        }
        // Sign-extend the 12-bit mantissa and the 4-bit exponent.
        let mantissa = (i32::from(raw & 0x0FFF) << 20) >> 20;
        let exponent = ((raw >> 12) as i8) << 4 >> 4;
        Number::Finite(Float { mantissa, exponent })
    }

    /// Decode a 32-bit FLOAT: 8-bit signed exponent (high), 24-bit signed
    /// mantissa (low). Special values as for SFLOAT, exponent 0 (F.8).
    pub fn from_float(raw: u32) -> Number {
        match raw {
            FLOAT_NAN => return Number::Special(Special::NaN),
            FLOAT_NRES => return Number::Special(Special::NRes),
            FLOAT_POS_INF => return Number::Special(Special::PosInfinity),
            FLOAT_NEG_INF => return Number::Special(Special::NegInfinity),
            FLOAT_RESERVED => return Number::Special(Special::Reserved),
            _ => {}
        }
        let mantissa = ((raw & 0x00FF_FFFF) as i32) << 8 >> 8;
        let exponent = (raw >> 24) as u8 as i8;
        Number::Finite(Float { mantissa, exponent })
    }

    /// The value for the rest of Vigil: a number or a special value.
    pub fn value(self) -> Value {
        match self {
            Number::Finite(f) => Value::Number(f.to_f64()),
            Number::Special(s) => Value::Special(s),
        }
    }

    /// Move the decimal exponent (exact unit scaling); specials pass through.
    /// An exponent overflow becomes NRes ("not at this resolution").
    pub fn shifted(self, by: i8) -> Number {
        match self {
            Number::Finite(f) => f
                .shifted(by)
                .map_or(Number::Special(Special::NRes), Number::Finite),
            s @ Number::Special(_) => s,
        }
    }
}

/// Raw SFLOAT bits of a special value.
pub fn sfloat_special_bits(s: Special) -> u16 {
    match s {
        Special::NaN => SFLOAT_NAN,
        Special::NRes => SFLOAT_NRES,
        Special::PosInfinity => SFLOAT_POS_INF,
        Special::NegInfinity => SFLOAT_NEG_INF,
        Special::Reserved => SFLOAT_RESERVED,
    }
}

/// Raw FLOAT bits of a special value.
pub fn float_special_bits(s: Special) -> u32 {
    match s {
        Special::NaN => FLOAT_NAN,
        Special::NRes => FLOAT_NRES,
        Special::PosInfinity => FLOAT_POS_INF,
        Special::NegInfinity => FLOAT_NEG_INF,
        Special::Reserved => FLOAT_RESERVED,
    }
}

fn fits(mantissa: i64, exponent: i32, min: i32, max: i32, safe: i32) -> bool {
    if exponent == 0 {
        (-i64::from(safe)..=i64::from(safe)).contains(&mantissa)
    } else {
        (i64::from(min)..=i64::from(max)).contains(&mantissa)
    }
}

/// Mantissa of `v` at `exponent`, rounded half away from zero.
fn mantissa_at(v: f64, exponent: i32) -> f64 {
    if exponent >= 0 {
        (v / 10f64.powi(exponent)).round()
    } else {
        (v * 10f64.powi(-exponent)).round()
    }
}

/// Find (mantissa, exponent) for `v` starting at `exponent`, raising the
/// exponent (losing precision) until the mantissa fits; `None` if even the
/// largest exponent is not enough (the caller sends ±INF).
fn encode_finite(
    v: f64,
    exponent: i32,
    (emin, emax): (i32, i32),
    (min, max, safe): (i32, i32, i32),
) -> Option<(i32, i32)> {
    let mut e = exponent.clamp(emin, emax);
    while e <= emax {
        let m = mantissa_at(v, e);
        if m.is_finite() && m.abs() < 1e15 {
            let mi = m as i64;
            if fits(mi, e, min, max, safe) {
                return i32::try_from(mi).ok().map(|m| (m, e));
            }
        }
        e += 1;
    }
    None
}

fn infinity_for(v: f64) -> Special {
    if v < 0.0 {
        Special::NegInfinity
    } else {
        Special::PosInfinity
    }
}

/// Encode `v` as SFLOAT bits at the requested exponent (clamped to −8..=7).
/// If the mantissa does not fit in 12 bits the exponent is raised; NaN and
/// values beyond the range become the NaN / ±INF special values.
pub fn sfloat_bits(v: f64, exponent: i8) -> u16 {
    if v.is_nan() {
        return SFLOAT_NAN;
    }
    if v.is_infinite() {
        return sfloat_special_bits(infinity_for(v));
    }
    match encode_finite(
        v,
        i32::from(exponent),
        (-8, 7),
        (SFLOAT_MIN, SFLOAT_MAX, SFLOAT_SAFE),
    ) {
        Some((m, e)) => (((e as u16) & 0x0F) << 12) | ((m as u16) & 0x0FFF),
        None => sfloat_special_bits(infinity_for(v)),
    }
}

/// Encode `v` as FLOAT bits at the requested exponent (any `i8`).
pub fn float_bits(v: f64, exponent: i8) -> u32 {
    if v.is_nan() {
        return FLOAT_NAN;
    }
    if v.is_infinite() {
        return float_special_bits(infinity_for(v));
    }
    match encode_finite(
        v,
        i32::from(exponent),
        (-128, 127),
        (FLOAT_MIN, FLOAT_MAX, FLOAT_SAFE),
    ) {
        Some((m, e)) => (((e as u32) & 0xFF) << 24) | ((m as u32) & 0x00FF_FFFF),
        None => float_special_bits(infinity_for(v)),
    }
}

/// The coarsest exponent (from 0 down to `lowest`) at which `v` is exact to
/// within rounding noise and fits; else the finest exponent that fits; else 0
/// (the encoder then raises it). Used by the simulator so 36.6 is sent as
/// 366 × 10^-1 and 97 as 97 × 10^0.
pub(crate) fn auto_exponent(v: f64, lowest: i32, max_safe: i32) -> i8 {
    if !v.is_finite() {
        return 0;
    }
    let mut finest_fit = None;
    for k in 0..=(-lowest) {
        let scaled = v * 10f64.powi(k);
        let m = scaled.round();
        if m.abs() > f64::from(max_safe) {
            break;
        }
        finest_fit = Some(-k);
        if (scaled - m).abs() <= 1e-6 * m.abs().max(1.0) {
            return -k as i8;
        }
    }
    finest_fit.unwrap_or(0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension() {
        assert_eq!(Number::from_sfloat(0xF3A5), Number::Finite(Float::new(933, -1)));
        assert_eq!(Number::from_sfloat(0x0FFF), Number::Finite(Float::new(-1, 0)));
        assert_eq!(Number::from_sfloat(0x8000), Number::Finite(Float::new(0, -8)));
        assert_eq!(
            Number::from_float(0xFF00_016E),
            Number::Finite(Float::new(366, -1))
        );
        assert_eq!(
            Number::from_float(0x80FF_FFFF),
            Number::Finite(Float::new(-1, -128))
        );
    }

    #[test]
    fn exact_decimal() {
        assert_eq!(Float::new(366, -1).to_f64(), 36.6);
        assert_eq!(Float::new(933, -1).to_f64(), 93.3);
        assert_eq!(Float::new(95, 0).to_f64(), 95.0);
        assert_eq!(Float::new(-12, 2).to_f64(), -1200.0);
    }

    #[test]
    fn auto_exponent_picks_device_precision() {
        assert_eq!(auto_exponent(36.6, -8, SFLOAT_SAFE), -1);
        assert_eq!(auto_exponent(97.0, -8, SFLOAT_SAFE), 0);
        assert_eq!(auto_exponent(93.333, -8, SFLOAT_SAFE), -1);
        assert_eq!(auto_exponent(5000.0, -8, SFLOAT_SAFE), 0);
        assert_eq!(auto_exponent(0.001, -8, SFLOAT_SAFE), -3);
    }
}
