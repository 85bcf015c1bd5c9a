//! `dense`: a fully connected layer, on flat input or at every time step of a sequence.
//!
//! Forward, with the batch (and time, for 3-D input) folded into rows `n`:
//! `z[n, u] = Σ_k x[n, k]·W[u, k] + b[u]`, `y = act(z)`; i.e. `Z = X Wᵀ + b` (one GEMM).
//!
//! Backward, given `dY`: `dZ = act'(dY)` (from the cached output), then
//! `dW += dZᵀ X`, `db += Σ_n dZ[n, ·]`, `dX = dZ W`.
//!
//! On a `(batch, length, features)` input the same weights apply at every time step, like Keras'
//! `Dense` on a sequence (PyTorch's `nn.Linear` on the last axis).
//!
//! Masked batches (variable-length models): the layer computes every position, padded ones
//! too (they hold `act(b)`); the model zeroes its output past each record's length and the
//! gradient there, so padded positions contribute nothing to `dW`, `db` or `dX`.

use std::ops::AddAssign;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result, ShapeIssue};
use crate::layers::gemm::mat_mul;
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::registry::{with_activation, Issue, LayerBytes, LayerKind, MemoryIo, Planned};
use crate::layers::{checked_elems, glorot_limit, no_forward, uniform, Layer, Param};
use crate::tensor::{fmt_shape, reshape, view1, view1_mut, view2, view2_mut, Float, Mode};

/// `dense`: on `(features)` input, or on `(length, features)` applied at every time step.
/// Weight `(units, in_features)` as PyTorch; bias `(units)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    /// Required.
    pub units: usize,
    /// Default `linear`.
    #[serde(default)]
    pub activation: Activation,
    /// Default true.
    #[serde(default = "crate::layers::yes")]
    pub use_bias: bool,
}

impl Default for DenseSpec {
    fn default() -> Self {
        DenseSpec {
            units: 0,
            activation: Activation::Linear,
            use_bias: true,
        }
    }
}

/// The `dense` kind (registry entry).
pub struct DenseKind;

impl LayerKind for DenseKind {
    type Spec = DenseSpec;
    const KERAS: &'static [&'static str] = &["Dense"];

    fn plan(s: &DenseSpec, input: &[usize]) -> Issue<Planned> {
        if s.units == 0 {
            return Err(ShapeIssue::Invalid("units must be at least 1".into()));
        }
        let (output, f) = match input {
            [f] => (vec![s.units], *f),
            [l, f] => (vec![*l, s.units], *f),
            _ => {
                return Err(ShapeIssue::Rank {
                    expected: "(features) or (length, features)".into(),
                    got: input.to_vec(),
                })
            }
        };
        checked_elems("weight", &[s.units, f])?;
        let p = Planned::new(output).param("weight", &[s.units, f]);
        Ok(if s.use_bias {
            p.param("bias", &[s.units])
        } else {
            p
        })
    }

    /// Training caches a copy of the input and the output; backward's `dZ` is like the output.
    /// Inference keeps nothing.
    fn memory(_s: &DenseSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let (inp, out) = (io.input_elems(), io.output_elems());
        LayerBytes {
            cache: (inp + out) * io.elem,
            tmp: out * io.elem,
            ..io.output_only()
        }
    }

    fn build<T: Float>(
        s: &DenseSpec,
        input: &[usize],
        _seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(Dense::new(s, input, rng)?))
    }

    fn summary_kind(s: &DenseSpec, name: &'static str, output: &[Option<usize>]) -> String {
        let kind = if output.len() == 2 {
            "dense (per time step)"
        } else {
            name
        };
        with_activation(kind, s.activation)
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<DenseSpec> {
        let units = o.int("units", None)?;
        let activation = o.activation("activation", "linear")?;
        let use_bias = o.boolean("use_bias", true)?;
        Ok(DenseSpec {
            units,
            activation,
            use_bias,
        })
    }

    /// Keras `kernel (in, units)` → `weight (units, in)`, `bias` as is.
    fn keras_weights(s: &DenseSpec, vars: &mut KerasVars<'_>) -> Result<()> {
        let v = vars.take("", if s.use_bias { 2 } else { 1 })?;
        let k = vars.expect_rank(&v[0], 2, "kernel")?;
        vars.put("weight", k.reversed_axes());
        if s.use_bias {
            vars.put("bias", v[1].clone());
        }
        Ok(())
    }
}

/// What backward needs from the last forward pass.
struct DenseCache<T> {
    /// Input with batch and time folded into rows. `(n, in_features)`, `n = batch·length`.
    x: Array2<T>,
    /// Activation output. `(n, units)`.
    y: Array2<T>,
    /// Shape of the original input, `(batch, in)` or `(batch, length, in)`.
    in_shape: Vec<usize>,
    /// Shape of the output, `(batch, units)` or `(batch, length, units)`.
    out_shape: Vec<usize>,
}

/// A dense layer. Parameters `weight (units, in_features)`, `bias (units)`.
pub struct Dense<T: Float> {
    units: usize,
    in_features: usize,
    activation: Activation,
    weight: Param<T>,
    bias: Option<Param<T>>,
    cache: Option<DenseCache<T>>,
    /// Whether backward computes ∂L/∂input (off for a model's first layer in training).
    need_input_grad: bool,
}

impl<T: Float> Dense<T> {
    /// Builds the layer for a per-sample input `[features]` or `[length, features]`, with
    /// Glorot-uniform weights (Keras' default) and zero bias.
    pub fn new(
        spec: &DenseSpec,
        input: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<Self, ShapeIssue> {
        DenseKind::plan(spec, input)?;
        let in_features = input[input.len() - 1];
        let limit = glorot_limit(in_features, spec.units);
        let weight = Param::new("weight", uniform(&[spec.units, in_features], limit, rng));
        let bias = spec.use_bias.then(|| Param::zeros("bias", &[spec.units]));
        Ok(Dense {
            units: spec.units,
            in_features,
            activation: spec.activation,
            weight,
            bias,
            cache: None,
            need_input_grad: true,
        })
    }
}

impl<T: Float> Layer<T> for Dense<T> {
    fn kind(&self) -> String {
        "dense".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        match input {
            [f] if *f == self.in_features => Ok(vec![self.units]),
            [l, f] if *f == self.in_features => Ok(vec![*l, self.units]),
            _ => Err(ShapeIssue::Rank {
                expected: format!("({}) or (length, {})", self.in_features, self.in_features),
                got: input.to_vec(),
            }),
        }
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        let in_shape = x.shape().to_vec();
        if !matches!(in_shape.len(), 2 | 3) || in_shape.last() != Some(&self.in_features) {
            return Err(Error::Shape {
                what: "dense input".into(),
                expected: format!("(batch, {f}) or (batch, length, {f})", f = self.in_features),
                got: fmt_shape(&in_shape),
            });
        }
        self.cache = None;
        let rows = x.len() / self.in_features;
        let mut out_shape = in_shape.clone();
        if let Some(last) = out_shape.last_mut() {
            *last = self.units;
        }
        let mut z = Array2::zeros((rows, self.units));
        if let Some(b) = &self.bias {
            z += &view1(&b.value);
        }
        let w = view2(&self.weight.value);
        if !mode.caches() {
            // Inference: multiply straight from the caller's array when it is row-major.
            let xs = x.as_standard_layout();
            let xs = xs.as_slice().ok_or_else(|| no_forward("dense"))?;
            let x2 = ArrayView2::from_shape((rows, self.in_features), xs)
                .map_err(|_| no_forward("dense"))?;
            mat_mul(T::one(), &x2, &w.t(), T::one(), &mut z);
            self.activation.forward_inplace(z.view_mut().into_dyn());
            return Ok(reshape(z, &out_shape));
        }
        // One copy of the input (kept for backward), reshaped in place.
        let x2 = reshape(
            x.as_standard_layout().into_owned(),
            &[rows, self.in_features],
        );
        let x2 = x2
            .into_dimensionality::<Ix2>()
            .map_err(|_| no_forward("dense"))?;
        mat_mul(T::one(), &x2, &w.t(), T::one(), &mut z);
        self.activation.forward_inplace(z.view_mut().into_dyn());
        // One copy of the output (the other stays in the cache); the reshape does not copy.
        let out = reshape(z.clone(), &out_shape);
        self.cache = Some(DenseCache {
            x: x2,
            y: z,
            in_shape,
            out_shape,
        });
        Ok(out)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("dense"))?;
        let rows = cache.y.nrows();
        if grad_out.shape() != cache.out_shape.as_slice() {
            return Err(Error::Shape {
                what: "dense output gradient".into(),
                expected: fmt_shape(&cache.out_shape),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let mut dz = reshape(
            grad_out.as_standard_layout().into_owned(),
            &[rows, self.units],
        );
        self.activation
            .backward_inplace(&cache.y.view().into_dyn(), dz.view_mut());
        let dz = view2(&dz);
        mat_mul(
            T::one(),
            &dz.t(),
            &cache.x,
            T::one(),
            &mut view2_mut(&mut self.weight.grad),
        );
        if let Some(b) = &mut self.bias {
            view1_mut(&mut b.grad).add_assign(&dz.sum_axis(Axis(0)));
        }
        if !self.need_input_grad {
            return Ok(ArrayD::zeros(ndarray::IxDyn(&cache.in_shape)));
        }
        let mut dx = Array2::zeros((rows, self.in_features));
        mat_mul(
            T::one(),
            &dz,
            &view2(&self.weight.value),
            T::zero(),
            &mut dx,
        );
        Ok(reshape(dx, &cache.in_shape))
    }

    fn params(&self) -> Vec<&Param<T>> {
        std::iter::once(&self.weight)
            .chain(self.bias.as_ref())
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        std::iter::once(&mut self.weight)
            .chain(self.bias.as_mut())
            .collect()
    }

    fn take_output_activation(&mut self) -> Option<Activation> {
        self.activation.take_output()
    }

    fn set_need_input_grad(&mut self, on: bool) {
        self.need_input_grad = on;
    }
}
