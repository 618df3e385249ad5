//! Pulse oximetry: PLX Spot-Check Measurement 0x2A5E and PLX Continuous
//! Measurement 0x2A5F (Pulse Oximeter Service 1.0 §3.1, §3.2; GSS "PLX
//! Spot-Check Measurement", "PLX Continuous Measurement").
//!
//! Both start with SpO2 (SFLOAT, %) and pulse rate (SFLOAT, bpm). Continuous
//! flags: bit0 SpO2PR-Fast, bit1 SpO2PR-Slow, bit2 Measurement Status (16 bit),
//! bit3 Device and Sensor Status (24 bit), bit4 Pulse Amplitude Index (SFLOAT
//! %). Spot-check flags: bit0 Timestamp, bit1 Measurement Status, bit2 Device
//! and Sensor Status, bit3 PAI, bit4 Device Clock is Not Set. Bits 5–7 RFU in
//! both (ignored on receipt).

use vigil_model::codes::ucum;
use vigil_model::{Mdc, Quality};

use crate::reader::Reader;
use crate::{push_bits, DecodeError, Decoded, Measurement, StatusBit};

/// Measurement Status (bits 0–4 RFU).
/// PLXS Measurement Status. Demonstration and test data are not the
/// patient's; "unavailable" and "invalid" are no measurement; an estimate,
/// an ongoing measurement or calibration is doubtful.
const MEASUREMENT_STATUS: &[StatusBit] = &[
    (5, "measurement ongoing", Quality::Questionable),
    (6, "early estimated data", Quality::Questionable),
    (7, "validated data", Quality::Valid),
    (8, "fully qualified data", Quality::Valid),
    (9, "data from measurement storage", Quality::Valid),
    (10, "data for demonstration", Quality::Invalid),
    (11, "data for testing", Quality::Invalid),
    (12, "calibration ongoing", Quality::Questionable),
    (13, "measurement unavailable", Quality::Invalid),
    (14, "questionable measurement detected", Quality::Questionable),
    (15, "invalid measurement detected", Quality::Invalid),
];

/// Device and Sensor Status (bits 16–23 RFU).
/// A sensor off the patient or a broken one measures nothing; signal
/// problems make the value doubtful.
const DEVICE_SENSOR_STATUS: &[StatusBit] = &[
    (0, "extended display update ongoing", Quality::Valid),
    (1, "equipment malfunction detected", Quality::Invalid),
    (2, "signal processing irregularity detected", Quality::Questionable),
    (3, "inadequate signal detected", Quality::Questionable),
    (4, "poor signal detected", Quality::Questionable),
    (5, "low perfusion detected", Quality::Questionable),
    (6, "erratic signal detected", Quality::Questionable),
    (7, "nonpulsatile signal detected", Quality::Questionable),
    (8, "questionable pulse detected", Quality::Questionable),
    (9, "signal analysis ongoing", Quality::Questionable),
    (10, "sensor interference detected", Quality::Questionable),
    (11, "sensor unconnected to user", Quality::Invalid),
    (12, "unknown sensor connected", Quality::Questionable),
    (13, "sensor displaced", Quality::Invalid),
    (14, "sensor malfunctioning", Quality::Invalid),
    (15, "sensor disconnected", Quality::Invalid),
];

fn pair(
    r: &mut Reader,
    spo2_field: &'static str,
    pr_field: &'static str,
) -> Result<(Measurement, Measurement), DecodeError> {
    let spo2 = r.sfloat(spo2_field)?;
    let pr = r.sfloat(pr_field)?;
    Ok((
        Measurement::from_number(Mdc::PULS_OXIM_SAT_O2, spo2, ucum::PERCENT),
        Measurement::from_number(Mdc::PULS_OXIM_PULS_RATE, pr, ucum::PER_MIN),
    ))
}

fn statuses(r: &mut Reader, out: &mut Decoded, measurement: bool, device: bool) -> Result<(), DecodeError> {
    if measurement {
        let bits = r.u16("measurement status (16 bit)")?;
        push_bits(out, u32::from(bits), MEASUREMENT_STATUS);
    }
    if device {
        let bits = r.u24("device and sensor status (24 bit)")?;
        push_bits(out, bits, DEVICE_SENSOR_STATUS);
    }
    Ok(())
}

fn pai(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let pai = r.sfloat("pulse amplitude index (SFLOAT)")?;
    out.measurements.push(Measurement::from_number(
        Mdc::PULS_OXIM_PERF_REL,
        pai,
        ucum::PERCENT,
    ));
    Ok(())
}

pub(crate) fn decode_continuous(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    let (spo2, pr) = pair(r, "SpO2PR-Normal SpO2 (SFLOAT)", "SpO2PR-Normal PR (SFLOAT)")?;
    out.measurements.push(spo2);
    out.measurements.push(pr);
    if flags & 0x01 != 0 {
        let (spo2, pr) = pair(r, "SpO2PR-Fast SpO2 (SFLOAT)", "SpO2PR-Fast PR (SFLOAT)")?;
        out.secondary.push(spo2.with_qualifier("fast"));
        out.secondary.push(pr.with_qualifier("fast"));
    }
    if flags & 0x02 != 0 {
        let (spo2, pr) = pair(r, "SpO2PR-Slow SpO2 (SFLOAT)", "SpO2PR-Slow PR (SFLOAT)")?;
        out.secondary.push(spo2.with_qualifier("slow"));
        out.secondary.push(pr.with_qualifier("slow"));
    }
    statuses(r, out, flags & 0x04 != 0, flags & 0x08 != 0)?;
    if flags & 0x10 != 0 {
        pai(r, out)?;
    }
    Ok(())
}

pub(crate) fn decode_spot_check(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let flags = r.u8("flags")?;
    let (spo2, pr) = pair(r, "SpO2 (SFLOAT)", "PR (SFLOAT)")?;
    out.measurements.push(spo2);
    out.measurements.push(pr);
    if flags & 0x01 != 0 {
        out.device_time = r.date_time("timestamp (Date Time)")?;
    }
    statuses(r, out, flags & 0x02 != 0, flags & 0x04 != 0)?;
    if flags & 0x08 != 0 {
        pai(r, out)?;
    }
    if flags & 0x10 != 0 {
        // The timestamp (if any) is kept as sent; this tells the pipeline not
        // to derive a clock offset from it.
        out.flag("device clock not set", Quality::Valid);
    }
    Ok(())
}
