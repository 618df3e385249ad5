//! Heart Rate Measurement, 0x2A37 (Heart Rate Service 1.0 §3.1; GSS "Heart
//! Rate Measurement").
//!
//! Flags: bit0 value format (0 uint8, 1 uint16), bits1–2 Sensor Contact Status
//! (0/1 not supported, 2 supported but not detected, 3 supported and
//! detected), bit3 Energy Expended present (uint16 kJ), bit4 RR-Interval
//! present (one or more uint16 in 1/1024 s, filling the rest of the value),
//! bits5–7 RFU. Contact "supported but not detected" keeps the value but
//! flags it untrustworthy: see [`crate::SensorContact::NotDetected`].

use vigil_model::codes::ucum;
use vigil_model::Mdc;

use crate::reader::Reader;
use crate::{DecodeError, Decoded, Measurement, SensorContact};

pub(crate) fn decode(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    // RFU bits 5–7 are ignored on receipt (Core Specification convention for
    // "Reserved for Future Use"); a future field they announce would show up
    // as trailing bytes, which we reject.
    let flags = r.u8("flags")?;
    let bpm = if flags & 0x01 != 0 {
        r.u16("heart rate (uint16)")?
    } else {
        u16::from(r.u8("heart rate (uint8)")?)
    };
    out.measurements.push(Measurement::fixed(
        Mdc::ECG_HEART_RATE,
        i32::from(bpm),
        0,
        ucum::PER_MIN,
    ));
    let contact = match (flags >> 1) & 0x03 {
        2 => SensorContact::NotDetected,
        3 => SensorContact::Detected,
        _ => SensorContact::NotSupported,
    };
    if contact == SensorContact::NotDetected {
        // The strap's own verdict is the technical "sensor off" condition
        // (see `sensor_contact`); the value itself is not marked.
        out.flag("sensor contact not detected", vigil_model::Quality::Valid);
    }
    out.sensor_contact = Some(contact);
    if flags & 0x08 != 0 {
        out.energy_expended_kj = Some(r.u16("energy expended (uint16)")?);
    }
    if flags & 0x10 != 0 {
        // "One or more" RR-intervals: at least one must be there; then as many
        // whole uint16 as remain. An odd last byte is left for `finish()`,
        // which reports it as trailing.
        let first = r.u16("RR-interval (uint16)")?;
        out.rr_intervals_s.push(f64::from(first) / 1024.0);
        while r.remaining() >= 2 {
            let rr = r.u16("RR-interval (uint16)")?;
            out.rr_intervals_s.push(f64::from(rr) / 1024.0);
        }
    }
    Ok(())
}
