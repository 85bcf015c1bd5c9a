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
use crate::layers::NamedParams;
use crate::tensor::{fmt_shape, Float};

/// A tensor read from a file: its stored dtype (`"F32"`/`"F64"`) and its values widened to f64.
#[derive(Debug, Clone)]
pub struct StoredTensor {
    pub dtype: &'static str,
    pub array: ArrayD<f64>,
}

fn werr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Weights {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Reads every tensor of a safetensors file. Only F32 and F64 tensors are accepted.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_tensors(&bytes).map_err(|msg| werr(path, msg))
}

/// Parses safetensors bytes (see [`read_tensors`]); errors are plain messages.
pub fn parse_tensors(bytes: &[u8]) -> std::result::Result<BTreeMap<String, StoredTensor>, String> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file ({e})"))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let (dtype, values): (&'static str, Vec<f64>) = match view.dtype() {
            Dtype::F32 => (
                "F32",
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect(),
            ),
            Dtype::F64 => (
                "F64",
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            other => {
                return Err(format!(
                    "tensor {name} has dtype {other:?}; seqgrad reads F32 and F64"
                ))
            }
        };
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| {
            format!(
                "tensor {name}: data does not fill shape {}",
                fmt_shape(&shape)
            )
        })?;
        out.insert(name, StoredTensor { dtype, array });
    }
    Ok(out)
}

/// Writes tensors to a safetensors file atomically, in the element type `T`.
pub fn write_tensors<T: Float>(path: &Path, tensors: &[(String, ArrayViewD<'_, T>)]) -> Result<()> {
    write_tensors_with_metadata(path, tensors, None)
}

/// [`write_tensors`] with string metadata in the file's `__metadata__` header.
pub fn write_tensors_with_metadata<T: Float>(
    path: &Path,
    tensors: &[(String, ArrayViewD<'_, T>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let bytes = serialize_tensors(tensors, metadata).map_err(|msg| werr(path, msg))?;
    write_atomic(path, &bytes)
}

/// The bytes of a safetensors file holding `tensors` in the element type `T` (what
/// [`write_tensors_with_metadata`] writes), with its header's keys in sorted order.
pub fn serialize_tensors<T: Float>(
    tensors: &[(String, ArrayViewD<'_, T>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> std::result::Result<Vec<u8>, String> {
    let dtype = if T::DTYPE == "F64" {
        Dtype::F64
    } else {
        Dtype::F32
    };
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
    let mut names: Vec<&str> = buffers.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("tensor name {} given twice", w[0]));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, shape, bytes) in &buffers {
        let view = TensorView::new(dtype, shape.clone(), bytes)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, metadata).map_err(|e| e.to_string())?;
    Ok(canonical_header(bytes))
}

/// The same safetensors file with its JSON header's keys in sorted order, so that equal
/// tensors and metadata give byte-identical files (`safetensors::serialize` writes the
/// metadata map in hash order, which changes from run to run). Tensor offsets are relative to
/// the data section, so only the header is rewritten; it is padded with spaces to a multiple of
/// 8 bytes as the format asks. Bytes that do not parse are returned unchanged.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return bytes;
    };
    let Some(header) = len.checked_add(8).and_then(|end| bytes.get(8..end)) else {
        return bytes;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    let mut json = Vec::with_capacity(header.len());
    write_sorted_json(&value, &mut json);
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - len);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + len..]);
    out
}

/// Compact JSON with every object's keys in sorted order, whatever map type serde_json was
/// built with (its `preserve_order` feature, which any crate in the build can turn on, would
/// otherwise keep the header's hash order).
fn write_sorted_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (k, (key, val)) in entries.into_iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_sorted_json(&Value::String(key.clone()), out);
                out.push(b':');
                write_sorted_json(val, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_sorted_json(item, out);
            }
            out.push(b']');
        }
        // Strings, numbers, booleans and null print the same under any map type.
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// A fresh temporary path beside `path` (`.{name}.tmp-{pid}-{n}`, same folder, so a rename
/// over `path` is atomic): where atomic writes put their bytes first.
pub fn temp_path_for(path: &Path) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes a file atomically: a temporary file in the same folder, flushed, then renamed over
/// `path`. Readers see the old file or the new one, never a partial one; on any failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path_for(path);
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

/// Saves every parameter of a model under its PyTorch name. The file's `__metadata__` carries
/// `seqgrad_version`, `format: pt`, and — when a run's `config.json` sits in the same folder (a
/// run folder written by `seqgrad train`) — `config: config.json`, the settings it was made with.
pub fn save<T: Float>(model: &impl NamedParams<T>, path: &Path) -> Result<()> {
    let named = model.named_params();
    let tensors: Vec<(String, ArrayViewD<'_, T>)> = named
        .iter()
        .map(|(n, p)| (n.clone(), p.value.view()))
        .collect();
    let mut meta = std::collections::HashMap::new();
    meta.insert(
        "seqgrad_version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    meta.insert("format".to_string(), "pt".to_string());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.join("config.json").is_file() {
        meta.insert("config".to_string(), "config.json".to_string());
    }
    write_tensors_with_metadata(path, &tensors, Some(meta))
}

/// The string metadata (`__metadata__`) of a safetensors file (empty when it has none).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| werr(path, format!("not a valid safetensors file ({e})")))?;
    Ok(meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// Loads a state dict into a model. Every problem — missing tensors, unexpected tensors, wrong
/// shapes (expected and actual), wrong dtype — is listed in one error; the model is unchanged
/// unless everything fits.
pub fn load<T: Float>(model: &mut impl NamedParams<T>, path: &Path) -> Result<()> {
    let tensors = read_tensors(path)?;
    load_from(model, &tensors).map_err(|msg| werr(path, msg))
}

/// Loads from tensors already read (see [`load`]); errors are plain messages.
pub fn load_from<T: Float>(
    model: &mut impl NamedParams<T>,
    tensors: &BTreeMap<String, StoredTensor>,
) -> std::result::Result<(), String> {
    let mut problems = Vec::new();
    let expected: Vec<(String, Vec<usize>)> = model
        .named_params()
        .iter()
        .map(|(n, p)| (n.clone(), p.value.shape().to_vec()))
        .collect();
    let mut wrong_dtype = Vec::new();
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
                    wrong_dtype.push((name.as_str(), t.dtype));
                }
                let bad = t.array.iter().filter(|v| !v.is_finite()).count();
                if bad > 0 {
                    problems.push(format!("tensor {name} has {bad} non-finite value(s)"));
                }
            }
        }
    }
    // One line for a whole file in the other dtype, else one per tensor.
    let present = expected
        .iter()
        .filter(|(n, _)| tensors.contains_key(n))
        .count();
    match wrong_dtype.as_slice() {
        [] => {}
        [(_, d), ..]
            if wrong_dtype.len() == present
                && present > 1
                && wrong_dtype.iter().all(|w| w.1 == *d) =>
        {
            problems.push(format!(
                "all {present} tensors are {d} but the model runs in {}",
                T::DTYPE
            ))
        }
        many => {
            for (name, d) in many {
                problems.push(format!(
                    "tensor {name} is {d} but the model runs in {}",
                    T::DTYPE
                ));
            }
        }
    }
    for name in tensors.keys() {
        if !expected.iter().any(|(n, _)| n == name) {
            problems.push(format!("unexpected tensor {name}"));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{} problem(s): {}",
            problems.len(),
            problems.join("; ")
        ));
    }
    for (name, p) in model.named_params_mut() {
        if let Some(t) = tensors.get(&name) {
            p.value = t.array.mapv(T::lit);
        }
    }
    Ok(())
}

/// The dtype of a weights file's tensors (`"F32"` or `"F64"`), to pick the model's element type.
/// A file without tensors (a model without parameters) counts as `"F32"`.
pub fn file_dtype(path: &Path) -> Result<&'static str> {
    let tensors = read_tensors(path)?;
    dtype_of(&tensors).map_err(|msg| werr(path, msg))
}

/// The common dtype of tensors already read (see [`file_dtype`]); mixed dtypes are an error.
pub fn dtype_of(
    tensors: &BTreeMap<String, StoredTensor>,
) -> std::result::Result<&'static str, String> {
    let mut dtypes: Vec<&'static str> = tensors.values().map(|t| t.dtype).collect();
    dtypes.sort_unstable();
    dtypes.dedup();
    match dtypes.as_slice() {
        [] => Ok("F32"),
        [d] => Ok(d),
        _ => {
            let f32s: Vec<&str> = tensors
                .iter()
                .filter(|(_, t)| t.dtype == "F32")
                .map(|(n, _)| n.as_str())
                .collect();
            Err(format!(
                "mixes F32 and F64 tensors ({} F32: {}{}); seqgrad files are all F32 or all F64",
                f32s.len(),
                f32s.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if f32s.len() > 3 { ", …" } else { "" }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sequential;
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
        // f32 model from an f64 file: one dtype problem for the whole file.
        let mut c = model::<f32>(2);
        let err = load(&mut c, &path).unwrap_err().to_string();
        assert!(
            err.contains("1 problem(s): all 3 tensors are F64 but the model runs in F32"),
            "{err}"
        );
        // Truncated file: an error, not a panic.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(&mut b, &path)
            .unwrap_err()
            .to_string()
            .contains("not a valid safetensors"));
        // Empty and garbage files too.
        std::fs::write(&path, b"").unwrap();
        assert!(load(&mut b, &path)
            .unwrap_err()
            .to_string()
            .contains("not a valid safetensors"));
        std::fs::write(&path, [0xffu8; 64]).unwrap();
        assert!(load(&mut b, &path)
            .unwrap_err()
            .to_string()
            .contains("not a valid safetensors"));
    }

    #[test]
    fn every_problem_is_listed_and_the_model_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let w = ndarray::Array2::<f64>::zeros((3, 5)).into_dyn(); // model expects (3, 4)
        let b = ndarray::arr1(&[1.0, f64::NAN, 2.0]).into_dyn();
        let extra = ndarray::Array1::<f64>::zeros(2).into_dyn();
        write_tensors(
            &path,
            &[
                ("layers.0.weight".into(), w.view()),
                ("layers.0.bias".into(), b.view()),
                ("layers.9.weight".into(), extra.view()),
            ],
        )
        .unwrap();
        let mut m = model::<f64>(3);
        let before: Vec<_> = m
            .named_params()
            .iter()
            .map(|(_, p)| p.value.clone())
            .collect();
        let err = load(&mut m, &path).unwrap_err().to_string();
        for want in [
            "4 problem(s)",
            "layers.0.weight has shape (3, 5) but the model expects (3, 4)",
            "layers.0.bias has 1 non-finite value(s)",
            "missing tensor layers.1.weight (2, 3)",
            "unexpected tensor layers.9.weight",
        ] {
            assert!(err.contains(want), "{want:?} not in {err}");
        }
        assert!(!err.contains('\n'), "one line: {err}");
        let after: Vec<_> = m
            .named_params()
            .iter()
            .map(|(_, p)| p.value.clone())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn dtype_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p64 = dir.path().join("a.safetensors");
        save(&model::<f64>(1), &p64).unwrap();
        assert_eq!(file_dtype(&p64).unwrap(), "F64");
        let p32 = dir.path().join("b.safetensors");
        save(&model::<f32>(1), &p32).unwrap();
        assert_eq!(file_dtype(&p32).unwrap(), "F32");
        // An f64 model from an f32 file: one line for the whole file.
        let err = load(&mut model::<f64>(1), &p32).unwrap_err().to_string();
        assert!(
            err.contains("all 3 tensors are F32 but the model runs in F64"),
            "{err}"
        );
        // Mixed dtypes in one file are named.
        let mut mixed = read_tensors(&p64).unwrap();
        mixed.get_mut("layers.0.bias").unwrap().dtype = "F32";
        assert!(dtype_of(&mixed).unwrap_err().contains("layers.0.bias"));
    }

    #[test]
    fn writes_are_atomic_and_names_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let a = ndarray::Array1::<f32>::zeros(2).into_dyn();
        let err =
            write_tensors(&path, &[("x".into(), a.view()), ("x".into(), a.view())]).unwrap_err();
        assert!(err.to_string().contains("x given twice"), "{err}");
        assert!(!path.exists());
        write_tensors(&path, &[("x".into(), a.view())]).unwrap();
        write_tensors(&path, &[("y".into(), a.view())]).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("t.safetensors")],
            "no temporary file left"
        );
        assert!(read_tensors(&path).unwrap().contains_key("y"));
        // A folder that does not exist: an error naming the path, nothing written.
        let bad = dir.path().join("nope").join("t.safetensors");
        assert!(write_tensors(&bad, &[("x".into(), a.view())])
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }

    #[test]
    fn headers_are_written_with_sorted_keys_whatever_the_map_order() {
        // Fails before the fix under `cargo test --lib --features serde_json/preserve_order`,
        // where serde_json keeps insertion order.
        let v: serde_json::Value = serde_json::from_str(
            r#"{"z":{"shape":[2],"dtype":"F32"},"a":[{"y":1,"b":"x"}],"m":null}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_sorted_json(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[{"b":"x","y":1}],"m":null,"z":{"dtype":"F32","shape":[2]}}"#
        );
    }
}
