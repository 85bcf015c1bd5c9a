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

use crate::cli::format::print_stdout;
use crate::error::{Error, Result};
use crate::run::gradcheck::{check, GradcheckOptions, Verdict};
use crate::run::source::{build_model, read_weights};
use crate::run::with_threads;
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

fn run_inner(a: &Args) -> Result<()> {
    let opts = GradcheckOptions {
        layers: (!a.layers.is_empty()).then(|| a.layers.clone()),
        whole_model: !a.skip_model,
        batch: a.batch,
        samples: a.samples,
        tolerance: a.tolerance,
        mode: match a.mode {
            ModeArg::Train => Mode::Train,
            ModeArg::Eval => Mode::Eval,
        },
        seed: a.seed,
    };
    opts.validate()?;
    let spec = ModelSpec::from_file(&a.model)?;
    let stored = a.weights.as_ref().map(|p| read_weights(p)).transpose()?;
    let mut model = build_model::<f64>(
        &spec,
        a.seed,
        a.weights.as_deref().zip(stored.as_ref().map(|(t, _)| t)),
    )?;
    let t0 = Instant::now();
    let rows = check(&mut model, &opts)?;
    let secs = t0.elapsed().as_secs_f64();
    let mut table: Vec<Vec<String>> = vec![[
        "layer",
        "tensor",
        "elements checked",
        "worst rel. error",
        "verdict",
    ]
    .map(String::from)
    .to_vec()];
    let mut last: Option<&Option<(usize, String)>> = None;
    for r in &rows {
        let label = match (&r.layer, last == Some(&r.layer)) {
            (_, true) => String::new(),
            (Some((i, kind)), false) => format!("{i} {kind}"),
            (None, false) => "whole model".into(),
        };
        last = Some(&r.layer);
        let count = if r.checked == r.total {
            format!("{}", r.total)
        } else {
            format!("{} of {}", r.checked, r.total)
        };
        let verdict = match r.verdict {
            Verdict::Fail => "FAIL",
            Verdict::PassAllZero => "pass (all zero: not exercised)",
            Verdict::Pass => "pass",
        };
        table.push(vec![
            label,
            r.tensor.clone(),
            count,
            format!("{:.2e}", r.worst_rel_err),
            verdict.into(),
        ]);
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
        match a.mode {
            ModeArg::Train => "train",
            ModeArg::Eval => "eval",
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
    let (total, failed) = (rows.len(), rows.iter().filter(|r| !r.ok()).count());
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
