//! `flatten`: `(L, C) → (L·C)`, time-major as Keras: output index `t·C + c` — exactly the
//! row-major order of the channels-last array, so forward and backward are reshapes:
//! `y[b, t·C + c] = x[b, t, c]`, `dx[b, t, c] = dy[b, t·C + c]`.
//!
//! On a 1-D `(features)` input, flatten is the identity (as Keras' `Flatten` on
//! `(batch, features)`).

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::{checked_elems, no_forward, Layer};
use crate::tensor::{check_batched, fmt_shape, owned_as, Float, Mode};

/// Flattens each sample to one axis (no parameters).
pub struct Flatten<T: Float> {
    /// The per-sample input shape it was built for (`None` for [`Flatten::default`], which
    /// accepts any `(batch, …)`).
    input: Option<Vec<usize>>,
    /// Input shape of the last forward pass, `(batch, …input)`.
    cache: Option<Vec<usize>>,
    _t: PhantomData<T>,
}

impl<T: Float> Flatten<T> {
    /// Builds the layer for a per-sample input `[length, channels]` or `[features]`.
    pub fn new(input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        if input.is_empty() {
            return Err(ShapeIssue::Rank {
                expected: "(length, channels) or (features)".into(),
                got: Vec::new(),
            });
        }
        checked_elems("flattened input", input)?;
        Ok(Flatten {
            input: Some(input.to_vec()),
            cache: None,
            _t: PhantomData,
        })
    }
}

impl<T: Float> Default for Flatten<T> {
    fn default() -> Self {
        Flatten {
            input: None,
            cache: None,
            _t: PhantomData,
        }
    }
}

impl<T: Float> Layer<T> for Flatten<T> {
    fn kind(&self) -> String {
        "flatten".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        if input.is_empty() {
            return Err(ShapeIssue::Rank {
                expected: "(length, channels) or (features)".into(),
                got: Vec::new(),
            });
        }
        Ok(vec![checked_elems("flattened input", input)?])
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        // Any shape with a batch axis, or exactly the one the layer was built for, when known.
        match &self.input {
            Some(input) => check_batched("flatten input", input, x.shape())?,
            None if x.ndim() < 2 => {
                return Err(Error::Shape {
                    what: "flatten input".into(),
                    expected: "(batch, …)".into(),
                    got: fmt_shape(x.shape()),
                })
            }
            None => {}
        }
        let shape = x.shape().to_vec();
        let batch = shape[0];
        let feat: usize = shape[1..].iter().product();
        self.cache = mode.caches().then_some(shape);
        owned_as(&x, &[batch, feat])
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let shape = self.cache.as_ref().ok_or_else(|| no_forward("flatten"))?;
        let expected = [shape[0], shape[1..].iter().product()];
        if grad_out.shape() != expected {
            return Err(Error::Shape {
                what: "flatten output gradient".into(),
                expected: fmt_shape(&expected),
                got: fmt_shape(grad_out.shape()),
            });
        }
        owned_as(&grad_out, shape)
    }
}
