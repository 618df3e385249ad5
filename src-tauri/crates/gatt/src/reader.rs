//! A bounds-checked cursor over one characteristic value.
//!
//! Every read names the field it is reading, so a short payload produces an
//! error that says which field of which characteristic was cut off and at
//! which byte, instead of a panic or a silently wrong number. All multi-octet
//! fields are little-endian: every characteristic table in the GATT
//! Specification Supplement lists fields "in the order of LSO to MSO".

use chrono::NaiveDateTime;

use crate::num::Number;
use crate::{datetime, Characteristic, DecodeError};

pub(crate) struct Reader<'a> {
    ch: Characteristic,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(ch: Characteristic, bytes: &'a [u8]) -> Self {
        Reader { ch, bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                characteristic: self.ch.label(),
                offset: self.pos,
                needed: n,
                available: self.remaining(),
                field,
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array::<1>(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u24(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array(field)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// IEEE 11073-20601 SFLOAT (GSS "medfloat16").
    pub(crate) fn sfloat(&mut self, field: &'static str) -> Result<Number, DecodeError> {
        Ok(Number::from_sfloat(self.u16(field)?))
    }

    /// IEEE 11073-20601 FLOAT (GSS "medfloat32").
    pub(crate) fn float(&mut self, field: &'static str) -> Result<Number, DecodeError> {
        Ok(Number::from_float(u32::from_le_bytes(self.array(field)?)))
    }

    /// A 7-octet Date Time; `None` when the device says the date is unknown.
    pub(crate) fn date_time(&mut self, field: &'static str) -> Result<Option<NaiveDateTime>, DecodeError> {
        let start = self.pos;
        let raw = self.array::<7>(field)?;
        datetime::parse(raw).map_err(|(at, reason)| self.invalid(start + at, reason))
    }

    pub(crate) fn invalid(&self, offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            characteristic: self.ch.label(),
            offset,
            reason: reason.into(),
        }
    }

    /// Everything must have been consumed: a longer payload means the flags
    /// and the data disagree, which we do not guess about.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                characteristic: self.ch.label(),
                offset: self.pos,
                extra,
            }),
        }
    }
}
