//! Saliency logos: at each position the four bases drawn as letters whose height is their
//! score — positive scores stacked upward from 0 (largest on top), negative ones downward
//! (largest magnitude at the bottom). A green, C blue, G orange, T red. The letters are the
//! outlines of the bundled DejaVu Sans Bold, stretched to their box, so PNG and SVG match.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, OutlineCurve, Point};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::Table;
use super::style::{self, font, LegendEntry, TICK};
use super::{create_dir, de, file_stem, save_png, save_svg, DrawResult, Figure, FONT_BOLD};
use crate::error::{Error, Result};

/// Colours of A, C, G, T (the usual logo colours).
pub const BASE_COLORS: [RGBColor; 4] = [
    RGBColor(0, 150, 0),
    RGBColor(0, 80, 220),
    RGBColor(255, 160, 0),
    RGBColor(210, 0, 0),
];
const BASES: [char; 4] = ['A', 'C', 'G', 'T'];

/// A letter as closed polygons in the unit square (x and y in [0, 1], y up).
type Glyph = Vec<Vec<(f64, f64)>>;
type Pt = (f64, f64);
/// One TSV row: position, scores A/C/G/T, line number.
type Row = (u64, [f64; 4], usize);

/// The outlines of A, C, G, T from the bundled bold font, flattened to polygons.
fn glyphs() -> Result<[Glyph; 4]> {
    let font = FontRef::try_from_slice(FONT_BOLD)
        .map_err(|e| Error::Usage(format!("bundled font is unreadable: {e}")))?;
    let mut out: [Glyph; 4] = Default::default();
    for (k, &c) in BASES.iter().enumerate() {
        let Some(outline) = font.outline(font.glyph_id(c)) else {
            continue;
        };
        // ab_glyph's bounds hold y_max in `min.y` and y_min in `max.y`: order them.
        let b = outline.bounds;
        let (x0, x1) = (b.min.x.min(b.max.x) as f64, b.min.x.max(b.max.x) as f64);
        let (y0, y1) = (b.min.y.min(b.max.y) as f64, b.min.y.max(b.max.y) as f64);
        let (bx, by, w, h) = (x0, y0, (x1 - x0).max(1.0), (y1 - y0).max(1.0));
        let norm = |p: Pt| ((p.0 - bx) / w, (p.1 - by) / h);
        let mut contours: Glyph = Vec::new();
        let mut last: Option<Pt> = None;
        for curve in &outline.curves {
            let f = |p: Point| (p.x as f64, p.y as f64);
            let (start, pts): (Pt, Vec<Pt>) = match *curve {
                OutlineCurve::Line(p0, p1) => (f(p0), vec![f(p1)]),
                OutlineCurve::Quad(p0, p1, p2) => {
                    let (p0, p1, p2) = (f(p0), f(p1), f(p2));
                    (
                        p0,
                        (1..=8)
                            .map(|i| {
                                let t = i as f64 / 8.0;
                                let u = 1.0 - t;
                                let (a, b, c) = (u * u, 2.0 * u * t, t * t);
                                (
                                    a * p0.0 + b * p1.0 + c * p2.0,
                                    a * p0.1 + b * p1.1 + c * p2.1,
                                )
                            })
                            .collect(),
                    )
                }
                OutlineCurve::Cubic(p0, p1, p2, p3) => {
                    let (p0, p1, p2, p3) = (f(p0), f(p1), f(p2), f(p3));
                    (
                        p0,
                        (1..=12)
                            .map(|i| {
                                let t = i as f64 / 12.0;
                                let u = 1.0 - t;
                                let (a, b, c, d) =
                                    (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                                (
                                    a * p0.0 + b * p1.0 + c * p2.0 + d * p3.0,
                                    a * p0.1 + b * p1.1 + c * p2.1 + d * p3.1,
                                )
                            })
                            .collect(),
                    )
                }
            };
            let continues =
                last.is_some_and(|l| (l.0 - start.0).abs() < 1e-3 && (l.1 - start.1).abs() < 1e-3);
            if !continues || contours.is_empty() {
                contours.push(vec![norm(start)]);
            }
            if let Some(c) = contours.last_mut() {
                c.extend(pts.iter().map(|&p| norm(p)));
            }
            last = pts.last().copied();
        }
        out[k] = contours;
    }
    Ok(out)
}

/// One record's logo.
struct Logo<'a> {
    id: &'a str,
    /// What the scores are of (`target class 1, integrated gradients`), after the id in the
    /// title; empty: the id alone.
    about: String,
    scores: &'a [[f64; 4]],
    glyphs: &'a [Glyph; 4],
}

/// Writes one saliency logo for record `id` with `scores[position] = [A, C, G, T]` as
/// `out` with extension `.png` and `.svg` (so `out` = `dir/rec1.png` writes `dir/rec1.png` and
/// `dir/rec1.svg`). Non-finite scores are drawn as 0. Returns the two files written.
///
/// # Shapes
/// `scores`: `(length, 4)`, position 1 first.
pub fn saliency_logo(id: &str, scores: &[[f64; 4]], out: &Path) -> Result<Vec<PathBuf>> {
    saliency_logo_about(id, "", scores, out)
}

/// [`saliency_logo`] with the title naming, after the record id, what the scores are of
/// (`about`: the target class and the method; nothing when empty).
///
/// # Shapes
/// `scores`: `(length, 4)`, position 1 first.
pub fn saliency_logo_about(
    id: &str,
    about: &str,
    scores: &[[f64; 4]],
    out: &Path,
) -> Result<Vec<PathBuf>> {
    if scores.is_empty() {
        return Err(Error::Usage(format!(
            "saliency logo for '{id}': no positions to draw"
        )));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let glyphs = glyphs()?;
    let fig = Logo {
        id,
        about: about.to_string(),
        scores,
        glyphs: &glyphs,
    };
    let png = out.with_extension("png");
    let svg = out.with_extension("svg");
    save_png(&fig, &png)?;
    save_svg(&fig, &svg)?;
    Ok(vec![png, svg])
}

/// Reads a saliency TSV (`id\tposition\tA\tC\tG\tT`, 1-based positions) and writes one logo
/// per record into `out_dir` as `saliency_<id>.{png,svg}` (the id made file-name-safe).
/// Returns the files written.
pub fn saliency_logos_from_tsv(tsv: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    saliency_logos_titled(tsv, out_dir, &|_: &str| String::new())
}

/// [`saliency_logos_from_tsv`] with each logo's title naming, after the record id, what
/// `about(id)` says its scores are of (the target class and the method).
pub fn saliency_logos_titled(
    tsv: &Path,
    out_dir: &Path,
    about: &dyn Fn(&str) -> String,
) -> Result<Vec<PathBuf>> {
    let t = Table::read(tsv, '\t')?;
    let ci = t.col("id")?;
    let cp = t.col("position")?;
    let cols = [t.col("A")?, t.col("C")?, t.col("G")?, t.col("T")?];
    if t.rows.is_empty() {
        return Err(t.err(1, "no rows (only a header)"));
    }
    // Records in order of appearance: id → (position, scores, line).
    let mut records: Vec<(String, Vec<Row>)> = Vec::new();
    for (line, f) in &t.rows {
        let pos = t.int(*line, f, cp)?;
        if pos == 0 {
            return Err(t.err(*line, "position 0: positions are 1-based"));
        }
        let mut s = [0.0; 4];
        for (k, &c) in cols.iter().enumerate() {
            s[k] = t.num(*line, f, c)?;
        }
        let id = &f[ci];
        match records.iter_mut().find(|(r, _)| r == id) {
            Some((_, v)) => v.push((pos, s, *line)),
            None => records.push((id.clone(), vec![(pos, s, *line)])),
        }
    }
    create_dir(out_dir)?;
    let glyphs = glyphs()?;
    let mut written = Vec::new();
    let mut stems: Vec<String> = Vec::new();
    for (id, mut rows) in records {
        rows.sort_by_key(|r| r.0);
        for w in rows.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(t.err(
                    w[1].2,
                    format!("record '{id}' has position {} twice", w[1].0),
                ));
            }
        }
        // Positions not listed are drawn as 0.
        let len = rows.last().map(|r| r.0).unwrap_or(0) as usize;
        let mut scores = vec![[0.0; 4]; len];
        for (p, s, _) in &rows {
            scores[*p as usize - 1] = *s;
        }
        let mut stem = format!("saliency_{}", file_stem(&id));
        if stems.contains(&stem) {
            stem = format!("{stem}_{}", stems.len() + 1);
        }
        stems.push(stem.clone());
        let fig = Logo {
            id: &id,
            about: about(&id),
            scores: &scores,
            glyphs: &glyphs,
        };
        let png = out_dir.join(format!("{stem}.png"));
        let svg = out_dir.join(format!("{stem}.svg"));
        save_png(&fig, &png)?;
        save_svg(&fig, &svg)?;
        written.push(png);
        written.push(svg);
    }
    Ok(written)
}

fn clean(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl Figure for Logo<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let title = if self.about.is_empty() {
            format!("Saliency logo — record {}", self.id)
        } else {
            format!("Saliency logo — record {}: {}", self.id, self.about)
        };
        let area = style::title(root, &title)?;
        let (legend, area) = area.split_vertically(40);
        style::legend_row(
            &legend,
            &BASES
                .iter()
                .zip(BASE_COLORS)
                .map(|(b, c)| LegendEntry {
                    label: b.to_string(),
                    color: c,
                    dashed: false,
                    boxed: true,
                })
                .collect::<Vec<_>>(),
        )?;
        let n = self.scores.len();
        let (mut top, mut bottom) = (0.0f64, 0.0f64);
        for s in self.scores {
            top = top.max(s.iter().map(|&v| clean(v).max(0.0)).sum());
            bottom = bottom.min(s.iter().map(|&v| clean(v).min(0.0)).sum());
        }
        if top - bottom <= 0.0 {
            top = 1.0;
            bottom = -1.0;
        }
        let pad = (top - bottom) * 0.05;
        let (y0, y1) = (
            if bottom < 0.0 { bottom - pad } else { -pad },
            if top > 0.0 { top + pad } else { pad },
        );
        if !(y1 - y0).is_finite() {
            return Err(format!("scores of '{}' are too large to draw", self.id));
        }
        // Tick positions come from float steps: a tick meant to be 0 can land at ±1e-16.
        let span = y1 - y0;
        let y_fmt = |v: &f64| style::fmt_lin(&if v.abs() < span * 1e-9 { 0.0 } else { *v });
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(55)
            .y_label_area_size(95)
            .build_cartesian_2d(0.5f64..(n as f64 + 0.5), y0..y1)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("position in sequence (1-based)")
            .y_desc("score per base (attribution)")
            .axis_desc_style(font(style::AXIS))
            .label_style(font(TICK))
            .x_labels(n.clamp(2, 20))
            .y_labels(9)
            .x_label_formatter(&style::fmt_int)
            .y_label_formatter(&y_fmt)
            .disable_x_mesh()
            .light_line_style(RGBColor(245, 245, 245))
            .bold_line_style(RGBColor(228, 228, 228))
            .draw()
            .map_err(de)?;
        chart
            .draw_series(LineSeries::new(
                [(0.5, 0.0), (n as f64 + 0.5, 0.0)],
                ShapeStyle::from(&RGBColor(90, 90, 90)).stroke_width(1),
            ))
            .map_err(de)?;
        let mut polys: Vec<Polygon<(f64, f64)>> = Vec::new();
        for (i, s) in self.scores.iter().enumerate() {
            let x = (i + 1) as f64;
            let (xl, xr) = (x - 0.45, x + 0.45);
            let mut order: Vec<usize> = (0..4).collect();
            // Positive: smallest first (bottom), largest on top.
            order.sort_by(|&a, &b| clean(s[a]).total_cmp(&clean(s[b])));
            let mut base = 0.0;
            for &k in order.iter().filter(|&&k| clean(s[k]) > 0.0) {
                let h = clean(s[k]);
                polys.extend(letter(
                    &self.glyphs[k],
                    xl,
                    xr,
                    base,
                    base + h,
                    BASE_COLORS[k],
                ));
                base += h;
            }
            // Negative: smallest magnitude next to 0, largest at the bottom.
            let mut base = 0.0;
            for &k in order.iter().rev().filter(|&&k| clean(s[k]) < 0.0) {
                let h = clean(s[k]);
                polys.extend(letter(
                    &self.glyphs[k],
                    xl,
                    xr,
                    base + h,
                    base,
                    BASE_COLORS[k],
                ));
                base += h;
            }
        }
        chart.draw_series(polys).map_err(de)?;
        Ok(())
    }
}

/// A letter's polygon filling the box `[xl, xr] × [yb, yt]` (upright). All contours go into one
/// polygon joined by bridges back to the first point, so a counter (the hole of A) stays empty
/// under both the even-odd and the non-zero fill rule.
fn letter(
    g: &Glyph,
    xl: f64,
    xr: f64,
    yb: f64,
    yt: f64,
    color: RGBColor,
) -> Option<Polygon<(f64, f64)>> {
    if g.is_empty() || (yt - yb).abs() <= 0.0 {
        return None;
    }
    let map = |(u, v): (f64, f64)| (xl + u * (xr - xl), yb + v * (yt - yb));
    let first = map(g[0][0]);
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for c in g {
        let start = map(c[0]);
        pts.extend(c.iter().map(|&p| map(p)));
        pts.push(start);
        pts.push(first);
    }
    Some(Polygon::new(pts, ShapeStyle::from(&color).filled()))
}
