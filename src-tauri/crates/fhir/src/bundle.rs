//! Batch Bundles of conditional creates and their batch-response (R4 http.html
//! "Batch/Transaction", bundle.html "batch-response").
//!
//! Each entry is `POST <type>` with `request.ifNoneExist: identifier=system|value`, so the
//! server creates the resource the first time (201) and finds it on any repeat (200): a
//! retry after a lost response cannot create a duplicate. Devices instead are
//! `PUT Device?identifier=system|value` (conditional update): created the first time,
//! updated with what Vigil has learnt since. `batch` rather than `transaction`:
//! entries succeed or fail one by one, so one invalid resource does not hold back the rest
//! (and Medplum's transaction handling of conditional entries is limited).

use serde_json::{json, Value as Json};

use crate::error::Outcome;
use crate::mapping::if_none_exist;

/// A batch Bundle of conditional creates, one entry per resource, in order. Resources
/// without an identifier are plain creates.
pub fn batch(resources: &[Json]) -> Json {
    let entries: Vec<Json> = resources
        .iter()
        .map(|r| {
            let ty = r.get("resourceType").and_then(Json::as_str).unwrap_or("Basic");
            let mut request = json!({ "method": "POST", "url": ty });
            if let Some(q) = if_none_exist(r) {
                if ty == "Device" {
                    // Conditional update (R4 http.html "Conditional update"): creates the
                    // Device the first time, updates it when its content grew.
                    request = json!({ "method": "PUT", "url": format!("{ty}?{q}") });
                } else {
                    request["ifNoneExist"] = json!(q);
                }
            }
            json!({ "resource": r, "request": request })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "batch", "entry": entries })
}

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryResult {
    /// 201 created or 200 found (conditional create matched): on the server.
    Stored { created: bool, location: Option<String> },
    /// 400/413/422: the server will never take this resource as it is. Dead-letter it.
    Rejected { status: u16, outcome: Option<Outcome> },
    /// Any other 4xx (authorisation, configuration, conflict: 401/403/404/409 …), 408,
    /// 429, 5xx or no status: try again later.
    Retry {
        status: Option<u16>,
        outcome: Option<Outcome>,
    },
}

impl EntryResult {
    pub fn is_stored(&self) -> bool {
        matches!(self, EntryResult::Stored { .. })
    }
}

/// Leading HTTP status digits of `response.status` ("201", "201 Created").
pub fn parse_status(s: &str) -> Option<u16> {
    s.split_whitespace().next()?.parse().ok()
}

fn classify(status: Option<u16>, location: Option<String>, outcome: Option<Outcome>) -> EntryResult {
    match status {
        Some(s @ 200..=299) => EntryResult::Stored {
            created: s == 201,
            location,
        },
        // 412: the conditional create matched more than one resource. The measurement is on
        // the server already (more than once, not by this upload): nothing left to send.
        Some(412) => EntryResult::Stored {
            created: false,
            location,
        },
        Some(s) if is_refusal(s) => EntryResult::Rejected { status: s, outcome },
        s => EntryResult::Retry { status: s, outcome },
    }
}

/// A status by which the server says it will never take a resource as it is (its
/// content is wrong): 400, 413, 422. Every other 4xx is about authorisation (401, 403),
/// configuration (404 wrong base, 405, 415 …), a conflict (409) or "later" (408, 429):
/// fixing the site or waiting cures those, so they are retried, never dead-lettered.
pub fn is_refusal(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

/// Parses a batch-response into one result per request entry (same order, R4 bundle.html:
/// "the response entries SHALL be in the same order as the request entries"). Fails when
/// the response is not a batch-response of the right length.
pub fn parse_batch_response(resp: &Json, expected: usize) -> Result<Vec<EntryResult>, String> {
    if resp.get("resourceType").and_then(Json::as_str) != Some("Bundle") {
        return Err("not a Bundle".into());
    }
    let ty = resp.get("type").and_then(Json::as_str).unwrap_or("");
    if ty != "batch-response" && ty != "transaction-response" {
        return Err(format!("Bundle type {ty:?}, expected batch-response"));
    }
    let entries = resp
        .get("entry")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if entries.len() != expected {
        return Err(format!(
            "{} response entries for {expected} requests",
            entries.len()
        ));
    }
    Ok(entries
        .iter()
        .map(|e| {
            let r = e.get("response");
            let status = r
                .and_then(|r| r.get("status"))
                .and_then(Json::as_str)
                .and_then(parse_status);
            let location = r
                .and_then(|r| r.get("location"))
                .and_then(Json::as_str)
                .map(str::to_string);
            let outcome = r
                .and_then(|r| r.get("outcome"))
                .or_else(|| e.get("resource"))
                .and_then(Outcome::from_json);
            classify(status, location, outcome)
        })
        .collect())
}

/// `Type/id` of a location such as `Observation/123/_history/1` or an absolute URL.
pub fn reference_from_location(location: &str, resource_type: &str) -> Option<String> {
    let parts: Vec<&str> = location.split('/').collect();
    let i = parts.iter().rposition(|p| *p == resource_type)?;
    let id = parts.get(i + 1).filter(|s| !s.is_empty())?;
    Some(format!("{resource_type}/{id}"))
}
