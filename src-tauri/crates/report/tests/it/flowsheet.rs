use chrono::TimeDelta;
use chrono_tz::Europe::London;
use vigil_report::{FlowInput, Flowsheet};

use crate::fixture::{self, utc};

#[test]
fn cells_hold_the_hours_median_and_empty_hours_stay_empty() {
    let fs = Flowsheet::build(
        fixture::from(),
        fixture::to(),
        London,
        &[FlowInput {
            label: "HR".into(),
            unit: "/min".into(),
            samples: fixture::hr(),
        }],
    );
    // 18:00 GMT to 12:00 BST across the spring change: 18 UTC hours, 18 columns.
    assert_eq!(fs.columns.len(), 18);
    let row = &fs.rows[0];
    assert_eq!(row.cells.len(), 18);
    // HR is 60 + the hour's index: every full hour's median is exact.
    assert_eq!(row.cells[0].value, Some(60.0));
    assert_eq!(row.cells[0].count, 60);
    assert_eq!(row.cells[17].value, Some(77.0));
    // The gap (04:00–05:30 UTC): hour 10 is empty (not zero), hour 11 has its second half.
    let i = fs
        .columns
        .iter()
        .position(|c| c.start == utc(2026, 3, 29, 4, 0))
        .unwrap();
    assert_eq!(fs.columns[i].label(), "05:00 BST");
    assert_eq!(row.cells[i].value, None);
    assert_eq!(row.cells[i].count, 0);
    assert_eq!(row.cells[i + 1].count, 30);
    assert_eq!(row.cells[i + 1].value, Some(71.0));
}

#[test]
fn the_median_resists_one_artefact_and_ignores_non_finite_values() {
    let t0 = utc(2026, 6, 1, 10, 0);
    let samples = vec![
        (t0, 70.0),
        (t0 + TimeDelta::minutes(10), 72.0),
        (t0 + TimeDelta::minutes(20), 250.0),
        (t0 + TimeDelta::minutes(30), f64::NAN),
        (t0 + TimeDelta::minutes(40), 71.0),
    ];
    let fs = Flowsheet::build(
        t0,
        t0 + TimeDelta::hours(1),
        London,
        &[FlowInput {
            label: "HR".into(),
            unit: "/min".into(),
            samples,
        }],
    );
    assert_eq!(fs.rows[0].cells[0].value, Some(71.5));
    assert_eq!(fs.rows[0].cells[0].count, 4);
}

/// The hour's NEWS2: the highest recorded score by clinical risk, then total
/// (RCP NEWS2 2017, chart 2), with its own parts; the hour's nurse entries.
#[test]
fn each_hour_shows_its_highest_risk_recorded_score_with_its_own_parts_and_its_entries() {
    let fs = Flowsheet::build(fixture::from(), fixture::to(), London, &[]).with_news2(
        fixture::from(),
        fixture::to(),
        &fixture::news2_scores(),
        &fixture::news2_notes(),
    );
    assert_eq!(fs.news2.len(), fs.columns.len(), "one NEWS2 cell per hour");
    let i = fs
        .columns
        .iter()
        .position(|c| c.start == fixture::news2_hour())
        .unwrap();
    assert_eq!(fs.columns[i].label(), "07:00 BST");
    let hour = &fs.news2[i];
    assert_eq!(hour.scores, 2);
    let shown = hour.score.as_ref().unwrap();
    // 3 with a single 3 (low-medium) outranks a 4 of low risk.
    assert_eq!(shown.text(), "3");
    let part = |label: &str| shown.parts.iter().find(|p| p.label == label).unwrap().text();
    assert_eq!(
        part("SpO2"),
        "3",
        "the shown score's own SpO2, not the hour's other score's"
    );
    assert_eq!(part("RR"), "0");
    assert_eq!(part("BP"), "0*", "entered by a nurse");
    assert_eq!(hour.entries.len(), 2);
    assert_eq!(hour.entries[0].text, "BP systolic 118 mmHg");
    // The incomplete score at 22:00 UTC: a lower bound, a missing and a stale part.
    let j = fs
        .columns
        .iter()
        .position(|c| c.start == utc(2026, 3, 28, 22, 0))
        .unwrap();
    let s = fs.news2[j].score.as_ref().unwrap();
    assert_eq!(s.text(), "\u{2265} 1");
    let part = |label: &str| s.parts.iter().find(|p| p.label == label).unwrap().text();
    assert_eq!((part("BP").as_str(), part("HR").as_str()), ("\u{2013}", "(1)"));
    // An hour with nothing recorded is empty, never 0.
    assert!(fs.news2[j + 1].score.is_none() && fs.news2[j + 1].entries.is_empty());
    assert_eq!(fs.news2[j + 1].scores, 0);
}

#[test]
fn equal_scores_show_the_latest_and_scores_outside_the_range_are_left_out() {
    use vigil_report::{News2Risk, News2Score};
    let t0 = utc(2026, 6, 1, 10, 0);
    let score = |min: i64, total: u8, risk: News2Risk| News2Score {
        at: t0 + TimeDelta::minutes(min),
        total,
        complete: true,
        risk,
        parts: Vec::new(),
    };
    let scores = [
        score(-5, 9, News2Risk::High),
        score(10, 5, News2Risk::Medium),
        score(20, 5, News2Risk::Medium),
        score(50, 2, News2Risk::Low),
        score(70, 9, News2Risk::High),
    ];
    // [10:00, 11:00): the 9s before and after are outside.
    let fs = Flowsheet::build(t0, t0 + TimeDelta::hours(1), London, &[]).with_news2(
        t0,
        t0 + TimeDelta::hours(1),
        &scores,
        &[],
    );
    assert_eq!(fs.columns.len(), 1);
    let shown = fs.news2[0].score.as_ref().unwrap();
    assert_eq!((shown.total, shown.at), (5, t0 + TimeDelta::minutes(20)));
    assert_eq!(fs.news2[0].scores, 3);
}
