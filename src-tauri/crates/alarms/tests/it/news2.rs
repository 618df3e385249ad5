//! NEWS2 (RCP 2017): every band edge of Chart 1, both SpO2 scales, risk
//! bands (Chart 3) including the single-3 rule, missing and stale parameters.

use chrono::Duration;
use vigil_alarms::news2::{
    response, score, score_air_or_oxygen, score_consciousness, score_pulse, score_respiration_rate,
    score_spo2, score_systolic, score_temperature,
};
use vigil_alarms::{
    AirOrOxygen, Consciousness, News2Input, News2Param, Observed, Risk, SpO2Scale, SubScore, ValidityWindows,
};
use vigil_model::{Mdc, Special};

use crate::{reading, reading_value, special, t};

#[track_caller]
fn check(name: &str, f: impl Fn(f64) -> u8, cases: &[(f64, u8)]) {
    for &(v, want) in cases {
        assert_eq!(f(v), want, "{name} {v}");
    }
}

#[test]
fn respiration_rate_edges() {
    check(
        "rr",
        score_respiration_rate,
        &[
            (0.0, 3),
            (8.0, 3),
            (9.0, 1),
            (11.0, 1),
            (12.0, 0),
            (20.0, 0),
            (21.0, 2),
            (24.0, 2),
            (25.0, 3),
            (60.0, 3),
            // Between two bands: the more severe one (issue 10: RR 8.5 scores 3, not 1).
            (8.49, 3),
            (8.5, 3),
            (8.99, 3),
            (11.5, 1),
            (20.01, 2),
            (20.5, 2),
            (24.5, 3),
        ],
    );
}

#[test]
fn spo2_scale_1_edges() {
    let f = |v| score_spo2(v, SpO2Scale::Scale1, Some(AirOrOxygen::Oxygen));
    check(
        "spo2 s1",
        f,
        &[
            (70.0, 3),
            (91.0, 3),
            (92.0, 2),
            (93.0, 2),
            (94.0, 1),
            (95.0, 1),
            (96.0, 0),
            (100.0, 0),
        ],
    );
    check(
        "spo2 s1 between bands",
        f,
        &[(91.49, 3), (91.5, 3), (93.5, 2), (95.5, 1)],
    );
    // Scale 1 does not depend on air/oxygen (oxygen scores separately).
    for v in [85.0, 92.0, 94.0, 97.0] {
        assert_eq!(
            score_spo2(v, SpO2Scale::Scale1, Some(AirOrOxygen::Air)),
            score_spo2(v, SpO2Scale::Scale1, Some(AirOrOxygen::Oxygen))
        );
    }
}

#[test]
fn spo2_scale_2_edges_below_93_ignore_oxygen() {
    for o in [Some(AirOrOxygen::Air), Some(AirOrOxygen::Oxygen), None] {
        let f = |v| score_spo2(v, SpO2Scale::Scale2, o);
        check(
            "spo2 s2",
            f,
            &[
                (70.0, 3),
                (83.0, 3),
                (84.0, 2),
                (85.0, 2),
                (86.0, 1),
                (87.0, 1),
                (88.0, 0),
                (92.0, 0),
                (83.5, 3),
                (87.5, 1),
            ],
        );
    }
    // Between 92 (0) and 93 (0 on air, 1 on oxygen or unknown): the more severe.
    assert_eq!(score_spo2(92.49, SpO2Scale::Scale2, Some(AirOrOxygen::Air)), 0);
    assert_eq!(score_spo2(92.49, SpO2Scale::Scale2, Some(AirOrOxygen::Oxygen)), 1);
    assert_eq!(score_spo2(92.49, SpO2Scale::Scale2, None), 1);
}

#[test]
fn spo2_scale_2_at_or_above_93_on_air_scores_0() {
    let f = |v| score_spo2(v, SpO2Scale::Scale2, Some(AirOrOxygen::Air));
    check(
        "spo2 s2 air",
        f,
        &[
            (92.5, 0),
            (93.0, 0),
            (94.0, 0),
            (95.0, 0),
            (96.0, 0),
            (97.0, 0),
            (100.0, 0),
        ],
    );
}

#[test]
fn spo2_scale_2_on_oxygen_edges() {
    let f = |v| score_spo2(v, SpO2Scale::Scale2, Some(AirOrOxygen::Oxygen));
    check(
        "spo2 s2 o2",
        f,
        &[
            (92.0, 0),
            (92.5, 1),
            (93.0, 1),
            (94.0, 1),
            (95.0, 2),
            (96.0, 2),
            (97.0, 3),
            (100.0, 3),
        ],
    );
    // Unknown air/oxygen is scored as oxygen (the higher score).
    let unknown = |v| score_spo2(v, SpO2Scale::Scale2, None);
    check("spo2 s2 unknown", unknown, &[(93.0, 1), (95.0, 2), (98.0, 3)]);
}

#[test]
fn air_or_oxygen_and_consciousness() {
    assert_eq!(score_air_or_oxygen(AirOrOxygen::Air), 0);
    assert_eq!(score_air_or_oxygen(AirOrOxygen::Oxygen), 2);
    assert_eq!(score_consciousness(Consciousness::Alert), 0);
    for c in [
        Consciousness::NewConfusion,
        Consciousness::Voice,
        Consciousness::Pain,
        Consciousness::Unresponsive,
    ] {
        assert_eq!(score_consciousness(c), 3, "{c:?}");
    }
}

#[test]
fn systolic_edges() {
    check(
        "sys",
        score_systolic,
        &[
            (40.0, 3),
            (90.0, 3),
            (91.0, 2),
            (100.0, 2),
            (101.0, 1),
            (110.0, 1),
            (111.0, 0),
            (219.0, 0),
            (220.0, 3),
            (280.0, 3),
            (90.4, 3),
            (90.5, 3),
            (110.5, 1),
            (219.5, 3),
        ],
    );
}

#[test]
fn pulse_edges() {
    check(
        "pulse",
        score_pulse,
        &[
            (20.0, 3),
            (40.0, 3),
            (41.0, 1),
            (50.0, 1),
            (51.0, 0),
            (90.0, 0),
            (91.0, 1),
            (110.0, 1),
            (111.0, 2),
            (130.0, 2),
            (131.0, 3),
            (220.0, 3),
            (90.5, 1),
            (50.5, 1),
            (130.49, 3),
        ],
    );
}

#[test]
fn temperature_edges_at_one_decimal() {
    check(
        "temp",
        score_temperature,
        &[
            (33.0, 3),
            (35.0, 3),
            (35.1, 1),
            (36.0, 1),
            (36.1, 0),
            (38.0, 0),
            (38.1, 1),
            (39.0, 1),
            (39.1, 2),
            (41.0, 2),
        ],
    );
    // More decimals: between two of the chart's 0.1 °C bands, the more severe.
    check(
        "temp between bands",
        score_temperature,
        &[
            (35.04, 3),
            (35.05, 3),
            (36.04, 1),
            (36.05, 1),
            (38.04, 1),
            (38.05, 1),
            (39.04, 2),
            (39.05, 2),
            (36.549, 0),
        ],
    );
}

#[test]
fn risk_bands_and_single_3_rule() {
    let cases = [
        (0, false, Risk::Low),
        (1, false, Risk::Low),
        (4, false, Risk::Low),
        (3, true, Risk::LowMedium),
        (4, true, Risk::LowMedium),
        (5, false, Risk::Medium),
        (5, true, Risk::Medium),
        (6, true, Risk::Medium),
        (7, false, Risk::High),
        (7, true, Risk::High),
        (20, true, Risk::High),
    ];
    for (total, three, want) in cases {
        assert_eq!(Risk::classify(total, three), want, "{total} {three}");
    }
    assert_eq!(response(0, Risk::Low), "Routine monitoring (minimum 12-hourly)");
    assert_eq!(response(3, Risk::Low), "Low: inform registered nurse; 4–6 hourly");
    assert_eq!(
        response(3, Risk::LowMedium),
        "Low-medium: urgent ward-based response"
    );
    assert_eq!(
        response(5, Risk::Medium),
        "Medium: key threshold for urgent response"
    );
    assert_eq!(response(9, Risk::High), "High: emergency response");
    assert!(Risk::Low < Risk::LowMedium && Risk::LowMedium < Risk::Medium && Risk::Medium < Risk::High);
}

/// A complete, normal input observed at t(0) (all scores 0).
fn normal() -> News2Input {
    let at = t(0);
    News2Input {
        respiration_rate: Some(Observed::device(16.0, at)),
        spo2: Some(Observed::device(97.0, at)),
        spo2_scale: None,
        air_or_oxygen: Some(Observed::entered(AirOrOxygen::Air, at, "rn-7")),
        systolic: Some(Observed::device(120.0, at)),
        pulse: Some(Observed::device(70.0, at)),
        consciousness: Some(Observed::entered(Consciousness::Alert, at, "rn-7")),
        temperature: Some(Observed::device(37.0, at)),
    }
}

#[test]
fn totals_and_risk_from_a_full_input() {
    let w = ValidityWindows::default();
    let s = score(&normal(), t(60), &w);
    assert_eq!(
        (s.total, s.risk, s.complete, s.any_single_3),
        (0, Risk::Low, true, false)
    );
    assert_eq!(s.response, "Routine monitoring (minimum 12-hourly)");
    assert_eq!(s.parameters.len(), 7);
    assert!(s.missing_parameters.is_empty() && s.stale_parameters.is_empty());

    // 2 (pulse 115) + 2 (RR 22) = 4, no single 3: low.
    let mut i = normal();
    i.pulse.as_mut().unwrap().value = 115.0;
    i.respiration_rate.as_mut().unwrap().value = 22.0;
    let s = score(&i, t(60), &w);
    assert_eq!((s.total, s.risk), (4, Risk::Low));
    assert_eq!(s.response, "Low: inform registered nurse; 4–6 hourly");

    // A single 3 (new confusion) alone: low-medium.
    let mut i = normal();
    i.consciousness.as_mut().unwrap().value = Consciousness::NewConfusion;
    let s = score(&i, t(60), &w);
    assert_eq!((s.total, s.risk, s.any_single_3), (3, Risk::LowMedium, true));

    // Oxygen (2) + SpO2 93 on scale 1 (2) + temp 38.5 (1) = 5: medium.
    let mut i = normal();
    i.air_or_oxygen.as_mut().unwrap().value = AirOrOxygen::Oxygen;
    i.spo2.as_mut().unwrap().value = 93.0;
    i.temperature.as_mut().unwrap().value = 38.5;
    let s = score(&i, t(60), &w);
    assert_eq!((s.total, s.risk), (5, Risk::Medium));
    assert_eq!(s.sub(News2Param::AirOrOxygen), SubScore::Scored { points: 2 });

    // Same on scale 2 with SpO2 93 on oxygen: 2 + 1 + 1 = 4: low.
    i.spo2_scale = Some(Observed::entered(SpO2Scale::Scale2, t(0), "dr-2"));
    let s = score(&i, t(60), &w);
    assert_eq!((s.total, s.risk, s.scale), (4, Risk::Low, SpO2Scale::Scale2));

    // Scale 2, SpO2 97 on air: 0.
    let mut i = normal();
    i.spo2_scale = Some(Observed::entered(SpO2Scale::Scale2, t(0), "dr-2"));
    let s = score(&i, t(60), &w);
    assert_eq!(s.sub(News2Param::Spo2), SubScore::Scored { points: 0 });

    // Deteriorating: RR 26 (3) + SpO2 90 (3) + O2 (2) + sys 95 (2) + pulse 125 (2) + temp 39.2 (2) = 14.
    let mut i = normal();
    i.respiration_rate.as_mut().unwrap().value = 26.0;
    i.spo2.as_mut().unwrap().value = 90.0;
    i.air_or_oxygen.as_mut().unwrap().value = AirOrOxygen::Oxygen;
    i.systolic.as_mut().unwrap().value = 95.0;
    i.pulse.as_mut().unwrap().value = 125.0;
    i.temperature.as_mut().unwrap().value = 39.2;
    let s = score(&i, t(60), &w);
    assert_eq!((s.total, s.risk), (14, Risk::High));
    assert_eq!(s.response, "High: emergency response");
}

#[test]
fn missing_parameters_are_listed_and_make_the_score_incomplete() {
    let mut i = normal();
    i.consciousness = None;
    i.systolic = None;
    let s = score(&i, t(60), &ValidityWindows::default());
    assert!(!s.complete);
    assert_eq!(
        s.missing_parameters,
        vec![News2Param::Systolic, News2Param::Consciousness]
    );
    assert_eq!(s.sub(News2Param::Systolic), SubScore::Missing);
    assert_eq!(s.total, 0);

    let empty = score(&News2Input::default(), t(0), &ValidityWindows::default());
    assert_eq!(empty.missing_parameters.len(), 7);
    assert_eq!((empty.total, empty.risk, empty.complete), (0, Risk::Low, false));
}

#[test]
fn stale_parameters_do_not_count_and_are_listed() {
    let w = ValidityWindows::default();
    let mut i = normal();
    i.respiration_rate.as_mut().unwrap().value = 30.0; // 3 points
                                                       // Exactly at the 5-minute window: still valid.
    let s = score(&i, t(300), &w);
    assert_eq!(s.sub(News2Param::RespirationRate), SubScore::Scored { points: 3 });
    assert!(s.complete);
    // One second later: stale, not counted, last points reported.
    let s = score(&i, t(301), &w);
    assert_eq!(
        s.sub(News2Param::RespirationRate),
        SubScore::Stale {
            age_s: 301,
            last_points: 3
        }
    );
    assert_eq!(s.total, 0);
    assert!(!s.complete);
    assert_eq!(
        s.stale_parameters,
        vec![News2Param::RespirationRate, News2Param::Spo2, News2Param::Pulse]
    );
    // NIBP valid 1 h, temperature/consciousness/oxygen 4 h.
    let s = score(&i, t(3601), &w);
    assert!(s.stale_parameters.contains(&News2Param::Systolic));
    assert!(!s.stale_parameters.contains(&News2Param::Temperature));
    let s = score(&i, t(4 * 3600 + 1), &w);
    for p in [
        News2Param::Temperature,
        News2Param::Consciousness,
        News2Param::AirOrOxygen,
    ] {
        assert!(s.stale_parameters.contains(&p), "{p:?}");
    }
    assert_eq!(s.stale_parameters.len(), 7);
    // Windows are configurable.
    let long = ValidityWindows {
        respiration_rate: Duration::hours(1),
        ..w
    };
    assert_eq!(
        score(&i, t(301), &long).sub(News2Param::RespirationRate),
        SubScore::Scored { points: 3 }
    );
}

#[test]
fn scale_2_with_stale_oxygen_status_scores_as_oxygen() {
    let w = ValidityWindows::default();
    let mut i = normal();
    i.spo2_scale = Some(Observed::entered(SpO2Scale::Scale2, t(0), "dr-2"));
    i.spo2 = Some(Observed::device(95.0, t(4 * 3600)));
    // air entered at t(0) becomes stale after 4 h
    let s = score(&i, t(4 * 3600 + 10), &w);
    assert!(s.stale_parameters.contains(&News2Param::AirOrOxygen));
    assert_eq!(s.sub(News2Param::Spo2), SubScore::Scored { points: 2 });
}

#[test]
fn input_takes_readings() {
    let mut i = News2Input::default();
    assert!(i.apply_reading(&reading("b", Mdc::ECG_HEART_RATE, 88.0, t(1))));
    assert!(i.apply_reading(&reading("b", Mdc::PULS_OXIM_SAT_O2, 95.0, t(1))));
    assert!(i.apply_reading(&reading("b", Mdc::RESP_RATE, 18.0, t(1))));
    assert!(i.apply_reading(&reading("b", Mdc::PRESS_BLD_NONINV_SYS, 130.0, t(1))));
    // 100.4 °F = 38.0 °C
    let f = reading_value(
        "b",
        "th",
        Mdc::TEMP_BODY,
        vigil_model::Value::Number(100.4),
        "[degF]",
        t(1),
    );
    assert!(i.apply_reading(&f));
    assert!((i.temperature.as_ref().unwrap().value - 38.0).abs() < 1e-9);
    // Oximeter pulse, later: replaces the ECG rate.
    assert!(i.apply_reading(&reading("b", Mdc::PULS_OXIM_PULS_RATE, 92.0, t(2))));
    assert_eq!(i.pulse.as_ref().unwrap().value, 92.0);
    // Older reading ignored, specials ignored, non-NEWS2 codes ignored.
    assert!(!i.apply_reading(&reading("b", Mdc::ECG_HEART_RATE, 50.0, t(1))));
    assert!(!i.apply_reading(&special("b", Mdc::RESP_RATE, Special::NaN, t(3))));
    assert!(!i.apply_reading(&reading("b", Mdc::PULS_OXIM_PERF_REL, 3.0, t(3))));
    assert_eq!(i.respiration_rate.as_ref().unwrap().value, 18.0);
    assert!(i.pulse.as_ref().unwrap().entered_by.is_none());
}

#[test]
fn score_serialises_snake_case() {
    let mut i = normal();
    i.consciousness.as_mut().unwrap().value = Consciousness::Voice;
    let s = score(&i, t(60), &ValidityWindows::default());
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["risk"], "low_medium");
    assert_eq!(j["scale"], "scale1");
    assert_eq!(j["parameters"][5]["parameter"], "consciousness");
    assert_eq!(j["parameters"][5]["score"]["status"], "scored");
    assert_eq!(j["parameters"][5]["score"]["points"], 3);
}
