use chrono::{TimeZone, Timelike};
use chrono_tz::{Asia::Kolkata, Europe::London, Tz};
use vigil_report::hourly_columns;

use crate::fixture::utc;

/// Columns for one local calendar day.
fn day(tz: Tz, y: i32, m: u32, d: u32) -> Vec<vigil_report::Column> {
    let start = tz
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let next = tz
        .with_ymd_and_hms(y, m, d + 1, 0, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc);
    hourly_columns(start, next, tz)
}

#[test]
fn an_ordinary_day_has_24_hours() {
    let cols = day(London, 2026, 6, 10);
    assert_eq!(cols.len(), 24);
    assert_eq!(cols[0].label(), "00:00 BST");
    assert_eq!(cols[23].label(), "23:00 BST");
}

#[test]
fn spring_forward_has_23_hours_and_no_0100() {
    let cols = day(London, 2026, 3, 29);
    assert_eq!(cols.len(), 23);
    let labels: Vec<String> = cols.iter().map(|c| c.label()).collect();
    assert_eq!(labels[0], "00:00 GMT");
    assert_eq!(labels[1], "02:00 BST", "01:00 does not exist that day");
    assert!(!labels.iter().any(|l| l.starts_with("01:")));
    for c in &cols {
        assert_eq!((c.end - c.start).num_minutes(), 60);
    }
}

#[test]
fn fall_back_has_25_hours_and_the_repeated_hour_is_labelled_apart() {
    let cols = day(London, 2026, 10, 25);
    assert_eq!(cols.len(), 25);
    let labels: Vec<String> = cols.iter().map(|c| c.label()).collect();
    assert_eq!(
        &labels[0..4],
        ["00:00 BST", "01:00 BST", "01:00 GMT", "02:00 GMT"]
    );
    let mut unique = labels.clone();
    unique.dedup();
    assert_eq!(unique.len(), 25, "every label distinct: {labels:?}");
    // Stored in UTC: the two 01:00 columns are consecutive UTC hours.
    assert_eq!(cols[1].start, utc(2026, 10, 25, 0, 0));
    assert_eq!(cols[2].start, utc(2026, 10, 25, 1, 0));
    // Contiguous, no overlaps.
    for w in cols.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn a_range_inside_an_hour_gets_that_whole_hour() {
    let cols = hourly_columns(utc(2026, 6, 10, 9, 20), utc(2026, 6, 10, 9, 40), London);
    assert_eq!(cols.len(), 1);
    assert_eq!(cols[0].start, utc(2026, 6, 10, 9, 0));
    assert_eq!(cols[0].time, "10:00");
}

#[test]
fn half_hour_zones_start_columns_on_the_local_hour() {
    let cols = hourly_columns(utc(2026, 6, 10, 0, 0), utc(2026, 6, 10, 3, 0), Kolkata);
    assert_eq!(cols.len(), 4);
    assert_eq!(cols[0].start, utc(2026, 6, 9, 23, 30));
    assert!(cols
        .iter()
        .all(|c| c.start.minute() == 30 && c.time.ends_with(":00")));
}

#[test]
fn an_empty_or_reversed_range_has_no_columns() {
    assert!(hourly_columns(utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0), London).is_empty());
    assert!(hourly_columns(utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 0, 0), London).is_empty());
}
