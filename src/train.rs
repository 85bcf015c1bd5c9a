//! The training loop: mini-batch training with seeded shuffling, validation, early stopping,
//! best-weights checkpoints, per-epoch history and progress output.
//!
//! One epoch: the training records are shuffled with a ChaCha8 generator seeded from
//! `(seed, epoch)`; for each batch the model's step counter is set (dropout masks are a function
//! of seed and step), the batch is optionally reverse-complemented per record (a seeded coin per
//! record, `rc_augment`), the loss is computed on logits, gradients are back-propagated,
//! clipped (by global norm and/or value) and the optimizer takes a step. Training metrics are
//! from the training-mode outputs of each batch (as Keras reports them); validation runs in
//! evaluation mode, in batches, in file order.
//!
//! Early stopping monitors the validation loss (the training loss without a validation set):
//! each strict improvement saves the weights (checkpoint file written atomically, and a copy
//! in memory); after `patience` epochs without improvement training stops; at the end the best
//! weights are restored into the model.
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

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::{Array2, ArrayD, Axis, Ix2};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{dna, Dataset};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics;
use crate::model::Sequential;
use crate::optim::{clip_grad_norm, clip_grad_value, Optimizer, OptimizerConfig};
use crate::tensor::{fmt_shape, Float, Mode};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar with ETA and live loss when stderr is a terminal, plain lines otherwise.
    Auto,
    /// One line per epoch on stderr.
    Plain,
    /// Nothing.
    Quiet,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
    /// Early-stopping patience in epochs (`None`: train all epochs).
    pub patience: Option<usize>,
    pub seed: u64,
    /// Randomly reverse-complement half of the training records each epoch.
    pub rc_augment: bool,
    /// Where the best weights are saved (safetensors) whenever they improve.
    pub checkpoint: Option<PathBuf>,
    /// A folder where `history.csv` and `history.json` are rewritten (atomically) after every
    /// epoch, so a run that fails later keeps the history of its completed epochs.
    pub history_dir: Option<PathBuf>,
    pub progress: Progress,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 64,
            optimizer: OptimizerConfig::named("adam").unwrap_or(OptimizerConfig {
                kind: crate::optim::OptimizerKind::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                lr: 1e-3,
                weight_decay: 0.0,
                eps: 1e-7,
            }),
            clip_norm: None,
            clip_value: None,
            patience: Some(5),
            seed: 42,
            rc_augment: false,
            checkpoint: None,
            history_dir: None,
            progress: Progress::Auto,
        }
    }
}

/// Per-epoch history, Keras-style: one column per quantity (`epoch`, `loss`, `accuracy`,
/// `val_loss`, `val_accuracy`, …, `grad_norm`, `grad_norm_max`, `seconds`). `grad_norm` is the
/// mean over the epoch's steps of the global L2 norm of all gradients before any clipping,
/// `grad_norm_max` its largest value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub columns: Vec<String>,
    /// One row per epoch, values in `columns` order.
    pub rows: Vec<Vec<f64>>,
    /// 1-based epoch whose weights were kept.
    pub best_epoch: usize,
    /// True if early stopping ended training.
    pub stopped_early: bool,
}

impl History {
    /// The history as CSV (header + one line per epoch).
    pub fn to_csv(&self) -> String {
        let mut s = self.columns.join(",") + "\n";
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&self.columns)
                .map(|(v, c)| {
                    if c == "epoch" {
                        format!("{}", *v as u64)
                    } else {
                        format!("{v}")
                    }
                })
                .collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }

    /// The history as JSON: `{"epoch": [...], "loss": [...], ..., "best_epoch": n}`.
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        for (j, c) in self.columns.iter().enumerate() {
            let col: Vec<serde_json::Value> = self
                .rows
                .iter()
                .map(|r| {
                    if c == "epoch" {
                        serde_json::json!(r[j] as u64)
                    } else {
                        serde_json::Number::from_f64(r[j])
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::Null)
                    }
                })
                .collect();
            m.insert(c.clone(), serde_json::Value::Array(col));
        }
        m.insert("best_epoch".into(), serde_json::json!(self.best_epoch));
        m.insert(
            "stopped_early".into(),
            serde_json::json!(self.stopped_early),
        );
        serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default() + "\n"
    }

    /// Writes `history.csv` and `history.json` into `dir` (each atomically).
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        crate::weights::write_atomic(&dir.join("history.csv"), self.to_csv().as_bytes())?;
        crate::weights::write_atomic(&dir.join("history.json"), self.to_json().as_bytes())
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
    }
}

/// Result of evaluating a model on a data set.
#[derive(Debug, Clone)]
pub struct Evaluation<T> {
    pub loss: f64,
    /// `(records, classes)` model outputs (after the softmax/sigmoid head).
    pub probs: Array2<T>,
    /// `accuracy` (multi-class) or `roc_auc` and `pr_auc` means (multi-label).
    pub metrics: Vec<(String, f64)>,
}

/// Checks that a data set fits a model: sequence input `(length, 4)` or flat `(length·4)`
/// input, and a flat output of one unit per class.
pub fn check_fit<T: Float>(model: &Sequential<T>, seq_len: usize, classes: usize) -> Result<()> {
    check_input_len(model, seq_len)?;
    if model.output_shape() != [classes] {
        return Err(Error::Usage(format!(
            "the model output is {} but the data has {classes} classes/labels; end the model with a dense layer of {classes} units on a flat input",
            fmt_shape(model.output_shape())
        )));
    }
    Ok(())
}

/// Checks that sequences of length `seq_len` fit the model input (`(length, 4)` or flat
/// `(length·4)`). Cheap, so the CLI calls it with the `--crop`/`--pad` length before encoding
/// (a huge `--pad` is then an error before any allocation).
pub fn check_input_len<T: Float>(model: &Sequential<T>, seq_len: usize) -> Result<()> {
    let input = model.input_shape();
    let ok = input == [seq_len, 4] || seq_len.checked_mul(4).is_some_and(|f| input == [f]);
    if !ok {
        return Err(Error::Usage(format!(
            "the model input is {} but the data is {} one-hot sequences of length {seq_len} (use --crop/--pad or change input_shape)",
            fmt_shape(input),
            fmt_shape(&[seq_len, 4])
        )));
    }
    Ok(())
}

/// Shapes a `(batch, length, 4)` batch for the model (flattening for a flat input).
fn model_input<T: Float>(model: &Sequential<T>, x: ndarray::Array3<T>) -> ArrayD<T> {
    if model.input_shape().len() == 1 {
        let b = x.shape()[0];
        let f = x.shape()[1] * x.shape()[2];
        crate::tensor::reshape(x, &[b, f])
    } else {
        x.into_dyn()
    }
}

/// The metrics of outputs against targets.
pub fn compute_metrics<T: Float>(
    probs: &Array2<T>,
    y: &Array2<T>,
    multi_label: bool,
) -> Vec<(String, f64)> {
    if multi_label {
        let (roc, pr) = metrics::per_label_auc(probs.view(), y.view());
        vec![
            ("roc_auc".into(), metrics::mean_defined(&roc)),
            ("pr_auc".into(), metrics::mean_defined(&pr)),
        ]
    } else {
        vec![("accuracy".into(), metrics::accuracy(probs.view(), y.view()))]
    }
}

fn to2<T: Float>(a: ArrayD<T>) -> Result<Array2<T>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| Error::Shape {
        what: "model output".into(),
        expected: "(batch, classes)".into(),
        got: fmt_shape(&shape),
    })
}

/// Model outputs (after the head) in evaluation mode, in batches, in record order.
///
/// # Shapes
/// - `x`: `(records, length, 4)`; returns `(records, classes)`.
pub fn predict<T: Float>(
    model: &mut Sequential<T>,
    x: &ndarray::Array3<T>,
    batch_size: usize,
    rc: bool,
) -> Result<Array2<T>> {
    let n = x.shape()[0];
    let bs = batch_size.max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let mut xb = x.slice(ndarray::s![start..end, .., ..]).to_owned();
        if rc {
            xb = dna::reverse_complement_batch(xb.view());
        }
        let out = model.forward(model_input(model, xb).view(), Mode::Infer)?;
        parts.push(to2(out)?);
        start = end;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views)
        .map_err(|e| Error::Train(format!("joining predictions: {e}")))
}

/// Loss, outputs and metrics on a data set (evaluation mode, batches in record order).
pub fn evaluate<T: Float>(
    model: &mut Sequential<T>,
    data: &Dataset<T>,
    batch_size: usize,
    multi_label: bool,
) -> Result<Evaluation<T>> {
    let loss_fn = Loss::for_head(model.head());
    let n = data.len();
    let bs = batch_size.max(1);
    let mut parts = Vec::new();
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let xb = data.x.slice(ndarray::s![start..end, .., ..]).to_owned();
        let yb = data
            .y
            .slice(ndarray::s![start..end, ..])
            .to_owned()
            .into_dyn();
        let mut logits = model.forward_logits(model_input(model, xb).view(), Mode::Infer)?;
        let (l, _) = loss_fn.compute(logits.view(), yb.view())?;
        total += l * (end - start) as f64;
        if let Some(h) = model.head() {
            h.forward_inplace(logits.view_mut());
        }
        parts.push(to2(logits)?);
        start = end;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let probs = ndarray::concatenate(Axis(0), &views)
        .map_err(|e| Error::Train(format!("joining outputs: {e}")))?;
    let metrics = compute_metrics(&probs, &data.y, multi_label);
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        probs,
        metrics,
    })
}

fn all_finite<T: Float>(a: &ArrayD<T>) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// Re-runs a batch layer by layer to find the first layer whose output is not finite.
fn locate_forward<T: Float>(model: &mut Sequential<T>, x: &ArrayD<T>, mode: Mode) -> String {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    let mut h = x.clone();
    for (i, l) in model.layers_mut().iter_mut().enumerate() {
        match l.forward(h.view(), mode) {
            Ok(o) => h = o,
            Err(e) => return format!("layer #{i} ({}) failed: {e}", kinds[i]),
        }
        if !all_finite(&h) {
            return format!("first non-finite output at layer #{i} ({})", kinds[i]);
        }
    }
    "every layer output is finite; the loss itself overflowed (targets or outputs out of range?)"
        .into()
}

/// Names where a gradient first became non-finite (walking back from the output), if any.
fn locate_backward<T: Float>(model: &Sequential<T>) -> Option<String> {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    let norms = model.output_grad_norms();
    if let Some(i) = (0..norms.len()).rev().find(|&i| !norms[i].is_finite()) {
        let source = if i + 1 < kinds.len() {
            format!(
                ", coming from the backward pass of layer #{} ({})",
                i + 1,
                kinds[i + 1]
            )
        } else {
            " (the loss gradient)".into()
        };
        return Some(format!(
            "first non-finite gradient at the output of layer #{i} ({}){source}",
            kinds[i]
        ));
    }
    model
        .named_params()
        .into_iter()
        .find(|(_, p)| !p.grad.iter().all(|v| v.is_finite()))
        .map(|(n, _)| format!("first non-finite parameter gradient in {n}"))
}

/// Finds where a data set's evaluation-mode loss becomes non-finite: the first batch (in record
/// order, `batch_size` records each) whose outputs are not finite, and in it the first layer.
fn locate_eval<T: Float>(
    model: &mut Sequential<T>,
    data: &Dataset<T>,
    batch_size: usize,
) -> String {
    let loss_fn = Loss::for_head(model.head());
    let n = data.len();
    let bs = batch_size.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let xb = model_input(
            model,
            data.x.slice(ndarray::s![start..end, .., ..]).to_owned(),
        );
        let yb = data
            .y
            .slice(ndarray::s![start..end, ..])
            .to_owned()
            .into_dyn();
        let bad = match model.forward_logits(xb.view(), Mode::Eval) {
            Ok(l) => loss_fn
                .compute(l.view(), yb.view())
                .map_or(true, |(v, _)| !v.is_finite()),
            Err(_) => true,
        };
        if bad {
            let id = data.ids.get(start).map(String::as_str).unwrap_or("?");
            return format!(
                "records {}..{} (first {id}): {}",
                start + 1,
                end,
                locate_forward(model, &xb, Mode::Eval)
            );
        }
        start = end;
    }
    "no single batch is non-finite".into()
}

/// The first parameter (in model order) with a non-finite value, with its layer.
fn first_non_finite_param<T: Float>(model: &Sequential<T>) -> Option<String> {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    model
        .named_params()
        .into_iter()
        .find(|(_, p)| !p.value.iter().all(|v| v.is_finite()))
        .map(|(n, _)| {
            let layer = n
                .strip_prefix("layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok());
            match layer.and_then(|i| kinds.get(i).map(|k| (i, k))) {
                Some((i, k)) => format!("{n} (layer #{i}, {k})"),
                None => n,
            }
        })
}

fn snapshot<T: Float>(model: &Sequential<T>) -> Vec<ArrayD<T>> {
    model
        .named_params()
        .into_iter()
        .map(|(_, p)| p.value.clone())
        .collect()
}

fn restore<T: Float>(model: &mut Sequential<T>, snap: &[ArrayD<T>]) {
    for ((_, p), v) in model.named_params_mut().into_iter().zip(snap) {
        p.value.assign(v);
    }
}

fn fmt_metrics(prefix: &str, loss: f64, m: &[(String, f64)]) -> String {
    let mut s = format!("{prefix}loss {loss:.4}");
    for (k, v) in m {
        s.push_str(&format!("  {prefix}{k} {v:.4}"));
    }
    s
}

/// Trains a model. `multi_label` selects the metrics (AUCs instead of accuracy).
pub fn fit<T: Float>(
    model: &mut Sequential<T>,
    train: &Dataset<T>,
    valid: Option<&Dataset<T>>,
    multi_label: bool,
    cfg: &TrainConfig,
) -> Result<History> {
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(Error::Usage(
            "--epochs and --batch-size must be at least 1".into(),
        ));
    }
    if train.is_empty() {
        return Err(Error::Usage("no training records".into()));
    }
    check_fit(model, train.seq_len(), train.y.shape()[1])?;
    let loss_fn = Loss::for_head(model.head());
    let mut opt = Optimizer::<T>::new(cfg.optimizer);
    // Training never reads ∂L/∂data: skip the first layer's input-gradient product (restored
    // when training returns normally).
    let need_input_grad = model.need_input_grad();
    model.set_need_input_grad(false);
    let n = train.len();
    let steps = n.div_ceil(cfg.batch_size);
    let metric_names: Vec<String> = compute_metrics(&train.y, &train.y, multi_label)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut columns = vec!["epoch".to_string(), "loss".to_string()];
    columns.extend(metric_names.iter().cloned());
    if valid.is_some() {
        columns.push("val_loss".into());
        columns.extend(metric_names.iter().map(|k| format!("val_{k}")));
    }
    columns.push("grad_norm".into());
    columns.push("grad_norm_max".into());
    columns.push("seconds".into());
    let mut history = History {
        columns,
        ..Default::default()
    };
    let use_bar = match cfg.progress {
        Progress::Auto => std::io::stderr().is_terminal(),
        _ => false,
    };
    let quiet = cfg.progress == Progress::Quiet;
    let mut best = f64::INFINITY;
    let mut best_snap: Option<Vec<ArrayD<T>>> = None;
    let mut wait = 0usize;
    let mut step: u64 = 0;
    // Errors name a checkpoint only once this run has saved one.
    let mut ckpt_note = String::new();
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(epoch as u64),
        );
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let bar = if use_bar {
            let pb = indicatif::ProgressBar::new(steps as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_prefix(format!("epoch {epoch}/{}", cfg.epochs));
            Some(pb)
        } else {
            None
        };
        let mut loss_sum = 0.0;
        let (mut gn_sum, mut gn_max) = (0.0f64, 0.0f64);
        let mut out_parts: Vec<Array2<T>> = Vec::with_capacity(steps);
        for (bi, chunk) in order.chunks(cfg.batch_size).enumerate() {
            step += 1;
            model.set_step(step);
            let mut xb = train.x.select(Axis(0), chunk);
            let yb = train.y.select(Axis(0), chunk);
            if cfg.rc_augment {
                let rc = dna::reverse_complement_batch(xb.view());
                for i in 0..chunk.len() {
                    if rng.random::<bool>() {
                        xb.index_axis_mut(Axis(0), i)
                            .assign(&rc.index_axis(Axis(0), i));
                    }
                }
            }
            let xin = model_input(model, xb);
            model.zero_grad();
            let mut logits = model.forward_logits(xin.view(), Mode::Train)?;
            let (loss, grad) = loss_fn.compute(logits.view(), yb.view().into_dyn())?;
            if !loss.is_finite() {
                let where_ = locate_forward(model, &xin, Mode::Train);
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
            gn_sum += gn;
            gn_max = gn_max.max(gn);
            if let Some(c) = cfg.clip_value {
                clip_grad_value(
                    model
                        .named_params_mut()
                        .into_iter()
                        .map(|(_, p)| p)
                        .collect(),
                    c,
                );
            }
            if let Some(c) = cfg.clip_norm {
                clip_grad_norm(
                    model
                        .named_params_mut()
                        .into_iter()
                        .map(|(_, p)| p)
                        .collect(),
                    c,
                );
            }
            opt.step(model.named_params_mut());
            if let Some(what) = first_non_finite_param(model) {
                return Err(Error::Train(format!(
                    "non-finite weights at epoch {epoch}, step {} (global step {step}): parameter {what} became non-finite after the optimizer step (lr {:e}, gradient norm {gn:.4e} before clipping){ckpt_note}",
                    bi + 1,
                    cfg.optimizer.lr
                )));
            }
            loss_sum += loss * chunk.len() as f64;
            if let Some(h) = model.head() {
                h.forward_inplace(logits.view_mut());
            }
            out_parts.push(to2(logits)?);
            if let Some(pb) = &bar {
                pb.set_message(format!(
                    "loss {:.4}",
                    loss_sum / order[..(bi * cfg.batch_size + chunk.len())].len() as f64
                ));
                pb.inc(1);
            }
        }
        let train_loss = loss_sum / n as f64;
        let views: Vec<_> = out_parts.iter().map(|p| p.view()).collect();
        let probs =
            ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Train(e.to_string()))?;
        let y_ordered = train.y.select(Axis(0), &order);
        let train_metrics = compute_metrics(&probs, &y_ordered, multi_label);
        let val = match valid {
            Some(v) if !v.is_empty() => {
                Some(evaluate(model, v, cfg.batch_size.max(256), multi_label)?)
            }
            _ => None,
        };
        let secs = t0.elapsed().as_secs_f64();
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
        row.push(gn_sum / steps as f64);
        row.push(gn_max);
        row.push(secs);
        history.rows.push(row);
        let monitor = val.as_ref().map(|e| e.loss).unwrap_or(train_loss);
        if !monitor.is_finite() {
            if let Some(dir) = &cfg.history_dir {
                history.save(dir)?;
            }
            let where_ = match valid {
                Some(v) if val.is_some() => {
                    format!(
                        "validation {}",
                        locate_eval(model, v, cfg.batch_size.max(256))
                    )
                }
                _ => "training loss".into(),
            };
            return Err(Error::Train(format!(
                "non-finite {} ({monitor}) at epoch {epoch}, after global step {step}: {where_}{ckpt_note}",
                if val.is_some() { "validation loss" } else { "training loss" }
            )));
        }
        let improved = monitor < best;
        if improved {
            best = monitor;
            history.best_epoch = epoch;
            wait = 0;
            best_snap = Some(snapshot(model));
            if let Some(p) = &cfg.checkpoint {
                crate::weights::save(model, p)?;
                ckpt_note = format!(
                    "; the last good checkpoint is {} (epoch {epoch})",
                    p.display()
                );
            }
        } else {
            wait += 1;
        }
        let mut line = format!(
            "epoch {epoch:>3}/{}  {}",
            cfg.epochs,
            fmt_metrics("", train_loss, &train_metrics)
        );
        if let Some(e) = &val {
            line.push_str(&format!("  {}", fmt_metrics("val_", e.loss, &e.metrics)));
        }
        line.push_str(&format!(
            "  grad_norm {:.4}  {secs:.2}s{}",
            gn_sum / steps as f64,
            if improved { "  *" } else { "" }
        ));
        if let Some(dir) = &cfg.history_dir {
            history.save(dir)?;
        }
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        if !quiet {
            eprintln!("{line}");
        }
        if cfg.patience.is_some_and(|p| wait >= p) {
            history.stopped_early = true;
            if !quiet {
                eprintln!(
                    "early stopping: no improvement for {wait} epochs; keeping epoch {}",
                    history.best_epoch
                );
            }
            break;
        }
    }
    if let Some(s) = best_snap {
        restore(model, &s);
    }
    model.set_need_input_grad(need_input_grad);
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_backward_names_the_output_gradient_or_the_parameter() {
        let spec = crate::spec::ModelSpec::from_json(
            r#"{"input_shape": [6, 4], "layers": [
              {"type": "conv1d", "filters": 3, "kernel_size": 3, "activation": "relu"},
              {"type": "flatten"},
              {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
            "t",
        )
        .unwrap();
        let mut m = Sequential::<f64>::from_spec(&spec, 1).unwrap();
        let x = crate::gradcheck::random_array(&[2, 6, 4], -1.0, 1.0, 3);
        m.zero_grad();
        m.forward_logits(x.view(), Mode::Train).unwrap();
        let g = crate::gradcheck::random_array(&[2, 2], -1.0, 1.0, 4);
        m.backward_logits(g.view()).unwrap();
        assert_eq!(locate_backward(&m), None);
        // a non-finite parameter gradient with finite output gradients names the parameter
        for (n, p) in m.named_params_mut() {
            if n == "layers.2.weight" {
                p.grad[[1, 0]] = f64::INFINITY;
            }
        }
        assert_eq!(
            locate_backward(&m).unwrap(),
            "first non-finite parameter gradient in layers.2.weight"
        );
        // a NaN loss gradient: the last layer's output gradient is named first
        m.zero_grad();
        m.forward_logits(x.view(), Mode::Train).unwrap();
        let mut g = g.clone();
        g[[0, 1]] = f64::NAN;
        m.backward_logits(g.view()).unwrap();
        assert_eq!(
            locate_backward(&m).unwrap(),
            "first non-finite gradient at the output of layer #2 (dense) (the loss gradient)"
        );
    }
}
