//! Resume checkpoints: the full state of a training run, so that continuing it ends with
//! weights bit-identical to an uninterrupted run.
//!
//! A checkpoint is a folder (`RUN/checkpoint/` for `seqgrad train`) holding:
//! - `weights.safetensors`: the model's current weights (not the best ones);
//! - `state.safetensors` (the model's dtype): the optimizer state `optimizer.state1.<param>` /
//!   `optimizer.state2.<param>`, the current epoch's training-mode outputs
//!   `epoch.outputs`, and callback tensors `callback.<name>.<key>` (e.g. the best weights);
//! - `numbers.safetensors` (F64, exact): `history.rows` and the epoch's partial sums;
//! - `state.json`: dtype, step, epoch, batch within the epoch, optimizer step count, history
//!   columns, best epoch, callback JSON states;
//! - files the caller adds ([`Trainer::checkpoint_file`]; the CLI's `args.json`);
//! - `manifest.json`: size and CRC-32 of every file above.
//!
//! Randomness needs no state: shuffling and augmentation draws are a function of
//! `(seed, epoch)` and dropout masks of `(seed, step)`; resuming replays the augmentation draws
//! of the batches already done.
//!
//! With [`Trainer::checkpoint_every`] the loop writes one at the start (step 0), then every
//! epoch or every N steps: the state is copied on the training thread (a memory copy) and
//! written on a background thread while training goes on; a write still running when the next
//! checkpoint is due is waited for. Writes are atomic and durable ([`super::durable`]): the
//! folder or the one before it (`checkpoint.prev`) is complete at every instant. A write that
//! fails prints one warning line, keeps the previous checkpoint and training goes on.
//!
//! Loading checks the manifest (a damaged checkpoint falls back to the previous one, with a
//! warning) and then every tensor against the model: name, shape, dtype, and no gaps in the
//! optimizer moments or the best weights' indices. Any mismatch is a one-line error naming the
//! tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{Array2, ArrayD, Ix2};

use super::callbacks::{BestWeights, Callback, CallbackState};
use super::durable::{self, Content, Found};
use super::trainer::Trainer;
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::{fmt_shape, Float};
use crate::weights::{read_tensors, StoredTensor};

pub use super::durable::{prev_of, verify, Manifest};

/// The checkpoint folder of a run folder.
pub fn dir_of(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

fn bad(dir: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Train(format!("checkpoint {}: {msg}", dir.display()))
}

fn cast<T: Float>(a: &ArrayD<f64>) -> ArrayD<T> {
    a.mapv(T::lit)
}

/// How often [`Trainer::fit`] writes a checkpoint (`--checkpoint-every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointEvery {
    /// After every N optimizer steps.
    Steps(u64),
    /// At the end of every epoch.
    #[default]
    Epoch,
    /// Never (only when asked: [`Trainer::save_checkpoint`]).
    Never,
}

impl std::str::FromStr for CheckpointEvery {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "epoch" => Ok(CheckpointEvery::Epoch),
            "never" => Ok(CheckpointEvery::Never),
            n => match n.parse::<u64>() {
                Ok(k) if k >= 1 => Ok(CheckpointEvery::Steps(k)),
                _ => Err(Error::Usage(format!(
                    "--checkpoint-every must be a number of steps (at least 1), epoch or never, got {s:?}"
                ))),
            },
        }
    }
}

impl std::fmt::Display for CheckpointEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointEvery::Steps(n) => write!(f, "{n}"),
            CheckpointEvery::Epoch => f.write_str("epoch"),
            CheckpointEvery::Never => f.write_str("never"),
        }
    }
}

/// Where and how often a trainer writes checkpoints, and the write in progress.
#[derive(Default)]
pub(crate) struct Checkpoints {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) every: CheckpointEvery,
    extra: Vec<(String, Vec<u8>)>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// A failed write was reported and no write succeeded since (one warning per streak).
    warned: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Waits for the background write, if one is running.
    pub(crate) fn wait(&mut self) {
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

fn report(r: Result<()>, warned: &AtomicBool, dir: &Path, step: u64) {
    match r {
        Ok(()) => warned.store(false, Ordering::SeqCst),
        Err(e) => {
            if !warned.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "seqgrad: warning: could not write the checkpoint of step {step} to {}: {e}; the previous checkpoint is kept and training goes on",
                    dir.display()
                );
            }
        }
    }
}

/// Everything a checkpoint holds, copied out of the trainer so it can be written elsewhere.
pub(crate) struct Snapshot<T> {
    step: u64,
    epoch: usize,
    weights: Vec<(String, ArrayD<T>)>,
    state: Vec<(String, ArrayD<T>)>,
    numbers: Vec<(String, ArrayD<f64>)>,
    json: serde_json::Value,
    extra: Vec<(String, Vec<u8>)>,
}

/// A safetensors file holding `tensors` (data in name order, header keys sorted), streamed
/// from the arrays: its length is known before a byte is written.
fn safetensors_content<A: Float>(
    tensors: &[(String, ArrayD<A>)],
    meta: Option<BTreeMap<String, String>>,
) -> Content<'_> {
    let width = if A::DTYPE == "F64" { 8 } else { 4 };
    let mut order: Vec<&(String, ArrayD<A>)> = tensors.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    if let Some(m) = meta {
        header.insert("__metadata__".into(), serde_json::json!(m));
    }
    let mut offset = 0usize;
    for (name, a) in &order {
        let end = offset + a.len() * width;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": A::DTYPE, "shape": a.shape(), "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&header).unwrap_or_default();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let len = 8 + json.len() as u64 + offset as u64;
    Content::Stream {
        len,
        write: Box::new(move |w| {
            w.write_all(&(json.len() as u64).to_le_bytes())?;
            w.write_all(&json)?;
            let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
            for (_, a) in &order {
                for v in a.iter() {
                    if width == 8 {
                        buf.extend_from_slice(&v.to_f64c().to_le_bytes());
                    } else {
                        buf.extend_from_slice(&(v.to_f64c() as f32).to_le_bytes());
                    }
                    if buf.len() >= 1 << 16 {
                        w.write_all(&buf)?;
                        buf.clear();
                    }
                }
            }
            w.write_all(&buf)
        }),
    }
}

impl<T: Float> Snapshot<T> {
    fn write(&self, dir: &Path) -> Result<()> {
        let meta: BTreeMap<String, String> = [
            ("format".to_string(), "pt".to_string()),
            (
                "seqgrad_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ]
        .into();
        let mut files = vec![
            (
                "weights.safetensors".to_string(),
                safetensors_content(&self.weights, Some(meta)),
            ),
            (
                "state.safetensors".to_string(),
                safetensors_content(&self.state, None),
            ),
            (
                "numbers.safetensors".to_string(),
                safetensors_content(&self.numbers, None),
            ),
            (
                "state.json".to_string(),
                Content::Bytes(
                    (serde_json::to_string_pretty(&self.json).unwrap_or_default() + "\n")
                        .into_bytes(),
                ),
            ),
        ];
        files.extend(
            self.extra
                .iter()
                .map(|(n, b)| (n.clone(), Content::Bytes(b.clone()))),
        );
        durable::write_dir(dir, &files, self.step, self.epoch)
    }
}

impl<T: Float> Trainer<'_, T> {
    /// Makes [`Trainer::fit`] write checkpoints into `dir` (see the module documentation): one
    /// before the first step of a fresh run, then as `every` says.
    pub fn checkpoint_every(
        &mut self,
        dir: impl Into<PathBuf>,
        every: CheckpointEvery,
    ) -> &mut Self {
        self.ckpt.dir = Some(dir.into());
        self.ckpt.every = every;
        self
    }

    /// Adds a file (e.g. the settings a run was started with) to every checkpoint written.
    pub fn checkpoint_file(&mut self, name: &str, bytes: Vec<u8>) -> &mut Self {
        self.ckpt.extra.retain(|(n, _)| n != name);
        self.ckpt.extra.push((name.to_string(), bytes));
        self
    }

    /// Copies the model's weights, the loop state and every callback's state.
    pub(crate) fn snapshot(&self, model: &Sequential<T>) -> Result<Snapshot<T>> {
        let st = &self.state;
        let weights: Vec<(String, ArrayD<T>)> = model
            .named_params()
            .into_iter()
            .map(|(n, p)| (n, p.value.clone()))
            .collect();
        let mut state: Vec<(String, ArrayD<T>)> = st
            .optimizer
            .state_tensors()?
            .into_iter()
            .map(|(n, a)| (format!("optimizer.{n}"), a.to_owned()))
            .collect();
        if !st.outputs.is_empty() {
            let views: Vec<_> = st.outputs.iter().map(|p| p.view()).collect();
            let o = ndarray::concatenate(ndarray::Axis(0), &views)
                .map_err(|e| Error::Train(format!("checkpoint: epoch outputs: {e}")))?;
            state.push(("epoch.outputs".into(), o.into_dyn()));
        }
        let mut cb_json = serde_json::Map::new();
        for cb in &self.callbacks {
            if let Some(s) = cb.save_state() {
                let name = cb.name();
                cb_json.insert(name.clone(), serde_json::Value::Object(s.json));
                for (k, a) in s.tensors {
                    state.push((format!("callback.{name}.{k}"), a));
                }
            }
        }
        let h = &st.history;
        let rows = Array2::from_shape_fn((h.rows.len(), h.columns.len()), |(i, j)| {
            h.rows[i].get(j).copied().unwrap_or(f64::NAN)
        })
        .into_dyn();
        let sums = ndarray::arr1(&[
            st.loss_sum,
            st.gn_sum,
            st.gn_max,
            st.seconds,
            st.best_monitor,
        ])
        .into_dyn();
        let json = serde_json::json!({
            "format": 1,
            "dtype": T::DTYPE,
            "step": st.step,
            "epoch": st.epoch,
            "batch": st.batch,
            "finished": st.finished,
            "stopping": st.stopping || self.pending == Some(super::callbacks::Request::Stop),
            "optimizer": {"name": st.optimizer.config.name(), "t": st.optimizer.t},
            "history": {"columns": h.columns, "best_epoch": h.best_epoch, "stopped_early": h.stopped_early},
            "callbacks": cb_json,
        });
        Ok(Snapshot {
            step: st.step,
            epoch: st.epoch,
            weights,
            state,
            numbers: vec![("history.rows".into(), rows), ("epoch.sums".into(), sums)],
            json,
            extra: self.ckpt.extra.clone(),
        })
    }

    /// Writes the model's weights, the loop state and every callback's state into `dir` now
    /// (after any background write has finished), atomically and durably; the checkpoint that
    /// was there becomes `DIR.prev`.
    pub fn save_checkpoint(&mut self, model: &Sequential<T>, dir: &Path) -> Result<()> {
        self.ckpt.wait();
        self.snapshot(model)?.write(dir)
    }

    /// The checkpoint the loop writes at step 0 of a fresh run (written before training starts,
    /// so a run killed at any later moment can be resumed).
    pub(crate) fn first_checkpoint(&mut self, model: &Sequential<T>) {
        let st = &self.state;
        let fresh = st.step == 0 && st.epoch == 1 && st.batch == 0 && !st.finished;
        if fresh && self.ckpt.every != CheckpointEvery::Never {
            if let Some(dir) = self.ckpt.dir.clone() {
                self.ckpt.wait();
                let r = self.snapshot(model).and_then(|s| s.write(&dir));
                report(r, &self.ckpt.warned, &dir, 0);
            }
        }
    }

    /// After a step (`epoch_end` false) or at the end of an epoch (the state already moved to
    /// the next epoch): starts a background checkpoint write if one is due.
    pub(crate) fn periodic_checkpoint(&mut self, model: &Sequential<T>, epoch_end: bool) {
        let due = match self.ckpt.every {
            CheckpointEvery::Epoch => epoch_end,
            CheckpointEvery::Steps(n) => !epoch_end && self.state.step.is_multiple_of(n),
            CheckpointEvery::Never => false,
        };
        let Some(dir) = self.ckpt.dir.clone().filter(|_| due) else {
            return;
        };
        if self.pending == Some(super::callbacks::Request::Interrupt) {
            return; // the caller saves this state itself
        }
        self.ckpt.wait();
        let step = self.state.step;
        let snap = match self.snapshot(model) {
            Ok(s) => s,
            Err(e) => return report(Err(e), &self.ckpt.warned, &dir, step),
        };
        let warned = Arc::clone(&self.ckpt.warned);
        let d = dir.clone();
        let spawned = std::thread::Builder::new()
            .name("seqgrad-checkpoint".into())
            .spawn(move || report(snap.write(&d), &warned, &d, step));
        match spawned {
            Ok(h) => self.ckpt.writer = Some(h),
            Err(e) => report(
                Err(Error::Train(format!("cannot start the writer thread: {e}"))),
                &self.ckpt.warned,
                &dir,
                step,
            ),
        }
    }

    /// Loads the newest intact checkpoint of `dir` (`dir`, else `DIR.prev`, with a warning on
    /// stderr when `dir` is damaged) into the model and this trainer (built with the same
    /// configuration and callbacks), ready for [`Trainer::fit`] to continue. Every tensor is
    /// checked against the model first (see the module documentation).
    pub fn load_checkpoint(&mut self, model: &mut Sequential<T>, dir: &Path) -> Result<()> {
        let found = find(dir)?;
        if let Some(w) = &found.warning {
            eprintln!("seqgrad: warning: {w}");
        }
        self.load_from(model, &found.dir)
    }

    fn load_from(&mut self, model: &mut Sequential<T>, dir: &Path) -> Result<()> {
        let info = read_state_json(dir)?;
        let dtype = info.get("dtype").and_then(|v| v.as_str());
        if dtype != Some(T::DTYPE) {
            return Err(bad(
                dir,
                format!(
                    "it was written by a model running in {}, this one runs in {}",
                    dtype.unwrap_or("an unknown dtype"),
                    T::DTYPE
                ),
            ));
        }
        let get_u = |k: &str| {
            info.get(k)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| bad(dir, format!("state.json has no {k}")))
        };
        let (step, epoch, batch) = (get_u("step")?, get_u("epoch")? as usize, get_u("batch")?);
        let t = info
            .pointer("/optimizer/t")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad(dir, "state.json has no optimizer.t"))?;
        let name = info.pointer("/optimizer/name").and_then(|v| v.as_str());
        if name != Some(self.config.optimizer.name()) {
            return Err(bad(
                dir,
                format!(
                    "it was written by optimizer {name:?}, not {}",
                    self.config.optimizer.name()
                ),
            ));
        }
        // The weights first (checked and loaded all or nothing): a callback's state may refer
        // to them. After a later error the model holds them, the trainer is unchanged.
        crate::weights::load(model, &dir.join("weights.safetensors"))?;
        let fresh = &*model;
        let tensors = read_tensors(&dir.join("state.safetensors"))?;
        let numbers = read_tensors(&dir.join("numbers.safetensors"))?;
        for (k, v) in &tensors {
            same_dtype::<T>(dir, k, v)?;
        }
        let params = fresh.param_names_shapes();
        let mut opt: Vec<(String, ArrayD<T>)> = Vec::new();
        let mut outputs = None;
        let mut cb_tensors: BTreeMap<String, BTreeMap<String, ArrayD<T>>> = BTreeMap::new();
        for (k, v) in &tensors {
            if let Some(n) = k.strip_prefix("optimizer.") {
                opt.push((n.to_string(), cast::<T>(&v.array)));
            } else if k == "epoch.outputs" {
                outputs = Some(check_outputs(dir, v, fresh, batch)?);
            } else if let Some((cb, key)) =
                k.strip_prefix("callback.").and_then(|r| r.split_once('.'))
            {
                if !self.callbacks.iter().any(|c| c.name() == cb) {
                    return Err(bad(
                        dir,
                        format!("tensor {k} belongs to no callback of this trainer"),
                    ));
                }
                cb_tensors
                    .entry(cb.to_string())
                    .or_default()
                    .insert(key.to_string(), cast::<T>(&v.array));
            } else {
                return Err(bad(
                    dir,
                    format!("unexpected tensor {k} in state.safetensors"),
                ));
            }
        }
        if batch > 0 && outputs.is_none() {
            return Err(bad(
                dir,
                format!("tensor epoch.outputs is missing but {batch} batch(es) of epoch {epoch} are done"),
            ));
        }
        for which in ["state1", "state2"] {
            let has: Vec<bool> = params
                .iter()
                .map(|(n, _)| opt.iter().any(|(k, _)| *k == format!("{which}.{n}")))
                .collect();
            let count = has.iter().filter(|h| **h).count();
            if count > 0 && count < params.len() {
                let missing = params
                    .iter()
                    .zip(&has)
                    .find(|(_, h)| !**h)
                    .map(|((n, _), _)| n.clone())
                    .unwrap_or_default();
                return Err(bad(
                    dir,
                    format!(
                        "tensor optimizer.{which}.{missing} is missing ({count} of {} parameters have one)",
                        params.len()
                    ),
                ));
            }
        }
        for (n, a) in &opt {
            let pname = n.split_once('.').map(|(_, p)| p).unwrap_or(n);
            match params.iter().find(|(p, _)| p == pname) {
                None => {
                    return Err(bad(
                        dir,
                        format!("tensor optimizer.{n} names no parameter of the model"),
                    ))
                }
                Some((p, shape)) if a.shape() != shape.as_slice() => {
                    return Err(bad(
                        dir,
                        format!(
                            "tensor optimizer.{n} has shape {} but parameter {p} is {}",
                            fmt_shape(a.shape()),
                            fmt_shape(shape)
                        ),
                    ))
                }
                _ => {}
            }
        }
        let mut optimizer = self.state.optimizer.clone();
        optimizer
            .load_state_tensors(t, opt, &params)
            .map_err(|e| bad(dir, e))?;
        let h = info
            .get("history")
            .ok_or_else(|| bad(dir, "state.json has no history"))?;
        let columns = h
            .get("columns")
            .and_then(|c| serde_json::from_value::<Vec<String>>(c.clone()).ok())
            .ok_or_else(|| bad(dir, "state.json has no history columns"))?;
        let rows = numbers
            .get("history.rows")
            .ok_or_else(|| bad(dir, "numbers.safetensors has no history.rows"))?;
        let want_rows = epoch.saturating_sub(1);
        if rows.dtype != "F64"
            || rows.array.ndim() != 2
            || rows.array.shape() != [want_rows, columns.len()]
        {
            return Err(bad(
                dir,
                format!(
                    "tensor history.rows is {} {} but epoch {epoch} with {} columns needs F64 {}",
                    rows.dtype,
                    fmt_shape(rows.array.shape()),
                    columns.len(),
                    fmt_shape(&[want_rows, columns.len()])
                ),
            ));
        }
        let sums = numbers
            .get("epoch.sums")
            .filter(|s| s.dtype == "F64" && s.array.shape() == [5])
            .map(|s| s.array.iter().copied().collect::<Vec<f64>>())
            .ok_or_else(|| bad(dir, "tensor epoch.sums is missing or not F64 [5]"))?;
        let cb_json = info
            .get("callbacks")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        if let Some(k) = cb_json
            .keys()
            .find(|k| !self.callbacks.iter().any(|c| c.name() == **k))
        {
            return Err(bad(
                dir,
                format!("state.json has the state of callback {k:?}, which this trainer lacks"),
            ));
        }
        for cb in self.callbacks.iter_mut() {
            let name = cb.name();
            let ts = cb_tensors.remove(&name).unwrap_or_default();
            let json = cb_json.get(&name).and_then(|v| v.as_object()).cloned();
            if json.is_some() || !ts.is_empty() {
                cb.load_state(CallbackState {
                    json: json.unwrap_or_default(),
                    tensors: ts,
                })
                .and_then(|_| cb.check_state(model))
                .map_err(|e| bad(dir, plain(e)))?;
            }
        }
        let st = &mut self.state;
        st.optimizer = optimizer;
        st.step = step;
        st.epoch = epoch;
        st.batch = batch as usize;
        st.finished = info
            .get("finished")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        st.stopping = info
            .get("stopping")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        st.outputs = outputs.into_iter().collect();
        st.history.columns = columns;
        st.history.best_epoch = h.get("best_epoch").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        st.history.stopped_early = h
            .get("stopped_early")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        st.history.rows = rows
            .array
            .outer_iter()
            .map(|r| r.iter().copied().collect())
            .collect();
        (
            st.loss_sum,
            st.gn_sum,
            st.gn_max,
            st.seconds,
            st.best_monitor,
        ) = (sums[0], sums[1], sums[2], sums[3], sums[4]);
        Ok(())
    }
}

/// A tensor of `state.safetensors` stored in the model's dtype, or an error naming it.
fn same_dtype<T: Float>(dir: &Path, name: &str, v: &StoredTensor) -> Result<()> {
    if v.dtype == T::DTYPE {
        return Ok(());
    }
    Err(bad(
        dir,
        format!(
            "tensor {name} in state.safetensors is {} but the model runs in {}",
            v.dtype,
            T::DTYPE
        ),
    ))
}

/// The message of an error without its kind's prefix (`training: `).
fn plain(e: Error) -> String {
    match e {
        Error::Train(m) => m,
        other => other.to_string(),
    }
}

fn check_outputs<T: Float>(
    dir: &Path,
    v: &StoredTensor,
    model: &Sequential<T>,
    batch: u64,
) -> Result<Array2<T>> {
    let cols: usize = model.output_shape().iter().product();
    let shape = v.array.shape();
    if shape.len() != 2 || shape[1] != cols || batch == 0 {
        return Err(bad(
            dir,
            format!(
                "tensor epoch.outputs has shape {} but the model has {cols} outputs and {batch} batch(es) of this epoch are done",
                fmt_shape(shape)
            ),
        ));
    }
    cast::<T>(&v.array)
        .into_dimensionality::<Ix2>()
        .map_err(|e| bad(dir, e))
}

/// The newest intact checkpoint of `dir` (`dir`, else `DIR.prev`); an error when there is none.
pub fn find(dir: &Path) -> Result<Found> {
    durable::find(dir)?.ok_or_else(|| bad(dir, "there is no checkpoint here"))
}

/// Removes a checkpoint folder, the one kept before it and any half-written ones.
pub fn remove(dir: &Path) -> Result<()> {
    durable::remove(dir)
}

/// Removes the temporary files (`.NAME.tmp-PID-N`) that atomic writes killed midway left in a
/// run folder, as a resumed run starts.
pub fn remove_stale_temps(run: &Path) {
    let Ok(rd) = std::fs::read_dir(run) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with('.')
            && name.rsplit_once(".tmp-").is_some_and(|(_, tail)| {
                !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit() || c == '-')
            });
        if stale && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A file of the newest intact checkpoint of `dir` (e.g. the CLI's `args.json`); `Ok(None)`
/// when `dir` has no checkpoint or the checkpoint lacks the file.
pub fn read_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let Some(found) = durable::find(dir)? else {
        return Ok(None);
    };
    let p = found.dir.join(name);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// The parsed `state.json` of a checkpoint folder.
pub fn read_state_json(dir: &Path) -> Result<serde_json::Value> {
    let p = dir.join("state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| bad(dir, format!("state.json: {e}")))
}

/// For a run folder that holds an unfinished run (interrupted, killed, or crashed; it has a
/// checkpoint): a sentence saying so (where its last checkpoint is and how to continue).
/// `None` for a finished run.
pub fn unfinished(run: &Path) -> Option<String> {
    let how = format!(
        "continue it with `seqgrad train --resume {}`",
        run.display()
    );
    match durable::find(&dir_of(run)) {
        Ok(None) => None,
        Err(e) => Some(format!(
            "run {} is unfinished and its checkpoint is damaged ({})",
            run.display(),
            plain(e)
        )),
        Ok(Some(f)) => {
            let info = read_state_json(&f.dir).ok()?;
            let epoch = info.get("epoch").and_then(|v| v.as_u64()).unwrap_or(1);
            let step = info.get("step").and_then(|v| v.as_u64()).unwrap_or(0);
            Some(format!(
                "run {} is unfinished (its last checkpoint was taken after step {step}, {} epoch(s) done); {how}",
                run.display(),
                epoch.saturating_sub(1)
            ))
        }
    }
}

/// Loads the weights of a run folder into `model`: `RUN/weights.safetensors` for a finished
/// run; for an unfinished one (killed, interrupted or crashed: it has a checkpoint) the best
/// weights of its last intact checkpoint, with a warning on stderr saying so — or an error when
/// no epoch of it finished.
pub fn load_run_weights<T: Float>(model: &mut Sequential<T>, run: &Path) -> Result<()> {
    let Some(msg) = unfinished(run) else {
        return crate::weights::load(model, &run.join("weights.safetensors"));
    };
    let found = find(&dir_of(run)).map_err(|_| Error::Usage(msg.clone()))?;
    let dir = &found.dir;
    let info = read_state_json(dir)?;
    let best_epoch = info
        .pointer("/history/best_epoch")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let json = info
        .pointer("/callbacks/best_weights")
        .and_then(|v| v.as_object())
        .cloned();
    let tensors: BTreeMap<String, ArrayD<T>> = read_tensors(&dir.join("state.safetensors"))?
        .into_iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("callback.best_weights.")?.to_string();
            Some((key, v))
        })
        .map(|(k, v)| {
            same_dtype::<T>(dir, &format!("callback.best_weights.{k}"), &v)?;
            Ok((k, cast::<T>(&v.array)))
        })
        .collect::<Result<_>>()?;
    if json.is_none() && tensors.is_empty() {
        return Err(Error::Usage(format!(
            "{msg}; it has no weights.safetensors yet (no epoch finished)"
        )));
    }
    crate::weights::load(model, &dir.join("weights.safetensors"))?;
    let mut best = BestWeights::<T>::new(None);
    best.load_state(CallbackState {
        json: json.unwrap_or_default(),
        tensors,
    })
    .and_then(|_| Callback::<T>::check_state(&mut best, model))
    .map_err(|e| bad(dir, plain(e)))?;
    best.restore_into(model);
    eprintln!(
        "seqgrad: warning: {msg}; using the best weights of that checkpoint (epoch {best_epoch})"
    );
    Ok(())
}
