//! Throughput of one workload on random one-hot data (`seqgrad bench`).
//!
//! A training step is forward (`Mode::Train`) → loss on logits → backward → Adam update, as the
//! training loop does it; an inference step is one [`Mode::Infer`] forward pass through the whole
//! model (head included). After a warm-up (at least two steps and 10% of the time budget) the
//! steps are timed until the time budget has passed; [`BenchResult::json`] is the one JSON line
//! `seqgrad bench` prints:
//!
//! `{"workload","mode","batch_size","threads","steps","samples_per_sec","ms_per_step","peak_rss_mb",
//! "flops_per_sample","gflops"}` (forward FLOPs per sample of the matrix products, and the
//! achieved GFLOP/s of the step: training counts 3× forward minus the first layer's input
//! gradient, see [`Flops`])
//!
//! `peak_rss_mb` is the process's peak resident set (`VmHWM` in `/proc/self/status`, in MiB;
//! `null` where the OS does not report it). The workloads are those of issue 9 (see
//! `docs/performance.md`): `w1` seed-like (conv 100 → BiSimpleRNN 100, batch 50), `w2`
//! splice-like (conv 64 → BiLSTM 64, batch 64), `w3` DanQ (`models/danq.json`, batch 100).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::spec::ModelSpec;
use crate::tensor::Mode;

/// W1 (seed-like): conv 100×10 relu → maxpool 5 → BiSimpleRNN 100 → flatten → dense 100 → 2
/// (`benches/peers/w1.json`, which the PyTorch side reads too).
pub const W1: &str = include_str!("../../benches/peers/w1.json");

/// W2 (splice-like): conv 64×9 relu → maxpool 3 → BiLSTM 64 → flatten → dense 64 → 3
/// (`benches/peers/w2.json`).
pub const W2: &str = include_str!("../../benches/peers/w2.json");

/// W3: DanQ, as `models/danq.json`.
pub const W3: &str = include_str!("../../models/danq.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// Forward + loss + backward + Adam update.
    Train,
    /// One inference forward pass (no caches).
    Infer,
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// `w1`, `w2`, `w3` (issue 9's workloads) or a model file (JSON).
    pub workload: String,
    /// Records per step (default: the workload's, 32 for a model file).
    pub batch_size: Option<usize>,
    pub mode: BenchMode,
    /// Seconds of timed steps (after the warm-up).
    pub seconds: f64,
    /// Seed of the model's weights; the random batch uses `seed + 1`.
    pub seed: u64,
}

/// A workload's name, model spec and default batch size.
pub fn workload(name: &str) -> Result<(String, ModelSpec, usize)> {
    let builtin = |text: &str, origin: &str, batch| -> Result<(String, ModelSpec, usize)> {
        Ok((
            origin.to_string(),
            ModelSpec::from_json(text, origin)?,
            batch,
        ))
    };
    match name.to_ascii_lowercase().as_str() {
        "w1" => builtin(W1, "w1", 50),
        "w2" => builtin(W2, "w2", 64),
        "w3" => builtin(W3, "w3", 100),
        _ => {
            let path = PathBuf::from(name);
            if !path.exists() {
                return Err(Error::Usage(format!(
                    "--workload {name:?} is neither w1, w2, w3 nor an existing model file"
                )));
            }
            Ok((name.to_string(), ModelSpec::from_file(&path)?, 32))
        }
    }
}

/// Peak resident set of this process in MiB (`VmHWM`), if the OS reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One training step as the training loop does it: forward (`Mode::Train`) → loss on logits →
/// backward → optimizer step. Returns the loss.
pub fn train_step(
    model: &mut Sequential<f32>,
    opt: &mut Optimizer<f32>,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    step: u64,
) -> Result<f64> {
    let loss = Loss::for_head(model.head());
    model.set_step(step);
    model.zero_grad();
    let logits = model.forward_logits(x.view(), Mode::Train)?;
    let (l, grad) = loss.compute(logits.view(), y.view())?;
    model.backward_logits(grad.view())?;
    opt.step(model.named_params_mut());
    Ok(l)
}

/// A workload's model (weights from `seed`, f32), a random batch `(x, y)` of `batch` records
/// (default: the workload's; drawn with `seed + 1`), ready for [`train_step`] or an inference
/// forward pass.
pub fn prepare(
    workload_name: &str,
    batch: Option<usize>,
    seed: u64,
) -> Result<(Sequential<f32>, ArrayD<f32>, ArrayD<f32>)> {
    let (_, spec, default_batch) = workload(workload_name)?;
    let batch = batch.unwrap_or(default_batch);
    if batch == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    let model = Sequential::<f32>::from_spec(&spec, seed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let (x, y) = random_batch(&model, batch, &mut rng);
    Ok((model, x, y))
}

/// Random one-hot input `(batch, length, 4)` (or uniform noise for other input shapes) and
/// random one-hot (softmax) or 0/1 (sigmoid/none) targets.
fn random_batch(
    model: &Sequential<f32>,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut xs = vec![batch];
    xs.extend_from_slice(model.input_shape());
    let mut x = ArrayD::<f32>::zeros(IxDyn(&xs));
    let ch = *xs.last().unwrap_or(&1); // ok: input_shape is never empty (checked at build)
    if let Some(s) = x.as_slice_mut() {
        for row in s.chunks_exact_mut(ch) {
            row[rng.random_range(0..ch)] = 1.0;
        }
    }
    let mut ys = vec![batch];
    ys.extend_from_slice(model.output_shape());
    let mut y = ArrayD::<f32>::zeros(IxDyn(&ys));
    let k = *ys.last().unwrap_or(&1); // ok: ys has the batch axis at least
    let one_hot = model.head() == Some(crate::activation::Activation::Softmax);
    if let Some(s) = y.as_slice_mut() {
        for row in s.chunks_exact_mut(k) {
            if one_hot {
                row[rng.random_range(0..k)] = 1.0;
            } else {
                for v in row.iter_mut() {
                    *v = if rng.random::<bool>() { 1.0 } else { 0.0 };
                }
            }
        }
    }
    (x, y)
}

/// The measured figures of one bench run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub workload: String,
    pub mode: BenchMode,
    pub batch_size: usize,
    pub threads: usize,
    pub steps: usize,
    pub samples_per_sec: f64,
    pub ms_per_step: f64,
    pub peak_rss_mb: Option<f64>,
    /// Forward FLOPs per sample (multiply-add = 2), see [`Flops`].
    pub flops_per_sample: f64,
    /// Achieved GFLOP/s: samples/s × FLOPs per sample of the step (training:
    /// [`Flops::train`], inference: [`Flops::forward`]).
    pub gflops: f64,
}

/// FLOPs per sample of a model's matrix products (multiply-add = 2 FLOPs; element-wise work,
/// activations and pooling not counted), the way `docs/performance.md` counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Flops {
    /// Convolutions: `2·L'·K·C·F` each.
    pub conv: f64,
    /// Recurrent layers: `2·L·G·U·(F + U)` per direction (`G` gates: LSTM 4, GRU 3,
    /// simple RNN 1; input projection plus recurrent product at every step).
    pub recurrent: f64,
    /// Dense layers: `2·in·units` (times the length on a sequence).
    pub dense: f64,
    /// The first layer's input-gradient product, which training skips (the data needs no
    /// gradient): a conv's or dense layer's whole forward count, a recurrent layer's input
    /// projections.
    pub first_input_grad: f64,
}

impl Flops {
    /// Counts a model's products from its spec and layer shapes.
    pub fn of(model: &Sequential<f32>) -> Flops {
        use crate::spec::{LayerSpec, RecurrentSpec};
        let mut f = Flops::default();
        let mut input: Vec<usize> = model.input_shape().to_vec();
        for (i, (spec, out)) in model
            .spec()
            .layers
            .iter()
            .zip(model.layer_shapes())
            .enumerate()
        {
            let last = |s: &[usize]| *s.last().unwrap_or(&0) as f64;
            let rnn = |r: &RecurrentSpec, dirs: f64| {
                let (g, s) = match r {
                    RecurrentSpec::SimpleRnn(s) => (1.0, s),
                    RecurrentSpec::Lstm(s) => (4.0, s),
                    RecurrentSpec::Gru(s) => (3.0, s),
                };
                let (l, fin, u) = (input[0] as f64, last(&input), s.units as f64);
                (
                    dirs * 2.0 * l * g * u * (fin + u),
                    dirs * 2.0 * l * g * u * fin,
                )
            };
            let (conv, rec, dense, in_grad) = match spec {
                LayerSpec::Conv1d(c) => {
                    let n = 2.0
                        * out[0] as f64
                        * c.kernel_size as f64
                        * last(&input)
                        * c.filters as f64;
                    (n, 0.0, 0.0, n)
                }
                LayerSpec::Dense(d) => {
                    let rows: f64 = input[..input.len() - 1].iter().map(|&v| v as f64).product();
                    let n = 2.0 * rows * last(&input) * d.units as f64;
                    (0.0, 0.0, n, n)
                }
                LayerSpec::SimpleRnn(s) => {
                    let (n, x) = rnn(&RecurrentSpec::SimpleRnn(s.clone()), 1.0);
                    (0.0, n, 0.0, x)
                }
                LayerSpec::Lstm(s) => {
                    let (n, x) = rnn(&RecurrentSpec::Lstm(s.clone()), 1.0);
                    (0.0, n, 0.0, x)
                }
                LayerSpec::Gru(s) => {
                    let (n, x) = rnn(&RecurrentSpec::Gru(s.clone()), 1.0);
                    (0.0, n, 0.0, x)
                }
                LayerSpec::Bidirectional(b) => {
                    let (n, x) = rnn(&b.layer, 2.0);
                    (0.0, n, 0.0, x)
                }
                _ => (0.0, 0.0, 0.0, 0.0),
            };
            f.conv += conv;
            f.recurrent += rec;
            f.dense += dense;
            if i == 0 {
                f.first_input_grad = in_grad;
            }
            input = out.clone();
        }
        f
    }

    /// Forward FLOPs per sample.
    pub fn forward(&self) -> f64 {
        self.conv + self.recurrent + self.dense
    }

    /// Training FLOPs per sample: forward, input-gradient and weight-gradient products (3×
    /// forward) minus the first layer's input gradient.
    pub fn train(&self) -> f64 {
        3.0 * self.forward() - self.first_input_grad
    }
}

impl BenchResult {
    /// The one JSON line `seqgrad bench` prints, fields in the documented order: rates to 2
    /// decimals, milliseconds to 3, MiB to 1, FLOPs per sample as a whole number.
    pub fn json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            workload: &'a str,
            mode: &'a str,
            batch_size: usize,
            threads: usize,
            steps: usize,
            samples_per_sec: f64,
            ms_per_step: f64,
            peak_rss_mb: Option<f64>,
            flops_per_sample: u64,
            gflops: f64,
        }
        let round = |v: f64, digits: i32| {
            let k = 10f64.powi(digits);
            (v * k).round() / k
        };
        let line = Line {
            workload: &self.workload,
            mode: match self.mode {
                BenchMode::Train => "train",
                BenchMode::Infer => "infer",
            },
            batch_size: self.batch_size,
            threads: self.threads,
            steps: self.steps,
            samples_per_sec: round(self.samples_per_sec, 2),
            ms_per_step: round(self.ms_per_step, 3),
            peak_rss_mb: self.peak_rss_mb.map(|v| round(v, 1)),
            flops_per_sample: self.flops_per_sample.round() as u64,
            gflops: round(self.gflops, 2),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// Builds the workload and times it (in the current rayon pool).
pub fn measure(args: &BenchOptions) -> Result<BenchResult> {
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        return Err(Error::Usage(format!(
            "--seconds must be a non-negative number, got {}",
            args.seconds
        )));
    }
    let name = workload(&args.workload)?.0;
    let (mut model, x, y) = prepare(&args.workload, args.batch_size, args.seed)?;
    let batch = x.shape()[0];
    let mut opt = Optimizer::<f32>::new(OptimizerConfig::named("adam")?);
    if args.mode == BenchMode::Train {
        model.set_need_input_grad(false);
    }
    let mut step_no = 0u64;
    let mut step = |model: &mut Sequential<f32>| -> Result<()> {
        crate::layers::gemm::log_note("step");
        match args.mode {
            BenchMode::Train => {
                step_no += 1;
                train_step(model, &mut opt, &x, &y, step_no)?;
            }
            BenchMode::Infer => {
                let out = model.forward(x.view(), Mode::Infer)?;
                std::hint::black_box(out);
            }
        }
        Ok(())
    };
    // Warm-up: buffers reach their steady size, caches and pages are touched.
    let budget = Duration::from_secs_f64(args.seconds);
    let warm_start = Instant::now();
    let mut warm = 0;
    while warm < 2 || warm_start.elapsed() < budget / 10 {
        step(&mut model)?;
        warm += 1;
    }
    let start = Instant::now();
    let mut steps = 0usize;
    while steps < 1 || start.elapsed() < budget {
        step(&mut model)?;
        steps += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let flops = Flops::of(&model);
    let samples_per_sec = (steps * batch) as f64 / secs;
    let per_step = match args.mode {
        BenchMode::Train => flops.train(),
        BenchMode::Infer => flops.forward(),
    };
    Ok(BenchResult {
        workload: name,
        mode: args.mode,
        batch_size: batch,
        threads: rayon::current_num_threads(),
        steps,
        samples_per_sec,
        ms_per_step: 1000.0 * secs / steps as f64,
        peak_rss_mb: peak_rss_mb(),
        flops_per_sample: flops.forward(),
        gflops: samples_per_sec * per_step / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flops(w: &str) -> Flops {
        let (_, spec, _) = workload(w).unwrap();
        Flops::of(&Sequential::<f32>::from_spec(&spec, 0).unwrap())
    }

    #[test]
    fn flops_match_docs_performance() {
        // docs/performance.md, "Workloads and FLOPs per sample" (forward, multiply-add = 2)
        let m = |x: f64| (x / 1e6 * 10.0).round() / 10.0;
        let w3 = flops("w3");
        // conv 2·975·26·4·320, BiLSTM 2·2·75·4·320·(320+320), dense 2·(48000·925 + 925·919)
        assert_eq!(
            (m(w3.conv), m(w3.recurrent), m(w3.dense)),
            (64.9, 245.8, 90.5)
        );
        assert_eq!(w3.conv, 2.0 * 975.0 * 26.0 * 4.0 * 320.0);
        assert_eq!(w3.first_input_grad, w3.conv);
        assert_eq!(m(w3.forward()).round(), 401.0);
        // training: 3 × 401 − 65 ≈ 1,140 MFLOP
        assert_eq!((w3.train() / 1e6 / 10.0).round() * 10.0, 1140.0);
        // W1: the docs' table says dense 0.12 M, but flatten 6·200 = 1,200 → 100 is
        // 2·1,200·100 = 0.24 M (the table counted multiply-adds once there).
        let w1 = flops("w1");
        assert_eq!((m(w1.conv), m(w1.recurrent), m(w1.dense)), (0.2, 0.5, 0.2));
        assert_eq!(w1.dense, 2.0 * (1200.0 * 100.0 + 100.0 * 2.0));
        let w2 = flops("w2");
        assert_eq!(m(w2.recurrent), 2.2);
        assert_eq!(m(w2.forward()), 2.7);
    }

    #[test]
    fn the_seed_picks_weights_and_batch() {
        let weights = |m: &Sequential<f32>| -> Vec<Vec<f32>> {
            m.named_params()
                .iter()
                .map(|(_, p)| p.value.iter().copied().collect())
                .collect()
        };
        let (m0, x0, y0) = prepare("w1", Some(3), 0).unwrap();
        let (m0b, x0b, y0b) = prepare("w1", Some(3), 0).unwrap();
        assert_eq!(weights(&m0), weights(&m0b));
        assert_eq!((&x0, &y0), (&x0b, &y0b));
        // seed 0 is what `seqgrad bench` used before it had --seed: model seed 0, batch seed 1
        let (_, spec, _) = workload("w1").unwrap();
        assert_eq!(
            weights(&m0),
            weights(&Sequential::<f32>::from_spec(&spec, 0).unwrap())
        );
        let (m1, x1, _) = prepare("w1", Some(3), 1).unwrap();
        assert_ne!(weights(&m0), weights(&m1));
        assert_ne!(x0, x1);
    }

    #[test]
    fn json_line_has_the_flop_fields() {
        let r = BenchResult {
            workload: "w3".into(),
            mode: BenchMode::Train,
            batch_size: 100,
            threads: 2,
            steps: 3,
            samples_per_sec: 100.0,
            ms_per_step: 1000.0,
            peak_rss_mb: Some(1.0),
            flops_per_sample: 4.0e8,
            gflops: 114.0,
        };
        let line = r.json();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = line
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|k| v.get(k).is_some())
            .collect();
        assert_eq!(
            keys,
            [
                "workload",
                "mode",
                "batch_size",
                "threads",
                "steps",
                "samples_per_sec",
                "ms_per_step",
                "peak_rss_mb",
                "flops_per_sample",
                "gflops"
            ],
            "{line}"
        );
        assert_eq!(v["flops_per_sample"], 400000000);
        assert_eq!(v["gflops"], 114.0);
        assert_eq!(v["samples_per_sec"], 100.0);
    }
}
