//! What the FHIR syncer puts in the Device resources (PHD IG STU 2 PhdDevice / PhgDevice):
//! the Device Information the ward collected per sensor, its MDC specialization and time
//! synchronisation, and the gateway's own identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vigil_devices::DeviceKind;
use vigil_fhir::sync::DeviceLookup;
use vigil_fhir::DeviceInfo;
use vigil_model::{Mdc, Source};

use crate::site::{FhirSite, DEFAULT_GATEWAY_ID};
use crate::view::DeviceInfoView;
use crate::ward::Ward;

/// MDC specialization of a device kind (PHD IG ValueSet DeviceTypes11073MDC).
pub fn specialization(kind: DeviceKind) -> Mdc {
    match kind {
        DeviceKind::PulseOximeter => Mdc::DEV_SPEC_PROFILE_PULS_OXIM,
        DeviceKind::BloodPressureCuff => Mdc::DEV_SPEC_PROFILE_BP,
        DeviceKind::Thermometer => Mdc::DEV_SPEC_PROFILE_TEMP,
        DeviceKind::WeightScale => Mdc::DEV_SPEC_PROFILE_SCALE,
        DeviceKind::GlucoseMeter => Mdc::DEV_SPEC_PROFILE_GLUCOSE,
        // A chest strap: heart rate from ECG, no waveform.
        DeviceKind::HeartRateStrap => Mdc::DEV_SUB_SPEC_PROFILE_HR,
        DeviceKind::RespirationSensor => Mdc::DEV_SPEC_PROFILE_RESP_RATE,
    }
}

const ALL_KINDS: [DeviceKind; 7] = [
    DeviceKind::HeartRateStrap,
    DeviceKind::PulseOximeter,
    DeviceKind::Thermometer,
    DeviceKind::BloodPressureCuff,
    DeviceKind::WeightScale,
    DeviceKind::GlucoseMeter,
    DeviceKind::RespirationSensor,
];

/// A sensor's Device content from what the ward knows about it.
pub fn sensor_info(id: &str, kind: DeviceKind, source: Source, info: &DeviceInfoView) -> DeviceInfo {
    DeviceInfo {
        id: id.to_string(),
        name: Some(kind.label().to_string()),
        system_id: info.system_id.clone(),
        // A real sensor's id is its Bluetooth address; a simulator id is not one, and
        // `mapping::device` leaves out what does not parse as an address.
        bluetooth_address: (source == Source::Real).then(|| id.to_string()),
        manufacturer: info.manufacturer.clone(),
        model: info.model.clone(),
        serial: info.serial.clone(),
        hardware_revision: info.hardware.clone(),
        firmware_revision: info.firmware.clone(),
        software_revision: info.software.clone(),
        specializations: vec![specialization(kind)],
        // Vigil never sets a sensor's clock: it reads it and keeps the offset.
        time_sync: Some(Mdc::TIME_SYNC_NONE),
        simulated: source == Source::Simulated,
    }
}

/// The gateway's Device (PhgDevice). Its identity is the site's `gateway_id`, which must be
/// set: every workstation left at the default would share one Device on the server.
pub fn gateway_info(site: &FhirSite) -> Result<DeviceInfo, String> {
    if site.gateway_id.trim().is_empty() || site.gateway_id == DEFAULT_GATEWAY_ID {
        return Err(format!(
            "fhir.gateway_id must name this workstation uniquely (not \"{DEFAULT_GATEWAY_ID}\"): \
             it is the identity of its FHIR Device"
        ));
    }
    Ok(DeviceInfo {
        id: site.gateway_id.clone(),
        name: Some("Vigil gateway".into()),
        manufacturer: Some("Vigil".into()),
        model: Some("Vigil".into()),
        software_revision: Some(env!("CARGO_PKG_VERSION").into()),
        specializations: ALL_KINDS.iter().map(|k| specialization(*k)).collect(),
        time_sync: Some(Mdc::TIME_SYNC_OTHER),
        ..Default::default()
    })
}

/// Keeps the best-known content of every sensor's Device: a field once learnt is kept when
/// the ward no longer has the device (detached) or has not re-read it yet (reconnecting), so
/// a later upload never replaces a richer Device with a poorer one.
#[derive(Default)]
struct Known(HashMap<String, DeviceInfo>);

impl Known {
    fn merge(&mut self, new: DeviceInfo) -> DeviceInfo {
        let Some(old) = self.0.get(&new.id) else {
            self.0.insert(new.id.clone(), new.clone());
            return new;
        };
        let pick = |n: &Option<String>, o: &Option<String>| n.clone().or_else(|| o.clone());
        let merged = DeviceInfo {
            name: pick(&new.name, &old.name),
            system_id: pick(&new.system_id, &old.system_id),
            bluetooth_address: pick(&new.bluetooth_address, &old.bluetooth_address),
            manufacturer: pick(&new.manufacturer, &old.manufacturer),
            model: pick(&new.model, &old.model),
            serial: pick(&new.serial, &old.serial),
            hardware_revision: pick(&new.hardware_revision, &old.hardware_revision),
            firmware_revision: pick(&new.firmware_revision, &old.firmware_revision),
            software_revision: pick(&new.software_revision, &old.software_revision),
            ..new
        };
        self.0.insert(merged.id.clone(), merged.clone());
        merged
    }
}

/// The syncer's device lookup: the ward's Device Information, remembered.
pub fn lookup(ward: Arc<Mutex<Ward>>) -> DeviceLookup {
    let known = Mutex::new(Known::default());
    Arc::new(move |id: &str| {
        let current = ward.lock().unwrap().device_identity(id);
        let mut known = known.lock().unwrap();
        match current {
            Some((kind, source, info)) => known.merge(sensor_info(id, kind, source, &info)),
            None => known
                .0
                .get(id)
                .cloned()
                .unwrap_or_else(|| DeviceInfo::from_id(id)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Bluetooth sensor's Device from the ward's Device Information: SYSID and BTMAC
    /// identifiers, DIS strings, MDC specialization and time sync, the PhdDevice claim.
    #[test]
    fn a_ble_sensor_device_is_a_phd_device() {
        let info = DeviceInfoView {
            manufacturer: Some("Acme".into()),
            model: Some("BP-7".into()),
            serial: Some("SN-9".into()),
            hardware: Some("B".into()),
            firmware: Some("2.1".into()),
            software: Some("3.0".into()),
            system_id: Some("FE-ED-AB-EE-DE-AD-77-C3".into()),
        };
        let real = sensor_info(
            "00:e5:de:ad:77:c3",
            DeviceKind::BloodPressureCuff,
            Source::Real,
            &info,
        );
        let d = vigil_fhir::mapping::device(&real);
        let ids: Vec<(String, String)> = d["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["type"]["coding"][0]["code"].as_str().unwrap_or("").to_string(),
                    i["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                ("".to_string(), "00:e5:de:ad:77:c3".to_string()),
                ("SYSID".into(), "FE-ED-AB-EE-DE-AD-77-C3".into()),
                ("BTMAC".into(), "00-E5-DE-AD-77-C3".into()),
            ]
        );
        assert_eq!(d["meta"]["profile"][0], vigil_fhir::mapping::PHD_DEVICE_PROFILE);
        assert!(d["meta"].get("security").is_none(), "{d}");
        assert_eq!(d["manufacturer"], "Acme");
        assert_eq!(d["modelNumber"], "BP-7");
        assert_eq!(d["serialNumber"], "SN-9");
        assert_eq!(d["version"].as_array().unwrap().len(), 3);
        assert_eq!(
            d["specialization"][0]["systemType"]["coding"][0]["code"],
            "528391"
        );
        assert_eq!(d["property"][0]["valueCode"][0]["coding"][0]["code"], "532224");
        // A simulated one: test data, and no Bluetooth address.
        let sim = sensor_info(
            "sim-bed-1-bp",
            DeviceKind::BloodPressureCuff,
            Source::Simulated,
            &info,
        );
        let d = vigil_fhir::mapping::device(&sim);
        assert_eq!(d["meta"]["security"][0]["code"], "HTEST");
        assert_eq!(d["identifier"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_default_gateway_id_is_refused() {
        let site: FhirSite = serde_json::from_str(r#"{ "base_url": "http://127.0.0.1:1/fhir" }"#).unwrap();
        assert!(gateway_info(&site).unwrap_err().contains("gateway_id"));
        let site: FhirSite =
            serde_json::from_str(r#"{ "base_url": "http://127.0.0.1:1/fhir", "gateway_id": "ward-3-ws-1" }"#)
                .unwrap();
        let g = vigil_fhir::mapping::gateway_device(&gateway_info(&site).unwrap());
        assert_eq!(g["meta"]["profile"][0], vigil_fhir::mapping::PHG_DEVICE_PROFILE);
        assert_eq!(g["identifier"][0]["value"], "ward-3-ws-1");
        assert!(!site.allow_simulated, "off by default");
    }

    #[test]
    fn a_field_once_learnt_is_kept() {
        let mut k = Known::default();
        let mut info = DeviceInfoView {
            manufacturer: Some("Acme".into()),
            ..Default::default()
        };
        k.merge(sensor_info(
            "AA:BB:CC:DD:EE:FF",
            DeviceKind::PulseOximeter,
            Source::Real,
            &info,
        ));
        info.manufacturer = None;
        info.model = Some("OX-1".into());
        let m = k.merge(sensor_info(
            "AA:BB:CC:DD:EE:FF",
            DeviceKind::PulseOximeter,
            Source::Real,
            &info,
        ));
        assert_eq!(m.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(m.model.as_deref(), Some("OX-1"));
    }
}
