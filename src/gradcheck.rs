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
}

impl GradReport {
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
    check_inner(layer, x, dy, mode, names)
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
    check_inner(model, x, dy, mode, names)
}

fn check_inner(
    layer: &mut dyn Layer<f64>,
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
    mode: Mode,
    names: Vec<String>,
) -> Result<GradReport> {
    layer.zero_grad();
    layer.forward(x.view(), mode)?;
    let dx = layer.backward(dy.view())?;
    let analytic: Vec<ArrayD<f64>> = layer.params().iter().map(|p| p.grad.clone()).collect();

    let mut xs = x.as_standard_layout().into_owned();
    let mut num_dx = ArrayD::zeros(x.raw_dim());
    for i in 0..xs.len() {
        let orig = flat(&xs, i);
        set_flat(&mut xs, i, orig + EPS);
        let lp = objective(layer, &xs, dy, mode)?;
        set_flat(&mut xs, i, orig - EPS);
        let lm = objective(layer, &xs, dy, mode)?;
        set_flat(&mut xs, i, orig);
        set_flat(&mut num_dx, i, (lp - lm) / (2.0 * EPS));
    }
    let dx = dx.as_standard_layout().into_owned();
    let input = rel_error(&dx, &num_dx);
    let mut zero_tensors = Vec::new();
    if all_zero(&dx) && all_zero(&num_dx) {
        zero_tensors.push("input".to_string());
    }

    let mut params = Vec::new();
    for (k, name) in names.into_iter().enumerate() {
        let n = layer.params()[k].value.len();
        let mut num = ArrayD::zeros(layer.params()[k].value.raw_dim());
        for i in 0..n {
            let orig = flat(&layer.params()[k].value, i);
            set_flat(&mut layer.params_mut()[k].value, i, orig + EPS);
            let lp = objective(layer, x, dy, mode)?;
            set_flat(&mut layer.params_mut()[k].value, i, orig - EPS);
            let lm = objective(layer, x, dy, mode)?;
            set_flat(&mut layer.params_mut()[k].value, i, orig);
            set_flat(&mut num, i, (lp - lm) / (2.0 * EPS));
        }
        if all_zero(&analytic[k]) && all_zero(&num) {
            zero_tensors.push(name.clone());
        }
        params.push((name, rel_error(&analytic[k], &num)));
    }
    Ok(GradReport {
        input,
        params,
        zero_tensors,
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
