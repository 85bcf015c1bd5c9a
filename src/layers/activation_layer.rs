//! `activation`: applies `linear`, `relu`, `tanh`, `sigmoid` or `softmax` (over the last axis)
//! as its own layer. Forward `y = act(x)`; backward from the cached output `y`
//! (see [`crate::activation`]): `relu: dx = dy·[y > 0]`, `tanh: dx = dy·(1 − y²)`,
//! `sigmoid: dx = dy·y·(1 − y)`, `softmax: dx_j = y_j·(dy_j − Σ_k dy_k y_k)` (the
//! Jacobian-vector product, never the full Jacobian).
//!
//! Masked batches (variable-length models): position-wise; the model zeroes padded positions
//! of the output (where e.g. `sigmoid(0) = 0.5`) and their gradient.
//!
//! As the last layer of a model, a `softmax`/`sigmoid` activation layer hands its function to
//! the model head ([`Layer::take_output_activation`]) so the loss can work on logits.

use ndarray::{ArrayD, ArrayViewD};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::KerasOpts;
use crate::layers::registry::{Issue, LayerBytes, LayerKind, MemoryIo, Planned};
use crate::layers::{no_forward, Layer};
use crate::tensor::{check_batched, fmt_shape, Float, Mode};

/// `activation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivationSpec {
    pub activation: Activation,
}

/// The `activation` kind (registry entry).
pub struct ActivationKind;

impl LayerKind for ActivationKind {
    type Spec = ActivationSpec;
    const KERAS: &'static [&'static str] = &["Activation"];

    fn plan(_s: &ActivationSpec, input: &[usize]) -> Issue<Planned> {
        if input.is_empty() {
            return Err(ShapeIssue::Rank {
                expected: "(features) or (length, features)".into(),
                got: Vec::new(),
            });
        }
        Ok(Planned::new(input.to_vec()))
    }

    /// Training and gradient passes cache the output.
    fn memory(_s: &ActivationSpec, io: &MemoryIo<'_>) -> LayerBytes {
        LayerBytes {
            cache: io.output_elems() * io.elem,
            ..io.output_only()
        }
    }

    fn build<T: Float>(
        s: &ActivationSpec,
        input: &[usize],
        _seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(ActivationLayer::<T>::new(s, input)?))
    }

    fn any_length(_s: &ActivationSpec) -> bool {
        true
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<ActivationSpec> {
        Ok(ActivationSpec {
            activation: o.activation("activation", "linear")?,
        })
    }
}

/// An activation layer (no parameters).
pub struct ActivationLayer<T: Float> {
    activation: Activation,
    /// The per-sample input shape it was built for.
    input: Vec<usize>,
    /// Output of the last forward pass, like the input `(batch, …)`.
    cache: Option<ArrayD<T>>,
}

impl<T: Float> ActivationLayer<T> {
    /// Builds the layer for any per-sample input shape.
    pub fn new(spec: &ActivationSpec, input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        ActivationKind::plan(spec, input)?;
        Ok(ActivationLayer {
            activation: spec.activation,
            input: input.to_vec(),
            cache: None,
        })
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl<T: Float> Layer<T> for ActivationLayer<T> {
    fn kind(&self) -> String {
        "activation".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        check_batched("activation input", &self.input, x.shape())?;
        let y = self.activation.forward(&x);
        self.cache = mode.caches().then(|| y.clone());
        Ok(y)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let y = self
            .cache
            .as_ref()
            .ok_or_else(|| no_forward("activation"))?;
        if grad_out.shape() != y.shape() {
            return Err(Error::Shape {
                what: "activation output gradient".into(),
                expected: fmt_shape(y.shape()),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let mut dx = grad_out.to_owned();
        self.activation.backward_inplace(&y.view(), dx.view_mut());
        Ok(dx)
    }

    fn take_output_activation(&mut self) -> Option<Activation> {
        self.activation.take_output()
    }
}
