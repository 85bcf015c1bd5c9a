//! `conv1d`: a 1-D convolution over a channels-last sequence (Keras `Conv1D` semantics,
//! PyTorch weight layout).
//!
//! Notation: input `x (B, L, C)`, weight `W (F, C, K)`, bias `b (F)`, stride `s`, dilation `d`,
//! dilated kernel span `S = (K − 1)·d + 1`, left padding `P`, output length `L'`.
//!
//! Geometry:
//! - `valid`: `P = 0`, `L' = ⌊(L − S) / s⌋ + 1` (an error if `S > L`).
//! - `same` (Keras, also for `s > 1`): `L' = ⌈L / s⌉`, total padding
//!   `max((L' − 1)·s + S − L, 0)`, `P = ⌊total / 2⌋`, the rest on the right.
//!
//! Forward: `z[b, t, f] = b[f] + Σ_{k, c} W[f, c, k] · x[b, t·s + k·d − P, c]` (zero outside
//! `[0, L)`), `y = act(z)`.
//!
//! As one matrix product (im2col): the patch matrix `X̂ (B·L', K·C)` has row `b·L' + t` and
//! column `k·C + c` equal to `x[b, t·s + k·d − P, c]`; with `Ŵ (K·C, F)`,
//! `Ŵ[k·C + c, f] = W[f, c, k]`, the forward pass is `Z = X̂ Ŵ + 1 bᵀ`.
//!
//! Backward, given `dY`: `dZ = act'(dY)` (from the cached output), then
//! `dŴ = X̂ᵀ dZ` (scattered back: `dW[f, c, k] += dŴ[k·C + c, f]`), `db += Σ_rows dZ`,
//! `dX̂ = dZ Ŵᵀ`, and col2im: `dx[b, t·s + k·d − P, c] += dX̂[b·L' + t, k·C + c]` — every
//! input position that several windows (or taps) read receives the *sum* of their gradients.
//!
//! Masked batches ([`Layer::set_lengths`], variable-length models): record `b` of real length
//! `L_b` uses its own geometry — `L'_b` and `P_b` from the formulas above with `L = L_b` (so
//! `same` with `s > 1` gets the left padding the record alone would) — and its patch rows read
//! only `[0, L_b)`; rows `t ≥ L'_b` are zero patches (the model then zeroes those outputs and
//! their gradients). Backward uses the same per-record geometry in col2im, so padded input
//! positions get a zero gradient. A record with `S > L_b` (`valid`) is an error naming it.
//!
//! Each product is one GEMM ([`crate::layers::gemm::mat_mul`], parallel inside and bit-identical
//! at any thread count). `Mode::Infer` keeps no cache, only the patch buffer and the recycled
//! output for the next batch.
//!
//! One-hot input (every value exactly 0 or 1, as one-hot DNA is): the forward product `X̂ Ŵ` is
//! a sum of selected rows of `Ŵ`, `z[r, :] = (0 + b) + Σ_{q : X̂[r, q] = 1} Ŵ[q, :]`, so the
//! layer adds those rows ([`one_hot_rows`]) instead of multiplying by zeros: for DNA (`C = 4`)
//! a quarter of the additions and none of the multiplications, and in inference no patch matrix.
//! The selected rows are summed from +0 in increasing `q`, then added to `0 + b`: the order in
//! which the gemm crate's kernels sum each output (one accumulator, `k` ascending, one block of
//! `k` while `K·C ≤ 512`; `x·1 = x` and adding `x·0 = ±0` changes no sum). So where the path is
//! taken — at least 2 rows and 2 filters, `3 ≤ K·C ≤ 512`, all weights finite (a zero times an
//! infinite or NaN weight would be NaN) — it gives the GEMM's bits, which
//! `one_hot_path_gives_the_gemm_bits` checks. Backward is unchanged (it needs the patches).

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result, ShapeIssue};
use crate::layers::gemm::mat_mul;
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::registry::{
    with_activation, Issue, LayerBytes, LayerKind, MemoryIo, Padding, Planned,
};
use crate::layers::{checked_elems, glorot_limit, no_forward, one, uniform, yes, Layer, Param};
use crate::tensor::{fmt_shape, from_vec, view1, view3, view3_mut, Float, Mode};

/// `conv1d`. Weight `(filters, in_channels, kernel_size)` as PyTorch; bias `(filters)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dSpec {
    /// Required.
    pub filters: usize,
    /// Required.
    pub kernel_size: usize,
    /// Default 1.
    #[serde(default = "one")]
    pub strides: usize,
    /// Default `valid`.
    #[serde(default)]
    pub padding: Padding,
    /// Default 1.
    #[serde(default = "one")]
    pub dilation_rate: usize,
    /// Default `linear`.
    #[serde(default)]
    pub activation: Activation,
    /// Default true.
    #[serde(default = "yes")]
    pub use_bias: bool,
}

impl Default for Conv1dSpec {
    fn default() -> Self {
        Conv1dSpec {
            filters: 0,
            kernel_size: 0,
            strides: 1,
            padding: Padding::Valid,
            dilation_rate: 1,
            activation: Activation::Linear,
            use_bias: true,
        }
    }
}

/// The `conv1d` kind (registry entry).
pub struct Conv1dKind;

impl LayerKind for Conv1dKind {
    type Spec = Conv1dSpec;
    const KERAS: &'static [&'static str] = &["Conv1D", "Convolution1D"];

    fn plan(s: &Conv1dSpec, input: &[usize]) -> Issue<Planned> {
        for (name, v) in [
            ("filters", s.filters),
            ("kernel_size", s.kernel_size),
            ("strides", s.strides),
            ("dilation_rate", s.dilation_rate),
        ] {
            if v == 0 {
                return Err(ShapeIssue::Invalid(format!(
                    "{name} must be at least 1, got 0"
                )));
            }
        }
        let [len, c] = *input else {
            return Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            });
        };
        let out = output_len(s.kernel_size, s.strides, s.dilation_rate, s.padding, len)?;
        let w = [s.filters, c, s.kernel_size];
        checked_elems("weight", &w)?;
        let p = Planned::new(vec![out, s.filters]).param("weight", &w);
        Ok(if s.use_bias {
            p.param("bias", &[s.filters])
        } else {
            p
        })
    }

    /// Forward keeps the im2col patches `(B·L', K·C)`, the GEMM weight `(K·C, F)` and what the
    /// activation's backward needs (relu one byte per output, linear nothing, others the
    /// output). Backward works in the incoming gradient in place (`Layer::backward_owned`),
    /// makes `dŴ (K·C, F)` in one GEMM and, when the input gradient is wanted, keeps its `dX̂`
    /// buffer (like the patches) for the next pass. Inference on the model's input is taken to
    /// be one-hot DNA (A, C, G, T only): where the one-hot path applies (see the module docs) it
    /// needs no patches, only `Ŵ` again in column panels, and frees any it held. A batch with
    /// an IUPAC ambiguity code (`N` = 0.25 each) takes the GEMM and holds the patch matrix
    /// `(B·L', K·C)` until the next one-hot batch: the estimate does not count that.
    fn memory(s: &Conv1dSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let e = io.elem;
        let (ch, k, f) = (io.input[1] as f64, s.kernel_size as f64, s.filters as f64);
        let rows = io.batch * io.output[0] as f64;
        let cols = rows * k * ch;
        let one_hot = io.model_input
            && (3..=512).contains(&(s.kernel_size * io.input[1]))
            && s.filters >= 2
            && rows >= 2.0;
        let act = match s.activation {
            Activation::Relu => rows * f,
            Activation::Linear => 0.0,
            _ => rows * f * e,
        };
        LayerBytes {
            cache: (cols + k * ch * f) * e + act,
            infer: if one_hot {
                2.0 * k * ch * f * e
            } else {
                (cols + k * ch * f) * e
            },
            spare: rows * f * e,
            keep: if io.input_grad { cols * e } else { 0.0 },
            tmp: k * ch * f * e,
            ..io.output_only()
        }
    }

    fn build<T: Float>(
        s: &Conv1dSpec,
        input: &[usize],
        _seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(Conv1d::new(s, input, rng)?))
    }

    fn summary_kind(s: &Conv1dSpec, name: &'static str, _output: &[Option<usize>]) -> String {
        with_activation(name, s.activation)
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<Conv1dSpec> {
        let filters = o.int("filters", None)?;
        let kernel_size = o.int("kernel_size", None)?;
        let strides = o.int("strides", Some(1))?;
        let padding = o.padding(false)?;
        let dilation_rate = o.int("dilation_rate", Some(1))?;
        let groups = o.int("groups", Some(1))?;
        o.require(
            "groups",
            groups,
            1,
            "grouped convolutions are not implemented",
        )?;
        o.channels_last()?;
        let activation = o.activation("activation", "linear")?;
        let use_bias = o.boolean("use_bias", true)?;
        Ok(Conv1dSpec {
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            activation,
            use_bias,
        })
    }

    /// Keras `kernel (k, in, out)` → `weight (out, in, k)`, `bias` as is.
    fn keras_weights(s: &Conv1dSpec, vars: &mut KerasVars<'_>) -> Result<()> {
        let v = vars.take("", if s.use_bias { 2 } else { 1 })?;
        let k = vars.expect_rank(&v[0], 3, "kernel")?;
        vars.put("weight", k.permuted_axes(ndarray::IxDyn(&[2, 1, 0])));
        if s.use_bias {
            vars.put("bias", v[1].clone());
        }
        Ok(())
    }
}

/// Output length of a `conv1d` of kernel `k`, stride `st`, dilation `d` on `len` steps, or why
/// the input is too short (or why the kernel's span does not fit in memory arithmetic at all).
pub fn output_len(k: usize, st: usize, d: usize, padding: Padding, len: usize) -> Issue<usize> {
    match window_geometry(len, k, st, d, padding) {
        Some((out, _)) => Ok(out),
        None if padding == Padding::Same && len > 0 => Err(ShapeIssue::Invalid(format!(
            "kernel_size {k} with dilation_rate {d} and strides {st} spans more positions than \
             seqgrad can index (usize overflow)"
        ))),
        None if (k - 1).checked_mul(d).is_none() => Err(ShapeIssue::Invalid(format!(
            "kernel span (kernel_size {k}, dilation_rate {d}) overflows usize; it is longer \
             than the input length {len}"
        ))),
        None => {
            let what = if d == 1 {
                "kernel_size".to_string()
            } else {
                format!("kernel span (kernel_size {k}, dilation_rate {d}) of")
            };
            Err(ShapeIssue::TooShort {
                what,
                needed: (k - 1).saturating_mul(d).saturating_add(1),
                got: len,
            })
        }
    }
}

/// Rows of the patch matrix per parallel GEMM block (a constant, so the arithmetic does not
/// depend on the thread count).
pub const ROW_BLOCK: usize = 256;

/// Output length and left padding of a sliding window of `window` taps spaced `dilation` apart,
/// moved by `stride`, over a sequence of `len` steps (Keras `valid`/`same`), or `None` when the
/// window's span is longer than a `valid` input (or the input is empty), or when the span or the
/// padded length `(L' − 1)·s + span` does not fit in a `usize` (all arithmetic is checked, so
/// every position `t·s + k·d` a layer later computes fits too).
pub fn window_geometry(
    len: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    if len == 0 || window == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = (window - 1).checked_mul(dilation)?.checked_add(1)?;
    match padding {
        Padding::Valid => (span <= len).then(|| ((len - span) / stride + 1, 0)),
        Padding::Same => {
            let out = len.div_ceil(stride);
            let reach = (out - 1).checked_mul(stride)?.checked_add(span)?;
            Some((out, reach.saturating_sub(len) / 2))
        }
    }
}

/// What backward needs from the last forward pass.
struct ConvCache<T> {
    /// im2col patches. `(batch·out_len, kernel·in_channels)`, column `k·C + c`.
    cols: Array2<T>,
    /// The weight as the GEMM uses it. `(kernel·in_channels, filters)`.
    wmat: Array2<T>,
    /// What the activation's backward needs. `(batch·out_len, filters)` values.
    y: ActCache<T>,
    batch: usize,
    /// Input length `L`.
    len: usize,
    /// Output length `L'`.
    out_len: usize,
    /// Left padding `P`.
    pad_left: usize,
    /// Per record `(L_b, L'_b, P_b)` of a masked pass (see [`Layer::set_lengths`]).
    records: Option<Vec<(usize, usize, usize)>>,
}

/// The activation output as backward needs it: nothing for `linear`, one byte per element for
/// `relu` (`y > 0`, written as "not `y ≤ 0`" so a NaN output passes its gradient, as
/// [`Activation::backward_inplace`] does), the output itself otherwise.
enum ActCache<T> {
    None,
    ReluOpen(Vec<bool>),
    Output(Array2<T>),
}

/// A 1-D convolution. Parameters `weight (filters, in_channels, kernel_size)`, `bias (filters)`.
pub struct Conv1d<T: Float> {
    filters: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    in_channels: usize,
    activation: Activation,
    weight: Param<T>,
    bias: Option<Param<T>>,
    cache: Option<ConvCache<T>>,
    /// Reused buffer for `dX̂ (batch·out_len, kernel·in_channels)`.
    dcols: Vec<T>,
    /// The memory of the next output, used when it fits `(batch·out_len·filters)`: in
    /// inference the last output, handed back by the model once the next layer has read it
    /// ([`Layer::recycle`]); in training, for a model's first layer (no input gradient), the
    /// last output gradient, kept at the end of backward. Nothing runs after the first layer's
    /// backward but the optimizer step, so that training peak, at this layer's backward, does
    /// not grow; a later conv1d drops its output gradient instead.
    spare: Vec<T>,
    /// The patch buffer between inference passes (which keep no cache).
    work: Vec<T>,
    /// Whether backward computes ∂L/∂input (off for a model's first layer in training).
    need_input_grad: bool,
    /// Per-record input lengths for the next forward pass (`None`: all full length).
    lengths: Option<Vec<usize>>,
    /// Whether forward may take the one-hot path (see the module docs); tests turn it off to
    /// compare with the GEMM.
    one_hot_path: bool,
}

impl<T: Float> Conv1d<T> {
    /// Builds the layer for a per-sample input `[length, channels]`, with Glorot-uniform weights
    /// (Keras: `fan_in = C·K`, `fan_out = F·K`) and zero bias.
    ///
    /// # Shapes
    /// - `input`: `[length, in_channels]`.
    pub fn new(
        spec: &Conv1dSpec,
        input: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<Self, ShapeIssue> {
        Conv1dKind::plan(spec, input)?;
        let in_channels = input[1];
        let (f, k) = (spec.filters, spec.kernel_size);
        let mut layer = Conv1d {
            filters: f,
            kernel: k,
            stride: spec.strides,
            dilation: spec.dilation_rate,
            padding: spec.padding,
            in_channels,
            activation: spec.activation,
            weight: Param::zeros("weight", &[0, 0, 0]),
            bias: None,
            cache: None,
            dcols: Vec::new(),
            spare: Vec::new(),
            work: Vec::new(),
            need_input_grad: true,
            lengths: None,
            one_hot_path: true,
        };
        let limit = glorot_limit(in_channels * k, f * k);
        let weight = Param::new("weight", uniform(&[f, in_channels, k], limit, rng));
        layer.weight = weight;
        layer.bias = spec.use_bias.then(|| Param::zeros("bias", &[f]));
        Ok(layer)
    }

    /// Dilated kernel span `(K − 1)·d + 1` (saturating at `usize::MAX`).
    pub fn span(&self) -> usize {
        (self.kernel - 1)
            .saturating_mul(self.dilation)
            .saturating_add(1)
    }

    /// Output length for an input of `len` steps, or why it is too short ([`output_len`]).
    pub fn output_len(&self, len: usize) -> std::result::Result<usize, ShapeIssue> {
        output_len(self.kernel, self.stride, self.dilation, self.padding, len)
    }

    /// Per record `(L_b, L'_b, P_b)` for the lengths set by [`Layer::set_lengths`] (`None`
    /// when unmasked), or the error for a record too short for the kernel.
    fn record_geometry(
        &self,
        batch: usize,
        len: usize,
        out_len: usize,
    ) -> Result<Option<Vec<(usize, usize, usize)>>> {
        let Some(lens) = &self.lengths else {
            return Ok(None);
        };
        if lens.len() != batch {
            return Err(Error::Lengths(format!(
                "conv1d: {} lengths for a batch of {batch}",
                lens.len()
            )));
        }
        lens.iter()
            .enumerate()
            .map(|(r, &lb)| {
                let lb = lb.min(len);
                match window_geometry(lb, self.kernel, self.stride, self.dilation, self.padding) {
                    Some((ob, pb)) if ob > 0 && ob <= out_len => Ok((lb, ob, pb)),
                    _ => Err(Error::Lengths(format!(
                        "record {r} (length {lb} at conv1d's input) is shorter than the kernel \
                         span {}",
                        self.span()
                    ))),
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Keeps a spent output gradient as the memory of the next output (see `spare`).
    fn keep_spare(&mut self, dz: Array2<T>) {
        let (v, offset) = dz.into_raw_vec_and_offset();
        if offset.unwrap_or(0) == 0 {
            self.spare = v;
        }
    }

    /// `Ŵ[k·C + c, f] = W[f, c, k]`.
    fn weight_matrix(&self) -> Array2<T> {
        let w = view3(&self.weight.value);
        let c = self.in_channels;
        Array2::from_shape_fn((self.kernel * c, self.filters), |(r, f)| {
            w[[f, r % c, r / c]]
        })
    }
}

/// One record's window geometry: input length `len`, channels `c`, kernel `k`, stride `s`,
/// dilation `d`, left padding `pad` (patch column `j·C + ch` of output row `t` reads input
/// position `t·s + j·d − pad`, or zero outside `[0, len)`).
#[derive(Clone, Copy)]
struct Window {
    len: usize,
    c: usize,
    k: usize,
    s: usize,
    d: usize,
    pad: usize,
}

/// Fills one sample's patch rows. `src (L, C)`, `dst (L', K·C)`, both row-major.
fn im2col_item<T: Float>(src: &[T], dst: &mut [T], w: Window) {
    let Window {
        len,
        c,
        k,
        s,
        d,
        pad,
    } = w;
    let kc = k * c;
    for (t, row) in dst.chunks_exact_mut(kc).enumerate() {
        for (j, seg) in row.chunks_exact_mut(c).enumerate() {
            let p = t * s + j * d;
            if p >= pad && p - pad < len {
                let p = p - pad;
                seg.copy_from_slice(&src[p * c..(p + 1) * c]);
            } else {
                seg.fill(T::zero());
            }
        }
    }
}

/// Adds one sample's patch gradients back into its input gradient. `dcols (L', K·C)`,
/// `dx (L, C)` (zeroed by the caller), both row-major.
fn col2im_item<T: Float>(dcols: &[T], dx: &mut [T], w: Window) {
    let Window {
        len,
        c,
        k,
        s,
        d,
        pad,
    } = w;
    let kc = k * c;
    for (t, row) in dcols.chunks_exact(kc).enumerate() {
        for (j, seg) in row.chunks_exact(c).enumerate() {
            let p = t * s + j * d;
            if p >= pad && p - pad < len {
                let p = p - pad;
                for (o, &g) in dx[p * c..(p + 1) * c].iter_mut().zip(seg) {
                    *o += g;
                }
            }
        }
    }
}

/// `Σ_r a[r, j]` for every column `j` of a row-major `(rows, cols)` slice, each as
/// `((0 + a[0, j]) + a[1, j]) + …` (the order of ndarray's `sum_axis(Axis(0))`, so the same
/// bits at any thread count), in parallel over blocks of columns: about two per thread, each a
/// multiple of 16 wide (whole cache lines), each reading every row's part in order.
///
/// # Shapes
/// - `a`: `(rows, cols)` row-major; returns `(cols)`.
pub(crate) fn column_sums<T: Float>(a: &[T], cols: usize) -> Vec<T> {
    if cols == 0 {
        return Vec::new();
    }
    let w = cols
        .div_ceil(2 * rayon::current_num_threads())
        .next_multiple_of(16);
    let parts: Vec<Vec<T>> = (0..cols.div_ceil(w))
        .into_par_iter()
        .map(|k| {
            let (lo, hi) = (k * w, ((k + 1) * w).min(cols));
            let mut s = vec![T::zero(); hi - lo];
            for row in a.chunks_exact(cols) {
                for (acc, &v) in s.iter_mut().zip(&row[lo..hi]) {
                    *acc += v;
                }
            }
            s
        })
        .collect();
    parts.concat()
}

/// `out (rows, n) += a (rows, m) · b (m, n)` (one GEMM, parallel inside).
fn gemm_rows<T: Float>(a: &[T], m: usize, b: &ArrayView2<'_, T>, out: &mut [T], n: usize) {
    if m == 0 || n == 0 {
        return;
    }
    let rows = a.len() / m;
    // Callers pass `a` of `rows·m` and `out` of `rows·n` elements.
    let a = ArrayView2::from_shape((rows, m), a).expect("a rows"); // ok: len = rows·m
    let mut o = ArrayViewMut2::from_shape((rows, n), out).expect("out rows"); // ok: rows·n
    mat_mul(T::one(), &a, b, T::one(), &mut o);
}

/// The geometry [`one_hot_rows`] reads: the window, filters `f`, output length `out_len`, and
/// the first output row of the task.
#[derive(Clone, Copy)]
struct Taps {
    first_row: usize,
    win: Window,
    f: usize,
    out_len: usize,
}

/// Output columns summed in registers at a time by [`one_hot_rows`]: for f32, 8 AVX2
/// registers, and a `(K·C, 64)` slice of `Ŵ` (26 KB for DanQ) that stays in L1 while every row
/// of a task reads it.
const ONE_HOT_BLOCK: usize = 64;

/// `z[q] = base[q] + Σ_{r ∈ sel} table[r·stride + q]` for `q < W`, the sum from +0 in `sel`'s
/// order.
#[inline(always)]
fn add_selected<T: Float, const W: usize>(
    z: &mut [T],
    base: &[T],
    table: &[T],
    stride: usize,
    sel: &[usize],
) {
    let mut acc = [T::zero(); W];
    for &r in sel {
        let w = &table[r * stride..r * stride + W];
        for q in 0..W {
            acc[q] += w[q];
        }
    }
    let (z, base) = (&mut z[..W], &base[..W]);
    for q in 0..W {
        z[q] = base[q] + acc[q];
    }
}

/// `Ŵ`'s full blocks of [`ONE_HOT_BLOCK`] columns, each as its own row-major `(K·C, 64)` panel
/// (contiguous, so a panel sits in L1 without set conflicts).
///
/// # Shapes
/// - `wmat`: `(K·C, F)` row-major; returns `(F / 64, K·C, 64)`.
fn one_hot_panels<T: Float>(wmat: &[T], f: usize) -> Vec<T> {
    let kc = wmat.len() / f.max(1);
    let mut out = Vec::with_capacity(f / ONE_HOT_BLOCK * kc * ONE_HOT_BLOCK);
    for p in 0..f / ONE_HOT_BLOCK {
        for q in 0..kc {
            let lo = q * f + p * ONE_HOT_BLOCK;
            out.extend_from_slice(&wmat[lo..lo + ONE_HOT_BLOCK]);
        }
    }
    out
}

crate::tensor::wide_kernel! {
    /// `z[r, :] = base + Σ_{q : X̂[r, q] = 1} Ŵ[q, :]` for the output rows `r = g.first_row …` of
    /// `z` (`base`: `0 + b`, or zeros without bias), reading the patch row `X̂[r, :]` straight
    /// from the one-hot input (`r = b·L' + t`, tap `j`, channel `ch`, `q = j·C + ch`): the
    /// selected rows of `Ŵ` are summed from +0 in increasing `q`, then added to `base` (see the
    /// module docs for why these are the GEMM's bits). Rows past a masked record's output
    /// length (`records`: `(L_b, L'_b, P_b)`) are zero patches: `base + 0`. Column blocks
    /// outside, rows inside, so each block's slice of `Ŵ` stays in L1. Every element of `z`
    /// is written.
    ///
    /// # Shapes
    /// - `x`: `(B, L, C)` row-major, every value 0 or 1; `z`: `(rows, F)` row-major, rows from
    ///   `first_row`; `base`: `(F)`; `wmat`: `Ŵ (K·C, F)` row-major; `panels`: its full
    ///   column blocks ([`one_hot_panels`]).
    fn one_hot_rows / one_hot_rows_body<T>(
        x: &[T],
        z: &mut [T],
        g: Taps,
        base: &[T],
        wmat: &[T],
        panels: &[T],
        records: Option<&[(usize, usize, usize)]>,
    ) {
        let Taps { first_row, win, f, out_len } = g;
        let Window { len, c, k, s, d, pad } = win;
        // The selected rows `q` of `Ŵ`, output row after output row: row `i`'s are
        // `sel[ends[i]..ends[i + 1]]`, in increasing `q`. Written without a branch on the values (which channel is hot is random): every
        // candidate is stored, and the end moves past it only when it is hot.
        let rows = z.len() / f.max(1);
        let mut sel: Vec<usize> = vec![0; rows * k * c + 1];
        let mut n = 0;
        let mut ends = vec![0usize];
        for i in 0..rows {
            let r = first_row + i;
            let (b, t) = (r / out_len, r % out_len);
            let geometry = match records {
                Some(rec) => match rec.get(b) {
                    Some(&(lb, ob, pb)) if t < ob => Some((lb, pb)),
                    _ => None,
                },
                None => Some((len, pad)),
            };
            if let Some((lb, pb)) = geometry {
                let src = &x[b * len * c..(b + 1) * len * c];
                for j in 0..k {
                    let p = t * s + j * d;
                    if p >= pb && p - pb < lb {
                        let p = p - pb;
                        for (ch, &v) in src[p * c..(p + 1) * c].iter().enumerate() {
                            sel[n] = j * c + ch;
                            n += usize::from(v == T::one());
                        }
                    }
                }
            }
            ends.push(n);
        }
        let kc = wmat.len() / f.max(1);
        let mut lo = 0;
        for panel in panels.chunks_exact(kc * ONE_HOT_BLOCK) {
            for (zrow, e) in z.chunks_exact_mut(f).zip(ends.windows(2)) {
                add_selected::<T, ONE_HOT_BLOCK>(
                    &mut zrow[lo..],
                    &base[lo..],
                    panel,
                    ONE_HOT_BLOCK,
                    &sel[e[0]..e[1]],
                );
            }
            lo += ONE_HOT_BLOCK;
        }
        for (zrow, e) in z.chunks_exact_mut(f).zip(ends.windows(2)) {
            let mut q = lo;
            while q + 8 <= f {
                add_selected::<T, 8>(&mut zrow[q..], &base[q..], &wmat[q..], f, &sel[e[0]..e[1]]);
                q += 8;
            }
            while q < f {
                add_selected::<T, 1>(&mut zrow[q..], &base[q..], &wmat[q..], f, &sel[e[0]..e[1]]);
                q += 1;
            }
        }
    }
}

/// Whether the forward product may add selected rows of `Ŵ` ([`one_hot_rows`]) and give the
/// GEMM's bits: at least 2 rows (one row takes the crate's matrix-vector kernel, which sums in
/// another order) and 2 filters (one filter keeps the product untransposed inside the crate,
/// where up to 256 outputs take its "horizontal" kernel and more its matrix-vector kernel; with
/// ≥ 2 filters the row-major output makes the crate transpose, and neither is used),
/// `3 ≤ K·C ≤ 512` (one block of `k`, the crate's smallest `kc`; `k ≤ 2` has its own kernel),
/// every weight finite and every input value exactly 0 or 1.
fn one_hot_applies<T: Float>(x: &[T], wmat: &[T], rows: usize, kc: usize, f: usize) -> bool {
    rows >= 2
        && f >= 2
        && (3..=512).contains(&kc)
        && wmat.iter().all(|w| w.is_finite())
        && x.par_iter().all(|&v| v == T::zero() || v == T::one())
}

/// The forward product through the GEMM: `z = act((0 + b) + X̂ Ŵ)` (`0 + b` keeps a bias of −0
/// giving +0). `z` is fresh zeroed memory, or (`reused`) a recycled buffer with stale values.
///
/// # Shapes
/// - `z`: `(rows, F)`; `cols`: `X̂ (rows, K·C)` row-major; `wmat`: `Ŵ (K·C, F)`; `bias`: `(F)`.
fn dense_output<T: Float>(
    z: &mut Array2<T>,
    cols: &[T],
    kc: usize,
    wmat: &Array2<T>,
    bias: Option<&ndarray::ArrayView1<'_, T>>,
    reused: bool,
    activation: Activation,
) {
    let f = z.ncols();
    if let Some(zv) = z.as_slice_mut() {
        match (bias.and_then(|b| b.as_slice()), f > 0) {
            // Row by row, in parallel (the first touch of W3's 125 MB output).
            (Some(bs), true) => zv.par_chunks_mut(f * 64).for_each(|blk| {
                for row in blk.chunks_exact_mut(f) {
                    row.iter_mut()
                        .zip(bs)
                        .for_each(|(o, &b)| *o = T::zero() + b);
                }
            }),
            // A reused buffer holds stale values: zero it when no bias row overwrote it (no
            // bias, or one that is not a contiguous slice and is added below).
            (_, true) if reused => zv
                .par_chunks_mut(f * 64)
                .for_each(|blk| blk.fill(T::zero())),
            _ => {}
        }
    }
    if let (Some(bv), None) = (bias, bias.and_then(|b| b.as_slice())) {
        *z += bv;
    }
    if let Some(zs) = z.as_slice_mut() {
        gemm_rows(cols, kc, &wmat.view(), zs, f);
    }
    activation.forward_inplace(z.view_mut().into_dyn());
}

/// Rows of `z` per parallel task of [`one_hot_rows`].
const ONE_HOT_ROWS: usize = 64;

impl<T: Float> Layer<T> for Conv1d<T> {
    fn kind(&self) -> String {
        "conv1d".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        match input {
            [l, c] if *c == self.in_channels => Ok(vec![self.output_len(*l)?, self.filters]),
            [_, _] => Err(ShapeIssue::Rank {
                expected: format!("(length, {})", self.in_channels),
                got: input.to_vec(),
            }),
            _ => Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            }),
        }
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        let shape = x.shape().to_vec();
        let (c, k, f) = (self.in_channels, self.kernel, self.filters);
        if shape.len() != 3 || shape[2] != c {
            return Err(Error::Shape {
                what: "conv1d input".into(),
                expected: format!("(batch, length, {c})"),
                got: fmt_shape(&shape),
            });
        }
        let (batch, len) = (shape[0], shape[1]);
        let (out_len, pad) = window_geometry(len, k, self.stride, self.dilation, self.padding)
            .ok_or_else(|| Error::Shape {
                what: "conv1d input".into(),
                expected: format!("(batch, length ≥ {}, {c})", self.span()),
                got: fmt_shape(&shape),
            })?;
        let (kc, rows) = (k * c, batch * out_len);

        // im2col into the previous forward's buffer when there is one (and its relu mask).
        let (mut buf, old_open) = match self.cache.take() {
            Some(old) => (
                old.cols.into_raw_vec_and_offset().0,
                match old.y {
                    ActCache::ReluOpen(open) => open,
                    _ => Vec::new(),
                },
            ),
            None => (std::mem::take(&mut self.work), Vec::new()),
        };
        let xs = x.as_standard_layout();
        let xs = xs.as_slice().ok_or_else(|| no_forward("conv1d"))?;
        let (s, d) = (self.stride, self.dilation);
        let win = Window {
            len,
            c,
            k,
            s,
            d,
            pad,
        };
        let records = self.record_geometry(batch, len, out_len)?;
        let wmat = self.weight_matrix();
        let one_hot = self.one_hot_path
            && one_hot_applies(
                xs,
                wmat.as_slice().ok_or_else(|| no_forward("conv1d"))?,
                rows,
                kc,
                f,
            );
        // Inference on one-hot input needs no patches; training keeps them for backward.
        if one_hot && !mode.caches() {
            // Freed, not kept: the memory estimate counts no patches here (a batch that took
            // the GEMM, or the last training step's, must not stay held).
            buf = Vec::new();
        } else {
            buf.resize(rows * kc, T::zero());
            if rows > 0 {
                match &records {
                    None => buf
                        .par_chunks_mut(out_len * kc)
                        .zip(xs.par_chunks(len * c))
                        .for_each(|(dst, src)| im2col_item(src, dst, win)),
                    // Each record's own geometry: its windows read only its real positions, with
                    // its own left padding; rows past its output length are zero.
                    Some(rec) => buf
                        .par_chunks_mut(out_len * kc)
                        .zip(xs.par_chunks(len * c))
                        .zip(rec.par_iter())
                        .for_each(|((dst, src), &(lb, ob, pb))| {
                            let (mine, rest) = dst.split_at_mut(ob * kc);
                            im2col_item(
                                src,
                                mine,
                                Window {
                                    len: lb,
                                    pad: pb,
                                    ..win
                                },
                            );
                            rest.fill(T::zero());
                        }),
                }
            }
        }

        // The output starts as 0 + b (0 without bias): in the spare buffer when it fits
        // (the last output, or in training the last output gradient), else in fresh zeroed
        // memory. `0 + b` (not `b`) keeps a bias of −0 giving +0, the same bits either way.
        let mut zv = std::mem::take(&mut self.spare);
        let reused = zv.len() == rows * f;
        if !reused {
            zv = vec![T::zero(); rows * f];
        }
        let bias = self.bias.as_ref().map(|b| view1(&b.value));
        if let (true, Some(ws)) = (one_hot, wmat.as_slice()) {
            // Every element written once: (0 + b) + the selected rows, then the activation,
            // block by block while the block is in cache.
            let base: Vec<T> = match &bias {
                Some(b) => b.iter().map(|&v| T::zero() + v).collect(),
                None => vec![T::zero(); f],
            };
            let panels = one_hot_panels(ws, f);
            let (g, rec, act) = (
                Taps {
                    first_row: 0,
                    win,
                    f,
                    out_len,
                },
                records.as_deref(),
                self.activation,
            );
            zv.par_chunks_mut(f * ONE_HOT_ROWS)
                .enumerate()
                .for_each(|(i, zb)| {
                    let g = Taps {
                        first_row: i * ONE_HOT_ROWS,
                        ..g
                    };
                    one_hot_rows(xs, zb, g, &base, ws, &panels, rec);
                    if let Ok(v) = ArrayViewMut2::from_shape((zb.len() / f, f), zb) {
                        act.forward_inplace(v.into_dyn());
                    }
                });
        }
        let mut z = Array2::from_shape_vec((rows, f), zv).map_err(|_| no_forward("conv1d"))?;
        if !one_hot {
            dense_output(
                &mut z,
                &buf,
                kc,
                &wmat,
                bias.as_ref(),
                reused,
                self.activation,
            );
        }
        if !mode.caches() {
            // Inference: keep only the patch buffer for the next batch.
            self.work = buf;
            return from_vec(z.into_raw_vec_and_offset().0, &[batch, out_len, f]);
        }
        let y = match self.activation {
            Activation::Linear => ActCache::None,
            Activation::Relu => {
                let zs = z.as_slice().ok_or_else(|| no_forward("conv1d"))?;
                let mut open = old_open;
                if open.len() == zs.len() {
                    // Every flag is overwritten.
                    open.par_iter_mut()
                        .zip(zs.par_iter())
                        .for_each(|(o, &v)| *o = v > T::zero() || v.is_nan());
                } else {
                    open = zs
                        .par_iter()
                        .map(|&v| v > T::zero() || v.is_nan())
                        .collect();
                }
                ActCache::ReluOpen(open)
            }
            _ => ActCache::Output(z.clone()),
        };
        let out = from_vec(z.into_raw_vec_and_offset().0, &[batch, out_len, f])?;
        let cols = Array2::from_shape_vec((rows, kc), buf).map_err(|_| no_forward("conv1d"))?;
        self.cache = Some(ConvCache {
            cols,
            wmat,
            y,
            batch,
            len,
            out_len,
            pad_left: pad,
            records,
        });
        Ok(out)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        self.backward_owned(grad_out.as_standard_layout().into_owned())
    }

    fn recycle(&mut self, spent: ArrayD<T>) {
        let (v, offset) = spent.into_raw_vec_and_offset();
        if offset.unwrap_or(0) == 0 {
            self.spare = v;
        }
    }

    /// Works in the memory of `grad_out` (the activation's backward in place): no copy of
    /// W3's 125 MB output gradient when the model hands it over.
    fn backward_owned(&mut self, grad_out: ArrayD<T>) -> Result<ArrayD<T>> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("conv1d"))?;
        let (c, k, f) = (self.in_channels, self.kernel, self.filters);
        let (batch, len, out_len, pad) = (cache.batch, cache.len, cache.out_len, cache.pad_left);
        let (kc, rows) = (k * c, batch * out_len);
        if grad_out.shape() != [batch, out_len, f] {
            return Err(Error::Shape {
                what: "conv1d output gradient".into(),
                expected: fmt_shape(&[batch, out_len, f]),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let mut dz = crate::tensor::reshape(grad_out, &[rows, f])
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| no_forward("conv1d"))?;
        match &cache.y {
            ActCache::None => {}
            ActCache::ReluOpen(open) => {
                let d = dz.as_slice_mut().ok_or_else(|| no_forward("conv1d"))?;
                // Blocks of whole rows in parallel; a select per element (vectorises).
                d.par_chunks_mut(f.max(1) * 64)
                    .zip(open.par_chunks(f.max(1) * 64))
                    .for_each(|(gs, os)| {
                        for (g, &o) in gs.iter_mut().zip(os) {
                            *g = if o { *g } else { T::zero() };
                        }
                    });
            }
            ActCache::Output(y) => self
                .activation
                .backward_inplace(&y.view().into_dyn(), dz.view_mut().into_dyn()),
        }

        // db += Σ_rows dZ: every column summed over the rows in order (as `sum_axis` does),
        // blocks of columns in parallel, so the bits do not depend on the thread count.
        if let Some(b) = &mut self.bias {
            let d = dz.as_slice().ok_or_else(|| no_forward("conv1d"))?;
            let sums = column_sums(d, f);
            for (g, s) in b.grad.iter_mut().zip(sums) {
                *g += s;
            }
        }

        // dŴ = X̂ᵀ dZ (one GEMM; deterministic at any thread count, see `layers::gemm`).
        let mut dwmat = Array2::<T>::zeros((kc, f));
        mat_mul(T::one(), &cache.cols.t(), &dz, T::zero(), &mut dwmat);
        let mut dw = view3_mut(&mut self.weight.grad);
        for ((fi, ci, ki), g) in dw.indexed_iter_mut() {
            *g += dwmat[[ki * c + ci, fi]];
        }

        if !self.need_input_grad {
            // The data needs no gradient (training): skip dX̂ and col2im. The output
            // gradient's memory becomes the next forward's output.
            self.keep_spare(dz);
            return Ok(ArrayD::zeros(ndarray::IxDyn(&[batch, len, c])));
        }
        // dX̂ = dZ Ŵᵀ, then col2im (adding overlapping contributions), in parallel over samples.
        self.dcols.clear();
        self.dcols.resize(rows * kc, T::zero());
        let dzs = dz.as_slice().ok_or_else(|| no_forward("conv1d"))?;
        gemm_rows(dzs, f, &cache.wmat.t(), &mut self.dcols, kc);
        let mut dx = vec![T::zero(); batch * len * c];
        let (s, d) = (self.stride, self.dilation);
        let win = Window {
            len,
            c,
            k,
            s,
            d,
            pad,
        };
        if rows > 0 {
            match &cache.records {
                None => dx
                    .par_chunks_mut(len * c)
                    .zip(self.dcols.par_chunks(out_len * kc))
                    .for_each(|(dxi, dci)| col2im_item(dci, dxi, win)),
                Some(rec) => dx
                    .par_chunks_mut(len * c)
                    .zip(self.dcols.par_chunks(out_len * kc))
                    .zip(rec.par_iter())
                    .for_each(|((dxi, dci), &(lb, ob, pb))| {
                        col2im_item(
                            &dci[..ob * kc],
                            dxi,
                            Window {
                                len: lb,
                                pad: pb,
                                ..win
                            },
                        )
                    }),
            }
        }
        // Not kept here: it would be held through the backward passes of the layers below,
        // where the training peak is (the memory rule counts no spare in training).
        drop(dz);
        from_vec(dx, &[batch, len, c])
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

    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.lengths = lengths.map(<[usize]>::to_vec);
    }

    fn output_lengths(&self, lengths: &[usize]) -> std::result::Result<Vec<usize>, (usize, usize)> {
        lengths
            .iter()
            .enumerate()
            .map(|(r, &lb)| match self.output_len(lb) {
                Ok(o) => Ok(o),
                Err(_) => Err((r, self.span())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    /// The parallel column sums give `sum_axis(Axis(0))`'s bits, at any width and thread count.
    #[test]
    fn column_sums_give_sum_axis_bits() {
        for cols in [1usize, 3, 16, 17, 40, 320] {
            let rows = 257;
            let a = ndarray::Array2::<f32>::from_shape_fn((rows, cols), |(r, c)| {
                ((r * 31 + c * 17) % 23) as f32 * 0.37 - 4.1 + 1e-3 * r as f32
            });
            let want = a.sum_axis(ndarray::Axis(0));
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| super::column_sums(a.as_slice().unwrap(), cols));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(want.as_slice().unwrap()),
                    "{cols} cols, {threads} threads"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn keras_same_geometry() {
        assert_eq!(window_geometry(10, 3, 2, 1, Padding::Same), Some((5, 0)));
        assert_eq!(window_geometry(10, 4, 1, 1, Padding::Same), Some((10, 1)));
        assert_eq!(window_geometry(11, 3, 3, 2, Padding::Same), Some((4, 1)));
        assert_eq!(window_geometry(10, 3, 1, 1, Padding::Valid), Some((8, 0)));
        assert_eq!(window_geometry(10, 3, 1, 5, Padding::Valid), None);
    }

    #[test]
    fn geometry_overflow_is_none_not_wrong() {
        let big = usize::MAX / 2;
        assert_eq!(window_geometry(40, 3, 1, big, Padding::Same), None);
        assert_eq!(window_geometry(40, 3, 1, big, Padding::Valid), None);
        assert_eq!(window_geometry(40, usize::MAX, 1, 1, Padding::Same), None);
        assert_eq!(
            window_geometry(40, usize::MAX, usize::MAX, 1, Padding::Same),
            Some((1, (usize::MAX - 40) / 2))
        );
    }

    /// An inference pass that writes into its recycled last output gives the same bits as a
    /// fresh one (bias with −0 and +0 entries, with and without bias, and after a batch of
    /// another size).
    #[test]
    fn recycled_output_gives_the_same_bits() {
        use rand::SeedableRng;
        for use_bias in [true, false] {
            let spec = Conv1dSpec {
                filters: 4,
                kernel_size: 3,
                activation: Activation::Relu,
                use_bias,
                ..Conv1dSpec::default()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut conv = Conv1d::<f32>::new(&spec, &[9, 4], &mut rng).unwrap();
            if let Some(b) = &mut conv.bias {
                for (i, v) in b.value.iter_mut().enumerate() {
                    *v = [-0.0, 0.0, 0.25, -0.5][i];
                }
            }
            let x = |batch: usize| {
                ArrayD::from_shape_fn(ndarray::IxDyn(&[batch, 9, 4]), |i| {
                    ((i[0] * 13 + i[1] * 5 + i[2] * 3) % 7) as f32 * 0.3 - 0.9
                })
            };
            let fresh = conv.forward(x(3).view(), Mode::Eval).unwrap();
            let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for batch in [3, 3, 2, 3] {
                let y = conv.forward(x(batch).view(), Mode::Infer).unwrap();
                let want = conv.forward(x(batch).view(), Mode::Eval).unwrap();
                assert_eq!(bits(&y), bits(&want), "bias {use_bias}, batch {batch}");
                conv.recycle(y);
            }
            let y = conv.forward(x(3).view(), Mode::Infer).unwrap();
            assert_eq!(bits(&y), bits(&fresh));
        }
    }
}

#[cfg(test)]
mod one_hot_tests {
    use super::*;
    use crate::layers::Layer;
    use rand::{Rng, SeedableRng};

    /// One-hot `(batch, len, c)` input; about one position in eight is all zeros (as
    /// padding is).
    fn one_hot<T: Float>(batch: usize, len: usize, c: usize, seed: u64) -> ArrayD<T> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = ArrayD::zeros(ndarray::IxDyn(&[batch, len, c]));
        for b in 0..batch {
            for t in 0..len {
                if rng.random_range(0..8) > 0 {
                    x[[b, t, rng.random_range(0..c)]] = T::one();
                }
            }
        }
        x
    }

    fn bits<T: Float>(a: &ArrayD<T>) -> Vec<u64> {
        a.iter()
            .map(|v| v.to_f64().map_or(0, f64::to_bits))
            .collect()
    }

    /// Forward (inference and training) and backward, with the one-hot path on or off, at 1
    /// and 2 threads.
    fn passes<T: Float>(
        spec: &Conv1dSpec,
        x: &ArrayD<T>,
        lengths: Option<&[usize]>,
        on: bool,
        threads: usize,
        seed: u64,
    ) -> Vec<Vec<u64>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let shape = x.shape();
            let mut conv = Conv1d::<T>::new(spec, &shape[1..], &mut rng).unwrap();
            if let Some(b) = &mut conv.bias {
                for (i, v) in b.value.iter_mut().enumerate() {
                    *v = T::from_f64([-0.0, 0.0, 0.3, -0.7][i % 4] + 0.01 * i as f64).unwrap();
                }
            }
            conv.one_hot_path = on;
            conv.set_lengths(lengths);
            let inf = conv.forward(x.view(), Mode::Infer).unwrap();
            let inf2 = conv.forward(x.view(), Mode::Infer).unwrap();
            conv.recycle(inf2.clone());
            let tr = conv.forward(x.view(), Mode::Train).unwrap();
            let dy = tr.mapv(|v| v * T::from_f64(0.5).unwrap() - T::from_f64(0.1).unwrap());
            let dx = conv.backward(dy.view()).unwrap();
            let mut out = vec![bits(&inf), bits(&inf2), bits(&tr), bits(&dx)];
            out.extend(conv.params().iter().map(|p| bits(&p.grad)));
            out
        })
    }

    fn check<T: Float>(spec: &Conv1dSpec, batch: usize, len: usize, lengths: Option<&[usize]>) {
        let x = one_hot::<T>(batch, len, 4, 11);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let conv = Conv1d::<T>::new(spec, &[len, 4], &mut rng).unwrap();
        let wmat = conv.weight_matrix();
        let rows = batch * conv.output_len(len).unwrap();
        // the path is taken: the comparison below is not GEMM against GEMM
        assert!(one_hot_applies(
            x.as_slice().unwrap(),
            wmat.as_slice().unwrap(),
            rows,
            4 * spec.kernel_size,
            spec.filters
        ));
        let want = passes(spec, &x, lengths, false, 1, 3);
        for threads in [1, 2] {
            let got = passes(spec, &x, lengths, true, threads, 3);
            assert_eq!(got, want, "{spec:?}, batch {batch}, {threads} threads");
        }
    }

    /// Where the one-hot path is taken, every output, input gradient and parameter gradient
    /// has the bits of the GEMM path (W1/W2/W3-like and odd shapes: `same` padding, strides,
    /// dilation, masked records, filters that are not a multiple of the register block).
    #[test]
    fn one_hot_path_gives_the_gemm_bits() {
        let spec = |filters, kernel_size, strides, dilation_rate, padding, activation| Conv1dSpec {
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            activation,
            ..Conv1dSpec::default()
        };
        let (v, sm) = (Padding::Valid, Padding::Same);
        let (lin, relu) = (Activation::Linear, Activation::Relu);
        check::<f32>(&spec(320, 26, 1, 1, v, relu), 3, 120, None);
        check::<f32>(&spec(100, 10, 1, 1, v, relu), 5, 60, None);
        check::<f32>(&spec(64, 9, 1, 1, sm, relu), 4, 60, None);
        check::<f32>(&spec(37, 5, 2, 2, sm, lin), 3, 31, Some(&[31, 12, 20]));
        check::<f32>(&spec(2, 128, 1, 1, v, lin), 2, 130, None);
        check::<f64>(
            &spec(33, 7, 3, 1, sm, Activation::Tanh),
            4,
            40,
            Some(&[40, 9, 40, 1]),
        );
        check::<f64>(&spec(320, 26, 1, 1, v, relu), 2, 60, None);
    }

    /// A batch that is not 0/1 (an `N` = 0.25 each), or `K·C > 512`, gives the GEMM's result
    /// with the path switched on: the layer falls back rather than dropping the 0.25s.
    #[test]
    fn not_one_hot_falls_back_to_the_gemm() {
        let spec = |kernel_size| Conv1dSpec {
            filters: 8,
            kernel_size,
            activation: Activation::Relu,
            ..Conv1dSpec::default()
        };
        let mut x = one_hot::<f32>(3, 140, 4, 5);
        x.slice_mut(ndarray::s![1, 7, ..]).fill(0.25);
        for k in [5, 129] {
            let want = passes(&spec(k), &x, None, false, 1, 4);
            assert_eq!(passes(&spec(k), &x, None, true, 2, 4), want, "kernel {k}");
        }
        let on = passes(&spec(5), &one_hot::<f32>(3, 140, 4, 5), None, true, 1, 4);
        assert_ne!(
            on[0],
            passes(&spec(5), &x, None, true, 1, 4)[0],
            "the N changes the output"
        );
    }

    /// The path is not taken where its order could differ from the crate's, or where a zero
    /// input meets a weight that is not finite.
    #[test]
    fn one_hot_path_only_where_it_gives_the_gemm_bits() {
        let x = one_hot::<f32>(2, 20, 4, 1);
        let xs = x.as_slice().unwrap();
        let w = vec![0.5f32; 20 * 8];
        assert!(one_hot_applies(xs, &w, 2, 20, 8));
        assert!(!one_hot_applies(xs, &w, 1, 20, 8), "one row");
        assert!(!one_hot_applies(xs, &w[..20], 2, 20, 1), "one filter");
        assert!(
            !one_hot_applies(xs, &vec![0.5f32; 513 * 8], 2, 513, 8),
            "K·C > 512"
        );
        let mut bad = w.clone();
        bad[7] = f32::NAN;
        assert!(!one_hot_applies(xs, &bad, 2, 20, 8), "NaN weight");
        bad[7] = f32::INFINITY;
        assert!(!one_hot_applies(xs, &bad, 2, 20, 8), "infinite weight");
        let mut soft = xs.to_vec();
        soft[3] = 0.25;
        assert!(!one_hot_applies(&soft, &w, 2, 20, 8), "not one-hot");
    }
}
