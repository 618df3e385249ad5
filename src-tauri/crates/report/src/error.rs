//! Typed errors. They name what failed, never patient data.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("the report range is empty or reversed")]
    EmptyRange,
    #[error("drawing a chart failed: {0}")]
    Chart(String),
    /// A page or chart SVG we built did not parse; a bug in this crate.
    #[error("an internal SVG did not parse: {0}")]
    Svg(String),
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("writing the PDF failed: {0}")]
    Pdf(String),
}
