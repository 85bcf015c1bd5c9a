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

use ndarray::{ArrayD, ArrayViewD};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::KerasOpts;
use crate::layers::registry::{Issue, LayerBytes, LayerKind, MemoryIo, Planned};
use crate::layers::{no_forward, Layer};
use crate::tensor::{check_batched, fmt_shape, Float, Mode};

/// `dropout`: inverted dropout, identity in eval mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropoutSpec {
    /// Fraction of inputs set to zero in training, in [0, 1).
    pub rate: f64,
}

/// The `dropout` kind (registry entry).
pub struct DropoutKind;

impl LayerKind for DropoutKind {
    type Spec = DropoutSpec;
    const KERAS: &'static [&'static str] = &["Dropout"];

    fn plan(s: &DropoutSpec, input: &[usize]) -> Issue<Planned> {
        if !(s.rate >= 0.0 && s.rate < 1.0) {
            return Err(ShapeIssue::Invalid(format!(
                "rate must be in [0, 1), got {}",
                s.rate
            )));
        }
        Ok(Planned::new(input.to_vec()))
    }

    /// Training keeps one mask bit per element; evaluation passes its input through.
    fn memory(s: &DropoutSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let mask = if io.train && s.rate > 0.0 {
            (io.output_elems() / 64.0).ceil() * 8.0
        } else {
            0.0
        };
        LayerBytes {
            cache: mask,
            ..io.output_only()
        }
    }

    fn build<T: Float>(
        s: &DropoutSpec,
        input: &[usize],
        seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(Dropout::<T>::new(s, seed)?.for_input(input)))
    }

    fn any_length(_s: &DropoutSpec) -> bool {
        true
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<DropoutSpec> {
        Ok(DropoutSpec {
            rate: o.float("rate", 0.0)?,
        })
    }
}

/// What backward needs from the last forward pass.
struct DropoutCache<T> {
    /// The keep mask, one bit per element in row-major order (bit `i % 64` of word `i / 64`:
    /// kept, scaled by `1/(1 − r)`, else zeroed); `None` in eval mode (or for rate 0), where
    /// dropout is the identity. Bits instead of a scaled copy of the input: W3 keeps 0.9 MB
    /// instead of 28.8 MB.
    mask: Option<Vec<u64>>,
    /// `1/(1 − r)`.
    scale: T,
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
        DropoutKind::plan(spec, &[])?;
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

    /// The keep bits for `n` elements at the current step (see [`DropoutCache::mask`]).
    ///
    /// Element `i` is kept when the `i`-th 32-bit word of the ChaCha8 stream keyed by (seed,
    /// step) is ≥ r·2³² (probability 1 − r). Blocks of [`MASK_WORDS`]·64 elements are drawn in
    /// parallel, each thread jumping to its block's word in the stream (`set_word_pos`), so
    /// the bits are those of one sequential pass whatever the thread count.
    fn mask(&self, n: usize) -> Vec<u64> {
        use rayon::prelude::*;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&self.step.to_le_bytes());
        key[16..24].copy_from_slice(b"dropout!");
        let rng = ChaCha8Rng::from_seed(key);
        let threshold = (self.rate * 4_294_967_296.0).ceil() as u64;
        let mut bits = vec![0u64; n.div_ceil(64)];
        bits.par_chunks_mut(MASK_WORDS)
            .enumerate()
            .for_each(|(c, block)| {
                let first = c * MASK_WORDS * 64;
                let mut r = rng.clone();
                r.set_word_pos(first as u128);
                for (w, word) in block.iter_mut().enumerate() {
                    let base = first + w * 64;
                    for j in 0..(n - base).min(64) {
                        if u64::from(r.next_u32()) >= threshold {
                            *word |= 1 << j;
                        }
                    }
                }
            });
        bits
    }

    /// `a ⊙ m` in place (`a` row-major): kept elements times `1/(1 − r)`, dropped ones times 0
    /// (so a NaN or ±∞ stays NaN, as with a multiplied mask). Parallel over blocks of
    /// [`MASK_WORDS`]·64 elements (each element is written by one thread).
    fn apply(a: &mut [T], bits: &[u64], scale: T) {
        use rayon::prelude::*;
        a.par_chunks_mut(MASK_WORDS * 64)
            .zip(bits.par_chunks(MASK_WORDS))
            .for_each(|(a, bits)| {
                for (chunk, &word) in a.chunks_mut(64).zip(bits) {
                    for (j, v) in chunk.iter_mut().enumerate() {
                        *v *= if word >> j & 1 == 1 { scale } else { T::zero() };
                    }
                }
            });
    }
}

/// Mask words (of 64 elements) per parallel block: 16,384 elements.
const MASK_WORDS: usize = 256;

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
            self.cache = mode.caches().then_some(DropoutCache {
                mask: None,
                scale: T::one(),
                shape,
            });
            return Ok(x.to_owned());
        }
        let mask = self.mask(x.len());
        let scale = T::lit(1.0 / (1.0 - self.rate));
        let mut y = x.as_standard_layout().into_owned();
        let ys = y.as_slice_mut().ok_or_else(|| no_forward("dropout"))?;
        Self::apply(ys, &mask, scale);
        self.cache = Some(DropoutCache {
            mask: Some(mask),
            scale,
            shape,
        });
        Ok(y)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        self.backward_owned(grad_out.as_standard_layout().into_owned())
    }

    /// Multiplies the mask into `grad_out` in place.
    fn backward_owned(&mut self, grad_out: ArrayD<T>) -> Result<ArrayD<T>> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("dropout"))?;
        if grad_out.shape() != cache.shape.as_slice() {
            return Err(Error::Shape {
                what: "dropout output gradient".into(),
                expected: fmt_shape(&cache.shape),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let mut dx = if grad_out.is_standard_layout() {
            grad_out
        } else {
            grad_out.as_standard_layout().into_owned()
        };
        if let Some(mask) = &cache.mask {
            let d = dx.as_slice_mut().ok_or_else(|| no_forward("dropout"))?;
            Self::apply(d, mask, cache.scale);
        }
        Ok(dx)
    }

    fn set_step(&mut self, step: u64) {
        self.step = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask as one sequential pass over the stream (the definition `mask` parallelises).
    fn sequential_mask(seed: u64, step: u64, rate: f64, n: usize) -> Vec<u64> {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&step.to_le_bytes());
        key[16..24].copy_from_slice(b"dropout!");
        let mut rng = ChaCha8Rng::from_seed(key);
        let threshold = (rate * 4_294_967_296.0).ceil() as u64;
        let mut bits = vec![0u64; n.div_ceil(64)];
        for i in 0..n {
            if u64::from(rng.next_u32()) >= threshold {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        bits
    }

    #[test]
    fn parallel_mask_is_the_sequential_stream_at_any_thread_count() {
        // Sizes around the block (16,384) and word (64) boundaries, and a ragged tail.
        for n in [1, 63, 64, 65, 16_383, 16_384, 16_385, 50_001, 100_000] {
            let mut d = Dropout::<f32>::new(&DropoutSpec { rate: 0.3 }, 7).unwrap();
            d.set_step(5);
            let want = sequential_mask(7, 5, 0.3, n);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                assert_eq!(
                    pool.install(|| d.mask(n)),
                    want,
                    "n = {n}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn apply_scales_kept_and_zeroes_dropped_elements() {
        let n = 40_000;
        let bits = sequential_mask(1, 2, 0.5, n);
        let mut a = vec![1.0f32; n];
        Dropout::<f32>::apply(&mut a, &bits, 2.0);
        for (i, v) in a.iter().enumerate() {
            let kept = bits[i / 64] >> (i % 64) & 1 == 1;
            assert_eq!(*v, if kept { 2.0 } else { 0.0 }, "element {i}");
        }
    }
}
