//! Trend charts drawn with plotters' SVG backend.
//!
//! Several parameters share one time axis as **stacked panels**, one per
//! parameter, rather than overlaid on a second y axis: each keeps its own
//! unit and limits band, nobody has to work out which line belongs to which
//! axis, and it works the same for two parameters or five.
//!
//! A silence longer than [`GAP_FACTOR`] expected intervals ends the line: the
//! samples either side are separate polylines and the gap is shaded, so a
//! printed trend never joins across missing data.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::columns::hourly_columns;
use crate::error::ReportError;
use crate::model::{Chart, EventKind};

/// A gap is a silence longer than this many expected sample intervals.
pub const GAP_FACTOR: i32 = 3;

/// Series colours by panel index, as plotters writes them (`stroke="#1F5FA8"`).
pub const PALETTE: [&str; 4] = ["#1F5FA8", "#A8321F", "#1E7B34", "#6B3A98"];

// Charts are drawn at twice their printed size: plotters' SVG has whole-pixel
// coordinates, so this gives half-point resolution once scaled into the PDF.
const SCALE: f64 = 2.0;

/// The shared time axis of a chart group.
#[derive(Debug, Clone, Copy)]
pub struct TimeAxis {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
}

fn px(pt: f64) -> i32 {
    (pt * SCALE).round() as i32
}

// plotters' SVG writes font-size = size / 1.24.
fn font(pt: f64) -> FontDesc<'static> {
    ("sans-serif", pt * SCALE * 1.24).into_font()
}

fn rgb(hex: &str) -> RGBColor {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Splits time-ordered samples into runs with no silence longer than
/// `GAP_FACTOR × interval`. Non-finite values are dropped (they are specials).
pub fn segments(samples: &[(DateTime<Utc>, f64)], interval: TimeDelta) -> Vec<Vec<(DateTime<Utc>, f64)>> {
    let mut sorted: Vec<_> = samples.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    sorted.sort_by_key(|(t, _)| *t);
    let limit = interval * GAP_FACTOR;
    let mut out: Vec<Vec<(DateTime<Utc>, f64)>> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some(run) if s.0 - run[run.len() - 1].0 <= limit => run.push(s),
            _ => out.push(vec![s]),
        }
    }
    out
}

/// Tick step in hours so the axis has at most `max_ticks` labels.
fn tick_step_hours(span: TimeDelta, max_ticks: i64) -> u32 {
    let hours = span.num_hours().max(1);
    [1, 2, 3, 4, 6, 12, 24]
        .into_iter()
        .find(|s| hours / i64::from(*s) <= max_ticks)
        .unwrap_or(24)
}

/// Local-hour ticks within the axis: (UTC instant, "HH:MM", date label at midnight or first tick).
fn ticks(axis: &TimeAxis, max_ticks: i64) -> Vec<(DateTime<Utc>, String, Option<String>)> {
    let step = tick_step_hours(axis.to - axis.from, max_ticks);
    let mut out = Vec::new();
    for c in hourly_columns(axis.from, axis.to, axis.tz) {
        if c.start < axis.from {
            continue;
        }
        let l = c.start.with_timezone(&axis.tz);
        if l.hour() % step != 0 {
            continue;
        }
        let date = (out.is_empty() || l.hour() == 0).then(|| l.format("%d %b").to_string());
        out.push((c.start, c.time.clone(), date));
    }
    out
}

/// The zones seen on the axis, "Europe/London, BST/GMT".
pub fn zone_caption(axis: &TimeAxis) -> String {
    let mut abbrs: Vec<String> = Vec::new();
    for c in hourly_columns(axis.from, axis.to, axis.tz) {
        if !abbrs.contains(&c.zone) {
            abbrs.push(c.zone);
        }
    }
    format!("{}, {}", axis.tz.name(), abbrs.join("/"))
}

fn y_range(chart: &Chart, axis: &TimeAxis) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (t, v) in &chart.samples {
        if *t >= axis.from && *t < axis.to && v.is_finite() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
    }
    if let Some(l) = chart.limits {
        for v in [l.low, l.high].into_iter().flatten() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return (0.0, 100.0);
    }
    // A single value (one limit, flat data) still gets a readable scale.
    let pad = if hi - lo < 1e-9 {
        (hi.abs() * 0.05).max(1.0)
    } else {
        ((hi - lo) * 0.1).max(1.0)
    };
    (lo - pad, hi + pad)
}

fn event_colour(kind: EventKind) -> RGBColor {
    match kind {
        EventKind::Alarm => RGBColor(0xC0, 0x20, 0x20),
        EventKind::News2 => RGBColor(0xB0, 0x60, 0x00),
        EventKind::NurseEntry => RGBColor(0x20, 0x60, 0x20),
        EventKind::DeviceChange => RGBColor(0x50, 0x50, 0x50),
    }
}

type Err = ReportError;
fn draw_err<E: std::fmt::Display>(e: E) -> Err {
    ReportError::Chart(e.to_string())
}

/// One panel per chart, stacked on a shared time axis labelled in local
/// time. `width_pt` and `panel_height_pt` are the printed size in points;
/// the returned SVG is drawn at twice that and scaled when placed.
pub fn chart_svg(
    charts: &[Chart],
    axis: &TimeAxis,
    width_pt: f64,
    panel_height_pt: f64,
) -> Result<String, ReportError> {
    if axis.to <= axis.from {
        return Err(ReportError::EmptyRange);
    }
    let axis_h = 34.0;
    let n = charts.len().max(1);
    let w = px(width_pt) as u32;
    let h = (px(panel_height_pt) * n as i32 + px(axis_h)) as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (panels_area, axis_area) = root.split_vertically(px(panel_height_pt) * n as i32);
        let panels = panels_area.split_evenly((n, 1));
        let max_ticks = (width_pt / 45.0) as i64;
        let ticks = ticks(axis, max_ticks);
        // Every panel has the same label area and margins, so all plot areas
        // line up on the one time axis; this is their left and right edge.
        let mut plot_x = (px(48.0), w as i32 - px(8.0));
        if charts.is_empty() {
            let centred = font(9.0)
                .into_text_style(&panels[0])
                .pos(Pos::new(HPos::Center, VPos::Center));
            let mid = (w as i32 / 2, px(panel_height_pt / 2.0));
            panels[0]
                .draw(&Text::new("no data in this range", mid, centred))
                .map_err(draw_err)?;
        }
        for (i, (chart, area)) in charts.iter().zip(panels.iter()).enumerate() {
            plot_x = draw_panel(chart, area, axis, &ticks, PALETTE[i % PALETTE.len()])?;
        }
        draw_time_axis(&axis_area, axis, &ticks, plot_x)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// Draws one panel; returns the plot area's left and right x in pixels.
fn draw_panel(
    chart: &Chart,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    axis: &TimeAxis,
    ticks: &[(DateTime<Utc>, String, Option<String>)],
    colour: &str,
) -> Result<(i32, i32), Err> {
    let span = (axis.to - axis.from).num_seconds() as f64;
    let x = |t: DateTime<Utc>| (t - axis.from).num_milliseconds() as f64 / 1000.0;
    let (y0, y1) = y_range(chart, axis);
    let mut cc = ChartBuilder::on(area)
        .margin_top(px(12.0))
        .margin_right(px(8.0))
        .margin_bottom(px(2.0))
        .y_label_area_size(px(48.0))
        .build_cartesian_2d(0f64..span, y0..y1)
        .map_err(draw_err)?;
    // Whole numbers unless the scale is narrow (temperature).
    let decimals = if y1 - y0 >= 5.0 { 0 } else { 1 };
    let y_fmt = move |v: &f64| format!("{v:.decimals$}");
    cc.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(5)
        .max_light_lines(1)
        .y_label_formatter(&y_fmt)
        .y_desc(chart.unit.clone())
        .label_style(font(7.5))
        .axis_desc_style(font(8.0))
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
        .draw()
        .map_err(draw_err)?;
    let base = area.get_base_pixel();
    let (l, _) = cc.backend_coord(&(0.0, y0));
    let (r, _) = cc.backend_coord(&(span, y0));

    // Title inside the panel's top margin.
    area.draw(&Text::new(
        format!("{} ({})", chart.label, chart.unit),
        (l - base.0, px(1.0)),
        font(8.5).style(FontStyle::Bold),
    ))
    .map_err(draw_err)?;

    // Limits band first so everything else draws over it.
    if let Some(lim) = chart.limits {
        let lo = lim.low.unwrap_or(y0).max(y0);
        let hi = lim.high.unwrap_or(y1).min(y1);
        cc.draw_series(std::iter::once(Rectangle::new(
            [(0.0, lo), (span, hi)],
            RGBColor(0xE6, 0xF2, 0xE6).filled(),
        )))
        .map_err(draw_err)?;
        let dashed = RGBColor(0x6A, 0xA8, 0x6A).stroke_width(px(0.5) as u32);
        for v in [lim.low, lim.high].into_iter().flatten() {
            cc.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, v), (span, v)],
                dashed,
            )))
            .map_err(draw_err)?;
        }
    }
    // Hour grid at the shared ticks.
    for (t, _, _) in ticks {
        let grid = RGBColor(0xDD, 0xDD, 0xDD).stroke_width(1);
        cc.draw_series(std::iter::once(PathElement::new(
            vec![(x(*t), y0), (x(*t), y1)],
            grid,
        )))
        .map_err(draw_err)?;
    }

    let in_range: Vec<_> = chart
        .samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= axis.from && *t < axis.to)
        .collect();
    let runs = segments(&in_range, chart.expected_interval);
    if runs.is_empty() {
        let mid = ((l + r) / 2 - base.0 - px(45.0), area.dim_in_pixel().1 as i32 / 2);
        area.draw(&Text::new(
            "no data in this range",
            mid,
            font(9.0).color(&RGBColor(0x60, 0x60, 0x60)),
        ))
        .map_err(draw_err)?;
    } else {
        // Shade every silence longer than the gap limit, including at either edge.
        let limit = chart.expected_interval * GAP_FACTOR;
        let mut silences = Vec::new();
        if runs[0][0].0 - axis.from > limit {
            silences.push((axis.from, runs[0][0].0));
        }
        for pair in runs.windows(2) {
            silences.push((pair[0][pair[0].len() - 1].0, pair[1][0].0));
        }
        let last = runs[runs.len() - 1][runs[runs.len() - 1].len() - 1].0;
        if axis.to - last > limit {
            silences.push((last, axis.to));
        }
        for (a, b) in silences {
            cc.draw_series(std::iter::once(Rectangle::new(
                [(x(a), y0), (x(b), y1)],
                RGBColor(0xF0, 0xF0, 0xF0).filled(),
            )))
            .map_err(draw_err)?;
            let (ga, _) = cc.backend_coord(&(x(a), y1));
            let (gb, _) = cc.backend_coord(&(x(b), (y0 + y1) / 2.0));
            let (_, gy) = cc.backend_coord(&(x(b), (y0 + y1) / 2.0));
            if gb - ga > px(30.0) {
                let centred = font(7.0)
                    .color(&RGBColor(0x70, 0x70, 0x70))
                    .pos(Pos::new(HPos::Center, VPos::Center));
                area.draw(&Text::new(
                    "no data",
                    ((ga + gb) / 2 - base.0, gy - base.1),
                    centred,
                ))
                .map_err(draw_err)?;
            }
        }
        let style = rgb(colour).stroke_width(px(0.9) as u32);
        for run in &runs {
            if run.len() == 1 {
                // A lone sample is a dot, not a line to nowhere.
                cc.draw_series(std::iter::once(Circle::new(
                    (x(run[0].0), run[0].1),
                    px(1.2),
                    rgb(colour).filled(),
                )))
                .map_err(draw_err)?;
            } else {
                cc.draw_series(LineSeries::new(run.iter().map(|(t, v)| (x(*t), *v)), style))
                    .map_err(draw_err)?;
            }
        }
    }

    // Special values: small triangles on the panel floor, labelled when few.
    let specials: Vec<_> = chart
        .specials
        .iter()
        .filter(|m| m.at >= axis.from && m.at < axis.to)
        .collect();
    for m in &specials {
        let (sx, sy) = cc.backend_coord(&(x(m.at), y0));
        let p = (sx - base.0, sy - base.1);
        let tri = vec![(p.0, p.1 - px(5.0)), (p.0 - px(3.0), p.1), (p.0 + px(3.0), p.1)];
        area.draw(&Polygon::new(tri, RGBColor(0xD0, 0x70, 0x00).filled()))
            .map_err(draw_err)?;
        if specials.len() <= 8 {
            area.draw(&Text::new(
                m.label.clone(),
                (p.0 + px(3.5), p.1 - px(9.0)),
                font(6.5).color(&RGBColor(0xA0, 0x50, 0x00)),
            ))
            .map_err(draw_err)?;
        }
    }
    // Events: a thin vertical line with a short label at the top.
    for e in chart
        .events
        .iter()
        .filter(|e| e.at >= axis.from && e.at < axis.to)
    {
        let c = event_colour(e.kind);
        let line = vec![(x(e.at), y0), (x(e.at), y1)];
        if e.kind == EventKind::DeviceChange {
            // Dashed and neutral: not a clinical event, a different device.
            cc.draw_series(std::iter::once(plotters::element::DashedPathElement::new(line, px(3.0), px(2.0), c.stroke_width(px(0.5) as u32))))
                .map_err(draw_err)?;
        } else {
            cc.draw_series(std::iter::once(PathElement::new(line, c.stroke_width(px(0.5) as u32))))
                .map_err(draw_err)?;
        }
        let (ex, ey) = cc.backend_coord(&(x(e.at), y1));
        area.draw(&Text::new(
            e.label.clone(),
            (ex - base.0 + px(2.0), ey - base.1 + px(1.0)),
            font(6.5).color(&c),
        ))
        .map_err(draw_err)?;
    }
    Ok((l, r))
}

fn draw_time_axis(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    axis: &TimeAxis,
    ticks: &[(DateTime<Utc>, String, Option<String>)],
    (l, r): (i32, i32),
) -> Result<(), Err> {
    let span = (axis.to - axis.from).num_milliseconds() as f64;
    let base = area.get_base_pixel();
    let to_px = |t: DateTime<Utc>| {
        l - base.0 + (((t - axis.from).num_milliseconds() as f64 / span) * f64::from(r - l)).round() as i32
    };
    let black = BLACK.stroke_width(px(0.5) as u32);
    area.draw(&PathElement::new(vec![(l - base.0, 0), (r - base.0, 0)], black))
        .map_err(draw_err)?;
    for (t, label, date) in ticks {
        let xp = to_px(*t);
        area.draw(&PathElement::new(vec![(xp, 0), (xp, px(3.0))], black))
            .map_err(draw_err)?;
        let centred = |pt: f64| {
            font(pt)
                .into_text_style(area)
                .pos(Pos::new(HPos::Center, VPos::Top))
        };
        area.draw(&Text::new(label.clone(), (xp, px(5.0)), centred(7.5)))
            .map_err(draw_err)?;
        if let Some(d) = date {
            area.draw(&Text::new(d.clone(), (xp, px(14.0)), centred(7.0)))
                .map_err(draw_err)?;
        }
    }
    // Where the clocks change, say so: the tick labels jump or repeat there.
    let cols = hourly_columns(axis.from, axis.to, axis.tz);
    for w in cols.windows(2) {
        if w[0].zone != w[1].zone && w[1].start > axis.from {
            let xp = to_px(w[1].start);
            let marker = RGBColor(0x80, 0x40, 0x90);
            area.draw(&PathElement::new(
                vec![(xp, px(21.0)), (xp, px(31.0))],
                marker.stroke_width(px(0.5) as u32),
            ))
            .map_err(draw_err)?;
            let note = format!("clocks change {}→{}", w[0].zone, w[1].zone);
            area.draw(&Text::new(
                note,
                (xp + px(2.0), px(23.0)),
                font(7.0).color(&marker),
            ))
            .map_err(draw_err)?;
        }
    }
    let caption = format!("Local time ({})", zone_caption(axis));
    let cap_style = font(7.5)
        .into_text_style(area)
        .pos(Pos::new(HPos::Right, VPos::Top));
    area.draw(&Text::new(caption, (r - base.0, px(23.0)), cap_style))
        .map_err(draw_err)?;
    Ok(())
}
