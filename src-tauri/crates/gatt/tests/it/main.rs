//! One integration-test binary for vigil-gatt (one link step on a busy
//! machine); one module per area.

mod characteristic;
mod current_time;
mod device;
mod encode;
mod examples;
mod json;
mod numbers;
mod profiles;
mod props;

use vigil_gatt::{decode, parse_hex, Characteristic, DecodeError, Decoded};

pub fn ch(s: &str) -> Characteristic {
    Characteristic::from_uuid_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn try_dec(c: &str, hex: &str) -> Result<Decoded, DecodeError> {
    decode(ch(c), &parse_hex(hex).unwrap_or_else(|e| panic!("{hex}: {e}")))
}

pub fn dec(c: &str, hex: &str) -> Decoded {
    try_dec(c, hex).unwrap_or_else(|e| panic!("{c} [{hex}]: {e}"))
}

pub fn err(c: &str, hex: &str) -> DecodeError {
    match try_dec(c, hex) {
        Ok(d) => panic!("{c} [{hex}] decoded, expected an error: {d:?}"),
        Err(e) => e,
    }
}

/// (mdc, value, unit) of every primary measurement.
pub fn vals(d: &Decoded) -> Vec<(u32, Option<f64>, &'static str)> {
    d.measurements.iter().map(|m| (m.mdc, m.value, m.unit)).collect()
}

#[track_caller]
pub fn assert_truncated(e: DecodeError, offset: usize, needed: usize, available: usize) {
    match e {
        DecodeError::Truncated {
            offset: o,
            needed: n,
            available: a,
            ..
        } => assert_eq!((o, n, a), (offset, needed, available), "{e}"),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_trailing(e: DecodeError, offset: usize, extra: usize) {
    match e {
        DecodeError::TrailingBytes {
            offset: o, extra: x, ..
        } => assert_eq!((o, x), (offset, extra), "{e}"),
        other => panic!("expected TrailingBytes, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_invalid(e: DecodeError, offset: usize) {
    match e {
        DecodeError::Invalid { offset: o, .. } => assert_eq!(o, offset, "{e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Little-endian hex of a byte slice, space separated.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
