//! `layer_norm`: layer normalisation over the feature (channel) axis, at every position (PyTorch
//! `nn.LayerNorm(C)` on the last axis, Keras `LayerNormalization(axis=-1)`).
//!
//! Forward, for each row `x` of `C` features (a sample of `(C)` input, or one position of
//! `(L, C)` input): `μ = (1/C) Σ_c x_c`, `σ² = (1/C) Σ_c (x_c − μ)²` (biased), `r = 1/√(σ² + ε)`,
//! `x̂ = (x − μ)·r`, `y = γ ⊙ x̂ + β`.
//!
//! Backward, given `dy`: `dγ += Σ_rows dy ⊙ x̂`, `dβ += Σ_rows dy`, and with `g = dy ⊙ γ`:
//! `dx = r·(g − mean_c(g) − x̂·mean_c(g ⊙ x̂))`.
//!
//! Parameters as PyTorch: `weight (C)` = γ (initially 1), `bias (C)` = β (initially 0).
//!
//! Nothing is shared between positions or records, so masked batches (variable-length models)
//! need nothing: the model zeroes outputs past each record's length and the gradient there, so
//! padded positions add nothing to `dγ`, `dβ` or `dx`. Rows are normalised in parallel; the
//! parameter gradients are summed over rows in a fixed order (bit-identical at any thread count).

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::registry::{Issue, LayerBytes, LayerKind, MemoryIo, Planned};
use crate::layers::{checked_elems, no_forward, Layer, Param};
use crate::tensor::{fmt_shape, Float, Mode};

fn default_epsilon() -> f64 {
    1e-5
}

/// `layer_norm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerNormSpec {
    /// Added to the variance, > 0. Default 1e-5 (PyTorch; Keras' default is 1e-3, which the
    /// Keras importer carries over).
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
}

impl Default for LayerNormSpec {
    fn default() -> Self {
        LayerNormSpec {
            epsilon: default_epsilon(),
        }
    }
}

/// The `layer_norm` kind (registry entry).
pub struct LayerNormKind;

impl LayerKind for LayerNormKind {
    type Spec = LayerNormSpec;
    const KERAS: &'static [&'static str] = &["LayerNormalization"];

    fn plan(s: &LayerNormSpec, input: &[usize]) -> Issue<Planned> {
        if !(s.epsilon > 0.0 && s.epsilon.is_finite()) {
            return Err(ShapeIssue::Invalid(format!(
                "epsilon must be a positive number, got {}",
                s.epsilon
            )));
        }
        let c = match input {
            [c] | [_, c] if *c > 0 => *c,
            _ => {
                return Err(ShapeIssue::Rank {
                    expected: "(features) or (length, features)".into(),
                    got: input.to_vec(),
                })
            }
        };
        checked_elems("weight", &[c])?;
        Ok(Planned::new(input.to_vec())
            .param("weight", &[c])
            .param("bias", &[c]))
    }

    /// Training and gradient passes cache `x̂` (like the output) and `r` (one per row);
    /// backward builds `dx` (like the input) in the incoming gradient's place.
    fn memory(_s: &LayerNormSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let out = io.output_elems();
        let rows = out / io.output.last().copied().unwrap_or(1).max(1) as f64;
        LayerBytes {
            cache: (out + rows) * io.elem,
            ..io.output_only()
        }
    }

    fn build<T: Float>(
        s: &LayerNormSpec,
        input: &[usize],
        _seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(LayerNorm::<T>::new(s, input)?))
    }

    fn any_length(_s: &LayerNormSpec) -> bool {
        true
    }

    /// `axis=-1` only, always centred and scaled.
    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<LayerNormSpec> {
        let axis = match o.get("axis") {
            None => -1,
            Some(v) => {
                let one = match v {
                    serde_json::Value::Array(a) if a.len() == 1 => a[0].as_i64(),
                    other => other.as_i64(),
                };
                one.ok_or_else(|| {
                    o.err(format!(
                        "axis={v} is not supported by seqgrad (it normalises the last axis); use \
                         axis=-1"
                    ))
                })?
            }
        };
        // The last axis of a (batch, length, channels) or (batch, features) input.
        if !matches!(axis, -1 | 2) {
            return Err(o.err(format!(
                "axis={axis} is not supported by seqgrad (it normalises the last axis); use \
                 axis=-1"
            )));
        }
        let epsilon = o.float("epsilon", 1e-3)?;
        o.require_bool("center", true, "layer_norm always has a bias")?;
        o.require_bool("scale", true, "layer_norm always has a weight")?;
        o.require_bool("rms_scaling", false, "layer_norm subtracts the mean")?;
        o.ignore(&["beta_initializer", "gamma_initializer"]);
        for key in [
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ] {
            if let Some(v) = o.get(key) {
                return Err(o.err(format!(
                    "{key}={v} is not supported by seqgrad (it would change training); set it \
                     to None to convert"
                )));
            }
        }
        Ok(LayerNormSpec { epsilon })
    }

    /// Keras `gamma (C)`, `beta (C)` → `weight`, `bias`.
    fn keras_weights(_s: &LayerNormSpec, vars: &mut KerasVars<'_>) -> Result<()> {
        let v = vars.take("", 2)?;
        let gamma = vars.expect_rank(&v[0], 1, "gamma")?;
        let beta = vars.expect_rank(&v[1], 1, "beta")?;
        vars.put("weight", gamma);
        vars.put("bias", beta);
        Ok(())
    }
}

/// What backward needs from the last forward pass.
struct LayerNormCache<T> {
    /// Normalised input `x̂`. `(n, C)`, `n` = batch (times length).
    xhat: Array2<T>,
    /// `r = 1/√(σ² + ε)` per row. `(n)`.
    r: Array1<T>,
    /// Shape of the input, `(batch, C)` or `(batch, length, C)`.
    shape: Vec<usize>,
}

/// A layer normalisation layer. Parameters `weight (C)`, `bias (C)`.
pub struct LayerNorm<T: Float> {
    features: usize,
    /// Rank of the per-sample input (1 or 2).
    rank: usize,
    eps: T,
    weight: Param<T>,
    bias: Param<T>,
    cache: Option<LayerNormCache<T>>,
}

/// Rows per parallel block.
const ROWS: usize = 256;

impl<T: Float> LayerNorm<T> {
    /// Builds the layer for a per-sample input `[features]` or `[length, features]` (any
    /// length), with `weight` 1 and `bias` 0.
    pub fn new(spec: &LayerNormSpec, input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        LayerNormKind::plan(spec, input)?;
        let c = input[input.len() - 1];
        Ok(LayerNorm {
            features: c,
            rank: input.len(),
            eps: T::lit(spec.epsilon),
            weight: Param::new("weight", ArrayD::from_elem(IxDyn(&[c]), T::one())),
            bias: Param::zeros("bias", &[c]),
            cache: None,
        })
    }

    fn check(&self, shape: &[usize]) -> Result<()> {
        if shape.len() != self.rank + 1 || shape.last() != Some(&self.features) {
            let f = self.features;
            return Err(Error::Shape {
                what: "layer_norm input".into(),
                expected: if self.rank == 1 {
                    format!("(batch, {f})")
                } else {
                    format!("(batch, length, {f})")
                },
                got: fmt_shape(shape),
            });
        }
        Ok(())
    }
}

impl<T: Float> Layer<T> for LayerNorm<T> {
    fn kind(&self) -> String {
        "layer_norm".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        if input.len() != self.rank || input.last() != Some(&self.features) {
            return Err(ShapeIssue::Rank {
                expected: if self.rank == 1 {
                    format!("({})", self.features)
                } else {
                    format!("(length, {})", self.features)
                },
                got: input.to_vec(),
            });
        }
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        self.check(x.shape())?;
        self.cache = None;
        let c = self.features;
        let shape = x.shape().to_vec();
        let n = x.len() / c;
        let xs = x.as_standard_layout();
        let xs = xs.as_slice().ok_or_else(|| no_forward("layer_norm"))?;
        let mut xhat = vec![T::zero(); n * c];
        let mut r = vec![T::zero(); n];
        let inv_c = T::one() / T::lit(c as f64);
        let eps = self.eps;
        xhat.par_chunks_mut(ROWS * c)
            .zip(r.par_chunks_mut(ROWS))
            .zip(xs.par_chunks(ROWS * c))
            .for_each(|((xh, rr), xin)| {
                for ((row_out, ri), row) in xh.chunks_mut(c).zip(rr.iter_mut()).zip(xin.chunks(c)) {
                    let mu = row.iter().fold(T::zero(), |a, &v| a + v) * inv_c;
                    let var = row.iter().fold(T::zero(), |a, &v| a + (v - mu) * (v - mu)) * inv_c;
                    let inv = T::one() / (var + eps).sqrt();
                    *ri = inv;
                    for (o, &v) in row_out.iter_mut().zip(row) {
                        *o = (v - mu) * inv;
                    }
                }
            });
        let gamma = self
            .weight
            .value
            .as_slice()
            .ok_or_else(|| no_forward("layer_norm"))?;
        let beta = self
            .bias
            .value
            .as_slice()
            .ok_or_else(|| no_forward("layer_norm"))?;
        let affine = |yb: &mut [T], xb: &[T]| {
            for (yr, xr) in yb.chunks_mut(c).zip(xb.chunks(c)) {
                for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
                    *o = g * v + b;
                }
            }
        };
        let y = if mode.caches() {
            let mut y = vec![T::zero(); n * c];
            y.par_chunks_mut(ROWS * c)
                .zip(xhat.par_chunks(ROWS * c))
                .for_each(|(yb, xb)| affine(yb, xb));
            self.cache = Some(LayerNormCache {
                xhat: Array2::from_shape_vec((n, c), xhat).map_err(|_| no_forward("layer_norm"))?,
                r: Array1::from(r),
                shape: shape.clone(),
            });
            y
        } else {
            // Nothing is cached: y = γ·x̂ + β overwrites x̂ row by row (no second buffer).
            xhat.par_chunks_mut(ROWS * c).for_each(|b| {
                for row in b.chunks_mut(c) {
                    for ((o, &g), &bb) in row.iter_mut().zip(gamma).zip(beta) {
                        *o = g * *o + bb;
                    }
                }
            });
            xhat
        };
        ArrayD::from_shape_vec(IxDyn(&shape), y).map_err(|_| no_forward("layer_norm"))
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        self.backward_owned(grad_out.to_owned())
    }

    fn backward_owned(&mut self, grad_out: ArrayD<T>) -> Result<ArrayD<T>> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_forward("layer_norm"))?;
        if grad_out.shape() != cache.shape.as_slice() {
            return Err(Error::Shape {
                what: "layer_norm output gradient".into(),
                expected: fmt_shape(&cache.shape),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let c = self.features;
        let mut g = grad_out.as_standard_layout().into_owned();
        let gs = g.as_slice_mut().ok_or_else(|| no_forward("layer_norm"))?;
        let xhat = cache
            .xhat
            .as_slice()
            .ok_or_else(|| no_forward("layer_norm"))?;
        // Parameter gradients first (they read dy), summed over rows in order.
        {
            let mut dgamma = vec![T::zero(); c];
            let mut dbeta = vec![T::zero(); c];
            for (dy, xh) in gs.chunks(c).zip(xhat.chunks(c)) {
                for k in 0..c {
                    dgamma[k] += dy[k] * xh[k];
                    dbeta[k] += dy[k];
                }
            }
            for (p, d) in self.weight.grad.iter_mut().zip(&dgamma) {
                *p += *d;
            }
            for (p, d) in self.bias.grad.iter_mut().zip(&dbeta) {
                *p += *d;
            }
        }
        let gamma = self
            .weight
            .value
            .as_slice()
            .ok_or_else(|| no_forward("layer_norm"))?;
        let r = cache.r.as_slice().ok_or_else(|| no_forward("layer_norm"))?;
        let inv_c = T::one() / T::lit(c as f64);
        gs.par_chunks_mut(ROWS * c)
            .zip(xhat.par_chunks(ROWS * c))
            .zip(r.par_chunks(ROWS))
            .for_each(|((gb, xb), rb)| {
                for ((dy, xh), &ri) in gb.chunks_mut(c).zip(xb.chunks(c)).zip(rb) {
                    let mut mean_g = T::zero();
                    let mut mean_gx = T::zero();
                    for k in 0..c {
                        let gk = dy[k] * gamma[k];
                        mean_g += gk;
                        mean_gx += gk * xh[k];
                    }
                    mean_g *= inv_c;
                    mean_gx *= inv_c;
                    for k in 0..c {
                        let gk = dy[k] * gamma[k];
                        dy[k] = ri * (gk - mean_g - xh[k] * mean_gx);
                    }
                }
            });
        Ok(g)
    }

    fn params(&self) -> Vec<&Param<T>> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        vec![&mut self.weight, &mut self.bias]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    #[test]
    fn normalises_each_position_and_is_identity_in_shape() {
        let mut ln = LayerNorm::<f64>::new(&LayerNormSpec::default(), &[3, 4]).unwrap();
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
            (i[0] * 7 + i[1] * 3 + i[2] * i[2]) as f64
        });
        let y = ln.forward(x.view(), Mode::Eval).unwrap();
        assert_eq!(y.shape(), x.shape());
        for row in y.lanes(Axis(2)) {
            let mean = row.sum() / 4.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-12, "{mean}");
            assert!((var - 1.0).abs() < 1e-4, "{var}");
        }
        assert!(ln
            .forward(ArrayD::zeros(IxDyn(&[2, 3, 5])).view(), Mode::Eval)
            .is_err());
    }

    #[test]
    fn inference_in_place_gives_the_same_bits_as_a_caching_pass() {
        let spec = LayerNormSpec::default();
        let mut ln = LayerNorm::<f32>::new(&spec, &[5, 6]).unwrap();
        for (i, v) in ln.weight.value.iter_mut().enumerate() {
            *v = 0.5 + i as f32 * 0.1;
        }
        for (i, v) in ln.bias.value.iter_mut().enumerate() {
            *v = i as f32 * -0.07;
        }
        let x = ArrayD::from_shape_fn(IxDyn(&[3, 5, 6]), |i| {
            ((i[0] * 31 + i[1] * 7 + i[2] * 3) % 11) as f32 * 0.37 - 1.5
        });
        let cached = ln.forward(x.view(), Mode::Eval).unwrap();
        assert!(ln.cache.is_some());
        let infer = ln.forward(x.view(), Mode::Infer).unwrap();
        assert!(ln.cache.is_none());
        assert_eq!(cached, infer);
    }
}
