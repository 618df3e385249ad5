//! Property tests of the alarm state machine: random sequences of readings,
//! technical conditions, ticks, pauses and acknowledgements on a monotonic
//! clock, checked against the IEC 60601-1-8 rules the engine promises.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use vigil_alarms::{
    AckTarget, AlarmEngine, AlarmEventKind, AlarmKind, AudioState, Direction, EndReason, Parameter, Priority,
    ResumeReason, SitePreset, TechnicalKind,
};
use vigil_model::{Mdc, Special, Value};

use crate::{reading, t_ms};

const BED: &str = "b";

#[derive(Debug, Clone)]
enum Action {
    Reading(Parameter, f64),
    Tick,
    Pause,
    AckAll,
    /// Acknowledge the alarms of a screen drawn some steps earlier.
    AckSeenEarlier,
    AckOne(usize),
    SensorOff(bool),
    LowBattery(bool),
}

fn action() -> impl Strategy<Value = Action> {
    let level = |vals: &'static [f64]| proptest::sample::select(vals);
    prop_oneof![
        4 => level(&[30.0, 45.0, 80.0, 125.0, 170.0]).prop_map(|v| Action::Reading(Parameter::HeartRate, v)),
        4 => level(&[75.0, 84.0, 88.0, 95.0]).prop_map(|v| Action::Reading(Parameter::Spo2, v)),
        2 => level(&[3.0, 6.0, 16.0, 35.0, 45.0]).prop_map(|v| Action::Reading(Parameter::RespRate, v)),
        1 => level(&[60.0, 85.0, 120.0, 170.0, 210.0]).prop_map(|v| Action::Reading(Parameter::NibpSystolic, v)),
        3 => Just(Action::Tick),
        1 => Just(Action::Pause),
        1 => Just(Action::AckAll),
        1 => Just(Action::AckSeenEarlier),
        1 => (0usize..8).prop_map(Action::AckOne),
        1 => any::<bool>().prop_map(Action::SensorOff),
        1 => any::<bool>().prop_map(Action::LowBattery),
    ]
}

fn code(p: Parameter) -> Mdc {
    p.mdc()
}

fn beyond(e: &AlarmEngine, p: Parameter, d: Direction, v: f64) -> bool {
    let l = e.limit(BED, p).unwrap();
    match d {
        Direction::Low => l.effective_low().is_some_and(|b| v < b),
        Direction::High => l.effective_high().is_some_and(|b| v > b),
    }
}

/// Delays short enough for random sequences to reach them often.
fn preset(delays: [i64; 3]) -> SitePreset {
    let mut p = SitePreset::standard();
    for (param, d) in [
        (Parameter::HeartRate, delays[0]),
        (Parameter::Spo2, delays[1]),
        (Parameter::RespRate, delays[2]),
    ] {
        p.adult.0.get_mut(&param).unwrap().delay = Duration::milliseconds(d);
    }
    p.audio_pause = Duration::seconds(20);
    p
}

struct Pause {
    until: DateTime<Utc>,
    ceiling: Option<Priority>,
}

fn check(delays: [i64; 3], steps: Vec<(i64, Action)>) -> Result<(), TestCaseError> {
    let mut e = AlarmEngine::new(preset(delays));
    let pause_len = e.audio_pause_duration();
    let mut now = t_ms(0);
    // Harness model.
    let mut last: BTreeMap<Parameter, f64> = BTreeMap::new();
    let mut excursion: BTreeMap<(Parameter, Direction), DateTime<Utc>> = BTreeMap::new();
    let mut started: BTreeSet<u64> = BTreeSet::new();
    let mut ended: BTreeSet<u64> = BTreeSet::new();
    let mut high: BTreeSet<u64> = BTreeSet::new();
    let mut acked_since_high: BTreeSet<u64> = BTreeSet::new();
    let mut pause: Option<Pause> = None;
    // Ids on a screen drawn a few steps ago.
    let mut seen_earlier: BTreeSet<u64> = BTreeSet::new();

    for (step, (dt, act)) in steps.into_iter().enumerate() {
        if step % 5 == 0 {
            seen_earlier = e.state(BED, now).active.iter().map(|a| a.id).collect();
        }
        now += Duration::milliseconds(dt);
        let before = e.state(BED, now);
        let mut new_pause = None;
        let events = match act {
            Action::Reading(p, v) => {
                last.insert(p, v);
                for d in [Direction::Low, Direction::High] {
                    if beyond(&e, p, d, v) {
                        excursion.entry((p, d)).or_insert(now);
                    } else {
                        excursion.remove(&(p, d));
                    }
                }
                e.on_reading(&reading(BED, code(p), v, now), now)
            }
            Action::Tick => e.tick(now),
            Action::Pause => {
                // Only what was sounding (or would sound but for a pause) counts.
                let ceiling = before
                    .active
                    .iter()
                    .filter(|a| !a.latched && !a.acknowledged)
                    .map(|a| a.priority)
                    .max();
                new_pause = Some(Pause {
                    until: now + pause_len,
                    ceiling,
                });
                e.pause_audio(BED, "rn", now)
            }
            Action::AckAll => {
                // What the screen showed when the nurse clicked: only those.
                let seen: BTreeSet<u64> = before.active.iter().map(|a| a.id).collect();
                let ev = e
                    .acknowledge(BED, AckTarget::Ids(seen.iter().copied().collect()), "rn", now)
                    .unwrap();
                for x in &ev {
                    prop_assert!(
                        x.id.is_none_or(|id| seen.contains(&id)),
                        "acknowledged an unseen alarm"
                    );
                }
                ev
            }
            Action::AckSeenEarlier => {
                // A click on an old screen: never acknowledges alarms that started since.
                let ev = e
                    .acknowledge(
                        BED,
                        AckTarget::Ids(seen_earlier.iter().copied().collect()),
                        "rn",
                        now,
                    )
                    .unwrap();
                for x in &ev {
                    prop_assert!(
                        x.id.is_none_or(|id| seen_earlier.contains(&id)),
                        "acknowledged an alarm the nurse never saw: {:?}",
                        x
                    );
                }
                ev
            }
            Action::AckOne(i) => match before.active.get(i) {
                Some(a) => e.acknowledge(BED, AckTarget::Alarm(a.id), "rn", now).unwrap(),
                None => vec![],
            },
            Action::SensorOff(on) => {
                if on {
                    // The oximeter's measurements are no longer valid.
                    last.remove(&Parameter::Spo2);
                    excursion.retain(|(p, _), _| *p != Parameter::Spo2);
                }
                e.on_technical(BED, "oxi-1", TechnicalKind::SensorOff, on, now)
            }
            Action::LowBattery(on) => e.on_technical(BED, "strap-1", TechnicalKind::LowBattery, on, now),
        };

        for (i, ev) in events.iter().enumerate() {
            prop_assert!(ev.at == now);
            match &ev.event {
                AlarmEventKind::Started { .. } | AlarmEventKind::Escalated { .. } => {
                    let id = ev.id.unwrap();
                    let pr = ev.priority.unwrap();
                    if matches!(ev.event, AlarmEventKind::Started { .. }) {
                        prop_assert!(started.insert(id), "id {} reused", id);
                        if let Some(AlarmKind::Physiological { parameter, direction }) = &ev.kind {
                            // Never before the condition delay.
                            let since = excursion.get(&(*parameter, *direction));
                            prop_assert!(since.is_some(), "started without a condition: {:?}", ev);
                            let delay = e.limit(BED, *parameter).unwrap().delay;
                            prop_assert!(
                                now - *since.unwrap() >= delay,
                                "started before its delay: {:?}",
                                ev
                            );
                        }
                    } else {
                        prop_assert!(started.contains(&id) && !ended.contains(&id));
                    }
                    if pr == Priority::High {
                        high.insert(id);
                        acked_since_high.remove(&id);
                    }
                    // A high, or a higher-priority, new condition breaks through a pause.
                    if let Some(p) = &pause {
                        if pr == Priority::High || Some(pr) > p.ceiling {
                            let next = events.get(i + 1).map(|n| &n.event);
                            let want = AlarmEventKind::AudioResumed {
                                reason: ResumeReason::Breakthrough {
                                    alarm: id,
                                    priority: pr,
                                },
                            };
                            prop_assert_eq!(next, Some(&want));
                        }
                    }
                }
                AlarmEventKind::Acknowledged { .. } => {
                    acked_since_high.insert(ev.id.unwrap());
                }
                AlarmEventKind::Rearmed { .. } => {
                    // Audible again: a high one must be acknowledged anew to end.
                    let id = ev.id.unwrap();
                    prop_assert!(started.contains(&id) && !ended.contains(&id));
                    acked_since_high.remove(&id);
                }
                AlarmEventKind::Ended { reason } => {
                    let id = ev.id.unwrap();
                    prop_assert!(started.contains(&id), "ended but never started");
                    prop_assert!(ended.insert(id), "ended twice: {}", id);
                    if *reason == EndReason::Recurred {
                        // Replaced by the same condition come back, sounding, at no lower
                        // priority: the new alarm carries the latch (it is high too).
                        let next = events.get(i + 1);
                        prop_assert!(
                            next.is_some_and(|n| matches!(n.event, AlarmEventKind::Started { .. })
                                && n.kind == ev.kind
                                && n.priority >= ev.priority),
                            "alarm {} replaced by something else: {:?}",
                            id,
                            next
                        );
                    } else if high.contains(&id) {
                        prop_assert!(
                            acked_since_high.contains(&id),
                            "high alarm {} ended unacknowledged",
                            id
                        );
                    }
                }
                AlarmEventKind::AudioResumed { reason } => {
                    prop_assert!(pause.is_some(), "resumed while not paused");
                    if *reason == ResumeReason::Expired {
                        prop_assert!(now >= pause.as_ref().unwrap().until);
                    } else {
                        prop_assert!(now < pause.as_ref().unwrap().until);
                    }
                    pause = None;
                }
                AlarmEventKind::AudioPaused { until, .. } => {
                    prop_assert_eq!(*until, now + pause_len);
                }
                AlarmEventKind::Latched => {
                    prop_assert_eq!(ev.priority, Some(Priority::High));
                }
                // The actions here never change limits.
                AlarmEventKind::LimitChanged { .. } => prop_assert!(false, "limit changed: {:?}", ev),
            }
        }

        if new_pause.is_some() {
            pause = new_pause;
        }
        let st = e.state(BED, now);
        let shown: BTreeSet<u64> = st.active.iter().map(|a| a.id).collect();
        prop_assert_eq!(st.highest, st.active.iter().map(|a| a.priority).max());
        for id in &started {
            // Started and not ended <=> shown.
            prop_assert_eq!(shown.contains(id), !ended.contains(id), "id {}", id);
        }
        for a in &st.active {
            if a.latched {
                prop_assert_eq!(a.priority, Priority::High, "only high alarms latch");
                prop_assert!(!a.audible);
            } else if let AlarmKind::Physiological { parameter, direction } = &a.kind {
                // A non-latched physiological alarm exists only while its value is beyond the limit.
                let v = last.get(parameter);
                prop_assert!(
                    v.is_some_and(|v| beyond(&e, *parameter, *direction, *v)),
                    "{:?}",
                    a
                );
            }
        }
        // The pause always ends by its expiry: never an endless snooze.
        match (&st.audio, &pause) {
            (
                AudioState::Paused {
                    until, remaining_s, ..
                },
                Some(p),
            ) => {
                prop_assert_eq!(*until, p.until);
                prop_assert!(now < *until && *remaining_s > 0 && *remaining_s <= pause_len.num_seconds());
                prop_assert!(st.active.iter().all(|a| !a.audible));
            }
            (AudioState::Paused { .. }, None) => prop_assert!(false, "paused without an operator pause"),
            (AudioState::Normal, Some(p)) => prop_assert!(now >= p.until, "pause ended without an event"),
            (AudioState::Normal, None) => {}
        }
    }
    // Whatever happened, a tick after the longest pause leaves audio normal.
    let later = now + pause_len;
    e.tick(later);
    prop_assert_eq!(e.state(BED, later).audio, AudioState::Normal);
    Ok(())
}

/// Liveness (issue 10, item 1; ../shared/reference/alarms.md "What must
/// always hold"): a value beyond a limit sustained for at least the
/// condition delay always starts its alarm within the delay plus one tick,
/// whatever special values are interleaved (any rate below 100 %: the first
/// sample of the excursion is valid, the rest random).
fn sustained_condition_always_alarms(
    delay_s: i64,
    value: f64,
    special_mask: Vec<Option<Special>>,
) -> Result<(), TestCaseError> {
    let mut p = SitePreset::standard();
    p.adult.0.get_mut(&Parameter::Spo2).unwrap().delay = Duration::seconds(delay_s);
    let mut e = AlarmEngine::new(p);
    // 1 Hz samples, a tick half-way between samples, as the pipeline does.
    for (s, sp) in std::iter::once(None).chain(special_mask).enumerate() {
        let s = s as i64;
        let at = t_ms(s * 1000);
        let mut r = reading(BED, Mdc::PULS_OXIM_SAT_O2, value, at);
        if let Some(sp) = sp {
            r.value = Value::Special(sp);
        }
        e.on_reading(&r, at);
        e.tick(t_ms(s * 1000 + 500));
        let alarming = e.state(BED, at).active.iter().any(|a| {
            a.kind
                == AlarmKind::Physiological {
                    parameter: Parameter::Spo2,
                    direction: Direction::Low,
                }
        });
        if s > delay_s {
            prop_assert!(
                alarming,
                "SpO2 {} % for {} s (delay {} s) and no alarm",
                value,
                s,
                delay_s
            );
            // Once started it stays: specials never end it.
        }
    }
    Ok(())
}

fn special_value() -> impl Strategy<Value = Special> {
    proptest::sample::select(vec![
        Special::NaN,
        Special::NRes,
        Special::PosInfinity,
        Special::NegInfinity,
        Special::Reserved,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_sustained_condition_always_alarms_whatever_specials_are_interleaved(
        delay_s in 0i64..30,
        value in proptest::sample::select(vec![70.0, 80.0, 86.0, 89.0]),
        rate in 0.0f64..1.0,
        mask in proptest::collection::vec((0.0f64..1.0, special_value()), 40..90),
    ) {
        let mask = mask.into_iter().map(|(x, sp)| (x < rate).then_some(sp)).collect();
        sustained_condition_always_alarms(delay_s, value, mask)?;
    }

    #[test]
    fn alarm_state_machine_keeps_its_promises(
        delays in [0i64..6000, 0i64..6000, 0i64..6000],
        steps in proptest::collection::vec((0i64..4000, action()), 1..150),
    ) {
        check(delays, steps)?;
    }

    #[test]
    fn with_the_standard_delays(steps in proptest::collection::vec((0i64..3000, action()), 1..200)) {
        check([10_000, 10_000, 10_000], steps)?;
    }
}
