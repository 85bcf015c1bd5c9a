//! Shared look: colours, font sizes, the colour map, and log-axis helpers.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{de, DrawResult};

/// Font size of a picture's title.
pub const TITLE: u32 = 30;
/// Font size of a panel's caption.
pub const CAPTION: u32 = 22;
/// Font size of axis descriptions.
pub const AXIS: u32 = 19;
/// Font size of tick labels.
pub const TICK: u32 = 16;
/// Font size of legend entries.
pub const LEGEND: u32 = 16;

/// Tableau-10: distinct, colour-blind-friendlier line colours.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th series colour (cycles after 10).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Light grey for grids and reference lines.
pub const GREY: RGBColor = RGBColor(150, 150, 150);

/// The viridis colour map (perceptually uniform, readable in grey): `x` in [0, 1].
pub fn viridis(x: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 9] = [
        (0.267, 0.005, 0.329),
        (0.279, 0.175, 0.483),
        (0.230, 0.322, 0.546),
        (0.173, 0.449, 0.558),
        (0.128, 0.567, 0.551),
        (0.153, 0.680, 0.504),
        (0.361, 0.785, 0.388),
        (0.667, 0.862, 0.196),
        (0.993, 0.906, 0.144),
    ];
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = x * (STOPS.len() - 1) as f64;
    let i = (f.floor() as usize).min(STOPS.len() - 2);
    let t = f - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| ((p + (q - p) * t) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The text style of size `size` in the bundled sans-serif font.
pub fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().into()
}

/// Bold text of size `size`.
pub fn bold(size: u32) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .style(FontStyle::Bold)
        .into()
}

/// A log-axis range covering the positive, finite values of `values` with some margin, or
/// `None` when there is none (all zero, negative or non-finite).
pub fn log_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values {
        if v.is_finite() && v > 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !(lo.is_finite() && hi > 0.0) {
        return None;
    }
    if hi / lo < 10.0 {
        // Geometric mean in log space: hi * lo underflows for tiny values (1e-300).
        let mid = ((hi.ln() + lo.ln()) / 2.0).exp();
        lo = lo.min(mid / 4.0);
        hi = hi.max(mid * 4.0);
    }
    let (lo, hi) = (lo / 1.6, hi * 1.6);
    // Never hand plotters a non-finite or empty range (its tick search would not end).
    (lo > 0.0 && hi.is_finite() && hi > lo).then_some((lo, hi))
}

/// A linear range covering the finite values of `values` with 5 % margin, or `None`.
pub fn lin_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return None;
    }
    let (a, b) = if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
        let pad = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    };
    // Never hand plotters a non-finite or empty range (its tick search would not end).
    ((b - a).is_finite() && b > a).then_some((a, b))
}

/// Tick label for a log axis: `1e-3`, `2e-5`, `10`, `0.5` — only at mantissas 1, 2 and 5 so
/// the labels of a log axis never crowd (the other grid lines stay unlabelled).
pub fn fmt_log(v: &f64) -> String {
    let v = *v;
    if v <= 0.0 || !v.is_finite() {
        return String::new();
    }
    let e = v.log10().floor();
    let m = v / 10f64.powf(e);
    let m_round = m.round();
    if (m - m_round).abs() > 0.02 * m || ![1.0, 2.0, 5.0, 10.0].contains(&m_round) {
        return String::new();
    }
    if (-2.0..=3.0).contains(&e) {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// Tick label for an axis holding log10 of the values: whole exponents only (`1e-12`, `0.01`,
/// `1`, `100`), other ticks unlabelled.
pub fn fmt_exponent(v: &f64) -> String {
    let k = v.round();
    if (v - k).abs() > 1e-6 {
        return String::new();
    }
    if (-2.0..=3.0).contains(&k) {
        fmt_log(&10f64.powf(k))
    } else {
        format!("1e{}", k as i64)
    }
}

/// Tick label for a linear axis with a sensible number of digits.
pub fn fmt_lin(v: &f64) -> String {
    let v = *v;
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Tick label for an integer axis (epochs, steps, positions).
pub fn fmt_int(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// Writes `msg` in grey in the middle of `area` (for a panel with nothing to draw), with a
/// frame so the empty panel is visibly deliberate.
pub fn empty_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    msg: &str,
) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    area.draw(&Text::new(
        caption.to_string(),
        (w / 2, 14),
        font(CAPTION).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(de)?;
    area.draw(&Rectangle::new(
        [(40, 50), (w - 20, h - 40)],
        ShapeStyle::from(&GREY).stroke_width(1),
    ))
    .map_err(de)?;
    area.draw(&Text::new(
        msg.to_string(),
        (w / 2, h / 2),
        font(AXIS)
            .color(&RGBColor(110, 110, 110))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
    .map_err(de)?;
    Ok(())
}

/// Draws a title centred at the top of `root` and returns the area below it.
pub fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
) -> DrawResult<DrawingArea<DB, Shift>> {
    root.titled(text, bold(TITLE)).map_err(de)
}

/// One legend entry drawn by [`legend_column`] / [`legend_row`].
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    /// Dashed line sample (otherwise solid).
    pub dashed: bool,
    /// A filled box instead of a line sample (for bars).
    pub boxed: bool,
}

fn legend_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: i32,
    y: i32,
    e: &LegendEntry,
) -> DrawResult {
    let st = ShapeStyle::from(&e.color).stroke_width(3);
    if e.boxed {
        area.draw(&Rectangle::new(
            [(x, y - 8), (x + 26, y + 8)],
            ShapeStyle::from(&e.color).filled(),
        ))
        .map_err(de)?;
    } else if e.dashed {
        area.draw(&PathElement::new([(x, y), (x + 10, y)], st))
            .map_err(de)?;
        area.draw(&PathElement::new([(x + 16, y), (x + 26, y)], st))
            .map_err(de)?;
    } else {
        area.draw(&PathElement::new([(x, y), (x + 26, y)], st))
            .map_err(de)?;
    }
    Ok(())
}

/// A vertical legend (one entry per line) with a heading, drawn from the top of `area` (a strip
/// beside the panels, so the legend never hides data).
pub fn legend_column<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[LegendEntry],
) -> DrawResult {
    let mut y = 70;
    if !heading.is_empty() {
        area.draw(&Text::new(
            heading.to_string(),
            (8, y),
            bold(LEGEND).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
        y += 30;
    }
    for e in entries {
        legend_sample(area, 10, y, e)?;
        area.draw(&Text::new(
            e.label.clone(),
            (44, y),
            font(LEGEND).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
        y += 26;
    }
    Ok(())
}

/// A horizontal legend centred in `area` (a strip under the title).
pub fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let widths: Vec<i32> = entries
        .iter()
        .map(|e| {
            area.estimate_text_size(&e.label, &font(LEGEND))
                .map(|s| s.0 as i32)
                .unwrap_or(8 * e.label.len() as i32)
                + 60
        })
        .collect();
    let total: i32 = widths.iter().sum();
    let mut x = (w as i32 - total).max(0) / 2;
    let y = h as i32 / 2;
    for (e, wd) in entries.iter().zip(widths) {
        legend_sample(area, x, y, e)?;
        area.draw(&Text::new(
            e.label.clone(),
            (x + 34, y),
            font(LEGEND).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
        x += wd;
    }
    Ok(())
}
