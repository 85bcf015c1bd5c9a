//! Weights and tensor files in safetensors, with PyTorch parameter names.
//!
//! A model's state dict is every parameter under its full name (`layers.{i}.weight`,
//! `layers.{i}.weight_ih_l0_reverse` …), shaped as PyTorch shapes it, as `F32` or `F64`.
//! Loading checks everything against the model and reports *all* problems in one error;
//! a truncated or corrupt file is an error, never a panic. Writes are atomic: a temporary file
//! in the same folder, then a rename.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::{fmt_shape, Float};

/// A tensor read from a file: its stored dtype (`"F32"`/`"F64"`) and its values widened to f64.
#[derive(Debug, Clone)]
pub struct StoredTensor {
    pub dtype: &'static str,
    pub array: ArrayD<f64>,
}

fn werr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Weights { path: path.display().to_string(), msg: msg.into() }
}

/// Reads every tensor of a safetensors file. Only F32 and F64 tensors are accepted.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_tensors(&bytes).map_err(|msg| werr(path, msg))
}

/// Parses safetensors bytes (see [`read_tensors`]); errors are plain messages.
pub fn parse_tensors(bytes: &[u8]) -> std::result::Result<BTreeMap<String, StoredTensor>, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file ({e})"))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let (dtype, values): (&'static str, Vec<f64>) = match view.dtype() {
            Dtype::F32 => (
                "F32",
                data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
            ),
            Dtype::F64 => (
                "F64",
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            other => return Err(format!("tensor {name} has dtype {other:?}; seqgrad reads F32 and F64")),
        };
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|_| format!("tensor {name}: data does not fill shape {}", fmt_shape(&shape)))?;
        out.insert(name, StoredTensor { dtype, array });
    }
    Ok(out)
}

/// Writes tensors to a safetensors file atomically, in the element type `T`.
pub fn write_tensors<T: Float>(path: &Path, tensors: &[(String, ArrayViewD<'_, T>)]) -> Result<()> {
    let dtype = if T::DTYPE == "F64" { Dtype::F64 } else { Dtype::F32 };
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, a)| {
            let mut bytes = Vec::with_capacity(a.len() * if T::DTYPE == "F64" { 8 } else { 4 });
            for v in a.iter() {
                if T::DTYPE == "F64" {
                    bytes.extend_from_slice(&v.to_f64c().to_le_bytes());
                } else {
                    bytes.extend_from_slice(&(v.to_f64c() as f32).to_le_bytes());
                }
            }
            (name.clone(), a.shape().to_vec(), bytes)
        })
        .collect();
    let mut views = Vec::with_capacity(buffers.len());
    for (name, shape, bytes) in &buffers {
        let view = TensorView::new(dtype, shape.clone(), bytes).map_err(|e| werr(path, format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, None).map_err(|e| werr(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Writes a file atomically: a temporary file in the same folder, flushed, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Saves every parameter of a model under its PyTorch name.
pub fn save<T: Float>(model: &Sequential<T>, path: &Path) -> Result<()> {
    let named = model.named_params();
    let tensors: Vec<(String, ArrayViewD<'_, T>)> = named.iter().map(|(n, p)| (n.clone(), p.value.view())).collect();
    write_tensors(path, &tensors)
}

/// Loads a state dict into a model. Every problem — missing tensors, unexpected tensors, wrong
/// shapes (expected and actual), wrong dtype — is listed in one error; the model is unchanged
/// unless everything fits.
pub fn load<T: Float>(model: &mut Sequential<T>, path: &Path) -> Result<()> {
    let tensors = read_tensors(path)?;
    load_from(model, &tensors).map_err(|msg| werr(path, msg))
}

/// Loads from tensors already read (see [`load`]); errors are plain messages.
pub fn load_from<T: Float>(
    model: &mut Sequential<T>,
    tensors: &BTreeMap<String, StoredTensor>,
) -> std::result::Result<(), String> {
    let mut problems = Vec::new();
    let expected: Vec<(String, Vec<usize>)> =
        model.named_params().iter().map(|(n, p)| (n.clone(), p.value.shape().to_vec())).collect();
    for (name, shape) in &expected {
        match tensors.get(name) {
            None => problems.push(format!("missing tensor {name} {}", fmt_shape(shape))),
            Some(t) => {
                if t.array.shape() != shape.as_slice() {
                    problems.push(format!(
                        "tensor {name} has shape {} but the model expects {}",
                        fmt_shape(t.array.shape()),
                        fmt_shape(shape)
                    ));
                }
                if t.dtype != T::DTYPE {
                    problems.push(format!("tensor {name} is {} but the model runs in {}", t.dtype, T::DTYPE));
                }
            }
        }
    }
    for name in tensors.keys() {
        if !expected.iter().any(|(n, _)| n == name) {
            problems.push(format!("unexpected tensor {name}"));
        }
    }
    if !problems.is_empty() {
        return Err(format!("{} problem(s): {}", problems.len(), problems.join("; ")));
    }
    for (name, p) in model.named_params_mut() {
        if let Some(t) = tensors.get(&name) {
            p.value = t.array.mapv(T::lit);
        }
    }
    Ok(())
}

/// The dtype of a weights file's tensors (`"F32"` or `"F64"`), to pick the model's element type.
pub fn file_dtype(path: &Path) -> Result<&'static str> {
    let tensors = read_tensors(path)?;
    let mut dtypes: Vec<&'static str> = tensors.values().map(|t| t.dtype).collect();
    dtypes.sort_unstable();
    dtypes.dedup();
    match dtypes.as_slice() {
        [] => Ok("F32"),
        [d] => Ok(d),
        _ => Err(werr(path, "mixes F32 and F64 tensors")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ModelSpec;

    fn model<T: Float>(seed: u64) -> Sequential<T> {
        let spec = ModelSpec::from_json(
            r#"{"input_shape":[6,4],"layers":[{"type":"dense","units":3},{"type":"dense","units":2,"use_bias":false}]}"#,
            "t",
        )
        .unwrap();
        Sequential::from_spec(&spec, seed).unwrap()
    }

    #[test]
    fn round_trip_and_all_problems_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = model::<f64>(1);
        save(&a, &path).unwrap();
        let mut b = model::<f64>(2);
        load(&mut b, &path).unwrap();
        for ((n1, p1), (n2, p2)) in a.named_params().iter().zip(b.named_params().iter()) {
            assert_eq!(n1, n2);
            assert_eq!(p1.value, p2.value);
        }
        // f32 model from an f64 file: a dtype problem for every tensor, listed together.
        let mut c = model::<f32>(2);
        let err = load(&mut c, &path).unwrap_err().to_string();
        assert!(err.contains("3 problem(s)") && err.contains("F64"), "{err}");
        // Truncated file: an error, not a panic.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(&mut b, &path).unwrap_err().to_string().contains("not a valid safetensors"));
    }
}
