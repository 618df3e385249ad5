//! Glucose Measurement 0x2A18 (Glucose Service 1.0 §3.1; GSS "Glucose
//! Measurement").
//!
//! Flags: bit0 Time Offset present (sint16 minutes), bit1 Glucose
//! Concentration + Type-Sample Location present, bit2 concentration units
//! (0 kg/L, 1 mol/L), bit3 Sensor Status Annunciation present, bit4 Context
//! Information Follows (a 0x2A34 notification with the same sequence number
//! comes next); bits 5–7 RFU. Then sequence number (uint16), base time (Date
//! Time), time offset, concentration (SFLOAT), type-sample location (uint8:
//! type in the least significant nibble, sample location in the most
//! significant nibble, per the GSS note on adjacent nibble fields), sensor
//! status annunciation (16 bit).
//!
//! Units: the device sends kg/L or mol/L, which nobody reads at a bedside. We
//! convert to what clinicians read, mg/dL or mmol/L, by moving the decimal
//! exponent (exact, keeps the device's precision): 1 kg/L = 100 000 mg/dL
//! (exponent + 5) and 1 mol/L = 1000 mmol/L (exponent + 3). We do not convert
//! between mass and molar concentration.

use chrono::TimeDelta;
use vigil_model::codes::ucum;
use vigil_model::{Mdc, Quality};

use crate::reader::Reader;
use crate::{push_bits, DecodeError, Decoded, Measurement, StatusBit};

/// Sensor Status Annunciation bits (12–15 RFU).
/// GLS Sensor Status Annunciation. A failed test (malfunction, sample, strip,
/// temperature "for valid test", interrupted read, device fault) is no
/// measurement; a result beyond the meter's range is a bound, not the value;
/// a low battery or a time fault says nothing about the concentration.
const SENSOR_STATUS: &[StatusBit] = &[
    (0, "device battery low at time of measurement", Quality::Valid),
    (1, "sensor malfunction or faulting at time of measurement", Quality::Invalid),
    (2, "sample size insufficient", Quality::Invalid),
    (3, "strip insertion error", Quality::Invalid),
    (4, "strip type incorrect for device", Quality::Invalid),
    (5, "sensor result higher than the device can process", Quality::Questionable),
    (6, "sensor result lower than the device can process", Quality::Questionable),
    (7, "sensor temperature too high for valid test", Quality::Invalid),
    (8, "sensor temperature too low for valid test", Quality::Invalid),
    (9, "sensor read interrupted because strip was pulled too soon", Quality::Invalid),
    (10, "general device fault", Quality::Invalid),
    (11, "time fault: time may be inaccurate", Quality::Valid),
];

/// Glucose Type nibble → MDC code (IEEE 11073-10417 nomenclature). 0 and
/// 11–15 are RFU.
fn type_code(t: u8) -> Option<Mdc> {
    Some(match t {
        1 => Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD,
        2 => Mdc::CONC_GLU_CAPILLARY_PLASMA,
        3 => Mdc::CONC_GLU_VENOUS_WHOLEBLOOD,
        4 => Mdc::CONC_GLU_VENOUS_PLASMA,
        5 => Mdc::CONC_GLU_ARTERIAL_WHOLEBLOOD,
        6 => Mdc::CONC_GLU_ARTERIAL_PLASMA,
        7 => Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD,
        8 => Mdc::CONC_GLU_UNDETERMINED_PLASMA,
        9 => Mdc::CONC_GLU_ISF,
        10 => Mdc::CONC_GLU_CONTROL,
        _ => return None,
    })
}

/// Sample Location nibble; 15 = "not available", 0 and 5–14 RFU.
fn sample_location(l: u8) -> Option<&'static str> {
    Some(match l {
        1 => "finger",
        2 => "alternate site test",
        3 => "earlobe",
        4 => "control solution",
        _ => return None,
    })
}

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    out.sequence = Some(r.u16("sequence number (uint16)")?);
    let base = r.date_time("base time (Date Time)")?;
    out.device_time = base;
    if flags & 0x01 != 0 {
        let offset = r.i16("time offset (sint16)")?;
        out.time_offset_min = Some(offset);
        out.device_time = base.and_then(|b| b.checked_add_signed(TimeDelta::minutes(i64::from(offset))));
    }
    if flags & 0x02 != 0 {
        let conc = r.sfloat("glucose concentration (SFLOAT)")?;
        let at = r.pos();
        let ts = r.u8("type-sample location (uint8)")?;
        let (glucose_type, location) = (ts & 0x0F, ts >> 4);
        // The type decides the MDC code (what was measured), so an RFU type
        // cannot be guessed: reject rather than file it under a wrong code.
        let code = type_code(glucose_type)
            .ok_or_else(|| r.invalid(at, format!("reserved glucose type {glucose_type}")))?;
        let (value, unit) = if flags & 0x04 != 0 {
            (conc.shifted(3), ucum::MMOL_PER_L) // mol/L × 10^3
        } else {
            (conc.shifted(5), ucum::MG_PER_DL) // kg/L × 10^5
        };
        out.measurements.push(Measurement::from_number(code, value, unit));
        out.site = sample_location(location);
        if glucose_type == 10 {
            out.flag("control solution (not a patient sample)", Quality::Valid);
            out.control_solution = true;
        }
    }
    if flags & 0x08 != 0 {
        let bits = r.u16("sensor status annunciation (16 bit)")?;
        push_bits(out, u32::from(bits), SENSOR_STATUS);
    }
    if flags & 0x10 != 0 {
        out.flag("context information follows", Quality::Valid);
    }
    Ok(())
}
