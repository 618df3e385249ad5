//! One integration-test binary for vigil-alarms; one module per area.

mod news2;
mod presets;
mod props;
mod safety;
mod scenarios;

use chrono::{DateTime, Duration, Utc};
use vigil_alarms::{AlarmEngine, AlarmEvent, AlarmKind, Direction, Parameter, SitePreset};
use vigil_model::{AdmissionId, Mdc, Reading, Source, Special, Value};

pub fn engine() -> AlarmEngine {
    AlarmEngine::new(SitePreset::standard())
}

pub fn phys(p: Parameter, d: Direction) -> AlarmKind {
    AlarmKind::Physiological {
        parameter: p,
        direction: d,
    }
}

/// Feeds `f(second)` readings at bed-3 once a second from `from` to `to`
/// (inclusive), with a tick half-way through each second.
pub fn run(e: &mut AlarmEngine, from: i64, to: i64, f: impl Fn(i64) -> Vec<(Mdc, f64)>) -> Vec<AlarmEvent> {
    let mut out = Vec::new();
    for s in from..=to {
        for (code, v) in f(s) {
            out.extend(e.on_reading(&reading("bed-3", code, v, t(s)), t(s)));
        }
        out.extend(e.tick(t_ms(s * 1000 + 500)));
    }
    out
}

/// Test time origin + `ms` milliseconds.
pub fn t_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap() + Duration::milliseconds(ms)
}

pub fn t(s: i64) -> DateTime<Utc> {
    t_ms(s * 1000)
}

pub fn reading_value(
    bed: &str,
    device: &str,
    code: Mdc,
    value: Value,
    unit: &str,
    at: DateTime<Utc>,
) -> Reading {
    Reading {
        bed: bed.into(),
        admission: Some(AdmissionId("adm-1".into())),
        device: device.into(),
        code,
        value,
        unit: unit.into(),
        device_time: None,
        received: at,
        source: Source::Simulated,
        status: Default::default(),
    }
}

pub fn reading(bed: &str, code: Mdc, v: f64, at: DateTime<Utc>) -> Reading {
    let (device, unit) = match code {
        Mdc::ECG_HEART_RATE => ("strap-1", "/min"),
        Mdc::PULS_OXIM_SAT_O2 | Mdc::PULS_OXIM_PULS_RATE => (
            "oxi-1",
            if code == Mdc::PULS_OXIM_SAT_O2 {
                "%"
            } else {
                "/min"
            },
        ),
        Mdc::RESP_RATE => ("resp-1", "/min"),
        Mdc::TEMP_BODY => ("thermo-1", "Cel"),
        _ => ("cuff-1", "mm[Hg]"),
    };
    reading_value(bed, device, code, Value::Number(v), unit, at)
}

pub fn special(bed: &str, code: Mdc, s: Special, at: DateTime<Utc>) -> Reading {
    let mut r = reading(bed, code, 0.0, at);
    r.value = Value::Special(s);
    r
}
