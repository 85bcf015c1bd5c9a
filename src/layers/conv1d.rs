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
    /// buffer (like the patches) for the next pass.
    fn memory(s: &Conv1dSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let e = io.elem;
        let (ch, k, f) = (io.input[1] as f64, s.kernel_size as f64, s.filters as f64);
        let rows = io.batch * io.output[0] as f64;
        let cols = rows * k * ch;
        let act = match s.activation {
            Activation::Relu => rows * f,
            Activation::Linear => 0.0,
            _ => rows * f * e,
        };
        LayerBytes {
            cache: (cols + k * ch * f) * e + act,
            infer: (cols + k * ch * f) * e,
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

/// Fills one sample's patch rows. `src (L, C)`, `dst (L', K·C)`, both row-major.
#[allow(clippy::too_many_arguments)]
fn im2col_item<T: Float>(
    src: &[T],
    dst: &mut [T],
    len: usize,
    c: usize,
    k: usize,
    s: usize,
    d: usize,
    pad: usize,
) {
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
#[allow(clippy::too_many_arguments)]
fn col2im_item<T: Float>(
    dcols: &[T],
    dx: &mut [T],
    len: usize,
    c: usize,
    k: usize,
    s: usize,
    d: usize,
    pad: usize,
) {
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
        buf.resize(rows * kc, T::zero());
        let xs = x.as_standard_layout();
        let xs = xs.as_slice().ok_or_else(|| no_forward("conv1d"))?;
        let (s, d) = (self.stride, self.dilation);
        let records = self.record_geometry(batch, len, out_len)?;
        if rows > 0 {
            match &records {
                None => buf
                    .par_chunks_mut(out_len * kc)
                    .zip(xs.par_chunks(len * c))
                    .for_each(|(dst, src)| im2col_item(src, dst, len, c, k, s, d, pad)),
                // Each record's own geometry: its windows read only its real positions, with
                // its own left padding; rows past its output length are zero.
                Some(rec) => buf
                    .par_chunks_mut(out_len * kc)
                    .zip(xs.par_chunks(len * c))
                    .zip(rec.par_iter())
                    .for_each(|((dst, src), &(lb, ob, pb))| {
                        let (mine, rest) = dst.split_at_mut(ob * kc);
                        im2col_item(src, mine, lb, c, k, s, d, pb);
                        rest.fill(T::zero());
                    }),
            }
        }

        let wmat = self.weight_matrix();
        // The output starts as 0 + b (0 without bias): in the spare buffer when it fits
        // (the last output, or in training the last output gradient), else in fresh zeroed
        // memory. `0 + b` (not `b`) keeps a bias of −0 giving +0, the same bits either way.
        let mut zv = std::mem::take(&mut self.spare);
        let reused = zv.len() == rows * f;
        if !reused {
            zv = vec![T::zero(); rows * f];
        }
        let bias = self.bias.as_ref().map(|b| view1(&b.value));
        match (bias.as_ref().and_then(|b| b.as_slice()), f > 0) {
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
        let mut z = Array2::from_shape_vec((rows, f), zv).map_err(|_| no_forward("conv1d"))?;
        if let (Some(bv), None) = (&bias, bias.as_ref().and_then(|b| b.as_slice())) {
            z += bv;
        }
        if let Some(zs) = z.as_slice_mut() {
            gemm_rows(&buf, kc, &wmat.view(), zs, f);
        }
        self.activation.forward_inplace(z.view_mut().into_dyn());
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
        if rows > 0 {
            match &cache.records {
                None => dx
                    .par_chunks_mut(len * c)
                    .zip(self.dcols.par_chunks(out_len * kc))
                    .for_each(|(dxi, dci)| col2im_item(dci, dxi, len, c, k, s, d, pad)),
                Some(rec) => dx
                    .par_chunks_mut(len * c)
                    .zip(self.dcols.par_chunks(out_len * kc))
                    .zip(rec.par_iter())
                    .for_each(|((dxi, dci), &(lb, ob, pb))| {
                        col2im_item(&dci[..ob * kc], dxi, lb, c, k, s, d, pb)
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
