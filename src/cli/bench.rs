//! `seqgrad bench --workload w1|w2|w3|MODEL.json [--batch-size N] [--mode train|infer]
//! [--threads N] [--seconds S]`: throughput of one workload on random one-hot data.
//!
//! A training step is forward (`Mode::Train`) → loss on logits → backward → Adam update, as the
//! training loop does it; an inference step is one [`Mode::Infer`] forward pass through the whole
//! model (head included). After a warm-up (at least two steps and 10% of the time budget) the
//! steps are timed until `--seconds` have passed, and ONE JSON line goes to stdout:
//!
//! `{"workload","mode","batch_size","threads","steps","samples_per_sec","ms_per_step","peak_rss_mb"}`
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// Forward + loss + backward + Adam update.
    Train,
    /// One inference forward pass (no caches).
    Infer,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `w1`, `w2`, `w3` (issue 9's workloads) or a model file (JSON).
    #[arg(long)]
    pub workload: String,
    /// Records per step (default: the workload's, 32 for a model file).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// What one step is.
    #[arg(long, value_enum, default_value_t = BenchMode::Train)]
    pub mode: BenchMode,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds of timed steps (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
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
    opt.step(model.params_in_order_mut());
    Ok(l)
}

/// A workload's model (seed 0, f32), a random batch `(x, y)` of `batch` records (default: the
/// workload's), ready for [`train_step`] or an inference forward pass.
pub fn prepare(
    workload_name: &str,
    batch: Option<usize>,
) -> Result<(Sequential<f32>, ArrayD<f32>, ArrayD<f32>)> {
    let (_, spec, default_batch) = workload(workload_name)?;
    let batch = batch.unwrap_or(default_batch);
    if batch == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    let model = Sequential::<f32>::from_spec(&spec, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
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
}

impl BenchResult {
    /// The one JSON line `seqgrad bench` prints.
    pub fn json(&self) -> String {
        // Fields in the documented order (serde_json's map would sort them).
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let rss = self
            .peak_rss_mb
            .map_or_else(|| "null".to_string(), |v| format!("{v:.1}"));
        format!(
            "{{\"workload\":{},\"mode\":{},\"batch_size\":{},\"threads\":{},\"steps\":{},\
             \"samples_per_sec\":{:.2},\"ms_per_step\":{:.3},\"peak_rss_mb\":{rss}}}",
            q(&self.workload),
            q(match self.mode {
                BenchMode::Train => "train",
                BenchMode::Infer => "infer",
            }),
            self.batch_size,
            self.threads,
            self.steps,
            self.samples_per_sec,
            self.ms_per_step,
        )
    }
}

/// Builds the workload and times it (in the current rayon pool).
pub fn measure(args: &Args) -> Result<BenchResult> {
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        return Err(Error::Usage(format!(
            "--seconds must be a non-negative number, got {}",
            args.seconds
        )));
    }
    let name = workload(&args.workload)?.0;
    let (mut model, x, y) = prepare(&args.workload, args.batch_size)?;
    let batch = x.shape()[0];
    let mut opt = Optimizer::<f32>::new(OptimizerConfig::named("adam")?);
    if args.mode == BenchMode::Train {
        model.set_need_input_grad(false);
    }
    let mut step_no = 0u64;
    let mut step = |model: &mut Sequential<f32>| -> Result<()> {
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
    Ok(BenchResult {
        workload: name,
        mode: args.mode,
        batch_size: batch,
        threads: rayon::current_num_threads(),
        steps,
        samples_per_sec: (steps * batch) as f64 / secs,
        ms_per_step: 1000.0 * secs / steps as f64,
        peak_rss_mb: peak_rss_mb(),
    })
}

pub fn run(args: &Args) -> Result<()> {
    let r = crate::cli::train::with_threads(args.threads, || measure(args))?;
    println!("{}", r.json());
    Ok(())
}
