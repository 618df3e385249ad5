//! Weight Measurement 0x2A9D (Weight Scale Service 1.0 §3.1; GSS "Weight
//! Measurement").
//!
//! Flags: bit0 units (0 SI, 1 imperial), bit1 Time Stamp, bit2 User ID, bit3
//! BMI and Height present; bits 4–7 RFU (ignored on receipt). Weight uint16:
//! SI resolution 0.005 kg, imperial 0.01 lb; 0xFFFF is "Measurement
//! Unsuccessful". BMI uint16 resolution 0.1 (kg/m² whatever the units flag,
//! BMI is defined in kg/m²); height uint16: SI 0.001 m, imperial 0.1 in.
//! Fixed-point values are kept as exact decimals (mantissa, exponent) so that
//! 0.005 kg steps do not pick up binary rounding noise.

use vigil_model::codes::ucum;
use vigil_model::{Mdc, Quality, Special};

use crate::num::Number;
use crate::reader::Reader;
use crate::{DecodeError, Decoded, Measurement};

const UNSUCCESSFUL: u16 = 0xFFFF;

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    let imperial = flags & 0x01 != 0;
    let raw = r.u16("weight (uint16)")?;
    let unit = if imperial { ucum::LB } else { ucum::KG };
    if raw == UNSUCCESSFUL {
        // Not a weight: a special value so it never reaches a trend.
        out.measurements.push(Measurement::from_number(
            Mdc::MASS_BODY_ACTUAL,
            Number::Special(Special::NaN),
            unit,
        ));
        out.flag("measurement unsuccessful", Quality::Invalid);
    } else if imperial {
        out.measurements.push(Measurement::fixed(
            Mdc::MASS_BODY_ACTUAL,
            i32::from(raw),
            -2,
            unit,
        ));
    } else {
        out.measurements.push(Measurement::fixed(
            Mdc::MASS_BODY_ACTUAL,
            i32::from(raw) * 5,
            -3,
            unit,
        ));
    }
    if flags & 0x02 != 0 {
        out.device_time = r.date_time("time stamp (Date Time)")?;
    }
    if flags & 0x04 != 0 {
        out.user_id = Some(r.u8("user id (uint8)")?);
    }
    if flags & 0x08 != 0 {
        let bmi = r.u16("BMI (uint16)")?;
        let height = r.u16("height (uint16)")?;
        out.measurements.push(Measurement::fixed(
            Mdc::RATIO_MASS_BODY_LEN_SQ,
            i32::from(bmi),
            -1,
            ucum::KG_PER_M2,
        ));
        out.measurements.push(if imperial {
            Measurement::fixed(Mdc::LEN_BODY_ACTUAL, i32::from(height), -1, ucum::IN)
        } else {
            Measurement::fixed(Mdc::LEN_BODY_ACTUAL, i32::from(height), -3, ucum::M)
        });
    }
    Ok(())
}
