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
