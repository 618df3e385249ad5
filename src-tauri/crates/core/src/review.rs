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
//! medians, and the NEWS2 cells (the hour's highest-risk recorded score with
//! its own sub-scores, from the store's NEWS2 log as structured data,
//! `vigil_report::flowsheet`); this module only adds alarm rows per column
//! and turns it into the screen's shape. Nothing here computes a column, a
//! median or an hour's NEWS2 of its own, so the screen and the PDF cannot
//! disagree.

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
    /// "vital" (hourly median), "alarms" (alarms started), "technical"
    /// (technical alarms started). NEWS2 is [`FlowsheetView::news2`].
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
    /// Vitals, then alarms.
    pub rows: Vec<FlowRowView>,
    /// One per column: the hour's NEWS2 (shown between vitals and alarms).
    pub news2: Vec<News2HourView>,
}

/// One parameter of the NEWS2 score shown for an hour.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct News2PartView {
    /// "RR", "SpO2", "air", "BP", "HR", "ACVPU", "T" (the chart's order).
    pub label: String,
    /// Points; a stale part's last points (not in the total); null: missing.
    pub points: Option<u8>,
    pub stale: bool,
    /// Entered by a nurse, not measured by a device.
    pub entered: bool,
}

/// A recorded NEWS2 score.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct News2ScoreView {
    #[ts(type = "string")]
    pub at: DateTime<Utc>,
    pub total: u8,
    /// False: a parameter was missing or stale, the total is a lower bound.
    pub complete: bool,
    /// "low", "low-medium", "medium", "high" (RCP NEWS2 2017, chart 3).
    pub risk: String,
    pub parts: Vec<News2PartView>,
}

/// A nurse's NEWS2 entry.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct News2EntryView {
    #[ts(type = "string")]
    pub at: DateTime<Utc>,
    /// What was entered, e.g. "RR 22 /min".
    pub text: String,
    /// The user's account id.
    pub by: String,
}

/// One hour's NEWS2: the highest-risk score recorded in it (then the
/// highest total, then the latest) with its own parts, and the nurse entries.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct News2HourView {
    /// Null: no score recorded in the hour (blank, never 0).
    pub score: Option<News2ScoreView>,
    /// Scores recorded in the hour.
    pub scores: u32,
    pub entries: Vec<News2EntryView>,
}

fn news2_hour_view(h: &rpt::News2Hour) -> News2HourView {
    News2HourView {
        score: h.score.as_ref().map(|s| News2ScoreView {
            at: s.at,
            total: s.total,
            complete: s.complete,
            risk: s.risk.as_str().into(),
            parts: s
                .parts
                .iter()
                .map(|p| News2PartView { label: p.label.clone(), points: p.points, stale: p.stale, entered: p.entered })
                .collect(),
        }),
        scores: h.scores as u32,
        entries: h
            .entries
            .iter()
            .map(|e| News2EntryView { at: e.at, text: e.text.clone(), by: e.by.clone() })
            .collect(),
    }
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
        news2: fs.news2.iter().map(news2_hour_view).collect(),
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
            news2: Vec::new(),
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
                v.news2 = v.columns.iter().map(|_| news2_hour_view(&Default::default())).collect();
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
            device_changes: vec![],
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
    fn news2_cells_are_the_reports_own_and_alarms_show_their_count_and_top_priority() {
        let tz = chrono_tz::UTC;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 3, 10, 0, 0).unwrap();
        let mut r = report(t0, t0 + chrono::Duration::hours(3), tz);
        let part = |label: &str, points: Option<u8>, entered: bool| rpt::News2Part {
            label: label.into(),
            points,
            stale: false,
            entered,
        };
        let score = |min: i64, total: u8, risk: rpt::News2Risk| rpt::News2Score {
            at: t0 + chrono::Duration::minutes(min),
            total,
            complete: false,
            risk,
            parts: vec![part("RR", Some(2), true), part("BP", None, false)],
        };
        let scores = [score(5, 1, rpt::News2Risk::Low), score(35, 5, rpt::News2Risk::Medium), score(50, 2, rpt::News2Risk::Low)];
        let notes = [rpt::News2Note { at: t0 + chrono::Duration::minutes(30), text: "RR 22 /min".into(), by: "nina".into() }];
        r.flowsheet = rpt::Flowsheet::build(r.from, r.to, tz, &[]).with_news2(r.from, r.to, &scores, &notes);
        let alarm = |min: i64, priority: &str| rpt::AlarmRow {
            at: t0 + chrono::Duration::minutes(min),
            priority: priority.into(),
            message: String::new(),
            outcome: String::new(),
        };
        r.alarms = vec![alarm(10, "medium"), alarm(40, "high"), alarm(70, "technical low")];
        let v = flowsheet_view(&r);
        assert_eq!(v.news2.len(), v.columns.len());
        let shown = v.news2[0].score.as_ref().unwrap();
        assert_eq!((shown.total, shown.risk.as_str(), shown.complete), (5, "medium", false));
        assert_eq!(v.news2[0].scores, 3);
        let rr = &shown.parts[0];
        assert_eq!((rr.label.as_str(), rr.points, rr.entered), ("RR", Some(2), true));
        assert_eq!(shown.parts[1].points, None, "a missing part stays missing, never 0");
        assert_eq!(v.news2[0].entries[0].text, "RR 22 /min");
        assert!(v.news2[1].score.is_none(), "an hour without a score is blank, never 0");
        assert!(v.rows.iter().all(|r| r.kind != "news2"), "NEWS2 is structured, not a row of numbers");
        let row = |label: &str| v.rows.iter().find(|r| r.label == label).unwrap();
        let alarms = row("Alarms");
        assert_eq!((alarms.cells[0].value, alarms.cells[0].priority.as_deref()), (Some(2.0), Some("high")));
        assert_eq!(alarms.cells[1].value, None);
        let tech = row("Technical alarms");
        assert_eq!((tech.cells[1].value, tech.cells[1].priority.as_deref()), (Some(1.0), Some("low")));
    }
}
