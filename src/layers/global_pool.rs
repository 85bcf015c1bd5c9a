//! `global_maxpool1d` and `global_avgpool1d`: reduce the whole time axis, per channel
//! (Keras `GlobalMaxPooling1D` / `GlobalAveragePooling1D`): `(L, C) → (C)`.
//!
//! Max: `y[b, c] = max_i x[b, i, c]`; backward `dx[b, a, c] = dy[b, c]` at the arg max `a`
//! (the **first** position of the maximum on ties), zero elsewhere. A NaN counts as larger than
//! every number (the first NaN is the arg max), so NaN inputs are not hidden.
//!
//! Average: `y[b, c] = (1/L) Σ_i x[b, i, c]`; backward `dx[b, i, c] = dy[b, c] / L` for all `i`.
//!
//! Masked batches ([`Layer::set_lengths`], variable-length models): record `b` pools over its
//! real positions `i < L_b` only — max over them, average dividing by `L_b` — and padded
//! positions get a zero gradient, exactly as the record alone at length `L_b`.

use std::marker::PhantomData;

use ndarray::{Array2, ArrayD, ArrayViewD, Axis, Ix3, Zip};

use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::KerasOpts;
use crate::layers::pool::PoolOp;
use crate::layers::registry::{
    EmptySpec, Issue, LayerBytes, LayerKind, MemoryIo, Planned, TimeAxisHint,
};
use crate::layers::{no_forward, Layer};
use crate::tensor::{fmt_shape, Float, Mode};

/// The shape rule of both global pools: `(length ≥ 1, channels)` → `(channels)`.
fn plan(input: &[usize]) -> Issue<Planned> {
    match input {
        [l, c] if *l > 0 => Ok(Planned::new(vec![*c])),
        [_, _] => Err(ShapeIssue::TooShort {
            what: "global pooling window".into(),
            needed: 1,
            got: 0,
        }),
        _ => Err(ShapeIssue::NeedsSequence {
            got: input.to_vec(),
        }),
    }
}

/// The `global_maxpool1d` (`MAX`) and `global_avgpool1d` kinds (registry entries).
pub struct GlobalPoolKind<const MAX: bool>;

/// `global_maxpool1d`.
pub type GlobalMaxKind = GlobalPoolKind<true>;
/// `global_avgpool1d`.
pub type GlobalAvgKind = GlobalPoolKind<false>;

impl<const MAX: bool> LayerKind for GlobalPoolKind<MAX> {
    type Spec = EmptySpec;
    const KERAS: &'static [&'static str] = if MAX {
        &["GlobalMaxPooling1D", "GlobalMaxPool1D"]
    } else {
        &["GlobalAveragePooling1D", "GlobalAvgPool1D"]
    };

    fn plan(_s: &EmptySpec, input: &[usize]) -> Issue<Planned> {
        plan(input)
    }

    fn memory(_s: &EmptySpec, io: &MemoryIo<'_>) -> LayerBytes {
        crate::layers::pool::pool_memory(MAX, io)
    }

    fn build<T: Float>(
        _s: &EmptySpec,
        input: &[usize],
        _seed: u64,
        _rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        let op = if MAX { PoolOp::Max } else { PoolOp::Avg };
        Ok(Box::new(GlobalPool1d::<T>::new(op, input)?))
    }

    /// Keras `GlobalMaxPooling1D` / `GlobalAveragePooling1D` options.
    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<EmptySpec> {
        o.channels_last()?;
        o.require_bool("keepdims", false, "the pooled axis is always dropped")?;
        Ok(EmptySpec {})
    }

    fn removed_time_axis(_s: &EmptySpec, name: &'static str, h: &TimeAxisHint) -> String {
        format!(
            "{}: remove the {name} or move it after {}",
            h.removed(name),
            h.needs
        )
    }
}

/// What backward needs from the last forward pass.
struct GlobalPoolCache {
    /// Arg-max position along the length axis (max only; empty for average). `(batch, channels)`.
    argmax: Array2<usize>,
    /// Input shape `(batch, length, channels)`.
    in_shape: [usize; 3],
    /// Real length of every record (`L` for all unless masked).
    lens: Vec<usize>,
}

/// A global max or average pooling layer (no parameters).
pub struct GlobalPool1d<T: Float> {
    op: PoolOp,
    cache: Option<GlobalPoolCache>,
    /// Per-record input lengths for the next forward pass (`None`: all full length).
    lengths: Option<Vec<usize>>,
    _t: PhantomData<T>,
}

impl<T: Float> GlobalPool1d<T> {
    /// Builds the layer for a per-sample input `[length, channels]`.
    pub fn new(op: PoolOp, input: &[usize]) -> std::result::Result<Self, ShapeIssue> {
        // Any length: the length is checked per input (`plan`, `output_shape`).
        if input.len() != 2 {
            return Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            });
        }
        Ok(GlobalPool1d {
            op,
            cache: None,
            lengths: None,
            _t: PhantomData,
        })
    }
}

impl<T: Float> Layer<T> for GlobalPool1d<T> {
    fn kind(&self) -> String {
        match self.op {
            PoolOp::Max => "global_maxpool1d".into(),
            PoolOp::Avg => "global_avgpool1d".into(),
        }
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        match input {
            [l, c] if *l > 0 => Ok(vec![*c]),
            [_, _] => Err(ShapeIssue::TooShort {
                what: "global pooling window".into(),
                needed: 1,
                got: 0,
            }),
            _ => Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            }),
        }
    }

    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.lengths = lengths.map(<[usize]>::to_vec);
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, _mode: Mode) -> Result<ArrayD<T>> {
        let kind = Layer::<T>::kind(self);
        let bad = || Error::Shape {
            what: format!("{kind} input"),
            expected: "(batch, length ≥ 1, channels)".into(),
            got: fmt_shape(x.shape()),
        };
        let x3 = x.view().into_dimensionality::<Ix3>().map_err(|_| bad())?;
        let (batch, len, c) = x3.dim();
        if len == 0 {
            return Err(bad());
        }
        let lens: Vec<usize> = match &self.lengths {
            None => vec![len; batch],
            Some(l) if l.len() == batch => l.iter().map(|&n| n.clamp(1, len)).collect(),
            Some(l) => {
                return Err(Error::Lengths(format!(
                    "{kind}: {} lengths for a batch of {batch}",
                    l.len()
                )))
            }
        };
        let x3 = x3.as_standard_layout();
        let mut y = Array2::<T>::zeros((batch, c));
        let mut argmax = Array2::<usize>::zeros((0, 0));
        match self.op {
            PoolOp::Max => {
                argmax = Array2::zeros((batch, c));
                for (((xb, mut yb), mut ab), &n) in x3
                    .outer_iter()
                    .zip(y.outer_iter_mut())
                    .zip(argmax.outer_iter_mut())
                    .zip(&lens)
                {
                    yb.assign(&xb.row(0));
                    for (i, row) in xb.outer_iter().enumerate().take(n).skip(1) {
                        Zip::from(&mut yb)
                            .and(&mut ab)
                            .and(&row)
                            .for_each(|best, at, &v| {
                                if crate::layers::pool::takes_max(v, *best) {
                                    *best = v;
                                    *at = i;
                                }
                            });
                    }
                }
            }
            PoolOp::Avg if self.lengths.is_none() => {
                let inv = T::one() / T::lit(len as f64);
                // Sum over the length axis in index order, then scale.
                y = x3.fold_axis(Axis(1), T::zero(), |&a, &b| a + b);
                y.mapv_inplace(|v| v * inv);
            }
            PoolOp::Avg => {
                for ((xb, mut yb), &n) in x3.outer_iter().zip(y.outer_iter_mut()).zip(&lens) {
                    for row in xb.outer_iter().take(n) {
                        yb += &row;
                    }
                    let inv = T::one() / T::lit(n as f64);
                    yb.mapv_inplace(|v| v * inv);
                }
            }
        }
        self.cache = Some(GlobalPoolCache {
            argmax,
            in_shape: [batch, len, c],
            lens,
        });
        Ok(y.into_dyn())
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let kind = Layer::<T>::kind(self);
        let cache = self.cache.as_ref().ok_or_else(|| no_forward(&kind))?;
        let [batch, len, c] = cache.in_shape;
        let g = grad_out
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .ok()
            .filter(|g| g.dim() == (batch, c));
        let g = g.ok_or_else(|| Error::Shape {
            what: format!("{kind} output gradient"),
            expected: fmt_shape(&[batch, c]),
            got: fmt_shape(grad_out.shape()),
        })?;
        let mut dx = ndarray::Array3::<T>::zeros((batch, len, c));
        match self.op {
            PoolOp::Max => {
                for ((mut dxb, gb), ab) in dx
                    .outer_iter_mut()
                    .zip(g.outer_iter())
                    .zip(cache.argmax.outer_iter())
                {
                    for ((ch, &a), &gv) in ab.iter().enumerate().zip(gb.iter()) {
                        if let Some(d) = dxb.get_mut((a, ch)) {
                            *d += gv;
                        }
                    }
                }
            }
            PoolOp::Avg => {
                for ((mut dxb, gb), &n) in dx.outer_iter_mut().zip(g.outer_iter()).zip(&cache.lens)
                {
                    let inv = T::one() / T::lit(n as f64);
                    let scaled = gb.mapv(|v| v * inv);
                    for mut row in dxb.outer_iter_mut().take(n) {
                        row.assign(&scaled);
                    }
                }
            }
        }
        Ok(dx.into_dyn())
    }
}
