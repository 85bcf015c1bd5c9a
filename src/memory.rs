//! Memory, estimated before it is spent.
//!
//! [`plan`] (the one shape planner, `crate::spec::plan`, which
//! [`Sequential::from_spec`](crate::Sequential::from_spec) builds from) walks a [`ModelSpec`]
//! with the per-sample shape without allocating a single weight: it gives every layer's output
//! shape and parameter count, or the build error. `seqgrad summary` prints it, so a
//! 936M-parameter model is summarised instantly.
//!
//! [`estimate`] turns a plan, a batch size and a [`Workload`] into the peak memory of a run,
//! counted from what the code actually keeps (each layer kind's memory rule,
//! [`LayerSpec::memory`], next to its forward cache in the layer's file):
//!
//! - parameters: value **and** gradient (every [`Param`](crate::Param) owns both; inference
//!   never writes the zeroed gradients, so they are not resident and are not counted), plus in
//!   training the optimizer state (2 slots, Adam's `m` and `v`, the largest seqgrad has), the
//!   best-weights snapshot of early stopping, and the bytes of the weights file being written;
//! - per layer, what its forward pass caches for backward, the buffers backward keeps for the
//!   next pass, its inference buffers and the transient of its backward pass, for the whole
//!   batch: each layer kind's memory rule, in its file (conv1d's patches, recurrent states and
//!   gates, dense's input copy …); a layer's input and output are alive together, and backward
//!   holds the incoming and outgoing gradients besides the largest transient;
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

use crate::error::{Error, Result};
use crate::layers::registry::{LayerBytes, MemoryIo};
use crate::spec::ModelSpec;

// The shape planner lives with the model file (`crate::spec::plan`); these are its paths here.
pub use crate::spec::plan::{plan, plan_for_length, summary_table, LayerPlan, Plan};
#[cfg(doc)]
use crate::spec::LayerSpec;

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

/// What layer `i` holds for a batch of `b` with elements of `s` bytes, in `train` mode or not:
/// the layer kind's memory rule ([`LayerSpec::memory`], in the layer's own file). Training
/// computes no gradient with respect to the data, so the first layer skips its input gradient.
fn layer_bytes(plan: &Plan, i: usize, b: f64, s: f64, train: bool) -> LayerBytes {
    let l = &plan.layers[i];
    l.spec.memory(&MemoryIo {
        input: &l.input,
        output: &l.output,
        batch: b,
        elem: s,
        train,
        input_grad: !(train && i == 0),
        model_input: i == 0,
    })
}

fn prod(shape: &[usize]) -> f64 {
    shape.iter().map(|&d| d as f64).product()
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
    let per: Vec<LayerBytes> = (0..plan.layers.len())
        .map(|i| layer_bytes(plan, i, b, s, train))
        .collect();
    let input = b * prod(&plan.input_shape) * s;
    // Without backward and outside training the passes run in `Mode::Infer`: no caches, only
    // the layers' inference buffers.
    let caches: f64 = if !train && !backward {
        per.iter().map(|p| p.infer).sum()
    } else {
        per.iter().map(|p| p.cache).sum()
    };
    // Forward: a layer's input and output are alive together (besides the caches). In
    // inference a layer's recycled output (`spare`) is held at every other layer's step: not
    // at its own (it becomes the output) nor at the next layer's (it is that layer's input).
    let spares: f64 = if !train && !backward {
        per.iter().map(|p| p.spare).sum()
    } else {
        0.0
    };
    let mut prev = input;
    let mut prev_spare = 0.0;
    let mut fwd_peak = 0.0f64;
    for p in &per {
        let held = (spares - p.spare - prev_spare).max(0.0);
        fwd_peak = fwd_peak.max(prev + p.out + held);
        prev = p.out;
        prev_spare = if spares > 0.0 { p.spare } else { 0.0 };
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
    // Every parameter owns a gradient, allocated zeroed: inference never writes it, so its
    // pages are never resident (the estimate is of the peak resident set).
    let param_bytes = if workload == Workload::Inference {
        p * s
    } else {
        2.0 * p * s
    };
    let (state, acts) = match workload {
        Workload::Train => {
            // Adam m and v, the best-weights snapshot; at the end the weights file (its
            // per-tensor buffers and the serialised file) while the caches are still held.
            let state = 3.0 * p * s + 2.0 * p * s;
            let train = pass_bytes(plan, b, s, true, true);
            // Validation after each epoch: eval mode at max(B, 256), the training batch's
            // kept backward buffers still held.
            let be = b.max(256.0);
            let keeps: f64 = (0..plan.layers.len())
                .map(|i| layer_bytes(plan, i, b, s, true).keep)
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

/// The peak memory of `seqgrad bench` on `plan` at `batch` samples: repeated training steps
/// (forward, backward, an Adam step; no validation, snapshot or files) when `train`, else
/// repeated inference passes (`Mode::Infer`), on a model built from its spec (no weights file).
pub fn estimate_steps(plan: &Plan, batch: usize, train: bool, elem_bytes: usize) -> u64 {
    let s = elem_bytes as f64;
    let b = batch.max(1) as f64;
    let p = plan.param_count() as f64;
    // Values and gradients (resident only once written, in training), and Adam's m and v.
    let state = if train { 4.0 * p * s } else { p * s };
    let acts = pass_bytes(plan, b, s, train, train);
    to_u64(state + acts).saturating_add(BASELINE_BYTES)
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
                crate::spec::plan::group(plan.param_count()),
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
