//! `chrono::Duration` as (fractional) seconds in JSON, e.g. `"delay_s": 10`.

use chrono::Duration;
use serde::{de::Error, Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.num_milliseconds() as f64 / 1000.0)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    from_secs(secs).ok_or_else(|| D::Error::custom(format!("duration must be 0..=86400 s, got {secs}")))
}

/// Seconds to a duration (millisecond resolution); `None` if negative, not finite or over a day.
pub fn from_secs(secs: f64) -> Option<Duration> {
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Some(Duration::milliseconds((secs * 1000.0).round() as i64))
    } else {
        None
    }
}
