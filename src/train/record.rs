//! [`GradRecorder`]: gradient, update and activation statistics recorded while training
//! (`seqgrad train --record-grads N`), as two long-format CSV files appended and flushed after
//! every recorded step (an interrupted run keeps what it recorded).
//!
//! A step is recorded when the number of optimizer updates before it is a multiple of `N`:
//! recorded step `s` is the batch whose gradient is taken with the weights after `s` updates,
//! so step 0 is the first batch with the initial weights. Its gradients are recorded as the
//! backward pass left them (before clipping), the update ratio is that of the update applied
//! from them.
//!
//! `grads.csv`, header `step,layer,tensor,statistic,value`; `layer` is the layer index (as in
//! `layers.{i}.…` and `seqgrad summary`):
//! - per parameter tensor (`tensor` = its PyTorch name, e.g. `layers.3.weight_ih_l0`):
//!   `l2_norm` (‖g‖₂), `mean_abs` (mean |g|), `max_abs` (max |g|), `update_ratio`
//!   (‖Δw‖₂/‖w‖₂, `w` before the update; `inf` when ‖w‖ = 0);
//! - per layer (`tensor` empty), from the training-mode forward pass of that batch:
//!   `activation_mean`, `activation_std` (population std over all outputs; the last layer's
//!   outputs are logits); for layers with a relu (`conv1d`/`dense`/`activation` relu,
//!   `simple_rnn` relu) `dead_relu_fraction` (units — channels — that output 0 for every
//!   record and position of the batch) and `relu_zero_fraction` (outputs that are 0); for
//!   LSTM/GRU layers `saturated_gate_fraction` (sigmoid gate activations < 0.01 or > 0.99,
//!   mean over all sigmoid gates and directions), `saturated_gates_{direction}` (per direction)
//!   and `saturated_gate_{gate}_{direction}` per gate (`i`, `f`, `o`; `r`, `z`).
//!
//! `steps.csv`, header `step,layer,direction,t,norm`: for every recurrent layer and direction
//! (`forward`/`reverse`) and every time step `t` (0-based position in sequence order, for both
//! directions) the batch mean of ‖∂L/∂h_t‖₂ (see [`crate::layers::Layer::step_grad_norms`])
//! over the records that have step `t`: in a variable-length batch a record's padded steps
//! are left out of the mean ([`crate::layers::rnn::step_means`]), as they are of the gate
//! saturation, and a step no record has gets no row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD};

use super::callbacks::{Callback, CallbackState, Context};
use super::tensorboard::TensorBoardLog;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::spec::LayerSpec;
use crate::tensor::Float;

/// Header of `grads.csv`.
pub const GRADS_HEADER: &str = "step,layer,tensor,statistic,value";
/// Header of `steps.csv`.
pub const STEPS_HEADER: &str = "step,layer,direction,t,norm";

/// Records gradient statistics every `every` steps into `grads.csv` and `steps.csv` in a
/// folder (see the module docs for the formats).
pub struct GradRecorder<T> {
    every: u64,
    dir: PathBuf,
    /// Append to existing files (a resumed run) instead of starting them afresh.
    append: bool,
    files: Option<(BufWriter<File>, BufWriter<File>, PathBuf, PathBuf)>,
    /// Per layer: does its output go through a relu?
    relu: Vec<bool>,
    /// Weights before the update of the step being recorded.
    before: Option<Vec<ArrayD<T>>>,
    /// Recorded step (updates before it) when this step is recorded.
    current: Option<u64>,
    /// Also write every row as a TensorBoard scalar, and gradient histograms.
    tensorboard: Option<TensorBoardLog>,
}

/// One row of `grads.csv`: per parameter tensor (`tensor` = its name) or per layer (`tensor`
/// empty).
struct Row {
    step: u64,
    layer: String,
    tensor: String,
    statistic: String,
    value: f64,
}

impl Row {
    fn layer(step: u64, layer: usize, statistic: impl Into<String>, value: f64) -> Row {
        Row {
            step,
            layer: layer.to_string(),
            tensor: String::new(),
            statistic: statistic.into(),
            value,
        }
    }

    fn tensor(step: u64, name: &str, statistic: &str, value: f64) -> Row {
        Row {
            step,
            layer: layer_of(name),
            tensor: name.to_string(),
            statistic: statistic.into(),
            value,
        }
    }

    fn csv(&self) -> String {
        let Row {
            step,
            layer,
            tensor,
            statistic,
            value,
        } = self;
        format!("{step},{layer},{tensor},{statistic},{value}")
    }

    /// The TensorBoard tag: `statistic/tensor`, or `statistic/layers.i` for a layer's row.
    fn tag(&self) -> String {
        if self.tensor.is_empty() {
            format!("{}/layers.{}", self.statistic, self.layer)
        } else {
            format!("{}/{}", self.statistic, self.tensor)
        }
    }
}

fn open(path: &Path, append: bool) -> Result<(BufWriter<File>, bool)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let empty = f.metadata().map(|m| m.len() == 0).unwrap_or(true);
    Ok((BufWriter::new(f), empty))
}

/// Keeps the header and the complete rows of an earlier run's file whose step (first column)
/// is below `step` (rows from after the checkpoint a run resumes from, and a half-written last
/// line, go).
fn keep_rows_before(path: &Path, step: u64) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut kept = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let whole = line.ends_with('\n');
        let before = line
            .split(',')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s < step);
        if whole && (i == 0 || before) {
            kept.push_str(line);
        }
    }
    if kept.len() != text.len() {
        crate::weights::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

fn stats<T: Float>(a: &ArrayD<T>) -> (f64, f64, f64) {
    let (mut ss, mut sa, mut mx) = (0.0f64, 0.0f64, 0.0f64);
    for v in a.iter() {
        let x = v.to_f64c();
        ss += x * x;
        sa += x.abs();
        mx = mx.max(x.abs());
    }
    (ss.sqrt(), sa / a.len().max(1) as f64, mx)
}

fn l2_diff<T: Float>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let d = x.to_f64c() - y.to_f64c();
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

impl<T: Float> GradRecorder<T> {
    /// Records every `every` steps (at least 1) into `dir/grads.csv` and `dir/steps.csv`,
    /// which are started afresh when training begins.
    pub fn new(dir: impl Into<PathBuf>, every: u64) -> Self {
        GradRecorder {
            every: every.max(1),
            dir: dir.into(),
            append: false,
            files: None,
            relu: Vec::new(),
            before: None,
            current: None,
            tensorboard: None,
        }
    }

    /// Also writes every row as a TensorBoard scalar and, per recorded step, a histogram of
    /// every parameter tensor's gradient (see [`super::tensorboard`]).
    pub fn with_tensorboard(mut self, log: TensorBoardLog) -> Self {
        self.tensorboard = Some(log);
        self
    }

    fn writers(&mut self) -> Result<&mut (BufWriter<File>, BufWriter<File>, PathBuf, PathBuf)> {
        self.files
            .as_mut()
            .ok_or_else(|| Error::Train("gradient recorder used before training began".into()))
    }

    /// Writes rows to `grads.csv` (and TensorBoard).
    fn write_rows(&mut self, rows: &[Row]) -> Result<()> {
        let (g, _, gp, _) = self.writers()?;
        for r in rows {
            writeln!(g, "{}", r.csv()).map_err(|e| Error::io(&*gp, e))?;
        }
        if let Some(tb) = &self.tensorboard {
            for r in rows {
                tb.scalar(&r.tag(), r.step, r.value)?;
            }
        }
        Ok(())
    }
}

fn layer_of(name: &str) -> String {
    name.strip_prefix("layers.")
        .and_then(|r| r.split('.').next())
        .unwrap_or("")
        .to_string()
}

impl<T: Float> Callback<T> for GradRecorder<T> {
    fn name(&self) -> String {
        "grad_recorder".into()
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        let gp = self.dir.join("grads.csv");
        let sp = self.dir.join("steps.csv");
        if self.append {
            // A run killed after its checkpoint recorded steps the resumed run does again.
            keep_rows_before(&gp, ctx.step)?;
            keep_rows_before(&sp, ctx.step)?;
        }
        let (mut g, g_new) = open(&gp, self.append)?;
        let (mut s, s_new) = open(&sp, self.append)?;
        if g_new {
            writeln!(g, "{GRADS_HEADER}").map_err(|e| Error::io(&gp, e))?;
            g.flush().map_err(|e| Error::io(&gp, e))?;
        }
        if s_new {
            writeln!(s, "{STEPS_HEADER}").map_err(|e| Error::io(&sp, e))?;
            s.flush().map_err(|e| Error::io(&sp, e))?;
        }
        self.files = Some((g, s, gp, sp));
        self.relu = ctx
            .model
            .spec()
            .layers
            .iter()
            .map(|l| match l {
                LayerSpec::Dense(d) => d.activation == Activation::Relu,
                LayerSpec::Conv1d(c) => c.activation == Activation::Relu,
                LayerSpec::Activation(a) => a.activation == Activation::Relu,
                LayerSpec::SimpleRnn(r) => r.activation == Activation::Relu,
                _ => false,
            })
            .collect();
        Ok(())
    }

    fn on_step_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        let updates = ctx.step - 1;
        self.current = updates.is_multiple_of(self.every).then_some(updates);
        if self.current.is_some() {
            ctx.request_layer_outputs();
            ctx.model.set_record_step_grads(true);
        }
        Ok(())
    }

    fn on_layer_output(
        &mut self,
        _ctx: &mut Context<'_, T>,
        index: usize,
        output: ArrayViewD<'_, T>,
    ) -> Result<()> {
        let Some(step) = self.current else {
            return Ok(());
        };
        // One pass: sum, sum of squares, zeros, and which channels (last axis) ever fire.
        let relu = self.relu.get(index).copied().unwrap_or(false) && output.ndim() >= 2;
        let c = output.shape().last().copied().unwrap_or(1).max(1);
        let mut alive = vec![false; if relu { c } else { 0 }];
        let (mut sum, mut sumsq, mut zeros) = (0.0f64, 0.0f64, 0usize);
        for (k, v) in output.iter().enumerate() {
            let x = v.to_f64c();
            sum += x;
            sumsq += x * x;
            if x == 0.0 {
                zeros += 1;
            } else if relu {
                alive[k % c] = true;
            }
        }
        let n = output.len().max(1) as f64;
        let mean = sum / n;
        let std = (sumsq / n - mean * mean).max(0.0).sqrt();
        let mut rows = vec![
            Row::layer(step, index, "activation_mean", mean),
            Row::layer(step, index, "activation_std", std),
        ];
        if relu {
            let dead = alive.iter().filter(|a| !**a).count();
            rows.push(Row::layer(
                step,
                index,
                "dead_relu_fraction",
                dead as f64 / c as f64,
            ));
            rows.push(Row::layer(
                step,
                index,
                "relu_zero_fraction",
                zeros as f64 / n,
            ));
        }
        self.write_rows(&rows)
    }

    fn on_after_backward(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        let Some(step) = self.current else {
            return Ok(());
        };
        let model = &*ctx.model;
        let mut rows = Vec::new();
        for (name, p) in model.named_params() {
            let (l2, mean_abs, max_abs) = stats(&p.grad);
            rows.push(Row::tensor(step, &name, "l2_norm", l2));
            rows.push(Row::tensor(step, &name, "mean_abs", mean_abs));
            rows.push(Row::tensor(step, &name, "max_abs", max_abs));
            if let Some(tb) = &self.tensorboard {
                tb.histogram(
                    &format!("grad/{name}"),
                    step,
                    p.grad.iter().map(|v| v.to_f64c()),
                )?;
            }
        }
        let mut step_rows = Vec::new();
        for (i, l) in model.layers().iter().enumerate() {
            let sat = l.gate_saturation();
            let mut by_dir: Vec<(String, f64, usize)> = Vec::new();
            for (dir, gate, frac) in &sat {
                rows.push(Row::layer(
                    step,
                    i,
                    format!("saturated_gate_{gate}_{dir}"),
                    *frac,
                ));
                match by_dir.iter_mut().find(|(d, _, _)| d == dir) {
                    Some(e) => {
                        e.1 += frac;
                        e.2 += 1;
                    }
                    None => by_dir.push((dir.clone(), *frac, 1)),
                }
            }
            if !sat.is_empty() {
                let all = sat.iter().map(|(_, _, f)| f).sum::<f64>() / sat.len() as f64;
                rows.push(Row::layer(step, i, "saturated_gate_fraction", all));
            }
            for (dir, s, k) in by_dir {
                rows.push(Row::layer(
                    step,
                    i,
                    format!("saturated_gates_{dir}"),
                    s / k as f64,
                ));
            }
            for (dir, norms) in l.step_grad_norms() {
                for (t, m) in crate::layers::rnn::step_means(&norms)
                    .into_iter()
                    .enumerate()
                {
                    // a step no record of the batch reaches (all padded) has no row
                    if !m.is_nan() {
                        step_rows.push(format!("{step},{i},{dir},{t},{m}"));
                    }
                }
            }
        }
        self.before = Some(super::callbacks::snapshot(model));
        ctx.model.set_record_step_grads(false);
        self.write_rows(&rows)?;
        let (_, s, _, sp) = self.writers()?;
        for r in step_rows {
            writeln!(s, "{r}").map_err(|e| Error::io(&*sp, e))?;
        }
        Ok(())
    }

    fn on_step_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        let Some(step) = self.current.take() else {
            return Ok(());
        };
        let before = self.before.take().unwrap_or_default();
        let mut rows = Vec::new();
        for ((name, p), w0) in ctx.model.named_params().into_iter().zip(&before) {
            let (w_norm, _, _) = stats(w0);
            let ratio = l2_diff(&p.value, w0) / w_norm;
            rows.push(Row::tensor(step, &name, "update_ratio", ratio));
        }
        self.write_rows(&rows)?;
        if let Some(tb) = &self.tensorboard {
            tb.flush()?;
        }
        let (g, s, gp, sp) = self.writers()?;
        g.flush().map_err(|e| Error::io(&*gp, e))?;
        s.flush().map_err(|e| Error::io(&*sp, e))?;
        Ok(())
    }

    fn on_train_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        if let Some((g, s, gp, sp)) = &mut self.files {
            g.flush().map_err(|e| Error::io(&*gp, e))?;
            s.flush().map_err(|e| Error::io(&*sp, e))?;
        }
        Ok(())
    }

    fn on_exception(&mut self, ctx: &mut Context<'_, T>, _err: &Error) -> Result<()> {
        self.on_train_end(ctx)
    }

    fn save_state(&self) -> Option<CallbackState<T>> {
        let mut json = serde_json::Map::new();
        json.insert("every".into(), serde_json::json!(self.every));
        Some(CallbackState {
            json,
            tensors: Default::default(),
        })
    }

    fn load_state(&mut self, _state: CallbackState<T>) -> Result<()> {
        // A resumed run appends to what the interrupted one recorded.
        self.append = true;
        Ok(())
    }
}
