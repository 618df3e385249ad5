//! PHD IG (STU 2) and R4 vital-signs profile conformance of what Vigil uploads, checked by
//! the loopback server (Medplum's validator plus the profile rules it encodes as checks,
//! see tests/fhir-server/README.md).

use serde_json::{json, Value as Json};
use vigil_fhir::mapping::{self, BpParts, ObservationContext};

use crate::support::*;

const CTX: ObservationContext = ObservationContext {
    subject: "Patient/p",
    device: "Device/d",
    gateway: "Device/g",
};

fn kpa_panel() -> Json {
    let mut rs = bp("cuff", t0(), 16.0, 10.7, 12.4);
    for r in &mut rs {
        r.unit = "kPa".into();
    }
    mapping::blood_pressure_panel(
        &BpParts {
            systolic: &rs[0],
            diastolic: &rs[1],
            mean: Some(&rs[2]),
        },
        &CTX,
    )
}

fn profiles(o: &Json) -> Vec<String> {
    o["meta"]["profile"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A cuff set to kPa: the R4 `bp` profile fixes mm[Hg], so the panel keeps the device's kPa
/// and claims neither `bp` nor the vital-signs category; the server checks the `bp` slices
/// (85354-9, 8480-6 and 8462-4 in mm[Hg]) of any panel that claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kpa_blood_pressure_panel_does_not_claim_the_bp_profile() {
    let server = TestServer::start().await;
    let o = kpa_panel();
    let bp_url = "http://hl7.org/fhir/StructureDefinition/bp".to_string();
    assert!(!profiles(&o).contains(&bp_url), "{o}");
    assert!(!o["category"].to_string().contains("vital-signs"), "{o}");
    assert_eq!(o["component"][0]["valueQuantity"]["code"], "kPa");
    let (status, oo) = server.validate(&o).await;
    assert_eq!(status, 200, "{o}\n{oo}");

    // Claiming `bp` with kPa is refused by the server's slice check.
    let mut claimed = o.clone();
    claimed["meta"]["profile"] = json!([bp_url]);
    let (status, oo) = server.validate(&claimed).await;
    assert_eq!(status, 400, "{oo}");
    assert!(oo.to_string().contains("mm[Hg]"), "{oo}");

    // An mm[Hg] panel claims `bp` and passes; without its diastolic it does not.
    let rs = bp("cuff", t0(), 120.0, 80.0, 93.0);
    let parts = BpParts {
        systolic: &rs[0],
        diastolic: &rs[1],
        mean: Some(&rs[2]),
    };
    let good = mapping::blood_pressure_panel(&parts, &CTX);
    assert!(profiles(&good).contains(&bp_url), "{good}");
    let (status, oo) = server.validate(&good).await;
    assert_eq!(status, 200, "{good}\n{oo}");
    let mut no_dia = good.clone();
    no_dia["component"].as_array_mut().unwrap().remove(1);
    let (status, oo) = server.validate(&no_dia).await;
    assert_eq!(status, 400, "{oo}");
    assert!(oo.to_string().contains("DiastolicBP"), "{oo}");
    server.stop().await;
}
