//! Compact encoding of one series' samples before sealing.
//!
//! Per sample: time delta (zig-zag varint, µs), a tag byte (value kind and
//! whether a device time follows), the value as the XOR with the previous
//! value's bits, byte-swapped so that the usual long run of equal low-order
//! zero bytes becomes a short varint (the idea of Gorilla, Pelkonen et al.
//! 2015, in byte form), and the device-time offset. Then LZ4.

use chrono::{DateTime, NaiveDateTime};
use vigil_model::{Special, Value};

/// One stored sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Received time, µs since the Unix epoch, UTC.
    pub t: i64,
    pub value: Value,
    pub device_time: Option<NaiveDateTime>,
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

pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * 6);
    out.push(FORMAT_V1);
    let mut prev_t = samples.first().map(|s| s.t).unwrap_or(0);
    put_varint(&mut out, zigzag(prev_t));
    let mut prev_bits = 0u64;
    for s in samples {
        put_varint(&mut out, zigzag(s.t.wrapping_sub(prev_t)));
        prev_t = s.t;
        let dt = s.device_time.map(|d| d.and_utc().timestamp_micros());
        let flag = if dt.is_some() { HAS_DEVICE_TIME } else { 0 };
        match s.value {
            Value::Number(v) => {
                out.push(flag);
                let bits = v.to_bits();
                put_varint(&mut out, (bits ^ prev_bits).swap_bytes());
                prev_bits = bits;
            }
            Value::Special(sp) => out.push(flag | special_tag(sp)),
        }
        if let Some(dt) = dt {
            put_varint(&mut out, zigzag(dt.wrapping_sub(s.t)));
        }
    }
    lz4_flex::compress_prepend_size(&out)
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
    let mut c = Cursor { b: &raw, pos: 0 };
    let fmt = c.byte()?;
    if fmt != FORMAT_V1 {
        return Err(CodecError::Format(fmt));
    }
    let mut t = unzigzag(c.varint()?);
    let mut prev_bits = 0u64;
    let mut out = Vec::with_capacity(expected);
    while c.pos < raw.len() {
        t = t.wrapping_add(unzigzag(c.varint()?));
        let at = c.pos;
        let tag = c.byte()?;
        let value = match tag & 0x07 {
            0 => {
                prev_bits ^= c.varint()?.swap_bytes();
                Value::Number(f64::from_bits(prev_bits))
            }
            1 => Value::Special(Special::NaN),
            2 => Value::Special(Special::NRes),
            3 => Value::Special(Special::PosInfinity),
            4 => Value::Special(Special::NegInfinity),
            5 => Value::Special(Special::Reserved),
            _ => return Err(CodecError::BadTag(at)),
        };
        if tag & !0x0f != 0 {
            return Err(CodecError::BadTag(at));
        }
        let device_time = if tag & HAS_DEVICE_TIME != 0 {
            let us = t.wrapping_add(unzigzag(c.varint()?));
            Some(
                DateTime::from_timestamp_micros(us)
                    .ok_or(CodecError::BadTag(at))?
                    .naive_utc(),
            )
        } else {
            None
        };
        out.push(Sample {
            t,
            value,
            device_time,
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
