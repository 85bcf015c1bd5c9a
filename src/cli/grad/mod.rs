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

use crate::cli::args::{Dtype, RecordArgs};
use crate::cli::format::print_stdout;
use crate::run::DataOptions;

mod summary;
use crate::data::Labels;
use crate::error::{Error, Result};
use crate::run::grad;
use crate::run::source::{build_model, class_target, load_records, Source};
use crate::spec::ModelSpec;
use crate::tensor::Float;
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
    pub data_args: DataOptions,
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
    let stored = src.read_weights(args.dtype.map(Dtype::name))?;
    let dtype = stored
        .as_ref()
        .map_or(args.dtype.map_or("F32", Dtype::name), |s| s.2);
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
    let data = args.data_args.clone();
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
    print_stdout(&summary::summary(
        &g,
        &model,
        &labels,
        &format!("{} ({})", data_path.display(), summary::ids(&ds.ids)),
        &model_text,
    ))?;
    if let Some(out) = &args.out {
        g.save(out, args.record_steps, stored.is_none().then_some(&model))?;
    }
    Ok(())
}
