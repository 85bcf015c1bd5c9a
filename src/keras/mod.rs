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

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::spec::{
    ActivationSpec, BidirectionalSpec, Conv1dSpec, DenseSpec, DropoutSpec, EmptySpec, LayerSpec,
    MergeMode, ModelSpec, Padding, PoolSpec, RecurrentSpec, RnnSpec,
};

pub use archive::{read_archive, KerasArchive};
pub use weights::map_weights;

/// The Keras layer classes seqgrad converts (for error messages).
pub const SUPPORTED: &str = "InputLayer, Conv1D, MaxPooling1D, AveragePooling1D, \
GlobalMaxPooling1D, GlobalAveragePooling1D, Dense, Flatten, Dropout, Activation, SimpleRNN, \
LSTM, GRU, Bidirectional";

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
        let mut o = Opts::new(cfg, &at, origin);
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

/// A Keras batch shape `[null, L, C]` → seqgrad's per-sample `[L, C]`; a `None` length,
/// `[null, null, C]`, → `[null, C]` (a model of any length, `docs/variable-length.md`).
fn shape_of(v: &Value, at: &str, origin: &str) -> Result<Vec<Option<usize>>> {
    let a = v
        .as_array()
        .ok_or_else(|| err(origin, format!("{at}: input shape {v} is not a list")))?;
    let dims = a.get(1..).unwrap_or(&[]);
    if dims.is_empty() {
        return Err(err(
            origin,
            format!("{at}: input shape {v} has no per-sample axes"),
        ));
    }
    let n = dims.len();
    dims.iter()
        .enumerate()
        .map(|(i, d)| match d.as_u64() {
            Some(k) if k > 0 => Ok(Some(k as usize)),
            // The length of a (length, channels) input may be None: any length.
            _ if d.is_null() && n == 2 && i == 0 => Ok(None),
            _ if d.is_null() => Err(err(
                origin,
                format!(
                    "{at}: input shape {v} has a variable (None) axis seqgrad cannot take; only \
                     the length of (length, channels) may be None"
                ),
            )),
            _ => Err(err(
                origin,
                format!("{at}: input shape {v} has a bad axis {d}"),
            )),
        })
        .collect()
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

/// Options of one Keras layer: each read once; `done` refuses whatever was not read.
struct Opts<'a> {
    cfg: &'a Map<String, Value>,
    used: Vec<String>,
    at: &'a str,
    origin: &'a str,
}

/// Options that never change what a converted model computes (initialisers only matter when
/// training from scratch, where seqgrad uses Keras' defaults).
const INERT: &[&str] = &[
    "name",
    "dtype",
    "seed",
    "kernel_initializer",
    "bias_initializer",
    "recurrent_initializer",
    "depthwise_initializer",
    "unit_forget_bias",
    "unroll",
    "implementation",
    "zero_output_for_mask",
];

/// Options that change training and are fine only when null (regularisers, constraints).
const NULL_ONLY: &[&str] = &[
    "kernel_regularizer",
    "bias_regularizer",
    "recurrent_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "recurrent_constraint",
    "lora_rank",
    "lora_alpha",
    "quantization_config",
    "noise_shape",
];

impl<'a> Opts<'a> {
    fn new(cfg: &'a Map<String, Value>, at: &'a str, origin: &'a str) -> Self {
        Opts {
            cfg,
            used: Vec::new(),
            at,
            origin,
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        err(self.origin, format!("{}: {msg}", self.at))
    }

    fn ignore(&mut self, keys: &[&str]) {
        self.used.extend(keys.iter().map(|k| k.to_string()));
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.push(key.to_string());
        self.cfg.get(key).filter(|v| !v.is_null())
    }

    /// A positive integer, or a one-element list of one (`kernel_size: [9]`).
    fn int(&mut self, key: &str, default: Option<usize>) -> Result<usize> {
        let v = match self.get(key) {
            None => return default.ok_or_else(|| self.err(format!("{key} is missing"))),
            Some(v) => v,
        };
        let n = match v {
            Value::Array(a) if a.len() == 1 => a[0].as_u64(),
            other => other.as_u64(),
        };
        n.map(|n| n as usize)
            .ok_or_else(|| self.err(format!("{key} = {v} is not a whole number (or [n])")))
    }

    fn opt_int(&mut self, key: &str) -> Result<Option<usize>> {
        if self.cfg.get(key).is_some_and(|v| !v.is_null()) {
            Ok(Some(self.int(key, None)?))
        } else {
            self.used.push(key.into());
            Ok(None)
        }
    }

    fn float(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("{key} = {v} is not a number"))),
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(format!("{key} = {v} is not true/false"))),
        }
    }

    fn string(&mut self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(format!("{key} = {v} is not a string"))),
        }
    }

    /// The option must have the one value seqgrad implements.
    fn require<V: PartialEq + std::fmt::Display>(
        &self,
        key: &str,
        got: V,
        want: V,
        what: &str,
    ) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(self.err(format!(
                "{key}={got} is not supported by seqgrad ({what}); use {key}={want}"
            )))
        }
    }

    fn require_bool(&mut self, key: &str, default: bool, what: &str) -> Result<()> {
        let v = self.boolean(key, default)?;
        self.require(key, v, default, what)
    }

    fn require_zero(&mut self, key: &str, what: &str) -> Result<()> {
        let v = self.float(key, 0.0)?;
        if v != 0.0 {
            return Err(self.err(format!(
                "{key}={v} is not supported by seqgrad ({what}); use {key}=0"
            )));
        }
        Ok(())
    }

    fn channels_last(&mut self) -> Result<()> {
        let f = self.string("data_format", "channels_last")?;
        self.require(
            "data_format",
            f.as_str(),
            "channels_last",
            "seqgrad is channels-last: (length, channels)",
        )
    }

    fn activation(&mut self, key: &str, default: &str) -> Result<Activation> {
        let name = match self.get(key) {
            None => default.to_string(),
            Some(Value::String(s)) => s.clone(),
            // Keras 3 may serialise a built-in activation as {"class_name": …, "config": …}.
            Some(Value::Object(o)) => o
                .get("config")
                .and_then(|c| c.get("name"))
                .or_else(|| o.get("class_name"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            Some(v) => return Err(self.err(format!("{key} = {v} is not an activation name"))),
        };
        activation_named(&name).ok_or_else(|| {
            self.err(format!(
                "{key} '{name}' is not supported by seqgrad; it has linear, relu, tanh, \
                 sigmoid, softmax"
            ))
        })
    }

    fn padding(&mut self, allow_causal: bool) -> Result<Padding> {
        let p = self.string("padding", "valid")?;
        match p.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            other => Err(self.err(format!(
                "padding='{other}' is not supported by seqgrad{}; use 'valid' or 'same'",
                if allow_causal { "" } else { " here" }
            ))),
        }
    }

    fn input_shape(&mut self) -> Result<Vec<Option<usize>>> {
        let v = self
            .get("batch_shape")
            .or_else(|| self.cfg.get("batch_input_shape").filter(|v| !v.is_null()))
            .cloned();
        self.used.push("batch_input_shape".into());
        match v {
            Some(v) => shape_of(&v, self.at, self.origin),
            None => Err(self.err("has no batch_shape")),
        }
    }

    /// Refuses every option not read and not known to be inert.
    fn done(&self, extra_inert: &[&str]) -> Result<()> {
        for (k, v) in self.cfg {
            if self.used.iter().any(|u| u == k) || INERT.contains(&k.as_str()) {
                continue;
            }
            if extra_inert.contains(&k.as_str()) {
                if v.as_bool() == Some(true) {
                    return Err(self.err(format!("{k}=true is not supported by seqgrad")));
                }
                continue;
            }
            if NULL_ONLY.contains(&k.as_str()) {
                if !v.is_null() {
                    return Err(self.err(format!(
                        "{k}={v} is not supported by seqgrad (it would change training); \
                         set it to None to convert"
                    )));
                }
                continue;
            }
            if k == "trainable" {
                if v.as_bool() == Some(false) {
                    return Err(self.err(
                        "trainable=false (a frozen layer) is not supported by seqgrad; every \
                         layer trains",
                    ));
                }
                continue;
            }
            return Err(self.err(format!(
                "option {k}={v} is not supported by seqgrad (it does not implement it)"
            )));
        }
        Ok(())
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

fn activation_named(name: &str) -> Option<Activation> {
    Some(match name.to_ascii_lowercase().as_str() {
        "linear" | "none" => Activation::Linear,
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "softmax" => Activation::Softmax,
        _ => return None,
    })
}

fn convert_layer(class: &str, o: &mut Opts<'_>) -> Result<LayerSpec> {
    let spec = match class {
        "Conv1D" | "Convolution1D" => {
            let filters = o.int("filters", None)?;
            let kernel_size = o.int("kernel_size", None)?;
            let strides = o.int("strides", Some(1))?;
            let padding = o.padding(false)?;
            let dilation_rate = o.int("dilation_rate", Some(1))?;
            let groups = o.int("groups", Some(1))?;
            o.require(
                "groups",
                groups,
                1,
                "grouped convolutions are not implemented",
            )?;
            o.channels_last()?;
            let activation = o.activation("activation", "linear")?;
            let use_bias = o.boolean("use_bias", true)?;
            LayerSpec::Conv1d(Conv1dSpec {
                filters,
                kernel_size,
                strides,
                padding,
                dilation_rate,
                activation,
                use_bias,
            })
        }
        "MaxPooling1D" | "MaxPool1D" | "AveragePooling1D" | "AvgPool1D" => {
            let pool_size = o.int("pool_size", Some(2))?;
            let strides = o.opt_int("strides")?;
            let padding = o.padding(false)?;
            o.channels_last()?;
            let s = PoolSpec {
                pool_size,
                strides,
                padding,
            };
            if class.starts_with("Max") {
                LayerSpec::Maxpool1d(s)
            } else {
                LayerSpec::Avgpool1d(s)
            }
        }
        "GlobalMaxPooling1D" | "GlobalMaxPool1D" | "GlobalAveragePooling1D" | "GlobalAvgPool1D" => {
            o.channels_last()?;
            o.require_bool("keepdims", false, "the pooled axis is always dropped")?;
            if class.starts_with("GlobalMax") {
                LayerSpec::GlobalMaxpool1d(EmptySpec {})
            } else {
                LayerSpec::GlobalAvgpool1d(EmptySpec {})
            }
        }
        "Dense" => {
            let units = o.int("units", None)?;
            let activation = o.activation("activation", "linear")?;
            let use_bias = o.boolean("use_bias", true)?;
            LayerSpec::Dense(DenseSpec {
                units,
                activation,
                use_bias,
            })
        }
        "Flatten" => {
            o.channels_last()?;
            LayerSpec::Flatten(EmptySpec {})
        }
        "Dropout" => LayerSpec::Dropout(DropoutSpec {
            rate: o.float("rate", 0.0)?,
        }),
        "Activation" => LayerSpec::Activation(ActivationSpec {
            activation: o.activation("activation", "linear")?,
        }),
        "SimpleRNN" | "LSTM" | "GRU" => recurrent(class, o)?.into_layer(),
        "Bidirectional" => {
            let merge = o.string("merge_mode", "concat")?;
            let merge_mode = match merge.as_str() {
                "concat" => MergeMode::Concat,
                "sum" => MergeMode::Sum,
                "mul" => MergeMode::Mul,
                "ave" => MergeMode::Ave,
                other => {
                    return Err(o.err(format!(
                        "merge_mode={other} is not supported by seqgrad; it has concat, sum, \
                         mul, ave"
                    )))
                }
            };
            if o.cfg.get("merge_mode").is_some_and(Value::is_null) {
                return Err(o.err(
                    "merge_mode=None (two outputs) is not supported by seqgrad; it has concat, \
                     sum, mul, ave",
                ));
            }
            let inner = o
                .get("layer")
                .ok_or_else(|| o.err("has no wrapped layer"))?;
            let (iclass, icfg) =
                class_and_config(inner).ok_or_else(|| o.err("bad wrapped layer"))?;
            let iat = format!("{} wrapped layer ({iclass})", o.at);
            let mut io = Opts::new(icfg, &iat, o.origin);
            let fwd = recurrent(iclass, &mut io)?;
            if let Some(back) = o.get("backward_layer") {
                // Keras writes the backward copy out; it must be the forward layer read
                // backwards, nothing else.
                let (bclass, bcfg) =
                    class_and_config(back).ok_or_else(|| o.err("bad backward_layer"))?;
                let bat = format!("{} backward_layer ({bclass})", o.at);
                let mut bcfg = bcfg.clone();
                if bcfg.get("go_backwards").and_then(Value::as_bool) != Some(true) {
                    return Err(o.err(
                        "a backward_layer that does not read backwards (go_backwards=false) is \
                         not supported by seqgrad",
                    ));
                }
                bcfg.remove("go_backwards");
                let mut bo = Opts::new(&bcfg, &bat, o.origin);
                let bwd = recurrent(bclass, &mut bo)?;
                if bwd != fwd {
                    return Err(o.err(
                        "a backward_layer that differs from the forward layer is not \
                         supported by seqgrad (both directions share one configuration)",
                    ));
                }
            }
            LayerSpec::Bidirectional(BidirectionalSpec {
                layer: fwd,
                merge_mode,
            })
        }
        other => {
            return Err(o.err(format!(
                "Keras layer class {other} is not supported by seqgrad; it converts {SUPPORTED}"
            )))
        }
    };
    o.done(&[])?;
    Ok(spec)
}

fn class_and_config(v: &Value) -> Option<(&str, &Map<String, Value>)> {
    Some((
        v.get("class_name")?.as_str()?,
        v.get("config")?.as_object()?,
    ))
}

trait IntoLayer {
    fn into_layer(self) -> LayerSpec;
}

impl IntoLayer for RecurrentSpec {
    fn into_layer(self) -> LayerSpec {
        match self {
            RecurrentSpec::SimpleRnn(s) => LayerSpec::SimpleRnn(s),
            RecurrentSpec::Lstm(s) => LayerSpec::Lstm(s),
            RecurrentSpec::Gru(s) => LayerSpec::Gru(s),
        }
    }
}

fn recurrent(class: &str, o: &mut Opts<'_>) -> Result<RecurrentSpec> {
    let units = o.int("units", None)?;
    let return_sequences = o.boolean("return_sequences", false)?;
    let activation = o.activation("activation", "tanh")?;
    o.require_bool("return_state", false, "a layer returns one output")?;
    o.require_bool("go_backwards", false, "use Bidirectional to read backwards")?;
    o.require_bool("stateful", false, "every batch starts from a zero state")?;
    o.require_bool("time_major", false, "inputs are (batch, length, features)")?;
    o.require_bool("use_bias", true, "recurrent layers always have biases")?;
    o.require_zero(
        "dropout",
        "recurrent layers have no input dropout; add a Dropout layer",
    )?;
    o.require_zero("recurrent_dropout", "recurrent dropout is not implemented")?;
    // LSTM's unit_forget_bias (default true) is bias_init keras; false is zeros.
    let bias_init = if class == "LSTM" && !o.boolean("unit_forget_bias", true)? {
        Some(crate::spec::BiasInit::Zeros)
    } else {
        None
    };
    let spec = RnnSpec {
        units,
        return_sequences,
        activation,
        bias_init,
        ..Default::default()
    };
    let cell = match class {
        "SimpleRNN" => {
            if !matches!(activation, Activation::Tanh | Activation::Relu) {
                return Err(o.err(format!(
                    "activation '{}' is not supported by seqgrad for SimpleRNN; it has tanh, relu",
                    activation.name()
                )));
            }
            RecurrentSpec::SimpleRnn(spec)
        }
        "LSTM" | "GRU" => {
            o.require(
                "activation",
                activation.name(),
                "tanh",
                "gated cells use tanh",
            )?;
            let ra = o.activation("recurrent_activation", "sigmoid")?;
            o.require(
                "recurrent_activation",
                ra.name(),
                "sigmoid",
                "gates use the logistic sigmoid",
            )?;
            if class == "GRU" {
                o.require_bool(
                    "reset_after",
                    true,
                    "seqgrad's GRU applies the reset gate after the recurrent product, as PyTorch",
                )?;
                RecurrentSpec::Gru(spec)
            } else {
                RecurrentSpec::Lstm(spec)
            }
        }
        other => {
            return Err(o.err(format!(
                "Keras layer class {other} is not a recurrent layer seqgrad supports \
                 (SimpleRNN, LSTM, GRU)"
            )))
        }
    };
    o.done(&[])?;
    Ok(cell)
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
