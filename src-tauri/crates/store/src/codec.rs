//! Compact encoding of one series' samples before sealing.
//!
//! Format 2 (written now), per sample: the time as a delta of deltas
//! (zig-zag varint, µs: a steady 1 Hz device costs one byte), a tag byte
//! (value kind, decimal places, whether a device time follows), the value,
//! and the device-time offset as a change from the previous one. Devices
//! send decimal numbers (SFLOAT/FLOAT are mantissa × 10^exponent), so a value
//! that is exactly `m / 10^k` (k ≤ 6) is stored as the change of its mantissa
//! `m` — usually one byte; any other number falls back to the XOR of its bits
//! with the previous value's, byte-swapped so the run of equal low-order zero
//! bytes becomes a short varint (after Gorilla, Pelkonen et al. 2015).
//! Format 3 adds, when tag bit 7 is set, the device's status after the
//! device time: a quality byte, then the number of status flags and each as
//! a length-prefixed UTF-8 name (most samples have none and pay nothing).
//! Then LZ4. Formats 1 (plain time deltas, XOR only) and 2 are still read.

use chrono::{DateTime, NaiveDateTime};
use vigil_model::{Quality, Special, Status, Value};

/// One stored sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Received time, µs since the Unix epoch, UTC.
    pub t: i64,
    pub value: Value,
    pub device_time: Option<NaiveDateTime>,
    pub status: Status,
}

impl Sample {
    /// The number a trend counts: none for a special value or a value the
    /// device marked invalid.
    pub fn trend_value(&self) -> Option<f64> {
        self.value
            .number()
            .filter(|_| self.status.quality != Quality::Invalid)
    }
}

const FORMAT_V1: u8 = 1;
const HAS_DEVICE_TIME: u8 = 0x08;

fn special_tag(s: Special) -> u8 {
    match s {
        Special::NaN => 1,
        Special::NRes => 2,
        Special::PosInfinity => 3,
        Special::NegInfinity => 4,
        Special::Reserved => 5,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

const FORMAT_V2: u8 = 2;
const FORMAT_V3: u8 = 3;
const HAS_STATUS: u8 = 0x80;

fn quality_byte(q: Quality) -> u8 {
    match q {
        Quality::Valid => 0,
        Quality::Questionable => 1,
        Quality::Invalid => 2,
    }
}
/// Tag kind 6: a decimal number, its decimal places in bits 4–6.
const KIND_DECIMAL: u8 = 6;

/// `(m, k)` when `v` is exactly `m / 10^k` for some k ≤ 6.
fn as_decimal(v: f64) -> Option<(i64, u8)> {
    if !v.is_finite() {
        return None;
    }
    for k in 0..=6u8 {
        let scale = 10f64.powi(k as i32);
        let m = (v * scale).round();
        if m.abs() < 9.0e15 && m / scale == v && !(v == 0.0 && v.is_sign_negative()) {
            return Some((m as i64, k));
        }
    }
    None
}

pub fn encode(samples: &[Sample]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(&encode_raw(samples))
}

/// [`encode`] without the LZ4 step: an ingest frame packs many series'
/// short runs and compresses them together (one LZ4 block, not one each).
pub fn encode_raw(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * 3);
    out.push(FORMAT_V3);
    let mut prev_t = samples.first().map(|s| s.t).unwrap_or(0);
    put_varint(&mut out, zigzag(prev_t));
    let (mut prev_dt, mut prev_bits, mut prev_m, mut prev_off) = (0i64, 0u64, 0i64, 0i64);
    for s in samples {
        let dt = s.t.wrapping_sub(prev_t);
        put_varint(&mut out, zigzag(dt.wrapping_sub(prev_dt)));
        (prev_t, prev_dt) = (s.t, dt);
        let off = s
            .device_time
            .map(|d| d.and_utc().timestamp_micros().wrapping_sub(s.t));
        let flag = if off.is_some() { HAS_DEVICE_TIME } else { 0 }
            | if s.status.is_empty() { 0 } else { HAS_STATUS };
        match s.value {
            Value::Number(v) => match as_decimal(v) {
                Some((m, k)) => {
                    out.push(flag | KIND_DECIMAL | (k << 4));
                    put_varint(&mut out, zigzag(m.wrapping_sub(prev_m)));
                    prev_m = m;
                }
                None => {
                    out.push(flag);
                    let bits = v.to_bits();
                    put_varint(&mut out, (bits ^ prev_bits).swap_bytes());
                    prev_bits = bits;
                }
            },
            Value::Special(sp) => out.push(flag | special_tag(sp)),
        }
        if let Some(off) = off {
            put_varint(&mut out, zigzag(off.wrapping_sub(prev_off)));
            prev_off = off;
        }
        if !s.status.is_empty() {
            out.push(quality_byte(s.status.quality));
            put_varint(&mut out, s.status.flags.len() as u64);
            for f in &s.status.flags {
                put_varint(&mut out, f.len() as u64);
                out.extend_from_slice(f.as_bytes());
            }
        }
    }
    out
}

/// Why a chunk that authenticated could still not be decoded (a bug or a
/// format from a newer Vigil, never silently skipped).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("chunk does not decompress")]
    Decompress,
    #[error("unknown chunk format {0}")]
    Format(u8),
    #[error("chunk ends early at byte {0}")]
    Truncated(usize),
    #[error("chunk has a bad tag at byte {0}")]
    BadTag(usize),
    #[error("chunk holds {found} samples but its header says {expected}")]
    Count { expected: usize, found: usize },
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let v = *self.b.get(self.pos).ok_or(CodecError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(v)
    }
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Truncated(self.pos))
    }
}

pub fn decode(data: &[u8], expected: usize) -> Result<Vec<Sample>, CodecError> {
    let raw = zeroize::Zeroizing::new(
        lz4_flex::decompress_size_prepended(data).map_err(|_| CodecError::Decompress)?,
    );
    decode_raw(&raw, expected)
}

/// [`decode`] of what [`encode_raw`] wrote (already decompressed).
pub fn decode_raw(raw: &[u8], expected: usize) -> Result<Vec<Sample>, CodecError> {
    let mut c = Cursor { b: raw, pos: 0 };
    let fmt = c.byte()?;
    let (v2, v3) = match fmt {
        FORMAT_V1 => (false, false),
        FORMAT_V2 => (true, false),
        FORMAT_V3 => (true, true),
        other => return Err(CodecError::Format(other)),
    };
    let mut t = unzigzag(c.varint()?);
    let (mut prev_dt, mut prev_bits, mut prev_m, mut prev_off) = (0i64, 0u64, 0i64, 0i64);
    let mut out = Vec::with_capacity(expected);
    while c.pos < raw.len() {
        let d = unzigzag(c.varint()?);
        let dt = if v2 { prev_dt.wrapping_add(d) } else { d };
        prev_dt = dt;
        t = t.wrapping_add(dt);
        let at = c.pos;
        let tag = c.byte()?;
        let kind = tag & 0x07;
        let value = match kind {
            0 => {
                prev_bits ^= c.varint()?.swap_bytes();
                Value::Number(f64::from_bits(prev_bits))
            }
            1 => Value::Special(Special::NaN),
            2 => Value::Special(Special::NRes),
            3 => Value::Special(Special::PosInfinity),
            4 => Value::Special(Special::NegInfinity),
            5 => Value::Special(Special::Reserved),
            KIND_DECIMAL if v2 => {
                let k = (tag >> 4) & 0x07;
                if k > 6 {
                    return Err(CodecError::BadTag(at));
                }
                prev_m = prev_m.wrapping_add(unzigzag(c.varint()?));
                Value::Number(prev_m as f64 / 10f64.powi(k as i32))
            }
            _ => return Err(CodecError::BadTag(at)),
        };
        let extra = if kind == KIND_DECIMAL { 0x80 } else { 0xf0 };
        let extra = if v3 { extra & !HAS_STATUS } else { extra };
        if tag & extra != 0 {
            return Err(CodecError::BadTag(at));
        }
        let device_time = if tag & HAS_DEVICE_TIME != 0 {
            let raw_off = unzigzag(c.varint()?);
            let off = if v2 {
                prev_off.wrapping_add(raw_off)
            } else {
                raw_off
            };
            prev_off = off;
            let us = t.wrapping_add(off);
            Some(
                DateTime::from_timestamp_micros(us)
                    .ok_or(CodecError::BadTag(at))?
                    .naive_utc(),
            )
        } else {
            None
        };
        let status = if tag & HAS_STATUS != 0 && v3 {
            let quality = match c.byte()? {
                0 => Quality::Valid,
                1 => Quality::Questionable,
                2 => Quality::Invalid,
                _ => return Err(CodecError::BadTag(at)),
            };
            let n = c.varint()? as usize;
            let mut flags = Vec::with_capacity(n.min(16));
            for _ in 0..n {
                let len = c.varint()? as usize;
                let end = c.pos.checked_add(len).filter(|e| *e <= raw.len()).ok_or(CodecError::Truncated(c.pos))?;
                let name = std::str::from_utf8(&raw[c.pos..end]).map_err(|_| CodecError::BadTag(at))?;
                flags.push(name.to_string());
                c.pos = end;
            }
            Status { quality, flags }
        } else {
            Status::default()
        };
        out.push(Sample {
            t,
            value,
            device_time,
            status,
        });
    }
    if out.len() != expected {
        return Err(CodecError::Count {
            expected,
            found: out.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: 1_700_000_000_000_000 + i as i64 * 1_000_000 + (i as i64 % 3) * 17,
                value: Value::Number(*v),
                device_time: (i % 2 == 0).then(|| {
                    DateTime::from_timestamp_micros(1_700_000_000_000_000 + i as i64 * 999_000)
                        .unwrap()
                        .naive_utc()
                }),
                status: Status::default(),
            })
            .collect();
        let enc = encode(&samples);
        let back = decode(&enc, samples.len()).unwrap();
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!(a.t, b.t);
            assert_eq!(a.device_time, b.device_time);
            let (Value::Number(x), Value::Number(y)) = (a.value, b.value) else {
                panic!()
            };
            assert_eq!(x.to_bits(), y.to_bits(), "{x} came back as {y}");
        }
        enc
    }

    #[test]
    fn decimals_and_other_numbers_round_trip_bit_exactly() {
        round_trip(&[
            36.6,
            36.7,
            120.0,
            -0.0,
            0.0,
            0.1 + 0.2,
            1e-9,
            98.123456,
            1e300,
            f64::MIN_POSITIVE,
            -72.25,
            5e15,
        ]);
    }

    #[test]
    fn a_steady_decimal_series_costs_about_a_byte_or_two() {
        let values: Vec<f64> = (0..600).map(|i| 60.0 + ((i * 7) % 13) as f64 / 10.0).collect();
        let enc = round_trip(&values);
        assert!(enc.len() < 600 * 4, "{} bytes for 600 samples", enc.len());
    }

    #[test]
    fn device_status_round_trips_and_costs_nothing_when_absent() {
        let plain: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: 1_700_000_000_000_000 + i * 1_000_000,
                value: Value::Number(120.0 + (i % 5) as f64),
                device_time: None,
                status: Status::default(),
            })
            .collect();
        let mut flagged = plain.clone();
        flagged[3].status = Status {
            quality: Quality::Questionable,
            flags: vec!["cuff too loose".into(), "body movement detected".into()],
        };
        flagged[7].status = Status {
            quality: Quality::Invalid,
            flags: vec!["sensor disconnected".into()],
        };
        flagged[8].value = Value::Special(Special::NaN);
        flagged[8].status = Status {
            quality: Quality::Invalid,
            flags: vec![],
        };
        assert_eq!(decode(&encode(&flagged), 100).unwrap(), flagged);
        assert_eq!(decode(&encode(&plain), 100).unwrap(), plain);
        // A format 2 chunk (no status) is still read, every sample valid.
        let mut v2 = lz4_flex::decompress_size_prepended(&encode(&plain)).unwrap();
        v2[0] = FORMAT_V2;
        let back = decode(&lz4_flex::compress_prepend_size(&v2), 100).unwrap();
        assert!(back.iter().all(|s| s.status.is_empty()));
    }
}
