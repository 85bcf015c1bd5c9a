//! `flatten`: `(L, C) → (L·C)`, time-major as Keras: output index `t·C + c` — exactly the
//! row-major order of the channels-last array, so forward and backward are reshapes:
//! `y[b, t·C + c] = x[b, t, c]`, `dx[b, t, c] = dy[b, t·C + c]`.
//!
//! On a 1-D `(features)` input, flatten is the identity (as Keras' `Flatten` on
//! `(batch, features)`).

use ndarray::{ArrayD, ArrayViewD};

use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::KerasOpts;
use crate::layers::registry::{
    EmptySpec, Issue, LayerBytes, LayerKind, MemoryIo, Planned, TimeAxisHint,
};
use crate::layers::{checked_elems, no_forward, Layer};
use crate::tensor::{check_batched, fmt_shape, owned_as, owned_as_in, Float, Mode};

/// Flattens each sample to one axis (no parameters).
pub struct Flatten<T: Float> {
    /// The per-sample input shape it was built for (`None` for [`Flatten::default`], which
    /// accepts any `(batch, …)`).
    input: Option<Vec<usize>>,
    /// Input shape of the last forward pass, `(batch, …input)`.
    cache: Option<Vec<usize>>,
    /// The last output, handed back by the model ([`Layer::recycle`]): the next pass copies
    /// into it when the sizes match. `(batch·features)`.
    spare: Vec<T>,
}

/// The `flatten` kind (registry entry).
pub struct FlattenKind;

impl LayerKind for FlattenKind {
    type Spec = EmptySpec;
    const KERAS: &'static [&'static str] = &["Flatten"];

    fn plan(_s: &EmptySpec, input: &[usize]) -> Issue<Planned> {
        if input.is_empty() {
            return Err(ShapeIssue::Rank {
                expected: "(length, channels) or (features)".into(),
                got: Vec::new(),
            });
        }
        Ok(Planned::new(vec![checked_elems("flattened input", input)?]))
    }

    /// Its output only; in inference the last output is held for the next pass (`spare`).
    fn memory(_s: &EmptySpec, io: &MemoryIo<'_>) -> LayerBytes {
        let out = io.output_only();
        LayerBytes {
            spare: out.out,
            ..out
        }
    }

    fn build<T: Float>(
        _s: &EmptySpec,
        input: &[usize],
        _seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(Flatten::<T>::new(input)?))
    }

    fn needs_fixed_length(_s: &EmptySpec) -> Option<String> {
        Some("flatten needs a fixed length".into())
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<EmptySpec> {
        o.channels_last()?;
        Ok(EmptySpec {})
    }

    /// Remove the flatten; when the model would then end in a sequence, move it after the
    /// last recurrent layer instead.
    fn removed_time_axis(_s: &EmptySpec, _name: &'static str, h: &TimeAxisHint) -> String {
        let removed = h.removed("Flatten");
        match (h.recurrent, h.move_after) {
            (true, Some(r)) => format!(
                "{removed}: move the Flatten after layer #{r} (the last recurrent layer) so {} \
                 gets {} as (length, features) and the model still ends in a flat output; or \
                 remove it and set return_sequences=false on the last recurrent layer",
                h.this, h.before
            ),
            (true, None) => format!(
                "{removed}: remove the Flatten so {} gets {} as (length, features); to classify \
                 the whole sequence, set return_sequences=false on the last recurrent layer",
                h.this, h.before
            ),
            (false, _) => format!(
                "{removed}: remove the Flatten so {} gets {} as (length, features)",
                h.this, h.before
            ),
        }
    }
}

impl<T: Float> Flatten<T> {
    /// Builds the layer for a per-sample input `[length, channels]` or `[features]`.
    pub fn new(input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        FlattenKind::plan(&EmptySpec {}, input)?;
        Ok(Flatten {
            input: Some(input.to_vec()),
            cache: None,
            spare: Vec::new(),
        })
    }
}

impl<T: Float> Default for Flatten<T> {
    fn default() -> Self {
        Flatten {
            input: None,
            cache: None,
            spare: Vec::new(),
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
        owned_as_in(&x, &[batch, feat], std::mem::take(&mut self.spare))
    }

    fn recycle(&mut self, spent: ArrayD<T>) {
        let (v, offset) = spent.into_raw_vec_and_offset();
        if offset.unwrap_or(0) == 0 {
            self.spare = v;
        }
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
