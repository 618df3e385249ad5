//! The 7-octet Date Time field (GATT Specification Supplement, characteristic
//! "Date Time" 0x2A08; org.bluetooth.characteristic.date_time): year uint16 (1582–9999,
//! 0 = not known), month uint8 (1–12, 0 = not known), day uint8 (1–31, 0 = not
//! known), hours (0–23), minutes (0–59), seconds (0–59).
//!
//! Device clocks are local and unsynchronised, so the result is a
//! `NaiveDateTime` "as the device said it"; relating it to UTC is the
//! pipeline's job. An unknown year, month or day gives `None` (no usable
//! time); a value outside its range, or a day that does not exist in its month
//! (31 April), is an error: the device is broken or we are misaligned.

use chrono::{NaiveDate, NaiveDateTime};

/// Parse the 7 octets. On error returns (offset within the 7 bytes, reason).
pub(crate) fn parse(raw: [u8; 7]) -> Result<Option<NaiveDateTime>, (usize, String)> {
    let [y0, y1, month, day, hour, minute, second] = raw;
    let year = u16::from_le_bytes([y0, y1]);
    if year != 0 && !(1582..=9999).contains(&year) {
        return Err((0, format!("year {year} outside 1582..=9999 (0 = unknown)")));
    }
    if month > 12 {
        return Err((2, format!("month {month} outside 1..=12 (0 = unknown)")));
    }
    if day > 31 {
        return Err((3, format!("day {day} outside 1..=31 (0 = unknown)")));
    }
    if hour > 23 {
        return Err((4, format!("hours {hour} outside 0..=23")));
    }
    if minute > 59 {
        return Err((5, format!("minutes {minute} outside 0..=59")));
    }
    if second > 59 {
        return Err((6, format!("seconds {second} outside 0..=59")));
    }
    if year == 0 || month == 0 || day == 0 {
        return Ok(None);
    }
    let date = NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
        .ok_or_else(|| (3, format!("day {day} does not exist in {year}-{month:02}")))?;
    date.and_hms_opt(u32::from(hour), u32::from(minute), u32::from(second))
        .map(Some)
        .ok_or_else(|| (4, "time of day out of range".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown() {
        let t = parse([0xE8, 0x07, 3, 15, 10, 30, 5]).unwrap().unwrap();
        assert_eq!(t.to_string(), "2024-03-15 10:30:05");
        assert_eq!(parse([0, 0, 3, 15, 10, 30, 5]).unwrap(), None);
        assert_eq!(parse([0xE8, 0x07, 0, 15, 10, 30, 5]).unwrap(), None);
        assert_eq!(parse([0xE8, 0x07, 2, 0, 0, 0, 0]).unwrap(), None);
    }

    #[test]
    fn invalid_fields() {
        assert_eq!(parse([0xE8, 0x07, 13, 1, 0, 0, 0]).unwrap_err().0, 2);
        assert_eq!(parse([0xE8, 0x07, 2, 30, 0, 0, 0]).unwrap_err().0, 3);
        assert_eq!(parse([0xE8, 0x07, 1, 1, 24, 0, 0]).unwrap_err().0, 4);
        assert_eq!(parse([0xE8, 0x07, 1, 1, 0, 60, 0]).unwrap_err().0, 5);
        assert_eq!(parse([0xE8, 0x07, 1, 1, 0, 0, 60]).unwrap_err().0, 6);
        assert_eq!(parse([0x01, 0x00, 1, 1, 0, 0, 0]).unwrap_err().0, 0);
    }
}
