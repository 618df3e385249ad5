//! One audit-trail record as a FHIR R4 `AuditEvent` (issue 14): type and
//! subtype, action, recorded, outcome, agent, source and entity (the opaque
//! admission id, and the record's place in Vigil's signed chain).
//!
//! Only what the trail holds goes in: a user name or `os:<name>`, a role, an
//! action name, the workstation and opaque ids — never a patient's name, MRN,
//! date of birth or a value. `core::audit_upload` sends them with a cursor over
//! the signed trail.

use serde_json::{json, Value as Json};

/// DICOM audit event types (DCM, PS3.16 CID 400).
const DCM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// R4 `AuditEvent.subtype`: Vigil's stable action names.
pub const ACTION_SYSTEM: &str = "urn:vigil:audit-action";
/// Vigil's roles (nurse, clinician, admin, viewer).
pub const ROLE_SYSTEM: &str = "urn:vigil:role";
/// Users of a Vigil store (or `os:<name>` for the CLI).
pub const USER_SYSTEM: &str = "urn:vigil:user";
/// Vigil's opaque admission ids.
pub const ADMISSION_SYSTEM: &str = "urn:vigil:admission";
/// A record of Vigil's signed audit trail: `<store id>/<seq>`.
pub const RECORD_SYSTEM: &str = "urn:vigil:audit-record";
/// The gateway (its site `fhir.gateway_id`) that observed the event.
pub const GATEWAY_SYSTEM: &str = "urn:vigil:gateway";
const ENTITY_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const SOURCE_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// What an AuditEvent is made from: one verified record of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFacts<'a> {
    /// The store's random id and the record's sequence number: unique per record.
    pub store_id: &'a str,
    pub seq: i64,
    /// The record's chain hash (hex).
    pub hash: &'a str,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: &'a str,
    pub role: Option<&'a str>,
    pub action: &'a str,
    /// "success", "refused" or "failed".
    pub outcome: &'a str,
    pub admission: Option<&'a str>,
    pub workstation: &'a str,
    pub break_glass: bool,
    /// The site's `fhir.gateway_id`.
    pub gateway_id: &'a str,
}

/// The DCM event type of an action: authentication, security, export or a patient record.
fn event_type(action: &str) -> (&'static str, &'static str) {
    match action {
        "sign_in" | "sign_out" => ("110114", "User Authentication"),
        "break_glass" => ("110113", "Security Alert"),
        "manage_users" => ("110137", "User Security Attributes Changed"),
        "manage_keys" | "site_config" | "store_verify" | "store_salvage" | "audit_export" => {
            ("110100", "Application Activity")
        }
        "export" => ("110106", "Export"),
        _ => ("110110", "Patient Record"),
    }
}

/// R4 `AuditEvent.action`: C create, R read, U update, D delete, E execute.
fn crude(action: &str) -> &'static str {
    match action {
        "admit" | "enter_news2" | "pair_device" => "C",
        "view_patient" | "trends" | "alarm_log" | "export" | "fhir_queue" => "R",
        "discharge" | "set_limit" | "acknowledge" | "pause_audio" | "assign_device" | "link_patient"
        | "set_device_clock" | "manage_users" | "manage_keys" | "site_config" => "U",
        "remove_device" => "D",
        _ => "E",
    }
}

/// R4 `AuditEvent.outcome`: 0 success; a refusal or failure is a minor failure (4).
fn outcome_code(outcome: &str) -> &'static str {
    if outcome == "success" {
        "0"
    } else {
        "4"
    }
}

/// A trail record's name outside the store: `<store id>/<seq>`.
pub fn record_name(store_id: &str, seq: i64) -> String {
    format!("{store_id}/{seq}")
}

/// The conditional-create query of an `AuditEvent` (its record's name, exact), so an
/// upload repeated after a lost answer finds the event instead of adding a second one.
/// Tried on Medplum: `entity:identifier=` is not honoured there; `entity-name:exact=` is.
pub fn audit_if_none_exist(resource: &Json) -> Option<String> {
    let name = resource.get("entity")?.get(0)?.get("name")?.as_str()?;
    let enc = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>();
    Some(format!("entity-name:exact={enc}"))
}

/// The `AuditEvent` of one trail record.
pub fn audit_event(f: &AuditFacts) -> Json {
    let (code, display) = event_type(f.action);
    let mut agent = json!({
        "who": { "identifier": { "system": USER_SYSTEM, "value": f.actor } },
        "requestor": true,
    });
    if let Some(role) = f.role {
        agent["role"] = json!([{ "coding": [{ "system": ROLE_SYSTEM, "code": role }] }]);
    }
    if f.break_glass {
        agent["purposeOfUse"] = json!([{ "coding": [{ "system": ACT_REASON_SYSTEM, "code": "BTG", "display": "break the glass" }] }]);
    }
    let record = record_name(f.store_id, f.seq);
    let mut entity = vec![json!({
        "what": { "identifier": { "system": RECORD_SYSTEM, "value": record } },
        // Also the name: R4 AuditEvent has no identifier, and `entity-name:exact` is what a
        // server can search for a conditional create (see [`audit_if_none_exist`]).
        "name": record,
        "type": { "system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object" },
        "description": format!("sha256 {}", f.hash),
    })];
    if let Some(adm) = f.admission {
        entity.push(json!({
            "what": { "identifier": { "system": ADMISSION_SYSTEM, "value": adm } },
            "type": { "system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object" },
        }));
    }
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "type": { "system": DCM_SYSTEM, "code": code, "display": display },
        "subtype": [{ "system": ACTION_SYSTEM, "code": f.action }],
        "action": crude(f.action),
        "recorded": f.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "outcome": outcome_code(f.outcome),
        "agent": [agent],
        "source": {
            "site": f.workstation,
            "observer": { "identifier": { "system": GATEWAY_SYSTEM, "value": f.gateway_id } },
            "type": [{ "system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server" }],
        },
        "entity": entity,
    });
    if f.outcome != "success" {
        ev["outcomeDesc"] = json!(f.outcome);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AuditFacts<'static> {
        AuditFacts {
            store_id: "abc123",
            seq: 7,
            hash: "00ff",
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            actor: "ann",
            role: Some("nurse"),
            action: "discharge",
            outcome: "success",
            admission: Some("adm-42"),
            workstation: "ws-3",
            break_glass: false,
            gateway_id: "ward-7-gw",
        }
    }

    #[test]
    fn a_record_maps_to_an_r4_audit_event_with_its_opaque_admission() {
        let ev = audit_event(&facts());
        assert_eq!(ev["resourceType"], "AuditEvent");
        assert_eq!(ev["type"]["code"], "110110");
        assert_eq!(ev["subtype"][0]["code"], "discharge");
        assert_eq!(ev["action"], "U");
        assert_eq!(ev["recorded"], "2027-01-15T08:00:00.000Z");
        assert_eq!(ev["outcome"], "0");
        assert!(ev.get("outcomeDesc").is_none());
        assert_eq!(ev["agent"][0]["who"]["identifier"]["value"], "ann");
        assert_eq!(ev["agent"][0]["requestor"], true);
        assert!(ev["agent"][0].get("purposeOfUse").is_none());
        assert_eq!(ev["source"]["site"], "ws-3");
        assert_eq!(ev["source"]["observer"]["identifier"]["value"], "ward-7-gw");
        assert_eq!(ev["entity"][0]["what"]["identifier"]["value"], "abc123/7");
        assert_eq!(ev["entity"][1]["what"]["identifier"]["system"], ADMISSION_SYSTEM);
        assert_eq!(ev["entity"][1]["what"]["identifier"]["value"], "adm-42");
    }

    #[test]
    fn refusals_sign_ins_and_break_glass_are_typed() {
        let mut f = facts();
        f.outcome = "refused";
        f.break_glass = true;
        f.admission = None;
        let ev = audit_event(&f);
        assert_eq!(
            (ev["outcome"].as_str(), ev["outcomeDesc"].as_str()),
            (Some("4"), Some("refused"))
        );
        assert_eq!(ev["agent"][0]["purposeOfUse"][0]["coding"][0]["code"], "BTG");
        assert_eq!(ev["entity"].as_array().unwrap().len(), 1);
        f.action = "sign_in";
        assert_eq!(audit_event(&f)["type"]["code"], "110114");
        assert_eq!(audit_event(&f)["action"], "E");
    }
}
