//! Pictures of `grads.csv` (long format `step,layer,tensor,statistic,value`):
//! (b) gradient norm per layer over training steps, (c) update-to-weight ratio per layer,
//! (e) the per-tensor gradient bar chart at the first and last recorded step, and the
//! activation statistics (dead ReLUs, saturated gates, activation spread) per layer.
//! Statistics with names not listed here are read and ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::Table;
use super::lines::{Line, Panel};
use super::style::{self, font, LegendEntry, CAPTION, TICK};
use super::{de, save, DrawResult, Figure};
use crate::error::Result;

/// Everything in one `grads.csv`.
pub(crate) struct Grads {
    pub run: String,
    /// Layers in order of first appearance.
    pub layers: Vec<String>,
    /// (layer, tensor) in order of first appearance.
    pub tensors: Vec<(String, String)>,
    /// (tensor, statistic) → (step, value), steps ascending.
    pub tensor_stats: HashMap<(String, String), Vec<(f64, f64)>>,
    /// (layer, statistic) → (step, value) for per-layer statistics (empty tensor).
    pub layer_stats: HashMap<(String, String), Vec<(f64, f64)>>,
    /// Recorded steps, ascending.
    pub steps: Vec<f64>,
}

pub(crate) fn read_grads(path: &Path) -> Result<Grads> {
    let t = Table::read(path, ',')?;
    let (cs, cl, ct, cst, cv) = (
        t.col("step")?,
        t.col("layer")?,
        t.col("tensor")?,
        t.col("statistic")?,
        t.col("value")?,
    );
    let kinds = layer_kinds(path);
    let mut g = Grads {
        run: run_name(path),
        layers: Vec::new(),
        tensors: Vec::new(),
        tensor_stats: HashMap::new(),
        layer_stats: HashMap::new(),
        steps: Vec::new(),
    };
    for (line, f) in &t.rows {
        let step = t.int(*line, f, cs)? as f64;
        let value = t.num(*line, f, cv)?;
        let (layer, tensor, stat) = (with_kind(&f[cl], &kinds), f[ct].clone(), f[cst].clone());
        if stat.is_empty() {
            return Err(t.err(*line, "empty statistic name"));
        }
        if !g.layers.contains(&layer) {
            g.layers.push(layer.clone());
        }
        g.steps.push(step);
        if tensor.is_empty() {
            g.layer_stats
                .entry((layer, stat))
                .or_default()
                .push((step, value));
        } else {
            let key = (layer, tensor.clone());
            if !g.tensors.contains(&key) {
                g.tensors.push(key);
            }
            g.tensor_stats
                .entry((tensor, stat))
                .or_default()
                .push((step, value));
        }
    }
    if t.rows.is_empty() {
        return Err(t.err(1, "no rows recorded yet (only a header)"));
    }
    g.steps.sort_by(f64::total_cmp);
    g.steps.dedup();
    for v in g
        .tensor_stats
        .values_mut()
        .chain(g.layer_stats.values_mut())
    {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(g)
}

/// The name of the run folder holding `path` (for titles).
pub(crate) fn run_name(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The layer kinds (`conv1d`, `bidirectional(lstm)` …, as `seqgrad summary` names them) of the
/// run whose file is `path`, from its `model.json`; empty if there is none (or it does not
/// parse): the pictures then name layers by index alone.
pub(crate) fn layer_kinds(path: &Path) -> Vec<String> {
    let Some(json) = path
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("model.json")).ok())
    else {
        return Vec::new();
    };
    crate::spec::ModelSpec::from_json(&json, "model.json")
        .map(|m| m.layers.iter().map(|l| l.kind()).collect())
        .unwrap_or_default()
}

/// A bare layer index `3` with its kind: `3 bidirectional(lstm)`; anything else unchanged.
pub(crate) fn with_kind(layer: &str, kinds: &[String]) -> String {
    match layer.parse::<usize>().ok().and_then(|i| kinds.get(i)) {
        Some(kind) => format!("{layer} {kind}"),
        None => layer.to_string(),
    }
}

/// Lines drawn over an earlier line with the same values (a `flatten` has its input's
/// statistics) are made dashed and say which line they coincide with, so neither hides.
pub(crate) fn mark_coinciding(lines: &mut [Line]) {
    for k in 1..lines.len() {
        let same = (0..k).find(|&j| {
            lines[j].points.len() == lines[k].points.len()
                && lines[j].points.iter().zip(&lines[k].points).all(|(a, b)| {
                    a.0 == b.0
                        && (a.1 == b.1 || (a.1 - b.1).abs() <= 1e-9 * a.1.abs().max(b.1.abs()))
                })
        });
        if let Some(j) = same {
            let other = lines[j].label.clone();
            let l = &mut lines[k];
            l.dashed = true;
            l.label = format!("{} (= {other})", l.label);
        }
    }
}

/// `layers.3` stays, a bare index `3` becomes `layer 3`.
pub(crate) fn layer_label(layer: &str) -> String {
    if !layer.is_empty() && layer.chars().all(|c| c.is_ascii_digit()) {
        format!("layer {layer}")
    } else if layer.is_empty() {
        "(model)".into()
    } else {
        layer.to_string()
    }
}

fn titled(base: &str, run: &str) -> String {
    if run.is_empty() {
        base.to_string()
    } else {
        format!("{base} — {run}")
    }
}

fn is_bias(tensor: &str) -> bool {
    tensor
        .rsplit('.')
        .next()
        .is_some_and(|n| n.starts_with("bias"))
}

impl Grads {
    fn layer_tensors<'a>(&'a self, layer: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.tensors
            .iter()
            .filter(move |(l, _)| l == layer)
            .map(|(_, t)| t.as_str())
    }

    /// Per layer and step, a value combined from the layer's tensors' values of `stat`.
    fn per_layer(
        &self,
        stat: &str,
        tensors_of: impl Fn(&str) -> Vec<String>,
        combine: impl Fn(&[f64]) -> f64,
    ) -> Vec<(String, Vec<(f64, f64)>)> {
        let mut out = Vec::new();
        for layer in &self.layers {
            let tensors = tensors_of(layer);
            let mut by_step: Vec<(f64, Vec<f64>)> = Vec::new();
            for t in &tensors {
                if let Some(series) = self.tensor_stats.get(&(t.clone(), stat.to_string())) {
                    for &(s, v) in series {
                        match by_step.iter_mut().find(|(x, _)| *x == s) {
                            Some((_, vs)) => vs.push(v),
                            None => by_step.push((s, vec![v])),
                        }
                    }
                }
            }
            if by_step.is_empty() {
                continue;
            }
            by_step.sort_by(|a, b| a.0.total_cmp(&b.0));
            out.push((
                layer.clone(),
                by_step
                    .into_iter()
                    .map(|(s, vs)| (s, combine(&vs)))
                    .collect(),
            ));
        }
        out
    }

    fn lines(series: Vec<(String, Vec<(f64, f64)>)>) -> Vec<Line> {
        series
            .into_iter()
            .enumerate()
            .map(|(i, (layer, points))| Line {
                label: layer_label(&layer),
                color: style::color(i),
                dashed: false,
                points,
            })
            .collect()
    }

    fn dots(&self) -> bool {
        self.steps.len() <= 30
    }
}

/// A figure of one or two line panels plus a legend column on the right.
struct LinesFigure {
    title: String,
    panels: Vec<PanelSpec>,
    legend_heading: String,
}

struct PanelSpec {
    caption: String,
    y_desc: String,
    lines: Vec<Line>,
    log_y: bool,
    y_range: Option<(f64, f64)>,
    reference: Option<(f64, String)>,
    dots: bool,
}

impl Figure for LinesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = style::title(root, &self.title)?;
        let (plots, legend) = area.split_horizontally(930);
        let cells = plots.split_evenly((self.panels.len().max(1), 1));
        // Legend: every distinct label, in order, with its colour.
        let mut entries: Vec<LegendEntry> = Vec::new();
        for p in &self.panels {
            for l in &p.lines {
                if !entries.iter().any(|e| e.label == l.label) {
                    // Colour names the layer; a caption says what a dashed line means.
                    entries.push(LegendEntry {
                        label: l.label.clone(),
                        color: l.color,
                        dashed: false,
                        boxed: false,
                    });
                }
            }
        }
        for p in &self.panels {
            if let Some((_, label)) = &p.reference {
                entries.push(LegendEntry {
                    label: label.clone(),
                    color: style::GREY,
                    dashed: true,
                    boxed: false,
                });
            }
        }
        for (p, cell) in self.panels.iter().zip(&cells) {
            Panel {
                caption: &p.caption,
                x_desc: "training step (optimizer updates)",
                y_desc: &p.y_desc,
                lines: &p.lines,
                log_y: p.log_y,
                y_range: p.y_range,
                reference: p.reference.as_ref().map(|(v, l)| (*v, l.as_str())),
                legend: None,
                dots: p.dots,
                int_x: true,
                compact: false,
            }
            .draw(cell)?;
        }
        style::legend_column(&legend, &self.legend_heading, &entries)
    }
}

pub(crate) fn plot_grads(path: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let g = read_grads(path)?;
    let mut written = Vec::new();

    // (b) Gradient L2 norm per layer: sqrt(sum over the layer's tensors of ‖g‖²).
    let tensors_all = |l: &str| g.layer_tensors(l).map(String::from).collect::<Vec<_>>();
    let norms = g.per_layer("l2_norm", tensors_all, |vs| {
        vs.iter().map(|v| v * v).sum::<f64>().sqrt()
    });
    if !norms.is_empty() {
        let fig = LinesFigure {
            title: titled("Gradient norm per layer", &g.run),
            legend_heading: "layer".into(),
            panels: vec![PanelSpec {
                caption: "‖∂L/∂θ‖₂ of each layer's parameters (all its tensors together)".into(),
                y_desc: "gradient L2 norm".into(),
                lines: Grads::lines(norms),
                log_y: true,
                y_range: None,
                reference: None,
                dots: g.dots(),
            }],
        };
        written.extend(save(&fig, out_dir, "grad_norm")?);
    }

    // (c) Update-to-weight ratio per layer: the largest among the layer's weight tensors
    // (biases start at 0, where the ratio is undefined or huge).
    let weights_only = |l: &str| {
        let w: Vec<String> = g
            .layer_tensors(l)
            .filter(|t| !is_bias(t))
            .map(String::from)
            .collect();
        if w.is_empty() {
            g.layer_tensors(l).map(String::from).collect()
        } else {
            w
        }
    };
    let ratios = g.per_layer("update_ratio", weights_only, |vs| {
        vs.iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NAN, f64::max)
    });
    if !ratios.is_empty() {
        let fig = LinesFigure {
            title: titled("Update-to-weight ratio per layer", &g.run),
            legend_heading: "layer".into(),
            panels: vec![PanelSpec {
                caption: "‖Δw‖ / ‖w‖ per optimizer step (largest over the layer's weight tensors)"
                    .into(),
                y_desc: "update / weight (ratio)".into(),
                lines: Grads::lines(ratios),
                log_y: true,
                y_range: None,
                reference: Some((1e-3, "1e-3 rule of thumb".into())),
                dots: g.dots(),
            }],
        };
        written.extend(save(&fig, out_dir, "update_ratio")?);
    }

    // (e) Bars of mean |g| and max |g| per tensor at the first and last step.
    let bars = Bars::new(&g);
    if !bars.tensors.is_empty() {
        written.extend(save(&bars, out_dir, "grad_bars")?);
    }

    // Activation statistics per layer.
    let layer_series = |stat: &str| -> Vec<Line> {
        g.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                g.layer_stats
                    .get(&(l.clone(), stat.to_string()))
                    .map(|pts| Line {
                        label: layer_label(l),
                        color: style::color(i),
                        dashed: false,
                        points: pts.clone(),
                    })
            })
            .collect()
    };
    let mut fractions = layer_series("dead_relu_fraction");
    fractions.extend(saturated_gates(&g));
    let mut spread = layer_series("activation_std");
    mark_coinciding(&mut spread);
    if !fractions.is_empty() || !spread.is_empty() {
        let mut panels = Vec::new();
        if !fractions.is_empty() {
            panels.push(PanelSpec {
                caption: "Dead ReLUs (solid: output 0 on the whole batch), saturated gates (dashed: σ < 0.01 or > 0.99)"
                    .into(),
                y_desc: "fraction of units (0–1)".into(),
                lines: fractions,
                log_y: false,
                y_range: Some((-0.02, 1.02)),
                reference: None,
                dots: g.dots(),
            });
        }
        if !spread.is_empty() {
            panels.push(PanelSpec {
                caption: "Spread of each layer's outputs (standard deviation over the batch)"
                    .into(),
                y_desc: "activation std".into(),
                lines: spread,
                log_y: true,
                y_range: None,
                reference: None,
                dots: g.dots(),
            });
        }
        let fig = LinesFigure {
            title: titled("Activations per layer", &g.run),
            legend_heading: "layer".into(),
            panels,
        };
        written.extend(save(&fig, out_dir, "activations")?);
    }
    Ok(written)
}

/// Per recurrent layer, the fraction of saturated gates per step: the mean over directions of
/// `saturated_gates_{direction}` (what `train --record-grads` writes), or
/// `saturated_gate_fraction`. Dashed, in the layer's colour.
fn saturated_gates(g: &Grads) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, layer) in g.layers.iter().enumerate() {
        let mut by_step: Vec<(f64, f64, usize)> = Vec::new();
        for ((l, stat), pts) in &g.layer_stats {
            if l != layer
                || !(stat.starts_with("saturated_gates_") || stat == "saturated_gate_fraction")
            {
                continue;
            }
            for &(s, v) in pts {
                match by_step.iter_mut().find(|e| e.0 == s) {
                    Some(e) => {
                        e.1 += v;
                        e.2 += 1;
                    }
                    None => by_step.push((s, v, 1)),
                }
            }
        }
        if by_step.is_empty() {
            continue;
        }
        by_step.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(Line {
            label: layer_label(layer),
            color: style::color(i),
            dashed: true,
            points: by_step.iter().map(|e| (e.0, e.1 / e.2 as f64)).collect(),
        });
    }
    out
}

/// (e) The per-tensor gradient bar chart at the first and last recorded step.
struct Bars {
    title: String,
    /// Tensor names, model order (top to bottom).
    tensors: Vec<String>,
    /// (step, per tensor (mean |g|, max |g|)).
    at: Vec<(f64, Vec<(f64, f64)>)>,
}

impl Bars {
    fn new(g: &Grads) -> Bars {
        let value = |t: &str, stat: &str, step: f64| -> f64 {
            g.tensor_stats
                .get(&(t.to_string(), stat.to_string()))
                .and_then(|v| v.iter().find(|p| p.0 == step))
                .map(|p| p.1)
                .unwrap_or(f64::NAN)
        };
        let tensors: Vec<String> = g
            .tensors
            .iter()
            .map(|(_, t)| t.clone())
            .filter(|t| {
                g.tensor_stats.contains_key(&(t.clone(), "mean_abs".into()))
                    || g.tensor_stats.contains_key(&(t.clone(), "max_abs".into()))
            })
            .collect();
        // Steps that have bar statistics.
        let mut steps: Vec<f64> = g
            .tensor_stats
            .iter()
            .filter(|((_, s), _)| s == "mean_abs" || s == "max_abs")
            .flat_map(|(_, v)| v.iter().map(|p| p.0))
            .collect();
        steps.sort_by(f64::total_cmp);
        steps.dedup();
        let mut chosen: Vec<f64> = steps.first().copied().into_iter().collect();
        if let Some(&last) = steps.last() {
            if steps.len() > 1 {
                chosen.push(last);
            }
        }
        let at = chosen
            .into_iter()
            .map(|s| {
                (
                    s,
                    tensors
                        .iter()
                        .map(|t| (value(t, "mean_abs", s), value(t, "max_abs", s)))
                        .collect(),
                )
            })
            .collect();
        Bars {
            title: titled("Gradient magnitude per parameter tensor", &g.run),
            tensors,
            at,
        }
    }
}

const MEAN_COLOR: RGBColor = RGBColor(31, 119, 180);
const MAX_COLOR: RGBColor = RGBColor(158, 202, 225);

impl Figure for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = style::title(root, &self.title)?;
        let (legend, area) = area.split_vertically(40);
        style::legend_row(
            &legend,
            &[
                LegendEntry {
                    label: "max |g| over the tensor's elements".into(),
                    color: MAX_COLOR,
                    dashed: false,
                    boxed: true,
                },
                LegendEntry {
                    label: "mean |g| over the tensor's elements".into(),
                    color: MEAN_COLOR,
                    dashed: false,
                    boxed: true,
                },
            ],
        )?;
        let range = style::log_range(
            self.at
                .iter()
                .flat_map(|(_, v)| v.iter().flat_map(|&(a, b)| [a, b])),
        );
        let cells = area.split_evenly((1, self.at.len().max(1)));
        let n = self.tensors.len();
        for (k, ((step, vals), cell)) in self.at.iter().zip(&cells).enumerate() {
            let caption = if k == 0 {
                format!("first recorded step ({})", *step as u64)
            } else {
                format!("last recorded step ({})", *step as u64)
            };
            let Some((x0, x1)) = range else {
                style::empty_panel(cell, &caption, "no positive gradient values recorded")?;
                continue;
            };
            let label_w = self
                .tensors
                .iter()
                .map(|t| {
                    cell.estimate_text_size(t, &font(TICK))
                        .map(|s| s.0)
                        .unwrap_or(9 * t.len() as u32)
                })
                .max()
                .unwrap_or(100)
                + 20;
            let mut chart = ChartBuilder::on(cell)
                .caption(&caption, font(CAPTION))
                .margin(12)
                .margin_right(28)
                .x_label_area_size(55)
                .y_label_area_size(label_w.min(330))
                // An integer range includes its end: 0..n-1 makes n rows.
                .build_cartesian_2d((x0..x1).log_scale(), (0..n - 1).into_segmented())
                .map_err(de)?;
            let names = &self.tensors;
            let fmt_name = |v: &SegmentValue<usize>| match v {
                // Index 0 is at the bottom: show the first tensor at the top.
                SegmentValue::CenterOf(i) if *i < n => names[n - 1 - *i].clone(),
                _ => String::new(),
            };
            chart
                .configure_mesh()
                .x_desc("|gradient| (log scale)")
                .axis_desc_style(font(style::AXIS))
                .label_style(font(TICK))
                .y_labels(n)
                .y_label_formatter(&fmt_name)
                .x_label_formatter(&style::fmt_log)
                .disable_y_mesh()
                .light_line_style(RGBColor(242, 242, 242))
                .bold_line_style(RGBColor(222, 222, 222))
                .draw()
                .map_err(de)?;
            let row_px = cell.dim_in_pixel().1.saturating_sub(120) / n.max(1) as u32;
            let (thin, thick) = ((row_px / 10).max(1), (row_px * 3 / 10).max(2));
            let bar = |i: usize, v: f64, color: RGBColor, inset: u32| {
                let row = n - 1 - i;
                let mut r = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(row)),
                        (v, SegmentValue::Exact(row + 1)),
                    ],
                    ShapeStyle::from(&color).filled(),
                );
                r.set_margin(inset, inset, 0, 0);
                r
            };
            let ok = |v: f64| v.is_finite() && v > 0.0;
            chart
                .draw_series(
                    vals.iter()
                        .enumerate()
                        .filter(|(_, (_, mx))| ok(*mx))
                        .map(|(i, &(_, mx))| bar(i, mx, MAX_COLOR, thin)),
                )
                .map_err(de)?;
            chart
                .draw_series(
                    vals.iter()
                        .enumerate()
                        .filter(|(_, (mean, _))| ok(*mean))
                        .map(|(i, &(mean, _))| bar(i, mean, MEAN_COLOR, thick)),
                )
                .map_err(de)?;
        }
        Ok(())
    }
}
