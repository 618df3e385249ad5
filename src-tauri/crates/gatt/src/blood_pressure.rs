//! Blood Pressure Measurement 0x2A35 and Intermediate Cuff Pressure 0x2A36
//! (Blood Pressure Service 1.0 §3.1, §3.2; GSS "Blood Pressure Measurement",
//! whose format Intermediate Cuff Pressure shares).
//!
//! Flags: bit0 units (0 mmHg, 1 kPa), bit1 Time Stamp, bit2 Pulse Rate, bit3
//! User ID, bit4 Measurement Status; bits 5–7 RFU (ignored on receipt).
//! Fields: systolic, diastolic, mean arterial pressure (SFLOAT each), Date
//! Time, pulse rate (SFLOAT, bpm), user id (uint8, 255 = unknown user),
//! measurement status (16 bit).
//!
//! In Intermediate Cuff Pressure the first SFLOAT is the *current cuff
//! pressure* while the cuff inflates/deflates, and the other two are unused
//! (BLS §3.2: set to NaN). It is reported as MDC_PRESS_CUFF, never as a
//! systolic pressure, so it cannot be trended or alarmed on as one; whatever
//! the device put in the unused fields is ignored.

use vigil_model::codes::ucum;
use vigil_model::{Mdc, Quality};

use crate::reader::Reader;
use crate::{push_bits, DecodeError, Decoded, Measurement, StatusBit};

/// Measurement Status bits (bits 3–4 are the pulse-rate range, below).
/// BLS Measurement Status: each bit casts doubt on the reading, none says it
/// is not a measurement at all.
const STATUS: &[StatusBit] = &[
    (0, "body movement detected", Quality::Questionable),
    (1, "cuff too loose", Quality::Questionable),
    (2, "irregular pulse detected", Quality::Questionable),
    (5, "improper measurement position", Quality::Questionable),
];

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded, intermediate: bool) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    let unit = if flags & 0x01 != 0 { ucum::KPA } else { ucum::MM_HG };
    if intermediate {
        let cuff = r.sfloat("current cuff pressure (SFLOAT)")?;
        r.sfloat("diastolic, unused (SFLOAT)")?;
        r.sfloat("mean arterial pressure, unused (SFLOAT)")?;
        out.measurements
            .push(Measurement::from_number(Mdc::PRESS_CUFF, cuff, unit));
    } else {
        let sys = r.sfloat("systolic (SFLOAT)")?;
        let dia = r.sfloat("diastolic (SFLOAT)")?;
        let map = r.sfloat("mean arterial pressure (SFLOAT)")?;
        out.measurements.extend([
            Measurement::from_number(Mdc::PRESS_BLD_NONINV_SYS, sys, unit),
            Measurement::from_number(Mdc::PRESS_BLD_NONINV_DIA, dia, unit),
            Measurement::from_number(Mdc::PRESS_BLD_NONINV_MEAN, map, unit),
        ]);
    }
    if flags & 0x02 != 0 {
        out.device_time = r.date_time("time stamp (Date Time)")?;
    }
    if flags & 0x04 != 0 {
        let pulse = r.sfloat("pulse rate (SFLOAT)")?;
        out.measurements.push(Measurement::from_number(
            Mdc::PULS_RATE_NON_INV,
            pulse,
            ucum::PER_MIN,
        ));
    }
    if flags & 0x08 != 0 {
        out.user_id = Some(r.u8("user id (uint8)")?);
    }
    if flags & 0x10 != 0 {
        let bits = r.u16("measurement status (16 bit)")?;
        push_bits(out, u32::from(bits), STATUS);
        // Pulse Rate Range Detection Flags, bits 3–4: 0 within range,
        // 1 exceeds upper limit, 2 less than lower limit, 3 RFU (ignored).
        match (bits >> 3) & 0x03 {
            1 => out.flag("pulse rate exceeds upper limit", Quality::Questionable),
            2 => out.flag("pulse rate less than lower limit", Quality::Questionable),
            _ => {}
        }
    }
    Ok(())
}
