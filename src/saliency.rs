//! Saliency: how much each base of a sequence counts for one output of a trained model.
//!
//! The **target output** `f(x)` of a record is the *logit* of its target class: the model's output
//! before its final softmax/sigmoid (for a model without such a head, the output itself). Logits
//! do not saturate the way probabilities do (a confident softmax has ∂p/∂x ≈ 0), and every method
//! below explains the same `f`, so their scores are comparable and integrated gradients'
//! completeness is checked against the same numbers. The target class is given per record
//! (the CLI's default is the model's predicted class, [`predicted`]).
//!
//! Methods, for a one-hot record `x` `(length, 4)` (A, C, G, T):
//! - [`Method::Grad`]: `s_{l,b} = ∂f/∂x_{l,b}` for all four bases (vanilla gradient).
//! - [`Method::GradXInput`]: `s = x ⊙ ∂f/∂x` (only the base present scores).
//! - [`Method::IntegratedGradients`] (Sundararajan et al. 2017): with a baseline `x'`,
//!   `s = (x − x') ⊙ ∫₀¹ ∂f/∂x (x' + α(x − x')) dα`, the integral by a [`Quadrature`] rule with
//!   `steps` (default [`DEFAULT_STEPS`], Gauss–Legendre) evaluations. **Completeness**:
//!   `Σ_{l,b} s_{l,b} = f(x) − f(x')` up to the quadrature error;
//!   [`Saliency::completeness_error`] measures it. The integrand of a ReLU/max-pool network is
//!   only piecewise smooth (it jumps wherever a unit switches on or a max changes hands along
//!   the path), so the quadrature error falls only like 1/steps and unevenly; a record whose
//!   error exceeds `tolerance` (1%) is recomputed with 2×, 4×, … the steps up to `max_steps`
//!   (default 2048) and the scores with the smallest error are kept
//!   ([`Saliency::steps_used`]).
//! - [`Method::Ism`] (in-silico mutagenesis): `s_{l,b} = f(x with base b at l) − f(x)`; the
//!   reference base scores 0. A position with no base (all-zero padding) or an ambiguous code
//!   has no reference: all four substitutions are scored.
//!
//! Baselines ([`Baseline`]): all zeros (no base anywhere) or uniform 0.25 (every base equally
//! likely, also at padded positions).
//!
//! All methods run the model in evaluation mode (dropout off) on batches of at most
//! `batch_size` inputs; parameter gradients are cleared after each backward pass.

use ndarray::{s, Array2, Array3, ArrayD, ArrayView3, Axis};

use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::{fmt_shape, Float, Mode};

/// Default number of integrand evaluations for integrated gradients.
pub const DEFAULT_STEPS: usize = 256;

/// Default completeness tolerance that triggers refinement (1%).
pub const DEFAULT_TOLERANCE: f64 = 0.01;

/// Default cap of the refinement: 8 × [`DEFAULT_STEPS`].
pub const DEFAULT_MAX_STEPS: usize = 2048;

/// A saliency method (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Grad,
    GradXInput,
    IntegratedGradients,
    Ism,
}

impl Method {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Grad => "grad",
            Method::GradXInput => "grad_x_input",
            Method::IntegratedGradients => "integrated_gradients",
            Method::Ism => "ism",
        }
    }
}

/// The integrated-gradients baseline `x'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// All zeros: no base at any position.
    Zeros,
    /// 0.25 for every base at every position.
    Uniform,
}

impl Baseline {
    /// The name used on the command line (`--baseline zeros`).
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Zeros => "zeros",
            Baseline::Uniform => "uniform",
        }
    }
}

/// The quadrature rule for the integrated-gradients path integral over α ∈ [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrature {
    /// `steps` points α = 0, 1/(steps−1), …, 1 with trapezoid weights (both ends included).
    Trapezoid,
    /// `steps`-point Gauss–Legendre nodes and weights on [0, 1].
    GaussLegendre,
}

impl Quadrature {
    /// The name used on the command line (`--quadrature gauss_legendre`).
    pub fn name(self) -> &'static str {
        match self {
            Quadrature::Trapezoid => "trapezoid",
            Quadrature::GaussLegendre => "gauss_legendre",
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub method: Method,
    pub baseline: Baseline,
    /// Integrand evaluations for integrated gradients (≥ 2 for the trapezoid rule).
    pub steps: usize,
    pub quadrature: Quadrature,
    /// Integrated gradients: a record whose completeness error exceeds this is recomputed
    /// with twice the steps, up to `max_steps` (0: never).
    pub tolerance: f64,
    /// The most steps the refinement may use.
    pub max_steps: usize,
    /// Most model inputs per forward/backward pass.
    pub batch_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::IntegratedGradients,
            baseline: Baseline::Zeros,
            steps: DEFAULT_STEPS,
            quadrature: Quadrature::GaussLegendre,
            tolerance: DEFAULT_TOLERANCE,
            max_steps: DEFAULT_MAX_STEPS,
            batch_size: 128,
        }
    }
}

/// Scores of every record.
#[derive(Debug, Clone)]
pub struct Saliency {
    /// `(records, length, 4)`: score of base A, C, G, T at every position.
    pub scores: Array3<f64>,
    /// The target class of every record.
    pub targets: Vec<usize>,
    /// `f(x)`: the target logit of every record.
    pub fx: Vec<f64>,
    /// `f(x')`: the target logit of the baseline (integrated gradients only).
    pub f_baseline: Option<Vec<f64>>,
    /// Integrated gradients: the steps used for every record (more than `steps` when it was
    /// refined); empty for the other methods.
    pub steps_used: Vec<usize>,
}

impl Saliency {
    /// One result from per-record results of different lengths (a model of any length), the
    /// scores padded with zeros to `length`.
    ///
    /// # Shapes
    /// - each part's `scores`: `(records, ≤ length, 4)`; returns `(Σ records, length, 4)`.
    pub fn join(parts: &[Saliency], length: usize) -> Saliency {
        let n: usize = parts.iter().map(|p| p.scores.shape()[0]).sum();
        let mut scores = Array3::zeros((n, length, 4));
        let mut row = 0;
        for p in parts {
            let (k, l, _) = p.scores.dim();
            let l = l.min(length);
            scores
                .slice_mut(ndarray::s![row..row + k, ..l, ..])
                .assign(&p.scores.slice(ndarray::s![.., ..l, ..]));
            row += k;
        }
        let fb: Option<Vec<f64>> = parts
            .iter()
            .map(|p| p.f_baseline.clone())
            .collect::<Option<Vec<Vec<f64>>>>()
            .map(|v| v.concat());
        Saliency {
            scores,
            targets: parts.iter().flat_map(|p| p.targets.clone()).collect(),
            fx: parts.iter().flat_map(|p| p.fx.clone()).collect(),
            f_baseline: fb,
            steps_used: parts.iter().flat_map(|p| p.steps_used.clone()).collect(),
        }
    }

    /// Integrated gradients' completeness error per record:
    /// `|Σ s − (f(x) − f(x'))| / |f(x) − f(x')|` (absolute when `f(x) = f(x')`). `None` for the
    /// other methods.
    pub fn completeness_error(&self) -> Option<Vec<f64>> {
        let fb = self.f_baseline.as_ref()?;
        Some(
            self.scores
                .outer_iter()
                .zip(self.fx.iter().zip(fb))
                .map(|(s, (&fx, &fb))| {
                    let delta = fx - fb;
                    let err = (s.sum() - delta).abs();
                    if delta == 0.0 {
                        err
                    } else {
                        err / delta.abs()
                    }
                })
                .collect(),
        )
    }
}

/// Checks that a model maps `(length, 4)` sequences (or their flat `length·4` form) to a flat
/// `(classes)` output.
fn check_model<T: Float>(model: &Sequential<T>, length: usize) -> Result<usize> {
    crate::train::check_input_len(model, length)?;
    match model.output_shape() {
        [k] => Ok(*k),
        other => Err(Error::Usage(format!(
            "saliency needs a model with a flat output (classes), but this model outputs {}",
            fmt_shape(other)
        ))),
    }
}

/// Shapes `(batch, length, 4)` for the model (flattened for a flat input).
fn model_input<T: Float>(model: &Sequential<T>, x: Array3<T>) -> ArrayD<T> {
    if model.input_shape().len() == 1 {
        let (b, l, c) = x.dim();
        crate::tensor::reshape(x, &[b, l * c])
    } else {
        x.into_dyn()
    }
}

/// Target logits of a batch: one value per row.
fn logits_of<T: Float>(model: &mut Sequential<T>, xb: Array3<T>) -> Result<Array2<f64>> {
    let y = model.forward_logits(model_input(model, xb).view(), Mode::Eval)?;
    let shape = y.shape().to_vec();
    y.mapv(|v| v.to_f64c())
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| Error::Shape {
            what: "model output".into(),
            expected: "(batch, classes)".into(),
            got: fmt_shape(&shape),
        })
}

/// The logits `(records, classes)` of every record, in batches.
///
/// # Shapes
/// - `x`: `(records, length, 4)`; returns `(records, classes)`.
pub fn logits<T: Float>(
    model: &mut Sequential<T>,
    x: ArrayView3<'_, T>,
    batch_size: usize,
) -> Result<Array2<f64>> {
    let (n, l, _) = x.dim();
    let k = check_model(model, l)?;
    let mut out = Array2::zeros((n, k));
    let bs = batch_size.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let y = logits_of(model, x.slice(s![start..end, .., ..]).to_owned())?;
        out.slice_mut(s![start..end, ..]).assign(&y);
        start = end;
    }
    Ok(out)
}

/// The predicted class of every record: the largest logit (the largest probability, for a
/// softmax head).
///
/// # Shapes
/// - `x`: `(records, length, 4)`; returns `records` class indices.
pub fn predicted<T: Float>(
    model: &mut Sequential<T>,
    x: ArrayView3<'_, T>,
    batch_size: usize,
) -> Result<Vec<usize>> {
    let z = logits(model, x, batch_size)?;
    Ok(z.outer_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (j, &v)| {
                    if v > best.1 {
                        (j, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect())
}

/// Target logits and their input gradients for a batch (one target per row).
///
/// # Shapes
/// - `xb`: `(batch, length, 4)`; returns `batch` values and `(batch, length, 4)` gradients.
fn grad_batch<T: Float>(
    model: &mut Sequential<T>,
    xb: Array3<T>,
    targets: &[usize],
) -> Result<(Vec<f64>, Array3<f64>)> {
    let (b, l, c) = xb.dim();
    let y = model.forward_logits(model_input(model, xb).view(), Mode::Eval)?;
    let mut up = ArrayD::<T>::zeros(y.raw_dim());
    let mut f = Vec::with_capacity(b);
    for (i, &t) in targets.iter().enumerate() {
        up[[i, t]] = T::one();
        f.push(y[[i, t]].to_f64c());
    }
    let g = model.backward_logits(up.view())?;
    model.zero_grad();
    let g = g.mapv(|v| v.to_f64c());
    let g = crate::tensor::reshape(g.into_dyn(), &[b, l, c]);
    let g = g
        .into_dimensionality::<ndarray::Ix3>()
        .map_err(|_| Error::Train("input gradient has the wrong rank".into()))?;
    Ok((f, g))
}

/// Quadrature nodes and weights on [0, 1] (weights sum to 1).
pub fn quadrature(rule: Quadrature, steps: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    match rule {
        Quadrature::Trapezoid => {
            if steps < 2 {
                return Err(Error::Usage(format!(
                    "the trapezoid rule needs at least 2 steps, got {steps}"
                )));
            }
            let h = 1.0 / (steps - 1) as f64;
            let nodes = (0..steps).map(|k| k as f64 * h).collect();
            let weights = (0..steps)
                .map(|k| if k == 0 || k == steps - 1 { h / 2.0 } else { h })
                .collect();
            Ok((nodes, weights))
        }
        Quadrature::GaussLegendre => {
            if steps < 1 {
                return Err(Error::Usage("Gauss–Legendre needs at least 1 step".into()));
            }
            Ok(gauss_legendre(steps))
        }
    }
}

/// `n`-point Gauss–Legendre nodes and weights mapped from [−1, 1] to [0, 1] (Newton iteration
/// on the Legendre polynomial from Chebyshev starting points).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pn1 = if n == 1 { 1.0 } else { p0 };
            dp = nf * (x * pn - pn1) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        // Map to [0, 1]: α = (1 − x)/2 for the left node, (1 + x)/2 for the right.
        nodes[i] = (1.0 - x) / 2.0;
        nodes[n - 1 - i] = (1.0 + x) / 2.0;
        weights[i] = w / 2.0;
        weights[n - 1 - i] = w / 2.0;
    }
    (nodes, weights)
}

/// Saliency scores of every record for its target class.
///
/// # Shapes
/// - `x`: `(records, length, 4)` one-hot (A, C, G, T); `targets`: one class index per record;
///   the result's `scores` are `(records, length, 4)`.
pub fn saliency<T: Float>(
    model: &mut Sequential<T>,
    x: ArrayView3<'_, T>,
    targets: &[usize],
    opts: &Options,
) -> Result<Saliency> {
    let (n, l, c) = x.dim();
    if c != 4 {
        return Err(Error::Shape {
            what: "saliency input".into(),
            expected: "(records, length, 4)".into(),
            got: fmt_shape(x.shape()),
        });
    }
    let k = check_model(model, l)?;
    if targets.len() != n {
        return Err(Error::Usage(format!(
            "{} targets for {n} records",
            targets.len()
        )));
    }
    if let Some(&bad) = targets.iter().find(|&&t| t >= k) {
        return Err(Error::Usage(format!(
            "target class {bad} does not exist: the model has {k} outputs (0–{})",
            k - 1
        )));
    }
    let bs = opts.batch_size.max(1);
    let mut scores = Array3::<f64>::zeros((n, l, 4));
    let mut fx = vec![0.0; n];
    let mut f_baseline = None;
    let mut steps_used = Vec::new();
    match opts.method {
        Method::Grad | Method::GradXInput => {
            let mut start = 0;
            while start < n {
                let end = (start + bs).min(n);
                let xb = x.slice(s![start..end, .., ..]).to_owned();
                let (f, g) = grad_batch(model, xb, &targets[start..end])?;
                fx[start..end].copy_from_slice(&f);
                let mut out = scores.slice_mut(s![start..end, .., ..]);
                out.assign(&g);
                if opts.method == Method::GradXInput {
                    out.zip_mut_with(&x.slice(s![start..end, .., ..]), |s, &v| *s *= v.to_f64c());
                }
                start = end;
            }
        }
        Method::IntegratedGradients => {
            quadrature(opts.quadrature, opts.steps)?;
            let base_value = match opts.baseline {
                Baseline::Zeros => 0.0,
                Baseline::Uniform => 0.25,
            };
            let mut fb = vec![0.0; n];
            for r in 0..n {
                // f(x) and f(x') exactly, in one batch of two.
                let mut pair = Array3::<T>::from_elem((2, l, 4), T::lit(base_value));
                pair.index_axis_mut(Axis(0), 0)
                    .assign(&x.index_axis(Axis(0), r));
                let z = logits_of(model, pair)?;
                fx[r] = z[[0, targets[r]]];
                fb[r] = z[[1, targets[r]]];
                let delta = fx[r] - fb[r];
                let rel = |s: &Array2<f64>| {
                    let e = (s.sum() - delta).abs();
                    if delta == 0.0 {
                        e
                    } else {
                        e / delta.abs()
                    }
                };
                let xr = x.index_axis(Axis(0), r).mapv(|v| v.to_f64c());
                let mut steps = opts.steps;
                let mut best = ig_record(model, &xr, base_value, targets[r], opts, steps)?;
                let mut best_err = rel(&best);
                let mut best_steps = steps;
                while best_err > opts.tolerance && steps * 2 <= opts.max_steps {
                    steps *= 2;
                    let s = ig_record(model, &xr, base_value, targets[r], opts, steps)?;
                    let e = rel(&s);
                    if e < best_err {
                        (best, best_err, best_steps) = (s, e, steps);
                    }
                }
                scores.index_axis_mut(Axis(0), r).assign(&best);
                steps_used.push(best_steps);
            }
            f_baseline = Some(fb);
        }
        Method::Ism => {
            for r in 0..n {
                let xr = x.index_axis(Axis(0), r);
                let z = logits_of(model, xr.to_owned().insert_axis(Axis(0)))?;
                let f0 = z[[0, targets[r]]];
                fx[r] = f0;
                // Every (position, base) that is not the reference base.
                let mut variants: Vec<(usize, usize)> = Vec::with_capacity(3 * l);
                for p in 0..l {
                    let row = xr.index_axis(Axis(0), p);
                    let reference = (0..4).find(|&b| {
                        row[b] == T::one() && row.iter().filter(|&&v| v != T::zero()).count() == 1
                    });
                    for b in 0..4 {
                        if Some(b) != reference {
                            variants.push((p, b));
                        }
                    }
                }
                for chunk in variants.chunks(bs) {
                    let mut xb = Array3::<T>::zeros((chunk.len(), l, 4));
                    for (j, &(p, b)) in chunk.iter().enumerate() {
                        let mut v = xb.index_axis_mut(Axis(0), j);
                        v.assign(&xr);
                        v.index_axis_mut(Axis(0), p).fill(T::zero());
                        v[[p, b]] = T::one();
                    }
                    let z = logits_of(model, xb)?;
                    for (j, &(p, b)) in chunk.iter().enumerate() {
                        scores[[r, p, b]] = z[[j, targets[r]]] - f0;
                    }
                }
            }
        }
    }
    Ok(Saliency {
        scores,
        targets: targets.to_vec(),
        fx,
        f_baseline,
        steps_used,
    })
}

/// Integrated-gradients scores of one record with `steps` quadrature points.
///
/// # Shapes
/// - `xr`: `(length, 4)`; returns `(length, 4)`.
fn ig_record<T: Float>(
    model: &mut Sequential<T>,
    xr: &Array2<f64>,
    base_value: f64,
    target: usize,
    opts: &Options,
    steps: usize,
) -> Result<Array2<f64>> {
    let (alphas, weights) = quadrature(opts.quadrature, steps)?;
    let l = xr.shape()[0];
    let bs = opts.batch_size.max(1);
    let diff = xr.mapv(|v| v - base_value);
    let mut avg = Array2::<f64>::zeros((l, 4));
    let mut start = 0;
    while start < alphas.len() {
        let end = (start + bs).min(alphas.len());
        let mut xb = Array3::<T>::zeros((end - start, l, 4));
        for (j, &a) in alphas[start..end].iter().enumerate() {
            xb.index_axis_mut(Axis(0), j)
                .zip_mut_with(&diff, |o, &d| *o = T::lit(base_value + a * d));
        }
        let tg = vec![target; end - start];
        let (_, g) = grad_batch(model, xb, &tg)?;
        for (j, gj) in g.outer_iter().enumerate() {
            avg.scaled_add(weights[start + j], &gj);
        }
        start = end;
    }
    Ok(&diff * &avg)
}

/// The scores as TSV: header `id\tposition\tA\tC\tG\tT`, one row per record and 1-based
/// position, values in `{:.6e}` form (−0 written as 0).
pub fn to_tsv(ids: &[String], scores: &Array3<f64>) -> String {
    to_tsv_lengths(ids, scores, None)
}

/// [`to_tsv`] of records padded to `scores`' length, each written up to its own length
/// (`None`: all full length).
pub fn to_tsv_lengths(ids: &[String], scores: &Array3<f64>, lengths: Option<&[usize]>) -> String {
    let mut s = String::from("id\tposition\tA\tC\tG\tT\n");
    for (i, (id, rec)) in ids.iter().zip(scores.outer_iter()).enumerate() {
        let n = lengths
            .and_then(|l| l.get(i).copied())
            .unwrap_or(rec.nrows());
        for (p, row) in rec.outer_iter().take(n).enumerate() {
            // x + 0.0 turns −0 into +0.
            let row = row.mapv(|v| v + 0.0);
            s.push_str(&format!(
                "{id}\t{}\t{:.6e}\t{:.6e}\t{:.6e}\t{:.6e}\n",
                p + 1,
                row[0],
                row[1],
                row[2],
                row[3]
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_weights_sum_to_one_and_integrate_polynomials() {
        for rule in [Quadrature::Trapezoid, Quadrature::GaussLegendre] {
            let (a, w) = quadrature(rule, 16).unwrap();
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            // ∫₀¹ α² dα = 1/3.
            let i: f64 = a.iter().zip(&w).map(|(a, w)| a * a * w).sum();
            assert!((i - 1.0 / 3.0).abs() < 2e-3, "{rule:?} {i}");
        }
        // Gauss–Legendre with n points is exact up to degree 2n − 1.
        let (a, w) = quadrature(Quadrature::GaussLegendre, 5).unwrap();
        let i: f64 = a.iter().zip(&w).map(|(a, w)| a.powi(9) * w).sum();
        assert!((i - 0.1).abs() < 1e-13, "{i}");
        assert!(quadrature(Quadrature::Trapezoid, 1).is_err());
    }
}
