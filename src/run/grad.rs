//! Exact gradients of a model for one batch, as typed arrays with their names:
//! - [`of_records`]: the mean training loss of encoded records against their labels, or the sum
//!   over records of one class's logit ([`Objective`]); dropout off, records of mixed lengths
//!   masked past their own length;
//! - [`of_output_grad`]: ∂(Σ output ⊙ output_grad)/∂… for a given upstream gradient.
//!
//! Both record ‖∂L/∂output_i‖ of every layer and, per recurrent layer and direction, ‖∂L/∂h_t‖
//! at every step. [`Grads::tensors`] names everything as `seqgrad grad --out` writes it.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayD, ArrayViewD};

use crate::data::{Dataset, Labels};
use crate::error::Result;
use crate::loss::Loss;
use crate::model::Sequential;
use crate::tensor::{Float, Mode};

/// What the gradient is of.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    /// The mean loss against the records' labels (the loss `train` minimises for the head).
    Loss(Loss),
    /// The sum over records of this output unit's logit.
    Logit(usize),
    /// Σ output ⊙ output_grad, for a given `output_grad`.
    OutputGrad,
}

/// ‖∂L/∂h_t‖ of one recurrent layer and direction.
#[derive(Debug, Clone)]
pub struct StepNorms {
    /// The layer's index in the model.
    pub layer: usize,
    /// `forward` or `reverse`.
    pub direction: String,
    /// `(batch, length)`, in sequence order.
    pub norms: Array2<f64>,
}

/// The gradients of one batch.
#[derive(Debug, Clone)]
pub struct Grads<T> {
    pub objective: Objective,
    /// The loss, or the mean target logit (`None` for [`Objective::OutputGrad`]).
    pub value: Option<f64>,
    /// The model input.
    pub input: ArrayD<T>,
    /// The model output, final softmax/sigmoid included.
    pub output: ArrayD<T>,
    /// The upstream gradient: at the logits (records) or at the output (`output_grad`).
    pub upstream: ArrayD<T>,
    /// ∂L/∂input.
    pub input_grad: ArrayD<T>,
    /// ∂L/∂θ by PyTorch parameter name, in model order.
    pub params: Vec<(String, ArrayD<T>)>,
    /// ‖∂L/∂output_i‖ of every layer i over the batch.
    pub layer_norms: Vec<f64>,
    pub step_norms: Vec<StepNorms>,
}

fn collect<T: Float>(
    model: &Sequential<T>,
    objective: Objective,
    value: Option<f64>,
    input: ArrayD<T>,
    output: ArrayD<T>,
    upstream: ArrayD<T>,
    input_grad: ArrayD<T>,
) -> Grads<T> {
    let params = model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.grad.clone()))
        .collect();
    let mut step_norms = Vec::new();
    for (layer, l) in model.layers().iter().enumerate() {
        for (direction, norms) in l.step_grad_norms() {
            step_norms.push(StepNorms {
                layer,
                direction: direction.to_string(),
                norms: norms.clone(),
            });
        }
    }
    Grads {
        objective,
        value,
        input,
        output,
        upstream,
        input_grad,
        params,
        layer_norms: model.output_grad_norms().to_vec(),
        step_norms,
    }
}

/// Gradients of `objective` (a loss or a logit, not [`Objective::OutputGrad`]) for encoded
/// records, in evaluation mode.
pub fn of_records<T: Float>(
    model: &mut Sequential<T>,
    ds: &Dataset<T>,
    objective: Objective,
) -> Result<Grads<T>> {
    let n = ds.len();
    let x = crate::train::eval::model_input(model, ds.x.clone());
    model.zero_grad();
    model.set_record_step_grads(true);
    // records of mixed lengths (a model of any length) are masked past their own length
    let logits = model.forward_logits_masked(x.view(), ds.lengths.as_deref(), Mode::Eval)?;
    let (value, upstream) = match &objective {
        Objective::Logit(c) => {
            let mut g = ArrayD::<T>::zeros(logits.raw_dim());
            let mut sum = 0.0;
            for i in 0..n {
                g[[i, *c]] = T::one();
                sum += logits[[i, *c]].to_f64c();
            }
            (sum / n as f64, g)
        }
        Objective::Loss(loss_fn) => {
            let y = ds.y.clone().into_dyn();
            loss_fn.compute(logits.view(), y.view())?
        }
        Objective::OutputGrad => {
            return Err(crate::error::Error::Usage(
                "an output_grad objective needs of_output_grad".into(),
            ))
        }
    };
    let input_grad = model.backward_logits(upstream.view())?;
    let mut output = logits;
    if let Some(h) = model.head() {
        h.forward_inplace(output.view_mut());
    }
    Ok(collect(
        model,
        objective,
        Some(value),
        x,
        output,
        upstream,
        input_grad,
    ))
}

/// ∂(Σ output ⊙ output_grad)/∂… in evaluation mode (dropout off); per-step norms only when
/// `record_steps`.
pub fn of_output_grad<T: Float>(
    model: &mut Sequential<T>,
    x: ArrayD<T>,
    output_grad: ArrayD<T>,
    record_steps: bool,
) -> Result<Grads<T>> {
    model.zero_grad();
    model.set_record_step_grads(record_steps);
    let output = model.forward(x.view(), Mode::Eval)?;
    let input_grad = model.backward(output_grad.view())?;
    Ok(collect(
        model,
        Objective::OutputGrad,
        None,
        x,
        output,
        output_grad,
        input_grad,
    ))
}

/// The default objective for records: the loss of the model's head, or a class's logit.
pub fn objective_for<T: Float>(model: &Sequential<T>, target: Option<usize>) -> Objective {
    match target {
        Some(c) => Objective::Logit(c),
        None => Objective::Loss(Loss::for_head(model.head())),
    }
}

/// The name of the class `c` of a record objective (a binary head's positive class).
pub fn class_name(labels: &Labels, c: usize) -> &str {
    labels
        .positive()
        .or(labels.classes.get(c).map(String::as_str))
        .unwrap_or("?")
}

impl<T: Float> Grads<T> {
    /// The tensors of `seqgrad grad --out`: `input` and `logit_grad` (records only), `output`,
    /// `input_grad`, `grad.<name>`, and with `steps` `output_grad_norm` and
    /// `step_grad_norm.layers.{i}.{direction}`.
    pub fn tensors(&self, steps: bool) -> Vec<(String, ArrayD<T>)> {
        let mut t: Vec<(String, ArrayD<T>)> = Vec::new();
        if self.objective != Objective::OutputGrad {
            t.push(("input".into(), self.input.clone()));
            t.push(("logit_grad".into(), self.upstream.clone()));
        }
        t.push(("output".into(), self.output.clone()));
        t.push(("input_grad".into(), self.input_grad.clone()));
        for (n, g) in &self.params {
            t.push((format!("grad.{n}"), g.clone()));
        }
        if steps {
            let norms = Array1::from_iter(self.layer_norms.iter().map(|&v| T::lit(v)));
            t.push(("output_grad_norm".into(), norms.into_dyn()));
            for s in &self.step_norms {
                t.push((
                    format!("step_grad_norm.layers.{}.{}", s.layer, s.direction),
                    s.norms.mapv(T::lit).into_dyn(),
                ));
            }
        }
        t
    }

    /// Writes [`Grads::tensors`] (and the model's weights, for seeded weights that are not in
    /// any file) to a safetensors file, atomically.
    pub fn save(&self, path: &Path, steps: bool, weights: Option<&Sequential<T>>) -> Result<()> {
        let tensors = self.tensors(steps);
        let mut views: Vec<(String, ArrayViewD<'_, T>)> =
            tensors.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        let named = weights.map(|m| m.named_params()).unwrap_or_default();
        for (n, p) in &named {
            views.push((n.clone(), p.value.view()));
        }
        crate::weights::write_tensors(path, &views)
    }
}

/// `input` `(batch, …input_shape)` and `output_grad` `(batch, …output_shape)` of a
/// `grad --input` file ([`read_input_file`] at `path`), checked against the model and
/// converted to `T`.
pub fn check_inputs<T: Float>(
    path: &Path,
    inputs: &std::collections::BTreeMap<String, crate::weights::StoredTensor>,
    model: &Sequential<T>,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let err = |msg: String| crate::error::Error::Data {
        path: path.display().to_string(),
        msg,
    };
    let names: Vec<&str> = inputs.keys().map(|k| k.as_str()).collect();
    let holds = if names.is_empty() {
        "no tensors".to_string()
    } else {
        names.join(", ")
    };
    let x = inputs.get("input").ok_or_else(|| {
        err(format!(
            "no tensor named `input` {}; the file holds: {holds}",
            crate::tensor::fmt_batched(model.input_shape())
        ))
    })?;
    let in_shape = model.input_shape().to_vec();
    if !crate::tensor::is_batched(&in_shape, x.array.shape()) || x.array.shape()[0] == 0 {
        return Err(err(format!(
            "tensor `input` has shape {} but the model takes {} with batch ≥ 1",
            crate::tensor::fmt_shape(x.array.shape()),
            crate::tensor::fmt_batched(&in_shape)
        )));
    }
    let batch = x.array.shape()[0];
    let mut want = vec![batch];
    want.extend_from_slice(model.output_shape());
    let og = inputs.get("output_grad").ok_or_else(|| {
        let inner: Vec<String> = model.output_shape().iter().map(|d| d.to_string()).collect();
        err(format!(
            "no tensor named `output_grad` (shaped like the model output ({batch}, {})); the file holds: {holds}",
            inner.join(", ")
        ))
    })?;
    if og.array.shape() != want.as_slice() {
        return Err(err(format!(
            "tensor `output_grad` has shape {} but the model output for this input is {}",
            crate::tensor::fmt_shape(og.array.shape()),
            crate::tensor::fmt_shape(&want)
        )));
    }
    Ok((x.array.mapv(T::lit), og.array.mapv(T::lit)))
}

/// The tensors of a `grad --input` file, by name.
pub fn read_input_file(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, crate::weights::StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    crate::weights::parse_tensors(&bytes).map_err(|msg| crate::error::Error::Data {
        path: path.display().to_string(),
        msg,
    })
}
