//! The vanishing-gradient experiment behind `seqgrad gradflow`.
//!
//! **Task.** Two classes, each decided by a motif planted near the *start* of the sequence
//! (at a uniform offset in `0..=`[`MAX_OFFSET`], see [`task_motifs`]: equal base
//! composition, so counting bases does not help); everything after it is uniform random
//! background. A recurrent layer that reads left to right must carry the motif's trace
//! across the whole sequence to its final state; the reverse direction of a bidirectional
//! layer reads the motif last. With `curriculum` the *training* motifs are planted at uniform
//! positions over the whole sequence (held-out records keep them at the start).
//!
//! **Model per variant** (cell × unidirectional/bidirectional × length × [`Init`] × seed):
//! `conv1d 16 filters × kernel_size (default 9: the motif arrives as one event), relu →
//! {simple_rnn | lstm | gru} 32 units (final state, or bidirectional concat of both final
//! states) → dense 2 softmax`, Keras initialisation, then chrono gate biases for
//! [`Init::Chrono`] ([`apply_chrono`]); or a user's own model ([`GradflowConfig::model`]). Trained in f32 with
//! Adam for `steps` mini-batches of fresh records (one pass of [`crate::train::fit`],
//! global-norm clipping at 1).
//!
//! **Records.** At initialisation and after training the weights are copied into an f64 model
//! (so ratios as small as 1e-40 do not underflow as they would in f32), one batch of
//! `record_count` held-out records is run in eval mode, the cross-entropy is back-propagated
//! and every direction's per-step ‖∂L/∂h_t‖ (the total gradient reaching `h_t`, see
//! [`crate::layers::rnn`]) is averaged over the batch: one [`Curve`] per direction and stage,
//! indexed by the 0-based position `t` in sequence order.
//!
//! **Summary.** Per curve: the *first/last ratio* ([`rnn::first_last_ratio`]): ‖∂L/∂h‖ at the step
//! farthest from the output over the step nearest it, in processing order, i.e. `t = 0` over
//! `t = L−1` for the forward direction and `t = L−1` over `t = 0` for the reverse one; and the
//! *decay per step*, the geometric mean of the step-to-step ratios, `ratio^(1/(L−1))`
//! (below 1: the gradient shrinks as it travels back through time). Held-out accuracy on
//! `test_count` fresh records. Over seeds: the mean and range ([`aggregate`]; geometric mean
//! for ratios and decays).
//!
//! Variants run in parallel (rayon); each depends only on its own seed-derived data and
//! weights, so the results are identical at any thread count on one machine.

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::activation::Activation;
use crate::data::{self, meme::Motif, synth, Dataset, Labels, LengthPolicy, RawData};
use crate::error::{Error, Result};
use crate::layers::rnn::{self, init};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::spec::{
    BidirectionalSpec, Conv1dSpec, DenseSpec, LayerSpec, MergeMode, ModelSpec, RecurrentSpec,
    RnnSpec,
};
use crate::tensor::{cast, Float, Mode};
use crate::train::{self, Progress, TrainConfig};

/// Largest start offset of the planted motif in held-out records (and in training records
/// without `curriculum`).
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

    /// Whether the cell has sigmoid gates (what chrono initialisation sets).
    pub fn gated(self) -> bool {
        self != Cell::SimpleRnn
    }

    fn of_spec(r: &RecurrentSpec) -> Cell {
        match r {
            RecurrentSpec::SimpleRnn(_) => Cell::SimpleRnn,
            RecurrentSpec::Lstm(_) => Cell::Lstm,
            RecurrentSpec::Gru(_) => Cell::Gru,
        }
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

/// How the recurrent layer's gate biases start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Init {
    /// Keras: zero biases, LSTM forget-gate bias 1.
    Keras,
    /// Chrono (Tallec & Ollivier 2018): the biases of the model file's `bias_init: chrono`
    /// with `T` = the recurrent layer's input length: LSTM `b_f ~ ln U(1, T−1)`,
    /// `b_i = −b_f`; GRU `b_z ~ ln U(1, T−1)` (docs/rnn.md), set by [`apply_chrono`] after
    /// building the Keras-init model. Cells without gates keep Keras init.
    Chrono,
    /// A `--model` file's own initialisation, as written in it.
    Model,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Keras => "keras",
            Init::Chrono => "chrono",
            Init::Model => "model",
        }
    }

    /// Parses `keras` or `chrono`.
    pub fn parse(s: &str) -> Result<Init> {
        match s.trim() {
            "keras" => Ok(Init::Keras),
            "chrono" => Ok(Init::Chrono),
            other => Err(Error::Usage(format!(
                "--init {other:?}: use keras or chrono (a list: keras,chrono)"
            ))),
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
    /// Gate-bias initialisations to compare.
    pub inits: Vec<Init>,
    /// Every variant is run once per seed (data, weights and chrono draws).
    pub seeds: Vec<u64>,
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
    /// Width of the conv front end's filters (`valid` padding).
    pub kernel_size: usize,
    /// Training motifs at uniform positions over the whole sequence (held-out records keep
    /// them at the start).
    pub curriculum: bool,
    /// A user's own model (input `(L or null, 4)`, a recurrent layer, 2 outputs) instead of
    /// the built-in ones; then `cells`, `bidirectional` and `inits` are not used.
    pub model: Option<ModelSpec>,
    /// Print a line per finished variant on stderr.
    pub verbose: bool,
}

impl Default for GradflowConfig {
    fn default() -> Self {
        GradflowConfig {
            cells: Cell::ALL.to_vec(),
            lengths: vec![50, 200],
            bidirectional: vec![false, true],
            inits: vec![Init::Keras, Init::Chrono],
            seeds: vec![1, 2, 3],
            steps: 600,
            batch_size: 32,
            lr: 0.003,
            test_count: 500,
            record_count: 64,
            units: 32,
            filters: 16,
            kernel_size: 9,
            curriculum: false,
            model: None,
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
    pub init: Init,
    pub seed: u64,
}

/// Batch-mean ‖∂L/∂h_t‖ of one direction, `norms[t]` at 0-based position `t` in sequence
/// order (for both directions).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// `forward` or `reverse`.
    pub direction: String,
    pub norms: Vec<f64>,
}

impl Curve {
    /// [`rnn::first_last_ratio`] of this direction.
    pub fn ratio(&self) -> f64 {
        rnn::first_last_ratio(&self.norms, self.direction == "reverse")
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

/// The two task motifs: near-deterministic 8-mers (consensus base 0.91, others 0.03) with the
/// same base composition (A3 C1 G2 T2) that differ at every position, so the class is
/// unambiguous from the planted site and no memoryless base count separates the classes.
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
    vec![m("GATTACAG", "GATTACAG"), m("AGACTGTA", "AGACTGTA")]
}

/// The built-in model of one variant: `conv1d filters × kernel_size, relu → cell units
/// (final state; bidirectional: both final states concatenated) → dense 2 softmax`, Keras
/// init ([`run_variant`] applies chrono's biases with [`apply_chrono`]).
pub fn model_spec(v: Variant, filters: usize, kernel_size: usize, units: usize) -> ModelSpec {
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
                kernel_size,
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

/// The recurrent layer of a `--model` spec: its index, cell and whether it is bidirectional
/// (the first recurrent layer), or a usage error naming what is missing.
pub fn model_recurrent(spec: &ModelSpec) -> Result<(usize, Cell, bool)> {
    spec.layers
        .iter()
        .enumerate()
        .find_map(|(i, l)| match l {
            LayerSpec::SimpleRnn(_) => Some((i, Cell::SimpleRnn, false)),
            LayerSpec::Lstm(_) => Some((i, Cell::Lstm, false)),
            LayerSpec::Gru(_) => Some((i, Cell::Gru, false)),
            LayerSpec::Bidirectional(b) => Some((i, Cell::of_spec(&b.layer), true)),
            _ => None,
        })
        .ok_or_else(|| {
            Error::Usage(
                "--model: the model has no recurrent layer (simple_rnn, lstm, gru or \
                 bidirectional) to measure"
                    .into(),
            )
        })
}

/// The spec of a variant: the built-in model, or the `--model` spec at the variant's length.
fn variant_spec(cfg: &GradflowConfig, v: Variant) -> ModelSpec {
    match &cfg.model {
        Some(m) => {
            let mut m = m.clone();
            m.input_shape[0] = Some(v.length);
            m
        }
        None => model_spec(v, cfg.filters, cfg.kernel_size, cfg.units),
    }
}

/// `count` records of `length` bp, encoded: the motif at offset `0..=max_offset`.
pub fn task_data<T: Float>(
    count: usize,
    length: usize,
    max_offset: usize,
    seed: u64,
) -> Result<Dataset<T>> {
    let records = synth::generate_start_planted(&task_motifs(), count, length, max_offset, seed)?;
    let raw = RawData {
        path: "gradflow task".into(),
        records,
        has_labels: true,
        multi_label: false,
    };
    let labels = Labels::from_data(&raw)?;
    data::encode(&raw, &labels, LengthPolicy::default(), true)
}

/// Sets chrono gate biases (the values of `bias_init: chrono`, [`init::set_chrono`]) in every
/// direction of layer `index` of a built `model`, with `T` = that layer's input length; the
/// draws come from their own generator seeded by `seed`, so the other weights are those of
/// Keras init at the same seed. False if the layer's cell has no gates.
pub fn apply_chrono<T: Float>(model: &mut Sequential<T>, index: usize, seed: u64) -> bool {
    let t_max = if index == 0 {
        model.input_shape().first().copied()
    } else {
        model
            .layer_shapes()
            .get(index - 1)
            .and_then(|s| s.first().copied())
    }
    .unwrap_or(0) as f64;
    let Some(layer) = model.layers_mut().get_mut(index) else {
        return false;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6368_726F_6E6F);
    let mut params = layer.params_mut();
    let mut changed = false;
    for sfx in ["", "_reverse"] {
        let pos = |name: String| params.iter().position(|p| p.name == name);
        let (Some(i), Some(h)) = (
            pos(format!("bias_ih_l0{sfx}")),
            pos(format!("bias_hh_l0{sfx}")),
        ) else {
            continue;
        };
        // G from weight_hh's shape (G·U, U).
        let gates = match params
            .iter()
            .find(|p| p.name == format!("weight_hh_l0{sfx}"))
            .map(|p| p.value.shape().to_vec())
            .as_deref()
        {
            Some(&[gu, u]) if u > 0 => gu / u,
            _ => continue,
        };
        let mut b_ih = params[i].value.clone();
        let mut b_hh = params[h].value.clone();
        if init::set_chrono(gates, &mut b_ih, &mut b_hh, t_max, &mut rng) {
            params[i].value = b_ih;
            params[h].value = b_hh;
            changed = true;
        }
    }
    changed
}

/// Batch-mean ‖∂L/∂h_t‖ per direction of the recurrent layer `index` for one batch.
///
/// # Shapes
/// - `x`: `(batch, length, 4)`, `y`: `(batch, 2)` one-hot.
pub fn record_curves(
    model: &mut Sequential<f64>,
    index: usize,
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
        .get(index)
        .ok_or_else(|| Error::Usage(format!("the gradflow model has no layer {index}")))?;
    let curves = layer
        .step_grad_norms()
        .into_iter()
        .map(|(direction, n)| Curve {
            direction,
            norms: rnn::step_means(&n),
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

/// Checks a `--model` spec for the experiment: 4 input channels, a recurrent layer, two
/// outputs, and it builds at every length (a fixed input length must be the only length).
fn check_model(spec: &ModelSpec, lengths: &[usize]) -> Result<()> {
    let bad = |msg: String| Err(Error::Usage(format!("--model: {msg}")));
    if spec.input_shape.len() != 2 || spec.input_shape[1] != Some(4) {
        return bad(format!(
            "the input must be (length, 4) one-hot DNA, got {}",
            crate::model::fmt_dims(&spec.input_shape)
        ));
    }
    if let Some(l) = spec.input_shape[0] {
        if lengths != [l] {
            return bad(format!(
                "the model's input length is {l}, so --lengths must be {l} (or a model with \
                 input length null), got {lengths:?}"
            ));
        }
    }
    model_recurrent(spec)?;
    for &l in lengths {
        let mut s = spec.clone();
        s.input_shape[0] = Some(l);
        let m = Sequential::<f32>::from_spec(&s, 0)
            .map_err(|e| Error::Usage(format!("--model at length {l}: {e}")))?;
        if m.output_shape() != [2] {
            return bad(format!(
                "the task has two classes, so the model must end in 2 outputs, not {:?}",
                m.output_shape()
            ));
        }
    }
    Ok(())
}

/// Checks a configuration before anything runs.
pub fn check(cfg: &GradflowConfig) -> Result<()> {
    let width = task_motifs().iter().map(|m| m.width()).max().unwrap_or(0);
    if cfg.cells.is_empty()
        || cfg.lengths.is_empty()
        || cfg.bidirectional.is_empty()
        || cfg.inits.is_empty()
        || cfg.seeds.is_empty()
    {
        return Err(Error::Usage(
            "--cells, --lengths, --init and --seeds need at least one value each".into(),
        ));
    }
    if let Some(&l) = cfg.lengths.iter().find(|&&l| l < width + 1) {
        return Err(Error::Usage(format!(
            "--lengths: {l} is too short; the planted motif is {width} bp, so lengths must be at least {}",
            width + 1
        )));
    }
    if cfg.steps == 0
        || cfg.batch_size == 0
        || cfg.test_count == 0
        || cfg.record_count == 0
        || cfg.kernel_size == 0
    {
        return Err(Error::Usage(
            "--steps, --batch-size, --test-count, --record-count and --kernel-size must be at least 1"
                .into(),
        ));
    }
    if let Some(&l) = cfg.lengths.iter().find(|&&l| l < cfg.kernel_size + 1) {
        return Err(Error::Usage(format!(
            "--lengths: {l} leaves the recurrent layer fewer than 2 steps after a conv of \
             --kernel-size {}",
            cfg.kernel_size
        )));
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
    if let Some(m) = &cfg.model {
        check_model(m, &cfg.lengths)?;
    }
    Ok(())
}

/// The variants of a configuration, in table order: cell, uni before bi, length, init, seed.
/// A cell without gates is run with Keras init only (chrono does not apply to it), listed
/// under `keras`. With a `--model`, one cell and layer kind (the model's), init `model`.
pub fn variants(cfg: &GradflowConfig) -> Vec<Variant> {
    let mut out = Vec::new();
    let (cells, bis, inits) = match &cfg.model {
        Some(m) => match model_recurrent(m) {
            Ok((_, cell, bi)) => (vec![cell], vec![bi], vec![Init::Model]),
            Err(_) => return out,
        },
        None => (
            cfg.cells.clone(),
            cfg.bidirectional.clone(),
            cfg.inits.clone(),
        ),
    };
    for &cell in &cells {
        for &bidirectional in &bis {
            for &length in &cfg.lengths {
                let mut own: Vec<Init> = inits
                    .iter()
                    .map(|&i| {
                        if i == Init::Chrono && !cell.gated() {
                            Init::Keras
                        } else {
                            i
                        }
                    })
                    .collect();
                own.dedup();
                for &init in &own {
                    for &seed in &cfg.seeds {
                        out.push(Variant {
                            cell,
                            bidirectional,
                            length,
                            init,
                            seed,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Seeds of the data at one length: (training, held-out). The same for every cell and init,
/// so they are compared on identical records.
fn data_seeds(seed: u64, length: usize) -> (u64, u64) {
    let base = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(length as u64);
    (base ^ 0x7261_696E, base ^ 0x7465_7374)
}

/// The training configuration of every variant (and of the shortcut model).
fn train_config(cfg: &GradflowConfig, seed: u64) -> TrainConfig {
    let mut tc = TrainConfig {
        epochs: 1,
        batch_size: cfg.batch_size,
        clip_norm: Some(1.0),
        patience: None,
        seed,
        progress: Progress::Quiet,
        ..Default::default()
    };
    tc.optimizer.lr = cfg.lr;
    tc
}

/// The training and held-out sets of one length and seed.
fn datasets(
    cfg: &GradflowConfig,
    length: usize,
    seed: u64,
) -> Result<(Dataset<f32>, Dataset<f32>)> {
    let width = task_motifs().iter().map(|m| m.width()).max().unwrap_or(0);
    let (train_seed, test_seed) = data_seeds(seed, length);
    let train_offset = if cfg.curriculum {
        length - width
    } else {
        MAX_OFFSET
    };
    Ok((
        task_data::<f32>(cfg.steps * cfg.batch_size, length, train_offset, train_seed)?,
        task_data::<f32>(cfg.test_count, length, MAX_OFFSET, test_seed)?,
    ))
}

fn accuracy_of(model: &mut Sequential<f32>, test: &Dataset<f32>) -> Result<f64> {
    let eval = train::evaluate(model, test, 256, false)?;
    Ok(eval
        .metrics
        .iter()
        .find(|(k, _)| k == "accuracy")
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN))
}

/// Runs one variant.
pub fn run_variant(cfg: &GradflowConfig, v: Variant) -> Result<VariantResult> {
    let t0 = Instant::now();
    let spec = variant_spec(cfg, v);
    let (index, _, _) = model_recurrent(&spec)?;
    let (train_set, test_set) = datasets(cfg, v.length, v.seed)?;
    let rec_n = cfg.record_count.min(cfg.test_count);
    let rec_x: Array3<f64> = test_set
        .x
        .slice(ndarray::s![..rec_n, .., ..])
        .mapv(|a| a as f64);
    let rec_y: Array2<f64> = test_set
        .y
        .slice(ndarray::s![..rec_n, ..])
        .mapv(|a| a as f64);

    let mut model = Sequential::<f32>::from_spec(&spec, v.seed)?;
    if v.init == Init::Chrono {
        apply_chrono(&mut model, index, v.seed);
    }
    let mut probe = Sequential::<f64>::from_spec(&spec, v.seed)?;
    copy_params(&model, &mut probe);
    let init = record_curves(&mut probe, index, &rec_x, &rec_y)?;

    let history = train::fit(
        &mut model,
        &train_set,
        None,
        false,
        &train_config(cfg, v.seed),
    )?;
    let train_loss = history.column("loss").and_then(|c| c.last().copied());
    let accuracy = accuracy_of(&mut model, &test_set)?;

    copy_params(&model, &mut probe);
    let trained = record_curves(&mut probe, index, &rec_x, &rec_y)?;
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
            "gradflow: {} {} {} L={} seed {}: accuracy {:.3}, {:.1}s",
            v.cell.name(),
            if v.bidirectional { "bi" } else { "uni" },
            v.init.name(),
            v.length,
            v.seed,
            r.accuracy,
            r.seconds
        );
    }
    Ok(r)
}

/// The spec of the memoryless shortcut: `conv1d` 16 filters of width 1 (a learned per-base
/// embedding) → global average pooling (base composition) → dense 2 softmax. It sees only how
/// often each base occurs, not where.
pub fn shortcut_spec(length: usize) -> ModelSpec {
    ModelSpec {
        input_shape: vec![Some(length), Some(4)],
        layers: vec![
            LayerSpec::Conv1d(Conv1dSpec {
                filters: 16,
                kernel_size: 1,
                activation: Activation::Relu,
                ..Default::default()
            }),
            LayerSpec::GlobalAvgpool1d(Default::default()),
            LayerSpec::Dense(DenseSpec {
                units: 2,
                activation: Activation::Softmax,
                ..Default::default()
            }),
        ],
    }
}

/// Held-out accuracy of the memoryless shortcut ([`shortcut_spec`]) trained like a variant on
/// the same records of `length` and `seed`: what counting bases alone reaches.
pub fn shortcut_accuracy(cfg: &GradflowConfig, length: usize, seed: u64) -> Result<f64> {
    let (train_set, test_set) = datasets(cfg, length, seed)?;
    let mut model = Sequential::<f32>::from_spec(&shortcut_spec(length), seed)?;
    train::fit(
        &mut model,
        &train_set,
        None,
        false,
        &train_config(cfg, seed),
    )?;
    accuracy_of(&mut model, &test_set)
}

/// The printed line of the memoryless shortcut's held-out accuracy per length (mean and
/// range over the seeds), run in parallel.
pub fn shortcut_line(cfg: &GradflowConfig) -> Result<String> {
    let jobs: Vec<(usize, u64)> = cfg
        .lengths
        .iter()
        .flat_map(|&l| cfg.seeds.iter().map(move |&s| (l, s)))
        .collect();
    let acc = jobs
        .par_iter()
        .map(|&(l, s)| shortcut_accuracy(cfg, l, s))
        .collect::<Result<Vec<f64>>>()?;
    let per_length: Vec<String> = cfg
        .lengths
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let n = cfg.seeds.len();
            let st = Stat::arithmetic(&acc[i * n..(i + 1) * n]);
            if n > 1 {
                format!(
                    "{:.3} [{:.3}, {:.3}] at length {l}",
                    st.mean, st.min, st.max
                )
            } else {
                format!("{:.3} at length {l}", st.mean)
            }
        })
        .collect();
    Ok(format!(
        "memoryless shortcut (base composition: conv width 1 → global average pool → dense), \
         held-out accuracy: {}\n",
        per_length.join(", ")
    ))
}

/// The notes printed under the table: the definitions, and which rows did not get the
/// asked-for init.
pub fn notes(cfg: &GradflowConfig) -> String {
    let mut s = String::from(
        "first/last: batch-mean ‖∂L/∂h‖ at the step farthest from the output over the step \
         nearest it (in processing order); decay/step: its geometric mean per step. Means over \
         seeds (geometric for ratios and decays), [min, max] over seeds.\n",
    );
    if cfg.model.is_none()
        && cfg.inits.contains(&Init::Chrono)
        && cfg.cells.iter().any(|c| !c.gated())
    {
        s.push_str(
            "simple_rnn has no gates, so chrono does not apply: it runs with keras init (its \
             rows are labelled keras).\n",
        );
    }
    s
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
pub const CSV_HEADER: &str = "cell,bidirectional,length,init,seed,stage,direction,t,norm";

/// Header of `gradflow_summary.csv`.
pub const SUMMARY_HEADER: &str = "cell,bidirectional,length,init,seed,direction,init_ratio,init_decay,trained_ratio,trained_decay,accuracy";

/// `gradflow.csv`: one row per variant, seed, stage (`init`/`trained`), direction and
/// 0-based `t` in sequence order.
pub fn to_csv(results: &[VariantResult]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in results {
        let v = r.variant;
        for (stage, curves) in [("init", &r.init), ("trained", &r.trained)] {
            for c in curves {
                for (t, n) in c.norms.iter().enumerate() {
                    s.push_str(&format!(
                        "{},{},{},{},{},{stage},{},{t},{n:e}\n",
                        v.cell.name(),
                        v.bidirectional,
                        v.length,
                        v.init.name(),
                        v.seed,
                        c.direction
                    ));
                }
            }
        }
    }
    s
}

/// One summary row per variant, seed and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub cell: Cell,
    pub bidirectional: bool,
    pub length: usize,
    pub init: Init,
    pub seed: u64,
    pub direction: String,
    pub init_ratio: f64,
    pub init_decay: f64,
    pub trained_ratio: f64,
    pub trained_decay: f64,
    pub accuracy: f64,
}

/// The per-seed rows.
pub fn summary(results: &[VariantResult]) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for r in results {
        for (i, c) in r.init.iter().enumerate() {
            let tr = r.trained.get(i);
            rows.push(SummaryRow {
                cell: r.variant.cell,
                bidirectional: r.variant.bidirectional,
                length: r.variant.length,
                init: r.variant.init,
                seed: r.variant.seed,
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
            "{},{},{},{},{},{},{:e},{},{:e},{},{}\n",
            r.cell.name(),
            r.bidirectional,
            r.length,
            r.init.name(),
            r.seed,
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

/// A quantity over seeds: its mean and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Arithmetic mean (accuracy) or geometric mean (ratios, decays).
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// Arithmetic mean and range (NaN if empty or any value is NaN).
    pub fn arithmetic(v: &[f64]) -> Stat {
        Stat::of(v, |x| x, |m| m)
    }

    /// Geometric mean and range: the right mean for ratios spanning decades (and the
    /// geometric mean of the decays is the decay of the geometric-mean ratio).
    pub fn geometric(v: &[f64]) -> Stat {
        Stat::of(v, f64::ln, f64::exp)
    }

    fn of(v: &[f64], to: impl Fn(f64) -> f64, back: impl Fn(f64) -> f64) -> Stat {
        if v.is_empty() || v.iter().any(|x| x.is_nan()) {
            return Stat {
                mean: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mean = back(v.iter().map(|&x| to(x)).sum::<f64>() / v.len() as f64);
        Stat {
            mean,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One row of the printed table: a variant and direction over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub cell: Cell,
    pub bidirectional: bool,
    pub length: usize,
    pub init: Init,
    pub direction: String,
    pub seeds: usize,
    pub init_ratio: Stat,
    pub trained_ratio: Stat,
    pub trained_decay: Stat,
    pub accuracy: Stat,
}

/// Groups the per-seed rows by variant and direction (in their order of first appearance).
pub fn aggregate(rows: &[SummaryRow]) -> Vec<TableRow> {
    let key = |r: &SummaryRow| {
        (
            r.cell,
            r.bidirectional,
            r.length,
            r.init,
            r.direction.clone(),
        )
    };
    let mut keys = Vec::new();
    for r in rows {
        if !keys.contains(&key(r)) {
            keys.push(key(r));
        }
    }
    keys.into_iter()
        .map(|k| {
            let g: Vec<&SummaryRow> = rows.iter().filter(|r| key(r) == k).collect();
            let col = |f: fn(&SummaryRow) -> f64| g.iter().map(|r| f(r)).collect::<Vec<f64>>();
            TableRow {
                cell: k.0,
                bidirectional: k.1,
                length: k.2,
                init: k.3,
                direction: k.4,
                seeds: g.len(),
                init_ratio: Stat::geometric(&col(|r| r.init_ratio)),
                trained_ratio: Stat::geometric(&col(|r| r.trained_ratio)),
                trained_decay: Stat::geometric(&col(|r| r.trained_decay)),
                accuracy: Stat::arithmetic(&col(|r| r.accuracy)),
            }
        })
        .collect()
}

/// The table printed by `seqgrad gradflow`: means over seeds with their range `[min, max]`.
pub fn table(rows: &[TableRow]) -> String {
    let head = [
        "cell",
        "layer",
        "init",
        "direction",
        "length",
        "seeds",
        "init first/last",
        "trained first/last [range]",
        "trained decay/step [range]",
        "accuracy [range]",
    ];
    let e = |v: f64| format!("{v:.1e}");
    let f = |v: f64| format!("{v:.3}");
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let range = |s: Stat, fmt: &dyn Fn(f64) -> String| {
            if r.seeds > 1 {
                format!("{} [{}, {}]", fmt(s.mean), fmt(s.min), fmt(s.max))
            } else {
                fmt(s.mean)
            }
        };
        cells.push(vec![
            r.cell.name().to_string(),
            if r.bidirectional { "bi" } else { "uni" }.to_string(),
            r.init.name().to_string(),
            r.direction.clone(),
            r.length.to_string(),
            r.seeds.to_string(),
            e(r.init_ratio.mean),
            range(r.trained_ratio, &e),
            range(r.trained_decay, &f),
            range(r.accuracy, &f),
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
                if c < 4 {
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
    fn task_motifs_differ_everywhere_with_equal_composition() {
        let m = task_motifs();
        let argmax = |p: &[f64; 4]| (0..4).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        let mut counts = [[0usize; 4]; 2];
        for (a, b) in m[0].probs.iter().zip(&m[1].probs) {
            assert_ne!(argmax(a), argmax(b));
            counts[0][argmax(a)] += 1;
            counts[1][argmax(b)] += 1;
        }
        assert_eq!(counts[0], counts[1]);
        // expected base frequencies of the two motifs are equal too
        for k in 0..4 {
            let e = |m: &Motif| m.probs.iter().map(|p| p[k]).sum::<f64>();
            assert!((e(&m[0]) - e(&m[1])).abs() < 1e-12);
        }
    }

    #[test]
    fn stats_are_means_with_ranges() {
        let a = Stat::arithmetic(&[0.5, 1.0]);
        assert_eq!((a.mean, a.min, a.max), (0.75, 0.5, 1.0));
        let g = Stat::geometric(&[1e-4, 1e-2]);
        assert!((g.mean - 1e-3).abs() < 1e-15 && g.min == 1e-4 && g.max == 1e-2);
        assert!(Stat::geometric(&[1.0, f64::NAN]).mean.is_nan());
    }

    #[test]
    fn chrono_is_applied_to_gated_cells_only_and_simple_rnn_runs_as_keras() {
        let cfg = GradflowConfig {
            inits: vec![Init::Chrono],
            seeds: vec![1, 2],
            lengths: vec![30],
            bidirectional: vec![false],
            ..Default::default()
        };
        let vs = variants(&cfg);
        assert_eq!(vs.len(), 6);
        assert!(vs
            .iter()
            .all(|v| (v.init == Init::Keras) == (v.cell == Cell::SimpleRnn)));
        for cell in Cell::ALL {
            let v = Variant {
                cell,
                bidirectional: true,
                length: 30,
                init: Init::Chrono,
                seed: 1,
            };
            let spec = model_spec(v, 4, 9, 6);
            let mut m = Sequential::<f64>::from_spec(&spec, 1).unwrap();
            let before: Vec<_> = m.named_params().iter().map(|p| p.1.value.clone()).collect();
            assert_eq!(apply_chrono(&mut m, 1, 1), cell.gated());
            let after = m.named_params();
            for ((name, p), b) in after.iter().zip(&before) {
                let changed = p.value != *b;
                // both directions' bias_ih change for gated cells, nothing else is touched
                // except bias_hh slices that were already zero
                if name.contains("bias_ih") {
                    assert_eq!(changed, cell.gated(), "{name}");
                } else {
                    assert!(!changed, "{name}");
                }
            }
            if cell == Cell::Lstm {
                // forget bias ln U(1, 21): T = 30 − 9 + 1 = 22 steps after the conv
                let b = &after
                    .iter()
                    .find(|p| p.0 == "layers.1.bias_ih_l0")
                    .unwrap()
                    .1
                    .value;
                assert!((6..12).all(|j| b[j] > 0.0 && b[j] < 21f64.ln() && b[j - 6] == -b[j]));
            }
        }
    }
}
