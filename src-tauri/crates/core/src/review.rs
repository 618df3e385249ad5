//! A clinician reviewing a stay (issue 15): the list of admissions, current
//! and past, and the on-screen flowsheet.
//!
//! A past admission is opened by its id: the core finds its bed and keeps
//! every request inside its stay (`[admitted, discharged]`, or until now),
//! so a range that reaches past the discharge never shows the next
//! patient's data at that bed ([`Vigil::within_stay`]).
//!
//! The flowsheet is the printed report's: `core::report::build` gathers it
//! and the `vigil-report` crate makes the columns (one per local hour in the
//! site's zone, 23 or 25 on the days the clocks change) and the hourly
//! medians; this module only adds NEWS2 and alarm rows per column and turns
//! it into the screen's shape. Nothing here computes a column or a median
//! of its own, so the screen and the PDF cannot disagree.

use crate::auth::Action;
use crate::{CoreError, Vigil};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_report as rpt;

/// One admission in the list. `display_name` is `None` unless the signed-in
/// role may see patient identity (and then its showing is recorded).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AdmissionListItem {
    pub id: String,
    pub bed: String,
    #[ts(type = "string")]
    pub admitted_at: DateTime<Utc>,
    /// `None`: still admitted.
    #[ts(type = "string | null")]
    pub discharged_at: Option<DateTime<Utc>>,
    pub display_name: Option<String>,
}

/// What the flowsheet covers: a bed's range, or a range inside one stay.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct FlowsheetRequest {
    pub bed: String,
    /// A past (or current) admission: the range is kept inside its stay and its bed is used.
    #[serde(default)]
    #[ts(optional)]
    pub admission: Option<String>,
    #[ts(type = "string")]
    pub from: DateTime<Utc>,
    #[ts(type = "string")]
    pub to: DateTime<Utc>,
}

/// One local hour.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct FlowColumnView {
    #[ts(type = "string")]
    pub start: DateTime<Utc>,
    #[ts(type = "string")]
    pub end: DateTime<Utc>,
    /// Local "HH:MM".
    pub time: String,
    /// Local "YYYY-MM-DD".
    pub date: String,
    /// Zone abbreviation ("BST"/"GMT"): tells the repeated autumn hour apart.
    pub zone: String,
}

/// One cell. `value` is `None` when the hour holds nothing (shown blank, never 0).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct FlowCellView {
    pub value: Option<f64>,
    /// Samples (vitals), scores (NEWS2) or alarms (alarm rows) in the hour.
    pub count: u32,
    /// Alarm rows: the highest priority that started in the hour.
    pub priority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct FlowRowView {
    /// "vital" (hourly median), "news2" (the hour's highest score), "subscore"
    /// (its parts), "alarms" (alarms started), "technical" (technical alarms started).
    pub kind: String,
    pub label: String,
    /// UCUM unit of a vital ("" otherwise).
    pub unit: String,
    pub cells: Vec<FlowCellView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct FlowsheetView {
    pub bed: String,
    #[ts(type = "string")]
    pub from: DateTime<Utc>,
    #[ts(type = "string")]
    pub to: DateTime<Utc>,
    /// The site's IANA zone the hours are in.
    pub zone: String,
    pub columns: Vec<FlowColumnView>,
    pub rows: Vec<FlowRowView>,
}

/// The NEWS2 parts, in the order the report words them (`core::report`).
const SUBSCORES: [&str; 7] = ["RR", "SpO2", "air", "BP", "HR", "ACVPU", "T"];

/// A sub-score's points from the report's wording: "RR 2", "HR (1, stale)"
/// (the last points still count, RCP NEWS2 2017 chart 1), "T –" (missing: blank).
fn subscore_points(parts: &str, name: &str) -> Option<f64> {
    parts.split(" \u{b7} ").find_map(|p| {
        let rest = p.strip_prefix(name)?.strip_prefix(' ')?;
        let digits: String = rest.trim_start_matches('(').chars().take_while(char::is_ascii_digit).collect();
        Some(digits.parse::<f64>().ok())
    })?
}

fn rank(priority: &str) -> u8 {
    match priority.trim_start_matches("technical ") {
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

fn column_view(c: &rpt::Column) -> FlowColumnView {
    FlowColumnView {
        start: c.start,
        end: c.end,
        time: c.time.clone(),
        date: c.date.clone(),
        zone: c.zone.clone(),
    }
}

/// The screen's flowsheet from a gathered report (pure; the columns and
/// medians are the report's own).
/// The total of a report's NEWS2 row ("5", or "≥ 3" for an incomplete score);
/// `None` for a nurse's entry.
fn news2_total(r: &rpt::News2Row) -> Option<u32> {
    r.score.trim_start_matches('\u{2265}').trim().parse().ok()
}

pub fn flowsheet_view(report: &rpt::Report) -> FlowsheetView {
    let fs = &report.flowsheet;
    let columns: Vec<FlowColumnView> = fs.columns.iter().map(column_view).collect();
    let mut rows: Vec<FlowRowView> = fs
        .rows
        .iter()
        .map(|r| FlowRowView {
            kind: "vital".into(),
            label: r.label.clone(),
            unit: r.unit.clone(),
            cells: r
                .cells
                .iter()
                .map(|c| FlowCellView {
                    value: c.value,
                    count: c.count as u32,
                    priority: None,
                })
                .collect(),
        })
        .collect();
    let in_col = |c: &rpt::Column, at: DateTime<Utc>| at >= c.start && at < c.end && at >= report.from && at <= report.to;

    // NEWS2: the hour's highest score (the one that decides the response), and its parts.
    let worst: Vec<(usize, Option<&rpt::News2Row>)> = fs
        .columns
        .iter()
        .map(|c| {
            let mut n = 0;
            let mut w: Option<&rpt::News2Row> = None;
            // Nurse entries ("–") carry no score; an incomplete score counts by its lower bound.
            for s in report.news2.iter().filter(|s| in_col(c, s.at) && news2_total(s).is_some()) {
                n += 1;
                if w.is_none_or(|w| news2_total(s) >= news2_total(w)) {
                    w = Some(s);
                }
            }
            (n, w)
        })
        .collect();
    rows.push(FlowRowView {
        kind: "news2".into(),
        label: "NEWS2".into(),
        unit: String::new(),
        cells: worst
            .iter()
            .map(|(n, w)| FlowCellView {
                value: w.and_then(news2_total).map(f64::from),
                count: *n as u32,
                priority: w.map(|w| w.risk.clone()),
            })
            .collect(),
    });
    for name in SUBSCORES {
        rows.push(FlowRowView {
            kind: "subscore".into(),
            label: name.into(),
            unit: String::new(),
            cells: worst
                .iter()
                .map(|(_, w)| FlowCellView {
                    value: w.and_then(|w| subscore_points(&w.parts, name)),
                    count: w.is_some() as u32,
                    priority: None,
                })
                .collect(),
        });
    }

    // Alarms started in the hour: how many, and the highest priority.
    for (kind, label, technical) in [("alarms", "Alarms", false), ("technical", "Technical alarms", true)] {
        rows.push(FlowRowView {
            kind: kind.into(),
            label: label.into(),
            unit: String::new(),
            cells: fs
                .columns
                .iter()
                .map(|c| {
                    let started: Vec<&rpt::AlarmRow> = report
                        .alarms
                        .iter()
                        .filter(|a| a.priority.starts_with("technical") == technical && in_col(c, a.at))
                        .collect();
                    let top = started.iter().map(|a| a.priority.as_str()).max_by_key(|p| rank(p));
                    FlowCellView {
                        value: (!started.is_empty()).then_some(started.len() as f64),
                        count: started.len() as u32,
                        priority: top.map(|p| p.trim_start_matches("technical ").to_string()),
                    }
                })
                .collect(),
        });
    }
    FlowsheetView {
        bed: report.header.bed.clone(),
        from: report.from,
        to: report.to,
        zone: report.tz.name().to_string(),
        columns,
        rows,
    }
}

impl Vigil {
    /// The bed of `admission` and the part of `[from, to]` inside its stay
    /// (`to <= from` when none is).
    pub async fn within_stay(
        &self,
        admission: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>, DateTime<Utc>), CoreError> {
        let a = self.store.admission(admission).await?;
        let end = a.discharged_at.unwrap_or_else(|| self.clock().now());
        Ok((a.bed, from.max(a.admitted_at), to.min(end)))
    }

    /// Every admission, newest first, for a clinician choosing one to review
    /// (`Action::Trends`). Names only for a role that may see them, each
    /// showing recorded like the ward screen's (`view_patient` per admission).
    pub async fn user_admissions(&self) -> Result<Vec<AdmissionListItem>, CoreError> {
        self.auth.authorize(Action::Trends, None)?;
        let mut list = self.store.admissions().await?;
        list.sort_by(|a, b| b.admitted_at.cmp(&a.admitted_at).then_with(|| b.id.0.cmp(&a.id.0)));
        let names = self.may_view_patients();
        Ok(list
            .into_iter()
            .map(|a| {
                // A refusal (the session ended meanwhile) leaves the name out.
                let shown = names && self.auth.authorize(Action::ViewPatient, Some(&a.id.0)).is_ok();
                AdmissionListItem {
                    id: a.id.0.clone(),
                    bed: a.bed,
                    admitted_at: a.admitted_at,
                    discharged_at: a.discharged_at,
                    display_name: shown.then(|| a.patient.display_name.clone()),
                }
            })
            .collect())
    }

    /// The flowsheet of a bed's range or of a range inside one stay
    /// (clinicians: `Action::Trends`, like the trend it sits beside).
    /// `tz` and `preset` come from the site, as for the report.
    pub async fn user_flowsheet(
        &self,
        req: &FlowsheetRequest,
        tz: chrono_tz::Tz,
        preset: vigil_alarms::SitePreset,
    ) -> Result<FlowsheetView, CoreError> {
        let admission = match &req.admission {
            Some(a) => Some(a.clone()),
            None => self.admission_at(&req.bed),
        };
        let actor = self.auth.authorize(Action::Trends, admission.as_deref())?;
        let (bed, from, to) = match &req.admission {
            Some(a) => self.within_stay(a, req.from, req.to).await?,
            None => (req.bed.clone(), req.from, req.to),
        };
        let empty = || FlowsheetView {
            bed: bed.clone(),
            from,
            to,
            zone: tz.name().to_string(),
            columns: Vec::new(),
            rows: Vec::new(),
        };
        if to <= from {
            return Ok(empty());
        }
        let built = crate::report::build(
            &self.store,
            &crate::report::Request {
                scope: crate::report::Scope::Bed { bed: bed.clone(), from, to },
                now: self.clock().now(),
                tz,
                ward: String::new(),
                generated_by: actor.name,
                preset,
            },
        )
        .await;
        match built {
            Ok(b) => Ok(flowsheet_view(&b.report)),
            // Nothing stored: the hours, all blank.
            Err(crate::report::ReportError::Empty { .. }) => {
                let mut v = empty();
                v.columns = rpt::hourly_columns(from, to, tz).iter().map(column_view).collect();
                Ok(v)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn report(from: DateTime<Utc>, to: DateTime<Utc>, tz: chrono_tz::Tz) -> rpt::Report {
        rpt::Report {
            header: rpt::Header { bed: "bed-1".into(), ward: String::new(), patient: None },
            from,
            to,
            tz,
            charts: Vec::new(),
            flowsheet: rpt::Flowsheet::build(from, to, tz, &[]),
            alarms: Vec::new(),
            news2: Vec::new(),
            devices: Vec::new(),
            completeness: Default::default(),
            generated_at: to,
            generated_by: String::new(),
        }
    }

    #[test]
    fn the_day_the_clocks_go_back_has_25_hour_columns_on_screen_too() {
        // Europe/London, 2026-10-25: BST ends at 02:00 local (01:00 UTC).
        let tz = chrono_tz::Europe::London;
        let from = tz.with_ymd_and_hms(2026, 10, 25, 0, 0, 0).unwrap().to_utc();
        let to = tz.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap().to_utc();
        let v = flowsheet_view(&report(from, to, tz));
        assert_eq!(v.columns.len(), 25);
        let one: Vec<_> = v.columns.iter().filter(|c| c.time == "01:00").map(|c| c.zone.as_str()).collect();
        assert_eq!(one, ["BST", "GMT"], "the repeated hour is two columns, told apart");
    }

    #[test]
    fn news2_shows_the_hours_highest_score_with_its_parts_and_alarms_their_count_and_top_priority() {
        let tz = chrono_tz::UTC;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 3, 10, 0, 0).unwrap();
        let mut r = report(t0, t0 + chrono::Duration::hours(3), tz);
        let score = |min: i64, score: u8, parts: &str| rpt::News2Row {
            at: t0 + chrono::Duration::minutes(min),
            score: score.to_string(),
            risk: "low".into(),
            parts: parts.into(),
        };
        r.news2 = vec![
            score(5, 1, "RR 0 \u{b7} SpO2 1 \u{b7} air 0 \u{b7} BP – \u{b7} HR 0 \u{b7} ACVPU 0 \u{b7} T 0"),
            score(35, 4, "RR 1 \u{b7} SpO2 3 \u{b7} air 0 \u{b7} BP – \u{b7} HR (0, stale) \u{b7} ACVPU 0 \u{b7} T 0"),
            score(50, 2, "RR 0 \u{b7} SpO2 2 \u{b7} air 0 \u{b7} BP – \u{b7} HR 0 \u{b7} ACVPU 0 \u{b7} T 0"),
            // A nurse's entry is no score; an incomplete score shows its lower bound.
            rpt::News2Row {
                at: t0 + chrono::Duration::minutes(70),
                score: "–".into(),
                risk: "entry".into(),
                parts: "entered: ACVPU alert".into(),
            },
            rpt::News2Row {
                at: t0 + chrono::Duration::minutes(130),
                score: "\u{2265} 5".into(),
                risk: "medium".into(),
                parts: "RR 3 \u{b7} SpO2 2".into(),
            },
        ];
        let alarm = |min: i64, priority: &str| rpt::AlarmRow {
            at: t0 + chrono::Duration::minutes(min),
            priority: priority.into(),
            message: String::new(),
            outcome: String::new(),
        };
        r.alarms = vec![alarm(10, "medium"), alarm(40, "high"), alarm(70, "technical low")];
        let v = flowsheet_view(&r);
        let row = |label: &str| v.rows.iter().find(|r| r.label == label).unwrap();
        let news2 = row("NEWS2");
        assert_eq!(news2.cells[0].value, Some(4.0));
        assert_eq!(news2.cells[0].count, 3);
        assert_eq!(news2.cells[1].value, None, "an hour without a score is blank, never 0");
        assert_eq!((news2.cells[2].value, news2.cells[2].count), (Some(5.0), 1), "an incomplete score by its lower bound");
        assert_eq!(row("SpO2").cells[0].value, Some(3.0));
        assert_eq!(row("HR").cells[0].value, Some(0.0), "a stale part still counts its last points");
        assert_eq!(row("BP").cells[0].value, None, "a missing part is blank");
        let alarms = row("Alarms");
        assert_eq!((alarms.cells[0].value, alarms.cells[0].priority.as_deref()), (Some(2.0), Some("high")));
        assert_eq!(alarms.cells[1].value, None);
        let tech = row("Technical alarms");
        assert_eq!((tech.cells[1].value, tech.cells[1].priority.as_deref()), (Some(1.0), Some("low")));
    }
}
