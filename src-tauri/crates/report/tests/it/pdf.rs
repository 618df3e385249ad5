//! The real PDF, read back by poppler: `pdftotext` for the words and
//! `pdftoppm` for pixels.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_report::{render_pdf, ReportError};

use crate::fixture;

fn write_pdf(dir: &Path, bytes: &[u8]) -> PathBuf {
    let p = dir.join("report.pdf");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The PDF's text, pages split on form feeds, whitespace collapsed.
fn pdf_pages(pdf: &Path) -> Vec<String> {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut pages: Vec<String> = text
        .split('\u{c}')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    if pages.last().is_some_and(|p| p.is_empty()) {
        pages.pop();
    }
    pages
}

/// Page 1 as PNG at `dpi`.
fn page_png(pdf: &Path, dpi: u32, out_stem: &Path) -> PathBuf {
    let st = Command::new("pdftoppm")
        .args([
            "-png",
            "-r",
            &dpi.to_string(),
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
        ])
        .arg(pdf)
        .arg(out_stem)
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(st.success());
    out_stem.with_extension("png")
}

/// (pixels, pixels that are not near-white).
fn ink(png_path: &Path) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let total = px.len() / channels;
    let inked = px
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|c| *c < 200))
        .count();
    (total, inked)
}

#[test]
fn the_fixture_report_reads_back_with_every_section_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&fixture::report()).unwrap());
    let pages = pdf_pages(&pdf);
    let n = pages.len();
    assert!(
        n >= 3,
        "70 alarms and an 18-hour flowsheet need several pages, got {n}"
    );
    let all = pages.join(" ");
    // Header.
    assert!(pages[0].contains("Patient monitoring report"));
    assert!(
        pages[0].contains(fixture::NAME),
        "patient name (with markup characters) on page 1"
    );
    assert!(pages[0].contains(&format!("MRN: {}", fixture::MRN)));
    assert!(pages[0].contains("DOB: 29 Feb 1948"));
    assert!(pages[0].contains("Category: Adult"));
    assert!(pages[0].contains("Bed: Bed 3"));
    // Range in local time across the change, with the zone.
    assert!(pages[0].contains("28 Mar 2026 18:00 GMT to 29 Mar 2026 13:00 BST (Europe/London)"));
    // Sections.
    for h in [
        "Trends",
        "Flowsheet",
        "Alarm log",
        "NEWS2 history",
        "Devices",
        "Data completeness",
    ] {
        assert!(all.contains(h), "section {h}");
    }
    assert!(
        all.contains("Alarm log (continued)"),
        "the alarm log runs onto another page"
    );
    // Flowsheet columns across the clock change: 00:00 GMT then 02:00 BST.
    assert!(all.contains("00:00") && all.contains("02:00"));
    assert!(
        all.contains("Local time (Europe/London, GMT/BST)"),
        "chart axis labelled with the zone"
    );
    // Devices with serials; an unknown serial is said, not left blank.
    assert!(all.contains(fixture::SERIAL) && all.contains("unknown"));
    // Which device measured SpO2 when (a step in the trend may be the
    // device), with the device's own markup-like name as text; local times.
    assert!(
        all.contains("SpO2: device ble-C4:7C:8D:6A:11:02 from 28 Mar 18:00, device ble-<b>spare</b>& from 29 Mar 04:32"),
        "device change line"
    );
    // Completeness, in every footer, and the failed chunk and the gap listed.
    let statement = "Data INCOMPLETE: 1 gap(s), 1 chunk(s) failed verification";
    assert!(all.contains("authentication tag mismatch"));
    assert!(all.contains("Chunks that failed verification"));
    assert!(all.contains("Gaps"));
    for (i, p) in pages.iter().enumerate() {
        assert!(
            p.contains(&format!("page {}/{}", i + 1, n)),
            "page {} footer: {p}",
            i + 1
        );
        assert!(p.contains(statement), "page {} completeness", i + 1);
        assert!(
            p.contains("Generated 2026-03-29 12:05 UTC (29 Mar 2026 13:05 BST) by RN Okafor"),
            "page {}",
            i + 1
        );
    }
    // Pages after the first say whose they are.
    assert!(pages[1].contains(&format!("MRN {}", fixture::MRN)));
}

#[test]
fn page_one_renders_with_ink_and_is_saved_for_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&fixture::report()).unwrap());
    let png_path = page_png(&pdf, 50, &dir.path().join("p1"));
    let (total, inked) = ink(&png_path);
    assert!(
        total > 200_000 / 2,
        "an A4 page at 50 dpi is about 413×585 px, got {total}"
    );
    assert!(
        inked * 100 > total,
        "more than 1 % of page 1 has ink ({inked}/{total})"
    );
    assert!(inked * 2 < total, "but it is not a black page ({inked}/{total})");

    // A readable copy for people: test-output/report/page-1.png (and -2).
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../test-output/report");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(&pdf, out.join("report.pdf")).unwrap();
    let st = Command::new("pdftoppm")
        .args(["-png", "-r", "110", "-f", "1", "-l", "2"])
        .arg(&pdf)
        .arg(out.join("page"))
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn an_empty_bed_with_no_samples_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let report = fixture::empty_report();
    let pdf = write_pdf(dir.path(), &render_pdf(&report).unwrap());
    let pages = pdf_pages(&pdf);
    let all = pages.join(" ");
    assert!(pages[0].contains("No patient admitted"));
    assert_eq!(
        all.matches("no data in this range").count(),
        report.charts.len(),
        "one per chart: {all}"
    );
    assert!(all.contains("None in this range."));
    assert!(all.contains("No stored data in this range: nothing to verify, no failures."));
    assert!(all.contains(&format!("page 1/{}", pages.len())));
    assert!(!all.contains(fixture::NAME));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../test-output/report");
    std::fs::create_dir_all(&out).unwrap();
    let png = page_png(&pdf, 80, &out.join("empty-bed-page-1"));
    let (total, inked) = ink(&png);
    assert!(
        inked * 200 > total,
        "the empty report still draws its header, axes and tables"
    );
}

#[test]
fn patient_identity_stays_out_of_debug_and_errors() {
    let mut r = fixture::report();
    let debug = format!("{r:?}");
    assert!(!debug.contains(fixture::NAME) && !debug.contains(fixture::MRN));
    assert!(
        !debug.contains("SpO2 low"),
        "alarm messages carry measured values: {debug}"
    );
    assert!(debug.contains("Bed 3"));
    let patient = format!("{:?}", r.header.patient);
    assert!(!patient.contains(fixture::NAME) && !patient.contains("1948"));
    r.to = r.from;
    let err = render_pdf(&r).unwrap_err();
    assert!(matches!(err, ReportError::EmptyRange));
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains(fixture::NAME) && !msg.contains(fixture::MRN));
}

#[test]
fn fonts_are_embedded_so_it_prints_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&fixture::report()).unwrap());
    let out = Command::new("pdffonts")
        .arg(&pdf)
        .output()
        .expect("pdffonts (poppler-utils)");
    let text = String::from_utf8(out.stdout).unwrap();
    let fonts: Vec<&str> = text.lines().skip(2).collect();
    assert!(!fonts.is_empty(), "{text}");
    for f in fonts {
        assert!(f.contains("DejaVuSans"), "only the compiled-in DejaVu Sans: {f}");
        let cols: Vec<&str> = f.split_whitespace().collect();
        // name type... encoding emb sub uni object ID: emb is 5th from the end.
        assert_eq!(cols[cols.len() - 5], "yes", "embedded: {f}");
    }
}

/// A fall-back day (25 local hours) with more parameters than fit one page.
fn long_flowsheet_report() -> vigil_report::Report {
    use chrono::TimeDelta;
    use chrono_tz::Europe::London;
    use vigil_report::{FlowInput, Flowsheet};
    let from = fixture::utc(2026, 10, 24, 23, 0); // 00:00 BST
    let to = fixture::utc(2026, 10, 26, 0, 0); // 00:00 GMT next day
    let inputs: Vec<FlowInput> = (0..70)
        .map(|i| FlowInput {
            label: format!("P{i:02}"),
            unit: "1".into(),
            samples: (0..25)
                .map(|h| (from + TimeDelta::minutes(60 * h + 30), f64::from(i)))
                .collect(),
        })
        .collect();
    let mut r = fixture::report();
    r.from = from;
    r.to = to;
    r.flowsheet = Flowsheet::build(from, to, London, &inputs);
    r.charts.clear();
    r.alarms.truncate(3);
    r
}

#[test]
fn a_wide_and_long_flowsheet_splits_into_column_pages_and_row_blocks() {
    let r = long_flowsheet_report();
    assert_eq!(r.flowsheet.columns.len(), 25);
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&r).unwrap());
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../test-output/report");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(&pdf, out.join("long-flowsheet.pdf")).unwrap();
    let all = pdf_pages(&pdf).join(" ");
    for caption in ["Hours 1–12 of 25", "Hours 13–24 of 25", "Hours 25–25 of 25"] {
        assert!(all.contains(caption), "{caption}");
    }
    for i in 0..70 {
        // Every parameter in every column page.
        assert_eq!(all.matches(&format!("P{i:02} (1)")).count(), 3, "P{i:02}");
    }
    // The repeated 01:00 is two columns, told apart by zone.
    let svgs = vigil_report::page_svgs(&r).unwrap();
    let joined = svgs.join("");
    assert!(joined.matches(">01:00<").count() >= 2);
    assert!(joined.contains(">BST<") && joined.contains(">GMT<"));
}

/// Every text baseline on every page is either in the content area or in
/// the footer band: nothing runs into the footer.
#[test]
fn no_page_content_runs_into_the_footer() {
    use vigil_report::pdf::{PAGE_H, PAGE_W};
    for r in [
        fixture::report(),
        fixture::empty_report(),
        long_flowsheet_report(),
    ] {
        for (n, svg) in vigil_report::page_svgs(&r).unwrap().iter().enumerate() {
            assert!(svg.contains(&format!("width=\"{PAGE_W}\"")));
            for t in svg.split("<text ").skip(1) {
                let y: f64 = t
                    .split("y=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body = t.split_once('>').unwrap().1;
                assert!(
                    y <= PAGE_H - 62.0 || y >= PAGE_H - 50.0,
                    "page {}: text at y={y}: {body}",
                    n + 1
                );
                assert!(y <= PAGE_H - 20.0, "inside the page: {body}");
            }
        }
    }
}

#[test]
fn more_charts_than_fit_one_group_continue_in_a_second_group() {
    let mut r = fixture::report();
    let extra = fixture::charts();
    r.charts.extend(extra); // 6 panels: 4 + 2
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&r).unwrap());
    let all = pdf_pages(&pdf).join(" ");
    assert_eq!(
        all.matches("Local time (Europe/London, GMT/BST)").count(),
        2,
        "two chart groups, each with its axis"
    );
}

/// Words on the PDF's pages with their boxes (`pdftotext -bbox`): (page, x-min, y-min, x-max, text).
fn words(pdf: &Path) -> Vec<Word> {
    let out = Command::new("pdftotext")
        .arg("-bbox")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success());
    let html = String::from_utf8(out.stdout).unwrap();
    let mut page = 0;
    let mut out = Vec::new();
    for line in html.lines() {
        let line = line.trim();
        if line.starts_with("<page") {
            page += 1;
        }
        let Some(rest) = line.strip_prefix("<word ") else {
            continue;
        };
        let attr = |name: &str| -> f64 {
            rest.split(&format!("{name}=\""))
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let text = rest.split_once('>').unwrap().1.trim_end_matches("</word>");
        let text = text
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        out.push((page, attr("xMin"), attr("yMin"), attr("xMax"), text));
    }
    out
}

type Word = (usize, f64, f64, f64, String);

/// The text printed in the flowsheet row labelled `row` ("NEWS2", "· BP")
/// under the column headed `hour` ("07:00") above `zone` ("BST"): the words
/// on the row's line whose centre lies inside that column of the same block.
fn flow_cell(words: &[Word], row: &str, hour: &str, zone: &str) -> Option<String> {
    let centre = |w: &Word| (w.1 + w.3) / 2.0;
    let same_line = |a: &Word, b: &Word| a.0 == b.0 && (a.2 - b.2).abs() < 2.0;
    // Every row whose label (the words left of the first column) reads `row`.
    let labels = words.iter().filter(|w| w.1 < 60.0).filter(|w| {
        let label: Vec<&str> = words
            .iter()
            .filter(|x| same_line(x, w) && x.1 < 36.0 + 90.0)
            .map(|x| x.4.as_str())
            .collect();
        label.join(" ") == row
    });
    for label in labels {
        // The block's header: the nearest "Parameter" above on the page.
        let Some(param) = words
            .iter()
            .filter(|w| w.0 == label.0 && w.4 == "Parameter" && w.2 < label.2)
            .max_by(|a, b| a.2.total_cmp(&b.2))
        else {
            continue;
        };
        let head = words
            .iter()
            .filter(|h| same_line(h, param) && h.4 == hour)
            .find(|h| {
                words.iter().any(|z| {
                    z.0 == h.0
                        && z.4 == zone
                        && (centre(z) - centre(h)).abs() < 3.0
                        && z.2 > h.2
                        && z.2 - h.2 < 15.0
                })
            });
        let Some(head) = head else { continue };
        let cell: Vec<&str> = words
            .iter()
            .filter(|w| {
                same_line(w, label) && w.1 > 36.0 + 90.0 && (centre(w) - centre(head)).abs() < 35.5 / 2.0
            })
            .map(|w| w.4.as_str())
            .collect();
        return Some(cell.join(" "));
    }
    None
}

#[test]
fn the_flowsheet_prints_the_hours_news2_score_with_its_parts_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&fixture::report()).unwrap());
    let w = words(&pdf);
    // 06:00 UTC on the day the clocks went forward is 07:00 BST: the 3 of
    // low-medium risk (a single 3) outranks the hour's later 4 of low risk.
    let cell = |row: &str| {
        flow_cell(&w, row, "07:00", "BST").unwrap_or_else(|| panic!("no {row} row or 07:00 BST column"))
    };
    assert_eq!(cell("NEWS2"), "3");
    assert_eq!(cell("\u{b7} SpO2"), "3", "the shown score's own sub-score");
    assert_eq!(cell("\u{b7} RR"), "0");
    assert_eq!(cell("\u{b7} BP"), "0*", "entered by a nurse, marked");
    assert_eq!(cell("Nurse entries"), "2", "the hour's nurse entries");
    // 22:00 UTC is 22:00 GMT: an incomplete score, a missing and a stale part.
    let cell = |row: &str| flow_cell(&w, row, "22:00", "GMT").unwrap();
    assert_eq!(cell("NEWS2"), "\u{2265} 1");
    assert_eq!(cell("\u{b7} BP"), "\u{2013}");
    assert_eq!(cell("\u{b7} HR"), "(1)");
    assert_eq!(cell("Nurse entries"), "");
    // An hour with no score is blank, never 0.
    assert_eq!(flow_cell(&w, "NEWS2", "23:00", "GMT").unwrap(), "");
    let all = pdf_pages(&pdf).join(" ");
    assert!(
        all.contains("NEWS2: the hour's highest recorded score"),
        "the rule is printed"
    );
}

#[test]
fn news2_rows_follow_the_hours_of_a_25_hour_day() {
    use vigil_report::{News2Note, News2Risk, News2Score};
    let mut r = long_flowsheet_report();
    let (from, to) = (r.from, r.to);
    // One score in each of the two 01:00 hours (BST, then GMT).
    let score = |at, total| News2Score {
        at,
        total,
        complete: true,
        risk: News2Risk::Low,
        parts: Vec::new(),
    };
    let scores = [
        score(fixture::utc(2026, 10, 25, 0, 30), 2),
        score(fixture::utc(2026, 10, 25, 1, 30), 4),
    ];
    let notes = [News2Note {
        at: fixture::utc(2026, 10, 25, 1, 40),
        text: "T 38.4 °C".into(),
        by: "rn.okafor".into(),
    }];
    r.flowsheet = r.flowsheet.with_news2(from, to, &scores, &notes);
    r.flowsheet.rows.truncate(3);
    assert_eq!(r.flowsheet.columns.len(), 25);
    assert_eq!(r.flowsheet.news2.len(), 25);
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), &render_pdf(&r).unwrap());
    let w = words(&pdf);
    assert_eq!(flow_cell(&w, "NEWS2", "01:00", "BST").unwrap(), "2");
    assert_eq!(flow_cell(&w, "NEWS2", "01:00", "GMT").unwrap(), "4");
    assert_eq!(flow_cell(&w, "Nurse entries", "01:00", "GMT").unwrap(), "1");
    let all = pdf_pages(&pdf).join(" ");
    for caption in ["Hours 1–12 of 25", "Hours 13–24 of 25", "Hours 25–25 of 25"] {
        assert!(all.contains(caption), "{caption}");
    }
    assert_eq!(
        all.matches("Nurse entries").count(),
        1 + 3,
        "the legend, then the NEWS2 block in every column page"
    );
}
