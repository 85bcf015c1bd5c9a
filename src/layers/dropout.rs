//! `dropout`: inverted dropout with rate `r ∈ [0, 1)`.
//!
//! Train mode: `y = x ⊙ m` with `m_i = 1/(1 − r)` with probability `1 − r` and `0` otherwise,
//! so `E[y] = x`; backward `dx = dy ⊙ m` with the cached mask. Eval mode: `y = x`, `dx = dy`.
//!
//! The mask is a pure function of `(layer seed, step, element index)`: a ChaCha8 stream keyed by
//! the seed and the step set with [`Layer::set_step`]. The same seed and step give the same
//! mask (reproducible, resumable runs; a gradient check sees the same mask on every forward
//! pass); a new step gives a new mask.
//!
//! Masked batches (variable-length models): position-wise, nothing to mask; the model zeroes
//! padded positions of the output and their gradient. The train-mode mask is drawn over the
//! padded batch, so a record's mask differs from the one it would get alone (as it differs
//! between batches anyway); eval and inference are exact.

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, Zip};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::{no_forward, Layer};
use crate::spec::DropoutSpec;
use crate::tensor::{check_batched, fmt_shape, Float, Mode};

/// What backward needs from the last forward pass.
struct DropoutCache<T> {
    /// The scaled keep mask (`0` or `1/(1 − r)`), like the input; `None` in eval mode (or for
    /// rate 0), where dropout is the identity.
    mask: Option<ArrayD<T>>,
    /// Shape of the input `(batch, …)`.
    shape: Vec<usize>,
}

/// Inverted dropout (no parameters).
pub struct Dropout<T: Float> {
    rate: f64,
    seed: u64,
    step: u64,
    /// The per-sample input shape, when known ([`Dropout::for_input`]); `None` accepts any
    /// `(batch, …)`.
    input: Option<Vec<usize>>,
    cache: Option<DropoutCache<T>>,
    _t: PhantomData<T>,
}

impl<T: Float> Dropout<T> {
    /// Builds the layer; `seed` is this layer's own seed (the model derives it from the model
    /// seed and the layer index).
    pub fn new(spec: &DropoutSpec, seed: u64) -> std::result::Result<Self, ShapeIssue> {
        if !(spec.rate >= 0.0 && spec.rate < 1.0) {
            return Err(ShapeIssue::Invalid(format!(
                "rate must be in [0, 1), got {}",
                spec.rate
            )));
        }
        Ok(Dropout {
            rate: spec.rate,
            seed,
            step: 0,
            input: None,
            cache: None,
            _t: PhantomData,
        })
    }

    /// Fixes the per-sample input shape, so `forward` refuses any other (the model builds its
    /// dropout layers this way).
    pub fn for_input(mut self, input: &[usize]) -> Self {
        self.input = Some(input.to_vec());
        self
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The scaled keep mask for `shape` at the current step.
    fn mask(&self, shape: &[usize]) -> ArrayD<T> {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&self.step.to_le_bytes());
        key[16..24].copy_from_slice(b"dropout!");
        let mut rng = ChaCha8Rng::from_seed(key);
        // Keep when a uniform 32-bit draw is ≥ r·2³² (probability 1 − r).
        let threshold = (self.rate * 4_294_967_296.0).ceil() as u64;
        let scale = T::lit(1.0 / (1.0 - self.rate));
        ArrayD::from_shape_simple_fn(ndarray::IxDyn(shape), || {
            if u64::from(rng.next_u32()) >= threshold {
                scale
            } else {
                T::zero()
            }
        })
    }
}

impl<T: Float> Layer<T> for Dropout<T> {
    fn kind(&self) -> String {
        "dropout".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        // Element-wise, so any shape would work, but it must have a batch axis.
        // Any shape with a batch axis, or exactly the one the layer was built for, when known.
        match &self.input {
            Some(input) => check_batched("dropout input", input, x.shape())?,
            None if x.ndim() < 2 => {
                return Err(Error::Shape {
                    what: "dropout input".into(),
                    expected: "(batch, …)".into(),
                    got: fmt_shape(x.shape()),
                })
            }
            None => {}
        }
        let shape = x.shape().to_vec();
        if mode != Mode::Train || self.rate == 0.0 {
            self.cache = mode.caches().then_some(DropoutCache { mask: None, shape });
            return Ok(x.to_owned());
        }
        let mask = self.mask(&shape);
        let mut y = x.to_owned();
        Zip::from(&mut y).and(&mask).for_each(|y, &m| *y *= m);
        self.cache = Some(DropoutCache {
            mask: Some(mask),
            shape,
        });
        Ok(y)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("dropout"))?;
        if grad_out.shape() != cache.shape.as_slice() {
            return Err(Error::Shape {
                what: "dropout output gradient".into(),
                expected: fmt_shape(&cache.shape),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let mut dx = grad_out.to_owned();
        if let Some(mask) = &cache.mask {
            Zip::from(&mut dx).and(mask).for_each(|d, &m| *d *= m);
        }
        Ok(dx)
    }

    fn set_step(&mut self, step: u64) {
        self.step = step;
    }
}
