//! Compact encoding of one series' samples before sealing.
//!
//! Format 2, per sample: the time as a delta of deltas
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
//! Format 4 (written now) holds the same fields column by column: the
//! count and first time, then all time changes, all tag bytes, all value
//! changes, then device times and statuses in sample order. A steady
//! series' times and tags become runs LZ4 all but removes, and the value
//! changes are bit-packed at the width the chunk needs, so a compacted 1 Hz
//! series with random one-decimal noise costs ~0.85 bytes a reading, where the
//! interleaved format 3 paid ~2.3 (its decimal scale changed at whole numbers).
//! Then LZ4. Formats 1 (plain time deltas, XOR only), 2 and 3 are still read.

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
const FORMAT_V4: u8 = 4;
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
    lz4_flex::compress_prepend_size(&encode_as(samples, FORMAT_V4))
}

/// [`encode`] for a chunk kept long (compaction's window chunks): also
/// tries byte-aligned values and keeps the smaller. Appends use
/// [`encode`] alone (their chunks are rewritten by compaction anyway).
pub fn encode_smallest(samples: &[Sample]) -> Vec<u8> {
    let packed = encode(samples);
    if samples.len() < 64 {
        return packed;
    }
    // Bit-packing wins on noisy values; byte-aligned varints win when the
    // values repeat (LZ4 finds the repeats): keep whichever is smaller.
    let aligned = lz4_flex::compress_prepend_size(&encode_with(samples, FORMAT_V4, false));
    if aligned.len() < packed.len() {
        aligned
    } else {
        packed
    }
}

/// [`encode`] without the LZ4 step: an ingest frame packs many series'
/// short runs and compresses them together (one LZ4 block, not one each).
pub fn encode_raw(samples: &[Sample]) -> Vec<u8> {
    encode_as(samples, FORMAT_V4)
}

/// Stream of each field: times, tags, values, the rest (device-time offsets
/// and status). Format 4 writes each to its own section; 3 interleaves them.
const T: usize = 0;
const G: usize = 1;
const V: usize = 2;
const X: usize = 3;

fn encode_as(samples: &[Sample], format: u8) -> Vec<u8> {
    encode_with(samples, format, true)
}

fn encode_with(samples: &[Sample], format: u8, bit_pack: bool) -> Vec<u8> {
    let columnar = format == FORMAT_V4;
    let m = if columnar { [T, G, V, X] } else { [0; 4] };
    let mut outs: [Vec<u8>; 4] = [
        Vec::with_capacity(4 + samples.len() * 3),
        Vec::with_capacity(if columnar { samples.len() } else { 0 }),
        Vec::with_capacity(if columnar { samples.len() * 2 } else { 0 }),
        Vec::new(),
    ];
    let mut prev_t = samples.first().map(|s| s.t).unwrap_or(0);
    let (mut prev_dt, mut prev_bits, mut prev_m, mut prev_off) = (0i64, 0u64, 0i64, 0i64);
    // Format 4 packs the value changes afterwards ([`pack`]); 3 writes varints.
    let mut vals: Option<Vec<u64>> = columnar.then(|| Vec::with_capacity(samples.len()));
    let push_val = |out: &mut Vec<u8>, vals: &mut Option<Vec<u64>>, v: u64| match vals {
        Some(vs) => vs.push(v),
        None => put_varint(out, v),
    };
    // Format 4: every decimal of the chunk at the finest scale any of them
    // needs, so 72 beside 71.6 is 720 beside 716 (a change of 4, not 644)
    // and the tag byte stays the same. Still exact: m·10^(K−k) / 10^K is
    // the same correctly rounded quotient as m / 10^k.
    let scale = if columnar {
        samples
            .iter()
            .filter_map(|s| s.value.number().and_then(as_decimal))
            .map(|(_, k)| k)
            .max()
    } else {
        None
    };
    let rescale = |(mt, k): (i64, u8)| -> (i64, u8) {
        match scale {
            Some(sk) if sk > k => mt
                .checked_mul(10i64.pow(u32::from(sk - k)))
                .filter(|m| m.abs() < 9.0e15 as i64)
                .map_or((mt, k), |m| (m, sk)),
            _ => (mt, k),
        }
    };
    for s in samples {
        let dt = s.t.wrapping_sub(prev_t);
        put_varint(&mut outs[m[T]], zigzag(dt.wrapping_sub(prev_dt)));
        (prev_t, prev_dt) = (s.t, dt);
        let off = s
            .device_time
            .map(|d| d.and_utc().timestamp_micros().wrapping_sub(s.t));
        let flag = if off.is_some() { HAS_DEVICE_TIME } else { 0 }
            | if s.status.is_empty() { 0 } else { HAS_STATUS };
        match s.value {
            Value::Number(v) => match as_decimal(v).map(rescale) {
                Some((mt, k)) => {
                    outs[m[G]].push(flag | KIND_DECIMAL | (k << 4));
                    push_val(&mut outs[m[V]], &mut vals, zigzag(mt.wrapping_sub(prev_m)));
                    prev_m = mt;
                }
                None => {
                    outs[m[G]].push(flag);
                    let bits = v.to_bits();
                    push_val(&mut outs[m[V]], &mut vals, (bits ^ prev_bits).swap_bytes());
                    prev_bits = bits;
                }
            },
            Value::Special(sp) => outs[m[G]].push(flag | special_tag(sp)),
        }
        let x = &mut outs[m[X]];
        if let Some(off) = off {
            put_varint(x, zigzag(off.wrapping_sub(prev_off)));
            prev_off = off;
        }
        if !s.status.is_empty() {
            x.push(quality_byte(s.status.quality));
            put_varint(x, s.status.flags.len() as u64);
            for f in &s.status.flags {
                put_varint(x, f.len() as u64);
                x.extend_from_slice(f.as_bytes());
            }
        }
    }
    if let Some(vs) = vals {
        outs[V] = pack(&vs, bit_pack);
    }
    let first = samples.first().map(|s| s.t).unwrap_or(0);
    let mut out = Vec::with_capacity(outs.iter().map(Vec::len).sum::<usize>() + 24);
    out.push(format);
    if columnar {
        // Like fields side by side: a steady series' times and tags become
        // long runs LZ4 all but removes; what is left is the value changes.
        put_varint(&mut out, samples.len() as u64);
        put_varint(&mut out, zigzag(first));
        for o in &outs[..3] {
            put_varint(&mut out, o.len() as u64);
        }
        for o in &outs {
            out.extend_from_slice(o);
        }
    } else {
        put_varint(&mut out, zigzag(first));
        out.extend_from_slice(&outs[0]);
    }
    out
}

/// Format 4's value changes: when all after the first fit in w ≤ 7 bits,
/// `w`, their count, the first as a varint and the rest w bits each (LSB
/// first); otherwise 0 and varints. A vital's
/// one-decimal changes need 5–6 bits, not a varint's 8 (LZ4 finds no
/// repeats in them to remove).
fn pack(vals: &[u64], bit_pack: bool) -> Vec<u8> {
    // The first change is from zero (the whole first value): not counted
    // in the width, it goes first as a varint.
    let max = vals.iter().skip(1).copied().max().unwrap_or(0);
    let w = (64 - max.leading_zeros()).max(1) as usize;
    let mut out = Vec::with_capacity(vals.len() + 4);
    if w > 7 || !bit_pack || vals.is_empty() {
        out.push(0);
        for &v in vals {
            put_varint(&mut out, v);
        }
        return out;
    }
    out.push(w as u8);
    put_varint(&mut out, vals.len() as u64);
    put_varint(&mut out, vals[0]);
    let (mut acc, mut bits) = (0u64, 0usize);
    for &v in &vals[1..] {
        acc |= v << bits;
        bits += w;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}

fn unpack(b: &[u8]) -> Result<Vec<u64>, CodecError> {
    let mut c = Cursor { b, pos: 0 };
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let w = c.byte()? as usize;
    let mut out = Vec::new();
    if w == 0 {
        while c.pos < b.len() {
            out.push(c.varint()?);
        }
        return Ok(out);
    }
    if w > 7 {
        return Err(CodecError::BadTag(0));
    }
    let n = c.varint()? as usize;
    if n == 0 {
        return Err(CodecError::BadTag(0));
    }
    out.push(c.varint()?);
    let body = &b[c.pos..];
    if body.len() != ((n - 1) * w).div_ceil(8) {
        return Err(CodecError::Truncated(c.pos));
    }
    out.reserve(n);
    let (mut acc, mut bits, mut i) = (0u64, 0usize, 0usize);
    let mask = (1u64 << w) - 1;
    for _ in 1..n {
        while bits < w {
            acc |= u64::from(body[i]) << bits;
            i += 1;
            bits += 8;
        }
        out.push(acc & mask);
        acc >>= w;
        bits -= w;
    }
    Ok(out)
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
    let (v2, v3, v4) = match fmt {
        FORMAT_V1 => (false, false, false),
        FORMAT_V2 => (true, false, false),
        FORMAT_V3 => (true, true, false),
        FORMAT_V4 => (true, true, true),
        other => return Err(CodecError::Format(other)),
    };
    // Format 4: the count, first time, then the sections' lengths.
    let mut vals: Vec<u64> = Vec::new();
    let (count, mut t, mut cs, m) = if v4 {
        let count = c.varint()? as usize;
        let t = unzigzag(c.varint()?);
        let mut at = 0;
        let mut lens = [0usize; 3];
        for l in &mut lens {
            *l = c.varint()? as usize;
        }
        let body = &raw[c.pos..];
        let mut cut = |len: usize| -> Result<&[u8], CodecError> {
            let end = at + len;
            let part = body.get(at..end).ok_or(CodecError::Truncated(c.pos + at))?;
            at = end;
            Ok(part)
        };
        let (a, b, d) = (cut(lens[0])?, cut(lens[1])?, cut(lens[2])?);
        let rest = &body[at..];
        let cur = |b| Cursor { b, pos: 0 };
        vals = unpack(d)?;
        (Some(count), t, [cur(a), cur(b), cur(&[]), cur(rest)], [T, G, V, X])
    } else {
        let t = unzigzag(c.varint()?);
        let rest = Cursor { b: raw, pos: c.pos };
        let none = || Cursor { b: &[], pos: 0 };
        (None, t, [rest, none(), none(), none()], [0; 4])
    };
    let (mut prev_dt, mut prev_bits, mut prev_m, mut prev_off) = (0i64, 0u64, 0i64, 0i64);
    let mut out = Vec::with_capacity(expected);
    let mut vi = 0;
    let mut val = |cs: &mut [Cursor<'_>; 4]| -> Result<u64, CodecError> {
        if v4 {
            let v = *vals.get(vi).ok_or(CodecError::Truncated(vi))?;
            vi += 1;
            Ok(v)
        } else {
            cs[0].varint()
        }
    };
    loop {
        match count {
            Some(n) if out.len() >= n => break,
            None if cs[0].pos >= cs[0].b.len() => break,
            _ => {}
        }
        let d = unzigzag(cs[m[T]].varint()?);
        let dt = if v2 { prev_dt.wrapping_add(d) } else { d };
        prev_dt = dt;
        t = t.wrapping_add(dt);
        let at = cs[m[G]].pos;
        let tag = cs[m[G]].byte()?;
        let kind = tag & 0x07;
        let value = match kind {
            0 => {
                prev_bits ^= val(&mut cs)?.swap_bytes();
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
                prev_m = prev_m.wrapping_add(unzigzag(val(&mut cs)?));
                Value::Number(prev_m as f64 / 10f64.powi(k as i32))
            }
            _ => return Err(CodecError::BadTag(at)),
        };
        let extra = if kind == KIND_DECIMAL { 0x80 } else { 0xf0 };
        let extra = if v3 { extra & !HAS_STATUS } else { extra };
        if tag & extra != 0 {
            return Err(CodecError::BadTag(at));
        }
        let c = &mut cs[m[X]];
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
                let end = c.pos.checked_add(len).filter(|e| *e <= c.b.len()).ok_or(CodecError::Truncated(c.pos))?;
                let name = std::str::from_utf8(&c.b[c.pos..end]).map_err(|_| CodecError::BadTag(at))?;
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
    // Format 4: every section read to its end, nothing after.
    if v4 && (cs.iter().any(|c| c.pos != c.b.len()) || vi != vals.len()) {
        return Err(CodecError::Count {
            expected,
            found: out.len(),
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
        let mut v2 = encode_as(&plain, FORMAT_V3);
        v2[0] = FORMAT_V2;
        let back = decode(&lz4_flex::compress_prepend_size(&v2), 100).unwrap();
        assert!(back.iter().all(|s| s.status.is_empty()));
        // A format 3 chunk (what Vigil wrote before format 4) is still read.
        let v3 = lz4_flex::compress_prepend_size(&encode_as(&flagged, FORMAT_V3));
        assert_eq!(decode(&v3, 100).unwrap(), flagged);
    }

    /// Issue 15: at rest ≤ 1.5 bytes per reading after compaction. A
    /// 10-minute window of a 1 Hz vital with random one-decimal noise must
    /// cost less than a byte a reading, and never more than format 3 did.
    #[test]
    fn a_compacted_window_of_a_noisy_1_hz_vital_costs_under_a_byte_a_reading() {
        let mut x = 0x2545F4914F6CDD1Du64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 21) as f64 / 10.0 - 1.0
        };
        let window = |noise: &mut dyn FnMut() -> f64| -> Vec<Sample> {
            (0..600i64)
                .map(|i| Sample {
                    t: 1_700_000_000_000_000 + i * 1_000_000,
                    value: Value::Number(((72.0 + noise()) * 10.0f64).round() / 10.0),
                    device_time: None,
                    status: Status::default(),
                })
                .collect()
        };
        let samples = window(&mut noise);
        let enc = encode_smallest(&samples);
        assert_eq!(decode(&enc, 600).unwrap(), samples);
        let v3 = lz4_flex::compress_prepend_size(&encode_as(&samples, FORMAT_V3));
        assert!(enc.len() < 540 && enc.len() < v3.len(), "{} bytes (format 3: {})", enc.len(), v3.len());
        // Values that repeat (a periodic pattern): still no worse than format 3.
        let periodic: Vec<Sample> = (0..600).map(|i| Sample { value: samples[i % 50].value, ..samples[i].clone() }).collect();
        let enc = encode_smallest(&periodic);
        assert_eq!(decode(&enc, 600).unwrap(), periodic);
        let v3 = lz4_flex::compress_prepend_size(&encode_as(&periodic, FORMAT_V3));
        assert!(enc.len() <= v3.len(), "{} bytes (format 3: {})", enc.len(), v3.len());
    }
}
