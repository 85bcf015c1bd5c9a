//! `seqgrad grad`: exact gradients of a model for one input batch.
//!
//! ```text
//! seqgrad grad --model MODEL.json --weights W.safetensors --input IN.safetensors --out OUT.safetensors
//! ```
//!
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

use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::spec::ModelSpec;
use crate::tensor::{fmt_batched, fmt_shape, is_batched, Float, Mode};
use crate::weights::{self, StoredTensor};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file (JSON).
    #[arg(long)]
    pub model: PathBuf,
    /// Weights (safetensors); the model runs in their dtype. Default: seeded initial weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Tensors `input` (batch, …input_shape) and `output_grad` (batch, …output_shape).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `output`, `input_grad` and `grad.<name>` (safetensors, atomically).
    #[arg(long)]
    pub out: PathBuf,
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
    let spec = ModelSpec::from_file(&args.model)?;
    let stored = match &args.weights {
        Some(path) => {
            let mut t = weights::read_tensors(path)?;
            t.retain(|name, _| !is_grad_output(name));
            let dtype = weights::dtype_of(&t).map_err(|msg| Error::Weights {
                path: path.display().to_string(),
                msg,
            })?;
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
    let inputs = read_inputs(&args.input)?;
    crate::memory::check_fits_inputs(&spec, &inputs, dtype)?;
    let weights = stored.as_ref().map(|(p, t, _)| (*p, t));
    if dtype == "F64" {
        run_typed::<f64>(args, &spec, weights, &inputs)
    } else {
        run_typed::<f32>(args, &spec, weights, &inputs)
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
    spec: &ModelSpec,
    stored: Option<(&Path, &BTreeMap<String, StoredTensor>)>,
    inputs: &BTreeMap<String, StoredTensor>,
) -> Result<()> {
    let mut model = Sequential::<T>::from_spec(spec, args.seed)?;
    if let Some((path, tensors)) = stored {
        weights::load_from(&mut model, tensors).map_err(|msg| Error::Weights {
            path: path.display().to_string(),
            msg,
        })?;
    }
    let names: Vec<&str> = inputs.keys().map(|k| k.as_str()).collect();
    let holds = if names.is_empty() {
        "no tensors".to_string()
    } else {
        names.join(", ")
    };
    let x = inputs.get("input").ok_or_else(|| {
        input_error(
            &args.input,
            format!(
                "no tensor named `input` {}; the file holds: {holds}",
                fmt_batched(model.input_shape())
            ),
        )
    })?;
    let in_shape = model.input_shape().to_vec();
    if !is_batched(&in_shape, x.array.shape()) || x.array.shape()[0] == 0 {
        return Err(input_error(
            &args.input,
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
            &args.input,
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
            &args.input,
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
    weights::write_tensors(&args.out, &tensors)
}
