//! Site presets: defaults, JSON overrides, validation.

use chrono::Duration;
use vigil_alarms::{Limit, Parameter, PatientCategory, PresetError, Priority, SitePreset, TechnicalKind};

#[test]
fn standard_adult_defaults_match_the_reference() {
    let p = SitePreset::standard();
    let a = p.limits_for(PatientCategory::Adult);
    let lim = |x: Parameter| *a.get(x).unwrap();
    assert_eq!(
        (lim(Parameter::HeartRate).low, lim(Parameter::HeartRate).high),
        (Some(50.0), Some(120.0))
    );
    assert_eq!(
        (lim(Parameter::Spo2).low, lim(Parameter::Spo2).high),
        (Some(90.0), None)
    );
    assert_eq!(lim(Parameter::Spo2).critical_low, Some(85.0));
    assert_eq!(
        (lim(Parameter::RespRate).low, lim(Parameter::RespRate).high),
        (Some(8.0), Some(30.0))
    );
    assert_eq!(
        (
            lim(Parameter::NibpSystolic).low,
            lim(Parameter::NibpSystolic).high
        ),
        (Some(90.0), Some(160.0))
    );
    assert_eq!(
        (lim(Parameter::Temperature).low, lim(Parameter::Temperature).high),
        (Some(36.0), Some(39.0))
    );
    assert_eq!(lim(Parameter::HeartRate).delay, Duration::seconds(10));
    assert_eq!(lim(Parameter::Spo2).delay, Duration::seconds(10));
    assert_eq!(lim(Parameter::RespRate).delay, Duration::seconds(10));
    assert_eq!(lim(Parameter::NibpSystolic).delay, Duration::zero());
    assert_eq!(lim(Parameter::Temperature).delay, Duration::zero());
    assert_eq!(p.audio_pause, Duration::minutes(2));
    assert_eq!(p.technical_priority(TechnicalKind::SensorOff), Priority::Medium);
    assert_eq!(p.technical_priority(TechnicalKind::NoData), Priority::Medium);
    assert_eq!(
        p.technical_priority(TechnicalKind::Disconnected),
        Priority::Medium
    );
    assert_eq!(p.technical_priority(TechnicalKind::LowBattery), Priority::Low);
    assert_eq!(p.technical_priority(TechnicalKind::StoreFailure), Priority::High);
    // every category has every parameter
    for c in [
        PatientCategory::Adult,
        PatientCategory::Paediatric,
        PatientCategory::Neonatal,
    ] {
        assert_eq!(p.limits_for(c).0.len(), Parameter::ALL.len(), "{c:?}");
    }
}

#[test]
fn json_overrides_merge_over_the_standard_preset() {
    let json = r#"{
        "name": "ward 7",
        "audio_pause_s": 60,
        "adult": { "spo2": { "low": 92, "critical_low": 88, "delay_s": 15 }, "temperature": {} },
        "neonatal": { "heart_rate": { "low": 90, "high": 190, "priority_low": "high", "delay_s": 5 } },
        "technical": { "low_battery": "medium" },
        "news2": { "low_medium": null }
    }"#;
    let p = SitePreset::from_json(json).unwrap();
    assert_eq!(p.name, "ward 7");
    assert_eq!(p.audio_pause, Duration::seconds(60));
    let spo2 = p.limits_for(PatientCategory::Adult).get(Parameter::Spo2).unwrap();
    assert_eq!(
        (spo2.low, spo2.critical_low, spo2.delay),
        (Some(92.0), Some(88.0), Duration::seconds(15))
    );
    assert_eq!(spo2.priority_low, Priority::Medium);
    // `{}` turns a parameter off
    assert_eq!(
        p.limits_for(PatientCategory::Adult).get(Parameter::Temperature),
        Some(&Limit::off())
    );
    // untouched parameters keep the standard preset
    assert_eq!(
        p.limits_for(PatientCategory::Adult).get(Parameter::HeartRate),
        SitePreset::standard()
            .limits_for(PatientCategory::Adult)
            .get(Parameter::HeartRate)
    );
    let hr = p
        .limits_for(PatientCategory::Neonatal)
        .get(Parameter::HeartRate)
        .unwrap();
    assert_eq!(
        (hr.low, hr.priority_low, hr.delay),
        (Some(90.0), Priority::High, Duration::seconds(5))
    );
    assert_eq!(p.technical_priority(TechnicalKind::LowBattery), Priority::Medium);
    assert_eq!(p.news2.low_medium, None);
    assert_eq!(p.news2.high, Some(Priority::High));
}

#[test]
fn invalid_site_configs_are_refused() {
    let bad = [
        r#"{ "adult": { "heart_rate": { "low": 120, "high": 50 } } }"#,
        r#"{ "adult": { "spo2": { "low": 90, "critical_low": 92 } } }"#,
        r#"{ "adult": { "heart_rate": { "high": 120, "critical_high": 110 } } }"#,
        r#"{ "adult": { "heart_rate": { "low": 50, "delay_s": -1 } } }"#,
        r#"{ "audio_pause_s": 0 }"#,
        r#"{ "audio_pause_s": 3600 }"#,
        r#"{ "adult": { "pulse_oximetry": {} } }"#,
        r#"{ "snooze_forever": true }"#,
        r#"not json"#,
    ];
    for j in bad {
        assert!(SitePreset::from_json(j).is_err(), "{j}");
    }
    assert!(matches!(
        SitePreset::from_json(r#"{ "audio_pause_s": 0 }"#),
        Err(PresetError::AudioPause)
    ));
    assert!(matches!(
        SitePreset::from_json(r#"{ "adult": { "heart_rate": { "low": 120, "high": 50 } } }"#),
        Err(PresetError::Limit(_))
    ));
    assert_eq!(SitePreset::from_json("{}").unwrap(), SitePreset::standard());
}

#[test]
fn preset_serialises_with_snake_case_keys_and_seconds() {
    let j = serde_json::to_value(SitePreset::standard()).unwrap();
    assert_eq!(j["audio_pause_s"], 120.0);
    assert_eq!(j["adult"]["heart_rate"]["delay_s"], 10.0);
    assert_eq!(j["adult"]["spo2"]["priority_low"], "medium");
    assert_eq!(j["technical"]["store_failure"], "high");
    assert_eq!(
        serde_json::to_value(PatientCategory::Paediatric).unwrap(),
        "paediatric"
    );
}
