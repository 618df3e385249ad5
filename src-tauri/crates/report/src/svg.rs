//! A tiny writer for the page SVGs (text, lines, boxes) in points.

use std::fmt::Write;

/// DejaVu Sans' mean advance is about 0.55 em for mixed text; used to wrap
/// and fit table cells. Generous on purpose so text never overruns a cell.
pub const AVG_ADVANCE_EM: f64 = 0.58;

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            // Control characters are not allowed in XML.
            c if (c as u32) < 0x20 && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
/// Estimated printed width of `s` at `size` points.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * AVG_ADVANCE_EM
}

/// Greedy word wrap to `width` points; a word longer than a line is cut.
pub fn wrap(s: &str, size: f64, width: f64) -> Vec<String> {
    let max = ((width / (size * AVG_ADVANCE_EM)).floor() as usize).max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let mut word: String = word.to_string();
        while word.chars().count() > max {
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            lines.push(head);
        }
        let needed = if cur.is_empty() {
            word.chars().count()
        } else {
            cur.chars().count() + 1 + word.chars().count()
        };
        if needed > max && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Clone, Copy)]
pub struct Font {
    pub size: f64,
    pub bold: bool,
    pub colour: &'static str,
}

impl Font {
    pub const fn regular(size: f64) -> Font {
        Font {
            size,
            bold: false,
            colour: "#000000",
        }
    }
    pub const fn bold(size: f64) -> Font {
        Font {
            size,
            bold: true,
            colour: "#000000",
        }
    }
    pub const fn grey(size: f64) -> Font {
        Font {
            size,
            bold: false,
            colour: "#555555",
        }
    }
    pub const fn alert(size: f64) -> Font {
        Font {
            size,
            bold: true,
            colour: "#B00000",
        }
    }
}

/// One page's SVG body; [`PageSvg::finish`] wraps it.
#[derive(Default)]
pub struct PageSvg {
    body: String,
}

impl PageSvg {
    /// `y` is the text baseline.
    pub fn text(&mut self, x: f64, y: f64, font: Font, anchor: Anchor, s: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let weight = if font.bold { "bold" } else { "normal" };
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.2}" y="{y:.2}" font-family="DejaVu Sans" font-size="{}" font-weight="{weight}" fill="{}" text-anchor="{anchor}">{}</text>"#,
            font.size,
            font.colour,
            escape(s)
        );
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, width: f64, colour: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.2}" y1="{y1:.2}" x2="{x2:.2}" y2="{y2:.2}" stroke="{colour}" stroke-width="{width}"/>"#
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: Option<&str>) {
        let stroke = stroke
            .map(|s| format!(r#" stroke="{s}" stroke-width="0.6""#))
            .unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{fill}"{stroke}/>"#
        );
    }

    pub fn finish(&self, width: f64, height: f64) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">
{}</svg>"#,
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("O'Neil & <Sons> \"x\""),
            "O'Neil &amp; &lt;Sons&gt; &quot;x&quot;"
        );
    }

    #[test]
    fn wraps_within_width() {
        let lines = wrap(
            "acknowledged by RN Lee at 10:32 after the probe was refitted",
            8.0,
            80.0,
        );
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(text_width(l, 8.0) <= 80.0 + 1e-9, "{l}");
        }
        assert_eq!(
            lines.join(" "),
            "acknowledged by RN Lee at 10:32 after the probe was refitted"
        );
    }
}
