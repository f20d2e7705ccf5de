//! A streaming PDF writer for printable table reports.
//!
//! PDF crates build the whole document in memory; an export of ten million
//! rows must not. This writer emits each page (a compressed content stream
//! and a page object) as soon as it is full and keeps only the byte offset
//! of every object, so memory stays flat: the page tree and the cross
//! reference table are written at the end. Text uses the standard
//! Helvetica fonts with WinAnsi encoding (Latin-1 plus typographic marks;
//! anything else prints as `?`), so nothing is embedded.

use flate2::write::ZlibEncoder;
use std::io::{self, Write};

/// A4 landscape, in points.
const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const FONT_SIZE: f32 = 7.0;
const LEADING: f32 = 9.5;

/// Object ids fixed up front; pages and their contents follow from 5.
const CATALOG: usize = 1;
const PAGES: usize = 2;
const FONT: usize = 3;
const FONT_BOLD: usize = 4;

/// Advance widths of Helvetica for ASCII 32..=126, in 1/1000 em (the AFM).
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// The WinAnsi byte of a character, or `?`.
fn win_ansi(c: char) -> u8 {
    match c as u32 {
        0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
        _ => match c {
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            '\t' | '\n' | '\r' => b' ',
            _ => b'?',
        },
    }
}

fn width_of(byte: u8) -> f32 {
    match byte {
        0x20..=0x7e => f32::from(HELVETICA[usize::from(byte - 0x20)]),
        _ => 556.0,
    }
}

/// `text` as a PDF string literal that fits in `max_width` points at
/// `size`, cut with an ellipsis when it does not.
fn fitted(text: &str, size: f32, max_width: f32) -> Vec<u8> {
    let bytes: Vec<u8> = text.chars().map(win_ansi).collect();
    let total: f32 = bytes.iter().map(|b| width_of(*b)).sum::<f32>() * size / 1000.0;
    let bytes = if total <= max_width {
        bytes
    } else {
        let ellipsis = width_of(0x85) * size / 1000.0;
        let mut used = 0.0;
        let mut cut = Vec::new();
        for b in bytes {
            let w = width_of(b) * size / 1000.0;
            if used + w + ellipsis > max_width {
                break;
            }
            used += w;
            cut.push(b);
        }
        cut.push(0x85);
        cut
    };
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'(');
    for b in bytes {
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// Counts the bytes written, for the cross-reference table.
struct Counting<W: Write> {
    inner: W,
    at: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A column of the table: its header and width in points.
pub(crate) struct Column {
    pub(crate) title: &'static str,
    pub(crate) width: f32,
}

/// A paginated table report written to `W` as rows arrive.
pub(crate) struct TableWriter<W: Write> {
    out: Counting<W>,
    /// Byte offset of each object, by id - 1 (0 = not written yet).
    offsets: Vec<u64>,
    pages: Vec<usize>,
    columns: Vec<Column>,
    /// The current page's drawing operators.
    content: Vec<u8>,
    y: f32,
    title: String,
    total_pages: usize,
}

impl<W: Write> TableWriter<W> {
    /// Starts a report: `intro` lines go under the title on the first page;
    /// `expected_rows` sizes the "page N of M" footer.
    pub(crate) fn new(
        out: W,
        title: &str,
        intro: &[String],
        columns: Vec<Column>,
        expected_rows: u64,
    ) -> io::Result<TableWriter<W>> {
        let rows_per_page = ((PAGE_H - 2.0 * MARGIN - 2.0 * LEADING) / LEADING).floor() as u64;
        let first_page_rows = rows_per_page.saturating_sub(intro.len() as u64 + 3).max(1);
        let total_pages = if expected_rows <= first_page_rows {
            1
        } else {
            1 + (expected_rows - first_page_rows).div_ceil(rows_per_page.max(1)) as usize
        };
        let mut w = TableWriter {
            out: Counting { inner: out, at: 0 },
            offsets: vec![0; FONT_BOLD],
            pages: Vec::new(),
            columns,
            content: Vec::new(),
            y: 0.0,
            title: title.to_string(),
            total_pages,
        };
        w.out.write_all(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")?;
        for (id, name) in [(FONT, "Helvetica"), (FONT_BOLD, "Helvetica-Bold")] {
            w.object(
                id,
                format!(
                    "<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"
                )
                .as_bytes(),
            )?;
        }
        w.start_page();
        w.text_line(
            &fitted(title, 14.0, PAGE_W - 2.0 * MARGIN),
            14.0,
            true,
            MARGIN,
        );
        w.y -= 6.0;
        for line in intro {
            w.text_line(
                &fitted(line, 9.0, PAGE_W - 2.0 * MARGIN),
                9.0,
                false,
                MARGIN,
            );
        }
        w.y -= 4.0;
        w.header_row();
        Ok(w)
    }

    fn object(&mut self, id: usize, body: &[u8]) -> io::Result<()> {
        if self.offsets.len() < id {
            self.offsets.resize(id, 0);
        }
        self.offsets[id - 1] = self.out.at;
        writeln!(self.out, "{id} 0 obj")?;
        self.out.write_all(body)?;
        self.out.write_all(b"\nendobj\n")
    }

    fn start_page(&mut self) {
        self.content.clear();
        self.y = PAGE_H - MARGIN;
        let footer = format!(
            "{} - page {} of {}",
            self.title,
            self.pages.len() + 1,
            self.total_pages.max(self.pages.len() + 1)
        );
        let y = self.y;
        self.y = MARGIN - 14.0;
        self.text_line(
            &fitted(&footer, 7.0, PAGE_W - 2.0 * MARGIN),
            7.0,
            false,
            MARGIN,
        );
        self.y = y;
    }

    fn text_line(&mut self, literal: &[u8], size: f32, bold: bool, x: f32) {
        self.y -= size.max(LEADING - 2.0) + 2.0;
        let font = if bold { "F2" } else { "F1" };
        let _ = write!(
            self.content,
            "BT /{font} {size} Tf {x:.1} {:.1} Td ",
            self.y
        );
        self.content.extend_from_slice(literal);
        self.content.extend_from_slice(b" Tj ET\n");
    }

    fn cells(&mut self, cells: &[&str], bold: bool) {
        self.y -= LEADING;
        let font = if bold { "F2" } else { "F1" };
        let _ = write!(
            self.content,
            "BT /{font} {FONT_SIZE} Tf {MARGIN:.1} {:.1} Td ",
            self.y
        );
        let mut last_x = MARGIN;
        let mut x = MARGIN;
        for (i, column) in self.columns.iter().enumerate() {
            let text = cells.get(i).copied().unwrap_or("");
            if !text.is_empty() {
                if x != last_x {
                    let _ = write!(self.content, "{:.1} 0 Td ", x - last_x);
                    last_x = x;
                }
                self.content
                    .extend_from_slice(&fitted(text, FONT_SIZE, column.width - 3.0));
                self.content.extend_from_slice(b" Tj ");
            }
            x += column.width;
        }
        self.content.extend_from_slice(b"ET\n");
    }

    fn header_row(&mut self) {
        let titles: Vec<&'static str> = self.columns.iter().map(|c| c.title).collect();
        self.cells(&titles, true);
        // A rule under the header.
        let _ = writeln!(
            self.content,
            "0.5 w {MARGIN:.1} {:.1} m {:.1} {:.1} l S",
            self.y - 2.5,
            PAGE_W - MARGIN,
            self.y - 2.5
        );
        self.y -= 2.0;
    }

    /// Adds a row, starting a new page when this one is full.
    pub(crate) fn row(&mut self, cells: &[&str]) -> io::Result<()> {
        if self.y - LEADING < MARGIN {
            self.finish_page()?;
            self.start_page();
            self.header_row();
        }
        self.cells(cells, false);
        Ok(())
    }

    fn finish_page(&mut self) -> io::Result<()> {
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&self.content)?;
        let data = z.finish()?;
        let content_id = self.offsets.len() + 1;
        let mut body = format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\nendstream");
        self.object(content_id, &body)?;
        let page_id = content_id + 1;
        self.object(
            page_id,
            format!(
                "<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources << /Font << /F1 {FONT} 0 R /F2 {FONT_BOLD} 0 R >> >> \
                 /Contents {content_id} 0 R >>"
            )
            .as_bytes(),
        )?;
        self.pages.push(page_id);
        Ok(())
    }

    /// Writes the last page, the page tree and the cross-reference table.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.finish_page()?;
        let mut kids = String::with_capacity(self.pages.len() * 8);
        for p in &self.pages {
            kids.push_str(&format!("{p} 0 R "));
        }
        self.object(
            PAGES,
            format!(
                "<< /Type /Pages /Kids [{kids}] /Count {} >>",
                self.pages.len()
            )
            .as_bytes(),
        )?;
        self.object(
            CATALOG,
            format!("<< /Type /Catalog /Pages {PAGES} 0 R >>").as_bytes(),
        )?;
        let xref_at = self.out.at;
        write!(
            self.out,
            "xref\n0 {}\n0000000000 65535 f \n",
            self.offsets.len() + 1
        )?;
        for off in &self.offsets {
            writeln!(self.out, "{off:010} 00000 n ")?;
        }
        write!(
            self.out,
            "trailer\n<< /Size {} /Root {CATALOG} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            self.offsets.len() + 1
        )?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_an_ellipsis_to_fit_its_column() {
        let lit = fitted(&"W".repeat(200), 7.0, 50.0);
        assert_eq!(lit.first(), Some(&b'('));
        assert_eq!(lit[lit.len() - 2], 0x85, "ends with an ellipsis");
        let width: f32 = lit[1..lit.len() - 1]
            .iter()
            .map(|b| width_of(*b))
            .sum::<f32>()
            * 7.0
            / 1000.0;
        assert!(width <= 50.0, "{width}");
        assert_eq!(fitted("ok", 7.0, 50.0), b"(ok)".to_vec());
    }

    #[test]
    fn parentheses_and_backslashes_are_escaped_and_latin1_kept() {
        assert_eq!(
            fitted("a(b)\\ç", 7.0, 500.0),
            b"(a\\(b\\)\\\\\xe7)".to_vec()
        );
        assert_eq!(fitted("日本", 7.0, 500.0), b"(??)".to_vec());
    }

    #[test]
    fn every_xref_offset_points_at_its_object() {
        let cols = vec![
            Column {
                title: "#",
                width: 40.0,
            },
            Column {
                title: "Text",
                width: 200.0,
            },
        ];
        let mut t =
            TableWriter::new(Vec::new(), "T", &["filters: none".into()], cols, 200).expect("new");
        for i in 0..200 {
            t.row(&[&i.to_string(), "hello (world)"]).expect("row");
        }
        let pdf = t.finish().expect("finish");
        let xref = 1 + pdf
            .windows(6)
            .rposition(|w| w == b"\nxref\n")
            .expect("xref");
        let table = std::str::from_utf8(&pdf[xref..]).expect("the xref table is ASCII");
        let count: usize = table
            .lines()
            .nth(1)
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|n| n.parse().ok())
            .expect("size");
        assert!(count > 5, "several pages");
        for (i, line) in table.lines().skip(3).take(count - 1).enumerate() {
            let off: usize = line[..10].parse().expect("offset");
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
