//! `.keras` archives (Keras 3's `model.save("m.keras")`): a zip holding `config.json` (the
//! model, as `model.to_json()`), `metadata.json` and `model.weights.h5` (the variables, HDF5).
//!
//! The model is read here, in Rust, always. The HDF5 weights are read in Rust only when seqgrad
//! is built with the `hdf5` feature (it links the system HDF5 library, `libhdf5-dev` on
//! Debian/Ubuntu); without it, `python/keras_to_seqgrad.py` (h5py, no Keras needed) dumps the
//! variables to a safetensors file that [`read_vars`] reads. `docs/keras.md` says why.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{from_value, KerasModel};
use crate::error::{Error, Result};
use crate::weights::StoredTensor;

/// What a `.keras` archive holds.
pub struct KerasArchive {
    pub model: KerasModel,
    /// The bytes of `model.weights.h5`, if the archive has one.
    pub weights_h5: Option<Vec<u8>>,
}

fn aerr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Spec {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Reads a `.keras` archive: converts its `config.json` and keeps the HDF5 weights' bytes.
pub fn read_archive(path: &Path) -> Result<KerasArchive> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| aerr(path, format!("not a readable .keras (zip) archive: {e}")))?;
    let mut read = |name: &str| -> Result<Option<Vec<u8>>> {
        let mut f = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => {
                return Err(aerr(
                    path,
                    format!("cannot read {name} in the archive: {e}"),
                ))
            }
        };
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| aerr(path, format!("cannot read {name} in the archive: {e}")))?;
        Ok(Some(buf))
    };
    let config = read("config.json")?.ok_or_else(|| {
        aerr(
            path,
            "the archive has no config.json (is it a Keras 3 .keras file? Keras 2's .h5 models \
             are not supported: load it in Keras and save it as .keras)",
        )
    })?;
    let weights_h5 = read("model.weights.h5")?;
    let origin = format!("{}:config.json", path.display());
    let v: serde_json::Value = serde_json::from_slice(&config)
        .map_err(|e| aerr(path, format!("config.json is not valid JSON: {e}")))?;
    Ok(KerasArchive {
        model: from_value(&v, &origin)?,
        weights_h5,
    })
}

/// Reads Keras variables dumped to safetensors by `python/keras_to_seqgrad.py` (names are the
/// `model.weights.h5` paths, `layers/conv1d/vars/0` …).
pub fn read_vars(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    crate::weights::read_tensors(path)
}

/// Reads Keras variables from the HDF5 bytes of `model.weights.h5`.
#[cfg(feature = "hdf5")]
pub fn vars_from_h5(bytes: &[u8], origin: &str) -> Result<BTreeMap<String, StoredTensor>> {
    use ndarray::{ArrayD, IxDyn};
    let werr = |msg: String| Error::Weights {
        path: origin.to_string(),
        msg,
    };
    // libhdf5 reads files: write the bytes to a private temporary file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(
        "seqgrad-keras-{}-{n}.weights.h5",
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    let result = (|| -> std::result::Result<BTreeMap<String, StoredTensor>, String> {
        let file = hdf5_metno::File::open(&tmp).map_err(|e| format!("not readable HDF5: {e}"))?;
        let mut out = BTreeMap::new();
        let mut stack = vec![file.as_group().map_err(|e| e.to_string())?];
        while let Some(g) = stack.pop() {
            for ds in g.datasets().map_err(|e| e.to_string())? {
                let name = ds.name().trim_start_matches('/').to_string();
                let shape = ds.shape();
                let size = ds.dtype().map_err(|e| e.to_string())?.size();
                let (dtype, values): (&'static str, Vec<f64>) = match size {
                    4 => (
                        "F32",
                        ds.read_raw::<f32>()
                            .map_err(|e| format!("{name}: {e}"))?
                            .into_iter()
                            .map(f64::from)
                            .collect(),
                    ),
                    8 => (
                        "F64",
                        ds.read_raw::<f64>().map_err(|e| format!("{name}: {e}"))?,
                    ),
                    s => {
                        return Err(format!(
                            "{name}: {s}-byte elements; seqgrad reads f32 and f64"
                        ))
                    }
                };
                let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
                    .map_err(|e| format!("{name}: {e}"))?;
                out.insert(name, StoredTensor { dtype, array });
            }
            stack.extend(g.groups().map_err(|e| e.to_string())?);
        }
        Ok(out)
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(werr)
}
