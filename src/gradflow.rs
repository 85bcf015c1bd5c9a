//! The vanishing-gradient experiment behind `seqgrad gradflow`.
//!
//! **Task.** Two classes, each decided by a motif planted near the *start* of the sequence
//! (at a uniform offset in `0..=`[`MAX_OFFSET`], see [`task_motifs`]); everything after it is
//! uniform random background. A recurrent layer that reads left to right must carry the
//! motif's trace across the whole sequence to its final state; the reverse direction of a
//! bidirectional layer reads the motif last.
//!
//! **Model per variant** (cell × unidirectional/bidirectional × length):
//! `conv1d 16 filters, width 1, relu → {simple_rnn | lstm | gru} 32 units (final state, or
//! bidirectional concat of both final states) → dense 2 softmax`, Keras initialisation,
//! seeded by `seed`. It is trained in f32 with Adam for `steps` mini-batches of fresh
//! records (one pass of [`crate::train::fit`], global-norm clipping at 1).
//!
//! **Records.** At initialisation and after training the weights are copied into an f64 model
//! (so ratios as small as 1e-40 do not underflow as they would in f32), one batch of
//! `record_count` held-out records is run in eval mode, the cross-entropy is back-propagated
//! and every direction's per-step ‖∂L/∂h_t‖ (the total gradient reaching `h_t`, see
//! [`crate::layers::rnn`]) is averaged over the batch: one [`Curve`] per direction and stage.
//!
//! **Summary.** Per curve: the *ratio* ‖∂L/∂h‖ at the first-processed step over the
//! last-processed step (the step whose state feeds the dense layer), i.e. `t = 0` over
//! `t = L−1` for the forward direction and `t = L−1` over `t = 0` for the reverse one; and the
//! *decay per step*, the geometric mean of the step-to-step ratios, `ratio^(1/(L−1))`
//! (below 1: the gradient shrinks as it travels back through time). Held-out accuracy on
//! `test_count` fresh records.
//!
//! Variants run in parallel (rayon); each depends only on its own seed-derived data and
//! weights, so the results are identical at any thread count.

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;

use crate::activation::Activation;
use crate::data::{self, meme::Motif, synth, Dataset, Labels, LengthPolicy, RawData};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::spec::{
    BidirectionalSpec, Conv1dSpec, DenseSpec, LayerSpec, MergeMode, ModelSpec, RecurrentSpec,
    RnnSpec,
};
use crate::tensor::{cast, Float, Mode};
use crate::train::{self, Progress, TrainConfig};

/// Largest start offset of the planted motif.
pub const MAX_OFFSET: usize = 4;

/// The recurrent cells the experiment compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    SimpleRnn,
    Lstm,
    Gru,
}

impl Cell {
    pub const ALL: [Cell; 3] = [Cell::SimpleRnn, Cell::Lstm, Cell::Gru];

    /// The layer type name (`simple_rnn`, `lstm`, `gru`).
    pub fn name(self) -> &'static str {
        match self {
            Cell::SimpleRnn => "simple_rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Parses a layer type name.
    pub fn parse(s: &str) -> Result<Cell> {
        Cell::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| {
                Error::Usage(format!("unknown cell {s:?} (valid: simple_rnn, lstm, gru)"))
            })
    }

    fn spec(self, units: usize) -> RecurrentSpec {
        let r = RnnSpec {
            units,
            return_sequences: false,
            ..Default::default()
        };
        match self {
            Cell::SimpleRnn => RecurrentSpec::SimpleRnn(r),
            Cell::Lstm => RecurrentSpec::Lstm(r),
            Cell::Gru => RecurrentSpec::Gru(r),
        }
    }
}

/// Settings of the experiment (`seqgrad gradflow` flags).
#[derive(Debug, Clone)]
pub struct GradflowConfig {
    pub cells: Vec<Cell>,
    pub lengths: Vec<usize>,
    /// Which layer kinds to run: `false` unidirectional, `true` bidirectional.
    pub bidirectional: Vec<bool>,
    /// Training steps (mini-batches of fresh records) per variant.
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Held-out records for the accuracy.
    pub test_count: usize,
    /// Held-out records whose batch-mean ‖∂L/∂h_t‖ is recorded.
    pub record_count: usize,
    pub units: usize,
    pub filters: usize,
    pub seed: u64,
    /// Print a line per finished variant on stderr.
    pub verbose: bool,
}

impl Default for GradflowConfig {
    fn default() -> Self {
        GradflowConfig {
            cells: Cell::ALL.to_vec(),
            lengths: vec![25, 50, 100, 200],
            bidirectional: vec![false, true],
            steps: 600,
            batch_size: 32,
            lr: 0.003,
            test_count: 500,
            record_count: 64,
            units: 32,
            filters: 16,
            seed: 42,
            verbose: false,
        }
    }
}

/// One model of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub cell: Cell,
    pub bidirectional: bool,
    pub length: usize,
}

/// Batch-mean ‖∂L/∂h_t‖ of one direction, `norms[t]` in original time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// `forward` or `reverse`.
    pub direction: String,
    pub norms: Vec<f64>,
}

impl Curve {
    /// ‖∂L/∂h‖ at the first-processed step over the last-processed step (the one feeding the
    /// output): `t = 0 / t = L−1` forward, `t = L−1 / t = 0` reverse. NaN if the last is 0.
    pub fn ratio(&self) -> f64 {
        let (Some(&a), Some(&b)) = (self.norms.first(), self.norms.last()) else {
            return f64::NAN;
        };
        let (far, near) = if self.direction == "reverse" {
            (b, a)
        } else {
            (a, b)
        };
        if near == 0.0 {
            f64::NAN
        } else {
            far / near
        }
    }

    /// Geometric-mean decay per step: `ratio^(1/(L−1))` (NaN for `L < 2`).
    pub fn decay_per_step(&self) -> f64 {
        let l = self.norms.len();
        if l < 2 {
            return f64::NAN;
        }
        self.ratio().powf(1.0 / (l - 1) as f64)
    }
}

/// What one variant measured.
#[derive(Debug, Clone)]
pub struct VariantResult {
    pub variant: Variant,
    /// One curve per direction at initialisation.
    pub init: Vec<Curve>,
    /// One curve per direction after training.
    pub trained: Vec<Curve>,
    /// Held-out accuracy after training.
    pub accuracy: f64,
    /// Mean training loss of the (single) training pass.
    pub train_loss: f64,
    pub seconds: f64,
}

/// The two task motifs: near-deterministic 8-mers (consensus base 0.91, others 0.03) that
/// differ at every position, so the class is unambiguous from the planted site alone.
pub fn task_motifs() -> Vec<Motif> {
    let m = |name: &str, cons: &str| Motif {
        name: name.to_string(),
        probs: cons
            .bytes()
            .map(|b| {
                let mut p = [0.03; 4];
                p[match b {
                    b'A' => 0,
                    b'C' => 1,
                    b'G' => 2,
                    _ => 3,
                }] = 0.91;
                p
            })
            .collect(),
    };
    vec![m("GATTACAG", "GATTACAG"), m("CCAGTTGA", "CCAGTTGA")]
}

/// The model of one variant.
pub fn model_spec(v: Variant, filters: usize, units: usize) -> ModelSpec {
    let rec = v.cell.spec(units);
    let rnn = if v.bidirectional {
        LayerSpec::Bidirectional(BidirectionalSpec {
            layer: rec,
            merge_mode: MergeMode::Concat,
        })
    } else {
        match rec {
            RecurrentSpec::SimpleRnn(s) => LayerSpec::SimpleRnn(s),
            RecurrentSpec::Lstm(s) => LayerSpec::Lstm(s),
            RecurrentSpec::Gru(s) => LayerSpec::Gru(s),
        }
    };
    ModelSpec {
        input_shape: vec![Some(v.length), Some(4)],
        layers: vec![
            LayerSpec::Conv1d(Conv1dSpec {
                filters,
                kernel_size: 1,
                activation: Activation::Relu,
                ..Default::default()
            }),
            rnn,
            LayerSpec::Dense(DenseSpec {
                units: 2,
                activation: Activation::Softmax,
                ..Default::default()
            }),
        ],
    }
}

/// `count` start-planted records of `length` bp, encoded.
pub fn task_data<T: Float>(count: usize, length: usize, seed: u64) -> Result<Dataset<T>> {
    let records = synth::generate_start_planted(&task_motifs(), count, length, MAX_OFFSET, seed)?;
    let raw = RawData {
        path: "gradflow task".into(),
        records,
        has_labels: true,
        multi_label: false,
    };
    let labels = Labels::from_data(&raw)?;
    data::encode(&raw, &labels, LengthPolicy::default(), true)
}

/// Batch-mean ‖∂L/∂h_t‖ per direction of the recurrent layer (layer 1) for one batch.
///
/// # Shapes
/// - `x`: `(batch, length, 4)`, `y`: `(batch, 2)` one-hot.
pub fn record_curves(
    model: &mut Sequential<f64>,
    x: &Array3<f64>,
    y: &Array2<f64>,
) -> Result<Vec<Curve>> {
    model.set_record_step_grads(true);
    model.zero_grad();
    let logits = model.forward_logits(x.view().into_dyn(), Mode::Eval)?;
    let (_, g) = Loss::for_head(model.head()).compute(logits.view(), y.view().into_dyn())?;
    model.backward_logits(g.view())?;
    let layer = model
        .layers()
        .get(1)
        .ok_or_else(|| Error::Usage("the gradflow model has no recurrent layer".into()))?;
    let curves = layer
        .step_grad_norms()
        .into_iter()
        .map(|(direction, n)| Curve {
            direction,
            norms: n.mean_axis(Axis(0)).map(|m| m.to_vec()).unwrap_or_default(),
        })
        .collect();
    model.set_record_step_grads(false);
    Ok(curves)
}

/// Copies every parameter of `from` into `to` (same spec), converting the element type.
pub fn copy_params<A: Float, B: Float>(from: &Sequential<A>, to: &mut Sequential<B>) {
    for ((_, src), (_, dst)) in from.named_params().into_iter().zip(to.named_params_mut()) {
        dst.value.assign(&cast::<A, B>(&src.value));
    }
}

/// Checks a configuration before anything runs.
pub fn check(cfg: &GradflowConfig) -> Result<()> {
    let width = task_motifs().iter().map(|m| m.width()).max().unwrap_or(0);
    if cfg.cells.is_empty() || cfg.lengths.is_empty() || cfg.bidirectional.is_empty() {
        return Err(Error::Usage(
            "--cells and --lengths need at least one value each".into(),
        ));
    }
    if let Some(&l) = cfg.lengths.iter().find(|&&l| l < width + 1) {
        return Err(Error::Usage(format!(
            "--lengths: {l} is too short; the planted motif is {width} bp, so lengths must be at least {}",
            width + 1
        )));
    }
    if cfg.steps == 0 || cfg.batch_size == 0 || cfg.test_count == 0 || cfg.record_count == 0 {
        return Err(Error::Usage(
            "--steps, --batch-size, --test-count and --record-count must be at least 1".into(),
        ));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(Error::Usage(format!(
            "--lr must be positive, got {}",
            cfg.lr
        )));
    }
    for &l in &cfg.lengths {
        let n = cfg
            .steps
            .checked_mul(cfg.batch_size)
            .and_then(|n| n.checked_add(cfg.test_count))
            .unwrap_or(usize::MAX);
        synth::check_sizes(n, l, 2)?;
    }
    Ok(())
}

/// The variants of a configuration, in table order: cell, then uni before bi, then length.
pub fn variants(cfg: &GradflowConfig) -> Vec<Variant> {
    let mut out = Vec::new();
    for &cell in &cfg.cells {
        for &bidirectional in &cfg.bidirectional {
            for &length in &cfg.lengths {
                out.push(Variant {
                    cell,
                    bidirectional,
                    length,
                });
            }
        }
    }
    out
}

/// Seeds of the data at one length: (training, held-out). The same for every cell, so the
/// cells are compared on identical records.
fn data_seeds(seed: u64, length: usize) -> (u64, u64) {
    let base = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(length as u64);
    (base ^ 0x7261_696E, base ^ 0x7465_7374)
}

/// Runs one variant.
pub fn run_variant(cfg: &GradflowConfig, v: Variant) -> Result<VariantResult> {
    let t0 = Instant::now();
    let spec = model_spec(v, cfg.filters, cfg.units);
    let (train_seed, test_seed) = data_seeds(cfg.seed, v.length);
    let train_set = task_data::<f32>(cfg.steps * cfg.batch_size, v.length, train_seed)?;
    let test_set = task_data::<f32>(cfg.test_count, v.length, test_seed)?;
    let rec_n = cfg.record_count.min(cfg.test_count);
    let rec_x: Array3<f64> = test_set
        .x
        .slice(ndarray::s![..rec_n, .., ..])
        .mapv(|a| a as f64);
    let rec_y: Array2<f64> = test_set
        .y
        .slice(ndarray::s![..rec_n, ..])
        .mapv(|a| a as f64);

    let mut model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
    let mut probe = Sequential::<f64>::from_spec(&spec, cfg.seed)?;
    copy_params(&model, &mut probe);
    let init = record_curves(&mut probe, &rec_x, &rec_y)?;

    let mut tc = TrainConfig {
        epochs: 1,
        batch_size: cfg.batch_size,
        clip_norm: Some(1.0),
        patience: None,
        seed: cfg.seed,
        progress: Progress::Quiet,
        ..Default::default()
    };
    tc.optimizer.lr = cfg.lr;
    let history = train::fit(&mut model, &train_set, None, false, &tc)?;
    let train_loss = history.column("loss").and_then(|c| c.last().copied());
    let eval = train::evaluate(&mut model, &test_set, 256, false)?;
    let accuracy = eval
        .metrics
        .iter()
        .find(|(k, _)| k == "accuracy")
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN);

    copy_params(&model, &mut probe);
    let trained = record_curves(&mut probe, &rec_x, &rec_y)?;
    let r = VariantResult {
        variant: v,
        init,
        trained,
        accuracy,
        train_loss: train_loss.unwrap_or(f64::NAN),
        seconds: t0.elapsed().as_secs_f64(),
    };
    if cfg.verbose {
        eprintln!(
            "gradflow: {} {} L={}: accuracy {:.3}, {:.1}s",
            v.cell.name(),
            if v.bidirectional { "bi" } else { "uni" },
            v.length,
            r.accuracy,
            r.seconds
        );
    }
    Ok(r)
}

/// Runs every variant (in parallel), results in [`variants`] order.
pub fn run(cfg: &GradflowConfig) -> Result<Vec<VariantResult>> {
    check(cfg)?;
    let vs = variants(cfg);
    // Longest first, so the two cores stay busy to the end; results are put back in order.
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..vs.len()).collect();
        o.sort_by_key(|&i| {
            let v = vs[i];
            let cost = match v.cell {
                Cell::SimpleRnn => 1,
                Cell::Gru => 3,
                Cell::Lstm => 4,
            } * if v.bidirectional { 2 } else { 1 };
            std::cmp::Reverse(v.length * cost)
        });
        o
    };
    let results: Vec<(usize, Result<VariantResult>)> = order
        .par_iter()
        .map(|&i| (i, run_variant(cfg, vs[i])))
        .collect();
    let mut slots: Vec<Option<VariantResult>> = vec![None; vs.len()];
    for (i, r) in results {
        slots[i] = Some(r?);
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Header of `gradflow.csv`.
pub const CSV_HEADER: &str = "cell,bidirectional,length,stage,direction,t,norm";

/// Header of `gradflow_summary.csv`.
pub const SUMMARY_HEADER: &str =
    "cell,bidirectional,length,direction,init_ratio,init_decay,trained_ratio,trained_decay,accuracy";

/// `gradflow.csv`: one row per variant, stage (`init`/`trained`), direction and 0-based `t`.
pub fn to_csv(results: &[VariantResult]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in results {
        let v = r.variant;
        for (stage, curves) in [("init", &r.init), ("trained", &r.trained)] {
            for c in curves {
                for (t, n) in c.norms.iter().enumerate() {
                    s.push_str(&format!(
                        "{},{},{},{stage},{},{t},{n:e}\n",
                        v.cell.name(),
                        v.bidirectional,
                        v.length,
                        c.direction
                    ));
                }
            }
        }
    }
    s
}

/// One summary row per variant and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub cell: Cell,
    pub bidirectional: bool,
    pub length: usize,
    pub direction: String,
    pub init_ratio: f64,
    pub init_decay: f64,
    pub trained_ratio: f64,
    pub trained_decay: f64,
    pub accuracy: f64,
}

/// The table's rows.
pub fn summary(results: &[VariantResult]) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for r in results {
        for (i, c) in r.init.iter().enumerate() {
            let tr = r.trained.get(i);
            rows.push(SummaryRow {
                cell: r.variant.cell,
                bidirectional: r.variant.bidirectional,
                length: r.variant.length,
                direction: c.direction.clone(),
                init_ratio: c.ratio(),
                init_decay: c.decay_per_step(),
                trained_ratio: tr.map_or(f64::NAN, |c| c.ratio()),
                trained_decay: tr.map_or(f64::NAN, |c| c.decay_per_step()),
                accuracy: r.accuracy,
            });
        }
    }
    rows
}

/// `gradflow_summary.csv`.
pub fn summary_csv(rows: &[SummaryRow]) -> String {
    let mut s = String::from(SUMMARY_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{:e},{},{:e},{},{}\n",
            r.cell.name(),
            r.bidirectional,
            r.length,
            r.direction,
            r.init_ratio,
            r.init_decay,
            r.trained_ratio,
            r.trained_decay,
            r.accuracy
        ));
    }
    s
}

/// The table printed by `seqgrad gradflow`.
pub fn table(rows: &[SummaryRow]) -> String {
    let head = [
        "cell",
        "layer",
        "direction",
        "length",
        "init first/last",
        "init decay/step",
        "trained first/last",
        "trained decay/step",
        "accuracy",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            r.cell.name().to_string(),
            if r.bidirectional { "bi" } else { "uni" }.to_string(),
            r.direction.clone(),
            r.length.to_string(),
            format!("{:.1e}", r.init_ratio),
            format!("{:.3}", r.init_decay),
            format!("{:.1e}", r.trained_ratio),
            format!("{:.3}", r.trained_decay),
            format!("{:.3}", r.accuracy),
        ]);
    }
    let w: Vec<usize> = (0..head.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (k, r) in cells.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c < 3 {
                    format!("{v:<w$}", w = w[c])
                } else {
                    format!("{v:>w$}", w = w[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if k == 0 {
            out.push_str(&"-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1)));
            out.push('\n');
        }
    }
    out
}

/// Writes `gradflow.csv` and `gradflow_summary.csv` into `dir` (created; each atomically).
pub fn write_csvs(dir: &Path, results: &[VariantResult]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::weights::write_atomic(&dir.join("gradflow.csv"), to_csv(results).as_bytes())?;
    crate::weights::write_atomic(
        &dir.join("gradflow_summary.csv"),
        summary_csv(&summary(results)).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_far_over_near_in_processing_order() {
        let f = Curve {
            direction: "forward".into(),
            norms: vec![1e-6, 1e-3, 1.0],
        };
        assert!((f.ratio() - 1e-6).abs() < 1e-18);
        assert!((f.decay_per_step() - 1e-3).abs() < 1e-12);
        let r = Curve {
            direction: "reverse".into(),
            norms: vec![2.0, 0.2, 0.02],
        };
        assert!((r.ratio() - 0.01).abs() < 1e-15);
        assert!((r.decay_per_step() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn task_motifs_differ_everywhere() {
        let m = task_motifs();
        let argmax = |p: &[f64; 4]| (0..4).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        for (a, b) in m[0].probs.iter().zip(&m[1].probs) {
            assert_ne!(argmax(a), argmax(b));
        }
    }
}
