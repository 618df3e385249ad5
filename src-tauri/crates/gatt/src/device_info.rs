//! Device Information Service (DIS 1.1 §3; GSS entries of each
//! characteristic).
//!
//! The string characteristics (Manufacturer Name 0x2A29, Model Number 0x2A24,
//! Serial Number 0x2A25, Hardware 0x2A27 / Firmware 0x2A26 / Software 0x2A28
//! Revision) are "utf8s": the whole value, no length, no terminator. Invalid
//! UTF-8 is an error (we never show a mangled serial number). Trailing NUL
//! octets, which some firmware pads with, are dropped.
//!
//! System ID 0x2A23: uint40 manufacturer-defined identifier then uint24
//! Organizationally Unique Identifier, LSO first; the EUI-64 is OUI followed
//! by the 40-bit identifier (a Bluetooth address 0x123456 / 0x9ABCDE gives
//! 0x123456FFFE9ABCDE: the example in the GSS "System ID" entry).
//!
//! PnP ID 0x2A50: Vendor ID Source uint8 (1 Bluetooth SIG, 2 USB-IF), Vendor
//! ID, Product ID, Product Version (uint16 each).

use crate::reader::Reader;
use crate::{Characteristic, DecodeError, Decoded, DeviceInfoField};

pub(crate) fn decode_string(
    ch: Characteristic,
    r: &mut Reader,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let bytes = r.take(r.remaining(), "UTF-8 string")?;
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(bytes.get(..end).unwrap_or_default())
        .map_err(|e| r.invalid(e.valid_up_to(), format!("not valid UTF-8: {e}")))?
        .to_string();
    out.info = Some(match ch {
        Characteristic::ManufacturerName => DeviceInfoField::ManufacturerName(text),
        Characteristic::ModelNumber => DeviceInfoField::ModelNumber(text),
        Characteristic::SerialNumber => DeviceInfoField::SerialNumber(text),
        Characteristic::HardwareRevision => DeviceInfoField::HardwareRevision(text),
        Characteristic::FirmwareRevision => DeviceInfoField::FirmwareRevision(text),
        _ => DeviceInfoField::SoftwareRevision(text),
    });
    Ok(())
}

pub(crate) fn decode_system_id(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    let mfr = r.take(5, "manufacturer identifier (uint40)")?;
    let mut m = [0u8; 8];
    m[..5].copy_from_slice(mfr);
    let manufacturer_identifier = u64::from_le_bytes(m);
    let oui = r.u24("organizationally unique identifier (uint24)")?;
    let eui = (u64::from(oui) << 40) | manufacturer_identifier;
    let eui64 = eui
        .to_be_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-");
    out.info = Some(DeviceInfoField::SystemId {
        eui64,
        oui,
        manufacturer_identifier,
    });
    Ok(())
}

pub(crate) fn decode_pnp_id(r: &mut Reader, out: &mut Decoded) -> Result<(), DecodeError> {
    // A Vendor ID Source outside 1..=2 is RFU: kept as sent (the ids are
    // still worth logging), not rejected.
    let vendor_id_source = r.u8("vendor id source (uint8)")?;
    let vendor_id = r.u16("vendor id (uint16)")?;
    let product_id = r.u16("product id (uint16)")?;
    let product_version = r.u16("product version (uint16)")?;
    out.info = Some(DeviceInfoField::PnpId {
        vendor_id_source,
        vendor_id,
        product_id,
        product_version,
    });
    Ok(())
}
