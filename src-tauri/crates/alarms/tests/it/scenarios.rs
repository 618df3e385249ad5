//! Scenario tests of the alarm engine: clinical sequences, technical alarms,
//! operator actions, discharge, NEWS2 alarms, the snapshot contract.

use chrono::Duration;
use vigil_alarms::news2::score;
use vigil_alarms::{
    AckTarget, AirOrOxygen, AlarmEngine, AlarmEvent, AlarmEventKind, AlarmKind, AudioState, Consciousness,
    Direction, EndReason, Limit, News2Input, Observed, Parameter, PatientCategory, Priority, ResumeReason,
    SitePreset, TechnicalKind, ValidityWindows,
};
use vigil_model::{Mdc, Special};

use crate::{engine, phys, reading, run, special, t, t_ms};

fn started(ev: &[AlarmEvent]) -> Vec<&AlarmEvent> {
    ev.iter()
        .filter(|e| matches!(e.event, AlarmEventKind::Started { .. }))
        .collect()
}

#[test]
fn deterioration_raises_the_right_alarms_in_order_after_their_delays() {
    let mut e = engine();
    e.set_patient("bed-3", PatientCategory::Adult);
    let ev = run(&mut e, 0, 60, |s| {
        let hr = if s < 10 { 80.0 } else { 80.0 + (s - 9) as f64 * 5.0 }.min(140.0); // > 120 from s = 18
        let spo2 = match s {
            ..=19 => 95.0,
            20..=39 => 88.0,
            _ => 83.0,
        };
        vec![(Mdc::ECG_HEART_RATE, hr), (Mdc::PULS_OXIM_SAT_O2, spo2)]
    });
    let seq: Vec<(Option<AlarmKind>, Option<Priority>, &str, i64)> = ev
        .iter()
        .map(|e| {
            let what = match e.event {
                AlarmEventKind::Started { .. } => "started",
                AlarmEventKind::Escalated { .. } => "escalated",
                _ => "other",
            };
            (e.kind.clone(), e.priority, what, (e.at - t(0)).num_seconds())
        })
        .collect();
    assert_eq!(
        seq,
        vec![
            // HR first > 120 at s = 18 (125 /min); 10 s delay.
            (
                Some(phys(Parameter::HeartRate, Direction::High)),
                Some(Priority::Medium),
                "started",
                28
            ),
            // SpO2 < 90 from s = 20; 10 s delay.
            (
                Some(phys(Parameter::Spo2, Direction::Low)),
                Some(Priority::Medium),
                "started",
                30
            ),
            // Below the critical 85 % at s = 40: escalated at once.
            (
                Some(phys(Parameter::Spo2, Direction::Low)),
                Some(Priority::High),
                "escalated",
                40
            ),
        ]
    );
    let st = e.state("bed-3", t(60));
    assert_eq!(st.highest, Some(Priority::High));
    assert_eq!(st.sounding, Some(Priority::High));
    assert_eq!(st.active[0].kind, phys(Parameter::Spo2, Direction::Low));
    assert_eq!(st.active[0].message, "SpO2 low 83 % < 85 % (critical)");
    assert_eq!(st.active[1].message, "HR high 140 /min > 120 /min");
    if let AlarmEventKind::Started { value, limit } = &started(&ev)[1].event {
        assert_eq!((*value, *limit), (Some(88.0), Some(90.0)));
    }
    assert_eq!(started(&ev)[1].message, "SpO2 low 88 % < 90 %");
}

#[test]
fn a_value_back_in_range_resets_the_delay() {
    let mut e = engine();
    // 9 s above, 1 s normal, 9 s above: never 10 s in a row.
    let ev = run(&mut e, 0, 18, |s| {
        vec![(Mdc::ECG_HEART_RATE, if s == 9 { 100.0 } else { 130.0 })]
    });
    assert!(started(&ev).is_empty(), "{ev:?}");
    let ev = run(&mut e, 19, 20, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]);
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(started(&ev)[0].at, t(20));
}

#[test]
fn a_condition_starts_on_tick_when_readings_are_sparse() {
    let mut e = engine();
    assert!(e
        .on_reading(&reading("b", Mdc::RESP_RATE, 35.0, t(0)), t(0))
        .is_empty());
    assert!(e.tick(t_ms(9_999)).is_empty());
    let ev = e.tick(t(10));
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(ev[0].message, "RR high 35 /min > 30 /min");
}

#[test]
fn nibp_and_temperature_alarm_on_the_first_value() {
    let mut e = engine();
    let ev = e.on_reading(&reading("b", Mdc::PRESS_BLD_NONINV_SYS, 85.0, t(0)), t(0));
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(ev[0].message, "NIBP sys low 85 mmHg < 90 mmHg");
    let ev = e.on_reading(&reading("b", Mdc::TEMP_BODY, 39.4, t(1)), t(1));
    assert_eq!(ev[0].message, "Temp high 39.4 °C > 39.0 °C");
    // 34.5 °C reported as 94.1 °F: converted and compared.
    let f = crate::reading_value(
        "c",
        "thermo-2",
        Mdc::TEMP_BODY,
        vigil_model::Value::Number(94.1),
        "[degF]",
        t(2),
    );
    let ev = e.on_reading(&f, t(2));
    assert_eq!(ev[0].kind, Some(phys(Parameter::Temperature, Direction::Low)));
    // Values at a limit are in range.
    let ev = e.on_reading(&reading("d", Mdc::PRESS_BLD_NONINV_SYS, 160.0, t(3)), t(3));
    assert!(ev.is_empty());
}

// Replaces "special values ... cancel pending conditions", which asserted that
// one NaN silences a real desaturation (issue 10, item 1). A special value is
// unknown, not in range: only a valid in-range value cancels a condition.
#[test]
fn special_values_are_never_alarmed_on_and_never_cancel_a_pending_condition() {
    let mut e = engine();
    for s in [
        Special::NaN,
        Special::NRes,
        Special::PosInfinity,
        Special::NegInfinity,
        Special::Reserved,
    ] {
        assert!(e
            .on_reading(&special("b", Mdc::PULS_OXIM_SAT_O2, s, t(0)), t(0))
            .is_empty());
    }
    e.on_reading(&reading("b", Mdc::PULS_OXIM_SAT_O2, 80.0, t(0)), t(0));
    e.on_reading(&special("b", Mdc::PULS_OXIM_SAT_O2, Special::NaN, t(5)), t(5));
    let ev = e.tick(t(10));
    let s = started(&ev);
    assert_eq!(s.len(), 1, "the desaturation alarms after its delay: {ev:?}");
    assert_eq!(s[0].kind, Some(phys(Parameter::Spo2, Direction::Low)));
    assert_eq!(
        s[0].priority,
        Some(Priority::High),
        "80 % is beyond the critical limit"
    );
}

#[test]
fn spo2_80_for_ten_minutes_with_every_tenth_sample_nan_alarms_after_its_delay() {
    let mut e = engine();
    let mut ev = Vec::new();
    for s in 0..600 {
        let r = if s % 10 == 9 {
            special("bed-3", Mdc::PULS_OXIM_SAT_O2, Special::NaN, t(s))
        } else {
            reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 80.0, t(s))
        };
        ev.extend(e.on_reading(&r, t(s)));
        ev.extend(e.tick(t_ms(s * 1000 + 500)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!((s[0].at - t(0)).num_seconds(), 10);
    let st = e.state("bed-3", t(600));
    assert!(st.active[0].audible);
}

#[test]
fn a_parameter_sending_only_special_values_is_a_technical_alarm_and_hides_the_old_number() {
    let mut e = engine();
    let mut ev = run(&mut e, 0, 12, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 84.0)]);
    assert_eq!(started(&ev).len(), 1);
    let a = &e.state("bed-3", t(12)).active[0];
    assert_eq!(a.value, Some(84.0));
    for s in 13..=30 {
        ev = e.on_reading(
            &special("bed-3", Mdc::PULS_OXIM_SAT_O2, Special::NRes, t(s)),
            t(s),
        );
        ev.extend(e.tick(t_ms(s * 1000 + 500)));
        let st = e.state("bed-3", t(s));
        let inop = st
            .active
            .iter()
            .find(|a| matches!(a.kind, AlarmKind::Technical { .. }));
        if s < 23 {
            assert!(inop.is_none(), "not before the preset's 10 s at {s}");
        } else {
            let inop = inop.expect("no valid measurement after 10 s");
            assert_eq!(
                inop.kind,
                AlarmKind::Technical {
                    device: "oxi-1".into(),
                    kind: TechnicalKind::NoValidMeasurement,
                    parameter: Some(Parameter::Spo2),
                }
            );
            assert!(
                inop.message.starts_with("SpO2 \u{2014} no valid measurement"),
                "{}",
                inop.message
            );
            assert!(inop.audible);
            let spo2 = st
                .active
                .iter()
                .find(|a| a.kind == phys(Parameter::Spo2, Direction::Low))
                .unwrap();
            assert_eq!(spo2.value, None, "the old number is not the current value");
            assert!(!spo2.message.contains("84"), "{}", spo2.message);
        }
    }
    // A valid value ends the technical alarm and is shown again.
    let ev = e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 83.0, t(31)), t(31));
    assert!(ev.iter().any(|x| matches!(x.event, AlarmEventKind::Ended { .. })));
    let st = e.state("bed-3", t(31));
    assert_eq!(st.active.len(), 1);
    assert_eq!(st.active[0].value, Some(83.0));
}

#[test]
fn sensor_off_raises_a_technical_alarm_and_no_physiological_alarm() {
    let mut e = engine();
    e.set_patient("bed-3", PatientCategory::Adult);
    let mut ev = run(&mut e, 0, 4, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 97.0)]);
    // Probe slips: one low value, then the oximeter reports sensor off and sends no values.
    ev.extend(e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 70.0, t(5)), t(5)));
    ev.extend(e.on_technical("bed-3", "oxi-1", TechnicalKind::SensorOff, true, t(6)));
    ev.extend(run(&mut e, 7, 40, |_| vec![]));
    let s = started(&ev);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(
        s[0].kind,
        Some(AlarmKind::Technical {
            device: "oxi-1".into(),
            kind: TechnicalKind::SensorOff,
            parameter: None,
        })
    );
    assert_eq!(s[0].priority, Some(Priority::Medium));
    assert_eq!(s[0].message, "oxi-1 at bed-3: sensor off");
    let st = e.state("bed-3", t(40));
    assert_eq!(st.active.len(), 1);
    assert!(st.active[0].audible);
    assert_eq!(st.active[0].signal, Priority::Medium.signal());
    // Sensor back on: the technical alarm ends (medium: no latch).
    let ev = e.on_technical("bed-3", "oxi-1", TechnicalKind::SensorOff, false, t(41));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Ended {
            reason: EndReason::ConditionEnded
        }
    ));
    assert!(e.state("bed-3", t(41)).active.is_empty());
}

#[test]
fn sensor_off_ends_the_devices_physiological_alarms() {
    let mut e = engine();
    for s in 0..=12 {
        e.on_reading(&reading("b", Mdc::PULS_OXIM_SAT_O2, 88.0, t(s)), t(s));
        e.on_reading(&reading("b", Mdc::ECG_HEART_RATE, 130.0, t(s)), t(s));
    }
    assert_eq!(e.state("b", t(12)).active.len(), 2);
    let ev = e.on_technical("b", "oxi-1", TechnicalKind::Disconnected, true, t(13));
    assert!(ev.iter().any(|x| x.event
        == AlarmEventKind::Ended {
            reason: EndReason::MeasurementInvalid
        }
        && x.kind == Some(phys(Parameter::Spo2, Direction::Low))));
    let kinds: Vec<AlarmKind> = e.state("b", t(13)).active.into_iter().map(|a| a.kind).collect();
    assert!(
        kinds.contains(&phys(Parameter::HeartRate, Direction::High)),
        "the strap is still fine"
    );
    assert!(!kinds.contains(&phys(Parameter::Spo2, Direction::Low)));
}

#[test]
fn technical_priorities_and_no_duplicates() {
    let mut e = engine();
    let a = e.on_technical("b", "store", TechnicalKind::StoreFailure, true, t(0));
    assert_eq!(a[0].priority, Some(Priority::High));
    assert!(e
        .on_technical("b", "store", TechnicalKind::StoreFailure, true, t(1))
        .is_empty());
    let b = e.on_technical("b", "strap-1", TechnicalKind::LowBattery, true, t(2));
    assert_eq!(b[0].priority, Some(Priority::Low));
    let c = e.on_technical("b", "central", TechnicalKind::DeliveryFailure, true, t(3));
    assert_eq!(c[0].priority, Some(Priority::Medium));
    let d = e.on_technical("b", "strap-1", TechnicalKind::NoData, true, t(4));
    assert_eq!(d[0].message, "strap-1 at b: no data");
    // A high technical alarm latches too.
    let ev = e.on_technical("b", "store", TechnicalKind::StoreFailure, false, t(5));
    assert_eq!(ev[0].event, AlarmEventKind::Latched);
    // Clearing a condition that is not active does nothing.
    assert!(e
        .on_technical("b", "strap-9", TechnicalKind::NoData, false, t(6))
        .is_empty());
}

#[test]
fn high_alarms_latch_until_acknowledged_others_clear() {
    let mut e = engine();
    // Medium HR alarm, then back in range: ends.
    run(&mut e, 0, 10, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]);
    let ev = e.on_reading(&reading("bed-3", Mdc::ECG_HEART_RATE, 90.0, t(11)), t(11));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Ended {
            reason: EndReason::ConditionEnded
        }
    ));
    assert!(e.state("bed-3", t(11)).active.is_empty());
    // High SpO2 alarm (critical from the start), then back in range: latched.
    let ev = run(&mut e, 20, 30, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 80.0)]);
    let id = started(&ev)[0].id.unwrap();
    assert_eq!(started(&ev)[0].priority, Some(Priority::High));
    let ev = e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 97.0, t(31)), t(31));
    assert_eq!(ev[0].event, AlarmEventKind::Latched);
    let st = e.state("bed-3", t(200));
    assert_eq!(st.active.len(), 1);
    assert!(st.active[0].latched && !st.active[0].audible);
    assert_eq!(st.highest, Some(Priority::High));
    assert_eq!(st.sounding, None);
    assert!(e.tick(t(500)).is_empty());
    let ev = e
        .acknowledge("bed-3", AckTarget::Alarm(id), "rn-7", t(501))
        .unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].event, AlarmEventKind::Acknowledged { user: "rn-7".into() });
    assert_eq!(
        ev[1].event,
        AlarmEventKind::Ended {
            reason: EndReason::Acknowledged
        }
    );
    assert!(e.state("bed-3", t(501)).active.is_empty());
    assert!(e
        .acknowledge("bed-3", AckTarget::Alarm(id), "rn-7", t(502))
        .is_err());
}

/// A desaturation that keeps coming back at a bed nobody attends. Liveness: every
/// episode sounds. And the screen shows the condition once, counting the unacknowledged
/// episodes since the first, not one latched entry per episode (288 a day at one every
/// 5 min); each replaced entry is logged as ended "recurred", so nothing is lost.
#[test]
fn a_condition_recurring_while_latched_sounds_again_and_is_shown_once_with_its_count() {
    let mut e = engine();
    let low = phys(Parameter::Spo2, Direction::Low);
    let mut first_at = None;
    let mut previous = None;
    for k in 0..50i64 {
        let t0 = k * 300;
        let ev = run(&mut e, t0, t0 + 30, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 80.0)]);
        let s = started(&ev);
        assert_eq!(s.len(), 1, "episode {k} raises an alarm");
        let (id, at) = (s[0].id.unwrap(), s[0].at);
        let since = *first_at.get_or_insert(at);
        if let Some(old) = previous {
            let ended: Vec<_> = ev
                .iter()
                .filter(|e| e.event == AlarmEventKind::Ended { reason: EndReason::Recurred })
                .collect();
            assert_eq!(ended.len(), 1, "episode {k}: the latched alarm it replaces is logged");
            assert_eq!(ended[0].id, Some(old));
        }
        let st = e.state("bed-3", t(t0 + 30));
        let shown: Vec<_> = st.active.iter().filter(|a| a.kind == low).collect();
        assert_eq!(shown.len(), 1, "episode {k}: one alarm for the condition");
        assert_eq!(shown[0].id, id);
        assert!(shown[0].audible, "episode {k} sounds");
        assert_eq!(st.sounding, Some(Priority::High));
        assert_eq!(shown[0].recurred, k as u32);
        assert_eq!(shown[0].recurring_since, (k > 0).then_some(since));
        // Back in range, nobody responds: it latches.
        let ev = e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 97.0, t(t0 + 31)), t(t0 + 31));
        assert_eq!(ev[0].event, AlarmEventKind::Latched);
        previous = Some(id);
    }
    let st = e.state("bed-3", t(50 * 300 - 1));
    assert_eq!(st.active.len(), 1);
    assert!(st.active[0].latched && st.active[0].recurred == 49);
    // The count survives a restart with the latched alarm.
    let mut restarted = engine();
    restarted.restore("bed-3", e.settings("bed-3"));
    let again = restarted.state("bed-3", t(50 * 300));
    assert_eq!(
        (again.active[0].recurred, again.active[0].recurring_since),
        (49, first_at)
    );
    // A milder episode (medium) does not replace the latched critical one: both shown.
    let t0 = 50 * 300;
    let ev = run(&mut e, t0, t0 + 30, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 88.0)]);
    assert_eq!(started(&ev)[0].priority, Some(Priority::Medium));
    assert!(!ev.iter().any(|x| matches!(x.event, AlarmEventKind::Ended { .. })));
    let st = e.state("bed-3", t(t0 + 30));
    assert_eq!(st.active.len(), 2);
    assert!(st.active[0].latched && st.active[0].priority == Priority::High);
    e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 97.0, t(t0 + 31)), t(t0 + 31));
    assert_eq!(e.state("bed-3", t(t0 + 31)).active.len(), 1);
    // Once acknowledged, the next episode is a first one again.
    e.acknowledge("bed-3", AckTarget::Alarm(previous.unwrap()), "rn-7", t(t0 + 32))
        .unwrap();
    let t0 = 51 * 300;
    run(&mut e, t0, t0 + 30, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 80.0)]);
    let st = e.state("bed-3", t(t0 + 30));
    assert_eq!((st.active.len(), st.active[0].recurred), (1, 0));
    assert_eq!(st.active[0].recurring_since, None);
}

#[test]
fn acknowledging_an_active_alarm_silences_it_until_the_condition_ends() {
    let mut e = engine();
    let ev = run(&mut e, 0, 10, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 88.0)]);
    let id = started(&ev)[0].id.unwrap();
    let ev = e
        .acknowledge("bed-3", AckTarget::Ids(vec![id]), "rn-7", t(11))
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert!(
        e.acknowledge("bed-3", AckTarget::Ids(vec![id]), "rn-7", t(12))
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    let a = &e.state("bed-3", t(12)).active[0];
    assert!(a.acknowledged && !a.audible && !a.latched);
    // Escalation to high clears the acknowledgement: it must be heard again.
    let ev = e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 84.0, t(13)), t(13));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Escalated {
            from: Priority::Medium,
            ..
        }
    ));
    let a = &e.state("bed-3", t(13)).active[0];
    assert!(a.audible && !a.acknowledged && a.priority == Priority::High && a.id == id);
    // Acknowledged high alarm: ends without latching when the condition ends.
    e.acknowledge("bed-3", AckTarget::Alarm(id), "rn-7", t(14))
        .unwrap();
    let ev = e.on_reading(&reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 96.0, t(15)), t(15));
    assert_eq!(
        ev[0].event,
        AlarmEventKind::Ended {
            reason: EndReason::ConditionEnded
        }
    );
}

#[test]
fn audio_pause_expires_and_higher_priority_breaks_through() {
    let mut e = engine();
    run(&mut e, 0, 10, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]); // medium HR alarm
    let ev = e.pause_audio("bed-3", "rn-7", t(11));
    assert_eq!(
        ev[0].event,
        AlarmEventKind::AudioPaused {
            user: "rn-7".into(),
            until: t(131)
        }
    );
    assert_eq!(ev[0].id, None);
    let st = e.state("bed-3", t(71));
    assert_eq!(
        st.audio,
        AudioState::Paused {
            until: t(131),
            remaining_s: 60,
            by: "rn-7".into()
        }
    );
    assert_eq!(st.sounding, None);
    // Another medium alarm does not break through.
    let ev = run(&mut e, 12, 22, |_| {
        vec![(Mdc::ECG_HEART_RATE, 130.0), (Mdc::RESP_RATE, 35.0)]
    });
    assert_eq!(started(&ev).len(), 1);
    assert!(!ev
        .iter()
        .any(|x| matches!(x.event, AlarmEventKind::AudioResumed { .. })));
    // Expiry, even without a tick: the next call resumes audio.
    let ev = e.on_reading(&reading("bed-3", Mdc::ECG_HEART_RATE, 130.0, t(131)), t(131));
    assert_eq!(
        ev[0].event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Expired
        }
    );
    assert_eq!(e.state("bed-3", t(131)).audio, AudioState::Normal);
    assert_eq!(e.state("bed-3", t(131)).sounding, Some(Priority::Medium));

    // Pause again; a high alarm breaks through.
    e.pause_audio("bed-3", "rn-7", t(140));
    let ev = e.on_reading(&reading("bed-3", Mdc::PRESS_BLD_NONINV_SYS, 65.0, t(141)), t(141));
    assert_eq!(ev[0].priority, Some(Priority::High));
    let id = ev[0].id.unwrap();
    assert_eq!(
        ev[1].event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Breakthrough {
                alarm: id,
                priority: Priority::High
            }
        }
    );
    assert_eq!(e.state("bed-3", t(141)).audio, AudioState::Normal);
}

#[test]
fn pause_with_no_alarm_is_broken_by_any_new_alarm_and_can_be_cancelled() {
    let mut e = engine();
    e.pause_audio("b", "rn-1", t(0));
    let ev = e.on_technical("b", "strap-1", TechnicalKind::LowBattery, true, t(1));
    assert!(matches!(
        ev[1].event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Breakthrough { .. }
        }
    ));
    e.pause_audio("b", "rn-1", t(2));
    let ev = e.resume_audio("b", "rn-2", t(3));
    assert_eq!(
        ev[0].event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Operator { user: "rn-2".into() }
        }
    );
    assert!(e.resume_audio("b", "rn-2", t(4)).is_empty());
    // Tick expires a pause.
    e.pause_audio("b", "rn-1", t(10));
    assert!(e.tick(t(129)).is_empty());
    assert_eq!(
        e.tick(t(130))[0].event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Expired
        }
    );
}

#[test]
fn audio_pause_duration_is_configurable() {
    let mut p = SitePreset::standard();
    p.audio_pause = Duration::seconds(60);
    let mut e = AlarmEngine::new(p);
    let ev = e.pause_audio("b", "rn-1", t(0));
    assert_eq!(
        ev[0].event,
        AlarmEventKind::AudioPaused {
            user: "rn-1".into(),
            until: t(60)
        }
    );
}

#[test]
fn discharge_reverts_patient_specific_limits_and_clears_alarms() {
    let mut e = engine();
    e.set_patient("bed-3", PatientCategory::Adult);
    let copd = Limit::new(Some(86.0), None, Duration::seconds(10)).with_critical(Some(82.0), None);
    let ev = e.set_limit("bed-3", Parameter::Spo2, copd, "rn-7", t(0)).unwrap();
    assert_eq!(ev.len(), 1, "one log record for the change");
    assert_eq!(ev[0].id, None, "bed-level");
    assert_eq!(
        ev[0].event,
        AlarmEventKind::LimitChanged {
            parameter: Parameter::Spo2,
            from: e
                .preset()
                .limits_for(PatientCategory::Adult)
                .get(Parameter::Spo2)
                .copied(),
            to: Some(copd),
            user: Some("rn-7".into()),
        }
    );
    assert_eq!(
        ev[0].message,
        "SpO2 limits 86\u{2013}off (were 90\u{2013}off) set by rn-7"
    );
    assert!(e
        .set_limit(
            "bed-3",
            Parameter::Spo2,
            Limit::new(Some(95.0), Some(90.0), Duration::zero()),
            "rn-7",
            t(0),
        )
        .is_err());
    let st = e.state("bed-3", t(0));
    let l = st.limits.iter().find(|l| l.parameter == Parameter::Spo2).unwrap();
    assert!(l.patient_specific);
    assert_eq!(l.limit.low, Some(86.0));
    // 88 % is fine for this patient...
    let ev = run(&mut e, 0, 20, |_| {
        vec![(Mdc::PULS_OXIM_SAT_O2, 88.0), (Mdc::ECG_HEART_RATE, 130.0)]
    });
    assert_eq!(started(&ev).len(), 1, "HR only");
    e.pause_audio("bed-3", "rn-7", t(21));
    let ev = e.discharge("bed-3", t(22));
    assert!(ev.iter().any(|x| x.event
        == AlarmEventKind::Ended {
            reason: EndReason::Discharged
        }));
    assert!(ev.iter().any(|x| x.event
        == AlarmEventKind::AudioResumed {
            reason: ResumeReason::Discharged
        }));
    // The reverted limit is logged, with no user: the discharge did it.
    let reverted: Vec<_> = ev
        .iter()
        .filter(|x| matches!(x.event, AlarmEventKind::LimitChanged { user: None, .. }))
        .collect();
    assert_eq!(reverted.len(), 1);
    assert_eq!(
        reverted[0].message,
        "SpO2 limits back to 90\u{2013}off (were 86\u{2013}off): discharged"
    );
    let st = e.state("bed-3", t(22));
    assert!(st.active.is_empty());
    assert_eq!(st.audio, AudioState::Normal);
    let l = st.limits.iter().find(|l| l.parameter == Parameter::Spo2).unwrap();
    assert!(!l.patient_specific);
    assert_eq!(l.limit.low, Some(90.0));
    // ...but alarms for the next patient at the category default.
    let ev = run(&mut e, 30, 40, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 88.0)]);
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(started(&ev)[0].message, "SpO2 low 88 % < 90 %");
}

#[test]
fn category_and_limit_changes_apply_to_the_latest_value_at_the_next_tick() {
    let mut e = engine();
    // HR 90: fine for an adult, low for a neonate (100-200).
    e.on_reading(&reading("b", Mdc::ECG_HEART_RATE, 90.0, t(0)), t(0));
    e.set_patient("b", PatientCategory::Neonatal);
    assert!(e.tick(t(1)).is_empty()); // pending from t(1)
    let ev = e.tick(t(11));
    assert_eq!(started(&ev)[0].message, "HR low 90 /min < 100 /min");
    // Loosening the limit ends it at the next tick.
    e.set_limit(
        "b",
        Parameter::HeartRate,
        Limit::new(Some(80.0), Some(200.0), Duration::seconds(10)),
        "rn-1",
        t(11),
    )
    .unwrap();
    // (A current value: one past its window would neither begin nor end a condition.)
    let mut ev = e.on_reading(&reading("b", Mdc::ECG_HEART_RATE, 90.0, t(11)), t(11));
    ev.extend(e.tick(t(12)));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Ended {
            reason: EndReason::ConditionEnded
        }
    ));
    let ev = e.clear_limit("b", Parameter::HeartRate, "rn-1", t(13));
    assert_eq!(
        ev[0].message,
        "HR limits 100\u{2013}200 (were 80\u{2013}200) set by rn-1"
    );
    assert!(
        e.clear_limit("b", Parameter::HeartRate, "rn-1", t(14)).is_empty(),
        "nothing to clear"
    );
    assert_eq!(e.limit("b", Parameter::HeartRate).unwrap().low, Some(100.0));
    assert_eq!(e.category("b"), PatientCategory::Neonatal);
}

#[test]
fn news2_band_rises_become_alarms() {
    let mut e = engine();
    let w = ValidityWindows::default();
    let at = t(0);
    let mut i = News2Input {
        respiration_rate: Some(Observed::device(16.0, at)),
        spo2: Some(Observed::device(97.0, at)),
        spo2_scale: None,
        air_or_oxygen: Some(Observed::entered(AirOrOxygen::Air, at, "rn-7")),
        systolic: Some(Observed::device(120.0, at)),
        pulse: Some(Observed::device(70.0, at)),
        consciousness: Some(Observed::entered(Consciousness::Alert, at, "rn-7")),
        temperature: Some(Observed::device(37.0, at)),
    };
    assert!(e.on_news2("b", score(&i, t(1), &w), t(1)).is_empty());
    // Pulse 115 (2) + RR 22 (2) + temp 38.5 (1) = 5: medium.
    i.pulse = Some(Observed::device(115.0, t(2)));
    i.respiration_rate = Some(Observed::device(22.0, t(2)));
    i.temperature = Some(Observed::device(38.5, t(2)));
    let ev = e.on_news2("b", score(&i, t(2), &w), t(2));
    assert_eq!(ev[0].kind, Some(AlarmKind::News2));
    assert_eq!(ev[0].priority, Some(Priority::Medium));
    assert_eq!(
        ev[0].message,
        "NEWS2 5 (medium risk): Medium: key threshold for urgent response"
    );
    // Same band again: nothing new.
    assert!(e.on_news2("b", score(&i, t(3), &w), t(3)).is_empty());
    // + oxygen (2) = 7: escalated to high.
    i.air_or_oxygen = Some(Observed::entered(AirOrOxygen::Oxygen, t(4), "rn-7"));
    let ev = e.on_news2("b", score(&i, t(4), &w), t(4));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Escalated {
            from: Priority::Medium,
            ..
        }
    ));
    // An incomplete low score does not end it.
    let partial = News2Input {
        pulse: Some(Observed::device(80.0, t(5))),
        ..Default::default()
    };
    assert!(e.on_news2("b", score(&partial, t(5), &w), t(5)).is_empty());
    // … nor lower the score it shows as its reason: the nurse still sees why it alarms.
    let shown = e.state("b", t(5)).active.into_iter().find(|a| a.kind == AlarmKind::News2).unwrap();
    assert_eq!(shown.value, Some(7.0));
    assert!(shown.message.starts_with("NEWS2 7 (high risk)"), "{}", shown.message);
    // A complete low score does: high, so latched.
    let ok = News2Input {
        respiration_rate: Some(Observed::device(16.0, t(6))),
        spo2: Some(Observed::device(97.0, t(6))),
        air_or_oxygen: Some(Observed::entered(AirOrOxygen::Air, t(6), "rn-7")),
        systolic: Some(Observed::device(120.0, t(6))),
        pulse: Some(Observed::device(70.0, t(6))),
        temperature: Some(Observed::device(37.0, t(6))),
        ..i.clone()
    };
    let ev = e.on_news2("b", score(&ok, t(6), &w), t(6));
    assert_eq!(ev[0].event, AlarmEventKind::Latched);
    assert_eq!(e.news2_history().history("b").count(), 6);
    e.discharge("b", t(7));
    assert_eq!(e.news2_history().history("b").count(), 0);
}

#[test]
fn snapshot_serialises_for_the_ui() {
    let mut e = engine();
    run(&mut e, 0, 10, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 80.0)]);
    e.pause_audio("bed-3", "rn-7", t(11));
    let j = serde_json::to_value(e.state("bed-3", t(11))).unwrap();
    assert_eq!(j["category"], "adult");
    assert_eq!(j["highest"], "high");
    assert_eq!(j["audio"]["state"], "paused");
    assert_eq!(j["audio"]["remaining_s"], 120);
    let a = &j["active"][0];
    assert_eq!(a["kind"]["type"], "physiological");
    assert_eq!(a["kind"]["parameter"], "spo2");
    assert_eq!(a["kind"]["direction"], "low");
    assert_eq!(a["signal"]["colour"], "red");
    assert_eq!(a["signal"]["flash_hz"], 2.0);
    assert_eq!(j["limits"][0]["parameter"], "heart_rate");
    assert_eq!(j["limits"][0]["limit"]["delay_s"], 10.0);
    let ev = e.on_technical("bed-3", "oxi-1", TechnicalKind::SensorOff, true, t(12));
    let j = serde_json::to_value(&ev[0]).unwrap();
    assert_eq!(j["event"]["type"], "started");
    assert_eq!(j["kind"]["type"], "technical");
    assert_eq!(j["kind"]["kind"], "sensor_off");
    let back: AlarmEvent = serde_json::from_value(j).unwrap();
    assert_eq!(back, ev[0]);
}

#[test]
fn ids_continue_after_a_restart() {
    let mut e = engine();
    e.continue_ids_after(41);
    let ev = e.on_technical("b", "d", TechnicalKind::NoData, true, t(0));
    assert_eq!(ev[0].id, Some(42));
}

/// Issue 12, item 3: a number the oximeter itself marks invalid ("sensor
/// displaced", "invalid measurement detected") is no measurement: it neither
/// starts an alarm nor cancels a pending desaturation, and a run of them is
/// "no valid measurement" like a run of special values.
#[test]
fn values_the_device_marks_invalid_are_unknown_never_alarmed_on_nor_cancelling() {
    let invalid = |v: f64, s: i64| {
        let mut r = reading("bed-3", Mdc::PULS_OXIM_SAT_O2, v, t(s));
        r.status = vigil_model::Status {
            quality: vigil_model::Quality::Invalid,
            flags: vec!["sensor displaced".into()],
        };
        r
    };
    // An "invalid" 50 % for 8 s starts nothing.
    let mut e = engine();
    let mut ev = Vec::new();
    for s in 0..8 {
        ev.extend(e.on_reading(&invalid(50.0, s), t(s)));
        ev.extend(e.tick(t_ms(s * 1000 + 500)));
    }
    assert!(started(&ev).is_empty(), "alarmed on an invalid value: {ev:?}");
    // A real 80 % with an invalid in-range 98 % every third second still alarms after its delay.
    let mut e = engine();
    let mut ev = Vec::new();
    for s in 0..60 {
        let r = if s % 3 == 2 {
            invalid(98.0, s)
        } else {
            reading("bed-3", Mdc::PULS_OXIM_SAT_O2, 80.0, t(s))
        };
        ev.extend(e.on_reading(&r, t(s)));
        ev.extend(e.tick(t_ms(s * 1000 + 500)));
    }
    let s = started(&ev);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!((s[0].at - t(0)).num_seconds(), 10, "the invalid in-range values delayed the alarm");
    // Only invalid values for longer than the preset's time: technical alarm.
    let mut e = engine();
    let mut ev = Vec::new();
    for s in 0..15 {
        ev.extend(e.on_reading(&invalid(97.0, s), t(s)));
        ev.extend(e.tick(t_ms(s * 1000 + 500)));
    }
    assert!(
        started(&ev)
            .iter()
            .any(|a| matches!(a.kind, Some(AlarmKind::Technical { kind: TechnicalKind::NoValidMeasurement, .. }))),
        "{ev:?}"
    );
}
