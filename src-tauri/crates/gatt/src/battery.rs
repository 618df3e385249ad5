//! Battery Level 0x2A19 (Battery Service 1.0 §3.1; GSS "Battery Level"):
//! uint8 percent, 0–100; 101–255 are prohibited/reserved, so they are an
//! error rather than a clamped value. Not a vital sign: it goes into
//! [`crate::Decoded::battery_percent`], not into the measurements.

use crate::reader::Reader;
use crate::{DecodeError, Decoded};

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let pct = r.u8("battery level (uint8)")?;
    if pct > 100 {
        return Err(r.invalid(0, format!("battery level {pct} % is above 100")));
    }
    out.battery_percent = Some(pct);
    Ok(())
}
