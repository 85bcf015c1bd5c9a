//! `seqgrad gradcheck`: checks a model's hand-written gradients against central finite
//! differences in f64, layer by layer and for the whole model.
//!
//! ```text
//! seqgrad gradcheck --model M.json [--weights W.safetensors] [--layers 0,3] [--batch 2]
//!                   [--samples 32] [--tolerance 1e-4] [--mode train|eval] [--seed 0]
//! ```
//!
//! The model is built in f64 (weights of any dtype are converted; seeded initial weights without
//! --weights). Every layer is checked on a seeded batch of its input shape drawn from U(0, 1)
//! (continuous values keep max-pool ties and ReLU kinks away from the finite-difference steps;
//! a layer's real activations can hold exact ties, e.g. several ReLU zeros in one pool window,
//! where a finite difference is no derivative), with a seeded U(−1, 1) upstream gradient, and
//! then the whole model (head included) on the first of those batches. For each tensor (the input and every
//! parameter) at most `--samples` elements are checked, a seeded sample without replacement (all
//! of them for smaller tensors; see [`crate::gradcheck`]). The verdict per tensor is `pass`
//! when the worst relative error is below `--tolerance`.
//!
//! Exit code 0 when every check passes, 1 when any fails, 2 for a user error (bad model file,
//! weights or flag).

use std::path::PathBuf;
use std::time::Instant;

use crate::run::source::{build_model, read_weights};
use crate::cli::format::print_stdout;
use crate::run::with_threads;
use crate::error::{Error, Result};
use crate::gradcheck::{self, GradReport};
use crate::spec::ModelSpec;
use crate::tensor::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Training mode: dropout on, with the same mask (step 0) on every pass.
    Train,
    /// Evaluation mode: dropout is the identity.
    Eval,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The model file (JSON).
    #[arg(long)]
    pub model: PathBuf,
    /// Weights (safetensors, F32 or F64; converted to f64). Default: seeded initial weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Check only these layers (0-based indices, comma-separated); default: every layer.
    #[arg(long, value_delimiter = ',', value_name = "I,...")]
    pub layers: Vec<usize>,
    /// Do not check the whole model (only the layers).
    #[arg(long)]
    pub skip_model: bool,
    /// Records in the random input batch.
    #[arg(long, default_value_t = 2)]
    pub batch: usize,
    /// Most elements checked per tensor (a seeded sample; 0: every element).
    #[arg(long, default_value_t = 32)]
    pub samples: usize,
    /// A tensor passes when its worst relative error is below this.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// Layer mode during the check.
    #[arg(long, value_enum, default_value = "train")]
    pub mode: ModeArg,
    /// Seed for the initial weights (without --weights), the input, the upstream gradients and
    /// the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || run_inner(a))
}

fn verdict(r: &GradReport, name: &str, err: f64, tol: f64) -> &'static str {
    if err >= tol || !err.is_finite() {
        "FAIL"
    } else if r.zero_tensors.iter().any(|z| z == name) {
        "pass (all zero: not exercised)"
    } else {
        "pass"
    }
}

fn rows(r: &GradReport, tol: f64, out: &mut Vec<[String; 4]>, failed: &mut usize) {
    let errs = std::iter::once(("input".to_string(), r.input)).chain(r.params.iter().cloned());
    for ((name, err), (_, checked, total)) in errs.zip(&r.checked) {
        let v = verdict(r, &name, err, tol);
        if v == "FAIL" {
            *failed += 1;
        }
        let count = if checked == total {
            format!("{total}")
        } else {
            format!("{checked} of {total}")
        };
        out.push([name, count, format!("{err:.2e}"), v.to_string()]);
    }
}

fn run_inner(a: &Args) -> Result<()> {
    if a.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    if !(a.tolerance.is_finite() && a.tolerance > 0.0) {
        return Err(Error::Usage(format!(
            "--tolerance must be a positive number, got {}",
            a.tolerance
        )));
    }
    let spec = ModelSpec::from_file(&a.model)?;
    let stored = a.weights.as_ref().map(|p| read_weights(p)).transpose()?;
    let mut model = build_model::<f64>(
        &spec,
        a.seed,
        a.weights.as_deref().zip(stored.as_ref().map(|(t, _)| t)),
    )?;
    let mode = match a.mode {
        ModeArg::Train => Mode::Train,
        ModeArg::Eval => Mode::Eval,
    };
    let samples = if a.samples == 0 {
        usize::MAX
    } else {
        a.samples
    };
    let mut shape = vec![a.batch];
    shape.extend_from_slice(model.input_shape());
    let x = gradcheck::random_array(&shape, 0.0, 1.0, a.seed);
    let t0 = Instant::now();
    let layers = (!a.layers.is_empty()).then_some(a.layers.as_slice());
    let checks = gradcheck::check_model_layers(&mut model, &x, layers, mode, samples, a.seed)?;

    let mut table: Vec<[String; 5]> = vec![[
        "layer".into(),
        "tensor".into(),
        "elements checked".into(),
        "worst rel. error".into(),
        "verdict".into(),
    ]];
    let mut failed = 0;
    let mut total = 0;
    for c in &checks {
        let mut r = Vec::new();
        rows(&c.report, a.tolerance, &mut r, &mut failed);
        total += r.len();
        for (k, row) in r.into_iter().enumerate() {
            let label = if k == 0 {
                format!("{} {}", c.index, c.kind)
            } else {
                String::new()
            };
            let [n, cnt, e, v] = row;
            table.push([label, n, cnt, e, v]);
        }
    }
    if !a.skip_model {
        let mut oshape = vec![a.batch];
        oshape.extend_from_slice(model.output_shape());
        let dy = gradcheck::random_array(&oshape, -1.0, 1.0, a.seed.wrapping_add(999));
        let report = gradcheck::check_model_sampled(&mut model, &x, &dy, mode, samples, a.seed)?;
        let mut r = Vec::new();
        rows(&report, a.tolerance, &mut r, &mut failed);
        total += r.len();
        for (k, row) in r.into_iter().enumerate() {
            let label = if k == 0 {
                "whole model".into()
            } else {
                String::new()
            };
            let [n, cnt, e, v] = row;
            table.push([label, n, cnt, e, v]);
        }
    }
    let w: Vec<usize> = (0..5)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = format!(
        "gradcheck {} ({}), f64, {} mode, input batch {} from U(0, 1), ≤ {} sampled elements per tensor, tolerance {:.0e}\n",
        a.model.display(),
        a.weights
            .as_ref()
            .map(|w| format!("weights {}", w.display()))
            .unwrap_or_else(|| format!("seeded weights, seed {}", a.seed)),
        match mode {
            Mode::Train => "train",
            Mode::Eval => "eval",
            Mode::Infer => "infer",
        },
        a.batch,
        if a.samples == 0 { "all".to_string() } else { a.samples.to_string() },
        a.tolerance
    );
    for row in &table {
        s.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        ));
    }
    let secs = t0.elapsed().as_secs_f64();
    if failed == 0 {
        s.push_str(&format!("all {total} checks pass ({secs:.1} s)\n"));
        print_stdout(&s)
    } else {
        s.push_str(&format!("{failed} of {total} checks FAIL ({secs:.1} s)\n"));
        print_stdout(&s)?;
        Err(Error::ChecksFailed(format!(
            "gradcheck: {failed} of {total} gradient checks failed (tolerance {:.0e})",
            a.tolerance
        )))
    }
}
