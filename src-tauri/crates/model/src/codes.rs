//! IEEE 11073-10101 (MDC) codes and UCUM units Vigil uses, with the LOINC code
//! for each measurement from the FHIR vital-signs profile.
//!
//! The partition+term code is written as the decimal "context free" code
//! (partition × 65536 + term), which is how the PHD IG and the GATT CLI
//! contract carry it.

use serde::{Deserialize, Serialize};

/// An IEEE 11073-10101 context-free code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mdc(pub u32);

impl Mdc {
    pub const ECG_HEART_RATE: Mdc = Mdc(147842);
    pub const PULS_OXIM_PULS_RATE: Mdc = Mdc(149530);
    pub const PULS_RATE_NON_INV: Mdc = Mdc(149546);
    pub const PULS_OXIM_SAT_O2: Mdc = Mdc(150456);
    pub const PULS_OXIM_PERF_REL: Mdc = Mdc(150488);
    pub const TEMP_BODY: Mdc = Mdc(150364);
    pub const PRESS_BLD_NONINV: Mdc = Mdc(150020);
    pub const PRESS_BLD_NONINV_SYS: Mdc = Mdc(150021);
    pub const PRESS_BLD_NONINV_DIA: Mdc = Mdc(150022);
    pub const PRESS_BLD_NONINV_MEAN: Mdc = Mdc(150023);
    /// MDC_PRESS_CUFF: the current cuff pressure while a NIBP measurement is
    /// in progress (BLE Intermediate Cuff Pressure); not a blood pressure.
    pub const PRESS_CUFF: Mdc = Mdc(150300);
    pub const RESP_RATE: Mdc = Mdc(151562);
    pub const MASS_BODY_ACTUAL: Mdc = Mdc(188736);
    pub const LEN_BODY_ACTUAL: Mdc = Mdc(188740);
    pub const RATIO_MASS_BODY_LEN_SQ: Mdc = Mdc(188752);
    /// MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD (11073-10417).
    pub const CONC_GLU_CAPILLARY_WHOLEBLOOD: Mdc = Mdc(160184);
    /// MDC_CONC_GLU_CAPILLARY_PLASMA.
    pub const CONC_GLU_CAPILLARY_PLASMA: Mdc = Mdc(160188);
    /// MDC_CONC_GLU_VENOUS_WHOLEBLOOD.
    pub const CONC_GLU_VENOUS_WHOLEBLOOD: Mdc = Mdc(160192);
    /// MDC_CONC_GLU_VENOUS_PLASMA.
    pub const CONC_GLU_VENOUS_PLASMA: Mdc = Mdc(160196);
    /// MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD.
    pub const CONC_GLU_ARTERIAL_WHOLEBLOOD: Mdc = Mdc(160200);
    /// MDC_CONC_GLU_ARTERIAL_PLASMA.
    pub const CONC_GLU_ARTERIAL_PLASMA: Mdc = Mdc(160204);
    /// MDC_CONC_GLU_CONTROL (control solution; not a patient value).
    pub const CONC_GLU_CONTROL: Mdc = Mdc(160208);
    /// MDC_CONC_GLU_ISF (interstitial fluid).
    pub const CONC_GLU_ISF: Mdc = Mdc(160212);
    /// MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD (11073-10417: partition 2, term 29292).
    pub const CONC_GLU_UNDETERMINED_WHOLEBLOOD: Mdc = Mdc(160364);
    /// MDC_CONC_GLU_UNDETERMINED_PLASMA (term 29296; the PHD IG's glucose example uses it).
    /// 160372 (term 29300) is MDC_CONC_GLU_CONTROL_LEVEL_LOW, a control solution.
    pub const CONC_GLU_UNDETERMINED_PLASMA: Mdc = Mdc(160368);
    /// MDC_ECG_TIME_PD_RR_GL: heart beat (R-R) interval.
    pub const ECG_TIME_PD_RR_GL: Mdc = Mdc(147240);
    /// MDC_ATTR_TIME_ABS (IEEE 11073-10101, partition 1 "object oriented", term 2439):
    /// "absolute time", a wall clock without time zone or DST offset, the kind of clock a
    /// BLE device's Current Time (0x2A2B) is. Vigil uses it for a device-clock reading (the
    /// HL7 PHD IG's Coincident Time Stamp): its value is the device's clock offset, device
    /// time − gateway time in seconds (UCUM `s`), its `device_time` the device's clock and
    /// its `received` the gateway time at which that clock was read. Not a measurement: it
    /// has no label, no LOINC code, no alarm parameter and is never shown as a value.
    pub const ATTR_TIME_ABS: Mdc = Mdc(67975);

    // Device specializations (IEEE 11073-10101 partition 8, MDC_DEV_SPEC_PROFILE_*), the
    // codes of the PHD IG STU 2 ValueSet DeviceTypes11073MDC (Device.specialization).
    /// MDC_DEV_SPEC_PROFILE_PULS_OXIM: pulse oximeter.
    pub const DEV_SPEC_PROFILE_PULS_OXIM: Mdc = Mdc(528388);
    /// MDC_DEV_SPEC_PROFILE_BP: non-invasive blood pressure monitor.
    pub const DEV_SPEC_PROFILE_BP: Mdc = Mdc(528391);
    /// MDC_DEV_SPEC_PROFILE_TEMP: thermometer.
    pub const DEV_SPEC_PROFILE_TEMP: Mdc = Mdc(528392);
    /// MDC_DEV_SPEC_PROFILE_RESP_RATE: respiration rate monitor.
    pub const DEV_SPEC_PROFILE_RESP_RATE: Mdc = Mdc(528397);
    /// MDC_DEV_SPEC_PROFILE_SCALE: weight scale.
    pub const DEV_SPEC_PROFILE_SCALE: Mdc = Mdc(528399);
    /// MDC_DEV_SPEC_PROFILE_GLUCOSE: glucose meter.
    pub const DEV_SPEC_PROFILE_GLUCOSE: Mdc = Mdc(528401);
    /// MDC_DEV_SUB_SPEC_PROFILE_HR: ECG device reporting just heart rate (a chest strap).
    pub const DEV_SUB_SPEC_PROFILE_HR: Mdc = Mdc(528525);
    // Time synchronisation methods (PHD IG STU 2 ValueSet MDCTimeSyncMethods), the value of
    // a Device's MDC_TIME_SYNC_PROTOCOL (68220) property.
    /// MDC_TIME_SYNC_PROTOCOL: the Device property that names the method.
    pub const TIME_SYNC_PROTOCOL: Mdc = Mdc(68220);
    /// MDC_TIME_SYNC_NONE: the clock is not synchronised (Vigil never sets a sensor's clock;
    /// it learns the clock's offset instead, the Coincident Time Stamp).
    pub const TIME_SYNC_NONE: Mdc = Mdc(532224);
    /// MDC_TIME_SYNC_OTHER: another method (the gateway's clock is the host OS's, kept by
    /// whatever the site runs).
    pub const TIME_SYNC_OTHER: Mdc = Mdc(532236);

    /// Short label for screens and CSV.
    pub fn label(self) -> &'static str {
        match self {
            Mdc::ECG_HEART_RATE => "HR",
            Mdc::PULS_OXIM_PULS_RATE => "PR (SpO2)",
            Mdc::PULS_RATE_NON_INV => "PR (NIBP)",
            Mdc::PULS_OXIM_SAT_O2 => "SpO2",
            Mdc::PULS_OXIM_PERF_REL => "PI",
            Mdc::TEMP_BODY => "Temp",
            Mdc::PRESS_BLD_NONINV_SYS => "NIBP sys",
            Mdc::PRESS_BLD_NONINV_DIA => "NIBP dia",
            Mdc::PRESS_BLD_NONINV_MEAN => "NIBP mean",
            Mdc::PRESS_CUFF => "Cuff",
            Mdc::RESP_RATE => "RR",
            Mdc::MASS_BODY_ACTUAL => "Weight",
            Mdc::LEN_BODY_ACTUAL => "Height",
            Mdc::RATIO_MASS_BODY_LEN_SQ => "BMI",
            _ => "other",
        }
    }

    /// LOINC code of the FHIR vital-signs profile for this measurement, where one applies.
    pub fn loinc(self) -> Option<&'static str> {
        Some(match self {
            Mdc::ECG_HEART_RATE | Mdc::PULS_RATE_NON_INV => "8867-4",
            Mdc::PULS_OXIM_PULS_RATE => "8889-8",
            Mdc::PULS_OXIM_SAT_O2 => "59408-5",
            Mdc::TEMP_BODY => "8310-5",
            Mdc::PRESS_BLD_NONINV => "85354-9",
            Mdc::PRESS_BLD_NONINV_SYS => "8480-6",
            Mdc::PRESS_BLD_NONINV_DIA => "8462-4",
            Mdc::PRESS_BLD_NONINV_MEAN => "8478-0",
            Mdc::RESP_RATE => "9279-1",
            Mdc::MASS_BODY_ACTUAL => "29463-7",
            // R4 vital-signs table (observation-vitalsigns.html): 8302-2 Body height
            // (`bodyheight`), 39156-5 Body mass index (`bmi`).
            Mdc::LEN_BODY_ACTUAL => "8302-2",
            Mdc::RATIO_MASS_BODY_LEN_SQ => "39156-5",
            _ => return None,
        })
    }
}

/// LOINC code for a glucose concentration, by the sample type its MDC code names and the
/// unit: LOINC separates mass (mg/dL) from substance (mmol/L) concentration and capillary
/// blood by glucometer from blood and from serum or plasma. None for control solution,
/// interstitial fluid and other units (no LOINC term is claimed rather than a wrong one).
///
/// * capillary whole blood: 41653-7 "Glucose [Mass/volume] in Capillary blood by
///   Glucometer", 14743-9 "Glucose [Moles/volume] in Capillary blood by Glucometer";
/// * venous, arterial or undetermined whole blood: 2339-0 "Glucose [Mass/volume] in
///   Blood", 15074-8 "Glucose [Moles/volume] in Blood";
/// * plasma (capillary, venous, arterial, undetermined): 2345-7 "Glucose [Mass/volume] in
///   Serum or Plasma", 14749-6 "Glucose [Moles/volume] in Serum or Plasma".
pub fn glucose_loinc(code: Mdc, unit: &str) -> Option<&'static str> {
    enum Sample {
        CapillaryBlood,
        Blood,
        Plasma,
    }
    let sample = match code {
        Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD => Sample::CapillaryBlood,
        Mdc::CONC_GLU_VENOUS_WHOLEBLOOD
        | Mdc::CONC_GLU_ARTERIAL_WHOLEBLOOD
        | Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD => Sample::Blood,
        Mdc::CONC_GLU_CAPILLARY_PLASMA
        | Mdc::CONC_GLU_VENOUS_PLASMA
        | Mdc::CONC_GLU_ARTERIAL_PLASMA
        | Mdc::CONC_GLU_UNDETERMINED_PLASMA => Sample::Plasma,
        _ => return None,
    };
    Some(match (sample, unit) {
        (Sample::CapillaryBlood, ucum::MG_PER_DL) => "41653-7",
        (Sample::CapillaryBlood, ucum::MMOL_PER_L) => "14743-9",
        (Sample::Blood, ucum::MG_PER_DL) => "2339-0",
        (Sample::Blood, ucum::MMOL_PER_L) => "15074-8",
        (Sample::Plasma, ucum::MG_PER_DL) => "2345-7",
        (Sample::Plasma, ucum::MMOL_PER_L) => "14749-6",
        _ => return None,
    })
}

/// UCUM unit codes (case-sensitive, as UCUM defines them).
pub mod ucum {
    pub const PER_MIN: &str = "/min";
    pub const PERCENT: &str = "%";
    pub const CEL: &str = "Cel";
    pub const DEG_F: &str = "[degF]";
    pub const MM_HG: &str = "mm[Hg]";
    pub const KPA: &str = "kPa";
    pub const KG: &str = "kg";
    pub const LB: &str = "[lb_av]";
    pub const M: &str = "m";
    pub const IN: &str = "[in_i]";
    pub const KG_PER_M2: &str = "kg/m2";
    pub const KG_PER_L: &str = "kg/L";
    pub const MOL_PER_L: &str = "mol/L";
    pub const MG_PER_DL: &str = "mg/dL";
    pub const MMOL_PER_L: &str = "mmol/L";
    pub const S: &str = "s";
    pub const KJ: &str = "kJ";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every glucose code, as IEEE 11073-10417 / 11073-10101 give it: partition 2 (SCADA,
    /// 2 × 65536 = 131072) plus the term code. The HL7 PHD IG (STU 2, 2.0.0) uses two of
    /// them in its own examples: `input/examples/compound-observation-glucose.json` 160184
    /// MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD and `input/examples/glucose-observation.json`
    /// 160368 MDC_CONC_GLU_UNDETERMINED_PLASMA (github.com/HL7/phd, commit 5af8412). The IG
    /// has no MDC code list of its own (its MDCValueSet includes the whole MDC system).
    #[test]
    fn glucose_codes_are_the_11073_10417_ones() {
        let term = |t: u32| 2 * 65536 + t;
        for (code, t) in [
            (Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD, 29112),
            (Mdc::CONC_GLU_CAPILLARY_PLASMA, 29116),
            (Mdc::CONC_GLU_VENOUS_WHOLEBLOOD, 29120),
            (Mdc::CONC_GLU_VENOUS_PLASMA, 29124),
            (Mdc::CONC_GLU_ARTERIAL_WHOLEBLOOD, 29128),
            (Mdc::CONC_GLU_ARTERIAL_PLASMA, 29132),
            (Mdc::CONC_GLU_CONTROL, 29136),
            (Mdc::CONC_GLU_ISF, 29140),
            (Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD, 29292),
            (Mdc::CONC_GLU_UNDETERMINED_PLASMA, 29296),
        ] {
            assert_eq!(code.0, term(t), "{code:?}");
        }
        assert_eq!(Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD.0, 160184, "PHD IG example");
        assert_eq!(Mdc::CONC_GLU_UNDETERMINED_PLASMA.0, 160368, "PHD IG example");
        // 160372 = term 29300, MDC_CONC_GLU_CONTROL_LEVEL_LOW: a control solution, never a
        // patient's sample type.
        assert_eq!(term(29300), 160372);
    }

    /// LOINC terms (loinc.org; group LG7967-5 lists 2339-0 and 2345-7): 41653-7 / 14743-9
    /// Glucose [Mass|Moles/volume] in Capillary blood by Glucometer, 2339-0 / 15074-8
    /// Glucose [Mass|Moles/volume] in Blood, 2345-7 / 14749-6 Glucose [Mass|Moles/volume]
    /// in Serum or Plasma.
    #[test]
    fn glucose_loinc_follows_sample_type_and_unit() {
        use ucum::{MG_PER_DL, MMOL_PER_L};
        let cases = [
            (Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD, MG_PER_DL, Some("41653-7")),
            (Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD, MMOL_PER_L, Some("14743-9")),
            (Mdc::CONC_GLU_VENOUS_WHOLEBLOOD, MG_PER_DL, Some("2339-0")),
            (Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD, MMOL_PER_L, Some("15074-8")),
            (Mdc::CONC_GLU_CAPILLARY_PLASMA, MG_PER_DL, Some("2345-7")),
            (Mdc::CONC_GLU_UNDETERMINED_PLASMA, MMOL_PER_L, Some("14749-6")),
            (Mdc::CONC_GLU_CONTROL, MG_PER_DL, None),
            (Mdc::CONC_GLU_ISF, MMOL_PER_L, None),
            (Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD, ucum::KG_PER_L, None),
            (Mdc::TEMP_BODY, MG_PER_DL, None),
        ];
        for (code, unit, loinc) in cases {
            assert_eq!(glucose_loinc(code, unit), loinc, "{code:?} {unit}");
        }
    }
}
