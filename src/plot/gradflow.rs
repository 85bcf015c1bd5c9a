//! Pictures of `gradflow.csv` (`cell,bidirectional,length,init,seed,stage,direction,t,norm`;
//! `init` and `seed` optional): ‖∂L/∂h_t‖ against t on a log scale, one line per cell (and
//! direction), one panel per sequence length, initialisation (top row) above trained (bottom
//! row). One picture per layer kind (uni/bidirectional) and init. A curve measured on several
//! seeds is drawn as its geometric mean per t. The two panels of one length share a y range
//! (fitted to that length, so short lengths are not squashed by long ones). The trained
//! panels list each cell's held-out accuracy (mean over seeds), read from
//! `gradflow_summary.csv` next to the CSV when it is there.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::csv::Table;
use super::lines::{Line, Panel};
use super::style::{self, LegendEntry};
use super::{create_dir, save, DrawResult, Figure};
use crate::error::Result;

/// One measured curve (the geometric mean over seeds of its norms per t).
#[derive(Clone)]
struct Curve {
    cell: String,
    bidirectional: bool,
    length: u64,
    init: String,
    stage: String,
    direction: String,
    points: Vec<(f64, f64)>,
}

/// Mean held-out accuracy of one cell, layer kind, length and init.
#[derive(Clone)]
struct Accuracy {
    cell: String,
    bidirectional: bool,
    length: u64,
    init: String,
    sum: f64,
    n: usize,
}

struct GradflowFigure {
    title: String,
    cells: Vec<String>,
    lengths: Vec<u64>,
    stages: Vec<String>,
    curves: Vec<Curve>,
    bidirectional: bool,
    /// Per length (as `lengths`): the y range of its two panels.
    y_ranges: Vec<Option<(f64, f64)>>,
    accuracy: Vec<Accuracy>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The accuracies of `gradflow_summary.csv` (one row per seed and direction; each seed's
/// accuracy counted once), or none if the file is missing.
fn read_accuracy(path: &Path) -> Result<Vec<Accuracy>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let t = Table::read(path, ',')?;
    let (cc, cb, cl, ca) = (
        t.col("cell")?,
        t.col("bidirectional")?,
        t.col("length")?,
        t.col("accuracy")?,
    );
    let (ci, cd) = (t.col("init").ok(), t.col("direction")?);
    let mut out: Vec<Accuracy> = Vec::new();
    for (line, f) in &t.rows {
        if f[cd] != "forward" {
            continue; // the reverse row of a bidirectional model repeats its accuracy
        }
        let bi = parse_bool(&f[cb]).ok_or_else(|| {
            t.err(
                *line,
                format!("column 'bidirectional' is '{}', not true/false", f[cb]),
            )
        })?;
        let length = t.int(*line, f, cl)?;
        let acc = t.num(*line, f, ca)?;
        let init = ci.map(|c| f[c].clone()).unwrap_or_default();
        match out.iter_mut().find(|a| {
            a.cell == f[cc] && a.bidirectional == bi && a.length == length && a.init == init
        }) {
            Some(a) => {
                a.sum += acc;
                a.n += 1;
            }
            None => out.push(Accuracy {
                cell: f[cc].clone(),
                bidirectional: bi,
                length,
                init,
                sum: acc,
                n: 1,
            }),
        }
    }
    Ok(out)
}

/// Draws the pictures of one `gradflow.csv` into `out_dir` (created if needed): per layer kind
/// present, `gradflow_unidirectional.{png,svg}` / `gradflow_bidirectional.{png,svg}`, with an
/// `_<init>` suffix when the file has an `init` column. Returns the files written.
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
    let ci = t.col("init").ok();
    if t.rows.is_empty() {
        return Err(t.err(1, "no rows (only a header)"));
    }
    // (curve, t) → sum of ln norm and count, over seeds.
    let mut curves: Vec<Curve> = Vec::new();
    let mut sums: Vec<Vec<(f64, usize)>> = Vec::new();
    for (line, f) in &t.rows {
        let bi = parse_bool(&f[cb]).ok_or_else(|| {
            t.err(
                *line,
                format!("column 'bidirectional' is '{}', not true/false", f[cb]),
            )
        })?;
        let length = t.int(*line, f, cl)?;
        let tt = t.int(*line, f, ct)? as usize;
        let norm = t.num(*line, f, cn)?;
        let init = ci.map(|c| f[c].clone()).unwrap_or_default();
        let (cell, stage, direction) = (&f[cc], &f[cs], &f[cd]);
        let k = match curves.iter().position(|c| {
            c.cell == *cell
                && c.bidirectional == bi
                && c.length == length
                && c.init == init
                && c.stage == *stage
                && c.direction == *direction
        }) {
            Some(k) => k,
            None => {
                curves.push(Curve {
                    cell: cell.clone(),
                    bidirectional: bi,
                    length,
                    init: init.clone(),
                    stage: stage.clone(),
                    direction: direction.clone(),
                    points: Vec::new(),
                });
                sums.push(Vec::new());
                curves.len() - 1
            }
        };
        let s = &mut sums[k];
        if s.len() <= tt {
            s.resize(tt + 1, (0.0, 0));
        }
        s[tt].0 += norm.ln();
        s[tt].1 += 1;
    }
    for (c, s) in curves.iter_mut().zip(&sums) {
        c.points = s
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(t, (sum, n))| (t as f64, (sum / *n as f64).exp()))
            .collect();
    }
    let accuracy = match csv.parent() {
        Some(dir) => read_accuracy(&dir.join("gradflow_summary.csv"))?,
        None => Vec::new(),
    };
    let mut cells: Vec<String> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut inits: Vec<String> = Vec::new();
    for c in &curves {
        if !cells.contains(&c.cell) {
            cells.push(c.cell.clone());
        }
        if !stages.contains(&c.stage) {
            stages.push(c.stage.clone());
        }
        if !inits.contains(&c.init) {
            inits.push(c.init.clone());
        }
    }
    // init before trained, others after in order of appearance.
    stages.sort_by_key(|s| match s.as_str() {
        "init" => 0,
        "trained" => 1,
        _ => 2,
    });
    create_dir(out_dir)?;
    let mut written = Vec::new();
    for init in &inits {
        for bi in [false, true] {
            let mine: Vec<Curve> = curves
                .iter()
                .filter(|c| c.bidirectional == bi && c.init == *init)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut lengths: Vec<u64> = mine.iter().map(|c| c.length).collect();
            lengths.sort_unstable();
            lengths.dedup();
            let y_ranges = lengths
                .iter()
                .map(|&l| {
                    style::log_range(
                        mine.iter()
                            .filter(|c| c.length == l)
                            .flat_map(|c| c.points.iter().map(|p| p.1)),
                    )
                })
                .collect();
            let kind = if bi {
                "bidirectional"
            } else {
                "unidirectional"
            };
            let (title, stem) = if init.is_empty() {
                (
                    format!("Gradient flow through time: ‖∂L/∂h_t‖ vs t, {kind} cells"),
                    format!("gradflow_{kind}"),
                )
            } else {
                (
                    format!(
                        "Gradient flow through time: ‖∂L/∂h_t‖ vs t, {kind} cells, {init} init"
                    ),
                    format!("gradflow_{kind}_{init}"),
                )
            };
            let fig = GradflowFigure {
                title,
                cells: cells.clone(),
                lengths,
                stages: stages.clone(),
                curves: mine,
                bidirectional: bi,
                y_ranges,
                accuracy: accuracy
                    .iter()
                    .filter(|a| a.bidirectional == bi && a.init == *init)
                    .cloned()
                    .collect(),
            };
            written.extend(save(&fig, out_dir, &stem)?);
        }
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

    /// The mean accuracy of a cell at a length, if known.
    fn accuracy(&self, cell: &str, length: u64) -> Option<f64> {
        self.accuracy
            .iter()
            .find(|a| a.cell == cell && a.length == length && a.n > 0)
            .map(|a| a.sum / a.n as f64)
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
                let trained = stage == "trained";
                let lines: Vec<Line> = self
                    .curves
                    .iter()
                    .filter(|c| c.stage == *stage && c.length == length)
                    .map(|c| Line {
                        label: String::new(),
                        color: self.cell_color(&c.cell),
                        dashed: c.direction == "reverse",
                        points: c.points.clone(),
                    })
                    .collect();
                let area = &cells[r * cols + k];
                // The trained panels name each model's held-out accuracy in a strip above the
                // chart, in its line's colour (never over the data).
                let acc: Vec<(String, RGBColor)> = self
                    .cells
                    .iter()
                    .filter_map(|c| {
                        let a = self.accuracy(c, length)?;
                        self.curves
                            .iter()
                            .any(|x| x.cell == *c && x.length == length)
                            .then(|| (format!("{c} {a:.2}"), self.cell_color(c)))
                    })
                    .collect();
                let area = if trained && !acc.is_empty() {
                    let (strip, rest) = area.split_vertically(26);
                    accuracy_strip(&strip, &acc)?;
                    rest
                } else {
                    area.clone()
                };
                let caption = format!("length {length}, {}", stage_label(stage));
                Panel {
                    caption: &caption,
                    x_desc: "time step t",
                    y_desc: if k == 0 { "‖∂L/∂h_t‖" } else { "" },
                    lines: &lines,
                    log_y: true,
                    y_range: self.y_ranges.get(k).copied().flatten(),
                    reference: None,
                    legend: None,
                    dots: false,
                    int_x: true,
                    compact: true,
                }
                .draw(&area)?;
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

/// `accuracy: a 0.98   b 0.50 …` centred in `area`, each model's text in its colour.
fn accuracy_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor)],
) -> DrawResult {
    let f = style::font(style::AXIS);
    let width = |s: &str| {
        area.estimate_text_size(s, &f)
            .map(|d| d.0 as i32)
            .unwrap_or(8 * s.len() as i32)
    };
    let head = "held-out accuracy:";
    let gap = 14;
    let total = width(head) + items.iter().map(|(t, _)| gap + width(t)).sum::<i32>();
    let (w, h) = area.dim_in_pixel();
    let mut x = (w as i32 - total).max(0) / 2;
    let y = h as i32 / 2;
    let pos = Pos::new(HPos::Left, VPos::Center);
    area.draw(&Text::new(head.to_string(), (x, y), f.clone().pos(pos)))
        .map_err(super::de)?;
    x += width(head) + gap;
    for (t, c) in items {
        area.draw(&Text::new(t.clone(), (x, y), f.clone().color(c).pos(pos)))
            .map_err(super::de)?;
        x += width(t) + gap;
    }
    Ok(())
}
