//! Keras models in: Keras' own model JSON (`model.to_json()`), the `config.json` inside a
//! `.keras` archive, and the `.keras` archive itself, turned into a seqgrad [`ModelSpec`]; and
//! Keras weights turned into seqgrad's PyTorch-named state dict ([`weights`]).
//!
//! Accepted: `Sequential` models and single-chain functional models (`Functional`/`Model`,
//! every layer fed by the one before it) of `InputLayer`, `Conv1D`, `MaxPooling1D`,
//! `AveragePooling1D`, `GlobalMaxPooling1D`, `GlobalAveragePooling1D`, `Dense`, `Flatten`,
//! `Dropout`, `Activation`, `SimpleRNN`, `LSTM`, `GRU` and `Bidirectional`. Every option of
//! those layers is either mapped to seqgrad's, or checked to have the value seqgrad implements,
//! or (initialisers, `name`, `dtype`, `unroll` …) listed as not changing what the model
//! computes. Anything else is refused with the Keras class or option name and what seqgrad
//! supports; nothing is silently dropped. See `docs/keras.md` for the table.
//!
//! ```
//! let keras = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
//!   {"class_name": "InputLayer", "config": {"batch_shape": [null, 40, 4], "name": "in"}},
//!   {"class_name": "Conv1D", "config": {"name": "c", "filters": 8, "kernel_size": [9],
//!       "strides": [1], "padding": "same", "activation": "relu"}},
//!   {"class_name": "GlobalMaxPooling1D", "config": {"name": "g"}},
//!   {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "softmax"}}]}}"#;
//! let spec = seqgrad::keras::spec_from_keras_json(keras, "model.json")?;
//! assert_eq!(spec.input_shape, vec![Some(40), Some(4)]);
//! assert_eq!(spec.layers[0].kind(), "conv1d");
//! # Ok::<(), seqgrad::Error>(())
//! ```

pub mod archive;
pub mod weights;

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::layers::keras_config::{shape_of, KerasOpts};
use crate::layers::registry::keras_classes;
use crate::spec::{LayerSpec, ModelSpec};

pub use archive::{read_archive, KerasArchive};
pub use weights::map_weights;

/// A converted Keras model: the seqgrad spec and, for every seqgrad layer, the Keras layer it
/// came from (to find its weights).
#[derive(Debug, Clone, PartialEq)]
pub struct KerasModel {
    pub spec: ModelSpec,
    /// One per entry of `spec.layers`, in order.
    pub layers: Vec<KerasLayer>,
}

/// Where a seqgrad layer came from.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasLayer {
    /// The Keras layer name (`conv1d_7` …), for messages.
    pub name: String,
    /// Where its variables live in `model.weights.h5`: `layers/` + the class in snake case,
    /// numbered in layer order when the class repeats (`layers/conv1d`, `layers/conv1d_1` …),
    /// as Keras 3 saves them (not by layer name).
    pub path: String,
    /// The Keras class (`Conv1D` …).
    pub class: String,
}

/// True when a JSON value is a Keras model (an object with `class_name` and `config`), not a
/// seqgrad model file.
pub fn looks_like_keras(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.contains_key("class_name") && o.contains_key("config"))
}

/// True when the bytes start a zip archive (a `.keras` file).
pub fn looks_like_archive(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The hook for `--model`: a `.keras` archive or Keras JSON gives `Some(spec)`; anything else
/// `None`, to be read as a seqgrad model file.
pub fn detect_file(path: &Path) -> Result<Option<ModelSpec>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if looks_like_archive(&bytes) {
        return Ok(Some(read_archive(path)?.model.spec));
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v) if looks_like_keras(&v) => {
            Ok(Some(from_value(&v, &path.display().to_string())?.spec))
        }
        _ => Ok(None),
    }
}

/// Converts Keras model JSON (`model.to_json()` or a `.keras` archive's `config.json`) to a
/// seqgrad model; `origin` names it in errors.
pub fn spec_from_keras_json(text: &str, origin: &str) -> Result<ModelSpec> {
    Ok(model_from_keras_json(text, origin)?.spec)
}

/// As [`spec_from_keras_json`], keeping which Keras layer each seqgrad layer came from.
pub fn model_from_keras_json(text: &str, origin: &str) -> Result<KerasModel> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Spec {
        path: origin.to_string(),
        msg: format!("not valid JSON: {e}"),
    })?;
    from_value(&v, origin)
}

fn err(origin: &str, msg: impl Into<String>) -> Error {
    Error::Spec {
        path: origin.to_string(),
        msg: msg.into(),
    }
}

/// Converts a parsed Keras model.
pub fn from_value(v: &Value, origin: &str) -> Result<KerasModel> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| err(origin, "Keras model without a class_name"))?;
    let config = v.get("config").cloned().unwrap_or(Value::Null);
    let functional = match class {
        "Sequential" => false,
        "Functional" | "Model" => true,
        other => {
            return Err(err(
                origin,
                format!(
                    "Keras model class {other} is not supported; seqgrad converts Sequential \
                     models and single-chain functional models (Functional/Model)"
                ),
            ))
        }
    };
    // Very old Keras wrote a Sequential's config as the bare list of layers.
    let layers = match &config {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| err(origin, format!("Keras {class} config has no layers list")))?,
        _ => return Err(err(origin, format!("Keras {class} has no config object"))),
    };
    if functional {
        check_chain(&config, &layers, origin)?;
    }
    let mut input_shape: Option<Vec<Option<usize>>> = None;
    let mut out_layers = Vec::new();
    let mut out_meta = Vec::new();
    let mut used_names: std::collections::HashMap<String, usize> = Default::default();
    for (i, layer) in layers.iter().enumerate() {
        let lclass = layer
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| err(origin, format!("Keras layer #{i} has no class_name")))?;
        let empty = Map::new();
        let cfg = layer
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let name = cfg
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(lclass)
            .to_string();
        let at = format!("Keras layer '{name}' ({lclass})");
        let mut o = KerasOpts::new(cfg, &at, origin);
        if lclass == "InputLayer" {
            if i != 0 {
                return Err(err(origin, format!("{at}: an InputLayer must come first")));
            }
            input_shape = Some(o.input_shape()?);
            o.done(&["sparse", "ragged", "optional", "input_tensor"])?;
            continue;
        }
        if input_shape.is_none() {
            // Keras 2: `batch_input_shape` on the first layer; Keras 3: the model's
            // `build_input_shape` or the layer's `build_config`.
            if let Some(s) = cfg
                .get("batch_input_shape")
                .or_else(|| cfg.get("batch_shape"))
            {
                input_shape = Some(shape_of(s, &at, origin)?);
            } else if let Some(s) = config.get("build_input_shape").filter(|s| !s.is_null()) {
                input_shape = Some(shape_of(s, &at, origin)?);
            } else if let Some(s) = layer
                .get("build_config")
                .and_then(|b| b.get("input_shape"))
                .filter(|s| !s.is_null())
            {
                input_shape = Some(shape_of(s, &at, origin)?);
            }
        }
        o.ignore(&[
            "batch_input_shape",
            "batch_shape",
            "input_dim",
            "input_length",
        ]);
        let spec = convert_layer(lclass, &mut o)?;
        out_layers.push(spec);
        let base = to_snake_case(lclass);
        let n = used_names
            .entry(base.clone())
            .and_modify(|n| *n += 1)
            .or_insert(0);
        let path = if *n == 0 {
            format!("layers/{base}")
        } else {
            format!("layers/{base}_{n}")
        };
        out_meta.push(KerasLayer {
            name,
            class: lclass.to_string(),
            path,
        });
    }
    let input_shape = input_shape.ok_or_else(|| {
        err(
            origin,
            "the Keras model does not say its input shape (no InputLayer, batch_shape or \
             build_input_shape): build it with keras.Input((length, channels)) before saving",
        )
    })?;
    Ok(KerasModel {
        spec: ModelSpec {
            input_shape,
            layers: out_layers,
        },
        layers: out_meta,
    })
}

/// Functional models: every layer is called once, on the previous layer's output.
fn check_chain(config: &Value, layers: &[Value], origin: &str) -> Result<()> {
    let names: Vec<String> = layers
        .iter()
        .map(|l| {
            l.get("name")
                .or_else(|| l.get("config").and_then(|c| c.get("name")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let not_chain = |why: String| {
        err(
            origin,
            format!(
                "this functional Keras model is not a single chain ({why}); seqgrad converts \
                 models where every layer takes the previous layer's output"
            ),
        )
    };
    for (i, l) in layers.iter().enumerate() {
        let nodes = l
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if i == 0 {
            if !nodes.is_empty() {
                return Err(not_chain(format!("first layer '{}' has inputs", names[0])));
            }
            continue;
        }
        if nodes.len() != 1 {
            return Err(not_chain(format!(
                "layer '{}' is called {} times",
                names[i],
                nodes.len()
            )));
        }
        let mut inputs = Vec::new();
        collect_inbound(&nodes[0], &mut inputs);
        if inputs != [names[i - 1].clone()] {
            return Err(not_chain(format!(
                "layer '{}' takes {:?}, not just '{}'",
                names[i],
                inputs,
                names[i - 1]
            )));
        }
    }
    for (key, want) in [
        ("input_layers", names.first()),
        ("output_layers", names.last()),
    ] {
        let mut got = Vec::new();
        if let Some(v) = config.get(key) {
            collect_layer_refs(v, &mut got);
        }
        if got.len() != 1 || Some(&got[0]) != want {
            return Err(not_chain(format!("{key} is {got:?}")));
        }
    }
    Ok(())
}

/// The names of the layers a node reads: Keras 3 `keras_history: [name, node, tensor]`,
/// Keras 2 `[[name, node, tensor, kwargs], …]`.
fn collect_inbound(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(h) = o.get("keras_history").and_then(Value::as_array) {
                if let Some(n) = h.first().and_then(Value::as_str) {
                    out.push(n.to_string());
                }
                return;
            }
            for x in o.values() {
                collect_inbound(x, out);
            }
        }
        Value::Array(a) => {
            if let (Some(Value::String(n)), Some(Value::Number(_))) = (a.first(), a.get(1)) {
                out.push(n.clone());
                return;
            }
            for x in a {
                collect_inbound(x, out);
            }
        }
        _ => {}
    }
}

/// `["name", 0, 0]` or `[["name", 0, 0], …]` → names.
fn collect_layer_refs(v: &Value, out: &mut Vec<String>) {
    if let Some(a) = v.as_array() {
        if let Some(Value::String(n)) = a.first() {
            out.push(n.clone());
        } else {
            for x in a {
                collect_layer_refs(x, out);
            }
        }
    }
}

/// Keras' `naming.to_snake_case`: drop non-word characters, `_` before a capitalised word
/// (`MaxPooling1D` → `Max_Pooling1D`) and between a lower-case and an upper-case letter
/// (`SimpleRNN` → `Simple_RNN`), then lower-case.
pub fn to_snake_case(name: &str) -> String {
    let s: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    let mut a = Vec::with_capacity(s.len() + 4);
    let mut i = 0;
    while i < s.len() {
        if i + 2 < s.len() && s[i + 1].is_ascii_uppercase() && s[i + 2].is_ascii_lowercase() {
            a.extend([s[i], '_', s[i + 1]]);
            i += 2;
            while i < s.len() && s[i].is_ascii_lowercase() {
                a.push(s[i]);
                i += 1;
            }
        } else {
            a.push(s[i]);
            i += 1;
        }
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    let mut b = String::with_capacity(a.len() + 4);
    let mut i = 0;
    while i < a.len() {
        if i + 1 < a.len() && a[i].is_ascii_lowercase() && a[i + 1].is_ascii_uppercase() {
            b.push(a[i]);
            b.push('_');
            b.push(a[i + 1]);
            i += 2;
        } else {
            b.push(a[i]);
            i += 1;
        }
    }
    b.to_lowercase()
}

/// One Keras layer through the registry: the kind that lists the class converts it, then every
/// option not read is refused.
fn convert_layer(class: &str, o: &mut KerasOpts<'_>) -> Result<LayerSpec> {
    let spec = match LayerSpec::from_keras(class, o) {
        Some(spec) => spec?,
        None => {
            return Err(o.err(format!(
                "Keras layer class {class} is not supported by seqgrad; it converts {}",
                supported()
            )))
        }
    };
    o.done(&[])?;
    Ok(spec)
}

/// The Keras layer classes seqgrad converts (for error messages): `InputLayer` and each
/// registered kind's classes.
pub fn supported() -> String {
    let mut v = vec!["InputLayer"];
    for c in keras_classes() {
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v.join(", ")
}

impl ModelSpec {
    /// Reads a model file: seqgrad's JSON (also a built-in `bundled:…` file), or a Keras model
    /// JSON or `.keras` archive, converted. It lives here, above `spec`, because it needs the
    /// Keras reader.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // Built-in files (`bundled:…`) are seqgrad's own model files.
        if crate::bundled::get(path).is_none() {
            if let Some(spec) = detect_file(path)? {
                return Ok(spec);
            }
        }
        let text = crate::bundled::read_to_string(path)?;
        Self::from_json(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::to_snake_case;

    #[test]
    fn snake_case_matches_keras() {
        for (c, want) in [
            ("Conv1D", "conv1d"),
            ("MaxPooling1D", "max_pooling1d"),
            ("AveragePooling1D", "average_pooling1d"),
            ("GlobalMaxPooling1D", "global_max_pooling1d"),
            ("SimpleRNN", "simple_rnn"),
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("InputLayer", "input_layer"),
            ("Bidirectional", "bidirectional"),
            ("Dense", "dense"),
        ] {
            assert_eq!(to_snake_case(c), want);
        }
    }
}
