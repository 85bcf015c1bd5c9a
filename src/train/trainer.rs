//! The training loop: [`Trainer`] runs epochs of seeded mini-batch steps and calls the
//! [callbacks](super::callbacks) around them; [`TrainState`] is everything the loop carries from
//! one step to the next, so a run can stop after any step and resume bit-identically.
//!
//! One epoch: the training records are shuffled with a ChaCha8 generator seeded from
//! `(seed, epoch)` ([`epoch_order`]); for each batch the model's step counter is set (dropout
//! masks are a function of seed and step), the batch is optionally reverse-complemented per
//! record (a coin per record drawn from the same generator, after the shuffle, batch after
//! batch — a resume replays the draws of the batches already done), the loss is computed on
//! logits, gradients are back-propagated, clipped (by value, then by global norm) and the
//! optimizer takes a step. Training metrics are from the training-mode outputs of each batch
//! (as Keras reports them); validation runs in evaluation mode, in batches, in file order.
//!
//! The monitored quantity is the validation loss (the training loss without a validation
//! set); an epoch that strictly improves it becomes `history.best_epoch`.
//!
//! A non-finite loss or gradient stops training with [`Error::Train`] naming the epoch, the
//! step and the first layer where a non-finite value appeared; so does a parameter that becomes
//! non-finite after an optimizer step (checked after every step, naming the parameter and its
//! layer) and a non-finite validation loss (naming the first non-finite batch and layer). The
//! checkpoint on disk is the last good one; the error names it only if this run saved one.
//!
//! Everything is sequential or reduced in a fixed order, so the same seed gives bit-identical
//! weights and history whatever the number of rayon threads (as long as the layers keep that
//! rule too).

use std::time::Instant;

use ndarray::{Array2, ArrayD, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::callbacks::{
    BestWeights, Callback, Context, EarlyStopping, EpochLogs, HistoryWriter, ProgressPrinter,
    Request,
};
use super::checkpoint::Checkpoints;
use super::diagnose::{first_non_finite_param, locate_backward, locate_eval, locate_forward};
use super::durable;
use super::eval::{check_fit, compute_metrics, evaluate, model_input, to2};
use super::history::History;
use super::{Progress, TrainConfig};
use crate::data::{dna, Dataset};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::optim::{clip_grad_norm, clip_grad_value, Optimizer};
use crate::tensor::{Float, Mode};

/// The shuffling generator of an epoch (1-based), a pure function of `(seed, epoch)`.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(epoch as u64),
    )
}

/// The order in which an epoch visits `n` training records (batches are consecutive chunks).
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut epoch_rng(seed, epoch));
    order
}

/// Everything the loop carries between steps: with the model's weights and the callbacks'
/// states, a run can be continued exactly from here.
#[derive(Debug, Clone)]
pub struct TrainState<T: Float> {
    pub optimizer: Optimizer<T>,
    pub history: History,
    /// Optimizer steps taken (= global step of the last finished batch).
    pub step: u64,
    /// The current epoch (1-based); after the last epoch, `epochs + 1`.
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub batch: usize,
    /// Best monitored loss so far (`+∞` before the first epoch).
    pub best_monitor: f64,
    /// True once training ended (all epochs, early stopping or a stop request).
    pub finished: bool,
    /// A stop was requested (by early stopping or a callback) when the checkpoint this state
    /// was loaded from was taken: training ends without another step.
    pub(crate) stopping: bool,
    /// Partial sums of the current epoch (loss × records, gradient norms).
    pub(crate) loss_sum: f64,
    pub(crate) gn_sum: f64,
    pub(crate) gn_max: f64,
    /// Seconds spent in the current epoch before an interruption.
    pub(crate) seconds: f64,
    /// Training-mode outputs of the batches done in the current epoch.
    pub(crate) outputs: Vec<Array2<T>>,
}

impl<T: Float> TrainState<T> {
    pub fn new(config: &TrainConfig) -> Self {
        TrainState {
            optimizer: Optimizer::new(config.optimizer),
            history: History::default(),
            step: 0,
            epoch: 1,
            batch: 0,
            best_monitor: f64::INFINITY,
            finished: false,
            stopping: false,
            loss_sum: 0.0,
            gn_sum: 0.0,
            gn_max: 0.0,
            seconds: 0.0,
            outputs: Vec::new(),
        }
    }

    fn reset_epoch(&mut self) {
        self.batch = 0;
        self.loss_sum = 0.0;
        self.gn_sum = 0.0;
        self.gn_max = 0.0;
        self.seconds = 0.0;
        self.outputs.clear();
    }
}

/// How a call to [`Trainer::fit`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All epochs, early stopping or a stop request: the best weights are in the model.
    Finished(History),
    /// A callback interrupted training after global step `step` (epoch `epoch`, `batch` batches
    /// of it done); the model holds the current weights, and [`Trainer::state`] everything
    /// else needed to resume.
    Interrupted {
        epoch: usize,
        step: u64,
        batch: usize,
    },
}

/// The training loop with its callbacks and state.
pub struct Trainer<'c, T: Float> {
    pub config: TrainConfig,
    pub multi_label: bool,
    pub(crate) state: TrainState<T>,
    pub(crate) callbacks: Vec<Box<dyn Callback<T> + 'c>>,
    /// A stop or interrupt asked for by a callback, not yet acted on.
    pub(crate) pending: Option<Request>,
    /// Where and how often checkpoints are written (none unless asked for).
    pub(crate) ckpt: Checkpoints,
    /// A callback asked for this step's layer outputs.
    want_layer_outputs: bool,
    steps_per_epoch: usize,
}

/// Which hook to call.
enum Hook<'h, T: Float> {
    TrainBegin,
    EpochBegin,
    StepBegin,
    AfterBackward,
    StepEnd,
    EpochEnd(&'h EpochLogs),
    TrainEnd,
    Exception(&'h Error),
    Layer(usize, ndarray::ArrayViewD<'h, T>),
}

/// The per-batch numbers the hooks see.
#[derive(Clone, Copy)]
struct StepInfo {
    records: usize,
    loss: f64,
    epoch_loss: f64,
    grad_norm: f64,
}

const NO_STEP: StepInfo = StepInfo {
    records: 0,
    loss: f64::NAN,
    epoch_loss: f64::NAN,
    grad_norm: f64::NAN,
};

impl<'c, T: Float> Trainer<'c, T> {
    /// A trainer with the built-in callbacks the configuration asks for: [`BestWeights`]
    /// (with `config.checkpoint`), [`HistoryWriter`] (with `config.history_dir`),
    /// [`ProgressPrinter`] and [`EarlyStopping`] (with `config.patience`), in that order.
    pub fn new(config: TrainConfig, multi_label: bool) -> Self {
        let mut t = Self::bare(config, multi_label);
        let cfg = &t.config;
        let mut cbs: Vec<Box<dyn Callback<T> + 'c>> =
            vec![Box::new(BestWeights::<T>::new(cfg.checkpoint.clone()))];
        if let Some(d) = &cfg.history_dir {
            cbs.push(Box::new(HistoryWriter::new(d.clone())));
        }
        cbs.push(Box::new(ProgressPrinter::new(cfg.progress)));
        if let Some(p) = cfg.patience {
            cbs.push(Box::new(EarlyStopping::new(
                p,
                cfg.progress != Progress::Quiet,
            )));
        }
        t.callbacks = cbs;
        t
    }

    /// A trainer with no callbacks at all (no best-weights restore, no early stopping, no
    /// output): add exactly the ones you want.
    pub fn bare(config: TrainConfig, multi_label: bool) -> Self {
        let state = TrainState::new(&config);
        Trainer {
            config,
            multi_label,
            state,
            callbacks: Vec::new(),
            pending: None,
            ckpt: Checkpoints::default(),
            want_layer_outputs: false,
            steps_per_epoch: 0,
        }
    }

    /// Adds a callback after the ones already there (pass `&mut cb` to keep access to it).
    pub fn add_callback(&mut self, cb: impl Callback<T> + 'c) -> &mut Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// The loop state (history, counters, optimizer).
    pub fn state(&self) -> &TrainState<T> {
        &self.state
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.state.history
    }

    fn call(&mut self, model: &mut Sequential<T>, info: StepInfo, hook: Hook<'_, T>) -> Result<()> {
        let st = &mut self.state;
        for cb in self.callbacks.iter_mut() {
            let mut ctx = Context {
                model: &mut *model,
                config: &self.config,
                optimizer: &st.optimizer,
                history: &mut st.history,
                epoch: st.epoch,
                step: st.step,
                batch: st.batch,
                steps_per_epoch: self.steps_per_epoch,
                batch_records: info.records,
                batch_loss: info.loss,
                epoch_loss: info.epoch_loss,
                grad_norm: info.grad_norm,
                request: None,
                want_layer_outputs: false,
            };
            let r = match &hook {
                Hook::TrainBegin => cb.on_train_begin(&mut ctx),
                Hook::EpochBegin => cb.on_epoch_begin(&mut ctx),
                Hook::StepBegin => cb.on_step_begin(&mut ctx),
                Hook::AfterBackward => cb.on_after_backward(&mut ctx),
                Hook::StepEnd => cb.on_step_end(&mut ctx),
                Hook::EpochEnd(logs) => cb.on_epoch_end(&mut ctx, logs),
                Hook::TrainEnd => cb.on_train_end(&mut ctx),
                Hook::Exception(e) => cb.on_exception(&mut ctx, e),
                Hook::Layer(i, out) => cb.on_layer_output(&mut ctx, *i, out.view()),
            };
            self.want_layer_outputs |= ctx.want_layer_outputs;
            match ctx.request {
                Some(Request::Interrupt) => self.pending = Some(Request::Interrupt),
                Some(Request::Stop) if self.pending.is_none() => self.pending = Some(Request::Stop),
                _ => {}
            }
            r?;
        }
        Ok(())
    }

    /// Trains `model` from the current state (the start, or where a loaded checkpoint left
    /// off) until the last epoch, a stop or an interrupt. `multi_label` (set at construction)
    /// selects the metrics (AUCs instead of accuracy).
    pub fn fit(
        &mut self,
        model: &mut Sequential<T>,
        train: &Dataset<T>,
        valid: Option<&Dataset<T>>,
    ) -> Result<Outcome> {
        let cfg = &self.config;
        if cfg.epochs == 0 || cfg.batch_size == 0 {
            return Err(Error::Usage(
                "--epochs and --batch-size must be at least 1".into(),
            ));
        }
        if train.is_empty() {
            return Err(Error::Usage("no training records".into()));
        }
        check_fit(model, train.seq_len(), train.y.shape()[1])?;
        self.steps_per_epoch = train.len().div_ceil(cfg.batch_size);
        self.pending = None;
        // Training never reads ∂L/∂data: skip the first layer's input-gradient product, and
        // restore the model's setting however training ends.
        let need_input_grad = model.need_input_grad();
        model.set_need_input_grad(false);
        let result = self.run(model, train, valid);
        // However training ended, the last checkpoint write is complete before fit returns.
        self.ckpt.wait();
        model.set_need_input_grad(need_input_grad);
        match result {
            Ok(o) => Ok(o),
            Err(e) => {
                // The callbacks see the error (to save what they hold); theirs are ignored.
                let _ = self.call(model, NO_STEP, Hook::Exception(&e));
                Err(e)
            }
        }
    }

    fn run(
        &mut self,
        model: &mut Sequential<T>,
        train: &Dataset<T>,
        valid: Option<&Dataset<T>>,
    ) -> Result<Outcome> {
        let multi_label = self.multi_label;
        let n = train.len();
        let bs = self.config.batch_size;
        let steps = self.steps_per_epoch;
        let metric_names: Vec<String> = compute_metrics(&train.y, &train.y, multi_label)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if self.state.history.columns.is_empty() {
            let mut columns = vec!["epoch".to_string(), "loss".to_string()];
            columns.extend(metric_names.iter().cloned());
            if valid.is_some() {
                columns.push("val_loss".into());
                columns.extend(metric_names.iter().map(|k| format!("val_{k}")));
            }
            columns.push("grad_norm".into());
            columns.push("grad_norm_max".into());
            columns.push("seconds".into());
            self.state.history.columns = columns;
        }
        if self.state.finished {
            return Ok(Outcome::Finished(self.state.history.clone()));
        }
        self.first_checkpoint(model);
        self.call(model, NO_STEP, Hook::TrainBegin)?;
        let loss_fn = Loss::for_head(model.head());
        while self.state.epoch <= self.config.epochs
            && self.pending.is_none()
            && !self.state.stopping
        {
            let epoch = self.state.epoch;
            let t0 = Instant::now();
            let mut rng = epoch_rng(self.config.seed, epoch);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            self.call(model, NO_STEP, Hook::EpochBegin)?;
            let mut seen = 0usize;
            for (bi, chunk) in order.chunks(bs).enumerate() {
                if bi < self.state.batch {
                    // Done before an interruption: replay the augmentation draws only.
                    if self.config.rc_augment {
                        for _ in 0..chunk.len() {
                            let _: bool = rng.random();
                        }
                    }
                    seen += chunk.len();
                    continue;
                }
                if bi == self.state.batch && bi > 0 {
                    check_resumed_outputs(&self.state.outputs, seen, epoch)?;
                }
                let info = self.step(model, train, chunk, &mut rng, &loss_fn, seen, self.note())?;
                seen += chunk.len();
                self.state.batch = bi + 1;
                self.call(model, info, Hook::StepEnd)?;
                durable::fault("step", self.state.step);
                self.periodic_checkpoint(model, false);
                if self.pending.is_some() {
                    break;
                }
            }
            if self.pending == Some(Request::Interrupt) {
                self.state.seconds += t0.elapsed().as_secs_f64();
                let s = &self.state;
                return Ok(Outcome::Interrupted {
                    epoch: s.epoch,
                    step: s.step,
                    batch: s.batch,
                });
            }
            if self.pending == Some(Request::Stop) && self.state.batch < steps {
                // Stopped mid-epoch: the partial epoch leaves no history row.
                break;
            }
            if self.state.batch == steps {
                check_resumed_outputs(&self.state.outputs, n, epoch)?;
            }
            self.end_epoch(model, train, valid, &order, &metric_names, t0)?;
            durable::fault("epoch", epoch as u64);
            self.state.epoch += 1;
            self.state.reset_epoch();
            self.periodic_checkpoint(model, true);
            if self.pending == Some(Request::Interrupt) {
                let s = &self.state;
                return Ok(Outcome::Interrupted {
                    epoch: s.epoch,
                    step: s.step,
                    batch: s.batch,
                });
            }
        }
        self.state.finished = true;
        self.call(model, NO_STEP, Hook::TrainEnd)?;
        Ok(Outcome::Finished(self.state.history.clone()))
    }

    /// Errors name a checkpoint only once this run has saved one.
    fn note(&self) -> String {
        match &self.config.checkpoint {
            Some(p) if self.state.history.best_epoch > 0 => format!(
                "; the last good checkpoint is {} (epoch {})",
                p.display(),
                self.state.history.best_epoch
            ),
            _ => String::new(),
        }
    }

    /// One training step on the records `chunk`; `seen` records of the epoch came before.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        model: &mut Sequential<T>,
        train: &Dataset<T>,
        chunk: &[usize],
        rng: &mut ChaCha8Rng,
        loss_fn: &Loss,
        seen: usize,
        ckpt_note: String,
    ) -> Result<StepInfo> {
        let epoch = self.state.epoch;
        let bi = self.state.batch;
        self.state.step += 1;
        let step = self.state.step;
        model.set_step(step);
        let (mut xb, lens) = train.batch(chunk);
        let yb = train.y.select(Axis(0), chunk);
        if self.config.rc_augment {
            let rc = match &lens {
                Some(l) => dna::reverse_complement_padded(xb.view(), l),
                None => dna::reverse_complement_batch(xb.view()),
            };
            for i in 0..chunk.len() {
                if rng.random::<bool>() {
                    xb.index_axis_mut(Axis(0), i)
                        .assign(&rc.index_axis(Axis(0), i));
                }
            }
        }
        let xin = model_input(model, xb);
        let mut info = StepInfo {
            records: chunk.len(),
            ..NO_STEP
        };
        self.want_layer_outputs = false;
        self.call(model, info, Hook::StepBegin)?;
        model.zero_grad();
        let mut logits = if self.want_layer_outputs {
            self.want_layer_outputs = false;
            let mut outs: Vec<ArrayD<T>> = Vec::new();
            let logits = model.forward_logits_observed_masked(
                xin.view(),
                lens.as_deref(),
                Mode::Train,
                &mut |_, o| outs.push(o.clone()),
            )?;
            for (i, o) in outs.iter().enumerate() {
                self.call(model, info, Hook::Layer(i, o.view()))?;
            }
            logits
        } else {
            model.forward_logits_masked(xin.view(), lens.as_deref(), Mode::Train)?
        };
        let (loss, grad) = loss_fn.compute(logits.view(), yb.view().into_dyn())?;
        if !loss.is_finite() {
            let where_ = locate_forward(model, &xin, lens.as_deref(), Mode::Train);
            return Err(Error::Train(format!(
                "non-finite loss ({loss}) at epoch {epoch}, step {} (global step {step}): {where_}{ckpt_note}",
                bi + 1
            )));
        }
        model.backward_logits(grad.view())?;
        if let Some(where_) = locate_backward(model) {
            return Err(Error::Train(format!(
                "non-finite gradient at epoch {epoch}, step {} (global step {step}): {where_}{ckpt_note}",
                bi + 1
            )));
        }
        let gn = crate::optim::grad_norm(model.named_params().into_iter().map(|(_, p)| p));
        info.loss = loss;
        info.grad_norm = gn;
        self.call(model, info, Hook::AfterBackward)?;
        let st = &mut self.state;
        st.gn_sum += gn;
        st.gn_max = st.gn_max.max(gn);
        if let Some(c) = self.config.clip_value {
            clip_grad_value(
                model
                    .named_params_mut()
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect(),
                c,
            );
        }
        if let Some(c) = self.config.clip_norm {
            clip_grad_norm(
                model
                    .named_params_mut()
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect(),
                c,
            );
        }
        st.optimizer.step(model.named_params_mut());
        if let Some(what) = first_non_finite_param(model) {
            return Err(Error::Train(format!(
                "non-finite weights at epoch {epoch}, step {} (global step {step}): parameter {what} became non-finite after the optimizer step (lr {:e}, gradient norm {gn:.4e} before clipping){ckpt_note}",
                bi + 1,
                self.config.optimizer.lr
            )));
        }
        st.loss_sum += loss * chunk.len() as f64;
        if let Some(h) = model.head() {
            h.forward_inplace(logits.view_mut());
        }
        st.outputs.push(to2(logits)?);
        info.epoch_loss = st.loss_sum / (seen + chunk.len()) as f64;
        Ok(info)
    }

    /// Validation, the history row, the best epoch and the `on_epoch_end` hooks.
    fn end_epoch(
        &mut self,
        model: &mut Sequential<T>,
        train: &Dataset<T>,
        valid: Option<&Dataset<T>>,
        order: &[usize],
        metric_names: &[String],
        t0: Instant,
    ) -> Result<()> {
        let multi_label = self.multi_label;
        let n = train.len();
        let steps = self.steps_per_epoch;
        let bs = self.config.batch_size;
        let epoch = self.state.epoch;
        let step = self.state.step;
        let train_loss = self.state.loss_sum / n as f64;
        let views: Vec<_> = self.state.outputs.iter().map(|p| p.view()).collect();
        let probs =
            ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Train(e.to_string()))?;
        let y_ordered = train.y.select(Axis(0), order);
        let train_metrics = compute_metrics(&probs, &y_ordered, multi_label);
        let val = match valid {
            Some(v) if !v.is_empty() => Some(evaluate(model, v, bs.max(256), multi_label)?),
            _ => None,
        };
        let secs = self.state.seconds + t0.elapsed().as_secs_f64();
        let mut row = vec![epoch as f64, train_loss];
        row.extend(train_metrics.iter().map(|(_, v)| *v));
        if valid.is_some() {
            let (vl, vm) = match &val {
                Some(e) => (e.loss, e.metrics.clone()),
                None => (
                    f64::NAN,
                    metric_names.iter().map(|k| (k.clone(), f64::NAN)).collect(),
                ),
            };
            row.push(vl);
            row.extend(vm.iter().map(|(_, v)| *v));
        }
        let gn_mean = self.state.gn_sum / steps as f64;
        row.push(gn_mean);
        row.push(self.state.gn_max);
        row.push(secs);
        self.state.history.rows.push(row);
        let monitor = val.as_ref().map(|e| e.loss).unwrap_or(train_loss);
        if !monitor.is_finite() {
            let where_ = match valid {
                Some(v) if val.is_some() => {
                    format!("validation {}", locate_eval(model, v, bs.max(256)))
                }
                _ => "training loss".into(),
            };
            return Err(Error::Train(format!(
                "non-finite {} ({monitor}) at epoch {epoch}, after global step {step}: {where_}{}",
                if val.is_some() {
                    "validation loss"
                } else {
                    "training loss"
                },
                self.note()
            )));
        }
        let improved = monitor < self.state.best_monitor;
        if improved {
            self.state.best_monitor = monitor;
            self.state.history.best_epoch = epoch;
        }
        let logs = EpochLogs {
            epoch,
            loss: train_loss,
            metrics: train_metrics,
            val: val.map(|e| (e.loss, e.metrics)),
            grad_norm: gn_mean,
            grad_norm_max: self.state.gn_max,
            seconds: secs,
            monitor,
            improved,
        };
        self.state.batch = steps;
        self.call(model, NO_STEP, Hook::EpochEnd(&logs))
    }
}

/// The training-mode outputs a resumed epoch carries must cover the `seen` records of the
/// batches already done (a checkpoint from another data set or batch size does not).
fn check_resumed_outputs<T: Float>(outputs: &[Array2<T>], seen: usize, epoch: usize) -> Result<()> {
    let rows: usize = outputs.iter().map(|o| o.nrows()).sum();
    if rows != seen {
        return Err(Error::Train(format!(
            "checkpoint: tensor epoch.outputs has {rows} rows but the batches of epoch {epoch} done before it cover {seen} records (another data set or batch size?)"
        )));
    }
    Ok(())
}
