//! Vigil simulated respiration rate, vendor UUID [`crate::SIM_RESP_RATE`].
//!
//! There is no standard Bluetooth LE respiration-rate characteristic. This
//! one exists **only** so Vigil's simulator can feed respiration rate through
//! the same decode path as real devices; no real device produces it and the
//! decoded value is marked `simulated`. Payload: flags uint8, which must be 0
//! (no optional fields are defined, so anything else is a malformed or foreign
//! payload), then SFLOAT breaths per minute → MDC_RESP_RATE, "/min".

use vigil_model::codes::ucum;
use vigil_model::Mdc;

use crate::reader::Reader;
use crate::{DecodeError, Decoded, Measurement};

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    if flags != 0 {
        return Err(r.invalid(0, format!("flags 0x{flags:02x} must be 0")));
    }
    let rate = r.sfloat("respiration rate (SFLOAT)")?;
    out.measurements
        .push(Measurement::from_number(Mdc::RESP_RATE, rate, ucum::PER_MIN));
    out.simulated = true;
    Ok(())
}
