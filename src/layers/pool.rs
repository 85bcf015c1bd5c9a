//! `maxpool1d` and `avgpool1d`: pooling over windows of the time axis, per channel (Keras
//! `MaxPooling1D` / `AveragePooling1D`, channels-last).
//!
//! Notation: input `x (B, L, C)`, pool size `p`, stride `s` (default `p`), left padding `P`,
//! output length `L'`, window `W_t = {t·s − P, …, t·s − P + p − 1} ∩ [0, L)` — only *real*
//! positions; padded ones are ignored.
//!
//! Geometry (as `conv1d` with dilation 1): `valid`: `L' = ⌊(L − p)/s⌋ + 1` (an error if
//! `p > L`); `same`: `L' = ⌈L/s⌉`, total padding `max((L' − 1)·s + p − L, 0)`, `P = ⌊total/2⌋`.
//! Every `same` window holds at least one real position.
//!
//! Max: `y[b, t, c] = max_{i ∈ W_t} x[b, i, c]`; backward routes the gradient to the arg max:
//! `dx[b, a_t, c] += dy[b, t, c]` with `a_t` the **first** position of the maximum in the window
//! (ties go to the earliest position, as a strict `>` scan finds it). A NaN counts as larger than
//! every number, so a NaN in a window gives a NaN output (the first NaN is the arg max) instead of
//! being hidden.
//!
//! Average: `y[b, t, c] = (1/|W_t|) Σ_{i ∈ W_t} x[b, i, c]` where `|W_t|` counts only real
//! positions (Keras/TF `same` behaviour); backward `dx[b, i, c] += dy[b, t, c] / |W_t|` for
//! `i ∈ W_t`.
//!
//! Masked batches ([`Layer::set_lengths`]): record `b` uses `L = L_b` in the geometry and the
//! windows above (its own `L'_b`, `P_b`; windows over its real positions only); outputs
//! `t ≥ L'_b` are zero and padded positions get no gradient.
//!
//! When windows overlap (`s < p`), a position in several windows receives the **sum** of their
//! gradients (`+=`).

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::conv1d::window_geometry;
use crate::layers::keras_config::KerasOpts;
use crate::layers::registry::{Issue, LayerBytes, LayerKind, MemoryIo, Padding, Planned};
use crate::layers::{no_forward, Layer};
use crate::tensor::{fmt_shape, from_vec, Float, Mode};

/// `maxpool1d` / `avgpool1d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSpec {
    /// Default 2 (Keras).
    pub pool_size: usize,
    /// Default: `pool_size`.
    pub strides: Option<usize>,
    /// Default `valid`.
    pub padding: Padding,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            pool_size: 2,
            strides: None,
            padding: Padding::Valid,
        }
    }
}

impl PoolSpec {
    /// The effective stride (defaults to the pool size).
    pub fn stride(&self) -> usize {
        self.strides.unwrap_or(self.pool_size)
    }
}

/// The shape rule of both pools: [`check`], then the window geometry.
fn plan(s: &PoolSpec, input: &[usize]) -> Issue<Planned> {
    check(s, input)?;
    let (out, _) = geometry(s.pool_size, s.stride(), s.padding, input[0])?;
    Ok(Planned::new(vec![out, input[1]]))
}

/// The options and the input's rank (what a pool layer is built for; the length is checked
/// per input by the geometry).
fn check(s: &PoolSpec, input: &[usize]) -> Issue<()> {
    if s.pool_size == 0 {
        return Err(ShapeIssue::Invalid(
            "pool_size must be at least 1, got 0".into(),
        ));
    }
    if s.stride() == 0 {
        return Err(ShapeIssue::Invalid(
            "strides must be at least 1, got 0".into(),
        ));
    }
    if input.len() != 2 {
        return Err(ShapeIssue::NeedsSequence {
            got: input.to_vec(),
        });
    }
    Ok(())
}

/// Output length and left padding of pool windows on `len` steps, or why they do not fit.
fn geometry(pool: usize, stride: usize, padding: Padding, len: usize) -> Issue<(usize, usize)> {
    window_geometry(len, pool, stride, 1, padding).ok_or_else(|| {
        if padding == Padding::Same && len > 0 {
            // `same` geometry only fails when `(L' − 1)·s + p` overflows.
            ShapeIssue::Invalid(format!(
                "pool_size {pool} with strides {stride} spans more positions than seqgrad can \
                 index (usize overflow)"
            ))
        } else {
            ShapeIssue::TooShort {
                what: "pool_size".into(),
                needed: pool,
                got: len,
            }
        }
    })
}

/// The `maxpool1d` (`MAX`) and `avgpool1d` kinds (registry entries).
pub struct PoolKind<const MAX: bool>;

/// `maxpool1d`.
pub type MaxPoolKind = PoolKind<true>;
/// `avgpool1d`.
pub type AvgPoolKind = PoolKind<false>;

impl<const MAX: bool> LayerKind for PoolKind<MAX> {
    type Spec = PoolSpec;
    const KERAS: &'static [&'static str] = if MAX {
        &["MaxPooling1D", "MaxPool1D"]
    } else {
        &["AveragePooling1D", "AvgPool1D"]
    };

    fn plan(s: &PoolSpec, input: &[usize]) -> Issue<Planned> {
        plan(s, input)
    }

    fn memory(_s: &PoolSpec, io: &MemoryIo<'_>) -> LayerBytes {
        pool_memory(MAX, io)
    }

    fn build<T: Float>(
        s: &PoolSpec,
        input: &[usize],
        _seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        let op = if MAX { PoolOp::Max } else { PoolOp::Avg };
        Ok(Box::new(Pool1d::<T>::new(op, s, input)?))
    }

    /// Keras `MaxPooling1D` / `AveragePooling1D` options.
    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<PoolSpec> {
        let pool_size = o.int("pool_size", Some(2))?;
        let strides = o.opt_int("strides")?;
        let padding = o.padding(false)?;
        o.channels_last()?;
        Ok(PoolSpec {
            pool_size,
            strides,
            padding,
        })
    }
}

/// Which reduction a pooling layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolOp {
    Max,
    Avg,
}

/// What backward needs from the last forward pass.
struct PoolCache {
    /// For max pooling: the arg-max position (index along the length axis) of every output.
    /// `(batch, out_len, channels)` row-major; empty for average pooling.
    argmax: Vec<usize>,
    /// Input shape `(batch, length, channels)`.
    in_shape: [usize; 3],
    out_len: usize,
    /// Per record `(L_b, L'_b, P_b)`: `(L, L', P)` for every record unless masked.
    records: Vec<(usize, usize, usize)>,
}

/// A 1-D max or average pooling layer (no parameters).
pub struct Pool1d<T: Float> {
    op: PoolOp,
    pool: usize,
    stride: usize,
    padding: Padding,
    cache: Option<PoolCache>,
    /// Per-record input lengths for the next forward pass (`None`: all full length).
    lengths: Option<Vec<usize>>,
    _t: PhantomData<T>,
}

/// The memory rule of every pooling kind: max pooling caches the arg-max index (`usize`) of
/// every output for backward (training and gradient passes; inference keeps none); average
/// pooling keeps nothing besides its output.
pub(crate) fn pool_memory(max: bool, io: &MemoryIo<'_>) -> LayerBytes {
    let idx = if max {
        io.output_elems() * std::mem::size_of::<usize>() as f64
    } else {
        0.0
    };
    LayerBytes {
        cache: idx,
        ..io.output_only()
    }
}

/// Whether `x` replaces the running maximum `y`: it is larger, or it is the first NaN (NaN
/// counts as the maximum, and the first NaN wins). Written without short-circuits (`|`, `&` on
/// the comparisons and a select at the call), so the inference loop compiles to vector compares
/// and blends instead of per-lane branches.
#[inline(always)]
pub(crate) fn takes_max<T: Float>(x: T, y: T) -> bool {
    #[allow(clippy::eq_op)]
    let (x_nan, y_num) = (x != x, y == y);
    (x > y) | (x_nan & y_num)
}

crate::tensor::wide_kernel! {
    /// `y = ` the NaN-first maximum ([`takes_max`]) of the rows of `x`, row by row.
    ///
    /// # Shapes
    /// - `y`: `(channels)`; `x`: `(rows ≥ 1, channels)` row-major.
    fn max_rows / max_rows_body<T>(y: &mut [T], x: &[T]) {
        let c = y.len();
        let mut rows = x.chunks_exact(c.max(1));
        if let Some(first) = rows.next() {
            y.copy_from_slice(first);
        }
        for row in rows {
            for (yv, &xv) in y.iter_mut().zip(row) {
                *yv = if takes_max(xv, *yv) { xv } else { *yv };
            }
        }
    }
}

crate::tensor::wide_kernel! {
    /// The arg max of [`max_rows`]: per channel, `lo +` the first row of `x` that holds the
    /// maximum `y` (equal to it, or NaN when it is NaN). That is the row the running
    /// [`takes_max`] keeps: a later row equal to the maximum never replaces it, and `y` is a
    /// copy of one of the rows.
    ///
    /// # Shapes
    /// - `arg`, `y`: `(channels)`; `x`: `(rows ≥ 1, channels)` row-major.
    fn first_max_rows / first_max_rows_body<T>(arg: &mut [usize], y: &[T], x: &[T], lo: usize) {
        let c = y.len();
        arg.fill(lo);
        for (q, row) in x.chunks_exact(c.max(1)).enumerate().rev() {
            for ((a, &yv), &xv) in arg.iter_mut().zip(y).zip(row) {
                #[allow(clippy::eq_op)]
                let hit = (xv == yv) | ((xv != xv) & (yv != yv));
                *a = if hit { lo + q } else { *a };
            }
        }
    }
}

/// The real positions `[lo, hi)` of window `t`.
#[inline]
fn window(t: usize, stride: usize, pool: usize, pad: usize, len: usize) -> (usize, usize) {
    let start = t * stride;
    let lo = start.saturating_sub(pad).min(len);
    let hi = start.saturating_add(pool).saturating_sub(pad).min(len);
    (lo, hi)
}

impl<T: Float> Pool1d<T> {
    /// Builds a pooling layer for a per-sample input `[length, channels]`.
    pub fn new(
        op: PoolOp,
        spec: &PoolSpec,
        input: &[usize],
    ) -> std::result::Result<Self, ShapeIssue> {
        check(spec, input)?;
        Ok(Pool1d {
            op,
            pool: spec.pool_size,
            stride: spec.stride(),
            padding: spec.padding,
            cache: None,
            lengths: None,
            _t: PhantomData,
        })
    }

    /// A `maxpool1d` layer.
    pub fn max(spec: &PoolSpec, input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        Self::new(PoolOp::Max, spec, input)
    }

    /// An `avgpool1d` layer.
    pub fn avg(spec: &PoolSpec, input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        Self::new(PoolOp::Avg, spec, input)
    }

    fn geometry(&self, len: usize) -> std::result::Result<(usize, usize), ShapeIssue> {
        geometry(self.pool, self.stride, self.padding, len)
    }
}

impl<T: Float> Layer<T> for Pool1d<T> {
    fn kind(&self) -> String {
        match self.op {
            PoolOp::Max => "maxpool1d".into(),
            PoolOp::Avg => "avgpool1d".into(),
        }
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        match input {
            [l, c] => Ok(vec![self.geometry(*l)?.0, *c]),
            _ => Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            }),
        }
    }

    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.lengths = lengths.map(<[usize]>::to_vec);
    }

    fn output_lengths(&self, lengths: &[usize]) -> std::result::Result<Vec<usize>, (usize, usize)> {
        lengths
            .iter()
            .enumerate()
            .map(|(r, &lb)| match self.geometry(lb) {
                Ok((o, _)) => Ok(o),
                Err(_) => Err((r, self.pool)),
            })
            .collect()
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        // The last arg-max buffer is reused when it fits (every entry read later is written).
        let old_argmax = self.cache.take().map(|c| c.argmax).unwrap_or_default();
        let what = format!("{} input", Layer::<T>::kind(self));
        let [batch, len, c] = match x.shape() {
            &[b, l, c] => [b, l, c],
            other => {
                return Err(Error::Shape {
                    what,
                    expected: "(batch, length, channels)".into(),
                    got: fmt_shape(other),
                })
            }
        };
        let (out_len, pad) = self.geometry(len).map_err(|e| Error::Shape {
            what: what.clone(),
            expected: format!("a longer sequence ({e})"),
            got: fmt_shape(x.shape()),
        })?;
        // Each record's own geometry (windows over its real positions, its own left padding);
        // outputs past its output length stay zero.
        let records: Vec<(usize, usize, usize)> = match &self.lengths {
            None => vec![(len, out_len, pad); batch],
            Some(lens) if lens.len() == batch => lens
                .iter()
                .enumerate()
                .map(|(r, &lb)| {
                    let lb = lb.min(len);
                    match self.geometry(lb) {
                        Ok((ob, pb)) if ob > 0 && ob <= out_len => Ok((lb, ob, pb)),
                        _ => Err(Error::Lengths(format!(
                            "record {r} (length {lb} at {what}) is shorter than pool_size {}",
                            self.pool
                        ))),
                    }
                })
                .collect::<Result<_>>()?,
            Some(lens) => {
                return Err(Error::Lengths(format!(
                    "{what}: {} lengths for a batch of {batch}",
                    lens.len()
                )))
            }
        };
        let xs = x.as_standard_layout();
        let xs = xs.as_slice().ok_or_else(|| no_forward("pool"))?;
        let mut y = vec![T::zero(); batch * out_len * c];
        // Inference keeps no argmax (only backward reads it).
        let keep = mode.caches();
        let mut argmax = match self.op {
            PoolOp::Max if keep && old_argmax.len() == batch * out_len * c => old_argmax,
            PoolOp::Max if keep => vec![0usize; batch * out_len * c],
            _ => Vec::new(),
        };
        let (p, s) = (self.pool, self.stride);
        let item = (len * c).max(1);
        let oitem = (out_len * c).max(1);
        match self.op {
            PoolOp::Max if !keep => {
                y.par_chunks_mut(oitem)
                    .zip(xs.par_chunks(item))
                    .zip(records.par_iter())
                    .for_each(|((yi, xi), &(len, out_len, pad))| {
                        for t in 0..out_len {
                            let (lo, hi) = window(t, s, p, pad, len);
                            max_rows(&mut yi[t * c..(t + 1) * c], &xi[lo * c..hi * c]);
                        }
                    });
            }
            PoolOp::Max => {
                y.par_chunks_mut(oitem)
                    .zip(argmax.par_chunks_mut(oitem))
                    .zip(xs.par_chunks(item))
                    .zip(records.par_iter())
                    .for_each(|(((yi, ai), xi), &(len, out_len, pad))| {
                        for t in 0..out_len {
                            let (lo, hi) = window(t, s, p, pad, len);
                            let yr = &mut yi[t * c..(t + 1) * c];
                            let xw = &xi[lo * c..hi * c];
                            max_rows(yr, xw);
                            first_max_rows(&mut ai[t * c..(t + 1) * c], yr, xw, lo);
                        }
                    });
            }
            PoolOp::Avg => {
                y.par_chunks_mut(oitem)
                    .zip(xs.par_chunks(item))
                    .zip(records.par_iter())
                    .for_each(|((yi, xi), &(len, out_len, pad))| {
                        for t in 0..out_len {
                            let (lo, hi) = window(t, s, p, pad, len);
                            let yr = &mut yi[t * c..(t + 1) * c];
                            for q in lo..hi {
                                for (yv, &xv) in yr.iter_mut().zip(&xi[q * c..(q + 1) * c]) {
                                    *yv += xv;
                                }
                            }
                            let inv = T::one() / T::lit((hi - lo) as f64);
                            yr.iter_mut().for_each(|v| *v *= inv);
                        }
                    });
            }
        }
        if !keep {
            return from_vec(y, &[batch, out_len, c]);
        }
        self.cache = Some(PoolCache {
            argmax,
            in_shape: [batch, len, c],
            out_len,
            records,
        });
        from_vec(y, &[batch, out_len, c])
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let kind = Layer::<T>::kind(self);
        let cache = self.cache.as_ref().ok_or_else(|| no_forward(&kind))?;
        let [batch, len, c] = cache.in_shape;
        let out_len = cache.out_len;
        if grad_out.shape() != [batch, out_len, c] {
            return Err(Error::Shape {
                what: format!("{kind} output gradient"),
                expected: fmt_shape(&[batch, out_len, c]),
                got: fmt_shape(grad_out.shape()),
            });
        }
        let gs = grad_out.as_standard_layout();
        let gs = gs.as_slice().ok_or_else(|| no_forward(&kind))?;
        let mut dx = vec![T::zero(); batch * len * c];
        let (p, s) = (self.pool, self.stride);
        let item = (len * c).max(1);
        let oitem = (out_len * c).max(1);
        match self.op {
            PoolOp::Max => {
                dx.par_chunks_mut(item)
                    .zip(gs.par_chunks(oitem))
                    .zip(cache.argmax.par_chunks(oitem))
                    .zip(cache.records.par_iter())
                    .for_each(|(((dxi, gi), ai), &(_, out_len, _))| {
                        for t in 0..out_len {
                            for ch in 0..c {
                                let o = t * c + ch;
                                dxi[ai[o] * c + ch] += gi[o];
                            }
                        }
                    });
            }
            PoolOp::Avg => {
                dx.par_chunks_mut(item)
                    .zip(gs.par_chunks(oitem))
                    .zip(cache.records.par_iter())
                    .for_each(|((dxi, gi), &(len, out_len, pad))| {
                        for t in 0..out_len {
                            let (lo, hi) = window(t, s, p, pad, len);
                            let inv = T::one() / T::lit((hi - lo) as f64);
                            let gr = &gi[t * c..(t + 1) * c];
                            for q in lo..hi {
                                for (d, &g) in dxi[q * c..(q + 1) * c].iter_mut().zip(gr) {
                                    *d += g * inv;
                                }
                            }
                        }
                    });
            }
        }
        from_vec(dx, &[batch, len, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows × c` values cycling through NaN, ±0, ±∞ and ties, with a vector tail (`c` not a
    /// multiple of 8); `mix` changes the pattern.
    fn specials(rows: usize, c: usize, mix: usize) -> Vec<f32> {
        let vals = [
            0.0f32,
            -0.0,
            1.5,
            -2.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.5,
        ];
        (0..rows * c)
            .map(|k| {
                let v = vals[(k * (mix + 4) + k / (mix + 2) + rows) % vals.len()];
                if k % (mix + 3) == 1 {
                    -v
                } else {
                    v
                }
            })
            .collect()
    }

    /// The dispatched max and arg max (AVX2 on a CPU that has it) give the bits of their
    /// baseline loops, and they are the running maximum's (`takes_max`): NaN first, ±0 and
    /// ties keep the first row; the arg max of the two passes (maximum, then the first row
    /// equal to it) is the running one's.
    #[test]
    fn max_and_arg_max_are_the_running_maximum_on_both_paths() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (c, mix) in [(29, 1), (37, 3)] {
            for rows in 1..7 {
                let x = specials(rows, c, mix);
                let (mut y, mut base) = (vec![9.0f32; c], vec![9.0f32; c]);
                max_rows(&mut y, &x);
                max_rows_body(&mut base, &x);
                assert_eq!(
                    bits(&y),
                    bits(&base),
                    "{c}×{rows}: max, wide against baseline"
                );
                let (mut arg, mut arg_base) = (vec![usize::MAX; c], vec![usize::MAX; c]);
                first_max_rows(&mut arg, &y, &x, 10);
                first_max_rows_body(&mut arg_base, &y, &x, 10);
                assert_eq!(arg, arg_base, "{c}×{rows}: arg max, wide against baseline");
                for ch in 0..c {
                    let (mut best, mut at) = (x[ch], 0);
                    for r in 1..rows {
                        if takes_max(x[r * c + ch], best) {
                            best = x[r * c + ch];
                            at = r;
                        }
                    }
                    assert_eq!(y[ch].to_bits(), best.to_bits(), "{c}×{rows}, channel {ch}");
                    assert_eq!(arg[ch], 10 + at, "{c}×{rows}, channel {ch}");
                }
            }
        }
    }
}
