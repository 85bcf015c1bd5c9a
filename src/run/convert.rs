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

/// Converts a Keras model (and its weights, when known) into `out`.
pub fn convert(from: &Path, out: &Path, keras_weights: Option<&Path>) -> Result<Converted> {
    let (model, vars) = read_keras(from, keras_weights)?;
    // Check everything before writing anything.
    let mapped = match &vars {
        Some((v, origin)) => {
            let m = keras::map_weights(&model, v, origin)?;
            let dtype = weights::dtype_of(&m).map_err(|msg| Error::Weights {
                path: origin.clone(),
                msg,
            })?;
            let n = check::<f64>(&model, &m, origin)?;
            Some((m, dtype, n, origin.clone()))
        }
        None => {
            Sequential::<f32>::from_spec(&model.spec, 0)?;
            None
        }
    };
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let model_json = out.join("model.json");
    let weights_path = out.join("weights.safetensors");
    let weights = match mapped {
        Some((m, dtype, n, origin)) => {
            if dtype == "F64" {
                save::<f64>(&model, &m, &weights_path, &origin)?;
            } else {
                save::<f32>(&model, &m, &weights_path, &origin)?;
            }
            Some((weights_path, n, dtype))
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

/// Keras variables by name, with where they were read from.
type Vars = (std::collections::BTreeMap<String, StoredTensor>, String);

/// Reads a Keras model (a `.keras` archive or Keras' model JSON) and its variables: from
/// `keras_weights` when given, else from the archive's `model.weights.h5` (none for model JSON).
fn read_keras(from: &Path, keras_weights: Option<&Path>) -> Result<(KerasModel, Option<Vars>)> {
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
        (None, Some(h5)) => Some(read_h5(&h5, from)?),
        (None, None) => None,
    };
    Ok((model, vars))
}

/// A Keras model (as [`convert`] reads it) built in memory in `T`, with the Keras weights
/// when the file holds them (converted to `T`), else seeded initial weights (`seed`).
pub fn load_keras<T: Float>(
    from: &Path,
    keras_weights: Option<&Path>,
    seed: u64,
) -> Result<Sequential<T>> {
    let (model, vars) = read_keras(from, keras_weights)?;
    let mut seq = Sequential::<T>::from_spec(&model.spec, seed)?;
    if let Some((v, origin)) = vars {
        let m = keras::map_weights(&model, &v, &origin)?;
        load_as::<T>(&mut seq, &m, &origin)?;
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

/// Builds the model and loads the mapped weights (all names and shapes checked); returns the
/// parameter count.
fn check<T: Float>(
    model: &KerasModel,
    m: &std::collections::BTreeMap<String, StoredTensor>,
    origin: &str,
) -> Result<usize> {
    let mut seq = Sequential::<T>::from_spec(&model.spec, 0)?;
    // Compare in the model's own dtype.
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

#[cfg(feature = "hdf5")]
fn read_h5(
    h5: &[u8],
    from: &Path,
) -> Result<(std::collections::BTreeMap<String, StoredTensor>, String)> {
    let origin = format!("{}:model.weights.h5", from.display());
    Ok((archive::vars_from_h5(h5, &origin)?, origin))
}

#[cfg(not(feature = "hdf5"))]
fn read_h5(
    _h5: &[u8],
    from: &Path,
) -> Result<(std::collections::BTreeMap<String, StoredTensor>, String)> {
    Err(Error::Usage(format!(
        "{}: reading model.weights.h5 needs seqgrad built with --features hdf5 (and \
         libhdf5-dev); or dump the weights with `python python/keras_to_seqgrad.py {} \
         vars.safetensors` and pass --keras-weights vars.safetensors",
        from.display(),
        from.display()
    )))
}
