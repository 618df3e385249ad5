//! Encoders: typed values → characteristic payloads, for Vigil's simulator
//! (and for tests). The simulator builds the same bytes a real sensor would
//! send and feeds them through [`crate::decode`], so simulated and real data
//! share one decode path. Formats as in the decoding modules.
//!
//! Numbers that do not fit a format are handled, not panicked on: the
//! exponent is raised (losing precision) and beyond the range ±INFINITY is
//! sent; NaN becomes the NaN special value.

use chrono::{Datelike, NaiveDateTime, Timelike};
use vigil_model::{Special, Value};

use crate::num;

/// SFLOAT (IEEE 11073-20601 F.9) of `v` at `exponent` (clamped to −8..=7),
/// little-endian.
pub fn sfloat(v: f64, exponent: i8) -> [u8; 2] {
    num::sfloat_bits(v, exponent).to_le_bytes()
}

/// SFLOAT special value.
pub fn sfloat_special(s: Special) -> [u8; 2] {
    num::sfloat_special_bits(s).to_le_bytes()
}

/// SFLOAT of a [`Value`], choosing the exponent that shows the value's own
/// precision (36.6 → 366 × 10⁻¹, 97 → 97 × 10⁰).
pub fn sfloat_value(v: Value) -> [u8; 2] {
    match v {
        Value::Number(x) => sfloat(x, num::auto_exponent(x, -8, 2045)),
        Value::Special(s) => sfloat_special(s),
    }
}

/// FLOAT (IEEE 11073-20601 F.8) of `v` at `exponent`, little-endian.
pub fn float32(v: f64, exponent: i8) -> [u8; 4] {
    num::float_bits(v, exponent).to_le_bytes()
}

/// FLOAT special value.
pub fn float32_special(s: Special) -> [u8; 4] {
    num::float_special_bits(s).to_le_bytes()
}

/// FLOAT of a [`Value`], exponent chosen as in [`sfloat_value`].
pub fn float32_value(v: Value) -> [u8; 4] {
    match v {
        Value::Number(x) => float32(x, num::auto_exponent(x, -8, 8_388_605)),
        Value::Special(s) => float32_special(s),
    }
}

/// 7-octet Date Time. Years outside 1582..=9999 cannot be expressed and are
/// sent as "unknown" (all zero).
pub fn date_time(t: NaiveDateTime) -> [u8; 7] {
    let Ok(year) = u16::try_from(t.year()) else {
        return [0; 7];
    };
    if !(1582..=9999).contains(&year) {
        return [0; 7];
    }
    let [y0, y1] = year.to_le_bytes();
    // month 1..=12, day 1..=31, h/m/s fit in u8 by construction; the seconds
    // of a leap second (chrono's 60) are clamped to 59.
    [
        y0,
        y1,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second().min(59) as u8,
    ]
}

/// Heart Rate Measurement 0x2A37. `contact`: `None` = contact detection not
/// supported, `Some(false)` = supported but no contact, `Some(true)` =
/// contact. Uses the uint8 format when `bpm` ≤ 255.
pub fn heart_rate(bpm: u16, contact: Option<bool>, rr_intervals_1024: &[u16]) -> Vec<u8> {
    let mut flags = 0u8;
    match contact {
        None => {}
        Some(false) => flags |= 0b100,
        Some(true) => flags |= 0b110,
    }
    if !rr_intervals_1024.is_empty() {
        flags |= 0x10;
    }
    let narrow = u8::try_from(bpm).ok();
    if narrow.is_none() {
        flags |= 0x01;
    }
    let mut out = vec![flags];
    match narrow {
        Some(b) => out.push(b),
        None => out.extend(bpm.to_le_bytes()),
    }
    for rr in rr_intervals_1024 {
        out.extend(rr.to_le_bytes());
    }
    out
}

/// PLX Continuous Measurement 0x2A5F: SpO2 (%), pulse rate (bpm) and
/// optionally the Pulse Amplitude Index (%).
pub fn plx_continuous(spo2: Value, pr: Value, pai: Option<Value>) -> Vec<u8> {
    let mut out = vec![if pai.is_some() { 0x10 } else { 0x00 }];
    out.extend(sfloat_value(spo2));
    out.extend(sfloat_value(pr));
    if let Some(pai) = pai {
        out.extend(sfloat_value(pai));
    }
    out
}

/// PLX Spot-Check Measurement 0x2A5E: SpO2, pulse rate, optional timestamp.
pub fn plx_spot_check(spo2: Value, pr: Value, time: Option<NaiveDateTime>) -> Vec<u8> {
    let mut out = vec![if time.is_some() { 0x01 } else { 0x00 }];
    out.extend(sfloat_value(spo2));
    out.extend(sfloat_value(pr));
    if let Some(t) = time {
        out.extend(date_time(t));
    }
    out
}

/// Temperature Measurement 0x2A1C (same bytes serve Intermediate Temperature
/// 0x2A1E), in °C, with optional time stamp and temperature type (1–9).
pub fn temperature(celsius: Value, time: Option<NaiveDateTime>, temp_type: Option<u8>) -> Vec<u8> {
    let mut flags = 0u8;
    if time.is_some() {
        flags |= 0x02;
    }
    if temp_type.is_some() {
        flags |= 0x04;
    }
    let mut out = vec![flags];
    out.extend(float32_value(celsius));
    if let Some(t) = time {
        out.extend(date_time(t));
    }
    if let Some(tt) = temp_type {
        out.push(tt);
    }
    out
}

/// Blood Pressure Measurement 0x2A35 in mmHg, with optional time stamp and
/// pulse rate (bpm).
pub fn blood_pressure(
    sys: Value,
    dia: Value,
    map: Value,
    time: Option<NaiveDateTime>,
    pulse: Option<Value>,
) -> Vec<u8> {
    let mut flags = 0u8;
    if time.is_some() {
        flags |= 0x02;
    }
    if pulse.is_some() {
        flags |= 0x04;
    }
    let mut out = vec![flags];
    out.extend(sfloat_value(sys));
    out.extend(sfloat_value(dia));
    out.extend(sfloat_value(map));
    if let Some(t) = time {
        out.extend(date_time(t));
    }
    if let Some(p) = pulse {
        out.extend(sfloat_value(p));
    }
    out
}

/// Intermediate Cuff Pressure 0x2A36 in mmHg (unused fields NaN, BLS §3.2).
pub fn intermediate_cuff_pressure(cuff: Value) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend(sfloat_value(cuff));
    out.extend(sfloat_special(Special::NaN));
    out.extend(sfloat_special(Special::NaN));
    out
}

/// Weight Measurement 0x2A9D in SI units (0.005 kg steps, rounded), with an
/// optional time stamp. A special value (or a weight outside 0..=327.67 kg)
/// is sent as 0xFFFF "measurement unsuccessful".
pub fn weight_kg(kg: Value, time: Option<NaiveDateTime>) -> Vec<u8> {
    let raw = match kg {
        Value::Number(x) => {
            let steps = (x * 200.0).round();
            if (0.0..65535.0).contains(&steps) {
                steps as u16
            } else {
                0xFFFF
            }
        }
        Value::Special(_) => 0xFFFF,
    };
    let mut out = vec![if time.is_some() { 0x02 } else { 0x00 }];
    out.extend(raw.to_le_bytes());
    if let Some(t) = time {
        out.extend(date_time(t));
    }
    out
}

/// Glucose Measurement 0x2A18: capillary whole blood from a finger, given in
/// mg/dL and sent, as the GLS requires, in kg/L (mg/dL × 10⁻⁵).
pub fn glucose_mg_dl(sequence: u16, base_time: NaiveDateTime, mg_dl: Value) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend(sequence.to_le_bytes());
    out.extend(date_time(base_time));
    out.extend(match mg_dl {
        Value::Number(x) => {
            let e = num::auto_exponent(x, -3, 2045);
            sfloat(x / 100_000.0, e - 5)
        }
        Value::Special(s) => sfloat_special(s),
    });
    // Type 1 (capillary whole blood) in the low nibble, location 1 (finger)
    // in the high nibble.
    out.push(0x11);
    out
}

/// Current Time 0x2A2B (CTS 1.1 §3.1): Date Time, Day of Week (1 = Monday ..
/// 7 = Sunday), Fractions256, then `adjust_reason` (bit 0 manual time
/// update, bit 1 external reference, bit 2 time zone, bit 3 DST). `t` is the
/// device's local wall time. A year outside 1582..=9999 is sent as an unknown
/// date (Date Time and Day of Week zero).
pub fn current_time(t: NaiveDateTime, adjust_reason: u8) -> [u8; 10] {
    let [y0, y1, month, day, hour, minute, second] = date_time(t);
    let day_of_week = if y0 == 0 && y1 == 0 {
        0
    } else {
        t.weekday().number_from_monday() as u8
    };
    // Nanoseconds past 1e9 are a leap second (clamped to :59 above).
    let fractions256 = (u64::from(t.nanosecond().min(999_999_999)) * 256 / 1_000_000_000) as u8;
    [
        y0,
        y1,
        month,
        day,
        hour,
        minute,
        second,
        day_of_week,
        fractions256,
        adjust_reason,
    ]
}

/// Battery Level 0x2A19. Values above 100 are sent as they are (and rejected
/// by the decoder), so tests can exercise that path.
pub fn battery(pct: u8) -> Vec<u8> {
    vec![pct]
}

/// Vigil simulated respiration rate ([`crate::SIM_RESP_RATE`]): flags 0 +
/// SFLOAT breaths/min. Simulator only.
pub fn resp_rate(rate: Value) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend(sfloat_value(rate));
    out
}

/// System ID 0x2A23 from an OUI (24 bits) and a manufacturer-defined
/// identifier (40 bits); higher bits are dropped.
pub fn system_id(oui: u32, manufacturer_identifier: u64) -> [u8; 8] {
    let v = (u64::from(oui & 0x00FF_FFFF) << 40) | (manufacturer_identifier & 0xFF_FFFF_FFFF);
    v.to_le_bytes()
}
