//! Callbacks: the hooks of the training loop (Keras' `Callback`, Lightning's hooks).
//!
//! [`Trainer::fit`](super::Trainer::fit) calls, for every callback in the order they were
//! added:
//!
//! ```text
//! on_train_begin
//! for each epoch:
//!     on_epoch_begin
//!     for each batch:
//!         on_step_begin          (dropout step set; nothing computed yet)
//!         on_layer_output ×L     (only if a callback asked for it in on_step_begin)
//!         on_after_backward      (gradients of this batch, before clipping and the update)
//!         on_step_end            (after the optimizer step)
//!     on_epoch_end(logs)         (validation done; the history row pushed)
//! on_train_end                   (not called when the run is interrupted for a resume)
//! on_exception(err)              (instead of the rest, when training fails)
//! ```
//!
//! Every hook receives a [`Context`]: the model, the configuration, the optimizer, the
//! history so far, the epoch (1-based), the global step (1-based, the step dropout masks are
//! drawn for; the number of optimizer updates before this batch is `step − 1`), the batch index
//! in the epoch and the loss/gradient-norm of the current batch. A callback ends training with
//! [`Context::stop_training`] (like Keras' `model.stop_training = True`: the loop ends after the
//! current step or epoch, and `on_train_end` runs) or pauses it with [`Context::interrupt`]
//! (the loop returns [`Outcome::Interrupted`](super::Outcome) after the current step, with its
//! state ready for a checkpoint and an exact resume).
//!
//! The built-in behaviour of `fit` is made of callbacks too: [`BestWeights`] (in-memory copy and
//! checkpoint file of the best weights, restored at the end), [`HistoryWriter`] (`history.csv`
//! / `history.json` after every epoch), [`ProgressPrinter`] (bar or one line per epoch) and
//! [`EarlyStopping`]; [`StopOnFlag`] turns an atomic flag (set by a signal handler) into an
//! interrupt, and [`GradRecorder`](super::record::GradRecorder) records gradient statistics.
//!
//! A callback that keeps state across epochs can save it in a resume checkpoint through
//! [`Callback::save_state`] / [`Callback::load_state`].
//!
//! ```
//! use seqgrad::train::{Callback, Context, EpochLogs, Progress, TrainConfig, Trainer};
//! # use seqgrad::model::Sequential;
//! # use seqgrad::spec::ModelSpec;
//! # use seqgrad::data::Dataset;
//!
//! /// Keeps the loss of every step.
//! #[derive(Default)]
//! struct LossLog(Vec<(u64, f64)>);
//!
//! impl Callback<f32> for LossLog {
//!     fn on_step_end(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
//!         self.0.push((ctx.step, ctx.batch_loss));
//!         Ok(())
//!     }
//!     fn on_epoch_end(&mut self, ctx: &mut Context<'_, f32>, logs: &EpochLogs) -> seqgrad::Result<()> {
//!         if logs.loss < 0.01 {
//!             ctx.stop_training(); // good enough
//!         }
//!         Ok(())
//!     }
//! }
//! # let spec = ModelSpec::from_json(r#"{"input_shape": [6, 4], "layers": [
//! #   {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]}"#, "m")?;
//! # let mut model = Sequential::<f32>::from_spec(&spec, 1)?;
//! # let x = ndarray::Array3::<f32>::from_shape_fn((8, 6, 4), |(i, j, k)| ((i + j + k) % 4 == 0) as u8 as f32);
//! # let y = ndarray::Array2::<f32>::from_shape_fn((8, 2), |(i, k)| (i % 2 == k) as u8 as f32);
//! # let train = Dataset { ids: (0..8).map(|i| i.to_string()).collect(), x, y, lengths: None };
//! let cfg = TrainConfig { epochs: 3, batch_size: 4, progress: Progress::Quiet, ..Default::default() };
//! let mut log = LossLog::default();
//! let mut trainer = Trainer::new(cfg, false);
//! trainer.add_callback(&mut log);
//! trainer.fit(&mut model, &train, None)?;
//! drop(trainer);
//! assert_eq!(log.0.len(), 6); // 2 steps × 3 epochs
//! # Ok::<(), seqgrad::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD};

use super::history::History;
use super::{Progress, TrainConfig};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::optim::Optimizer;
use crate::tensor::Float;

/// What a callback asked the loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// End training (best weights restored, `on_train_end` runs).
    Stop,
    /// Pause for a resume: return after this step with the state intact.
    Interrupt,
}

/// What a hook sees of the training run.
pub struct Context<'a, T: Float> {
    pub model: &'a mut Sequential<T>,
    pub config: &'a TrainConfig,
    pub optimizer: &'a Optimizer<T>,
    /// The history so far (completed epochs).
    pub history: &'a mut History,
    /// Current epoch, 1-based.
    pub epoch: usize,
    /// Global step of the current (or last) batch, 1-based: the step dropout masks are drawn
    /// for. `step − 1` optimizer updates came before this batch.
    pub step: u64,
    /// Index of the current batch within the epoch, 0-based (at `on_epoch_end`: the number of
    /// batches of the epoch).
    pub batch: usize,
    pub steps_per_epoch: usize,
    /// Records in the current batch.
    pub batch_records: usize,
    /// Loss of the current batch (NaN before the forward pass).
    pub batch_loss: f64,
    /// Mean training loss of the epoch so far.
    pub epoch_loss: f64,
    /// Global L2 norm of the current batch's gradients before clipping (NaN before backward).
    pub grad_norm: f64,
    pub(crate) request: Option<Request>,
    pub(crate) want_layer_outputs: bool,
}

impl<T: Float> Context<'_, T> {
    /// Ends training after the current step (or epoch, from `on_epoch_end`); the best weights
    /// are restored and `on_train_end` runs (Keras' `model.stop_training = True`).
    pub fn stop_training(&mut self) {
        if self.request.is_none() {
            self.request = Some(Request::Stop);
        }
    }

    /// Pauses training after the current step so it can be checkpointed and resumed exactly:
    /// `fit` returns [`Outcome::Interrupted`](super::Outcome) without restoring the best weights.
    pub fn interrupt(&mut self) {
        self.request = Some(Request::Interrupt);
    }

    /// True once a callback asked to stop or interrupt.
    pub fn stop_requested(&self) -> bool {
        self.request.is_some()
    }

    /// From `on_step_begin`: run this step's forward pass layer by layer and call
    /// [`Callback::on_layer_output`] with every layer's output.
    pub fn request_layer_outputs(&mut self) {
        self.want_layer_outputs = true;
    }
}

/// The numbers of one finished epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLogs {
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training metrics (`accuracy`, or `roc_auc`/`pr_auc`), from training-mode outputs.
    pub metrics: Vec<(String, f64)>,
    /// Validation loss and metrics, when there is a (non-empty) validation set.
    pub val: Option<(f64, Vec<(String, f64)>)>,
    /// Mean and largest global gradient norm of the epoch's steps (before clipping).
    pub grad_norm: f64,
    pub grad_norm_max: f64,
    pub seconds: f64,
    /// The monitored quantity: validation loss, or training loss without validation.
    pub monitor: f64,
    /// True if `monitor` improved on every earlier epoch (this epoch is the best so far).
    pub improved: bool,
}

/// A callback's state for a resume checkpoint: JSON values and tensors (stored in the
/// checkpoint's safetensors file under `callback.<name>.<key>`).
#[derive(Debug, Clone, Default)]
pub struct CallbackState<T> {
    pub json: serde_json::Map<String, serde_json::Value>,
    pub tensors: BTreeMap<String, ArrayD<T>>,
}

/// A hook into the training loop. Every method has a default that does nothing.
pub trait Callback<T: Float> {
    /// A unique name, the key of this callback's state in a checkpoint.
    fn name(&self) -> String {
        "callback".into()
    }
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    /// Before the forward pass of a batch; may call [`Context::request_layer_outputs`].
    fn on_step_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    /// The output of layer `index` in this step's training-mode forward pass (logits for
    /// the last layer: the softmax/sigmoid head is not applied). Only called when a callback
    /// asked for it in `on_step_begin`.
    fn on_layer_output(
        &mut self,
        _ctx: &mut Context<'_, T>,
        _index: usize,
        _output: ArrayViewD<'_, T>,
    ) -> Result<()> {
        Ok(())
    }
    /// After the backward pass: every parameter gradient (and the recurrent layers' per-step
    /// gradient norms, if recording is on) is this batch's, before clipping and the update.
    fn on_after_backward(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    /// After the optimizer step.
    fn on_step_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    /// After validation, with the epoch's numbers (the history row is already pushed).
    fn on_epoch_end(&mut self, _ctx: &mut Context<'_, T>, _logs: &EpochLogs) -> Result<()> {
        Ok(())
    }
    /// When training ends (all epochs, or a stop). Not called for an interrupt.
    fn on_train_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        Ok(())
    }
    /// When training fails with `err` (which `fit` then returns; errors here are ignored).
    fn on_exception(&mut self, _ctx: &mut Context<'_, T>, _err: &Error) -> Result<()> {
        Ok(())
    }
    /// State to keep in a resume checkpoint (`None`: nothing to keep).
    fn save_state(&self) -> Option<CallbackState<T>> {
        None
    }
    /// Restores what [`Callback::save_state`] saved.
    fn load_state(&mut self, _state: CallbackState<T>) -> Result<()> {
        Ok(())
    }
    /// Called right after [`Callback::load_state`] with the model holding the checkpoint's
    /// weights: checks the loaded state against the model (an error names what does not fit).
    fn check_state(&mut self, _model: &Sequential<T>) -> Result<()> {
        Ok(())
    }
}

impl<T: Float, C: Callback<T> + ?Sized> Callback<T> for &mut C {
    fn name(&self) -> String {
        (**self).name()
    }
    fn on_train_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_train_begin(ctx)
    }
    fn on_epoch_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_epoch_begin(ctx)
    }
    fn on_step_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_step_begin(ctx)
    }
    fn on_layer_output(
        &mut self,
        ctx: &mut Context<'_, T>,
        index: usize,
        output: ArrayViewD<'_, T>,
    ) -> Result<()> {
        (**self).on_layer_output(ctx, index, output)
    }
    fn on_after_backward(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_after_backward(ctx)
    }
    fn on_step_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_step_end(ctx)
    }
    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, logs: &EpochLogs) -> Result<()> {
        (**self).on_epoch_end(ctx, logs)
    }
    fn on_train_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        (**self).on_train_end(ctx)
    }
    fn on_exception(&mut self, ctx: &mut Context<'_, T>, err: &Error) -> Result<()> {
        (**self).on_exception(ctx, err)
    }
    fn save_state(&self) -> Option<CallbackState<T>> {
        (**self).save_state()
    }
    fn load_state(&mut self, state: CallbackState<T>) -> Result<()> {
        (**self).load_state(state)
    }
    fn check_state(&mut self, model: &Sequential<T>) -> Result<()> {
        (**self).check_state(model)
    }
}

/// The weights of the model's parameters, in model order.
pub(crate) fn snapshot<T: Float>(model: &Sequential<T>) -> Vec<ArrayD<T>> {
    model
        .named_params()
        .into_iter()
        .map(|(_, p)| p.value.clone())
        .collect()
}

pub(crate) fn restore<T: Float>(model: &mut Sequential<T>, snap: &[ArrayD<T>]) {
    for ((_, p), v) in model.named_params_mut().into_iter().zip(snap) {
        p.value.assign(v);
    }
}

/// Keeps the weights of the best epoch (see [`EpochLogs::improved`]): an in-memory copy and,
/// with a path, a safetensors checkpoint written atomically at every improvement. At the end
/// of training the best weights are put back into the model (Keras' `EarlyStopping
/// (restore_best_weights=True)` with `ModelCheckpoint(save_best_only=True)`).
///
/// In a resume checkpoint the best weights are the tensors `0`, `1`, … in the model's
/// parameter order, or — when they are the model's current weights (the checkpoint of an epoch
/// that improved) — the flag `same_as_weights` instead of a second copy.
pub struct BestWeights<T> {
    path: Option<PathBuf>,
    best: Option<Vec<ArrayD<T>>>,
    /// The best weights are the model's current weights (no step since they were taken).
    same: bool,
    /// Loaded `same_as_weights`: the copy is taken from the model in `check_state`.
    take_from_model: bool,
}

impl<T: Float> BestWeights<T> {
    pub fn new(path: Option<PathBuf>) -> Self {
        BestWeights {
            path,
            best: None,
            same: false,
            take_from_model: false,
        }
    }

    /// Puts the best weights (if any) into the model.
    pub fn restore_into(&self, model: &mut Sequential<T>) {
        if let Some(s) = &self.best {
            restore(model, s);
        }
    }
}

fn best_err(msg: String) -> Error {
    Error::Train(msg)
}

impl<T: Float> Callback<T> for BestWeights<T> {
    fn name(&self) -> String {
        "best_weights".into()
    }
    fn on_step_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        self.same = false;
        Ok(())
    }
    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, logs: &EpochLogs) -> Result<()> {
        if logs.improved {
            self.best = Some(snapshot(ctx.model));
            self.same = true;
            if let Some(p) = &self.path {
                crate::weights::save(ctx.model, p)?;
            }
        }
        Ok(())
    }
    fn on_train_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        self.restore_into(ctx.model);
        Ok(())
    }
    fn save_state(&self) -> Option<CallbackState<T>> {
        let best = self.best.as_ref()?;
        let mut json = serde_json::Map::new();
        if self.same {
            json.insert("same_as_weights".into(), serde_json::Value::Bool(true));
            return Some(CallbackState {
                json,
                tensors: Default::default(),
            });
        }
        Some(CallbackState {
            json,
            tensors: best
                .iter()
                .enumerate()
                .map(|(i, a)| (i.to_string(), a.clone()))
                .collect(),
        })
    }
    fn load_state(&mut self, state: CallbackState<T>) -> Result<()> {
        let same = state.json.get("same_as_weights").and_then(|v| v.as_bool()) == Some(true);
        if same {
            if let Some(k) = state.tensors.keys().next() {
                return Err(best_err(format!(
                    "tensor callback.best_weights.{k} is there although the best weights are marked same_as_weights"
                )));
            }
            (self.best, self.same, self.take_from_model) = (None, true, true);
            return Ok(());
        }
        let mut v: Vec<(usize, ArrayD<T>)> = Vec::new();
        for (k, a) in state.tensors {
            let i = k.parse::<usize>().map_err(|_| {
                best_err(format!(
                    "unexpected best-weights tensor callback.best_weights.{k}"
                ))
            })?;
            v.push((i, a));
        }
        v.sort_by_key(|(i, _)| *i);
        if let Some(gap) = v.iter().enumerate().find(|(pos, (i, _))| pos != i) {
            return Err(best_err(format!(
                "tensor callback.best_weights.{} is missing (the best weights jump from index {} to {})",
                gap.0,
                gap.0 as i64 - 1,
                (gap.1).0
            )));
        }
        self.best = (!v.is_empty()).then(|| v.into_iter().map(|(_, a)| a).collect());
        (self.same, self.take_from_model) = (false, false);
        Ok(())
    }
    fn check_state(&mut self, model: &Sequential<T>) -> Result<()> {
        if self.take_from_model {
            self.best = Some(snapshot(model));
            self.take_from_model = false;
            return Ok(());
        }
        let Some(best) = &self.best else {
            return Ok(());
        };
        let params = model.named_params();
        if best.len() != params.len() {
            return Err(best_err(format!(
                "{} best-weights tensors (callback.best_weights.0 to .{}) but the model has {} parameters",
                best.len(),
                best.len().saturating_sub(1),
                params.len()
            )));
        }
        for (i, (a, (name, p))) in best.iter().zip(&params).enumerate() {
            if a.shape() != p.value.shape() {
                return Err(best_err(format!(
                    "tensor callback.best_weights.{i} has shape {} but parameter {name} is {}",
                    crate::tensor::fmt_shape(a.shape()),
                    crate::tensor::fmt_shape(p.value.shape())
                )));
            }
        }
        Ok(())
    }
}

/// Writes `history.csv` and `history.json` into a folder after every epoch (atomically), and
/// once more when training fails, so a failed run keeps the history of its completed epochs.
pub struct HistoryWriter {
    dir: PathBuf,
}

impl HistoryWriter {
    pub fn new(dir: PathBuf) -> Self {
        HistoryWriter { dir }
    }
}

impl<T: Float> Callback<T> for HistoryWriter {
    fn name(&self) -> String {
        "history_writer".into()
    }
    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, _logs: &EpochLogs) -> Result<()> {
        ctx.history.save(&self.dir)
    }
    fn on_exception(&mut self, ctx: &mut Context<'_, T>, _err: &Error) -> Result<()> {
        if !ctx.history.rows.is_empty() {
            ctx.history.save(&self.dir)?;
        }
        Ok(())
    }
}

fn fmt_metrics(prefix: &str, loss: f64, m: &[(String, f64)]) -> String {
    let mut s = format!("{prefix}loss {loss:.4}");
    for (k, v) in m {
        s.push_str(&format!("  {prefix}{k} {v:.4}"));
    }
    s
}

/// Progress on stderr: a bar with ETA and live loss when stderr is a terminal
/// ([`Progress::Auto`]), one line per epoch (`*` marks an improvement), or nothing.
pub struct ProgressPrinter {
    progress: Progress,
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressPrinter {
    pub fn new(progress: Progress) -> Self {
        ProgressPrinter {
            progress,
            bar: None,
        }
    }

    fn use_bar(&self) -> bool {
        match self.progress {
            Progress::Auto => std::io::stderr().is_terminal(),
            _ => false,
        }
    }
}

impl<T: Float> Callback<T> for ProgressPrinter {
    fn name(&self) -> String {
        "progress".into()
    }
    fn on_epoch_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        if self.use_bar() {
            let pb = indicatif::ProgressBar::new(ctx.steps_per_epoch as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_prefix(format!("epoch {}/{}", ctx.epoch, ctx.config.epochs));
            pb.set_position(ctx.batch as u64);
            self.bar = Some(pb);
        }
        Ok(())
    }
    fn on_step_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        if let Some(pb) = &self.bar {
            pb.set_message(format!("loss {:.4}", ctx.epoch_loss));
            pb.inc(1);
        }
        Ok(())
    }
    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, logs: &EpochLogs) -> Result<()> {
        let mut line = format!(
            "epoch {:>3}/{}  {}",
            logs.epoch,
            ctx.config.epochs,
            fmt_metrics("", logs.loss, &logs.metrics)
        );
        if let Some((vl, vm)) = &logs.val {
            line.push_str(&format!("  {}", fmt_metrics("val_", *vl, vm)));
        }
        line.push_str(&format!(
            "  grad_norm {:.4}  {:.2}s{}",
            logs.grad_norm,
            logs.seconds,
            if logs.improved { "  *" } else { "" }
        ));
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        if self.progress != Progress::Quiet {
            eprintln!("{line}");
        }
        Ok(())
    }
    fn on_exception(&mut self, _ctx: &mut Context<'_, T>, _err: &Error) -> Result<()> {
        if let Some(pb) = self.bar.take() {
            pb.abandon();
        }
        Ok(())
    }
}

/// Stops training after `patience` epochs without improvement of the monitored loss
/// (validation loss, or training loss without validation); marks the history
/// `stopped_early`. Stateless: the epochs since the best one are `epoch − history.best_epoch`.
pub struct EarlyStopping {
    patience: usize,
    verbose: bool,
}

impl EarlyStopping {
    pub fn new(patience: usize, verbose: bool) -> Self {
        EarlyStopping { patience, verbose }
    }
}

impl<T: Float> Callback<T> for EarlyStopping {
    fn name(&self) -> String {
        "early_stopping".into()
    }
    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, logs: &EpochLogs) -> Result<()> {
        let wait = logs.epoch.saturating_sub(ctx.history.best_epoch);
        if wait >= self.patience {
            ctx.history.stopped_early = true;
            if self.verbose {
                eprintln!(
                    "early stopping: no improvement for {wait} epochs; keeping epoch {}",
                    ctx.history.best_epoch
                );
            }
            ctx.stop_training();
        }
        Ok(())
    }
}

/// Interrupts training (for a checkpoint and resume) at the end of the first step after an
/// atomic flag is set, e.g. by a SIGINT/SIGTERM handler (`signal_hook::flag::register`).
pub struct StopOnFlag {
    flag: Arc<AtomicBool>,
}

impl StopOnFlag {
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        StopOnFlag { flag }
    }
}

impl<T: Float> Callback<T> for StopOnFlag {
    fn name(&self) -> String {
        "stop_on_flag".into()
    }
    fn on_step_end(&mut self, ctx: &mut Context<'_, T>) -> Result<()> {
        if self.flag.load(Ordering::SeqCst) {
            ctx.interrupt();
        }
        Ok(())
    }
}
