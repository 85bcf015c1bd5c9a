//! Recurrent layers: `simple_rnn`, `lstm`, `gru` (one shared unidirectional [`Recurrent`]
//! layer, the cells differing only in their per-row step) and the [`Bidirectional`] wrapper.
//! Full derivations: `docs/rnn.md`.
//!
//! Input `(B, L, F)` (channels-last, PyTorch `batch_first=True`), `U` units, `G` gates
//! (1, 4, 3). Parameters as PyTorch: `weight_ih_l0 (G·U, F)`, `weight_hh_l0 (G·U, U)`,
//! `bias_ih_l0 (G·U)`, `bias_hh_l0 (G·U)` (`_reverse` suffix for a reverse direction).
//! Initial state `h = c = 0`.
//!
//! Forward, time-major (row `t·B + b` of every `(L·B, ·)` buffer is item `b` at time `t`):
//! 1. `X̂ = X W_ihᵀ + b_ih` for all steps in ONE GEMM `(L·B, F)·(F, G·U)` (plus `b_hh` folded in
//!    for simple_rnn/lstm).
//! 2. For each step (t = 0…L−1, or L−1…0 for the reverse direction): one GEMM
//!    `h_prev (B, U) · W_hhᵀ (U, G·U)` added into that step's rows (GRU: into a separate
//!    `Ĥ` buffer, since its reset gate multiplies `Ĥ_n`), then the cell's element-wise step.
//!
//! Backward through time (steps in the reverse of the forward order): the total
//! `dh_t = dY_t + (dh carried from the next-processed step)`; the cell turns it into the
//! pre-activation gradients of step t, stored in one `(L·B, G·U)` buffer `dA` (GRU: also `dĤ`),
//! and `dh_prev = (direct part) + dA_t W_hh` (one GEMM per step). Then with big GEMMs:
//! `dW_ih += dAᵀ X`, `dW_hh += dĤᵀ H_prev`, `db_ih += Σ_rows dA`, `db_hh += Σ_rows dĤ`,
//! `dX = dA W_ih` (`dĤ = dA` except for the GRU).
//!
//! Output: `return_sequences` true → `(B, L, U)` (h_t at its original time index); false →
//! `(B, U)`, the final state: h at t = L−1 for the forward direction, at t = 0 for the reverse.
//!
//! Masked batches ([`Layer::set_lengths`]; PyTorch's `pack_padded_sequence`): record `b` has
//! `L_b ≤ L` real steps. Every step `t ≥ L_b` is *frozen* for that row: the state is copied
//! unchanged (`h_t = h_{t−1}` in processing order, `c` too), so the forward direction's state
//! stops at the record's last real step and its final state is `h_{L_b−1}`, while the reverse
//! direction stays at the initial zeros through `t = L−1 … L_b` and starts at `t = L_b − 1`.
//! `return_sequences` outputs are zero at `t ≥ L_b`. Backward mirrors it: at a frozen step the
//! upstream gradient is ignored (the output there is a constant 0), `dA_t = 0` for the row, and
//! `dh`, `dc` pass through unchanged; so padded steps add nothing to any gradient and the input
//! gradient is zero there. The batch GEMMs still run over all `B` rows (frozen rows' results are
//! discarded), so the unmasked path is unchanged.
//!
//! Per-step record (when [`Layer::set_record_step_grads`] is on): `‖dh_t‖₂` per batch item and
//! time, the total gradient reaching `h_t` as defined above, `(B, L)` in original time order
//! (`t` 0-based in sequence order for both directions); NaN at a masked record's padded steps
//! `t ≥ L_b`, which are no steps of it (batch means skip them:
//! [`step_means`]). Gate saturation likewise counts real steps only.
//!
//! Everything is deterministic: the only reductions are GEMMs (parallel over the rayon pool, each
//! element of the product summed in the same blocked order at any thread count; see
//! [`crate::layers::gemm`]) and row sums in a fixed order.

pub mod bidirectional;
pub mod gru;
pub mod init;
pub mod lstm;
pub mod simple_rnn;
pub mod spec;

use std::ops::AddAssign;

use ndarray::{s, Array2, Array3, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Ix3};
use rand_chacha::ChaCha8Rng;

pub use bidirectional::{Bidirectional, BidirectionalSpec, MergeMode};
pub use spec::{BiasInit, RecurrentInit, RecurrentSpec, RnnInit, RnnSpec};

use crate::activation::Activation;
use crate::error::{Error, Result, ShapeIssue};
use crate::layers::gemm::mat_mul;
use crate::layers::{no_forward, Layer, Param};
use crate::tensor::{view1, view1_mut, view2, view2_mut, Float, Mode};

/// `tanh` for the cells: exact in f64 (gradient checks, PyTorch comparison); in f32 the
/// branch-free [`crate::activation::tanh_f32`] (relative error ≤ 4e−7), which vectorises.
#[inline(always)]
pub(crate) fn tanh<T: Float>(x: T) -> T {
    x.gate_tanh()
}

/// `σ` for the gates: exact in f64; in f32 the branch-free [`crate::activation::sigmoid_f32`]
/// (relative error ≤ 4e−7), which vectorises.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    x.gate_sigmoid()
}

/// Batch mean of recorded per-step norms `(B, L)` (see [`Layer::step_grad_norms`]) per time
/// step `t`, over the records for which `t` is a real step (NaN entries, a masked record's
/// padded steps, are skipped); NaN where no record has step `t`.
pub fn step_means(norms: &ndarray::Array2<f64>) -> Vec<f64> {
    norms
        .axis_iter(Axis(1))
        .map(|col| {
            let (sum, n) = col
                .iter()
                .filter(|v| !v.is_nan())
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 {
                f64::NAN
            } else {
                sum / n as f64
            }
        })
        .collect()
}

/// The first/last ratio of one direction's per-step norms `norms[t]` (`t` 0-based in sequence
/// order for both directions): ‖∂L/∂h‖ at the step farthest from the output over the step
/// nearest it, in processing order: `t = 0 / t = L−1` for the forward direction,
/// `t = L−1 / t = 0` for the reverse one. NaN if the nearest is 0 or there are no steps. The
/// one definition used by `seqgrad grad`, `seqgrad gradflow` and their docs.
pub fn first_last_ratio(norms: &[f64], reverse: bool) -> f64 {
    let (Some(&a), Some(&b)) = (norms.first(), norms.last()) else {
        return f64::NAN;
    };
    let (far, near) = if reverse { (b, a) } else { (a, b) };
    if near == 0.0 {
        f64::NAN
    } else {
        far / near
    }
}

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Elman cell with `tanh` or `relu`.
    SimpleRnn(Activation),
    Lstm,
    Gru,
}

impl CellKind {
    /// The cell for a spec, or why its options are invalid.
    pub fn from_spec(spec: &RecurrentSpec) -> std::result::Result<Self, ShapeIssue> {
        let act = spec.rnn().activation;
        match spec {
            RecurrentSpec::SimpleRnn(_) => match act {
                Activation::Tanh | Activation::Relu => Ok(CellKind::SimpleRnn(act)),
                other => Err(ShapeIssue::Invalid(format!(
                    "simple_rnn activation must be tanh or relu, got {}",
                    other.name()
                ))),
            },
            RecurrentSpec::Lstm(_) | RecurrentSpec::Gru(_) if act != Activation::Tanh => {
                Err(ShapeIssue::Invalid(format!(
                    "{} activation must be tanh (the only one supported), got {}",
                    spec.kind(),
                    act.name()
                )))
            }
            RecurrentSpec::Lstm(_) => Ok(CellKind::Lstm),
            RecurrentSpec::Gru(_) => Ok(CellKind::Gru),
        }
    }

    /// Number of gates G (rows of the weights are `G·units`).
    pub fn gates(self) -> usize {
        match self {
            CellKind::SimpleRnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Type name as in model files.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::SimpleRnn(_) => "simple_rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// GRU keeps the recurrent pre-activations apart (its reset gate multiplies them).
    fn split_hh(self) -> bool {
        self == CellKind::Gru
    }

    fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }
}

/// Reading direction of a unidirectional layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// t = 0 … L−1; parameters without suffix.
    Forward,
    /// t = L−1 … 0 (outputs kept at their original index); parameters with `_reverse`.
    Reverse,
}

impl Direction {
    fn suffix(self) -> &'static str {
        match self {
            Direction::Forward => "",
            Direction::Reverse => "_reverse",
        }
    }

    /// Name used for the per-step gradient record.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }
}

/// What backward needs from the last forward pass. Time-major rows `t·B + b`.
///
/// State buffers have `L + 1` slots of `B` rows: the forward direction keeps `h_t` in slot
/// `t + 1` (slot 0 = initial zeros), the reverse direction keeps `h_t` in slot `t` (slot `L` =
/// initial zeros); so `H_prev` (the state each step read) is one contiguous `(L·B, U)` block.
struct RnnCache<T> {
    /// Input. `(L·B, F)`.
    x: Array2<T>,
    /// Activated gates of every step (simple_rnn: `h_t`; lstm: `[i, f, g, o]`; gru: `[r, z, n]`).
    /// `(L·B, G·U)`.
    gates: Array2<T>,
    /// GRU only: `Ĥ = W_hh h_prev + b_hh` of every step. `(L·B, G·U)`; `(0, 0)` otherwise.
    hh: Array2<T>,
    /// Hidden states in slots. `((L+1)·B, U)`.
    hs: Array2<T>,
    /// LSTM only: cell states in the same slots. `((L+1)·B, U)`; `(0, 0)` otherwise.
    cs: Array2<T>,
    batch: usize,
    length: usize,
    /// Per-record lengths of a masked pass (`None`: all `L`).
    lens: Option<Vec<usize>>,
}

/// A unidirectional recurrent layer (`simple_rnn`, `lstm`, `gru`).
pub struct Recurrent<T: Float> {
    cell: CellKind,
    units: usize,
    features: usize,
    return_sequences: bool,
    direction: Direction,
    /// `[weight_ih, weight_hh, bias_ih, bias_hh]` (PyTorch order).
    params: [Param<T>; 4],
    cache: Option<RnnCache<T>>,
    record: bool,
    /// `‖dh_t‖` per item and time from the last backward pass. `(B, L)`.
    step_norms: Option<ndarray::Array2<f64>>,
    /// Backward's `dA` and (GRU) `dĤ` buffers, kept for the next pass. `(L·B, G·U)` each.
    scratch: Option<(Array2<T>, Array2<T>)>,
    /// The forward buffers between inference passes (which keep no cache).
    spare: Option<RnnCache<T>>,
    /// Whether backward computes ∂L/∂input (off for a model's first layer in training).
    need_input_grad: bool,
    /// Per-record lengths for the next forward pass (`None`: all full length).
    lengths: Option<Vec<usize>>,
}

/// A `(rows, cols)` buffer: `old` if it already has that shape and standard layout (its stale
/// contents must be overwritten by the caller), else a new zeroed one.
fn reuse<T: Float>(old: Option<Array2<T>>, rows: usize, cols: usize) -> Array2<T> {
    match old {
        Some(a) if a.dim() == (rows, cols) && a.is_standard_layout() => a,
        _ => Array2::zeros((rows, cols)),
    }
}

/// The rows of slot/time block `k` of a `(n·B, w)` buffer's flat slice.
#[inline]
fn block<T>(buf: &[T], k: usize, len: usize) -> &[T] {
    &buf[k * len..(k + 1) * len]
}

#[inline]
fn block_mut<T>(buf: &mut [T], k: usize, len: usize) -> &mut [T] {
    &mut buf[k * len..(k + 1) * len]
}

/// Block `prev` to read and block `cur` to write (`prev ≠ cur`) of one flat buffer.
#[inline]
fn read_write<T>(buf: &mut [T], prev: usize, cur: usize, len: usize) -> (&[T], &mut [T]) {
    if prev < cur {
        let (a, b) = buf.split_at_mut(cur * len);
        (&a[prev * len..(prev + 1) * len], &mut b[..len])
    } else {
        let (a, b) = buf.split_at_mut(prev * len);
        (&b[..len], &mut a[cur * len..(cur + 1) * len])
    }
}

/// The flat slice of a buffer this module created in standard layout.
#[inline]
fn flat<T>(a: &Array2<T>) -> &[T] {
    a.as_slice().expect("standard layout") // ok: buffers come from Array2::zeros or `reuse` (standard layout)
}

#[inline]
fn flat_mut<T>(a: &mut Array2<T>) -> &mut [T] {
    a.as_slice_mut().expect("standard layout") // ok: buffers come from Array2::zeros or `reuse` (standard layout)
}

impl<T: Float> Recurrent<T> {
    /// Builds a layer for a per-sample input `[length, features]`.
    ///
    /// # Shapes
    /// - `input`: `[L, F]`; a 1-D `[F]` gives [`ShapeIssue::NeedsSequence`].
    pub fn new(
        spec: &RecurrentSpec,
        input: &[usize],
        direction: Direction,
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<Self, ShapeIssue> {
        spec::plan(spec, direction.suffix(), input)?;
        let cell = CellKind::from_spec(spec)?;
        let rnn: &RnnSpec = spec.rnn();
        let features = input[1];
        let g = cell.gates();
        // Sizes first: nothing is allocated for options that cannot fit.
        let gu = g.checked_mul(rnn.units).ok_or_else(|| {
            ShapeIssue::Invalid(format!(
                "units {} times {g} gates overflows usize",
                rnn.units
            ))
        })?;
        crate::layers::checked_elems("weight_ih_l0", &[gu, features])?;
        crate::layers::checked_elems("weight_hh_l0", &[gu, rnn.units])?;
        let [w_ih, w_hh, b_ih, b_hh] =
            init::init_params(rnn, g, cell == CellKind::Lstm, features, input[0], rng)?;
        let sfx = direction.suffix();
        let params = [
            Param::new(format!("weight_ih_l0{sfx}"), w_ih),
            Param::new(format!("weight_hh_l0{sfx}"), w_hh),
            Param::new(format!("bias_ih_l0{sfx}"), b_ih),
            Param::new(format!("bias_hh_l0{sfx}"), b_hh),
        ];
        Ok(Recurrent {
            cell,
            units: rnn.units,
            features,
            return_sequences: rnn.return_sequences,
            direction,
            params,
            cache: None,
            record: false,
            step_norms: None,
            scratch: None,
            spare: None,
            need_input_grad: true,
            lengths: None,
        })
    }

    pub fn cell(&self) -> CellKind {
        self.cell
    }

    pub fn units(&self) -> usize {
        self.units
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    pub fn return_sequences(&self) -> bool {
        self.return_sequences
    }

    /// Slot holding h_t, and slot holding the state step t reads.
    #[inline]
    fn slots(&self, t: usize) -> (usize, usize) {
        match self.direction {
            Direction::Forward => (t, t + 1),
            Direction::Reverse => (t + 1, t),
        }
    }

    /// Original time index of processing step `k`.
    #[inline]
    fn time(&self, k: usize, length: usize) -> usize {
        match self.direction {
            Direction::Forward => k,
            Direction::Reverse => length - 1 - k,
        }
    }

    /// Slot of the initial (zero) state.
    fn initial_slot(&self, length: usize) -> usize {
        match self.direction {
            Direction::Forward => 0,
            Direction::Reverse => length,
        }
    }

    /// Slot of the final state (h at t = L−1 forward, t = 0 reverse).
    fn final_slot(&self, length: usize) -> usize {
        match self.direction {
            Direction::Forward => length,
            Direction::Reverse => 0,
        }
    }

    pub(crate) fn output_dims(&self, batch: usize, length: usize) -> Vec<usize> {
        if self.return_sequences {
            vec![batch, length, self.units]
        } else {
            vec![batch, self.units]
        }
    }

    /// `(B, L)` of a valid input `(B, L ≥ 1, F)`, or the shape error.
    pub(crate) fn input_dims(&self, shape: &[usize]) -> Result<(usize, usize)> {
        match shape {
            &[b, l, f] if f == self.features && l > 0 => Ok((b, l)),
            _ => Err(Error::Shape {
                what: format!("{} input", self.cell.name()),
                expected: format!("(batch, length ≥ 1, {})", self.features),
                got: format!("{shape:?}"),
            }),
        }
    }

    /// [`Layer::forward`] writing the output into `out` (shaped `(B, L, U)` or `(B, U)`, any
    /// strides): `bidirectional` hands each direction its half of the concatenated output, so
    /// no copy is needed afterwards.
    ///
    /// # Shapes
    /// - `x`: `(B, L, F)`; `out`: `(B, L, U)` with `return_sequences`, else `(B, U)`.
    pub fn forward_into(
        &mut self,
        x: ArrayViewD<'_, T>,
        mode: Mode,
        mut out: ArrayViewMutD<'_, T>,
    ) -> Result<()> {
        self.input_dims(x.shape())?;
        let x3 = x
            .view()
            .into_dimensionality::<Ix3>()
            .map_err(|_| no_forward(self.cell.name()))?;
        let (b, l, f) = x3.dim();
        let lens: Option<Vec<usize>> = match &self.lengths {
            None => None,
            Some(v) if v.len() == b => Some(v.iter().map(|&n| n.min(l)).collect()),
            Some(v) => {
                return Err(Error::Lengths(format!(
                    "{}: {} lengths for a batch of {b}",
                    self.cell.name(),
                    v.len()
                )))
            }
        };
        let (u, gu) = (self.units, self.cell.gates() * self.units);
        let split = self.cell.split_hh();
        // Row-major copies of the transposed weights, `(F, G·U)` and `(U, G·U)`, made once per
        // pass (1.6 MB each for W3): the products then read `B` row-major, which the gemm crate
        // packs faster than a transposed view (docs/performance.md, "This session's one speed
        // change"). The crate picks its kernel partly by layout: for a batch of 1 (a
        // matrix-vector product) or ≤ 256 outputs per step it may round differently than with
        // the transposed view, never differently between thread counts.
        let (w_ih, w_hh) = (view2(&self.params[0].value), view2(&self.params[1].value));
        let (w_ih_t, w_hh_t) = (w_ih.t(), w_hh.t());
        let (w_ih_t, w_hh_t) = (w_ih_t.as_standard_layout(), w_hh_t.as_standard_layout());

        // Reuse the previous pass's buffers when the shapes match (every element is overwritten
        // below, except the initial-state slots, which are zeroed).
        let (o_x, o_g, o_hh, o_hs, o_cs) = match self.cache.take().or_else(|| self.spare.take()) {
            Some(c) => (Some(c.x), Some(c.gates), Some(c.hh), Some(c.hs), Some(c.cs)),
            None => (None, None, None, None, None),
        };
        // Time-major input.
        let mut xs = reuse(o_x, l * b, f);
        for t in 0..l {
            xs.slice_mut(s![t * b..(t + 1) * b, ..])
                .assign(&x3.index_axis(Axis(1), t));
        }
        // All input projections in one GEMM, biases first.
        let mut gates = reuse(o_g, l * b, gu);
        gates.assign(&view1(&self.params[2].value));
        let mut hh = if split {
            let mut hh = reuse(o_hh, l * b, gu);
            hh.assign(&view1(&self.params[3].value));
            hh
        } else {
            gates += &view1(&self.params[3].value);
            Array2::zeros((0, 0))
        };
        mat_mul(T::one(), &xs, &w_ih_t, T::one(), &mut gates);

        let z0 = self.initial_slot(l);
        let mut hs = reuse(o_hs, (l + 1) * b, u);
        hs.slice_mut(s![z0 * b..(z0 + 1) * b, ..]).fill(T::zero());
        let mut cs = if self.cell.has_cell_state() {
            let mut cs = reuse(o_cs, (l + 1) * b, u);
            cs.slice_mut(s![z0 * b..(z0 + 1) * b, ..]).fill(T::zero());
            cs
        } else {
            Array2::zeros((0, 0))
        };
        for k in 0..l {
            let t = self.time(k, l);
            let (p, c) = self.slots(t);
            // Recurrent GEMM into this step's rows.
            {
                let h_prev = hs.slice(s![p * b..(p + 1) * b, ..]);
                let target = if split { &mut hh } else { &mut gates };
                let mut dst = target.slice_mut(s![t * b..(t + 1) * b, ..]);
                mat_mul(T::one(), &h_prev, &w_hh_t, T::one(), &mut dst);
            }
            let pre = block_mut(flat_mut(&mut gates), t, b * gu);
            let (h_prev, h_cur) = read_write(flat_mut(&mut hs), p, c, b * u);
            match self.cell {
                CellKind::SimpleRnn(act) => {
                    for r in 0..b {
                        simple_rnn::forward_row(act, block_mut(pre, r, gu), block_mut(h_cur, r, u));
                    }
                }
                CellKind::Lstm => {
                    let (c_prev, c_cur) = read_write(flat_mut(&mut cs), p, c, b * u);
                    for r in 0..b {
                        lstm::forward_row(
                            block_mut(pre, r, gu),
                            block(c_prev, r, u),
                            block_mut(c_cur, r, u),
                            block_mut(h_cur, r, u),
                        );
                    }
                }
                CellKind::Gru => {
                    let hh_t = block(flat(&hh), t, b * gu);
                    for r in 0..b {
                        gru::forward_row(
                            block_mut(pre, r, gu),
                            block(hh_t, r, gu),
                            block(h_prev, r, u),
                            block_mut(h_cur, r, u),
                        );
                    }
                }
            }
            // Frozen rows (t past the record's end) keep their state.
            if let Some(lens) = &lens {
                let (h_prev, h_cur) = read_write(flat_mut(&mut hs), p, c, b * u);
                for (r, &n) in lens.iter().enumerate() {
                    if t >= n {
                        block_mut(h_cur, r, u).copy_from_slice(block(h_prev, r, u));
                    }
                }
                if self.cell.has_cell_state() {
                    let (c_prev, c_cur) = read_write(flat_mut(&mut cs), p, c, b * u);
                    for (r, &n) in lens.iter().enumerate() {
                        if t >= n {
                            block_mut(c_cur, r, u).copy_from_slice(block(c_prev, r, u));
                        }
                    }
                }
            }
        }

        let want = self.output_dims(b, l);
        if out.shape() != want.as_slice() {
            return Err(Error::Shape {
                what: format!("{} output buffer", self.cell.name()),
                expected: format!("{want:?}"),
                got: format!("{:?}", out.shape()),
            });
        }
        if self.return_sequences {
            for t in 0..l {
                let c = self.slots(t).1;
                let mut o = out.index_axis_mut(Axis(1), t);
                o.assign(&hs.slice(s![c * b..(c + 1) * b, ..]));
                if let Some(lens) = &lens {
                    for (r, &n) in lens.iter().enumerate() {
                        if t >= n {
                            o.index_axis_mut(Axis(0), r).fill(T::zero());
                        }
                    }
                }
            }
        } else {
            let c = self.final_slot(l);
            out.assign(&hs.slice(s![c * b..(c + 1) * b, ..]));
        }
        let bufs = RnnCache {
            x: xs,
            gates,
            hh,
            hs,
            cs,
            batch: b,
            length: l,
            lens,
        };
        if mode.caches() {
            self.cache = Some(bufs);
        } else {
            self.spare = Some(bufs);
        }
        Ok(())
    }
}

/// The feature count of a `[length, features]` input, or why it is not a sequence.
fn sequence_features(input: &[usize]) -> std::result::Result<usize, ShapeIssue> {
    match input {
        [l, f] if *l > 0 && *f > 0 => Ok(*f),
        [_, _] => Err(ShapeIssue::Invalid(format!(
            "needs a non-empty sequence (length, features) but got ({}, {})",
            input[0], input[1]
        ))),
        _ => Err(ShapeIssue::NeedsSequence {
            got: input.to_vec(),
        }),
    }
}

impl<T: Float> Layer<T> for Recurrent<T> {
    fn kind(&self) -> String {
        self.cell.name().into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        let f = sequence_features(input)?;
        if f != self.features {
            return Err(ShapeIssue::Rank {
                expected: format!("(length, {})", self.features),
                got: input.to_vec(),
            });
        }
        Ok(if self.return_sequences {
            vec![input[0], self.units]
        } else {
            vec![self.units]
        })
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        let (b, l) = self.input_dims(x.shape())?;
        let mut out = ArrayD::zeros(ndarray::IxDyn(&self.output_dims(b, l)));
        self.forward_into(x, mode, out.view_mut())?;
        Ok(out)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let name = self.cell.name();
        let cache = self.cache.as_ref().ok_or_else(|| no_forward(name))?;
        let (b, l) = (cache.batch, cache.length);
        let (u, f, gu) = (self.units, self.features, self.cell.gates() * self.units);
        let want = self.output_dims(b, l);
        if grad_out.shape() != want.as_slice() {
            return Err(Error::Shape {
                what: format!("{name} output gradient"),
                expected: format!("{want:?}"),
                got: format!("{:?}", grad_out.shape()),
            });
        }
        let split = self.cell.split_hh();
        let w_hh = view2(&self.params[1].value);

        // Every row of dA (and dĤ) is written by its step, so stale scratch buffers are fine.
        let (o_da, o_dah) = self.scratch.take().unzip();
        let mut da = reuse(o_da, l * b, gu);
        let mut dah = if split {
            reuse(o_dah, l * b, gu)
        } else {
            Array2::zeros((0, 0))
        };
        let mut dh = Array2::<T>::zeros((b, u));
        let mut dh_next = Array2::<T>::zeros((b, u));
        let mut dc = if self.cell.has_cell_state() {
            Array2::<T>::zeros((b, u))
        } else {
            Array2::zeros((0, 0))
        };
        // Upstream gradient per step (return_sequences) as a fixed-rank view. `(B, L, U)`.
        let g_seq = if self.return_sequences {
            grad_out.view().into_dimensionality::<Ix3>().ok()
        } else {
            None
        };
        let mut norms = self.record.then(|| ndarray::Array2::<f64>::zeros((b, l)));
        let gates = flat(&cache.gates);
        let hs = flat(&cache.hs);

        // Walk processing steps in reverse: kk = l-1 … 0.
        let lens = cache.lens.as_deref();
        // Whether row r is a real step at time t (always, unless masked).
        let live = |r: usize, t: usize| lens.is_none_or(|n| t < n[r]);
        for kk in (0..l).rev() {
            let t = self.time(kk, l);
            let (p, c) = self.slots(t);
            match (&g_seq, lens) {
                (Some(g), None) => dh.add_assign(&g.index_axis(Axis(1), t)),
                // A frozen step's output is a constant 0: its gradient goes nowhere.
                (Some(g), Some(n)) => {
                    let gt = g.index_axis(Axis(1), t);
                    for (r, mut row) in dh.outer_iter_mut().enumerate() {
                        if t < n[r] {
                            row.add_assign(&gt.index_axis(Axis(0), r));
                        }
                    }
                }
                (None, _) if kk == l - 1 => dh.add_assign(&grad_out),
                (None, _) => {}
            }
            if let Some(n) = norms.as_mut() {
                for (r, row) in dh.rows().into_iter().enumerate() {
                    // A padded step is no step of its record: NaN, not the passed-through dh.
                    n[[r, t]] = if live(r, t) {
                        row.iter()
                            .map(|v| v.to_f64c() * v.to_f64c())
                            .sum::<f64>()
                            .sqrt()
                    } else {
                        f64::NAN
                    };
                }
            }
            let g_t = block(gates, t, b * gu);
            let h_prev = block(hs, p, b * u);
            let h_cur = block(hs, c, b * u);
            let dh_s = flat(&dh);
            let dnext = flat_mut(&mut dh_next);
            let da_t = block_mut(flat_mut(&mut da), t, b * gu);
            match self.cell {
                CellKind::SimpleRnn(act) => {
                    for r in (0..b).filter(|&r| live(r, t)) {
                        simple_rnn::backward_row(
                            act,
                            block(h_cur, r, u),
                            block(dh_s, r, u),
                            block_mut(da_t, r, gu),
                        );
                    }
                    dnext.fill(T::zero());
                }
                CellKind::Lstm => {
                    let cs = flat(&cache.cs);
                    let (c_prev, c_cur) = (block(cs, p, b * u), block(cs, c, b * u));
                    let dc_s = flat_mut(&mut dc);
                    // A frozen row's dc passes through unchanged.
                    for r in (0..b).filter(|&r| live(r, t)) {
                        lstm::backward_row(
                            block(g_t, r, gu),
                            block(c_prev, r, u),
                            block(c_cur, r, u),
                            block(dh_s, r, u),
                            block_mut(dc_s, r, u),
                            block_mut(da_t, r, gu),
                        );
                    }
                    dnext.fill(T::zero());
                }
                CellKind::Gru => {
                    let hh_t = block(flat(&cache.hh), t, b * gu);
                    let dah_t = block_mut(flat_mut(&mut dah), t, b * gu);
                    for r in (0..b).filter(|&r| live(r, t)) {
                        gru::backward_row(
                            block(g_t, r, gu),
                            block(hh_t, r, gu),
                            block(h_prev, r, u),
                            block(dh_s, r, u),
                            block_mut(da_t, r, gu),
                            block_mut(dah_t, r, gu),
                            block_mut(dnext, r, u),
                        );
                    }
                }
            }
            // Frozen rows: no pre-activation gradient, dh passes through to the previous step.
            if let Some(n) = lens {
                let dnext = flat_mut(&mut dh_next);
                let dh_s = flat(&dh);
                for r in (0..b).filter(|&r| t >= n[r]) {
                    block_mut(block_mut(flat_mut(&mut da), t, b * gu), r, gu).fill(T::zero());
                    if split {
                        block_mut(block_mut(flat_mut(&mut dah), t, b * gu), r, gu).fill(T::zero());
                    }
                    block_mut(dnext, r, u).copy_from_slice(block(dh_s, r, u));
                }
            }
            // dh_{prev} = direct + dĤ_t W_hh.
            {
                let src = if split { &dah } else { &da };
                let dat = src.slice(s![t * b..(t + 1) * b, ..]);
                mat_mul(T::one(), &dat, &w_hh, T::one(), &mut dh_next);
            }
            std::mem::swap(&mut dh, &mut dh_next);
        }

        // Parameter gradients and the input gradient with big GEMMs.
        let dah_ref = if split { &dah } else { &da };
        let h_prev_all = match self.direction {
            Direction::Forward => cache.hs.slice(s![0..l * b, ..]),
            Direction::Reverse => cache.hs.slice(s![b..(l + 1) * b, ..]),
        };
        let [p_ih, p_hh, p_bih, p_bhh] = &mut self.params;
        mat_mul(
            T::one(),
            &da.t(),
            &cache.x,
            T::one(),
            &mut view2_mut(&mut p_ih.grad),
        );
        mat_mul(
            T::one(),
            &dah_ref.t(),
            &h_prev_all,
            T::one(),
            &mut view2_mut(&mut p_hh.grad),
        );
        view1_mut(&mut p_bih.grad).add_assign(&da.sum_axis(Axis(0)));
        view1_mut(&mut p_bhh.grad).add_assign(&dah_ref.sum_axis(Axis(0)));
        let mut dx = Array3::zeros((b, l, f));
        if self.need_input_grad {
            // dX = dA W_ih, time-major rows, then into (B, L, F).
            let mut dxs = Array2::zeros((l * b, f));
            mat_mul(T::one(), &da, &view2(&p_ih.value), T::zero(), &mut dxs);
            for t in 0..l {
                dx.index_axis_mut(Axis(1), t)
                    .assign(&dxs.slice(s![t * b..(t + 1) * b, ..]));
            }
        }
        self.step_norms = norms;
        // dA/dĤ are not kept for the next step: in a model they would stay allocated while the
        // layers below run their backward (W3: 77 MB at the training peak, conv backward).
        drop((da, dah));
        Ok(dx.into_dyn())
    }

    fn params(&self) -> Vec<&Param<T>> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.params.iter_mut().collect()
    }

    fn set_need_input_grad(&mut self, on: bool) {
        self.need_input_grad = on;
    }

    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.lengths = lengths.map(<[usize]>::to_vec);
    }

    fn set_record_step_grads(&mut self, on: bool) {
        self.record = on;
        if !on {
            self.step_norms = None;
        }
    }

    fn step_grad_norms(&self) -> Vec<(String, ndarray::Array2<f64>)> {
        self.step_norms
            .iter()
            .map(|n| (self.direction.name().to_string(), n.clone()))
            .collect()
    }

    fn gate_saturation(&self) -> Vec<(String, String, f64)> {
        let sigmoid_gates: &[(usize, &str)] = match self.cell {
            CellKind::Lstm => &[(0, "i"), (1, "f"), (3, "o")],
            CellKind::Gru => &[(0, "r"), (1, "z")],
            CellKind::SimpleRnn(_) => &[],
        };
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let u = self.units;
        let (lo, hi) = (T::lit(0.01), T::lit(0.99));
        let b = cache.batch.max(1);
        // Row t·B + r of the gate buffer is record r at time t; padded steps (t ≥ L_r) hold
        // gates that were computed but not used, and are left out.
        let live = |row: usize| cache.lens.as_deref().is_none_or(|n| row / b < n[row % b]);
        sigmoid_gates
            .iter()
            .map(|&(k, name)| {
                let (mut sat, mut all) = (0usize, 0usize);
                for (row, g) in cache.gates.outer_iter().enumerate() {
                    if live(row) {
                        let g = g.slice(s![k * u..(k + 1) * u]);
                        sat += g.iter().filter(|&&v| v < lo || v > hi).count();
                        all += u;
                    }
                }
                let frac = sat as f64 / all.max(1) as f64;
                (self.direction.name().to_string(), name.to_string(), frac)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_tanh_is_within_rounding_of_the_exact_value() {
        let mut worst = 0.0f64;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4 + if k % 2 == 0 { 3e-7 } else { 0.0 };
            for x in [x, x * 1e-3, x * 1e-5] {
                let exact = (x as f64).tanh();
                let got = tanh(x) as f64;
                let err = (got - exact).abs() / exact.abs().max(1e-30);
                worst = worst.max(if exact == 0.0 { got.abs() } else { err });
            }
        }
        // the documented bound of the fast f32 tanh
        assert!(worst < 4e-7, "{worst:e}");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(-1e30f32), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(0.3f64), 0.3f64.tanh());
    }

    /// Values that reach every branch of the f32 kernels: the small and large `tanh` ranges,
    /// the clamps of `exp`, ±0, infinities and NaN, at a length (37) that leaves a vector tail.
    fn probe(n: usize, seed: u32) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            0.6249,
            0.6251,
            9.5,
            -88.0,
            89.0,
            f32::INFINITY,
            f32::NAN,
        ];
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|k| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if k % 11 == 3 {
                    special[(s as usize) % special.len()]
                } else {
                    (s as f32 / u32::MAX as f32 - 0.5) * 12.0
                }
            })
            .collect()
    }

    /// The bits of every value, with every NaN as one canonical NaN: IEEE 754 leaves a NaN
    /// result's sign and payload open, and the two compilations may pick a different operand's
    /// NaN (it stays a NaN either way).
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter()
            .map(|x| {
                if x.is_nan() {
                    f32::NAN.to_bits()
                } else {
                    x.to_bits()
                }
            })
            .collect()
    }

    /// The dispatched cell kernels (AVX2 on a CPU that has it) give the bits of their
    /// baseline loops, which the test calls directly (compiled for the crate's target); a NaN
    /// stays a NaN. On a CPU without AVX2 both sides are the baseline loop.
    #[test]
    fn wide_kernels_give_the_baseline_bits() {
        let u = 37;
        for seed in 1..4 {
            // LSTM forward.
            let (pre, cp) = (probe(4 * u, seed), probe(u, seed + 10));
            let run = |wide: bool| {
                let mut p = pre.clone();
                let (mut c, mut h) = (vec![0.0f32; u], vec![0.0f32; u]);
                if wide {
                    lstm::forward_row(&mut p, &cp, &mut c, &mut h);
                } else {
                    let (i, r) = p.split_at_mut(u);
                    let (f, r) = r.split_at_mut(u);
                    let (g, o) = r.split_at_mut(u);
                    lstm::forward_body(i, f, g, o, &cp, &mut c, &mut h);
                }
                [bits(&p), bits(&c), bits(&h)]
            };
            assert_eq!(run(true), run(false), "lstm forward, seed {seed}");
            // LSTM backward.
            let (gates, c, dh) = (
                probe(4 * u, seed + 20),
                probe(u, seed + 30),
                probe(u, seed + 40),
            );
            let run = |wide: bool| {
                let (mut dc, mut da) = (probe(u, seed + 50), vec![0.0f32; 4 * u]);
                if wide {
                    lstm::backward_row(&gates, &cp, &c, &dh, &mut dc, &mut da);
                } else {
                    let (gi, r) = gates.split_at(u);
                    let (gf, r) = r.split_at(u);
                    let (gg, go) = r.split_at(u);
                    let (ai, r) = da.split_at_mut(u);
                    let (af, r) = r.split_at_mut(u);
                    let (ag, ao) = r.split_at_mut(u);
                    lstm::backward_body([gi, gf, gg, go], &cp, &c, &dh, &mut dc, [ai, af, ag, ao]);
                }
                [bits(&dc), bits(&da)]
            };
            assert_eq!(run(true), run(false), "lstm backward, seed {seed}");
            // GRU forward and backward.
            let hh = probe(3 * u, seed + 60);
            let run = |wide: bool| {
                let (mut p, mut h) = (probe(3 * u, seed + 70), vec![0.0f32; u]);
                let (mut dax, mut dah, mut dhp) =
                    (vec![0.0f32; 3 * u], vec![0.0f32; 3 * u], vec![0.0f32; u]);
                if wide {
                    gru::forward_row(&mut p, &hh, &cp, &mut h);
                    gru::backward_row(&p, &hh, &cp, &dh, &mut dax, &mut dah, &mut dhp);
                } else {
                    gru::forward_body(&mut p, &hh, &cp, &mut h);
                    gru::backward_body(&p, &hh, &cp, &dh, &mut dax, &mut dah, &mut dhp);
                }
                [bits(&p), bits(&h), bits(&dax), bits(&dah), bits(&dhp)]
            };
            assert_eq!(run(true), run(false), "gru, seed {seed}");
            // Simple RNN, tanh and relu.
            for act in [Activation::Tanh, Activation::Relu] {
                let run = |wide: bool| {
                    let (mut p, mut h, mut da) =
                        (probe(u, seed + 80), vec![0.0f32; u], vec![0.0f32; u]);
                    if wide {
                        simple_rnn::forward_row(act, &mut p, &mut h);
                        simple_rnn::backward_row(act, &h, &dh, &mut da);
                    } else {
                        simple_rnn::forward_body(act, &mut p, &mut h);
                        simple_rnn::backward_body(act, &h, &dh, &mut da);
                    }
                    [bits(&p), bits(&h), bits(&da)]
                };
                assert_eq!(run(true), run(false), "simple_rnn {act:?}, seed {seed}");
            }
        }
    }
}
