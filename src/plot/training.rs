//! (a) Training curves from `history.csv`: loss and accuracy/AUC per epoch, train vs
//! validation, best epoch marked.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::Table;
use super::style::{self, font, CAPTION, GREY, LEGEND, TICK};
use super::{de, save, DrawResult, Figure};
use crate::error::Result;

/// Columns of `history.csv` that are not a metric to draw next to accuracy/AUC.
const NOT_METRICS: [&str; 5] = ["epoch", "loss", "grad_norm", "grad_norm_max", "seconds"];

/// One curve: name and (epoch, value) points (non-finite values are gaps).
pub(crate) struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub(crate) struct History {
    pub title: String,
    pub loss: Curve,
    pub val_loss: Option<Curve>,
    /// (train, validation) pairs of metric curves.
    pub metrics: Vec<(Curve, Option<Curve>)>,
    /// 1-based best epoch, if any epoch has a finite monitored loss.
    pub best: Option<usize>,
    /// Name of the monitored quantity (`val_loss` or `loss`).
    pub monitor: &'static str,
    pub epochs: (f64, f64),
}

/// Reads `best_epoch` from a `history.json` next to `history.csv`, if there is one.
pub(crate) fn best_epoch_from_json(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("best_epoch")?
        .as_u64()
        .map(|b| b as usize)
        .filter(|&b| b > 0)
}

pub(crate) fn read_history(csv: &Path, best_override: Option<usize>) -> Result<History> {
    let t = Table::read(csv, ',')?;
    let ep = t.col("epoch")?;
    let loss_col = t.col("loss")?;
    let mut epochs = Vec::new();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); t.header.len()];
    for (line, f) in &t.rows {
        epochs.push(t.int(*line, f, ep)? as f64);
        for (j, c) in cols.iter_mut().enumerate() {
            c.push(if j == ep { 0.0 } else { t.num(*line, f, j)? });
        }
    }
    if epochs.is_empty() {
        return Err(t.err(1, "no epochs recorded yet (only a header)"));
    }
    let curve = |name: &str| -> Option<Curve> {
        let j = t.header.iter().position(|h| h == name)?;
        Some(Curve {
            name: name.to_string(),
            points: epochs
                .iter()
                .copied()
                .zip(cols[j].iter().copied())
                .collect(),
        })
    };
    let loss = Curve {
        name: "loss".into(),
        points: epochs
            .iter()
            .copied()
            .zip(cols[loss_col].iter().copied())
            .collect(),
    };
    let val_loss = curve("val_loss");
    let metrics: Vec<(Curve, Option<Curve>)> = t
        .header
        .iter()
        .filter(|h| !NOT_METRICS.contains(&h.as_str()) && !h.starts_with("val_"))
        .filter_map(|h| curve(h).map(|c| (c, curve(&format!("val_{h}")))))
        .collect();
    let (monitor, mon) = match &val_loss {
        Some(v) if v.points.iter().any(|p| p.1.is_finite()) => ("val_loss", v),
        _ => ("loss", &loss),
    };
    let lo = epochs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A best epoch outside the file's epochs (a stale history.json) is not used.
    let best = best_override
        .filter(|&b| (lo..=hi).contains(&(b as f64)))
        .or_else(|| {
            mon.points
                .iter()
                .filter(|p| p.1.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|p| p.0 as usize)
        });
    let run = csv
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(History {
        title: if run.is_empty() {
            "Training curves".into()
        } else {
            format!("Training curves — {run}")
        },
        loss,
        val_loss,
        metrics,
        best,
        monitor,
        epochs: if hi > lo {
            (lo - 0.3, hi + 0.3)
        } else {
            (lo - 1.0, hi + 1.0)
        },
    })
}

pub(crate) fn plot_history(
    csv: &Path,
    best: Option<usize>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let h = read_history(csv, best)?;
    save(&h, out_dir, "training_curves")
}

/// Splits points at non-finite values into drawable runs.
pub(crate) fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            if let Some(last) = out.last_mut() {
                last.push((x, y));
            }
        } else if out.last().is_some_and(|s| !s.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Pretty name of a metric column.
fn metric_label(name: &str) -> String {
    match name {
        "accuracy" => "accuracy".into(),
        "roc_auc" => "ROC AUC".into(),
        "pr_auc" => "PR AUC".into(),
        other => other.replace('_', " "),
    }
}

impl History {
    fn best_value(&self, c: &Curve) -> Option<(f64, f64)> {
        let b = self.best? as f64;
        c.points
            .iter()
            .find(|p| p.0 == b && p.1.is_finite())
            .copied()
    }

    #[allow(clippy::too_many_arguments)]
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_desc: &str,
        series: &[(&Curve, bool, RGBColor, String)],
        legend_pos: SeriesLabelPosition,
        mark: Option<&Curve>,
    ) -> DrawResult {
        let yr = style::lin_range(
            series
                .iter()
                .flat_map(|(c, _, _, _)| c.points.iter().map(|p| p.1)),
        );
        let Some((y0, y1)) = yr else {
            return style::empty_panel(area, caption, "no finite values recorded");
        };
        let n_epochs = (self.epochs.1 - self.epochs.0).round() as usize;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, font(CAPTION))
            .margin(12)
            .margin_right(25)
            .x_label_area_size(55)
            .y_label_area_size(85)
            .build_cartesian_2d(self.epochs.0..self.epochs.1, y0..y1)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .axis_desc_style(font(style::AXIS))
            .label_style(font(TICK))
            .x_labels((n_epochs + 1).clamp(3, 12))
            .y_labels(8)
            .x_label_formatter(&style::fmt_int)
            .y_label_formatter(&style::fmt_lin)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(de)?;
        if let Some(b) = self.best {
            let b = b as f64;
            chart
                .draw_series(DashedLineSeries::new(
                    [(b, y0), (b, y1)],
                    8,
                    6,
                    ShapeStyle::from(&GREY).stroke_width(2),
                ))
                .map_err(de)?
                .label(format!(
                    "best epoch {} (min {})",
                    self.best.unwrap_or(0),
                    self.monitor
                ))
                .legend(|(x, y)| {
                    let st = ShapeStyle::from(&GREY).stroke_width(2);
                    EmptyElement::at((x, y))
                        + PathElement::new([(0, 0), (9, 0)], st)
                        + PathElement::new([(15, 0), (24, 0)], st)
                });
        }
        for (c, dashed, color, label) in series {
            let st = ShapeStyle::from(color).stroke_width(3);
            let mut first = true;
            for seg in segments(&c.points) {
                let anno = if *dashed {
                    chart
                        .draw_series(DashedLineSeries::new(seg.clone(), 12, 6, st))
                        .map_err(de)?
                } else {
                    chart
                        .draw_series(LineSeries::new(seg.clone(), st))
                        .map_err(de)?
                };
                if first {
                    let (color, dashed) = (*color, *dashed);
                    anno.label(label.clone()).legend(move |(x, y)| {
                        let st = ShapeStyle::from(&color).stroke_width(3);
                        let gap = if dashed { 6 } else { 0 };
                        EmptyElement::at((x, y))
                            + PathElement::new([(0, 0), (9, 0)], st)
                            + PathElement::new([(9 + gap, 0), (24, 0)], st)
                    });
                    first = false;
                }
                chart
                    .draw_series(
                        seg.iter()
                            .map(|&p| Circle::new(p, 4, ShapeStyle::from(color).filled())),
                    )
                    .map_err(de)?;
            }
        }
        if let Some((bx, by)) = mark.and_then(|c| self.best_value(c)) {
            chart
                .draw_series([
                    Circle::new((bx, by), 9, ShapeStyle::from(&BLACK).stroke_width(2)),
                    Circle::new((bx, by), 3, ShapeStyle::from(&BLACK).filled()),
                ])
                .map_err(de)?;
        }
        chart
            .configure_series_labels()
            .position(legend_pos)
            .label_font(font(LEGEND))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .margin(10)
            .draw()
            .map_err(de)?;
        Ok(())
    }
}

impl Figure for History {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = style::title(root, &self.title)?;
        let panels = if self.metrics.is_empty() {
            vec![area]
        } else {
            area.split_evenly((1, 2))
        };
        // Loss: train solid blue, validation orange.
        let mut loss_series = Vec::new();
        loss_series.push((&self.loss, false, style::color(0), "train loss".to_string()));
        if let Some(c) = &self.val_loss {
            loss_series.push((c, true, style::color(1), "validation loss".to_string()));
        }
        let mark = if self.monitor == "val_loss" {
            self.val_loss.as_ref()
        } else {
            Some(&self.loss)
        };
        self.panel(
            &panels[0],
            "Loss per epoch (lower is better)",
            "loss (mean per record)",
            &loss_series,
            SeriesLabelPosition::UpperRight,
            mark,
        )?;
        if let Some(area) = panels.get(1) {
            let mut series = Vec::new();
            for (i, (c, v)) in self.metrics.iter().enumerate() {
                let color = style::color(2 * i);
                let color_v = style::color(2 * i + 1);
                let name = metric_label(&c.name);
                series.push((c, false, color, format!("train {name}")));
                if let Some(v) = v {
                    series.push((v, true, color_v, format!("validation {name}")));
                }
            }
            let names: Vec<String> = self
                .metrics
                .iter()
                .map(|m| metric_label(&m.0.name))
                .collect();
            let mark = self.metrics.first().and_then(|(c, v)| {
                if self.monitor == "val_loss" {
                    v.as_ref()
                } else {
                    Some(c)
                }
            });
            self.panel(
                area,
                &capitalise(&format!(
                    "{} per epoch (higher is better)",
                    names.join(", ")
                )),
                &format!("{} (fraction, 0–1)", names.join(" / ")),
                &series,
                SeriesLabelPosition::LowerRight,
                mark,
            )?;
        }
        Ok(())
    }
}
