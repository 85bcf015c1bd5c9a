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

use ndarray::{ArrayD, ArrayViewD};

use crate::cli::train::DataArgs;
use crate::data::{self, Dataset, Labels, RawData, ReadOptions};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::spec::ModelSpec;
use crate::tensor::{fmt_batched, fmt_shape, is_batched, l2_norm, Float, Mode};
use crate::weights::{self, StoredTensor};

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

/// Which records of a data file to use.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordArgs {
    /// Use the first N records of --data.
    #[arg(long, value_name = "N", conflicts_with = "ids")]
    pub records: Option<usize>,
    /// Use the records with these ids (comma-separated), in this order.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub ids: Vec<String>,
}

impl RecordArgs {
    /// The indices of the picked records (`default`: how many of the first records to take
    /// when neither --records nor --ids is given; `None`: all).
    pub fn pick(&self, raw: &RawData, default: Option<usize>) -> Result<Vec<usize>> {
        let n = raw.records.len();
        if !self.ids.is_empty() {
            return self
                .ids
                .iter()
                .map(|id| {
                    raw.records
                        .iter()
                        .position(|r| &r.id == id)
                        .ok_or_else(|| Error::Data {
                            path: raw.path.clone(),
                            msg: format!("no record with id {id:?} (--ids)"),
                        })
                })
                .collect();
        }
        let take = match (self.records, default) {
            (Some(0), _) => return Err(Error::Usage("--records must be at least 1".into())),
            (Some(k), _) | (None, Some(k)) => k.min(n),
            (None, None) => n,
        };
        if take == 0 {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: "no records".into(),
            });
        }
        Ok((0..take).collect())
    }
}

/// A class given by name (as in labels.json) or 0-based index.
pub fn resolve_target(s: &str, labels: Option<&Labels>, outputs: usize) -> Result<usize> {
    if let Some(l) = labels.filter(|l| l.binary) {
        // a binary head has one output: the logit of the positive class
        return match (l.positive(), s) {
            (Some(p), _) if p == s => Ok(0),
            (_, "0") => Ok(0),
            _ => Err(Error::Usage(format!(
                "--target {s:?}: this binary model has one output, the logit of {:?} (give --target {:?} or 0)",
                l.positive().unwrap_or(""),
                l.positive().unwrap_or("")
            ))),
        };
    }
    if let Some(i) = labels.and_then(|l| l.index(s)) {
        return Ok(i);
    }
    match s.parse::<usize>() {
        Ok(i) if i < outputs => Ok(i),
        _ => Err(Error::Usage(format!(
            "--target {s:?} is neither a class name{} nor an output index 0–{}",
            labels
                .map(|l| format!(" ({})", l.classes.join(", ")))
                .unwrap_or_else(|| " (no labels.json is known)".into()),
            outputs.saturating_sub(1)
        ))),
    }
}

/// Where the model, its weights and its class names come from (data modes).
pub struct Source {
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
    pub labels: Option<PathBuf>,
}

impl Source {
    /// From --run, or --model with optional --weights (labels.json next to the weights, if any).
    pub fn resolve(
        run: Option<&Path>,
        model: Option<&Path>,
        weights: Option<&Path>,
    ) -> Result<Source> {
        match (run, model) {
            (Some(r), _) => {
                let labels = r.join("labels.json");
                Ok(Source {
                    model: r.join("model.json"),
                    weights: Some(r.join("weights.safetensors")),
                    labels: labels.exists().then_some(labels),
                })
            }
            (None, Some(m)) => {
                let labels =
                    weights.map(|w| w.parent().unwrap_or(Path::new(".")).join("labels.json"));
                Ok(Source {
                    model: m.to_path_buf(),
                    weights: weights.map(Path::to_path_buf),
                    labels: labels.filter(|l| l.exists()),
                })
            }
            (None, None) => Err(Error::Usage(
                "give --run RUN_DIR, or --model M.json (and --weights W.safetensors)".into(),
            )),
        }
    }
}

/// Reads a weights file, leaving out the tensors a `grad` output adds; returns its dtype too.
pub fn read_weights(path: &Path) -> Result<(BTreeMap<String, StoredTensor>, &'static str)> {
    let mut t = weights::read_tensors(path)?;
    t.retain(|name, _| !is_grad_output(name));
    let dtype = weights::dtype_of(&t).map_err(|msg| Error::Weights {
        path: path.display().to_string(),
        msg,
    })?;
    Ok((t, dtype))
}

/// Builds a model and loads weights into it, converting them to `T` whatever their dtype.
pub fn build_model<T: Float>(
    spec: &ModelSpec,
    seed: u64,
    stored: Option<(&Path, &BTreeMap<String, StoredTensor>)>,
) -> Result<Sequential<T>> {
    let mut model = Sequential::<T>::from_spec(spec, seed)?;
    if let Some((path, tensors)) = stored {
        let mut as_t = tensors.clone();
        for t in as_t.values_mut() {
            t.dtype = T::DTYPE;
        }
        weights::load_from(&mut model, &as_t).map_err(|msg| Error::Weights {
            path: path.display().to_string(),
            msg,
        })?;
    }
    Ok(model)
}

/// Reads `path` with the data options, keeps the picked records and encodes them. With
/// `need_labels` the records must carry labels (of `labels`' classes, or of the file's own
/// sorted classes when `labels` is None); otherwise labels are ignored. `model` gives the
/// number of outputs and its head (a binary head), and whether records may have mixed lengths
/// (a model of any length: the data set then keeps each record's length).
pub fn load_records<T: Float>(
    path: &Path,
    data_args: &DataArgs,
    pick: &RecordArgs,
    default_count: Option<usize>,
    labels: Option<&Labels>,
    model: &crate::model::Sequential<T>,
    need_labels: bool,
) -> Result<(Dataset<T>, Labels)> {
    let policy = data_args.policy()?.for_model(model);
    let outputs = model.output_shape().iter().product::<usize>();
    let head = model.head();
    let opts = ReadOptions {
        require_labels: need_labels,
        multi_label: data_args.multi_label || labels.is_some_and(|l| l.multi_label),
        ..data_args.read_options()
    };
    let mut raw = data::read(path, &opts)?;
    let labels = match labels {
        Some(l) => l.clone(),
        None if need_labels => Labels::from_data(&raw)?.for_model(&[outputs], head, &raw.path)?,
        None => Labels {
            classes: (0..outputs).map(|i| format!("class{i}")).collect(),
            multi_label: false,
            binary: false,
        },
    };
    let idx = pick.pick(&raw, default_count)?;
    raw.records = idx.iter().map(|&i| raw.records[i].clone()).collect();
    let ds = data::encode::<T>(&raw, &labels, policy, need_labels)?;
    Ok((ds, labels))
}

/// Element type of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
        }
    }
}

/// Names a `grad` output file holds besides the weights.
fn is_grad_output(name: &str) -> bool {
    name == "output"
        || name == "input_grad"
        || name == "output_grad_norm"
        || name.starts_with("grad.")
        || name.starts_with("step_grad_norm.")
}

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
            let inputs = read_inputs(input)?;
            crate::memory::check_fits_inputs(&spec, &inputs, dtype)?;
            if dtype == "F64" {
                run_typed::<f64>(args, input, out, &spec, weights, &inputs)
            } else {
                run_typed::<f32>(args, input, out, &spec, weights, &inputs)
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

fn read_inputs(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    weights::parse_tensors(&bytes).map_err(|msg| Error::Data {
        path: path.display().to_string(),
        msg,
    })
}

fn input_error(path: &Path, msg: String) -> Error {
    Error::Data {
        path: path.display().to_string(),
        msg,
    }
}

fn with_batch(batch: usize, shape: &[usize]) -> String {
    let inner: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({batch}, {})", inner.join(", "))
}

fn run_typed<T: Float>(
    args: &Args,
    input: &Path,
    out: &Path,
    spec: &ModelSpec,
    stored: Option<(&Path, &BTreeMap<String, StoredTensor>)>,
    inputs: &BTreeMap<String, StoredTensor>,
) -> Result<()> {
    let mut model = build_model::<T>(spec, args.seed, stored)?;
    let names: Vec<&str> = inputs.keys().map(|k| k.as_str()).collect();
    let holds = if names.is_empty() {
        "no tensors".to_string()
    } else {
        names.join(", ")
    };
    let x = inputs.get("input").ok_or_else(|| {
        input_error(
            input,
            format!(
                "no tensor named `input` {}; the file holds: {holds}",
                fmt_batched(model.input_shape())
            ),
        )
    })?;
    let in_shape = model.input_shape().to_vec();
    if !is_batched(&in_shape, x.array.shape()) || x.array.shape()[0] == 0 {
        return Err(input_error(
            input,
            format!(
                "tensor `input` has shape {} but the model takes {} with batch ≥ 1",
                fmt_shape(x.array.shape()),
                fmt_batched(&in_shape)
            ),
        ));
    }
    let batch = x.array.shape()[0];
    let out_shape = model.output_shape().to_vec();
    let og = inputs.get("output_grad").ok_or_else(|| {
        input_error(
            input,
            format!(
                "no tensor named `output_grad` (shaped like the model output {}); the file holds: {holds}",
                with_batch(batch, &out_shape)
            ),
        )
    })?;
    let mut want = vec![batch];
    want.extend_from_slice(&out_shape);
    if og.array.shape() != want.as_slice() {
        return Err(input_error(
            input,
            format!(
                "tensor `output_grad` has shape {} but the model output for this input is {}",
                fmt_shape(og.array.shape()),
                fmt_shape(&want)
            ),
        ));
    }
    let x: ArrayD<T> = x.array.mapv(T::lit);
    let og: ArrayD<T> = og.array.mapv(T::lit);
    model.zero_grad();
    model.set_record_step_grads(args.record_steps);
    let output = model.forward(x.view(), Mode::Eval)?;
    let input_grad = model.backward(og.view())?;
    let mut records: Vec<(String, ArrayD<T>)> = Vec::new();
    if args.record_steps {
        let norms =
            ndarray::Array1::from_iter(model.output_grad_norms().iter().map(|&v| T::lit(v)));
        records.push(("output_grad_norm".into(), norms.into_dyn()));
        for (i, layer) in model.layers().iter().enumerate() {
            for (direction, norms) in layer.step_grad_norms() {
                records.push((
                    format!("step_grad_norm.layers.{i}.{direction}"),
                    norms.mapv(T::lit).into_dyn(),
                ));
            }
        }
    }

    let named = model.named_params();
    let grad_names: Vec<String> = named.iter().map(|(n, _)| format!("grad.{n}")).collect();
    let mut tensors: Vec<(String, ArrayViewD<'_, T>)> = vec![
        ("output".into(), output.view()),
        ("input_grad".into(), input_grad.view()),
    ];
    for ((_, p), gname) in named.iter().zip(&grad_names) {
        tensors.push((gname.clone(), p.grad.view()));
    }
    for (n, a) in &records {
        tensors.push((n.clone(), a.view()));
    }
    if stored.is_none() {
        for (n, p) in &named {
            tensors.push((n.clone(), p.value.view()));
        }
    }
    weights::write_tensors(out, &tensors)
}

/// Shapes `(batch, length, 4)` records for the model (flattened for a flat input).
fn model_input<T: Float>(model: &Sequential<T>, x: ndarray::Array3<T>) -> ArrayD<T> {
    if model.input_shape().len() == 1 {
        let (b, l, c) = x.dim();
        crate::tensor::reshape(x, &[b, l * c])
    } else {
        x.into_dyn()
    }
}

/// `--data` mode: gradients of the mean loss (or of the summed --target logit) for the picked
/// records, a human summary on stdout, and the tensors in `--out` if given.
fn run_data<T: Float>(
    args: &Args,
    data_path: &Path,
    src: &Source,
    spec: &ModelSpec,
    stored: Option<(&Path, &BTreeMap<String, StoredTensor>)>,
    labels: Option<&Labels>,
) -> Result<()> {
    let mut model = build_model::<T>(spec, args.seed, stored)?;
    let outputs = match model.output_shape() {
        [k] => *k,
        other => {
            return Err(Error::Usage(format!(
                "--data needs a model with a flat output (classes), but {} outputs {}",
                src.model.display(),
                fmt_shape(other)
            )))
        }
    };
    if let Some(t) = args.data_args.policy()?.target()? {
        crate::train::check_input_len(&model, t)?;
    }
    let target = args
        .target
        .as_deref()
        .map(|t| resolve_target(t, labels, outputs))
        .transpose()?;
    let (ds, labels) = load_records::<T>(
        data_path,
        &args.data_args,
        &args.pick,
        Some(DEFAULT_RECORDS),
        labels,
        &model,
        target.is_none(),
    )?;
    crate::train::check_fit(&model, ds.seq_len(), labels.outputs())?;
    let n = ds.len();
    let x = model_input(&model, ds.x.clone());
    model.zero_grad();
    model.set_record_step_grads(true);
    // records of mixed lengths (a model of any length) are masked past their own length
    let logits = model.forward_logits_masked(x.view(), ds.lengths.as_deref(), Mode::Eval)?;
    let (value, upstream, what) = match target {
        None => {
            let loss_fn = Loss::for_head(model.head());
            let y = ds.y.clone().into_dyn();
            let (loss, g) = loss_fn.compute(logits.view(), y.view())?;
            let name = match loss_fn {
                Loss::CrossEntropy => "cross-entropy",
                Loss::BinaryCrossEntropy => "binary cross-entropy",
                Loss::MeanSquaredError => "mean squared error",
            };
            (
                loss,
                g,
                format!("L = mean {name} loss against the records' labels"),
            )
        }
        Some(c) => {
            let mut g = ArrayD::<T>::zeros(logits.raw_dim());
            let mut sum = 0.0;
            for i in 0..n {
                g[[i, c]] = T::one();
                sum += logits[[i, c]].to_f64c();
            }
            (
                sum / n as f64,
                g,
                format!(
                    "L = sum over records of the logit of class {c} ({})",
                    labels
                        .positive()
                        .or(labels.classes.get(c).map(String::as_str))
                        .unwrap_or("?")
                ),
            )
        }
    };
    let input_grad = model.backward_logits(upstream.view())?;
    let mut output = logits.clone();
    if let Some(h) = model.head() {
        h.forward_inplace(output.view_mut());
    }

    // The summary.
    let mut s = format!(
        "{}: {n} records of {} ({}), model {} in {}\n{what}\n",
        if target.is_some() { "target" } else { "loss" },
        data_path.display(),
        summarize_ids(&ds.ids),
        src.weights
            .as_ref()
            .map(|w| w.display().to_string())
            .unwrap_or_else(|| format!(
                "{} (seeded weights, seed {})",
                src.model.display(),
                args.seed
            )),
        T::DTYPE
    );
    if target.is_some() {
        s.push_str(&format!("mean target logit {value:.6}\n"));
    } else {
        s.push_str(&format!("loss {value:.6}\n"));
    }
    s.push_str(&format!(
        "‖∂L/∂input‖ {:.3e} (all records; per record mean {:.3e})\n",
        l2_norm(&input_grad.view()),
        input_grad.outer_iter().map(|r| l2_norm(&r)).sum::<f64>() / n as f64
    ));
    s.push_str("per layer (‖∂L/∂output‖ of the layer, then ‖∂L/∂θ‖ of each parameter tensor):\n");
    let out_norms = model.output_grad_norms().to_vec();
    for (i, layer) in model.layers().iter().enumerate() {
        s.push_str(&format!(
            "  {i:>2}  {:<28} ‖∂L/∂out‖ {:.3e}\n",
            layer.kind(),
            out_norms.get(i).copied().unwrap_or(0.0)
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
    for (i, layer) in model.layers().iter().enumerate() {
        for (direction, norms) in layer.step_grad_norms() {
            let len = norms.shape()[1];
            if len == 0 {
                continue;
            }
            if !any {
                s.push_str(
                    "per-step ‖∂L/∂h_t‖ (mean over records; t 0-based in sequence order) at the first, \
                     middle and last step; first/last: the step farthest from the output over \
                     the nearest, in processing order:\n",
                );
                any = true;
            }
            let mean = crate::layers::rnn::step_means(&norms);
            let at = [0, (len - 1) / 2, len - 1];
            let cells: Vec<String> = at
                .iter()
                .map(|&t| format!("t={t} {:.3e}", mean[t]))
                .collect();
            let ratio = crate::layers::rnn::first_last_ratio(&mean, direction == "reverse");
            s.push_str(&format!(
                "  layers.{i} {direction:<8} {}   (first/last {ratio:.2e})\n",
                cells.join("  "),
            ));
        }
    }
    crate::cli::train::print_stdout(&s)?;

    if let Some(out) = &args.out {
        let mut records: Vec<(String, ArrayD<T>)> = vec![
            ("input".into(), x.clone()),
            ("output".into(), output),
            ("logit_grad".into(), upstream),
            ("input_grad".into(), input_grad),
        ];
        if args.record_steps {
            records.push((
                "output_grad_norm".into(),
                ndarray::Array1::from_iter(out_norms.iter().map(|&v| T::lit(v))).into_dyn(),
            ));
            for (i, layer) in model.layers().iter().enumerate() {
                for (direction, norms) in layer.step_grad_norms() {
                    records.push((
                        format!("step_grad_norm.layers.{i}.{direction}"),
                        norms.mapv(T::lit).into_dyn(),
                    ));
                }
            }
        }
        let named = model.named_params();
        let mut tensors: Vec<(String, ArrayViewD<'_, T>)> =
            records.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        for (name, p) in &named {
            tensors.push((format!("grad.{name}"), p.grad.view()));
        }
        if stored.is_none() {
            for (name, p) in &named {
                tensors.push((name.clone(), p.value.view()));
            }
        }
        weights::write_tensors(out, &tensors)?;
    }
    Ok(())
}

/// How many records `grad --data` takes without --records/--ids: one training batch.
pub const DEFAULT_RECORDS: usize = 64;

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
