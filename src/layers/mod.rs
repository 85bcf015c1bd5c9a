//! The [`Layer`] trait and the layers. One layer per file; each file opens with the forward and
//! backward maths it implements (derivations in `docs/layers.md` and `docs/rnn.md`).
//!
//! Contract every layer keeps:
//! - [`Layer::output_shape`] validates a per-sample input shape (no batch axis) at build time.
//! - [`Layer::forward`] caches what backward needs in a typed cache (both in `Train` and `Eval`
//!   mode, so gradients can be taken of an eval-mode model); `Mode::Infer` keeps no cache (only
//!   reusable working buffers), so a following backward gives [`Error::NoForward`].
//! - [`Layer::backward`] reads that cache, returns ∂L/∂input and **adds** into the parameter
//!   gradients (so two backward passes double them); without a cached forward it returns
//!   [`Error::NoForward`].

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::activation::Activation;
use crate::error::{Error, Result, ShapeIssue};
use crate::tensor::{Float, Mode};

pub mod activation_layer;
pub mod conv1d;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod gemm;
pub mod global_pool;
pub mod keras_config;
pub mod layer_norm;
pub mod pool;
pub mod registry;
pub mod rnn;

pub use registry::{EmptySpec, LayerKind, LayerSpec, Padding, Planned};

/// serde default: 1.
pub(crate) fn one() -> usize {
    1
}

/// serde default: true.
pub(crate) fn yes() -> bool {
    true
}

/// A named parameter and its gradient (same shape). Names and shapes follow PyTorch
/// (`weight`, `bias`, `weight_ih_l0`, `weight_hh_l0_reverse` …); the model prefixes
/// `layers.{i}.`.
#[derive(Debug, Clone)]
pub struct Param<T> {
    pub name: String,
    pub value: ArrayD<T>,
    pub grad: ArrayD<T>,
}

impl<T: Float> Param<T> {
    /// A parameter with a zero gradient of the same shape.
    pub fn new(name: impl Into<String>, value: ArrayD<T>) -> Self {
        let grad = ArrayD::zeros(value.raw_dim());
        Param {
            name: name.into(),
            value,
            grad,
        }
    }

    /// A zero-initialised parameter of the given shape.
    pub fn zeros(name: impl Into<String>, shape: &[usize]) -> Self {
        Self::new(name, ArrayD::zeros(IxDyn(shape)))
    }
}

/// Anything that holds parameters under full PyTorch names (`layers.{i}.weight` …): what a
/// state dict is read from and written into ([`crate::weights`]). [`crate::Sequential`]
/// implements it.
pub trait NamedParams<T: Float> {
    /// Parameters with their full names, in the model's order.
    fn named_params(&self) -> Vec<(String, &Param<T>)>;
    /// Mutable parameters with their full names, in the model's order.
    fn named_params_mut(&mut self) -> Vec<(String, &mut Param<T>)>;
}

/// One layer of a model. Object safe: a model is a `Vec<Box<dyn Layer<T>>>`.
pub trait Layer<T: Float>: Send + Sync {
    /// Layer type as written in the model file (`conv1d`, `bidirectional(lstm)` …).
    fn kind(&self) -> String;

    /// The per-sample output shape for a per-sample input shape, or why the input is wrong.
    ///
    /// # Shapes
    /// - `input`: `[length, channels]` or `[features]` (no batch axis).
    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue>;

    /// Runs the layer on a batch and caches what backward needs.
    ///
    /// # Shapes
    /// - `x`: `(batch, …input)`; returns `(batch, …output)`.
    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>>;

    /// Back-propagates ∂L/∂output through the cached forward pass: returns ∂L/∂input and adds
    /// into every parameter's gradient.
    ///
    /// # Shapes
    /// - `grad_out`: like the last forward's output; returns the last forward's input shape.
    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>>;

    /// [`Layer::backward`] taking ownership of ∂L/∂output, so a layer can work in its memory
    /// instead of copying it (conv1d: W3's 125 MB output gradient). Same result as
    /// `backward`; the model calls this one.
    ///
    /// # Shapes
    /// As [`Layer::backward`].
    fn backward_owned(&mut self, grad_out: ArrayD<T>) -> Result<ArrayD<T>> {
        self.backward(grad_out.view())
    }

    /// Takes back this layer's last inference output ([`Mode::Infer`]) once the next layer has
    /// read it, so the next inference pass can write into the same memory instead of faulting
    /// in fresh zeroed pages (conv1d: W3's 125 MB output). The default drops it.
    fn recycle(&mut self, _spent: ArrayD<T>) {}

    /// Parameters, in a fixed order (PyTorch's order within the layer).
    fn params(&self) -> Vec<&Param<T>> {
        Vec::new()
    }

    /// Parameters, mutable, in the same order as [`Layer::params`].
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        Vec::new()
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        for p in self.params_mut() {
            p.grad.fill(T::zero());
        }
    }

    /// Number of scalar parameters.
    fn param_count(&self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    /// Tells stochastic layers (dropout) which training step this is: their randomness is a
    /// pure function of (seed, step), so runs are reproducible and resumable, and a gradient
    /// check sees the same mask on every forward pass.
    fn set_step(&mut self, _step: u64) {}

    /// Detaches a final softmax/sigmoid so the loss can work on logits (numerically stable);
    /// the model applies it as its output head. Layers without an output activation return
    /// `None` and stay unchanged.
    fn take_output_activation(&mut self) -> Option<Activation> {
        None
    }

    /// Whether backward must compute ∂L/∂input. A model turns it off on its first layer when
    /// nobody needs the gradient with respect to the data (training), which saves that
    /// layer's input-gradient product; backward then returns zeros of the input's shape.
    /// Layers that do not implement it always compute the gradient.
    fn set_need_input_grad(&mut self, _on: bool) {}

    /// Per-record lengths for the next forward pass (and the backward pass after it), for a
    /// batch of records padded to the batch's length: `lengths[b]` real positions of record b
    /// (1 ..= padded length), `None` = every record is full length (the default, unmasked
    /// path). The model calls it before every forward with the lengths of the layer's input.
    ///
    /// Layers whose result at a real position reads padded positions (pools, global pools,
    /// recurrent layers) restrict themselves to real positions; the model zeroes every
    /// sequence output past each record's output length (and the gradient there), so
    /// position-wise layers (dense, activation, dropout) and `conv1d` need nothing else
    /// (their input past a record's end is zero, as for the record alone zero-padded).
    /// Layers without sequences ignore it.
    fn set_lengths(&mut self, _lengths: Option<&[usize]>) {}

    /// The per-record output lengths for per-record input lengths (sequence in, sequence out),
    /// or, for a record too short for a window, `Err((record index, minimal length))`.
    /// Default: unchanged (position-wise layers, recurrent layers with `return_sequences`).
    /// Layers whose output has no time axis may return anything (the model ignores it).
    fn output_lengths(&self, lengths: &[usize]) -> std::result::Result<Vec<usize>, (usize, usize)> {
        Ok(lengths.to_vec())
    }

    /// Turns on/off recording of per-time-step gradient norms ‖∂L/∂h_t‖ (recurrent layers).
    fn set_record_step_grads(&mut self, _on: bool) {}

    /// The per-step gradient norms recorded by the last backward pass: one `(name, norms)` per
    /// direction, `norms` shaped `(batch, length)`. Empty for non-recurrent layers or when
    /// recording is off.
    fn step_grad_norms(&self) -> Vec<(String, ndarray::Array2<f64>)> {
        Vec::new()
    }

    /// Saturation of the sigmoid gates in the last forward pass (recurrent layers): one
    /// `(direction, gate, fraction)` per sigmoid gate (LSTM `i`, `f`, `o`; GRU `r`, `z`), the
    /// fraction of its activations below 0.01 or above 0.99 over batch, time and units. Empty
    /// for other layers or before a forward pass.
    fn gate_saturation(&self) -> Vec<(String, String, f64)> {
        Vec::new()
    }
}

/// The error for a backward pass with no cached forward.
pub(crate) fn no_forward(layer: &str) -> Error {
    Error::NoForward {
        layer: layer.to_string(),
    }
}

/// The most elements seqgrad allows in one tensor (a parameter, or one sample's activations):
/// 2³⁰. Larger options are refused when the model is built instead of failing to allocate.
pub const MAX_TENSOR_ELEMS: usize = 1 << 30;

/// The element count of a tensor of `shape`, or why it is too big: its product overflows or
/// exceeds [`MAX_TENSOR_ELEMS`]. `what` names the tensor in the message (`weight`, `output` …).
pub fn checked_elems(what: &str, shape: &[usize]) -> std::result::Result<usize, ShapeIssue> {
    let exact = shape
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128));
    match exact {
        Some(n) if n <= MAX_TENSOR_ELEMS as u128 => Ok(n as usize),
        _ => {
            let held = exact.map_or_else(|| "more than 2^128".to_string(), |n| n.to_string());
            Err(ShapeIssue::Invalid(format!(
                "{what} {} would hold {held} elements, more than the {MAX_TENSOR_ELEMS} seqgrad \
                 allows",
                crate::tensor::fmt_shape(shape)
            )))
        }
    }
}

/// Glorot-uniform limit `sqrt(6 / (fan_in + fan_out))`, Keras' default kernel initialiser.
pub fn glorot_limit(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}

/// An array of the given shape drawn from U(−limit, limit), row-major: exactly the values of
/// one `rng.random_range(-limit..=limit)` per element in order (one `u64`, two 32-bit words of
/// the ChaCha stream, each), drawn in parallel by [`par_draws`].
///
/// # Shapes
/// - returns `shape`.
pub fn uniform<T: Float>(
    shape: &[usize],
    limit: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> ArrayD<T> {
    use rand::Rng;
    let n = shape.iter().product();
    let v = par_draws(n, 2, rng, |r| T::lit(r.random_range(-limit..=limit)));
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("n = product of shape") // ok: len = n
}

/// `n` values of `draw`, exactly as `n` calls of `draw(rng)` in a row would give them, and `rng`
/// advanced past them. Each call must consume exactly `words` 32-bit words of the ChaCha
/// stream (checked in debug builds); the stream is then cut into chunks that threads draw
/// independently by jumping to their start (`set_word_pos`), so the values do not depend on
/// the thread count. Used for weight initialisation, where drawing tens of millions of values
/// one after the other took most of a big model's build time.
pub(crate) fn par_draws<V, F>(
    n: usize,
    words: u128,
    rng: &mut rand_chacha::ChaCha8Rng,
    draw: F,
) -> Vec<V>
where
    V: Send + Default + Clone,
    F: Fn(&mut rand_chacha::ChaCha8Rng) -> V + Sync,
{
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    let start = rng.get_word_pos();
    let mut out = vec![V::default(); n];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut r = rng.clone();
            let from = start + words * (i * CHUNK) as u128;
            r.set_word_pos(from);
            for v in chunk.iter_mut() {
                *v = draw(&mut r);
            }
            debug_assert_eq!(r.get_word_pos(), from + words * chunk.len() as u128);
        });
    rng.set_word_pos(start + words * n as u128);
    out
}
