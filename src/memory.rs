//! Memory, estimated before it is spent.
//!
//! [`plan`] walks a [`ModelSpec`] with the per-sample shape, exactly as
//! [`Sequential::from_spec`](crate::Sequential::from_spec) does, but without allocating a single
//! weight: it gives every layer's output shape and parameter count, or the very same build error
//! (a test compares both, for every layer type, against the built model). `seqgrad summary`
//! prints it, so a 936M-parameter model is summarised instantly.
//!
//! [`estimate`] turns a plan, a batch size and a [`Workload`] into the peak memory of a run,
//! counted from what the code actually keeps (see each layer's forward cache):
//!
//! - parameters: value **and** gradient (every [`Param`](crate::Param) owns both), plus in
//!   training the optimizer state (2 slots, Adam's `m` and `v`, the largest seqgrad has), the
//!   best-weights snapshot of early stopping, and the bytes of the weights file being written;
//! - per layer, what its forward pass caches for backward, for the whole batch:
//!   `conv1d` its im2col patches `(B·L', K·C)`, the GEMM weight `(K·C, F)` and its output;
//!   `dense` a copy of its input and its output; max pooling its arg-max indices (`usize`);
//!   recurrent layers the time-major input, every step's gates (GRU also `Ĥ`), all hidden
//!   states (LSTM also all cell states); `bidirectional` both directions and both outputs;
//!   dropout its mask (one bit per element); an activation layer its output;
//! - the buffers backward keeps for the next step (conv `dX̂`), and the
//!   largest transient of any one layer's backward pass (incoming and outgoing gradient, conv's
//!   per-block `dŴ` partials, recurrent `dA`/`dĤ`);
//! - in training, the validation pass that follows each epoch (evaluation mode at batch
//!   `max(B, 256)`) while the training buffers are still held;
//! - for inference, loading the weights file (its bytes and an f64 copy of every tensor);
//! - a fixed [`BASELINE_BYTES`] for the program itself.
//!
//! The data set is not included (it is read after the check; its size is what the file holds).
//!
//! [`available`] reads the memory this process may still use: `MemAvailable` from
//! `/proc/meminfo`, lowered by a cgroup v2 `memory.max` (or v1 `memory.limit_in_bytes`) minus
//! current usage, and by `RLIMIT_AS` (from `/proc/self/limits`) minus the current virtual size.
//! `SEQGRAD_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix) replaces it, for tests and for
//! people who want to keep memory for other work. [`check_fits`] refuses a run whose estimate
//! exceeds it, with one line naming both and a batch size that fits.

use std::path::Path;

use crate::error::{BuildError, Error, Result, ShapeIssue};
use crate::layers::conv1d::window_geometry;
use crate::layers::rnn::CellKind;
use crate::layers::{self, checked_elems};
use crate::spec::{LayerSpec, MergeMode, ModelSpec, Padding, RecurrentSpec};

// What the operating system says is available, and byte sizes as text, live in `system`.
pub use crate::error::fmt_bytes;
use crate::system::to_u64;
pub use crate::system::{available, parse_bytes, Available, LIMIT_ENV};

/// Bytes the program itself needs before any model (code, stacks, allocator, reader buffers),
/// measured as the peak RSS of `seqgrad summary` on a small model, rounded up.
pub const BASELINE_BYTES: u64 = 8 << 20;

/// What a run does with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `train`: forward and backward in training mode, an optimizer, a validation pass per
    /// epoch, the weights written at the end.
    Train,
    /// `grad`: one forward and backward pass (evaluation mode), gradients written out.
    Gradient,
    /// `evaluate`, `predict`: forward passes in evaluation mode, weights read from a file.
    Inference,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Train => "training",
            Workload::Gradient => "the gradient pass",
            Workload::Inference => "inference",
        }
    }
}

/// One layer of a [`Plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    pub spec: LayerSpec,
    /// Per-sample input shape.
    pub input: Vec<usize>,
    /// Per-sample output shape (an unknown length written as 0).
    pub output: Vec<usize>,
    /// Per-sample output shape, `None` for an unknown length.
    pub output_dims: Vec<Option<usize>>,
    /// Number of scalar parameters.
    pub params: usize,
}

/// A model's shapes and parameter counts, computed from its spec without allocating weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per-sample input shape; an unknown (`null`) length written as 0.
    pub input_shape: Vec<usize>,
    /// Per-sample input shape, `None` for an unknown length.
    pub input_dims: Vec<Option<usize>>,
    pub layers: Vec<LayerPlan>,
}

impl Plan {
    /// Total number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Per-sample output shape of the model.
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map(|l| l.output.as_slice())
            .unwrap_or(&self.input_shape)
    }
}

/// The shapes and parameter counts of a model, or the error building it would give (the same
/// [`Error`], message and all), without allocating any weight.
pub fn plan(spec: &ModelSpec) -> Result<Plan> {
    let input0 = crate::model::check_input_shape(spec)?;
    let mut out: Vec<LayerPlan> = Vec::with_capacity(spec.layers.len());
    let mut dims: Vec<Vec<Option<usize>>> = Vec::with_capacity(spec.layers.len());
    for (index, ls) in spec.layers.iter().enumerate() {
        let input = dims.last().unwrap_or(&spec.input_shape).clone();
        let planned = crate::model::symbolic_output(
            ls,
            &input,
            |concrete| layer_plan(ls, concrete),
            |_, probe| layer_plan(ls, probe).map(|(shape, _)| shape),
        );
        match planned {
            Ok(((_, params), d)) => {
                out.push(LayerPlan {
                    spec: ls.clone(),
                    input: crate::model::zero_unknown(&input),
                    output: crate::model::zero_unknown(&d),
                    output_dims: d.clone(),
                    params,
                });
                dims.push(d);
            }
            Err(issue) => {
                let shapes: Vec<Vec<usize>> =
                    dims.iter().map(|d| crate::model::zero_unknown(d)).collect();
                let hint = crate::model::hint_for(spec, &shapes, ls, &issue);
                return Err(BuildError {
                    index,
                    kind: ls.kind(),
                    input: crate::model::zero_unknown(&input),
                    issue,
                    hint,
                }
                .into());
            }
        }
    }
    Ok(Plan {
        input_shape: input0,
        input_dims: spec.input_shape.clone(),
        layers: out,
    })
}

/// [`plan`] with an unknown (`null`) input length replaced by `length` (memory estimates for
/// a model of any length at a given padded batch length); a fixed-length spec is planned as is.
pub fn plan_for_length(spec: &ModelSpec, length: usize) -> Result<Plan> {
    let mut s = spec.clone();
    if s.is_variable_length() {
        s.input_shape[0] = Some(length);
    }
    plan(&s)
}

type Issue<T> = std::result::Result<T, ShapeIssue>;

/// One layer's output shape and parameter count, with the checks (in the same order) of its
/// constructor and `output_shape`.
fn layer_plan(spec: &LayerSpec, input: &[usize]) -> Issue<(Vec<usize>, usize)> {
    match spec {
        LayerSpec::Dense(s) => {
            if s.units == 0 {
                return Err(ShapeIssue::Invalid("units must be at least 1".into()));
            }
            let (shape, f) = match input {
                [f] => (vec![s.units], *f),
                [l, f] => (vec![*l, s.units], *f),
                _ => {
                    return Err(ShapeIssue::Rank {
                        expected: "(features) or (length, features)".into(),
                        got: input.to_vec(),
                    })
                }
            };
            let w = checked_elems("weight", &[s.units, f])?;
            Ok((shape, w + if s.use_bias { s.units } else { 0 }))
        }
        LayerSpec::Conv1d(s) => {
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
            let out_len = conv_output_len(s, len)?;
            let w = checked_elems("weight", &[s.filters, c, s.kernel_size])?;
            Ok((
                vec![out_len, s.filters],
                w + if s.use_bias { s.filters } else { 0 },
            ))
        }
        LayerSpec::Maxpool1d(s) | LayerSpec::Avgpool1d(s) => {
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
            let [len, c] = *input else {
                return Err(ShapeIssue::NeedsSequence {
                    got: input.to_vec(),
                });
            };
            let out = match window_geometry(len, s.pool_size, s.stride(), 1, s.padding) {
                Some((out, _)) => out,
                None if s.padding == Padding::Same && len > 0 => {
                    return Err(ShapeIssue::Invalid(format!(
                        "pool_size {} with strides {} spans more positions than seqgrad can index \
                         (usize overflow)",
                        s.pool_size,
                        s.stride()
                    )))
                }
                None => {
                    return Err(ShapeIssue::TooShort {
                        what: "pool_size".into(),
                        needed: s.pool_size,
                        got: len,
                    })
                }
            };
            Ok((vec![out, c], 0))
        }
        LayerSpec::GlobalMaxpool1d(_) | LayerSpec::GlobalAvgpool1d(_) => match input {
            [l, c] if *l > 0 => Ok((vec![*c], 0)),
            [_, _] => Err(ShapeIssue::TooShort {
                what: "global pooling window".into(),
                needed: 1,
                got: 0,
            }),
            _ => Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            }),
        },
        LayerSpec::Flatten(_) => {
            if input.is_empty() {
                return Err(ShapeIssue::Rank {
                    expected: "(length, channels) or (features)".into(),
                    got: Vec::new(),
                });
            }
            Ok((vec![checked_elems("flattened input", input)?], 0))
        }
        LayerSpec::Dropout(s) => {
            if !(s.rate >= 0.0 && s.rate < 1.0) {
                return Err(ShapeIssue::Invalid(format!(
                    "rate must be in [0, 1), got {}",
                    s.rate
                )));
            }
            Ok((input.to_vec(), 0))
        }
        LayerSpec::Activation(_) => {
            if input.is_empty() {
                return Err(ShapeIssue::Rank {
                    expected: "(features) or (length, features)".into(),
                    got: Vec::new(),
                });
            }
            Ok((input.to_vec(), 0))
        }
        LayerSpec::SimpleRnn(s) => recurrent_plan(&RecurrentSpec::SimpleRnn(s.clone()), input),
        LayerSpec::Lstm(s) => recurrent_plan(&RecurrentSpec::Lstm(s.clone()), input),
        LayerSpec::Gru(s) => recurrent_plan(&RecurrentSpec::Gru(s.clone()), input),
        LayerSpec::Bidirectional(b) => {
            let (mut shape, params) = recurrent_plan(&b.layer, input)?;
            if b.merge_mode == MergeMode::Concat {
                if let Some(last) = shape.last_mut() {
                    *last *= 2;
                }
            }
            Ok((shape, 2 * params))
        }
    }
}

/// `conv1d`'s output length, with its error messages.
fn conv_output_len(s: &crate::spec::Conv1dSpec, len: usize) -> Issue<usize> {
    let (k, d, st) = (s.kernel_size, s.dilation_rate, s.strides);
    match window_geometry(len, k, st, d, s.padding) {
        Some((out, _)) => Ok(out),
        None if s.padding == Padding::Same && len > 0 => Err(ShapeIssue::Invalid(format!(
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

/// One direction of a recurrent layer: output shape and parameter count.
fn recurrent_plan(spec: &RecurrentSpec, input: &[usize]) -> Issue<(Vec<usize>, usize)> {
    let cell = CellKind::from_spec(spec)?;
    let rnn = spec.rnn();
    if rnn.units == 0 {
        return Err(ShapeIssue::Invalid("units must be at least 1".into()));
    }
    let (l, f) = match input {
        [l, f] if *l > 0 && *f > 0 => (*l, *f),
        [_, _] => {
            return Err(ShapeIssue::Invalid(format!(
                "needs a non-empty sequence (length, features) but got ({}, {})",
                input[0], input[1]
            )))
        }
        _ => {
            return Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            })
        }
    };
    let g = cell.gates();
    let gu = g.checked_mul(rnn.units).ok_or_else(|| {
        ShapeIssue::Invalid(format!(
            "units {} times {g} gates overflows usize",
            rnn.units
        ))
    })?;
    let ih = checked_elems("weight_ih_l0", &[gu, f])?;
    let hh = checked_elems("weight_hh_l0", &[gu, rnn.units])?;
    let shape = if rnn.return_sequences {
        vec![l, rnn.units]
    } else {
        vec![rnn.units]
    };
    Ok((shape, ih + hh + 2 * gu))
}

/// Bytes a layer needs for a batch, by role (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct LayerBytes {
    /// Forward cache, held until the next forward pass.
    cache: f64,
    /// The output tensor handed to the next layer.
    out: f64,
    /// Buffers backward keeps for the next pass.
    keep: f64,
    /// Transients of backward besides the incoming and outgoing gradients.
    tmp: f64,
    /// What inference (`Mode::Infer`, no caches) keeps or needs besides input and output:
    /// conv1d's reusable patch buffer and weight matrix; recurrent layers' working state
    /// (counted as their cache, an upper bound).
    infer: f64,
}

fn prod(shape: &[usize]) -> f64 {
    shape.iter().map(|&d| d as f64).product()
}

/// What one layer holds for a batch of `b` with elements of `s` bytes, in `train` mode or not.
fn layer_bytes(l: &LayerPlan, b: f64, s: f64, train: bool) -> LayerBytes {
    let word = std::mem::size_of::<usize>() as f64;
    let (inp, out) = (b * prod(&l.input), b * prod(&l.output));
    let mut r = LayerBytes {
        out: out * s,
        ..Default::default()
    };
    match &l.spec {
        LayerSpec::Conv1d(c) => {
            let (ch, k, f) = (l.input[1] as f64, c.kernel_size as f64, c.filters as f64);
            let rows = b * l.output[0] as f64;
            let cols = rows * k * ch;
            // What the activation's backward needs: relu one byte per output, linear nothing,
            // the others the output itself.
            let act = match c.activation {
                crate::activation::Activation::Relu => rows * f,
                crate::activation::Activation::Linear => 0.0,
                _ => rows * f * s,
            };
            r.cache = (cols + k * ch * f) * s + act;
            r.infer = (cols + k * ch * f) * s;
            r.keep = cols * s;
            // Backward works in the incoming gradient in place (`Layer::backward_owned`).
            r.tmp = ((rows / layers::conv1d::ROW_BLOCK as f64).ceil() + 1.0) * k * ch * f * s;
        }
        LayerSpec::Dense(_) => {
            r.cache = (inp + out) * s;
            r.tmp = out * s;
        }
        LayerSpec::Maxpool1d(_) => r.cache = out * word,
        LayerSpec::GlobalMaxpool1d(_) => r.cache = out * word,
        LayerSpec::Avgpool1d(_) | LayerSpec::GlobalAvgpool1d(_) | LayerSpec::Flatten(_) => {}
        LayerSpec::Dropout(d) => {
            if train && d.rate > 0.0 {
                // one keep bit per element
                r.cache = (out / 64.0).ceil() * 8.0;
            }
        }
        LayerSpec::Activation(_) => r.cache = out * s,
        LayerSpec::SimpleRnn(x) | LayerSpec::Lstm(x) | LayerSpec::Gru(x) => {
            let cell = match &l.spec {
                LayerSpec::Lstm(_) => CellKind::Lstm,
                LayerSpec::Gru(_) => CellKind::Gru,
                _ => CellKind::SimpleRnn(x.activation),
            };
            let one = rnn_bytes(cell, x.units, l, b, s);
            r.cache = one.cache;
            r.infer = one.cache;
            r.keep = one.keep;
            r.tmp = one.tmp;
        }
        LayerSpec::Bidirectional(bi) => {
            let cell = match &bi.layer {
                RecurrentSpec::Lstm(_) => CellKind::Lstm,
                RecurrentSpec::Gru(_) => CellKind::Gru,
                RecurrentSpec::SimpleRnn(x) => CellKind::SimpleRnn(x.activation),
            };
            let units = bi.layer.rnn().units;
            let one = rnn_bytes(cell, units, l, b, s);
            // Two directions, each keeping its own output for the merge.
            r.cache = 2.0 * (one.cache + one.out);
            r.infer = r.cache;
            r.keep = 2.0 * one.keep;
            // Both directions' backward run at once, each with its own input gradient.
            r.tmp = 2.0 * one.tmp + 2.0 * inp * s;
        }
    }
    r
}

/// One direction of a recurrent layer.
fn rnn_bytes(cell: CellKind, units: usize, l: &LayerPlan, b: f64, s: f64) -> LayerBytes {
    let (len, f) = (l.input[0] as f64, l.input[1] as f64);
    let (u, gu) = (units as f64, (cell.gates() * units) as f64);
    let rows = len * b;
    let mut cache = rows * f + rows * gu + (len + 1.0) * b * u;
    // Backward's dA (GRU also dĤ): allocated by each backward pass and freed at its end.
    let mut grads = rows * gu;
    match cell {
        CellKind::Gru => {
            cache += rows * gu;
            grads += rows * gu;
        }
        CellKind::Lstm => cache += (len + 1.0) * b * u,
        CellKind::SimpleRnn(_) => {}
    }
    let seq = matches!(l.output.len(), 2);
    let out = if seq { b * len * u } else { b * u };
    LayerBytes {
        cache: cache * s,
        out: out * s,
        keep: 0.0,
        // dA (and dĤ), the time-major input gradient before it is transposed.
        tmp: (grads + rows * f + 4.0 * b * u) * s,
        infer: cache * s,
    }
}

/// A peak-memory estimate, in bytes, by part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub workload: Workload,
    pub batch: usize,
    pub params: usize,
    /// Parameter values and gradients.
    pub param_bytes: u64,
    /// Optimizer state, best-weights snapshot and the weights file written (training), or the
    /// weights file read (inference) or written (gradient).
    pub state_bytes: u64,
    /// Forward caches, backward buffers and transients at the peak.
    pub activation_bytes: u64,
    /// [`BASELINE_BYTES`].
    pub baseline_bytes: u64,
    /// The estimated peak: the sum of the parts, except for inference, whose weights file is
    /// read and freed before the activations exist (parameters + the larger of the two).
    pub total_bytes: u64,
}

impl Estimate {
    /// The estimated peak.
    pub fn total(&self) -> u64 {
        self.total_bytes
    }

    /// One line: `peak ≈ 1.2 GiB for training at batch size 64 (parameters and gradients
    /// 10 MiB, optimizer and weights state 25 MiB, activations 1.1 GiB)`.
    pub fn describe(&self) -> String {
        let state = match self.workload {
            Workload::Train => "optimizer state, best weights and weights file",
            Workload::Gradient => "gradients file",
            Workload::Inference => "weights file while loading",
        };
        format!(
            "peak ≈ {} for {} at batch size {} (parameters and their gradients {}, {state} {}, \
             activations and caches {}, program {})",
            fmt_bytes(self.total()),
            self.workload.name(),
            self.batch,
            fmt_bytes(self.param_bytes),
            fmt_bytes(self.state_bytes),
            fmt_bytes(self.activation_bytes),
            fmt_bytes(self.baseline_bytes)
        )
    }
}

/// Σ caches + Σ kept buffers + the largest single-layer transient, for a forward (and, with
/// `backward`, a backward) pass at batch `b`.
fn pass_bytes(plan: &Plan, b: f64, s: f64, train: bool, backward: bool) -> f64 {
    let per: Vec<LayerBytes> = plan
        .layers
        .iter()
        .map(|l| layer_bytes(l, b, s, train))
        .collect();
    let input = b * prod(&plan.input_shape) * s;
    // Without backward and outside training the passes run in `Mode::Infer`: no caches, only
    // the layers' inference buffers.
    let caches: f64 = if !train && !backward {
        per.iter().map(|p| p.infer).sum()
    } else {
        per.iter().map(|p| p.cache).sum()
    };
    // Forward: a layer's input and output are alive together (besides the caches).
    let mut prev = input;
    let mut fwd_peak = 0.0f64;
    for p in &per {
        fwd_peak = fwd_peak.max(prev + p.out);
        prev = p.out;
    }
    if !backward {
        return input + caches + fwd_peak;
    }
    let keeps: f64 = per.iter().map(|p| p.keep).sum();
    let mut bwd_peak = 0.0f64;
    let mut gin = input;
    for p in &per {
        // Incoming gradient (like the output), outgoing (like the input), the layer's own.
        bwd_peak = bwd_peak.max(p.out + gin + p.tmp);
        gin = p.out;
    }
    input + caches + keeps + fwd_peak.max(bwd_peak)
}

/// The peak memory of running `plan` on batches of `batch` samples in elements of
/// `elem_bytes` bytes (4 for f32, 8 for f64).
pub fn estimate(plan: &Plan, batch: usize, workload: Workload, elem_bytes: usize) -> Estimate {
    let s = elem_bytes as f64;
    let b = batch.max(1) as f64;
    let p = plan.param_count() as f64;
    let param_bytes = 2.0 * p * s;
    let (state, acts) = match workload {
        Workload::Train => {
            // Adam m and v, the best-weights snapshot; at the end the weights file (its
            // per-tensor buffers and the serialised file) while the caches are still held.
            let state = 3.0 * p * s + 2.0 * p * s;
            let train = pass_bytes(plan, b, s, true, true);
            // Validation after each epoch: eval mode at max(B, 256), the training batch's
            // kept backward buffers still held.
            let be = b.max(256.0);
            let keeps: f64 = plan
                .layers
                .iter()
                .map(|l| layer_bytes(l, b, s, true).keep)
                .sum();
            let valid = pass_bytes(plan, be, s, false, false) + keeps;
            (state, train.max(valid))
        }
        Workload::Gradient => (2.0 * p * s, pass_bytes(plan, b, s, false, true)),
        Workload::Inference => {
            // Loading reads the file (p·s) and widens every tensor to f64 (8p) before copying
            // into the model; the activations come after, when those are freed.
            (p * s + 8.0 * p, pass_bytes(plan, b, s, false, false))
        }
    };
    // Training and gradient state is held during the passes; inference's file reading is over
    // before its first pass.
    let peak = match workload {
        Workload::Inference => param_bytes + state.max(acts),
        _ => param_bytes + state + acts,
    };
    Estimate {
        workload,
        batch,
        params: plan.param_count(),
        param_bytes: to_u64(param_bytes),
        state_bytes: to_u64(state),
        activation_bytes: to_u64(acts),
        baseline_bytes: BASELINE_BYTES,
        total_bytes: to_u64(peak).saturating_add(BASELINE_BYTES),
    }
}

/// Refuses a run of `spec` at `batch` samples (f32) whose estimated peak exceeds the available
/// memory: one line with the estimate, the available memory and where it comes from, and the
/// largest batch size that would fit (or that the parameters alone do not fit). A spec that
/// does not build passes (building it gives the real error).
pub fn check_fits(spec: &ModelSpec, batch: usize, workload: Workload) -> Result<()> {
    check_fits_elem(spec, batch, workload, 4)
}

/// [`check_fits`] for a model of any length (`[null, C]`) at a padded batch length `length`
/// (the longest record); a fixed-length model is checked as [`check_fits`] does.
pub fn check_fits_length(
    spec: &ModelSpec,
    batch: usize,
    workload: Workload,
    length: usize,
) -> Result<()> {
    let mut s = spec.clone();
    if s.is_variable_length() {
        s.input_shape[0] = Some(length.max(1));
    }
    check_fits(&s, batch, workload)
}

/// [`check_fits`] for elements of `elem_bytes` bytes (8 for f64).
pub fn check_fits_elem(
    spec: &ModelSpec,
    batch: usize,
    workload: Workload,
    elem_bytes: usize,
) -> Result<()> {
    // A model of any length has no length to estimate with before the data is read; callers
    // that know the batch length check `plan_for_length` themselves.
    if spec.is_variable_length() {
        return Ok(());
    }
    let Ok(plan) = plan(spec) else {
        return Ok(());
    };
    let Some(avail) = available()? else {
        return Ok(());
    };
    let est = estimate(&plan, batch, workload, elem_bytes);
    if est.total() <= avail.bytes {
        return Ok(());
    }
    // The largest batch that fits, by bisection (the estimate grows with the batch).
    let fits = |b: usize| estimate(&plan, b, workload, elem_bytes).total() <= avail.bytes;
    let advice = if batch > 1 && fits(1) {
        let (mut lo, mut hi) = (1usize, batch);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        format!("try --batch-size {lo} or less")
    } else if fits(1) {
        "free some memory".into()
    } else {
        let one = estimate(&plan, 1, workload, elem_bytes);
        let fixed = one
            .param_bytes
            .saturating_add(one.state_bytes)
            .saturating_add(one.baseline_bytes);
        if fixed > avail.bytes {
            format!(
                "even one sample does not fit: the {} parameters alone need {}; use a smaller model",
                crate::model::group(plan.param_count()),
                fmt_bytes(fixed)
            )
        } else {
            format!(
                "even --batch-size 1 needs about {}{}; use a smaller model or shorter sequences",
                fmt_bytes(one.total()),
                if workload == Workload::Train {
                    " (validation runs at batch size 256 or more)"
                } else {
                    ""
                }
            )
        }
    };
    Err(Error::Memory {
        what: format!("{} at batch size {batch}", workload.name()),
        needed: est.total(),
        available: avail.bytes,
        origin: avail.source,
        advice,
    })
}

/// [`check_fits`] for a model file (a file that does not parse passes: reading it again gives
/// the real error).
pub fn check_fits_file(path: &Path, batch: usize, workload: Workload) -> Result<()> {
    match ModelSpec::from_file(path) {
        Ok(spec) => check_fits(&spec, batch, workload),
        Err(_) => Ok(()),
    }
}

/// [`check_fits`] for `grad`: the batch is the `input` tensor's first axis (1 if there is none:
/// reading the inputs gives the real error), the element size the dtype's.
pub fn check_fits_inputs(
    spec: &ModelSpec,
    inputs: &std::collections::BTreeMap<String, crate::weights::StoredTensor>,
    dtype: &str,
) -> Result<()> {
    let batch = inputs
        .get("input")
        .and_then(|t| t.array.shape().first().copied())
        .unwrap_or(1);
    let elem = if dtype == "F64" { 8 } else { 4 };
    check_fits_elem(spec, batch, Workload::Gradient, elem)
}

/// The `summary` table from a plan: index, layer (type), output shape, parameters, share, and
/// the totals; nothing is allocated.
pub fn summary_table(plan: &Plan) -> String {
    crate::model::summary_table(
        &plan.input_dims,
        plan.layers
            .iter()
            .map(|l| (&l.spec, l.output_dims.as_slice(), l.params)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_grows_with_batch_and_training_costs_more() {
        let spec = ModelSpec::from_json(
            r#"{"input_shape":[100,4],"layers":[{"type":"conv1d","filters":16,"kernel_size":9},
            {"type":"maxpool1d","pool_size":4},{"type":"bidirectional","layer":{"type":"lstm","units":8}},
            {"type":"dense","units":2,"activation":"softmax"}]}"#,
            "t",
        )
        .unwrap();
        let p = plan(&spec).unwrap();
        let e = |b, w| estimate(&p, b, w, 4).total();
        assert!(e(64, Workload::Train) > e(8, Workload::Train));
        assert!(e(64, Workload::Train) > e(64, Workload::Gradient));
        assert!(e(64, Workload::Gradient) > e(64, Workload::Inference));
    }
}
