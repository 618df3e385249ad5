//! Page layout and PDF output.
//!
//! Each page is built as an SVG (text, rules, tables) plus chart SVGs placed
//! on it; krilla-svg turns both into PDF vectors with the text embedded
//! (selectable, searchable) in the compiled-in DejaVu Sans. Pages are laid
//! out first and the footers written last, when the page count is known.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use krilla::geom::{Size, Transform};
use krilla::page::PageSettings;
use krilla::Document;
use krilla_svg::{SurfaceExt, SvgSettings};

use crate::chart::{chart_svg, TimeAxis, GAP_FACTOR};
use crate::error::ReportError;
use crate::model::Report;
use crate::svg::{wrap, Anchor, Font, PageSvg};

static SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

// A4 in points.
pub const PAGE_W: f64 = 595.28;
pub const PAGE_H: f64 = 841.89;
const MARGIN: f64 = 36.0;
const CONTENT_W: f64 = PAGE_W - 2.0 * MARGIN;
/// Content stops here; the footer lives below.
const BOTTOM: f64 = PAGE_H - 62.0;

const PANEL_H: f64 = 105.0;
const PANELS_PER_PAGE: usize = 4;
const FLOW_LABEL_W: f64 = 92.0;
const FLOW_COL_W: f64 = 35.5;

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%d %b %Y %H:%M %Z").to_string()
}

fn local_short(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%d %b %H:%M:%S %Z").to_string()
}

/// Decimals for a flowsheet row: one if any cell needs it, so a row of
/// temperatures reads 37.0, 37.1 rather than 37, 37.1.
fn row_decimals(cells: &[crate::flowsheet::Cell]) -> usize {
    let fractional = cells
        .iter()
        .filter_map(|c| c.value)
        .any(|v| (v - v.round()).abs() >= 0.05);
    usize::from(fractional)
}

struct Placed {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    svg: String,
}

#[derive(Default)]
struct Page {
    svg: PageSvg,
    charts: Vec<Placed>,
}

struct Layout {
    pages: Vec<Page>,
    y: f64,
    /// Printed at the top of every page after the first, so a loose page
    /// still says whose it is.
    running: String,
}

impl Layout {
    fn page(&mut self) -> &mut Page {
        let n = self.pages.len();
        &mut self.pages[n - 1]
    }

    fn new_page(&mut self) {
        let mut p = Page::default();
        p.svg.text(
            MARGIN,
            MARGIN - 8.0,
            Font::grey(7.5),
            Anchor::Start,
            &self.running,
        );
        p.svg.line(
            MARGIN,
            MARGIN - 4.0,
            PAGE_W - MARGIN,
            MARGIN - 4.0,
            0.4,
            "#999999",
        );
        self.pages.push(p);
        self.y = MARGIN + 10.0;
    }

    /// Starts a new page unless `h` points still fit.
    fn need(&mut self, h: f64) {
        if self.y + h > BOTTOM {
            self.new_page();
        }
    }

    fn heading(&mut self, s: &str) {
        self.need(14.0 + 40.0);
        self.y += 14.0;
        let y = self.y;
        let p = self.page();
        p.svg.text(MARGIN, y, Font::bold(11.0), Anchor::Start, s);
        p.svg
            .line(MARGIN, y + 3.0, PAGE_W - MARGIN, y + 3.0, 0.6, "#333333");
        self.y += 10.0;
    }

    fn paragraph(&mut self, s: &str, font: Font) {
        for line in wrap(s, font.size, CONTENT_W) {
            self.need(font.size * 1.4);
            self.y += font.size * 1.25;
            let y = self.y;
            self.page().svg.text(MARGIN, y, font, Anchor::Start, &line);
        }
        self.y += 3.0;
    }

    /// A table that continues on the next page with its header repeated.
    fn table(&mut self, title: &str, cols: &[(&str, f64)], rows: &[Vec<String>]) {
        self.heading(title);
        if rows.is_empty() {
            self.paragraph("None in this range.", Font::grey(8.5));
            return;
        }
        let size = 7.5;
        let lh = size * 1.3;
        self.table_header(cols, size);
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<Vec<String>> = row
                .iter()
                .zip(cols)
                .map(|(c, (_, w))| wrap(c, size, w - 6.0))
                .collect();
            let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
            let h = lines as f64 * lh + 3.0;
            if self.y + h > BOTTOM {
                self.new_page();
                self.y += 4.0;
                let y = self.y + 8.0;
                self.page().svg.text(
                    MARGIN,
                    y,
                    Font::grey(8.0),
                    Anchor::Start,
                    &format!("{title} (continued)"),
                );
                self.y += 12.0;
                self.table_header(cols, size);
            }
            let top = self.y;
            let p = self.page();
            if i % 2 == 1 {
                p.svg.rect(MARGIN, top, CONTENT_W, h, "#F3F5F8", None);
            }
            let mut x = MARGIN;
            for (cell, (_, w)) in cells.iter().zip(cols) {
                for (k, line) in cell.iter().enumerate() {
                    p.svg.text(
                        x + 3.0,
                        top + size + 1.0 + k as f64 * lh,
                        Font::regular(size),
                        Anchor::Start,
                        line,
                    );
                }
                x += w;
            }
            self.y += h;
        }
        let y = self.y;
        self.page()
            .svg
            .line(MARGIN, y, PAGE_W - MARGIN, y, 0.4, "#999999");
        self.y += 4.0;
    }

    fn table_header(&mut self, cols: &[(&str, f64)], size: f64) {
        let top = self.y;
        let p = self.page();
        p.svg
            .rect(MARGIN, top, CONTENT_W, size * 1.3 + 4.0, "#DDE3EA", None);
        let mut x = MARGIN;
        for (name, w) in cols {
            p.svg
                .text(x + 3.0, top + size + 2.0, Font::bold(size), Anchor::Start, name);
            x += w;
        }
        self.y += size * 1.3 + 4.0;
    }
}

fn header(l: &mut Layout, r: &Report) {
    let tz = r.tz;
    let p = l.page();
    p.svg.text(
        MARGIN,
        MARGIN + 6.0,
        Font::bold(16.0),
        Anchor::Start,
        "Patient monitoring report",
    );
    p.svg.text(
        PAGE_W - MARGIN,
        MARGIN + 6.0,
        Font::regular(10.0),
        Anchor::End,
        &r.header.ward,
    );
    let top = MARGIN + 16.0;
    let box_h = 46.0;
    p.svg
        .rect(MARGIN, top, CONTENT_W, box_h, "#F5F7FA", Some("#8899AA"));
    let c2 = MARGIN + CONTENT_W * 0.55;
    match &r.header.patient {
        Some(pt) => {
            p.svg.text(
                MARGIN + 8.0,
                top + 16.0,
                Font::bold(12.0),
                Anchor::Start,
                &pt.name,
            );
            p.svg.text(
                c2,
                top + 16.0,
                Font::regular(9.5),
                Anchor::Start,
                &format!("MRN: {}", pt.mrn),
            );
            let dob = format!("DOB: {}", pt.dob.format("%d %b %Y"));
            p.svg
                .text(MARGIN + 8.0, top + 34.0, Font::regular(9.5), Anchor::Start, &dob);
            let category = format!("Category: {}", pt.category);
            p.svg.text(
                MARGIN + 128.0,
                top + 34.0,
                Font::regular(9.5),
                Anchor::Start,
                &category,
            );
        }
        None => {
            p.svg.text(
                MARGIN + 8.0,
                top + 16.0,
                Font::bold(12.0),
                Anchor::Start,
                "No patient admitted",
            );
            let note = "Nobody was admitted to this bed in the range; the data below is the bed's.";
            p.svg
                .text(MARGIN + 8.0, top + 34.0, Font::grey(9.0), Anchor::Start, note);
        }
    }
    let bed_y = if r.header.patient.is_some() {
        top + 34.0
    } else {
        top + 16.0
    };
    p.svg.text(
        c2,
        bed_y,
        Font::regular(9.5),
        Anchor::Start,
        &format!("Bed: {}", r.header.bed),
    );
    l.y = top + box_h + 4.0;
    l.paragraph(
        &format!(
            "Range: {} to {} ({}); UTC {} to {}.",
            local(r.from, tz),
            local(r.to, tz),
            tz.name(),
            r.from.format("%Y-%m-%d %H:%M"),
            r.to.format("%Y-%m-%d %H:%M"),
        ),
        Font::regular(8.5),
    );
    let font = if r.completeness.is_complete() {
        Font::regular(8.5)
    } else {
        Font::alert(8.5)
    };
    l.paragraph(&r.completeness.summary(), font);
}

fn charts(l: &mut Layout, r: &Report) -> Result<(), ReportError> {
    l.heading("Trends");
    let axis = TimeAxis {
        from: r.from,
        to: r.to,
        tz: r.tz,
    };
    let groups: Vec<&[crate::model::Chart]> = if r.charts.is_empty() {
        vec![&[]]
    } else {
        r.charts.chunks(PANELS_PER_PAGE).collect()
    };
    for group in groups {
        let h = PANEL_H * group.len().max(1) as f64 + 34.0;
        l.need(h);
        let svg = chart_svg(group, &axis, CONTENT_W, PANEL_H)?;
        let y = l.y;
        l.page().charts.push(Placed {
            x: MARGIN,
            y,
            w: CONTENT_W,
            h,
            svg,
        });
        l.y += h + 4.0;
    }
    l.paragraph(
        &format!(
            "Green band: alarm limits. Grey: no data (a silence longer than {GAP_FACTOR} expected sample intervals; \
             lines are never joined across it). ▲ special value sent by the device (NaN, NRes, ...). \
             Vertical lines: red alarm, orange NEWS2, green nurse entry, grey device change."
        ),
        Font::grey(7.5),
    );
    Ok(())
}

/// One printed flowsheet row: its label and each column's text.
struct PrintedRow {
    label: String,
    cells: Vec<String>,
    /// The NEWS2 total: bold, with a rule above (its block starts here).
    strong: bool,
}

/// The vitals (hourly medians), then NEWS2 when the range has any: the
/// hour's score, its sub-scores and the nurse entries (the same cells as the
/// screen's, `Flowsheet::with_news2`).
fn printed_rows(fs: &crate::flowsheet::Flowsheet) -> Vec<PrintedRow> {
    let mut out: Vec<PrintedRow> = fs
        .rows
        .iter()
        .map(|row| {
            let decimals = row_decimals(&row.cells);
            PrintedRow {
                label: format!("{} ({})", row.label, row.unit),
                cells: row
                    .cells
                    .iter()
                    .map(|c| c.value.map(|v| format!("{v:.decimals$}")).unwrap_or_default())
                    .collect(),
                strong: false,
            }
        })
        .collect();
    if !fs.has_news2() {
        return out;
    }
    out.push(PrintedRow {
        label: "NEWS2".into(),
        cells: fs
            .news2
            .iter()
            .map(|h| h.score.as_ref().map(|s| s.text()).unwrap_or_default())
            .collect(),
        strong: true,
    });
    // The parts in the order the scores list them (the chart's).
    let labels: Vec<String> = fs
        .news2
        .iter()
        .find_map(|h| h.score.as_ref())
        .map(|s| s.parts.iter().map(|p| p.label.clone()).collect())
        .unwrap_or_default();
    for label in labels {
        out.push(PrintedRow {
            label: format!("\u{b7} {label}"),
            cells: fs
                .news2
                .iter()
                .map(|h| {
                    h.score
                        .as_ref()
                        .and_then(|s| s.parts.iter().find(|p| p.label == label))
                        .map(|p| p.text())
                        .unwrap_or_default()
                })
                .collect(),
            strong: false,
        });
    }
    out.push(PrintedRow {
        label: "Nurse entries".into(),
        cells: fs
            .news2
            .iter()
            .map(|h| {
                if h.entries.is_empty() {
                    String::new()
                } else {
                    h.entries.len().to_string()
                }
            })
            .collect(),
        strong: false,
    });
    out
}

fn flowsheet(l: &mut Layout, r: &Report) {
    l.heading("Flowsheet");
    let fs = &r.flowsheet;
    let note = format!(
        "One column per local hour ({}); each cell is the median of that hour's samples; a blank cell means no data.",
        r.tz.name()
    );
    l.paragraph(&note, Font::grey(7.5));
    if fs.has_news2() {
        l.paragraph(
            "NEWS2: the hour's highest recorded score (highest clinical risk, then total; RCP NEWS2 2017) \
             with its own sub-scores. \u{2265} incomplete score (a lower bound); * entered by a nurse; \
             (n) stale, last points, not counted; \u{2013} missing. Nurse entries: how many in the hour \
             (listed under NEWS2 history).",
            Font::grey(7.5),
        );
    }
    let rows_all = printed_rows(fs);
    if fs.columns.is_empty() || rows_all.is_empty() {
        l.paragraph("No data in this range.", Font::grey(8.5));
        return;
    }
    let size = 7.0;
    let row_h = 11.0;
    let head_h = 3.0 * row_h + 2.0;
    // Wide sheets split into column pages; long ones into row blocks that
    // fill the rest of the page, every block with its own hour header.
    let per_cols = ((CONTENT_W - FLOW_LABEL_W) / FLOW_COL_W).floor().max(1.0) as usize;
    let rows_fitting = |y: f64| ((BOTTOM - y - 13.0 - head_h - 6.0) / row_h).floor().max(0.0) as usize;
    let total = fs.columns.len();
    for start in (0..total).step_by(per_cols) {
        let end = (start + per_cols).min(total);
        let width = FLOW_LABEL_W + FLOW_COL_W * (end - start) as f64;
        let mut next = 0;
        while next < rows_all.len() {
            let left = rows_all.len() - next;
            // Start a new page rather than leave a header with one or two rows.
            if rows_fitting(l.y) < left.min(3) {
                l.new_page();
            }
            let take = rows_fitting(l.y).clamp(1, left);
            let rows = &rows_all[next..next + take];
            next += take;
            let caption = format!("Hours {}–{} of {}", start + 1, end, total);
            let y = l.y + 9.0;
            l.page()
                .svg
                .text(MARGIN, y, Font::grey(7.5), Anchor::Start, &caption);
            l.y += 13.0;
            let top = l.y;
            let p = l.page();
            p.svg.rect(MARGIN, top, width, head_h, "#DDE3EA", None);
            p.svg.text(
                MARGIN + 3.0,
                top + 2.0 * row_h - 2.0,
                Font::bold(size),
                Anchor::Start,
                "Parameter",
            );
            let mut prev_date: Option<&str> = None;
            for (k, c) in fs.columns[start..end].iter().enumerate() {
                let cx = MARGIN + FLOW_LABEL_W + FLOW_COL_W * (k as f64 + 0.5);
                // The date over the first column of each local day.
                if prev_date != Some(c.date.as_str()) {
                    let day = c.start.with_timezone(&r.tz).format("%d %b").to_string();
                    p.svg
                        .text(cx, top + row_h - 2.0, Font::bold(size), Anchor::Middle, &day);
                }
                prev_date = Some(c.date.as_str());
                p.svg.text(
                    cx,
                    top + 2.0 * row_h - 2.0,
                    Font::bold(size),
                    Anchor::Middle,
                    &c.time,
                );
                p.svg.text(
                    cx,
                    top + 3.0 * row_h - 2.0,
                    Font::grey(size - 0.5),
                    Anchor::Middle,
                    &c.zone,
                );
            }
            let mut y = top + head_h;
            for (i, row) in rows.iter().enumerate() {
                if i % 2 == 1 {
                    p.svg.rect(MARGIN, y, width, row_h, "#F3F5F8", None);
                }
                if row.strong {
                    p.svg.line(MARGIN, y, MARGIN + width, y, 0.8, "#666666");
                }
                let font = if row.strong {
                    Font::bold(size)
                } else {
                    Font::regular(size)
                };
                p.svg
                    .text(MARGIN + 3.0, y + row_h - 3.0, font, Anchor::Start, &row.label);
                for (k, text) in row.cells.iter().enumerate().take(end).skip(start) {
                    if !text.is_empty() {
                        let cx = MARGIN + FLOW_LABEL_W + FLOW_COL_W * ((k - start) as f64 + 0.5);
                        p.svg.text(cx, y + row_h - 3.0, font, Anchor::Middle, text);
                    }
                }
                y += row_h;
            }
            // Column rules, so an empty hour reads as an empty cell.
            for k in 0..=(end - start) {
                let x = MARGIN + FLOW_LABEL_W + FLOW_COL_W * k as f64;
                p.svg.line(x, top, x, y, 0.3, "#B0B8C0");
            }
            p.svg.line(MARGIN, y, MARGIN + width, y, 0.4, "#999999");
            l.y = y + 6.0;
        }
    }
}

/// One line per parameter whose device changed in the range. Device ids
/// come from BLE peers: they are text (escaped like every string here).
fn device_changes(l: &mut Layout, r: &Report) {
    let one_day = r.from.with_timezone(&r.tz).date_naive() == r.to.with_timezone(&r.tz).date_naive();
    let when = |t: DateTime<Utc>| {
        let t = t.with_timezone(&r.tz);
        if one_day { t.format("%H:%M") } else { t.format("%d %b %H:%M") }.to_string()
    };
    for c in r.device_changes.iter().filter(|c| c.devices.len() > 1) {
        let parts: Vec<String> = c.devices.iter().map(|(t, d)| format!("device {d} from {}", when(*t))).collect();
        l.paragraph(&format!("{}: {}", c.parameter, parts.join(", ")), Font::regular(8.5));
    }
}

fn completeness(l: &mut Layout, r: &Report) {
    let c = &r.completeness;
    let tz = r.tz;
    l.heading("Data completeness");
    let font = if c.is_complete() {
        Font::regular(8.5)
    } else {
        Font::alert(8.5)
    };
    l.paragraph(&c.summary(), font);
    if !c.gaps.is_empty() {
        let rows: Vec<Vec<String>> = c
            .gaps
            .iter()
            .map(|g| vec![g.series.clone(), local_short(g.from, tz), local_short(g.to, tz)])
            .collect();
        l.table(
            "Gaps",
            &[("Series", 200.0), ("From", 160.0), ("To", CONTENT_W - 360.0)],
            &rows,
        );
    }
    if !c.failed_chunks.is_empty() {
        let rows: Vec<Vec<String>> = c
            .failed_chunks
            .iter()
            .map(|f| {
                vec![
                    f.series.clone(),
                    local_short(f.from, tz),
                    local_short(f.to, tz),
                    f.reason.clone(),
                ]
            })
            .collect();
        l.table(
            "Chunks that failed verification (their readings are not shown)",
            &[
                ("Series", 150.0),
                ("From", 110.0),
                ("To", 110.0),
                ("Reason", CONTENT_W - 370.0),
            ],
            &rows,
        );
    }
}

fn footers(pages: &mut [Page], r: &Report) {
    let n = pages.len();
    let tz = r.tz;
    let generated = format!(
        "Generated {} UTC ({}) by {}",
        r.generated_at.format("%Y-%m-%d %H:%M"),
        local(r.generated_at, tz),
        r.generated_by
    );
    let font = if r.completeness.is_complete() {
        Font::grey(7.0)
    } else {
        Font::alert(7.0)
    };
    let summary = wrap(&r.completeness.summary(), 7.0, CONTENT_W - 50.0);
    for (i, p) in pages.iter_mut().enumerate() {
        let top = PAGE_H - 50.0;
        p.svg.line(MARGIN, top, PAGE_W - MARGIN, top, 0.5, "#666666");
        p.svg
            .text(MARGIN, top + 10.0, Font::regular(7.5), Anchor::Start, &generated);
        p.svg.text(
            PAGE_W - MARGIN,
            top + 10.0,
            Font::bold(8.0),
            Anchor::End,
            &format!("page {}/{}", i + 1, n),
        );
        for (k, line) in summary.iter().take(2).enumerate() {
            p.svg
                .text(MARGIN, top + 20.0 + 8.5 * k as f64, font, Anchor::Start, line);
        }
    }
}

/// Lays out every page of the report (as SVG) without writing the PDF.
fn layout(r: &Report) -> Result<Vec<Page>, ReportError> {
    if r.to <= r.from {
        return Err(ReportError::EmptyRange);
    }
    let tz = r.tz;
    let running = match &r.header.patient {
        Some(p) => format!(
            "{} · {} · MRN {} · {} to {}",
            r.header.bed,
            p.name,
            p.mrn,
            local(r.from, tz),
            local(r.to, tz)
        ),
        None => format!(
            "{} · no patient admitted · {} to {}",
            r.header.bed,
            local(r.from, tz),
            local(r.to, tz)
        ),
    };
    let mut l = Layout {
        pages: vec![Page::default()],
        y: MARGIN,
        running,
    };
    header(&mut l, r);
    charts(&mut l, r)?;
    flowsheet(&mut l, r);

    let alarms: Vec<Vec<String>> = r
        .alarms
        .iter()
        .map(|a| {
            vec![
                local_short(a.at, tz),
                a.priority.clone(),
                a.message.clone(),
                a.outcome.clone(),
            ]
        })
        .collect();
    l.table(
        "Alarm log",
        &[
            ("Time", 100.0),
            ("Priority", 55.0),
            ("Alarm", 190.0),
            ("Outcome", CONTENT_W - 345.0),
        ],
        &alarms,
    );

    let news2: Vec<Vec<String>> = r
        .news2
        .iter()
        .map(|n| {
            vec![
                local_short(n.at, tz),
                n.score.clone(),
                n.risk.clone(),
                n.parts.clone(),
            ]
        })
        .collect();
    l.table(
        "NEWS2 history",
        &[
            ("Time", 100.0),
            ("Score", 40.0),
            ("Risk", 70.0),
            ("Sub-scores", CONTENT_W - 210.0),
        ],
        &news2,
    );

    let unknown = |s: &Option<String>| s.clone().unwrap_or_else(|| "unknown".into());
    let devices: Vec<Vec<String>> = r
        .devices
        .iter()
        .map(|d| {
            vec![
                d.kind.clone(),
                d.address.clone(),
                unknown(&d.manufacturer),
                unknown(&d.model),
                unknown(&d.serial),
            ]
        })
        .collect();
    l.table(
        "Devices",
        &[
            ("Kind", 95.0),
            ("Address", 100.0),
            ("Manufacturer", 110.0),
            ("Model", 100.0),
            ("Serial", CONTENT_W - 405.0),
        ],
        &devices,
    );
    device_changes(&mut l, r);
    completeness(&mut l, r);
    let mut pages = l.pages;
    footers(&mut pages, r);
    Ok(pages)
}

/// The embedded fonts as a usvg font database; `sans-serif` (what plotters
/// asks for) is DejaVu Sans too, so no system font is ever looked up.
fn svg_options() -> usvg::Options<'static> {
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(SANS.to_vec());
    db.load_font_data(SANS_BOLD.to_vec());
    db.set_sans_serif_family("DejaVu Sans");
    usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::new(db),
        ..Default::default()
    }
}

fn parse(svg: &str, opts: &usvg::Options) -> Result<usvg::Tree, ReportError> {
    // usvg's message describes XML structure, never the text content.
    usvg::Tree::from_str(svg, opts).map_err(|e| ReportError::Svg(e.to_string()))
}

/// The report's pages as SVG documents (page, then its charts), for tests
/// and previews.
pub fn page_svgs(r: &Report) -> Result<Vec<String>, ReportError> {
    Ok(layout(r)?.iter().map(|p| p.svg.finish(PAGE_W, PAGE_H)).collect())
}

/// Renders the report as an A4 PDF.
pub fn render_pdf(r: &Report) -> Result<Vec<u8>, ReportError> {
    let pages = layout(r)?;
    let opts = svg_options();
    let mut doc = Document::new();
    let page_size = Size::from_wh(PAGE_W as f32, PAGE_H as f32).ok_or(ReportError::EmptyRange)?;
    for p in &pages {
        let page_tree = parse(&p.svg.finish(PAGE_W, PAGE_H), &opts)?;
        let chart_trees = p
            .charts
            .iter()
            .map(|c| Ok((c, parse(&c.svg, &opts)?)))
            .collect::<Result<Vec<_>, ReportError>>()?;
        let mut page = doc.start_page_with(PageSettings::new(page_size));
        let mut surface = page.surface();
        surface.draw_svg(&page_tree, page_size, SvgSettings::default());
        for (c, tree) in &chart_trees {
            let size = Size::from_wh(c.w as f32, c.h as f32)
                .ok_or_else(|| ReportError::Svg("empty chart".into()))?;
            surface.push_transform(&Transform::from_translate(c.x as f32, c.y as f32));
            surface.draw_svg(tree, size, SvgSettings::default());
            surface.pop();
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(pdf_error)
}

/// krilla's errors can carry font or document internals; name the kind only.
fn pdf_error(e: krilla::error::KrillaError) -> ReportError {
    use krilla::error::KrillaError as K;
    ReportError::Pdf(
        match e {
            K::Font(..) => "a font could not be embedded",
            K::Limit(..) => "a PDF size limit was exceeded",
            K::Validation(..) => "PDF validation failed",
            _ => "the document could not be serialised",
        }
        .into(),
    )
}
