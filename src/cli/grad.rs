//! `seqgrad grad`: exact gradients of a model for one input batch, given as tensors
//! (`--input`) or as records of a data file (`--data`).
//!
//! ```text
//! seqgrad grad --model MODEL.json --weights W.safetensors --input IN.safetensors --out OUT.safetensors
//! seqgrad grad --run RUN --data FILE [--records N | --ids a,b] [--target CLASS] [--out OUT.safetensors]
//! ```
//!
//! **`--data` mode**: the records (the first [`DEFAULT_RECORDS`] unless `--records`/`--ids`) are
//! read as by `train` (same column and length options). The upstream gradient is that of the
//! mean loss against their labels (the loss `train` minimises for the model's head), or with
//! `--target CLASS` that of the sum over records of that class's logit. It prints the loss,
//! ‖∂L/∂input‖, per layer ‖∂L/∂output‖ and ‖∂L/∂θ‖ of each parameter tensor, and per recurrent
//! layer and direction the batch-mean ‖∂L/∂h_t‖ at the first, middle and last step; `--out`
//! gets `input`, `output`, `logit_grad` (the upstream gradient at the logits), `input_grad`,
//! `grad.<name>` and, with `--record-steps`, the norms below. `--run RUN` stands for
//! `--model RUN/model.json --weights RUN/weights.safetensors` (class names from
//! `RUN/labels.json`, or a labels.json next to `--weights`).
//!
//! **`--input` mode**:
//! `IN` holds `input` `(batch, …input_shape)` and `output_grad` `(batch, …output_shape)`. The
//! model runs in eval mode (dropout off) in the dtype of the weights file (F64 → f64, F32 → f32;
//! `IN`'s tensors are converted to it). `OUT` gets, in the same dtype:
//! - `output`: the model output, final softmax/sigmoid included;
//! - `input_grad`: ∂/∂input of `sum(output ⊙ output_grad)`;
//! - `grad.<name>` for every parameter (`grad.layers.0.weight` …);
//! - without `--weights`, the seeded initial weights (`--seed`, `--dtype`) under their own names;
//! - with `--record-steps`, the raw material of gradient-flow studies:
//!   `output_grad_norm` `(layers)`, ‖∂L/∂output_i‖ of every layer i over the batch, and
//!   `step_grad_norm.layers.{i}.{forward|reverse}` `(batch, length)`, ‖∂L/∂h_t‖ of every
//!   recurrent layer at every time step (the total gradient reaching h_t, in original time order).
//!
//! A file written by `grad` can be passed back as `--weights`: its `output`, `input_grad` and
//! `grad.*` tensors are ignored there. Every user error is one line (exit code 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::args::{DataArgs, Dtype, RecordArgs};
use crate::cli::format::print_stdout;
use crate::data::Labels;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::run::grad::{self, Grads, Objective};
use crate::run::source::{build_model, class_target, load_records, read_weights, Source};
use crate::spec::ModelSpec;
use crate::tensor::{fmt_shape, l2_norm, Float};
use crate::weights::StoredTensor;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file (JSON).
    #[arg(long, conflicts_with = "run", required_unless_present = "run")]
    pub model: Option<PathBuf>,
    /// Weights (safetensors); the model runs in their dtype. Default: seeded initial weights.
    #[arg(long, conflicts_with = "run")]
    pub weights: Option<PathBuf>,
    /// A run folder written by `seqgrad train` (model.json, weights.safetensors, labels.json);
    /// instead of --model/--weights.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Tensors `input` (batch, …input_shape) and `output_grad` (batch, …output_shape).
    #[arg(long, conflicts_with = "data", required_unless_present = "data")]
    pub input: Option<PathBuf>,
    /// Sequences (CSV, TSV or FASTA, read as by `train`): gradients of the loss against each
    /// record's labels (or of --target) for the records picked by --records/--ids.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub data_args: DataArgs,
    #[command(flatten)]
    pub pick: RecordArgs,
    /// With --data: instead of the loss, the gradient of this output unit's logit (class name
    /// or 0-based index), summed over the records.
    #[arg(long, value_name = "CLASS")]
    pub target: Option<String>,
    /// Where to write `output`, `input_grad` and `grad.<name>` (safetensors, atomically);
    /// required with --input, optional with --data.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the initial weights when no --weights are given.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Element type when no --weights are given (with --weights: the file's dtype).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    /// Also write per-layer output-gradient norms and per-time-step ‖∂L/∂h_t‖ of recurrent layers.
    #[arg(long)]
    pub record_steps: bool,
}

/// How many records `grad --data` takes without --records/--ids: one training batch.
pub const DEFAULT_RECORDS: usize = 64;

type Stored<'a> = Option<(&'a Path, &'a BTreeMap<String, StoredTensor>)>;

pub fn run(args: &Args) -> Result<()> {
    let src = Source::resolve(
        args.run.as_deref(),
        args.model.as_deref(),
        args.weights.as_deref(),
    )?;
    let spec = ModelSpec::from_file(&src.model)?;
    let stored = match &src.weights {
        Some(path) => {
            let (t, dtype) = read_weights(path)?;
            if let Some(d) = args.dtype.filter(|d| d.name() != dtype) {
                return Err(Error::Usage(format!(
                    "--dtype {} but the weights file {} is {dtype}; the model runs in the weights' dtype (drop --dtype)",
                    d.name().to_lowercase(),
                    path.display()
                )));
            }
            Some((path.as_path(), t, dtype))
        }
        None => None,
    };
    let dtype = match (&stored, args.dtype) {
        (Some((_, _, d)), _) => *d,
        (None, Some(d)) => d.name(),
        (None, None) => "F32",
    };
    let weights = stored.as_ref().map(|(p, t, _)| (*p, t));
    match (&args.input, &args.data) {
        (Some(input), _) => {
            let out = args.out.as_ref().ok_or_else(|| {
                Error::Usage(
                    "--input needs --out OUT.safetensors (where to write the gradients)".into(),
                )
            })?;
            if args.target.is_some() || args.pick.records.is_some() || !args.pick.ids.is_empty() {
                return Err(Error::Usage(
                    "--target, --records and --ids go with --data, not --input".into(),
                ));
            }
            let inputs = grad::read_input_file(input)?;
            crate::memory::check_fits_inputs(&spec, &inputs, dtype)?;
            if dtype == "F64" {
                run_input::<f64>(args, input, out, &spec, weights, &inputs)
            } else {
                run_input::<f32>(args, input, out, &spec, weights, &inputs)
            }
        }
        (None, Some(data)) => {
            let labels = src.labels.as_deref().map(Labels::load).transpose()?;
            if dtype == "F64" {
                run_data::<f64>(args, data, &src, &spec, weights, labels.as_ref())
            } else {
                run_data::<f32>(args, data, &src, &spec, weights, labels.as_ref())
            }
        }
        (None, None) => Err(Error::Usage(
            "give --data FILE or --input IN.safetensors".into(),
        )),
    }
}

/// `--input` mode: the gradients of `sum(output ⊙ output_grad)` into `--out`.
fn run_input<T: Float>(
    args: &Args,
    input: &Path,
    out: &Path,
    spec: &ModelSpec,
    stored: Stored<'_>,
    inputs: &BTreeMap<String, StoredTensor>,
) -> Result<()> {
    let mut model = build_model::<T>(spec, args.seed, stored)?;
    let (x, og) = grad::check_inputs(input, inputs, &model)?;
    let g = grad::of_output_grad(&mut model, x, og, args.record_steps)?;
    g.save(out, args.record_steps, stored.is_none().then_some(&model))
}

/// `--data` mode: gradients of the mean loss (or of the summed --target logit) for the picked
/// records, a human summary on stdout, and the tensors in `--out` if given.
fn run_data<T: Float>(
    args: &Args,
    data_path: &Path,
    src: &Source,
    spec: &ModelSpec,
    stored: Stored<'_>,
    labels: Option<&Labels>,
) -> Result<()> {
    let mut model = build_model::<T>(spec, args.seed, stored)?;
    let data = args.data_args.options();
    let (_, target) = class_target(
        &model,
        &src.model,
        "--data",
        &data,
        labels,
        args.target.as_deref(),
    )?;
    let pick = args.pick.pick();
    let (ds, labels) = load_records::<T>(
        data_path,
        &data,
        &pick,
        Some(DEFAULT_RECORDS),
        labels,
        &model,
        target.is_none(),
    )?;
    crate::train::check_fit(&model, ds.seq_len(), labels.outputs())?;
    let objective = grad::objective_for(&model, target);
    let g = grad::of_records(&mut model, &ds, objective)?;
    let model_text = src
        .weights
        .as_ref()
        .map(|w| w.display().to_string())
        .unwrap_or_else(|| {
            format!(
                "{} (seeded weights, seed {})",
                src.model.display(),
                args.seed
            )
        });
    print_stdout(&summary(
        &g,
        &model,
        &labels,
        &format!("{} ({})", data_path.display(), summarize_ids(&ds.ids)),
        &model_text,
    ))?;
    if let Some(out) = &args.out {
        g.save(out, args.record_steps, stored.is_none().then_some(&model))?;
    }
    Ok(())
}

/// The human summary of `grad --data`.
fn summary<T: Float>(
    g: &Grads<T>,
    model: &crate::model::Sequential<T>,
    labels: &Labels,
    records: &str,
    model_text: &str,
) -> String {
    let n = g.input.shape()[0];
    let value = g.value.unwrap_or(f64::NAN);
    let (kind, what) = match &g.objective {
        Objective::Logit(c) => (
            "target",
            format!(
                "L = sum over records of the logit of class {c} ({})",
                grad::class_name(labels, *c)
            ),
        ),
        Objective::Loss(l) => {
            let name = match l {
                Loss::CrossEntropy => "cross-entropy",
                Loss::BinaryCrossEntropy => "binary cross-entropy",
                Loss::MeanSquaredError => "mean squared error",
            };
            ("loss", format!("L = mean {name} loss against the records' labels"))
        }
        Objective::OutputGrad => ("output_grad", String::new()),
    };
    let mut s = format!(
        "{kind}: {n} records of {records}, model {model_text} in {}\n{what}\n",
        T::DTYPE
    );
    if kind == "target" {
        s.push_str(&format!("mean target logit {value:.6}\n"));
    } else {
        s.push_str(&format!("loss {value:.6}\n"));
    }
    s.push_str(&format!(
        "‖∂L/∂input‖ {:.3e} (all records; per record mean {:.3e})\n",
        l2_norm(&g.input_grad.view()),
        g.input_grad.outer_iter().map(|r| l2_norm(&r)).sum::<f64>() / n as f64
    ));
    s.push_str("per layer (‖∂L/∂output‖ of the layer, then ‖∂L/∂θ‖ of each parameter tensor):\n");
    for (i, layer) in model.layers().iter().enumerate() {
        s.push_str(&format!(
            "  {i:>2}  {:<28} ‖∂L/∂out‖ {:.3e}\n",
            layer.kind(),
            g.layer_norms.get(i).copied().unwrap_or(0.0)
        ));
        for p in layer.params() {
            s.push_str(&format!(
                "        {:<30} {:<14} ‖∂L/∂θ‖ {:.3e}\n",
                format!("layers.{i}.{}", p.name),
                fmt_shape(p.value.shape()),
                l2_norm(&p.grad.view())
            ));
        }
    }
    let mut any = false;
    for st in g.step_norms.iter().filter(|st| st.norms.shape()[1] > 0) {
        if !any {
            s.push_str("per-step ‖∂L/∂h_t‖ (mean over records) at the first, middle and last step:\n");
            any = true;
        }
        let len = st.norms.shape()[1];
        let mean = st.norms.mean_axis(ndarray::Axis(0)).unwrap_or_default();
        let cells: Vec<String> = [0, (len - 1) / 2, len - 1]
            .iter()
            .map(|&t| format!("t={} {:.3e}", t + 1, mean[t]))
            .collect();
        s.push_str(&format!(
            "  layers.{} {:<8} {}   (first/last {:.2e})\n",
            st.layer,
            st.direction,
            cells.join("  "),
            mean[0] / mean[len - 1]
        ));
    }
    s
}

/// `seq1 … seq64` style description of the records used.
fn summarize_ids(ids: &[String]) -> String {
    match ids {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a}, {b}"),
        [a, b, c] => format!("{a}, {b}, {c}"),
        [a, .., z] => format!("{a} … {z}"),
    }
}
