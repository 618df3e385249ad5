use chrono::TimeDelta;
use chrono_tz::Europe::London;
use vigil_report::chart::{chart_svg, segments, TimeAxis, PALETTE};

use crate::fixture;

fn axis() -> TimeAxis {
    TimeAxis {
        from: fixture::from(),
        to: fixture::to(),
        tz: London,
    }
}

fn polylines_with_stroke(svg: &str, colour: &str) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter(|p| {
            p.split("/>")
                .next()
                .unwrap_or("")
                .contains(&format!("stroke=\"{colour}\""))
        })
        .count()
}

/// The text of every `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split("</text>").next()?.trim().to_string()))
        .collect()
}

#[test]
fn a_series_with_one_gap_is_two_polylines() {
    let hr = fixture::charts().remove(0);
    let svg = chart_svg(std::slice::from_ref(&hr), &axis(), 523.0, 110.0).unwrap();
    assert_eq!(
        polylines_with_stroke(&svg, PALETTE[0]),
        2,
        "one line before the gap, one after"
    );
    assert!(svg.contains("no data"), "the gap is labelled");
}

#[test]
fn without_the_gap_it_is_one_polyline() {
    let mut hr = fixture::charts().remove(0);
    hr.samples = fixture::minutely(|_| 70.0);
    hr.samples
        .extend((0..90).map(|m| (fixture::gap_from() + TimeDelta::minutes(m), 70.0)));
    hr.samples.sort_by_key(|s| s.0);
    let svg = chart_svg(std::slice::from_ref(&hr), &axis(), 523.0, 110.0).unwrap();
    assert_eq!(polylines_with_stroke(&svg, PALETTE[0]), 1);
}

#[test]
fn silence_up_to_the_gap_factor_is_joined_and_longer_is_split() {
    let t0 = fixture::from();
    let i = TimeDelta::minutes(1);
    let s = vec![(t0, 1.0), (t0 + i * 3, 2.0), (t0 + i * 7, 3.0), (t0 + i * 8, 4.0)];
    let runs = segments(&s, i);
    assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
}

#[test]
fn panels_share_one_axis_labelled_in_local_time_with_the_zone() {
    let charts = fixture::charts();
    let svg = chart_svg(&charts, &axis(), 523.0, 105.0).unwrap();
    for (i, c) in charts.iter().enumerate() {
        assert!(
            svg.contains(&format!("{} ({})", c.label, c.unit)),
            "panel title with unit"
        );
        assert!(polylines_with_stroke(&svg, PALETTE[i]) >= 1);
    }
    assert!(svg.contains("Local time (Europe/London, GMT/BST)"));
    // Ticks are local (every 2 h here): after 00:00 GMT the clock jumps, so
    // the next tick an hour later is 02:00 BST, and 01:00 never appears.
    let texts = texts(&svg);
    let ticks: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| t.len() == 5 && t.as_bytes()[2] == b':')
        .collect();
    assert_eq!(
        ticks,
        ["18:00", "20:00", "22:00", "00:00", "02:00", "04:00", "06:00", "08:00", "10:00", "12:00"]
    );
    assert!(
        svg.contains("NaN") && svg.contains("NRes"),
        "special values are marked"
    );
    assert!(
        texts.iter().any(|t| t == "clocks change GMT→BST"),
        "the clock change is marked on the axis"
    );
    assert!(
        svg.contains("SpO2 low") && svg.contains("NEWS2 3"),
        "event labels"
    );
}

#[test]
fn a_chart_with_no_samples_says_so() {
    let mut c = fixture::charts().remove(1);
    c.samples.clear();
    let svg = chart_svg(&[c], &axis(), 523.0, 105.0).unwrap();
    assert!(svg.contains("no data in this range"));
    assert_eq!(polylines_with_stroke(&svg, PALETTE[0]), 0);
}
