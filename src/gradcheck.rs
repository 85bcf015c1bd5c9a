//! Gradient checks by central finite differences, in f64, for any layer or model.
//!
//! The scalar checked is `L = Σ output ⊙ dy` for a fixed upstream gradient `dy` (random and
//! uneven in the tests, so every output element counts differently). The analytic gradient is
//! one `backward(dy)`; the numeric one is `(L(θ + ε) − L(θ − ε)) / 2ε` for every element of the
//! input and of every parameter.
//!
//! The error reported per tensor is the worst element-wise relative error
//! `max_i |a_i − n_i| / max(|a_i|, |n_i|, 1e-3·s)` where `s` is the tensor's largest magnitude:
//! relative for every element down to a thousandth of the largest, so tiny gradients (which
//! finite differences cannot resolve) do not dominate.
//!
//! A tensor whose analytic and numeric gradients are both identically zero has error 0 but was
//! not checked at all (a dead check: e.g. every relu unit off, or an output the objective
//! ignores); the report lists such tensors in [`GradReport::zero_tensors`] and says so when
//! printed, so tests can insist that every tensor was really exercised.
//!
//! **Sampling** (for realistic models): [`check_layer_sampled`] and [`check_model_sampled`]
//! check at most `max_elements` elements of every tensor (the input and each parameter), a
//! seeded uniform sample without replacement (all of them when the tensor is that small). The
//! analytic gradient is still computed in full, and the relative-error floor uses the largest
//! analytic magnitude of the whole tensor, so a sampled check measures the same quantity as the
//! full one, on fewer elements. [`check_model_layers`] checks every layer of a model (each on a
//! seeded random batch of its input shape).

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::layers::Layer;
use crate::model::Sequential;
use crate::tensor::Mode;

/// Worst relative error per tensor.
#[derive(Debug, Clone)]
pub struct GradReport {
    /// Error of ∂L/∂input.
    pub input: f64,
    /// `(parameter name, error)` for every parameter.
    pub params: Vec<(String, f64)>,
    /// Tensors (`"input"` or a parameter name) whose analytic AND numeric gradients are all
    /// zero: their error of 0 checks nothing.
    pub zero_tensors: Vec<String>,
    /// `(tensor, elements checked, elements in the tensor)` for the input (named `"input"`)
    /// and every parameter, in report order.
    pub checked: Vec<(String, usize, usize)>,
}

impl GradReport {
    /// True when every tensor's error is below `tolerance`.
    pub fn passes(&self, tolerance: f64) -> bool {
        self.worst() < tolerance
    }

    /// The worst error over the input and every parameter.
    pub fn worst(&self) -> f64 {
        self.params.iter().map(|p| p.1).fold(self.input, f64::max)
    }
}

impl std::fmt::Display for GradReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "input {:.2e}", self.input)?;
        for (n, e) in &self.params {
            write!(f, ", {n} {e:.2e}")?;
        }
        if !self.zero_tensors.is_empty() {
            write!(
                f,
                "; identically zero (not checked): {}",
                self.zero_tensors.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Finite-difference step.
pub const EPS: f64 = 1e-5;

/// Worst element-wise relative error between an analytic and a numeric gradient (see module
/// docs).
pub fn rel_error(analytic: &ArrayD<f64>, numeric: &ArrayD<f64>) -> f64 {
    let scale = analytic
        .iter()
        .chain(numeric.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return 0.0;
    }
    let floor = 1e-3 * scale;
    analytic
        .iter()
        .zip(numeric.iter())
        .map(|(a, n)| (a - n).abs() / a.abs().max(n.abs()).max(floor))
        .fold(0.0, f64::max)
}

fn objective(
    layer: &mut dyn Layer<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
) -> Result<f64> {
    let y = layer.forward(x.view(), mode)?;
    Ok(y.iter().zip(dy.iter()).map(|(a, b)| a * b).sum())
}

/// Checks a layer's input and parameter gradients against central finite differences.
///
/// # Shapes
/// - `x`: `(batch, …input)`; `dy`: like the layer's output for `x`.
pub fn check_layer(
    layer: &mut dyn Layer<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
) -> Result<GradReport> {
    let names: Vec<String> = layer.params().iter().map(|p| p.name.clone()).collect();
    check_inner(layer, x, dy, mode, names, None)
}

/// [`check_layer`] on at most `max_elements` seeded-sampled elements of every tensor (see the
/// module docs).
///
/// # Shapes
/// - `x`: `(batch, …input)`; `dy`: like the layer's output for `x`.
pub fn check_layer_sampled(
    layer: &mut dyn Layer<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
    max_elements: usize,
    seed: u64,
) -> Result<GradReport> {
    let names: Vec<String> = layer.params().iter().map(|p| p.name.clone()).collect();
    check_inner(layer, x, dy, mode, names, Some((max_elements, seed)))
}

/// [`check_model`] on at most `max_elements` seeded-sampled elements of every tensor.
///
/// # Shapes
/// - `x`: `(batch, …input_shape)`; `dy`: `(batch, …output_shape)`.
pub fn check_model_sampled(
    model: &mut Sequential<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
    max_elements: usize,
    seed: u64,
) -> Result<GradReport> {
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    check_inner(model, x, dy, mode, names, Some((max_elements, seed)))
}

/// One layer's check inside a model.
#[derive(Debug, Clone)]
pub struct LayerCheck {
    /// Index in the model's `layers`.
    pub index: usize,
    /// Layer type (`conv1d`, `bidirectional(lstm)` …).
    pub kind: String,
    /// Parameters named `layers.{index}.{name}`.
    pub report: GradReport,
}

/// Checks the layers `layers` (all when `None`) of a model: the first on `x`, every other one
/// on a seeded U(0, 1) batch of its input shape (real activations hold exact ties — several
/// ReLU zeros in one max-pool window — where a finite difference is not a derivative), with a
/// seeded upstream gradient drawn from U(−1, 1), on at most `max_elements` sampled elements per
/// tensor. Dropout layers see step 0's mask on every
/// pass (`mode` Train) or are the identity (`mode` Eval). A layer index past the end is an
/// error.
///
/// # Shapes
/// - `x`: `(batch, …input_shape)`.
pub fn check_model_layers(
    model: &mut Sequential<f64>,
    x: &ArrayD<f64>,
    layers: Option<&[usize]>,
    mode: Mode,
    max_elements: usize,
    seed: u64,
) -> Result<Vec<LayerCheck>> {
    let n = model.layers().len();
    if let Some(bad) = layers.and_then(|l| l.iter().find(|&&i| i >= n)) {
        return Err(crate::error::Error::Usage(format!(
            "layer {bad} does not exist: the model has {n} layers (0–{})",
            n.saturating_sub(1)
        )));
    }
    model.set_step(0);
    // A fresh seeded U(0, 1) batch of every layer's input shape: continuous values keep
    // max-pool ties (e.g. several ReLU zeros in one window) and kinks away from the ±ε steps.
    let batch = x.shape().first().copied().unwrap_or(1);
    let inputs: Vec<ArrayD<f64>> = (0..n)
        .map(|i| {
            if i == 0 {
                return x.clone();
            }
            let mut shape = vec![batch];
            shape.extend_from_slice(&model.layer_shapes()[i - 1]);
            random_array(&shape, 0.0, 1.0, seed.wrapping_add(2000 + i as u64))
        })
        .collect();
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if layers.is_some_and(|l| !l.contains(&i)) {
            continue;
        }
        let layer = &mut model.layers_mut()[i];
        let y = layer.forward(input.view(), mode)?;
        let dy = random_array(y.shape(), -1.0, 1.0, seed.wrapping_add(1 + i as u64));
        let mut report = check_layer_sampled(
            layer.as_mut(),
            input,
            &dy,
            mode,
            max_elements,
            seed.wrapping_add(1000 + i as u64),
        )?;
        let prefix = |name: &mut String| {
            if name != "input" {
                *name = format!("layers.{i}.{name}");
            }
        };
        for (name, _) in &mut report.params {
            prefix(name);
        }
        for name in &mut report.zero_tensors {
            prefix(name);
        }
        for (name, _, _) in &mut report.checked {
            prefix(name);
        }
        layer.zero_grad();
        out.push(LayerCheck {
            index: i,
            kind: layer.kind(),
            report,
        });
    }
    Ok(out)
}

/// Checks a whole model; parameters are reported by their full names (`layers.{i}.weight`).
///
/// # Shapes
/// - `x`: `(batch, …input_shape)`; `dy`: `(batch, …output_shape)`.
pub fn check_model(
    model: &mut Sequential<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
) -> Result<GradReport> {
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    check_inner(model, x, dy, mode, names, None)
}

/// The flat indices to check in a tensor of `len` elements: all, or a sorted seeded sample of
/// `max` of them.
fn sample_indices(len: usize, sample: Option<(usize, u64)>, salt: u64) -> Vec<usize> {
    match sample {
        Some((max, seed)) if len > max => {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut idx = rand::seq::index::sample(&mut rng, len, max).into_vec();
            idx.sort_unstable();
            idx
        }
        _ => (0..len).collect(),
    }
}

/// [`rel_error`] over the elements `idx` (numeric values given for those only), with the
/// floor taken from the whole analytic tensor.
fn rel_error_at(analytic: &ArrayD<f64>, idx: &[usize], numeric: &[f64]) -> f64 {
    let a: Vec<f64> = idx.iter().map(|&i| flat(analytic, i)).collect();
    let scale = analytic
        .iter()
        .chain(numeric.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return 0.0;
    }
    let floor = 1e-3 * scale;
    a.iter()
        .zip(numeric)
        .map(|(a, n)| (a - n).abs() / a.abs().max(n.abs()).max(floor))
        .fold(0.0, f64::max)
}

fn check_inner(
    layer: &mut dyn Layer<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
    names: Vec<String>,
    sample: Option<(usize, u64)>,
) -> Result<GradReport> {
    layer.zero_grad();
    layer.forward(x.view(), mode)?;
    let dx = layer.backward(dy.view())?;
    let analytic: Vec<ArrayD<f64>> = layer.params().iter().map(|p| p.grad.clone()).collect();

    let mut xs = x.as_standard_layout().into_owned();
    let idx = sample_indices(xs.len(), sample, 0);
    let mut num_dx = Vec::with_capacity(idx.len());
    for &i in &idx {
        let orig = flat(&xs, i);
        set_flat(&mut xs, i, orig + EPS);
        let lp = objective(layer, &xs, dy, mode)?;
        set_flat(&mut xs, i, orig - EPS);
        let lm = objective(layer, &xs, dy, mode)?;
        set_flat(&mut xs, i, orig);
        num_dx.push((lp - lm) / (2.0 * EPS));
    }
    let dx = dx.as_standard_layout().into_owned();
    let input = rel_error_at(&dx, &idx, &num_dx);
    let mut zero_tensors = Vec::new();
    if all_zero(&dx) && num_dx.iter().all(|&v| v == 0.0) {
        zero_tensors.push("input".to_string());
    }
    let mut checked = vec![("input".to_string(), idx.len(), xs.len())];

    let mut params = Vec::new();
    for (k, name) in names.into_iter().enumerate() {
        let n = layer.params()[k].value.len();
        let idx = sample_indices(n, sample, k as u64 + 1);
        let mut num = Vec::with_capacity(idx.len());
        for &i in &idx {
            let orig = flat(&layer.params()[k].value, i);
            set_flat(&mut layer.params_mut()[k].value, i, orig + EPS);
            let lp = objective(layer, x, dy, mode)?;
            set_flat(&mut layer.params_mut()[k].value, i, orig - EPS);
            let lm = objective(layer, x, dy, mode)?;
            set_flat(&mut layer.params_mut()[k].value, i, orig);
            num.push((lp - lm) / (2.0 * EPS));
        }
        if all_zero(&analytic[k]) && num.iter().all(|&v| v == 0.0) {
            zero_tensors.push(name.clone());
        }
        checked.push((name.clone(), idx.len(), n));
        params.push((name, rel_error_at(&analytic[k], &idx, &num)));
    }
    Ok(GradReport {
        input,
        params,
        zero_tensors,
        checked,
    })
}

fn all_zero(a: &ArrayD<f64>) -> bool {
    a.iter().all(|&v| v == 0.0)
}

/// Element `i` in logical (row-major) order.
fn flat(a: &ArrayD<f64>, i: usize) -> f64 {
    match a.as_slice() {
        Some(s) => s[i],
        None => a.iter().nth(i).copied().unwrap_or(0.0),
    }
}

fn set_flat(a: &mut ArrayD<f64>, i: usize, v: f64) {
    if let Some(s) = a.as_slice_mut() {
        s[i] = v;
    } else if let Some(e) = a.iter_mut().nth(i) {
        *e = v;
    }
}

/// A seeded array of values drawn uniformly from [lo, hi) — inputs and uneven upstream
/// gradients for checks.
pub fn random_array(shape: &[usize], lo: f64, hi: f64, seed: u64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(lo..hi))
}
