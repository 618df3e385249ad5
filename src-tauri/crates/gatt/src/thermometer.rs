//! Temperature Measurement 0x2A1C and Intermediate Temperature 0x2A1E (Health
//! Thermometer Service 1.0 §3.1, §3.3; GSS "Temperature Measurement", which
//! Intermediate Temperature shares).
//!
//! Flags: bit0 units (0 °C, 1 °F), bit1 Time Stamp present, bit2 Temperature
//! Type present; bits 3–7 RFU. Value: FLOAT. We carry the unit as sent
//! ("Cel" or "[degF]") and do not convert: converting would invent precision
//! the device did not claim, and UCUM consumers convert exactly.

use vigil_model::codes::ucum;
use vigil_model::Mdc;

use crate::reader::Reader;
use crate::{DecodeError, Decoded, Measurement};

/// Temperature Type (GSS "Temperature Type" 0x2A1D): 0 and 10–255 RFU.
pub(crate) fn temperature_type(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "armpit",
        2 => "body (general)",
        3 => "ear (usually earlobe)",
        4 => "finger",
        5 => "gastro-intestinal tract",
        6 => "mouth",
        7 => "rectum",
        8 => "toe",
        9 => "tympanum (ear drum)",
        _ => return None,
    })
}

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    let unit = if flags & 0x01 != 0 { ucum::DEG_F } else { ucum::CEL };
    let value = r.float("temperature (FLOAT)")?;
    out.measurements
        .push(Measurement::from_number(Mdc::TEMP_BODY, value, unit));
    if flags & 0x02 != 0 {
        out.device_time = r.date_time("time stamp (Date Time)")?;
    }
    if flags & 0x04 != 0 {
        let t = r.u8("temperature type (uint8)")?;
        // A reserved type leaves the site unknown; the temperature itself is
        // still valid, so this is tolerated and reported in `status`.
        match temperature_type(t) {
            Some(site) => out.site = Some(site),
            None => out.flag(&format!("reserved temperature type {t}"), vigil_model::Quality::Valid),
        }
    }
    Ok(())
}
