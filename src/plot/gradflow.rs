//! Pictures of `gradflow.csv` (`cell,bidirectional,length,stage,direction,t,norm`): ‖∂L/∂h_t‖
//! against t on a log scale, one line per cell (and direction), one panel per sequence length,
//! initialisation (top row) above trained (bottom row). Unidirectional and bidirectional models
//! get one picture each; all panels of a picture share the y range so they compare directly.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::Table;
use super::lines::{Line, Panel};
use super::style::{self, LegendEntry};
use super::{create_dir, save, DrawResult, Figure};
use crate::error::Result;

/// One measured curve.
struct Curve {
    cell: String,
    bidirectional: bool,
    length: u64,
    stage: String,
    direction: String,
    points: Vec<(f64, f64)>,
}

struct GradflowFigure {
    title: String,
    cells: Vec<String>,
    lengths: Vec<u64>,
    stages: Vec<String>,
    curves: Vec<Curve>,
    bidirectional: bool,
    y_range: Option<(f64, f64)>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Draws the pictures of one `gradflow.csv` into `out_dir` (created if needed):
/// `gradflow_unidirectional.{png,svg}` and `gradflow_bidirectional.{png,svg}` (each only if
/// the file has such rows). Returns the files written.
pub fn plot_gradflow(csv: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let t = Table::read(csv, ',')?;
    let (cc, cb, cl, cs, cd, ct, cn) = (
        t.col("cell")?,
        t.col("bidirectional")?,
        t.col("length")?,
        t.col("stage")?,
        t.col("direction")?,
        t.col("t")?,
        t.col("norm")?,
    );
    if t.rows.is_empty() {
        return Err(t.err(1, "no rows (only a header)"));
    }
    let mut curves: Vec<Curve> = Vec::new();
    for (line, f) in &t.rows {
        let bi = parse_bool(&f[cb]).ok_or_else(|| {
            t.err(
                *line,
                format!("column 'bidirectional' is '{}', not true/false", f[cb]),
            )
        })?;
        let length = t.int(*line, f, cl)?;
        let tt = t.int(*line, f, ct)? as f64;
        let norm = t.num(*line, f, cn)?;
        let (cell, stage, direction) = (&f[cc], &f[cs], &f[cd]);
        match curves.iter_mut().find(|c| {
            c.cell == *cell
                && c.bidirectional == bi
                && c.length == length
                && c.stage == *stage
                && c.direction == *direction
        }) {
            Some(c) => c.points.push((tt, norm)),
            None => curves.push(Curve {
                cell: cell.clone(),
                bidirectional: bi,
                length,
                stage: stage.clone(),
                direction: direction.clone(),
                points: vec![(tt, norm)],
            }),
        }
    }
    for c in &mut curves {
        c.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut cells: Vec<String> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut lengths: Vec<u64> = Vec::new();
    for c in &curves {
        if !cells.contains(&c.cell) {
            cells.push(c.cell.clone());
        }
        if !stages.contains(&c.stage) {
            stages.push(c.stage.clone());
        }
        if !lengths.contains(&c.length) {
            lengths.push(c.length);
        }
    }
    lengths.sort_unstable();
    // init before trained, others after in order of appearance.
    stages.sort_by_key(|s| match s.as_str() {
        "init" => 0,
        "trained" => 1,
        _ => 2,
    });
    create_dir(out_dir)?;
    let mut written = Vec::new();
    for bi in [false, true] {
        let mine: Vec<Curve> = curves
            .iter()
            .filter(|c| c.bidirectional == bi)
            .map(|c| Curve {
                cell: c.cell.clone(),
                bidirectional: c.bidirectional,
                length: c.length,
                stage: c.stage.clone(),
                direction: c.direction.clone(),
                points: c.points.clone(),
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let y_range = style::log_range(mine.iter().flat_map(|c| c.points.iter().map(|p| p.1)));
        let kind = if bi {
            "bidirectional"
        } else {
            "unidirectional"
        };
        let fig = GradflowFigure {
            title: format!("Gradient flow through time: ‖∂L/∂h_t‖ vs t, {kind} cells"),
            cells: cells.clone(),
            lengths: lengths.clone(),
            stages: stages.clone(),
            curves: mine,
            bidirectional: bi,
            y_range,
        };
        written.extend(save(&fig, out_dir, &format!("gradflow_{kind}"))?);
    }
    Ok(written)
}

fn stage_label(stage: &str) -> &str {
    match stage {
        "init" => "at initialisation",
        "trained" => "after training",
        other => other,
    }
}

impl GradflowFigure {
    fn cell_color(&self, cell: &str) -> RGBColor {
        let i = self.cells.iter().position(|c| c == cell).unwrap_or(0);
        style::color(i)
    }
}

impl Figure for GradflowFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = style::title(root, &self.title)?;
        let (plots, legend) = area.split_horizontally(1010);
        let rows = self.stages.len().max(1);
        let cols = self.lengths.len().max(1);
        let cells = plots.split_evenly((rows, cols));
        for (r, stage) in self.stages.iter().enumerate() {
            for (k, &length) in self.lengths.iter().enumerate() {
                let lines: Vec<Line> = self
                    .curves
                    .iter()
                    .filter(|c| c.stage == *stage && c.length == length)
                    .map(|c| Line {
                        label: if self.bidirectional {
                            format!("{} {}", c.cell, c.direction)
                        } else {
                            c.cell.clone()
                        },
                        color: self.cell_color(&c.cell),
                        dashed: c.direction == "reverse",
                        points: c.points.clone(),
                    })
                    .collect();
                let caption = format!("length {length}, {}", stage_label(stage));
                Panel {
                    caption: &caption,
                    x_desc: "time step t",
                    y_desc: if k == 0 { "‖∂L/∂h_t‖" } else { "" },
                    lines: &lines,
                    log_y: true,
                    y_range: self.y_range,
                    reference: None,
                    legend: None,
                    dots: false,
                    int_x: true,
                    compact: true,
                }
                .draw(&cells[r * cols + k])?;
            }
        }
        let mut entries = Vec::new();
        for cell in &self.cells {
            let dirs: Vec<&str> = if self.bidirectional {
                vec!["forward", "reverse"]
            } else {
                vec![""]
            };
            for d in dirs {
                if !self.curves.iter().any(|c| c.cell == *cell) {
                    continue;
                }
                entries.push(LegendEntry {
                    label: if d.is_empty() {
                        cell.clone()
                    } else {
                        format!("{cell} {d}")
                    },
                    color: self.cell_color(cell),
                    dashed: d == "reverse",
                    boxed: false,
                });
            }
        }
        style::legend_column(&legend, "cell", &entries)
    }
}
