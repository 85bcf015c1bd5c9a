//! A panel of named lines over a numeric x axis, linear or log y: shared by the gradient
//! pictures (steps on x) and the gradient-flow pictures (time step on x).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, font, CAPTION, GREY, LEGEND, TICK};
use super::training::segments;
use super::{de, DrawResult};

/// How the y axis maps values.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Lin,
    /// plotters' log axis (up to 5 decades).
    Log,
    /// log10 of the values on a linear axis, labelled as powers of 10 (many decades).
    Exp,
}

/// How one line looks.
#[derive(Clone)]
pub(crate) struct Line {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// What a panel shows.
pub(crate) struct Panel<'a> {
    pub caption: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub lines: &'a [Line],
    pub log_y: bool,
    /// Fixed y range (otherwise from the data).
    pub y_range: Option<(f64, f64)>,
    /// A horizontal reference line (value, legend text).
    pub reference: Option<(f64, &'a str)>,
    /// Draw a legend inside the panel (None = no legend).
    pub legend: Option<SeriesLabelPosition>,
    /// Mark each point with a dot (for sparse data).
    pub dots: bool,
    /// Integer ticks on x (steps, positions).
    pub int_x: bool,
    /// Small panel (one of many): smaller caption, fewer ticks, narrower label areas.
    pub compact: bool,
}

impl Panel<'_> {
    /// The points that can be drawn: finite, and positive on a log axis.
    fn usable(&self, p: &(f64, f64)) -> bool {
        p.0.is_finite() && p.1.is_finite() && (!self.log_y || p.1 > 0.0)
    }

    /// Draws the panel into `area`; an empty panel says why it is empty.
    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let pts = || {
            self.lines
                .iter()
                .flat_map(|l| l.points.iter().filter(|p| self.usable(p)))
        };
        let x = style::lin_range(pts().map(|p| p.0));
        let ys = pts().map(|p| p.1).chain(self.reference.iter().map(|r| r.0));
        let y = self.y_range.or_else(|| {
            if self.log_y {
                style::log_range(ys)
            } else {
                style::lin_range(ys)
            }
        });
        // A fixed range must be usable too (finite, non-empty, positive on a log axis).
        let y = y.filter(|&(a, b)| (b - a).is_finite() && b > a && (!self.log_y || a > 0.0));
        let (Some((x0, x1)), Some((y0, y1))) = (x, y) else {
            let why = if self.log_y {
                "nothing to draw: no positive, finite values (a log scale cannot show 0)"
            } else {
                "nothing to draw: no finite values"
            };
            return style::empty_panel(area, self.caption, why);
        };
        // Tight x range (no margin) unless a single x value.
        let (x0, x1) = {
            let lo = pts().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let hi = pts().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            if hi > lo {
                (lo, hi)
            } else {
                (x0, x1)
            }
        };
        if !self.log_y {
            return self.draw_in(area, x0..x1, y0..y1, (y0, y1), Scale::Lin);
        }
        // Data within one decade: a linear axis reads better (values are all positive).
        let lo = pts().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts().map(|p| p.1).fold(0.0, f64::max);
        if self.y_range.is_none() && hi < 10.0 * lo {
            if let Some((a, b)) = style::lin_range(pts().map(|p| p.1)) {
                return self.draw_in(area, x0..x1, a..b, (a, b), Scale::Lin);
            }
        }
        if (y1 / y0).log10() > 5.0 || !(y1 / y0).is_finite() {
            // Many decades: plot log10 on a linear axis, ticks at whole powers of 10.
            let (a, b) = (y0.log10(), y1.log10());
            self.draw_in(area, x0..x1, a..b, (a, b), Scale::Exp)
        } else {
            self.draw_in(area, x0..x1, (y0..y1).log_scale(), (y0, y1), Scale::Log)
        }
    }

    fn draw_in<DB: DrawingBackend, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        xr: std::ops::Range<f64>,
        yr: Y,
        (y0, y1): (f64, f64),
        scale: Scale,
    ) -> DrawResult
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let (cap, lab_x, lab_y, nx, ny) = if self.compact {
            (style::AXIS, 45, 70, 5, 8)
        } else {
            (CAPTION, 55, 90, 10, 10)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(self.caption, font(cap))
            .margin(10)
            .margin_right(if self.compact { 16 } else { 28 })
            .x_label_area_size(lab_x)
            .y_label_area_size(lab_y)
            .build_cartesian_2d(xr.clone(), yr)
            .map_err(de)?;
        let int_fmt = |v: &f64| style::fmt_int(v);
        let lin_fmt = |v: &f64| style::fmt_lin(v);
        let y_fmt = |v: &f64| match scale {
            Scale::Lin => style::fmt_lin(v),
            Scale::Log => style::fmt_log(v),
            Scale::Exp => style::fmt_exponent(v),
        };
        // Values as the axis holds them.
        let ty = |v: f64| if scale == Scale::Exp { v.log10() } else { v };
        let y_desc = if scale == Scale::Lin {
            self.y_desc.to_string()
        } else if self.y_desc.is_empty() {
            String::new()
        } else {
            format!("{} (log scale)", self.y_desc)
        };
        let span = xr.end - xr.start;
        let x_labels = if self.int_x {
            (span as usize + 1).clamp(2, nx)
        } else {
            nx
        };
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(y_desc)
            .axis_desc_style(font(style::AXIS))
            .label_style(font(TICK))
            .x_labels(x_labels)
            .y_labels(ny)
            .x_label_formatter(if self.int_x { &int_fmt } else { &lin_fmt })
            .y_label_formatter(&y_fmt)
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(222, 222, 222))
            .draw()
            .map_err(de)?;
        if let Some((v, label)) = self.reference {
            let v = ty(v);
            if v > y0 && v < y1 {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(xr.start, v), (xr.end, v)],
                        10,
                        6,
                        ShapeStyle::from(&GREY).stroke_width(2),
                    ))
                    .map_err(de)?
                    .label(label)
                    .legend(|(x, y)| {
                        PathElement::new(
                            [(x, y), (x + 22, y)],
                            ShapeStyle::from(&GREY).stroke_width(2),
                        )
                    });
            }
        }
        for line in self.lines {
            let pts: Vec<(f64, f64)> = line
                .points
                .iter()
                .map(|&p| {
                    if self.usable(&p) {
                        (p.0, ty(p.1))
                    } else {
                        (p.0, f64::NAN)
                    }
                })
                .collect();
            let st = ShapeStyle::from(&line.color).stroke_width(3);
            let mut first = true;
            for seg in segments(&pts) {
                let anno = if line.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(seg.clone(), 10, 6, st))
                        .map_err(de)?
                } else {
                    chart
                        .draw_series(LineSeries::new(seg.clone(), st))
                        .map_err(de)?
                };
                if first && !line.label.is_empty() {
                    let (color, dashed) = (line.color, line.dashed);
                    anno.label(line.label.clone()).legend(move |(x, y)| {
                        let st = ShapeStyle::from(&color).stroke_width(3);
                        let gap = if dashed { 6 } else { 0 };
                        EmptyElement::at((x, y))
                            + PathElement::new([(0, 0), (9, 0)], st)
                            + PathElement::new([(9 + gap, 0), (24, 0)], st)
                    });
                }
                first = false;
                if self.dots || seg.len() == 1 {
                    chart
                        .draw_series(
                            seg.iter().map(|&p| {
                                Circle::new(p, 3, ShapeStyle::from(&line.color).filled())
                            }),
                        )
                        .map_err(de)?;
                }
            }
        }
        if let Some(pos) = &self.legend {
            chart
                .configure_series_labels()
                .position(pos.clone())
                .label_font(font(LEGEND))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .margin(10)
                .draw()
                .map_err(de)?;
        }
        Ok(())
    }
}
