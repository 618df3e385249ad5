//! The flowsheet: one row per parameter, one cell per local hour.
//!
//! A cell holds the **median** of the hour's numeric samples: a printed
//! flowsheet stands for the hour, and a median is not dragged by one motion
//! artefact the way a mean or a "last value" is. An hour with no numeric
//! sample is empty (`None`), never zero.

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
        Flowsheet { columns, rows }
    }
}
