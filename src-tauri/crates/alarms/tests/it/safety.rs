//! Issue 10: ways a real, sustained condition could go unheard. Each test
//! states what a nurse needs (IEC 60601-1-8, ../shared/reference/alarms.md
//! "What must always hold") and failed on the engine before the fix.

use chrono::Duration;
use vigil_alarms::news2::score;
use vigil_alarms::{
    AckTarget, AirOrOxygen, AlarmEngine, AlarmEventKind, AlarmKind, Consciousness, Direction, EndReason,
    News2Input, Observed, Parameter, PatientCategory, Priority, RearmReason, ResumeReason, SitePreset,
    TechnicalKind, ValidityWindows,
};
use vigil_model::Mdc;

use crate::{engine, phys, reading, run, t, t_ms};

const BED: &str = "bed-3";

fn audible(e: &AlarmEngine, kind: &AlarmKind, at: chrono::DateTime<chrono::Utc>) -> bool {
    e.state(BED, at)
        .active
        .iter()
        .any(|a| &a.kind == kind && a.audible)
}

fn shown_ids(e: &AlarmEngine, at: chrono::DateTime<chrono::Utc>) -> Vec<u64> {
    e.state(BED, at).active.iter().map(|a| a.id).collect()
}

/// Item 6: an acknowledgement of a persisting condition expires.
#[test]
fn an_acknowledged_condition_that_persists_sounds_again_after_the_reminder_time() {
    let mut e = engine();
    // Temperature 39.5 (high, medium), diastolic 100, HR 125: all alarm.
    let vitals = |hr: f64, temp: f64, dia: f64| {
        move |_| {
            vec![
                (Mdc::ECG_HEART_RATE, hr),
                (Mdc::TEMP_BODY, temp),
                (Mdc::PRESS_BLD_NONINV_DIA, dia),
            ]
        }
    };
    run(&mut e, 0, 12, vitals(125.0, 39.5, 100.0));
    let ids = shown_ids(&e, t(12));
    assert_eq!(ids.len(), 3);
    e.acknowledge(BED, AckTarget::Ids(ids), "rn-7", t(13)).unwrap();
    assert_eq!(e.state(BED, t(13)).sounding, None);
    // Unchanged for 9 minutes: still acknowledged.
    run(&mut e, 14, 13 + 9 * 60, vitals(125.0, 39.5, 100.0));
    assert_eq!(e.state(BED, t(13 + 9 * 60)).sounding, None);
    // Ten minutes after the acknowledgement every one of them sounds again.
    let ev = run(&mut e, 14 + 9 * 60, 13 + 10 * 60, vitals(125.0, 39.5, 100.0));
    let rearmed: Vec<_> = ev
        .iter()
        .filter(|x| {
            x.event
                == AlarmEventKind::Rearmed {
                    reason: RearmReason::Reminder,
                }
        })
        .collect();
    assert_eq!(rearmed.len(), 3, "{ev:?}");
    assert!(rearmed.iter().all(|x| x.at == t_ms((13 + 10 * 60) * 1000 + 500)));
    assert_eq!(e.state(BED, t(13 + 10 * 60)).sounding, Some(Priority::Medium));
}

/// Item 6: "acknowledge all", then temperature 42 °C, diastolic 140 and HR
/// 149 an hour later were silent. A worse value re-arms at once.
#[test]
fn an_acknowledged_condition_that_worsens_sounds_again_at_once() {
    let mut e = engine();
    run(&mut e, 0, 12, |_| {
        vec![
            (Mdc::ECG_HEART_RATE, 125.0),
            (Mdc::TEMP_BODY, 39.5),
            (Mdc::PRESS_BLD_NONINV_DIA, 100.0),
        ]
    });
    let ids = shown_ids(&e, t(12));
    e.acknowledge(BED, AckTarget::Ids(ids), "rn-7", t(13)).unwrap();
    // Small drift: no re-arm (HR +5, temp +0.3, dia +5).
    let ev = run(&mut e, 14, 20, |_| {
        vec![
            (Mdc::ECG_HEART_RATE, 130.0),
            (Mdc::TEMP_BODY, 39.8),
            (Mdc::PRESS_BLD_NONINV_DIA, 105.0),
        ]
    });
    assert!(
        !ev.iter()
            .any(|x| matches!(x.event, AlarmEventKind::Rearmed { .. })),
        "{ev:?}"
    );
    // Worse by a step each (HR 149 stays below its critical 150: no escalation).
    let ev = run(&mut e, 21, 22, |_| {
        vec![
            (Mdc::ECG_HEART_RATE, 149.0),
            (Mdc::TEMP_BODY, 42.0),
            (Mdc::PRESS_BLD_NONINV_DIA, 140.0),
        ]
    });
    for p in [
        Parameter::HeartRate,
        Parameter::Temperature,
        Parameter::NibpDiastolic,
    ] {
        let kind = phys(p, Direction::High);
        assert!(
            ev.iter().any(|x| x.kind.as_ref() == Some(&kind)
                && matches!(
                    x.event,
                    AlarmEventKind::Rearmed {
                        reason: RearmReason::Worsened { .. }
                    }
                )),
            "{p:?} re-armed: {ev:?}"
        );
        assert!(audible(&e, &kind, t(22)), "{p:?} audible");
    }
    // The re-armed HR can be acknowledged again, and the step counts from there.
    let ids = shown_ids(&e, t(23));
    e.acknowledge(BED, AckTarget::Ids(ids), "rn-7", t(23)).unwrap();
    let ev = run(&mut e, 24, 25, |_| vec![(Mdc::ECG_HEART_RATE, 149.0)]);
    assert!(!ev
        .iter()
        .any(|x| matches!(x.event, AlarmEventKind::Rearmed { .. })));
}

/// Item 6: NEWS2 rising from 8 to 17 stayed silent after an acknowledgement.
#[test]
fn an_acknowledged_news2_alarm_sounds_again_on_any_rise_of_the_total() {
    let mut e = engine();
    let w = ValidityWindows::default();
    let at = t(0);
    let mut i = News2Input {
        respiration_rate: Some(Observed::device(22.0, at)), // 2
        spo2: Some(Observed::device(93.0, at)),             // 2
        spo2_scale: None,
        air_or_oxygen: Some(Observed::entered(AirOrOxygen::Oxygen, at, "rn-7")), // 2
        systolic: Some(Observed::device(120.0, at)),                             // 0
        pulse: Some(Observed::device(95.0, at)),                                 // 1
        consciousness: Some(Observed::entered(Consciousness::Alert, at, "rn-7")),
        temperature: Some(Observed::device(38.5, at)), // 1
    };
    let ev = e.on_news2(BED, score(&i, t(1), &w), t(1));
    assert_eq!(ev[0].priority, Some(Priority::High), "8: high risk");
    let id = ev[0].id.unwrap();
    e.acknowledge(BED, AckTarget::Ids(vec![id]), "rn-7", t(2))
        .unwrap();
    // Same total: stays acknowledged.
    assert!(e.on_news2(BED, score(&i, t(3), &w), t(3)).is_empty());
    // 8 → 11: sounds again.
    i.respiration_rate = Some(Observed::device(26.0, t(4))); // 3
    i.systolic = Some(Observed::device(95.0, t(4))); // 2
    let ev = e.on_news2(BED, score(&i, t(4), &w), t(4));
    assert_eq!(
        ev.last().unwrap().event,
        AlarmEventKind::Rearmed {
            reason: RearmReason::Worsened {
                from: Some(8.0),
                to: Some(11.0)
            }
        }
    );
    assert!(audible(&e, &AlarmKind::News2, t(4)));
}

/// Item 7: "acknowledge all" acknowledges only what the screen displayed.
#[test]
fn acknowledging_what_was_displayed_leaves_a_newer_alarm_unacknowledged() {
    let mut e = engine();
    run(&mut e, 0, 11, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]);
    let displayed = shown_ids(&e, t(11));
    assert_eq!(displayed.len(), 1);
    // A high SpO2 alarm starts 100 ms before the click lands.
    e.on_reading(
        &reading(BED, Mdc::PRESS_BLD_NONINV_SYS, 60.0, t_ms(11_900)),
        t_ms(11_900),
    );
    let ev = e
        .acknowledge(BED, AckTarget::Ids(displayed.clone()), "rn-7", t(12))
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].id, Some(displayed[0]));
    let st = e.state(BED, t(12));
    let newer = st.active.iter().find(|a| !displayed.contains(&a.id)).unwrap();
    assert_eq!(newer.priority, Priority::High);
    assert!(newer.audible && !newer.acknowledged);
    // An old screen's ids that have ended meanwhile are skipped, not errors.
    assert!(e
        .acknowledge(BED, AckTarget::Ids(vec![999_999]), "rn-7", t(13))
        .unwrap()
        .is_empty());
}

/// Item 9: the pause ceiling counts only alarms that were audible.
#[test]
fn an_acknowledged_technical_alarm_does_not_hold_back_a_new_alarm_during_a_pause() {
    let mut e = engine();
    let ev = e.on_technical(BED, "encrypted store", TechnicalKind::StoreFailure, true, t(0));
    let store = ev[0].id.unwrap();
    assert_eq!(ev[0].priority, Some(Priority::High));
    e.acknowledge(BED, AckTarget::Ids(vec![store]), "rn-7", t(1))
        .unwrap();
    e.pause_audio(BED, "rn-7", t(2));
    // A new medium SpO2 alarm: louder than anything that was audible.
    let ev = run(&mut e, 3, 14, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 88.0)]);
    assert!(
        ev.iter().any(|x| matches!(
            x.event,
            AlarmEventKind::AudioResumed {
                reason: ResumeReason::Breakthrough {
                    priority: Priority::Medium,
                    ..
                }
            }
        )),
        "{ev:?}"
    );
    assert!(audible(&e, &phys(Parameter::Spo2, Direction::Low), t(14)));
}

/// Item 9: any new high condition breaks through, even when a high one was audible.
#[test]
fn any_new_high_condition_breaks_through_a_pause() {
    let mut e = engine();
    e.on_reading(&reading(BED, Mdc::PRESS_BLD_NONINV_SYS, 60.0, t(0)), t(0)); // high
    e.pause_audio(BED, "rn-7", t(1));
    let ev = run(&mut e, 2, 13, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 80.0)]); // high, new
    assert!(ev.iter().any(|x| matches!(
        x.event,
        AlarmEventKind::AudioResumed {
            reason: ResumeReason::Breakthrough {
                priority: Priority::High,
                ..
            }
        }
    )));
}

/// Item 5: discharge ends the patient's alarms, not the equipment's.
#[test]
fn discharge_keeps_technical_conditions_that_still_exist() {
    let mut e = engine();
    run(&mut e, 0, 11, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]);
    e.on_technical(BED, "oxi-1", TechnicalKind::Disconnected, true, t(12));
    e.on_technical(BED, "encrypted store", TechnicalKind::StoreFailure, true, t(12));
    let ev = e.discharge(BED, t(13));
    let ended: Vec<_> = ev.iter().filter_map(|x| x.kind.clone()).collect();
    assert_eq!(ended, vec![phys(Parameter::HeartRate, Direction::High)]);
    let st = e.state(BED, t(13));
    let kinds: Vec<_> = st
        .active
        .iter()
        .map(|a| match &a.kind {
            AlarmKind::Technical { kind, .. } => *kind,
            k => panic!("{k:?} survived discharge"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![TechnicalKind::StoreFailure, TechnicalKind::Disconnected]
    );
    assert!(st.active.iter().all(|a| a.audible));
    // They still end when their condition does.
    let ev = e.on_technical(BED, "oxi-1", TechnicalKind::Disconnected, false, t(14));
    assert!(matches!(
        ev[0].event,
        AlarmEventKind::Ended {
            reason: EndReason::ConditionEnded
        }
    ));
}

/// Item 4: a device that leaves a bed takes its alarms with it.
#[test]
fn forgetting_a_device_ends_its_alarms_at_that_bed_only() {
    let mut e = engine();
    run(&mut e, 0, 11, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 84.0)]);
    e.on_technical(BED, "oxi-1", TechnicalKind::LowBattery, true, t(11));
    e.on_technical("bed-4", "oxi-1", TechnicalKind::LowBattery, true, t(11));
    let ev = e.forget_device(BED, "oxi-1", t(12));
    assert_eq!(
        ev.iter()
            .filter(|x| matches!(x.event, AlarmEventKind::Ended { .. } | AlarmEventKind::Latched))
            .count(),
        2
    );
    // The high SpO2 alarm latches (a nurse must see it happened); nothing sounds.
    let st = e.state(BED, t(12));
    assert!(st.active.iter().all(|a| a.latched && !a.audible), "{st:?}");
    assert_eq!(e.state("bed-4", t(12)).active.len(), 1);
    // And a pending condition from it cannot start later.
    e.on_reading(&reading(BED, Mdc::ECG_HEART_RATE, 130.0, t(20)), t(20));
    e.forget_device(BED, "strap-1", t(21));
    assert!(e.tick(t(40)).is_empty());
}

/// Item 2 at the engine: while sensor off stands, the device's readings are
/// not alarmed on, and a pending condition cannot start.
#[test]
fn readings_from_a_device_whose_sensor_is_off_start_nothing() {
    let mut e = engine();
    e.on_reading(&reading(BED, Mdc::PULS_OXIM_SAT_O2, 84.0, t(0)), t(0));
    e.on_technical(BED, "oxi-1", TechnicalKind::SensorOff, true, t(1));
    let ev = run(&mut e, 2, 30, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 84.0)]);
    assert!(ev.is_empty(), "{ev:?}");
    // Sensor back on: the values count again, from a fresh delay.
    e.on_technical(BED, "oxi-1", TechnicalKind::SensorOff, false, t(31));
    let ev = run(&mut e, 32, 42, |_| vec![(Mdc::PULS_OXIM_SAT_O2, 84.0)]);
    let s: Vec<_> = ev
        .iter()
        .filter(|x| matches!(x.event, AlarmEventKind::Started { .. }))
        .collect();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].at, t(42));
}

/// Item 11: a late reading older than the latest value ends nothing.
#[test]
fn a_late_reading_does_not_end_an_active_alarm() {
    let mut e = engine();
    run(&mut e, 0, 11, |_| vec![(Mdc::ECG_HEART_RATE, 130.0)]);
    // A packet measured at 5 s (HR 80) arrives now.
    let ev = e.on_reading(&reading(BED, Mdc::ECG_HEART_RATE, 80.0, t(5)), t(12));
    assert!(ev.is_empty(), "{ev:?}");
    assert!(audible(&e, &phys(Parameter::HeartRate, Direction::High), t(12)));
}

/// Item 11: a value past its staleness window is not evaluated as current.
#[test]
fn a_stale_value_does_not_begin_a_condition_after_a_limit_change() {
    let mut e = engine();
    e.on_reading(&reading(BED, Mdc::ECG_HEART_RATE, 90.0, t(0)), t(0));
    // An hour later (no data since) the patient becomes a neonate (HR 100–200).
    e.set_patient(BED, PatientCategory::Neonatal);
    assert!(e.tick(t(3600)).is_empty());
    assert!(e.tick(t(3700)).is_empty());
    // With the window the caller gives, a current value does.
    e.on_reading_within(
        &reading(BED, Mdc::ECG_HEART_RATE, 90.0, t(3701)),
        Duration::seconds(6),
        t(3701),
    );
    let ev = e.tick(t(3711));
    assert_eq!(ev[0].kind, Some(phys(Parameter::HeartRate, Direction::Low)));
}

/// Item 11: default priorities must not understate NEWS2 single-3 and hypothermia.
#[test]
fn hypothermia_and_a_news2_single_3_are_at_least_medium() {
    let p = SitePreset::standard();
    for c in [
        PatientCategory::Adult,
        PatientCategory::Paediatric,
        PatientCategory::Neonatal,
    ] {
        let l = p.limits_for(c).get(Parameter::Temperature).unwrap();
        assert!(l.priority_low >= Priority::Medium, "{c:?}");
    }
    assert!(p.news2.low_medium >= Some(Priority::Medium));
    let mut e = engine();
    let ev = e.on_reading(&reading(BED, Mdc::TEMP_BODY, 34.9, t(0)), t(0));
    assert_eq!(ev[0].priority, Some(Priority::Medium));
}

/// A mute workstation is itself a high-priority technical alarm.
#[test]
fn alarm_sound_unavailable_is_a_high_technical_alarm() {
    let mut e = engine();
    let ev = e.on_technical(BED, "workstation", TechnicalKind::AudioUnavailable, true, t(0));
    assert_eq!(ev[0].priority, Some(Priority::High));
    assert_eq!(ev[0].message, "workstation at bed-3: ALARM SOUND UNAVAILABLE");
}

/// Item 8 at the engine: what a restart must keep comes back whole.
#[test]
fn settings_saved_and_restored_keep_limits_latched_alarms_and_news2_history() {
    let mut e = engine();
    e.set_patient(BED, PatientCategory::Paediatric);
    let copd = vigil_alarms::Limit::new(Some(86.0), None, Duration::seconds(10));
    e.set_limit(BED, Parameter::Spo2, copd, "rn-7", t(0)).unwrap();
    // A high NIBP alarm that latched (condition over, not acknowledged).
    e.on_reading(&reading(BED, Mdc::PRESS_BLD_NONINV_SYS, 50.0, t(1)), t(1));
    e.on_reading(&reading(BED, Mdc::PRESS_BLD_NONINV_SYS, 100.0, t(2)), t(2));
    let w = ValidityWindows::default();
    e.on_news2(BED, score(&News2Input::default(), t(3), &w), t(3));
    let saved = e.settings(BED);
    let json = serde_json::to_string(&saved).unwrap();

    let mut after = engine();
    after.restore(BED, serde_json::from_str(&json).unwrap());
    assert_eq!(after.settings(BED), saved);
    assert_eq!(after.category(BED), PatientCategory::Paediatric);
    assert_eq!(after.limit(BED, Parameter::Spo2), Some(copd));
    let st = after.state(BED, t(4));
    assert_eq!(st.active.len(), 1);
    assert!(st.active[0].latched && st.active[0].priority == Priority::High);
    assert_eq!(after.news2_history().history(BED).count(), 1);
    // Acknowledging the restored latched alarm ends it.
    let id = st.active[0].id;
    after
        .acknowledge(BED, AckTarget::Alarm(id), "rn-8", t(5))
        .unwrap();
    assert!(after.state(BED, t(5)).active.is_empty());
}
