//! vigil-report integration tests: DST columns, the flowsheet, chart gaps,
//! and the real PDF read back with poppler (`pdftotext`, `pdftoppm`).

mod chart;
mod columns;
mod fixture;
mod flowsheet;
mod pdf;
