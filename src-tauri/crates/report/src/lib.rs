//! Printable clinical reports (issue 15): plain report data in, PDF bytes out.
//!
//! This crate is the pure part of `vigil report`: it never reads the store,
//! the clock or the disk. The caller gathers a [`Report`] (header, trend
//! charts, flowsheet, alarm log, NEWS2 history, devices, and a statement of
//! how complete and verified the data is) and [`render_pdf`] lays it out on A4.
//!
//! - [`columns`]: one flowsheet column per local hour, right across DST
//!   (23 or 25 on the days the clocks change), everything stored in UTC.
//! - [`flowsheet`]: per-hour cells (median), empty hours left empty; NEWS2
//!   per hour (the hour's highest recorded score with its own sub-scores, and
//!   the nurse entries), the same cells on screen and on paper.
//! - [`chart`]: trends drawn with plotters to SVG, several parameters as
//!   stacked panels on one local time axis (each keeps its own unit and
//!   limits band; no second y axis to misread); gaps stay gaps.
//! - [`pdf`]: pages as SVG, placed with krilla/krilla-svg so charts and text
//!   stay vectors; fonts are DejaVu Sans compiled into the binary and
//!   embedded (subset) in the PDF, so it prints the same everywhere and the
//!   build needs no system font.
//!
//! **PHI.** The patient's name, MRN and date of birth are printed in the PDF
//! (that is its purpose) but never appear in errors or `Debug` output
//! ([`Patient`]'s `Debug` is redacted).

pub mod chart;
pub mod columns;
mod error;
pub mod flowsheet;
mod model;
pub mod pdf;
mod svg;

pub use chart::{chart_svg, TimeAxis};
pub use columns::{hourly_columns, Column};
pub use error::ReportError;
pub use flowsheet::{
    Cell, FlowInput, FlowRow, Flowsheet, News2Hour, News2Note, News2Part, News2Risk, News2Score,
};
pub use model::{
    DeviceChanges,
    AlarmRow, Chart, Completeness, DeviceRow, Event, EventKind, FailedChunk, Gap, Header, Limits, Mark,
    News2Row, Patient, Report,
};
pub use pdf::{page_svgs, render_pdf};
