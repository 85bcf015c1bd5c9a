//! (d) Heat maps of `steps.csv` (`step,layer,direction,t,norm`): the batch-mean ‖∂L/∂h_t‖ of
//! a recurrent layer over time step t (x) and training step (y), log colour scale with a colour
//! bar, one picture per layer with one panel per direction (shared colour scale).

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::Table;
use super::grads::{layer_kinds, layer_label, run_name, with_kind};
use super::style::{self, font, CAPTION, TICK};
use super::{de, file_stem, save, DrawResult, Figure};
use crate::error::Result;

/// One direction of one layer: norms on a grid of recorded steps × time steps.
pub(crate) struct Grid {
    pub direction: String,
    /// Recorded training steps, ascending (rows, bottom to top).
    pub steps: Vec<u64>,
    /// Time steps, ascending (columns).
    pub ts: Vec<u64>,
    /// `values[row][col]`, NaN where nothing was recorded.
    pub values: Vec<Vec<f64>>,
}

pub(crate) struct Heatmap {
    pub title: String,
    pub grids: Vec<Grid>,
    /// Log10 of the colour range (shared by the panels), None if no positive value.
    pub range: Option<(f64, f64)>,
}

/// (layer, direction).
type Key = (String, String);
/// (step, t, norm).
type Cell = (u64, u64, f64);

/// Cells that are 0 or not finite (a log scale cannot colour them).
const NO_VALUE: RGBColor = RGBColor(205, 205, 205);

pub(crate) fn read_steps(path: &Path) -> Result<Vec<(String, Vec<Grid>)>> {
    let t = Table::read(path, ',')?;
    let (cs, cl, cd, ct, cn) = (
        t.col("step")?,
        t.col("layer")?,
        t.col("direction")?,
        t.col("t")?,
        t.col("norm")?,
    );
    if t.rows.is_empty() {
        return Err(t.err(1, "no rows recorded yet (only a header)"));
    }
    // (layer, direction) in order of appearance → rows (step, t, norm).
    let mut groups: Vec<(Key, Vec<Cell>)> = Vec::new();
    let kinds = layer_kinds(path);
    for (line, f) in &t.rows {
        let step = t.int(*line, f, cs)?;
        let ts = t.int(*line, f, ct)?;
        let norm = t.num(*line, f, cn)?;
        let key = (with_kind(&f[cl], &kinds), f[cd].clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((step, ts, norm)),
            None => groups.push((key, vec![(step, ts, norm)])),
        }
    }
    let mut layers: Vec<(String, Vec<Grid>)> = Vec::new();
    for ((layer, direction), rows) in groups {
        let mut steps: Vec<u64> = rows.iter().map(|r| r.0).collect();
        steps.sort_unstable();
        steps.dedup();
        let mut ts: Vec<u64> = rows.iter().map(|r| r.1).collect();
        ts.sort_unstable();
        ts.dedup();
        let mut values = vec![vec![f64::NAN; ts.len()]; steps.len()];
        for (s, tt, v) in rows {
            // Both searches succeed: steps and ts were collected from these rows.
            if let (Ok(i), Ok(j)) = (steps.binary_search(&s), ts.binary_search(&tt)) {
                values[i][j] = v;
            }
        }
        let grid = Grid {
            direction,
            steps,
            ts,
            values,
        };
        match layers.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, g)) => g.push(grid),
            None => layers.push((layer, vec![grid])),
        }
    }
    for (_, grids) in &mut layers {
        grids.sort_by_key(|g| match g.direction.as_str() {
            "forward" => 0,
            "reverse" => 1,
            _ => 2,
        });
    }
    Ok(layers)
}

pub(crate) fn plot_steps(path: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let run = run_name(path);
    let mut written = Vec::new();
    for (layer, grids) in read_steps(path)? {
        let range = style::log_range(
            grids
                .iter()
                .flat_map(|g| g.values.iter().flatten().copied()),
        )
        .map(|(lo, hi)| ((lo * 1.6).log10(), (hi / 1.6).log10()))
        .map(|(lo, hi)| {
            if hi - lo < 1e-9 {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        });
        let mut title = format!(
            "‖∂L/∂h_t‖ per time step over training — {}",
            layer_label(&layer)
        );
        if !run.is_empty() {
            title.push_str(&format!(" — {run}"));
        }
        let fig = Heatmap {
            title,
            grids,
            range,
        };
        written.extend(save(
            &fig,
            out_dir,
            &format!(
                "steps_{}",
                file_stem(layer.split(' ').next().unwrap_or(&layer))
            ),
        )?);
    }
    Ok(written)
}

impl Heatmap {
    fn color(&self, v: f64) -> RGBColor {
        match self.range {
            Some((lo, hi)) if v.is_finite() && v > 0.0 => {
                style::viridis((v.log10() - lo) / (hi - lo))
            }
            _ => NO_VALUE,
        }
    }
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = style::title(root, &self.title)?;
        let (panels, bar) = area.split_horizontally(1060);
        let cells = panels.split_evenly((1, self.grids.len().max(1)));
        for (g, cell) in self.grids.iter().zip(&cells) {
            let caption = format!("{} direction", g.direction);
            if g.ts.is_empty() || g.steps.is_empty() {
                style::empty_panel(cell, &caption, "nothing recorded")?;
                continue;
            }
            let t0 = g.ts[0] as f64 - 0.5;
            let t1 = g.ts[g.ts.len() - 1] as f64 + 0.5;
            let n = g.steps.len();
            let mut chart = ChartBuilder::on(cell)
                .caption(&caption, font(CAPTION))
                .margin(12)
                .margin_right(20)
                .x_label_area_size(55)
                .y_label_area_size(85)
                // An integer range includes its end: 0..n-1 makes n rows.
                .build_cartesian_2d(t0..t1, (0..n - 1).into_segmented())
                .map_err(de)?;
            let steps = &g.steps;
            let fmt_step = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) if *i < n => steps[*i].to_string(),
                _ => String::new(),
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("time step t (0-based position along the layer's input, sequence order)")
                .y_desc("training step (optimizer updates)")
                .axis_desc_style(font(style::AXIS))
                .label_style(font(TICK))
                .x_labels(10)
                .y_labels(12)
                .x_label_formatter(&style::fmt_int)
                .y_label_formatter(&fmt_step)
                .draw()
                .map_err(de)?;
            // Each time step is one column; columns between recorded ts are left blank.
            chart
                .draw_series(g.values.iter().enumerate().flat_map(|(i, row)| {
                    row.iter().enumerate().map(move |(j, &v)| {
                        let t = g.ts[j] as f64;
                        Rectangle::new(
                            [
                                (t - 0.5, SegmentValue::Exact(i)),
                                (t + 0.5, SegmentValue::Exact(i + 1)),
                            ],
                            ShapeStyle::from(&self.color(v)).filled(),
                        )
                    })
                }))
                .map_err(de)?;
        }
        self.draw_colour_bar(&bar)
    }
}

impl Heatmap {
    fn draw_colour_bar<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let Some((lo, hi)) = self.range else {
            return style::empty_panel(area, "", "all 0");
        };
        let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
        let mut chart = ChartBuilder::on(area)
            .margin_top(60)
            .margin_bottom(70)
            .margin_left(6)
            .set_label_area_size(LabelAreaPosition::Right, 70)
            .build_cartesian_2d(0f64..1f64, (a..b).log_scale())
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .label_style(font(TICK))
            .y_labels(8)
            .y_label_formatter(&style::fmt_log)
            .draw()
            .map_err(de)?;
        let steps = 120;
        chart
            .draw_series((0..steps).map(|k| {
                let f0 = k as f64 / steps as f64;
                let f1 = (k + 1) as f64 / steps as f64;
                let y0 = 10f64.powf(lo + (hi - lo) * f0);
                let y1 = 10f64.powf(lo + (hi - lo) * f1);
                Rectangle::new(
                    [(0.0, y0), (1.0, y1)],
                    ShapeStyle::from(&style::viridis((f0 + f1) / 2.0)).filled(),
                )
            }))
            .map_err(de)?;
        // Heading above the bar (horizontal, so it is never clipped or upside down).
        area.draw(&Text::new("‖∂L/∂h_t‖", (4, 20), font(style::AXIS)))
            .map_err(de)?;
        area.draw(&Text::new("(log scale)", (4, 42), font(TICK)))
            .map_err(de)?;
        // Grey swatch: cells with 0 or a non-finite norm.
        let (_, h) = area.dim_in_pixel();
        area.draw(&Rectangle::new(
            [(8, h as i32 - 50), (30, h as i32 - 30)],
            ShapeStyle::from(&NO_VALUE).filled(),
        ))
        .map_err(de)?;
        area.draw(&Text::new("0 / none", (36, h as i32 - 47), font(TICK)))
            .map_err(de)?;
        Ok(())
    }
}
