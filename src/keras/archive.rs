//! `.keras` archives (Keras 3's `model.save("m.keras")`): a zip holding `config.json` (the
//! model, as `model.to_json()`), `metadata.json` and `model.weights.h5` (the variables, HDF5).
//!
//! Both are read here, in Rust: the model by [`super::from_value`], the HDF5 variables by
//! [`vars_from_h5`] with the pure-Rust `hdf5-reader` crate (no HDF5 C library).

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

/// The first bytes of an HDF5 file (its superblock signature at offset 0, as Keras writes it).
pub const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Reads Keras variables from a file: HDF5 (a `model.weights.h5`, as `model.save_weights`
/// writes it, or taken out of a `.keras` zip), or safetensors named by the same paths (as
/// `python/keras_to_seqgrad.py` dumps them).
pub fn read_vars(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(HDF5_MAGIC) {
        vars_from_h5(&bytes, &path.display().to_string())
    } else {
        crate::weights::read_tensors(path)
    }
}

/// Keras variables cannot nest deeper than this (`layers/bidirectional/forward_layer/cell/vars/0`
/// is 5 groups deep); a deeper file is refused rather than walked.
const MAX_GROUP_DEPTH: usize = 32;

/// Reads every dataset of the HDF5 bytes of a `model.weights.h5` as a Keras variable, keyed by
/// its path without the leading `/` (`layers/conv1d/vars/0`). Only float32 and float64
/// datasets are accepted. Malformed bytes give [`Error::Weights`] naming `origin` and what is
/// wrong, on one line.
pub fn vars_from_h5(bytes: &[u8], origin: &str) -> Result<BTreeMap<String, StoredTensor>> {
    read_h5(bytes).map_err(|msg| Error::Weights {
        path: origin.to_string(),
        // The reader's messages are single sentences; keep the error on one line regardless.
        msg: msg.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

fn read_h5(bytes: &[u8]) -> std::result::Result<BTreeMap<String, StoredTensor>, String> {
    use hdf5_reader::Datatype;
    use ndarray::ArrayD;
    if !bytes.starts_with(HDF5_MAGIC) {
        return Err("not an HDF5 file (no HDF5 signature at its start)".into());
    }
    let bad = |what: &str, e: hdf5_reader::error::Error| format!("not readable HDF5 ({what}: {e})");
    let file = hdf5_reader::Hdf5File::from_vec(bytes.to_vec()).map_err(|e| bad("superblock", e))?;
    let root = file.root_group().map_err(|e| bad("root group", e))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), root, 0usize)];
    while let Some((prefix, group, depth)) = stack.pop() {
        if !seen.insert(group.address()) {
            // A group reached twice (a hard link back up the tree) is read once.
            continue;
        }
        if depth > MAX_GROUP_DEPTH {
            return Err(format!(
                "groups nested deeper than {MAX_GROUP_DEPTH} at {prefix}; not Keras weights"
            ));
        }
        let at = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            }
        };
        let (groups, datasets) = group
            .members()
            .map_err(|e| bad(&format!("group /{prefix}"), e))?;
        for ds in datasets {
            let name = at(ds.name());
            let shape: Vec<usize> = ds
                .shape()
                .iter()
                .map(|&n| {
                    usize::try_from(n).map_err(|_| format!("{name}: dimension {n} too large"))
                })
                .collect::<std::result::Result<_, _>>()?;
            let (dtype, array): (&'static str, ArrayD<f64>) = match ds.dtype() {
                Datatype::FloatingPoint { size: 4, .. } => (
                    "F32",
                    ds.read_array::<f32>()
                        .map_err(|e| bad(&name, e))?
                        .mapv(f64::from),
                ),
                Datatype::FloatingPoint { size: 8, .. } => {
                    ("F64", ds.read_array::<f64>().map_err(|e| bad(&name, e))?)
                }
                other => {
                    return Err(format!(
                        "{name}: datatype {other:?}; seqgrad reads float32 and float64 variables"
                    ))
                }
            };
            if array.shape() != shape.as_slice() {
                return Err(format!(
                    "{name}: read {:?} values for shape {shape:?}",
                    array.shape()
                ));
            }
            out.insert(name, StoredTensor { dtype, array });
        }
        for g in groups {
            let name = at(g.name());
            stack.push((name, g, depth + 1));
        }
    }
    Ok(out)
}
