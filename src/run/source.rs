//! Where a model, its weights and its class names come from, for the commands that run a model
//! in any element type (`grad`, `saliency`, `gradcheck`): a run folder, or a model file with
//! optional weights (seeded initial weights without); and which records of a data file to use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::DataOptions;
use crate::data::{self, Dataset, Labels, RawData, ReadOptions};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::spec::ModelSpec;
use crate::tensor::Float;
use crate::weights::{self, StoredTensor};

/// Which records of a data file to use: the first `records`, or those with `ids` (in that
/// order); neither: a default count, or all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pick {
    pub records: Option<usize>,
    pub ids: Vec<String>,
}

impl Pick {
    /// The indices of the picked records (`default`: how many of the first records to take
    /// when neither --records nor --ids is given; `None`: all).
    pub fn pick(&self, raw: &RawData, default: Option<usize>) -> Result<Vec<usize>> {
        let n = raw.records.len();
        if !self.ids.is_empty() {
            return self
                .ids
                .iter()
                .map(|id| {
                    raw.records
                        .iter()
                        .position(|r| &r.id == id)
                        .ok_or_else(|| Error::Data {
                            path: raw.path.clone(),
                            msg: format!("no record with id {id:?} (--ids)"),
                        })
                })
                .collect();
        }
        let take = match (self.records, default) {
            (Some(0), _) => return Err(Error::Usage("--records must be at least 1".into())),
            (Some(k), _) | (None, Some(k)) => k.min(n),
            (None, None) => n,
        };
        if take == 0 {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: "no records".into(),
            });
        }
        Ok((0..take).collect())
    }
}

/// A class given by name (as in labels.json) or 0-based index.
pub fn resolve_target(s: &str, labels: Option<&Labels>, outputs: usize) -> Result<usize> {
    if let Some(l) = labels.filter(|l| l.binary) {
        // a binary head has one output: the logit of the positive class
        return match (l.positive(), s) {
            (Some(p), _) if p == s => Ok(0),
            (_, "0") => Ok(0),
            _ => Err(Error::Usage(format!(
                "--target {s:?}: this binary model has one output, the logit of {:?} (give --target {:?} or 0)",
                l.positive().unwrap_or(""),
                l.positive().unwrap_or("")
            ))),
        };
    }
    if let Some(i) = labels.and_then(|l| l.index(s)) {
        return Ok(i);
    }
    match s.parse::<usize>() {
        Ok(i) if i < outputs => Ok(i),
        _ => Err(Error::Usage(format!(
            "--target {s:?} is neither a class name{} nor an output index 0–{}",
            labels
                .map(|l| format!(" ({})", l.classes.join(", ")))
                .unwrap_or_else(|| " (no labels.json is known)".into()),
            outputs.saturating_sub(1)
        ))),
    }
}

/// Where the model, its weights and its class names come from (data modes).
pub struct Source {
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
    pub labels: Option<PathBuf>,
}

impl Source {
    /// From --run, or --model with optional --weights (labels.json next to the weights, if any).
    pub fn resolve(
        run: Option<&Path>,
        model: Option<&Path>,
        weights: Option<&Path>,
    ) -> Result<Source> {
        match (run, model) {
            (Some(r), _) => {
                let labels = r.join("labels.json");
                Ok(Source {
                    model: r.join("model.json"),
                    weights: Some(r.join("weights.safetensors")),
                    labels: labels.exists().then_some(labels),
                })
            }
            (None, Some(m)) => {
                let labels =
                    weights.map(|w| w.parent().unwrap_or(Path::new(".")).join("labels.json"));
                Ok(Source {
                    model: m.to_path_buf(),
                    weights: weights.map(Path::to_path_buf),
                    labels: labels.filter(|l| l.exists()),
                })
            }
            (None, None) => Err(Error::Usage(
                "give --run RUN_DIR, or --model M.json (and --weights W.safetensors)".into(),
            )),
        }
    }
}

/// A weights file as read: its path, its tensors by name, and their dtype.
pub type ReadWeights<'a> = (&'a Path, BTreeMap<String, StoredTensor>, &'static str);

impl Source {
    /// Reads the weights (if any), leaving out the tensors a `grad` output adds: the tensors,
    /// and their dtype, which must be `dtype` when one is asked for.
    pub fn read_weights(&self, dtype: Option<&str>) -> Result<Option<ReadWeights<'_>>> {
        let Some(path) = &self.weights else {
            return Ok(None);
        };
        let (t, found) = read_weights(path)?;
        if let Some(d) = dtype.filter(|&d| d != found) {
            return Err(Error::Usage(format!(
                "--dtype {} but the weights file {} is {found}; the model runs in the weights' dtype (drop --dtype)",
                d.to_lowercase(),
                path.display()
            )));
        }
        Ok(Some((path.as_path(), t, found)))
    }
}

/// Reads a weights file, leaving out the tensors a `grad` output adds; returns its dtype too.
pub fn read_weights(path: &Path) -> Result<(BTreeMap<String, StoredTensor>, &'static str)> {
    let mut t = weights::read_tensors(path)?;
    t.retain(|name, _| !is_grad_output(name));
    let dtype = weights::dtype_of(&t).map_err(|msg| Error::Weights {
        path: path.display().to_string(),
        msg,
    })?;
    Ok((t, dtype))
}

/// Builds a model and loads weights into it, converting them to `T` whatever their dtype.
pub fn build_model<T: Float>(
    spec: &ModelSpec,
    seed: u64,
    stored: Option<(&Path, &BTreeMap<String, StoredTensor>)>,
) -> Result<Sequential<T>> {
    let mut model = Sequential::<T>::from_spec(spec, seed)?;
    if let Some((path, tensors)) = stored {
        let mut as_t = tensors.clone();
        for t in as_t.values_mut() {
            t.dtype = T::DTYPE;
        }
        weights::load_from(&mut model, &as_t).map_err(|msg| Error::Weights {
            path: path.display().to_string(),
            msg,
        })?;
    }
    Ok(model)
}

/// Reads `path` with the data options, keeps the picked records and encodes them. With
/// `need_labels` the records must carry labels (of `labels`' classes, or of the file's own
/// sorted classes when `labels` is None); otherwise labels are ignored. `model` gives the
/// number of outputs and its head (a binary head), and whether records may have mixed lengths
/// (a model of any length: the data set then keeps each record's length).
pub fn load_records<T: Float>(
    path: &Path,
    data: &DataOptions,
    pick: &Pick,
    default_count: Option<usize>,
    labels: Option<&Labels>,
    model: &crate::model::Sequential<T>,
    need_labels: bool,
) -> Result<(Dataset<T>, Labels)> {
    let policy = data.policy()?.for_model(model);
    let outputs = model.output_shape().iter().product::<usize>();
    let head = model.head();
    let opts = ReadOptions {
        require_labels: need_labels,
        multi_label: data.multi_label || labels.is_some_and(|l| l.multi_label),
        ..data.read_options()
    };
    let mut raw = data::read(path, &opts)?;
    let labels = match labels {
        Some(l) => l.clone(),
        None if need_labels => Labels::from_data(&raw)?.for_model(&[outputs], head, &raw.path)?,
        None => Labels {
            classes: (0..outputs).map(|i| format!("class{i}")).collect(),
            multi_label: false,
            binary: false,
        },
    };
    let idx = pick.pick(&raw, default_count)?;
    raw.records = idx.iter().map(|&i| raw.records[i].clone()).collect();
    let ds = data::encode::<T>(&raw, &labels, policy, need_labels)?;
    Ok((ds, labels))
}

/// Names a `grad` output file holds besides the weights.
fn is_grad_output(name: &str) -> bool {
    name == "output"
        || name == "input_grad"
        || name == "output_grad_norm"
        || name.starts_with("grad.")
        || name.starts_with("step_grad_norm.")
}

/// For the commands that explain classes (`grad --data`, `saliency`): the model must have a flat
/// output (`what` names the command in the error), the data options' length must fit its input,
/// and `target` (a class name or index) is resolved. Returns the output count and the target.
pub fn class_target<T: Float>(
    model: &Sequential<T>,
    model_path: &Path,
    what: &str,
    data: &DataOptions,
    labels: Option<&Labels>,
    target: Option<&str>,
) -> Result<(usize, Option<usize>)> {
    let outputs = match model.output_shape() {
        [k] => *k,
        other => {
            return Err(Error::Usage(format!(
                "{what} needs a model with a flat output (classes), but {} outputs {}",
                model_path.display(),
                crate::tensor::fmt_shape(other)
            )))
        }
    };
    if let Some(t) = data.policy()?.target()? {
        crate::train::check_input_len(model, t)?;
    }
    let target = target
        .map(|t| resolve_target(t, labels, outputs))
        .transpose()?;
    Ok((outputs, target))
}
