//! Resume checkpoints: the full state of an interrupted training run, so that continuing it
//! ends with weights bit-identical to an uninterrupted run.
//!
//! A checkpoint is a folder (`RUN/checkpoint/` for `seqgrad train`) holding:
//! - `weights.safetensors`: the model's current weights (not the best ones);
//! - `state.safetensors` (the model's dtype): the optimizer state `optimizer.state1.<param>` /
//!   `optimizer.state2.<param>`, the current epoch's training-mode outputs
//!   `epoch.outputs`, and callback tensors `callback.<name>.<key>` (e.g. the best weights);
//! - `numbers.safetensors` (F64, exact): `history.rows` and the epoch's partial sums;
//! - `state.json`: step, epoch, batch within the epoch, optimizer step count, history columns,
//!   best epoch, callback JSON states (and, from the CLI, `args.json` next to it).
//!
//! Randomness needs no state: shuffling and augmentation draws are a function of
//! `(seed, epoch)` and dropout masks of `(seed, step)`; resuming replays the augmentation draws
//! of the batches already done. The folder is written to a temporary name and renamed into
//! place, so a checkpoint is either complete or absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, ArrayViewD, Ix2};

use super::callbacks::CallbackState;
use super::trainer::Trainer;
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::Float;
use crate::weights::{read_tensors, write_atomic, write_tensors};

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

impl<T: Float> Trainer<'_, T> {
    /// Writes the model's weights, the loop state and every callback's state into `dir`
    /// (replacing an earlier checkpoint there).
    pub fn save_checkpoint(&self, model: &Sequential<T>, dir: &Path) -> Result<()> {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        self.write_into(model, &tmp)?;
        // Keep files others put there (the CLI's args.json) unless this checkpoint has them.
        if dir.exists() {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let target = tmp.join(e.file_name());
                    if !target.exists() {
                        let _ = std::fs::copy(e.path(), target);
                    }
                }
            }
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
    }

    fn write_into(&self, model: &Sequential<T>, dir: &Path) -> Result<()> {
        let st = &self.state;
        crate::weights::save(model, &dir.join("weights.safetensors"))?;
        let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
        let mut tensors: Vec<(String, ArrayViewD<'_, T>)> = st
            .optimizer
            .state_tensors(&names)?
            .into_iter()
            .map(|(n, a)| (format!("optimizer.{n}"), a))
            .collect();
        let outputs = if st.outputs.is_empty() {
            None
        } else {
            let views: Vec<_> = st.outputs.iter().map(|p| p.view()).collect();
            Some(
                ndarray::concatenate(ndarray::Axis(0), &views)
                    .map_err(|e| bad(dir, e))?
                    .into_dyn(),
            )
        };
        if let Some(o) = &outputs {
            tensors.push(("epoch.outputs".into(), o.view()));
        }
        let mut cb_json = serde_json::Map::new();
        let states: Vec<(String, CallbackState<T>)> = self
            .callbacks
            .iter()
            .filter_map(|cb| cb.save_state().map(|s| (cb.name(), s)))
            .collect();
        for (name, s) in &states {
            cb_json.insert(name.clone(), serde_json::Value::Object(s.json.clone()));
            for (k, a) in &s.tensors {
                tensors.push((format!("callback.{name}.{k}"), a.view()));
            }
        }
        write_tensors(&dir.join("state.safetensors"), &tensors)?;
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
        write_tensors::<f64>(
            &dir.join("numbers.safetensors"),
            &[
                ("history.rows".into(), rows.view()),
                ("epoch.sums".into(), sums.view()),
            ],
        )?;
        let json = serde_json::json!({
            "format": 1,
            "dtype": T::DTYPE,
            "step": st.step,
            "epoch": st.epoch,
            "batch": st.batch,
            "finished": st.finished,
            "optimizer": {"name": st.optimizer.config.name(), "t": st.optimizer.t},
            "history": {"columns": h.columns, "best_epoch": h.best_epoch, "stopped_early": h.stopped_early},
            "callbacks": cb_json,
        });
        write_atomic(
            &dir.join("state.json"),
            (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
        )
    }

    /// Loads a checkpoint written by [`Trainer::save_checkpoint`] into the model and this
    /// trainer (built with the same configuration and callbacks), ready for
    /// [`Trainer::fit`] to continue.
    pub fn load_checkpoint(&mut self, model: &mut Sequential<T>, dir: &Path) -> Result<()> {
        let info = read_state_json(dir)?;
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
        crate::weights::load(model, &dir.join("weights.safetensors"))?;
        let mut tensors = read_tensors(&dir.join("state.safetensors"))?;
        let numbers = read_tensors(&dir.join("numbers.safetensors"))?;
        let st = &mut self.state;
        let opt: Vec<(String, ArrayD<T>)> = tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("optimizer.")
                    .map(|n| (n.to_string(), cast::<T>(&v.array)))
            })
            .collect();
        st.optimizer
            .load_state_tensors(t, opt, &model.param_names_shapes())
            .map_err(|e| bad(dir, e))?;
        st.step = step;
        st.epoch = epoch;
        st.batch = batch as usize;
        st.finished = info
            .get("finished")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        st.outputs = match tensors.remove("epoch.outputs") {
            Some(o) => vec![cast::<T>(&o.array)
                .into_dimensionality::<Ix2>()
                .map_err(|e| bad(dir, e))?],
            None => Vec::new(),
        };
        let h = info
            .get("history")
            .ok_or_else(|| bad(dir, "state.json has no history"))?;
        st.history.columns = h
            .get("columns")
            .and_then(|c| serde_json::from_value::<Vec<String>>(c.clone()).ok())
            .ok_or_else(|| bad(dir, "state.json has no history columns"))?;
        st.history.best_epoch = h.get("best_epoch").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        st.history.stopped_early = h
            .get("stopped_early")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let rows = numbers
            .get("history.rows")
            .ok_or_else(|| bad(dir, "numbers.safetensors has no history.rows"))?;
        st.history.rows = rows
            .array
            .outer_iter()
            .map(|r| r.iter().copied().collect())
            .collect();
        let sums = numbers
            .get("epoch.sums")
            .map(|s| s.array.iter().copied().collect::<Vec<f64>>())
            .filter(|s| s.len() == 5)
            .ok_or_else(|| bad(dir, "numbers.safetensors has no epoch.sums"))?;
        (
            st.loss_sum,
            st.gn_sum,
            st.gn_max,
            st.seconds,
            st.best_monitor,
        ) = (sums[0], sums[1], sums[2], sums[3], sums[4]);
        let cb_json = info
            .get("callbacks")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        for cb in self.callbacks.iter_mut() {
            let name = cb.name();
            let prefix = format!("callback.{name}.");
            let ts: BTreeMap<String, ArrayD<T>> = tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&prefix)
                        .map(|key| (key.to_string(), cast::<T>(&v.array)))
                })
                .collect();
            let json = cb_json.get(&name).and_then(|v| v.as_object()).cloned();
            if json.is_some() || !ts.is_empty() {
                cb.load_state(CallbackState {
                    json: json.unwrap_or_default(),
                    tensors: ts,
                })?;
            }
        }
        Ok(())
    }
}

/// The parsed `state.json` of a checkpoint folder.
pub fn read_state_json(dir: &Path) -> Result<serde_json::Value> {
    let p = dir.join("state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| bad(dir, format!("state.json: {e}")))
}

/// For a run folder that holds an interrupted run: a sentence saying so (where it stopped and
/// how to continue). `None` for a finished run.
pub fn unfinished(run: &Path) -> Option<String> {
    let info = read_state_json(&dir_of(run)).ok()?;
    let epoch = info.get("epoch").and_then(|v| v.as_u64()).unwrap_or(0);
    let step = info.get("step").and_then(|v| v.as_u64()).unwrap_or(0);
    Some(format!(
        "run {} is unfinished (interrupted in epoch {epoch} after step {step}); continue it with `seqgrad train --resume {}`",
        run.display(),
        run.display()
    ))
}

/// Checks a run folder before its weights are loaded: an unfinished run with no weights yet
/// (interrupted before its first epoch ended) is an error saying so; an unfinished run with
/// best-so-far weights gets a warning on stderr.
pub fn check_run_finished(run: &Path) -> Result<()> {
    if let Some(msg) = unfinished(run) {
        if !run.join("weights.safetensors").exists() {
            return Err(Error::Usage(format!(
                "{msg}; it has no weights yet (no epoch finished)"
            )));
        }
        eprintln!("seqgrad: warning: {msg}; using the best weights so far");
    }
    Ok(())
}
