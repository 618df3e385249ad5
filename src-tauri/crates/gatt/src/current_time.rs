//! Current Time 0x2A2B (Current Time Service 1.1 §3.1; GSS "Current Time").
//!
//! 10 octets: Exact Time 256 = Day Date Time (Date Time: year uint16, month,
//! day, hours, minutes, seconds; then Day of Week uint8, 1 = Monday ..
//! 7 = Sunday, 0 = unknown, 8–255 RFU) + Fractions256 (uint8, 1/256 s), then
//! Adjust Reason (uint8 bit field: bit 0 manual time update, bit 1 external
//! reference time update, bit 2 change of time zone, bit 3 change of DST;
//! bits 4–7 RFU, ignored).
//!
//! This is the device's clock as read, not a measurement: the result has no
//! measurements and its [`crate::Decoded::device_time`] is the instant the
//! clock showed (fractions included), local and unsynchronised like every
//! device time; the pipeline uses it to learn the device's clock offset. The
//! reasons of the last adjustment go into `status`.
//!
//! An unknown date (year, month or day 0, which the Date Time field allows)
//! means the device's clock is not set: decoded as **no time**
//! (`device_time: None`), not as an error, since the device is within the
//! specification. A Day of Week in the RFU range is an error; a known Day of
//! Week is not checked against the date (it carries nothing the date does
//! not).

use chrono::TimeDelta;

use crate::reader::Reader;
use crate::{push_bits, DecodeError, Decoded, StatusBit};
use vigil_model::Quality;

/// Adjust Reason bits (4–7 RFU).
/// Why the clock was adjusted: says nothing about a measured value.
const ADJUST_REASON: &[StatusBit] = &[
    (0, "manual time update", Quality::Valid),
    (1, "external reference time update", Quality::Valid),
    (2, "change of time zone", Quality::Valid),
    (3, "change of DST", Quality::Valid),
];

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let time = r.date_time("exact time (Date Time)")?;
    let at = r.pos();
    let day_of_week = r.u8("day of week (uint8)")?;
    if day_of_week > 7 {
        return Err(r.invalid(
            at,
            format!("day of week {day_of_week} outside 1..=7 (0 = unknown)"),
        ));
    }
    let fractions = r.u8("fractions256 (uint8)")?;
    let reason = r.u8("adjust reason (uint8)")?;
    // 1/256 s = 3 906 250 ns exactly.
    out.device_time =
        time.and_then(|t| t.checked_add_signed(TimeDelta::nanoseconds(i64::from(fractions) * 3_906_250)));
    push_bits(out, u32::from(reason), ADJUST_REASON);
    Ok(())
}
