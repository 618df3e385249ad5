//! The flowsheet: one row per parameter, one cell per local hour.
//!
//! A cell holds the **median** of the hour's numeric samples: a printed
//! flowsheet stands for the hour, and a median is not dragged by one motion
//! artefact the way a mean or a "last value" is. An hour with no numeric
//! sample is empty (`None`), never zero.
//!
//! **NEWS2 per hour** ([`Flowsheet::with_news2`]): the hour's *highest*
//! recorded score — the one with the highest clinical risk (RCP NEWS2 2017,
//! chart 2: a single parameter scoring 3 calls for an urgent ward-based
//! response, above a total of 1–4), then the highest total, then the latest —
//! shown with its **own** sub-scores. A flowsheet records scores that were
//! recorded (RCP: the score charted with its observations), so the parts are
//! never a mix of per-parameter maxima that no recorded score had; and the
//! highest, not the latest, because a score that called for escalation in the
//! hour must not disappear behind a better one a few minutes later. The
//! screen (`core::review`) and the PDF both take these cells, so they agree.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::columns::{hourly_columns, Column};

/// One parameter's samples, the flowsheet builder's input.
#[derive(Debug, Clone)]
pub struct FlowInput {
    pub label: String,
    /// UCUM unit code.
    pub unit: String,
    pub samples: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Median of the hour's samples; `None` when the hour has none.
    pub value: Option<f64>,
    /// How many samples the median is of.
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlowRow {
    pub label: String,
    pub unit: String,
    /// One per column, same order.
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flowsheet {
    pub columns: Vec<Column>,
    pub rows: Vec<FlowRow>,
    /// One per column once [`Flowsheet::with_news2`] ran; empty before.
    pub news2: Vec<News2Hour>,
}

/// NEWS2 clinical risk (RCP NEWS2 2017, chart 3), ordered `Low < … < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum News2Risk {
    Low,
    LowMedium,
    Medium,
    High,
}

impl News2Risk {
    /// "low", "low-medium", "medium", "high".
    pub fn as_str(self) -> &'static str {
        match self {
            News2Risk::Low => "low",
            News2Risk::LowMedium => "low-medium",
            News2Risk::Medium => "medium",
            News2Risk::High => "high",
        }
    }
}

/// One parameter of a recorded NEWS2 score.
#[derive(Debug, Clone, PartialEq)]
pub struct News2Part {
    /// "RR", "SpO2", "air", "BP", "HR", "ACVPU", "T" (the chart's order).
    pub label: String,
    /// Points counted; for a stale part the last points it had (not in the
    /// total); `None` when the parameter was missing.
    pub points: Option<u8>,
    /// Older than its validity window when scored: shown, not counted.
    pub stale: bool,
    /// The value was entered by a nurse, not measured by a device.
    pub entered: bool,
}

impl News2Part {
    /// As printed: "2", "2*" (entered), "(1)" (stale), "–" (missing).
    pub fn text(&self) -> String {
        match (self.points, self.stale) {
            (None, _) => "\u{2013}".into(),
            (Some(p), true) => format!("({p})"),
            (Some(p), false) if self.entered => format!("{p}*"),
            (Some(p), false) => p.to_string(),
        }
    }
}

/// A NEWS2 score as it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct News2Score {
    pub at: DateTime<Utc>,
    pub total: u8,
    /// No parameter missing or stale; otherwise `total` is a lower bound.
    pub complete: bool,
    pub risk: News2Risk,
    pub parts: Vec<News2Part>,
}

impl News2Score {
    /// As printed: "5", or "≥ 3" for an incomplete score (a lower bound).
    pub fn text(&self) -> String {
        if self.complete {
            self.total.to_string()
        } else {
            format!("\u{2265} {}", self.total)
        }
    }
}

/// A nurse's NEWS2 entry.
#[derive(Debug, Clone, PartialEq)]
pub struct News2Note {
    pub at: DateTime<Utc>,
    /// What was entered, e.g. "RR 22 /min".
    pub text: String,
    /// The user's account id.
    pub by: String,
}

/// One hour's NEWS2: the score shown (see the module docs) and the nurse
/// entries made in the hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct News2Hour {
    /// `None`: no score recorded in the hour (blank, never 0).
    pub score: Option<News2Score>,
    /// Scores recorded in the hour.
    pub scores: usize,
    /// Oldest first.
    pub entries: Vec<News2Note>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Flowsheet {
    /// Columns for `[from, to)` in `tz`, and one row per input. Non-finite
    /// samples are ignored (specials are shown on the charts).
    pub fn build(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz, inputs: &[FlowInput]) -> Flowsheet {
        let columns = hourly_columns(from, to, tz);
        let rows = inputs
            .iter()
            .map(|input| {
                let cells = columns
                    .iter()
                    .map(|c| {
                        let v: Vec<f64> = input
                            .samples
                            .iter()
                            .filter(|(t, x)| {
                                *t >= c.start && *t < c.end && *t >= from && *t < to && x.is_finite()
                            })
                            .map(|(_, x)| *x)
                            .collect();
                        Cell {
                            count: v.len(),
                            value: median(v),
                        }
                    })
                    .collect();
                FlowRow {
                    label: input.label.clone(),
                    unit: input.unit.clone(),
                    cells,
                }
            })
            .collect();
        Flowsheet {
            columns,
            rows,
            news2: Vec::new(),
        }
    }

    /// Adds the NEWS2 cells: per column, the hour's highest recorded score in
    /// `[from, to)` (highest risk, then total, then latest; module docs) and
    /// the nurse entries in the hour.
    pub fn with_news2(
        mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        scores: &[News2Score],
        entries: &[News2Note],
    ) -> Flowsheet {
        let inside = |c: &Column, t: DateTime<Utc>| t >= c.start && t < c.end && t >= from && t < to;
        self.news2 = self
            .columns
            .iter()
            .map(|c| {
                let hour: Vec<&News2Score> = scores.iter().filter(|s| inside(c, s.at)).collect();
                let mut notes: Vec<News2Note> = entries.iter().filter(|e| inside(c, e.at)).cloned().collect();
                notes.sort_by_key(|e| e.at);
                News2Hour {
                    score: hour
                        .iter()
                        .max_by_key(|s| (s.risk, s.total, s.at))
                        .map(|s| (*s).clone()),
                    scores: hour.len(),
                    entries: notes,
                }
            })
            .collect();
        self
    }

    /// Whether any hour has a NEWS2 score or a nurse entry.
    pub fn has_news2(&self) -> bool {
        self.news2
            .iter()
            .any(|h| h.score.is_some() || !h.entries.is_empty())
    }
}
