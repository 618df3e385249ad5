//! Checks on what the screen sends before the core acts on it. The webview is outside
//! input like a BLE peer or a site file (a compromised page, a script, a paste of a whole
//! document into a field): every text has a length limit and no control characters, and
//! errors name the field, never echo the value (it may be PHI).

/// Longest patient display name, in characters.
pub const NAME_MAX: usize = 100;
/// Longest MRN (HL7 v2 CX.1 allows 15; hospitals' own systems run longer, none past 64).
pub const MRN_MAX: usize = 64;
/// Longest user name recorded in the alarm log.
pub const USER_MAX: usize = 64;
/// Longest FHIR Patient reference ("Patient/" + a FHIR id of at most 64 characters).
pub const REFERENCE_MAX: usize = "Patient/".len() + 64;

/// Why a field was refused (the value itself is never in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: String,
}

/// `s` trimmed, if it is at most `max` characters, holds no control characters and (when
/// `required`) is not empty.
pub fn text(field: &'static str, s: &str, max: usize, required: bool) -> Result<String, InvalidInput> {
    let bad = |reason: String| InvalidInput { field, reason };
    let t = s.trim();
    if required && t.is_empty() {
        return Err(bad("is empty".into()));
    }
    if t.chars().count() > max {
        return Err(bad(format!("at most {max} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(bad("contains control characters".into()));
    }
    Ok(t.to_string())
}

/// A user name for the alarm log (may be empty: no roles yet, issue 14).
pub fn user(s: &str) -> Result<String, InvalidInput> {
    text("user", s, USER_MAX, false)
}

/// A FHIR Patient reference as a search returns it: `Patient/<id>` where the id is a FHIR
/// id (R4 §2.24.0.1: `[A-Za-z0-9\-\.]{1,64}`).
pub fn patient_reference(s: &str) -> Result<&str, InvalidInput> {
    let id = s.strip_prefix("Patient/").unwrap_or_default();
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(s)
    } else {
        Err(InvalidInput {
            field: "patient",
            reason: "expected a reference like Patient/<id>".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_errors_never_echo_the_value() {
        assert_eq!(text("MRN", "  A-77  ", MRN_MAX, true).unwrap(), "A-77");
        let long = "9".repeat(MRN_MAX + 1);
        let e = text("MRN", &long, MRN_MAX, true).unwrap_err();
        assert!(!e.to_string().contains(&long) && e.to_string().contains("at most 64"));
        assert!(text("name", "Ada\u{0}Q", NAME_MAX, true).is_err());
        assert!(text("name", "Ada\nQ", NAME_MAX, true).is_err());
        assert!(text("name", "   ", NAME_MAX, true).is_err());
        assert_eq!(user("").unwrap(), "");
        assert!(user(&"u".repeat(65)).is_err());
        // Characters, not bytes: a 100-letter name in any script fits.
        assert!(text("name", &"é".repeat(NAME_MAX), NAME_MAX, true).is_ok());
        assert!(patient_reference("Patient/0192-ab.c").is_ok());
        for bad in ["Patient/", "Observation/1", "Patient/1/_history/2", "Patient/a b", "https://x/Patient/1"] {
            assert!(patient_reference(bad).is_err(), "{bad}");
        }
        assert!(patient_reference(&format!("Patient/{}", "a".repeat(65))).is_err());
    }
}
