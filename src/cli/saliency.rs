//! `seqgrad saliency`: per-base saliency scores of a trained model for sequences, as TSV.
//!
//! ```text
//! seqgrad saliency --run RUN --data FILE [--method grad|grad_x_input|integrated_gradients|ism]
//!                  [--target CLASS] [--records N | --ids a,b] [--baseline zeros|uniform]
//!                  [--steps K] --out scores.tsv [--plot DIR]
//! ```
//!
//! The scores explain the *logit* of the target class (the model output before its final
//! softmax/sigmoid); the default target is each record's predicted class. The model runs in f64
//! (weights of any dtype are converted), in evaluation mode. See [`crate::saliency`] and
//! `docs/saliency.md`.

use std::path::PathBuf;

use crate::cli::args::RecordArgs;
use crate::cli::format::print_stdout;
use crate::data::Labels;
use crate::error::{Error, Result};
use crate::run::grad::class_name;
use crate::run::saliency::of_records;
use crate::run::source::{build_model, class_target, load_records, read_weights, Source};
use crate::run::with_threads;
use crate::run::DataOptions;
use crate::saliency::{self, Baseline, Method, Options, Quadrature};
use crate::spec::ModelSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// ∂f/∂x for all four bases.
    Grad,
    /// x ⊙ ∂f/∂x: only the base present scores.
    #[value(name = "grad_x_input", alias = "grad-x-input")]
    GradXInput,
    /// Integrated gradients from --baseline; the scores of a record sum to f(x) − f(baseline).
    #[value(
        name = "integrated_gradients",
        alias = "integrated-gradients",
        alias = "ig"
    )]
    IntegratedGradients,
    /// In-silico mutagenesis: f(x with that base) − f(x); 0 for the reference base.
    Ism,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineArg {
    /// No base anywhere (all-zero one-hot).
    Zeros,
    /// 0.25 for every base at every position.
    Uniform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuadratureArg {
    /// Trapezoid rule on --steps equally spaced points, both ends included.
    Trapezoid,
    /// --steps-point Gauss–Legendre rule.
    #[value(name = "gauss_legendre", alias = "gauss-legendre")]
    GaussLegendre,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A run folder written by `seqgrad train` (model.json, weights.safetensors, labels.json).
    #[arg(long, conflicts_with_all = ["model", "weights"])]
    pub run: Option<PathBuf>,
    /// The model file (JSON), with --weights.
    #[arg(long, requires = "weights")]
    pub model: Option<PathBuf>,
    /// The weights (safetensors), with --model.
    #[arg(long, requires = "model")]
    pub weights: Option<PathBuf>,
    /// Sequences (CSV, TSV or FASTA, read as by `train`; labels are not needed).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataOptions,
    #[command(flatten)]
    pub pick: RecordArgs,
    /// Saliency method.
    #[arg(long, value_enum, default_value = "integrated_gradients")]
    pub method: MethodArg,
    /// The class whose logit is explained (name or 0-based index). Default: each record's
    /// predicted class (largest output).
    #[arg(long, value_name = "CLASS")]
    pub target: Option<String>,
    /// Integrated-gradients baseline.
    #[arg(long, value_enum, default_value = "zeros")]
    pub baseline: BaselineArg,
    /// Integrated-gradients integrand evaluations (path points).
    #[arg(long, default_value_t = saliency::DEFAULT_STEPS)]
    pub steps: usize,
    /// Integrated gradients: a record whose completeness error exceeds 1% is recomputed with
    /// twice the steps, up to this many (set it to --steps to turn refinement off).
    #[arg(long, default_value_t = saliency::DEFAULT_MAX_STEPS)]
    pub max_steps: usize,
    /// Integrated-gradients quadrature rule.
    #[arg(long, value_enum, default_value = "gauss_legendre")]
    pub quadrature: QuadratureArg,
    /// Output TSV: `id position A C G T`, one row per record and 1-based position.
    #[arg(long)]
    pub out: PathBuf,
    /// Also draw one saliency logo per record into this folder (`saliency_<id>.png` and `.svg`:
    /// bases as letters scaled by score, positive up, negative down).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Most model inputs per forward/backward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || run_inner(a))
}

fn options(a: &Args) -> Options {
    Options {
        method: match a.method {
            MethodArg::Grad => Method::Grad,
            MethodArg::GradXInput => Method::GradXInput,
            MethodArg::IntegratedGradients => Method::IntegratedGradients,
            MethodArg::Ism => Method::Ism,
        },
        baseline: match a.baseline {
            BaselineArg::Zeros => Baseline::Zeros,
            BaselineArg::Uniform => Baseline::Uniform,
        },
        steps: a.steps,
        quadrature: match a.quadrature {
            QuadratureArg::Trapezoid => Quadrature::Trapezoid,
            QuadratureArg::GaussLegendre => Quadrature::GaussLegendre,
        },
        tolerance: saliency::DEFAULT_TOLERANCE,
        max_steps: a.max_steps,
        batch_size: a.batch_size,
    }
}

fn run_inner(a: &Args) -> Result<()> {
    if a.run.is_none() && a.model.is_none() {
        return Err(Error::Usage(
            "give --run RUN_DIR, or --model M.json and --weights W.safetensors".into(),
        ));
    }
    if a.steps == 0 || a.batch_size == 0 {
        return Err(Error::Usage(
            "--steps and --batch-size must be at least 1".into(),
        ));
    }
    let src = Source::resolve(a.run.as_deref(), a.model.as_deref(), a.weights.as_deref())?;
    let spec = ModelSpec::from_file(&src.model)?;
    let wpath = src
        .weights
        .clone()
        .ok_or_else(|| Error::Usage("saliency needs trained weights (--weights)".into()))?;
    let (tensors, dtype) = read_weights(&wpath)?;
    let mut model = build_model::<f64>(&spec, 0, Some((&wpath, &tensors)))?;
    let labels = src.labels.as_deref().map(Labels::load).transpose()?;
    let data = a.data_args.clone();
    let (_, target) = class_target(
        &model,
        &src.model,
        "saliency",
        &data,
        labels.as_ref(),
        a.target.as_deref(),
    )?;
    let (ds, labels) = load_records::<f64>(
        &a.data,
        &data,
        &a.pick.pick(),
        None,
        labels.as_ref(),
        &model,
        false,
    )?;
    crate::train::check_fit(&model, ds.seq_len(), labels.outputs())?;
    let opts = options(a);
    let sal = of_records(&mut model, &ds, target, &opts)?.saliency;
    crate::weights::write_atomic(
        &a.out,
        saliency::to_tsv_lengths(&ds.ids, &sal.scores, ds.lengths.as_deref()).as_bytes(),
    )?;
    let target_text = match target {
        Some(c) => format!("class {}", class_name(&labels, c)),
        None => "each record's predicted class".into(),
    };
    let lengths = match ds.lengths.as_deref() {
        Some(l) => match (l.iter().min(), l.iter().max()) {
            (Some(lo), Some(hi)) if lo != hi => format!("{lo}–{hi}"),
            _ => ds.seq_len().to_string(),
        },
        None => ds.seq_len().to_string(),
    };
    let mut s = format!(
        "{}: {} records × {lengths} bp of {}, logit of {target_text}, model {} ({dtype} weights, run in F64)\n",
        opts.method.name(),
        ds.len(),
        a.data.display(),
        wpath.display()
    );
    if let Some(err) = sal.completeness_error() {
        s.push_str(&completeness_line(&err, &sal.steps_used, &opts));
    }
    s.push_str(&format!("scores: {}\n", a.out.display()));
    if let Some(dir) = &a.plot {
        let about = |id: &str| {
            let class = ds
                .ids
                .iter()
                .position(|r| r == id)
                .and_then(|r| sal.targets.get(r))
                .map_or("?".to_string(), |&c| {
                    labels
                        .positive()
                        .or(labels.classes.get(c).map(String::as_str))
                        .map_or_else(|| c.to_string(), str::to_string)
                });
            format!("target class {class}, {}", opts.method.name())
        };
        let files = crate::plot::saliency_logos_titled(&a.out, dir, &about)?;
        s.push_str(&format!(
            "logos: {} files in {}\n",
            files.len(),
            dir.display()
        ));
    }
    print_stdout(&s)
}

/// The completeness errors' summary, with the options in command-line spelling.
pub fn completeness_line(err: &[f64], steps_used: &[usize], opts: &Options) -> String {
    let worst = err.iter().cloned().fold(0.0, f64::max);
    let mean = err.iter().sum::<f64>() / err.len().max(1) as f64;
    let refined = steps_used.iter().filter(|&&k| k > opts.steps).count();
    let most = steps_used.iter().copied().max().unwrap_or(opts.steps);
    format!(
        "completeness |Σ scores − (f(x) − f(baseline))| / |f(x) − f(baseline)|: worst {worst:.2e}, mean {mean:.2e} (--quadrature {} --steps {}: {refined} records refined up to {most} steps; --baseline {})\n",
        opts.quadrature.name(),
        opts.steps,
        opts.baseline.name()
    )
}
