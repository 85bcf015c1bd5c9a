//! A Keras model (a `.keras` archive, or Keras' model JSON) to seqgrad's `model.json` and
//! `weights.safetensors` (PyTorch names), as `seqgrad convert` does. See `docs/keras.md`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keras::{self, archive, KerasModel};
use crate::model::Sequential;
use crate::tensor::Float;
use crate::weights::{self, StoredTensor};

/// What `convert` produced.
#[derive(Debug)]
pub struct Converted {
    pub model_json: PathBuf,
    pub weights: Option<(PathBuf, usize, &'static str)>,
}

/// A Keras model read in: its seqgrad form and, when known, its weights under PyTorch names.
#[derive(Debug)]
pub struct KerasImport {
    pub model: KerasModel,
    pub weights: Option<ImportedWeights>,
}

/// Keras weights mapped to seqgrad's PyTorch names, checked against the model.
#[derive(Debug)]
pub struct ImportedWeights {
    pub tensors: std::collections::BTreeMap<String, StoredTensor>,
    /// `"F32"` or `"F64"`: the Keras variables' dtype.
    pub dtype: &'static str,
    pub param_count: usize,
    /// Where the variables were read from (`m.keras:model.weights.h5`, or the
    /// `keras_weights` file).
    pub origin: String,
}

/// Reads a Keras model (a `.keras` archive, or Keras model JSON) and its weights: from
/// `keras_weights` when given (an HDF5 `.weights.h5` or a safetensors dump), else from the
/// archive's `model.weights.h5`. Every name and shape is checked against the model.
pub fn read_keras(from: &Path, keras_weights: Option<&Path>) -> Result<KerasImport> {
    let bytes = std::fs::read(from).map_err(|e| Error::io(from, e))?;
    let (model, h5) = if keras::looks_like_archive(&bytes) {
        let a = keras::read_archive(from)?;
        (a.model, a.weights_h5)
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::Spec {
            path: from.display().to_string(),
            msg: "neither a .keras archive nor Keras model JSON (not UTF-8 text)".into(),
        })?;
        (
            keras::model_from_keras_json(text, &from.display().to_string())?,
            None,
        )
    };
    let vars = match (keras_weights, h5) {
        (Some(p), _) => Some((archive::read_vars(p)?, p.display().to_string())),
        (None, Some(h5)) => {
            let origin = format!("{}:model.weights.h5", from.display());
            Some((archive::vars_from_h5(&h5, &origin)?, origin))
        }
        (None, None) => None,
    };
    let weights = match vars {
        Some((v, origin)) => {
            let tensors = keras::map_weights(&model, &v, &origin)?;
            let dtype = weights::dtype_of(&tensors).map_err(|msg| Error::Weights {
                path: origin.clone(),
                msg,
            })?;
            let param_count = check::<f64>(&model, &tensors, &origin)?;
            Some(ImportedWeights {
                tensors,
                dtype,
                param_count,
                origin,
            })
        }
        None => {
            Sequential::<f32>::from_spec(&model.spec, 0)?;
            None
        }
    };
    Ok(KerasImport { model, weights })
}

/// Converts a Keras model (and its weights, when known) into `out`: everything is read and
/// checked before anything is written.
pub fn convert(from: &Path, out: &Path, keras_weights: Option<&Path>) -> Result<Converted> {
    let KerasImport { model, weights } = read_keras(from, keras_weights)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let model_json = out.join("model.json");
    let weights_path = out.join("weights.safetensors");
    let weights = match weights {
        Some(w) => {
            if w.dtype == "F64" {
                save::<f64>(&model, &w.tensors, &weights_path, &w.origin)?;
            } else {
                save::<f32>(&model, &w.tensors, &weights_path, &w.origin)?;
            }
            Some((weights_path, w.param_count, w.dtype))
        }
        None => None,
    };
    weights::write_atomic(
        &model_json,
        format!("{}\n", model.spec.to_json()).as_bytes(),
    )?;
    Ok(Converted {
        model_json,
        weights,
    })
}

/// A Keras model (as [`convert`] reads it) built in memory in `T`, with the Keras weights
/// when the file holds them (converted to `T`), else seeded initial weights (`seed`).
pub fn load_keras<T: Float>(
    from: &Path,
    keras_weights: Option<&Path>,
    seed: u64,
) -> Result<Sequential<T>> {
    let KerasImport { model, weights } = read_keras(from, keras_weights)?;
    let mut seq = Sequential::<T>::from_spec(&model.spec, seed)?;
    if let Some(w) = weights {
        load_as::<T>(&mut seq, &w.tensors, &w.origin)?;
    }
    Ok(seq)
}

/// Loads mapped weights into `seq`, converted to `T` whatever their dtype (names and shapes
/// checked).
fn load_as<T: Float>(
    seq: &mut Sequential<T>,
    m: &std::collections::BTreeMap<String, StoredTensor>,
    origin: &str,
) -> Result<()> {
    let relabelled = m
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                StoredTensor {
                    dtype: T::DTYPE,
                    array: t.array.clone(),
                },
            )
        })
        .collect();
    weights::load_from(seq, &relabelled).map_err(|msg| Error::Weights {
        path: origin.to_string(),
        msg,
    })
}

/// Builds the model and loads the mapped weights (all names and shapes checked, in the
/// model's own dtype); returns the parameter count.
fn check<T: Float>(
    model: &KerasModel,
    m: &std::collections::BTreeMap<String, StoredTensor>,
    origin: &str,
) -> Result<usize> {
    let mut seq = Sequential::<T>::from_spec(&model.spec, 0)?;
    load_as::<T>(&mut seq, m, origin)?;
    Ok(seq.param_count())
}

fn save<T: Float>(
    model: &KerasModel,
    m: &std::collections::BTreeMap<String, StoredTensor>,
    path: &Path,
    origin: &str,
) -> Result<()> {
    let mut seq = Sequential::<T>::from_spec(&model.spec, 0)?;
    weights::load_from(&mut seq, m).map_err(|msg| Error::Weights {
        path: origin.to_string(),
        msg,
    })?;
    weights::save(&seq, path)
}
