//! The model file: JSON with Keras-like, snake_case layer types.
//!
//! ```json
//! {"input_shape": [40, 4], "layers": [
//!   {"type": "conv1d", "filters": 100, "kernel_size": 10, "activation": "relu"},
//!   {"type": "maxpool1d", "pool_size": 5, "strides": 5},
//!   {"type": "bidirectional", "merge_mode": "concat",
//!    "layer": {"type": "simple_rnn", "units": 100, "return_sequences": true}},
//!   {"type": "flatten"},
//!   {"type": "dense", "units": 100, "activation": "relu"},
//!   {"type": "dense", "units": 2, "activation": "softmax"}]}
//! ```
//!
//! `input_shape` is `[length, channels]` (or `[features]`); the length may be `null`
//! (`[null, 4]`): the model then accepts sequences of any length, and batches of records of
//! different lengths padded to the longest (see `docs/variable-length.md`). Omitted options take the defaults
//! documented on each spec struct; `filters`/`kernel_size` (conv1d) and `units` (dense and
//! recurrent layers) are required. Unknown types or options are errors listing what is valid.
//! Layer types and activations are matched case-insensitively, ignoring `_` and `-`, so Keras
//! class names (`Conv1D`, `MaxPooling1D`, `Dense`, `ReLU` …) are accepted as aliases; a near
//! miss (`conv2d`, `relu6`) gets the nearest valid spelling suggested.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::registry::LAYER_TYPES;

pub mod plan;

// Every layer kind's spec lives in its layer's file; these are the paths the rest of the crate
// (and users) name them by.
pub use crate::layers::activation_layer::ActivationSpec;
pub use crate::layers::conv1d::Conv1dSpec;
pub use crate::layers::dense::DenseSpec;
pub use crate::layers::dropout::DropoutSpec;
pub use crate::layers::layer_norm::LayerNormSpec;
pub use crate::layers::pool::PoolSpec;
pub use crate::layers::registry::{EmptySpec, LayerSpec, Padding};
pub use crate::layers::rnn::{
    BiasInit, BidirectionalSpec, MergeMode, RecurrentInit, RecurrentSpec, RnnInit, RnnSpec,
};
pub use plan::{plan, plan_for_length, LayerPlan, Plan};

/// A whole model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Per-sample input shape: `[length, channels]` for sequences, `[features]` for flat data.
    /// `None` (`null` in JSON) as the length of a sequence, `[null, channels]`, builds a model
    /// for any length; every other entry must be a number.
    pub input_shape: Vec<Option<usize>>,
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// A spec with a fixed input shape (`[length, channels]` or `[features]`) and no layers.
    pub fn fixed(input_shape: &[usize]) -> Self {
        ModelSpec {
            input_shape: input_shape.iter().map(|&d| Some(d)).collect(),
            layers: Vec::new(),
        }
    }

    /// A spec for sequences of any length with `channels` channels (`[null, channels]`) and no
    /// layers.
    pub fn any_length(channels: usize) -> Self {
        ModelSpec {
            input_shape: vec![None, Some(channels)],
            layers: Vec::new(),
        }
    }

    /// Whether the input length is `null` (any length).
    pub fn is_variable_length(&self) -> bool {
        self.input_shape.len() == 2 && self.input_shape[0].is_none()
    }

    /// The input shape with a `null` length written as 0 (the placeholder seqgrad uses in
    /// concrete shapes for "unknown length"; 0 is never a valid fixed length).
    pub fn input_shape_or_zero(&self) -> Vec<usize> {
        self.input_shape.iter().map(|d| d.unwrap_or(0)).collect()
    }

    /// Parses a model from JSON text; `origin` names it in errors.
    ///
    /// Layer types and activation names are matched case-insensitively and without `_`/`-`
    /// (`MaxPooling1D`, `maxpooling1d`, `max_pool_1d`, `ReLU` all work); an unknown one is an
    /// error naming the layer and suggesting the nearest valid spelling. A missing required
    /// option (`filters`, `kernel_size`, `units`) is an error saying it is required.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let serr = |msg: String| Error::Spec {
            path: origin.to_string(),
            msg,
        };
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| serr(e.to_string()))?;
        if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
            for (i, layer) in layers.iter_mut().enumerate() {
                normalize_layer(layer).map_err(|m| serr(format!("layer #{i}: {m}")))?;
                if let Err(e) = LayerSpec::deserialize(&*layer) {
                    let kind = layer.get("type").and_then(|t| t.as_str()).unwrap_or("?");
                    return Err(serr(format!("layer #{i} ({kind}): {}", required(e))));
                }
            }
        }
        ModelSpec::deserialize(&value).map_err(|e| serr(required(e)))
    }

    /// The model as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("model spec serialises") // ok: plain structs of numbers, strings, enums
    }
}

/// Activation names (lower case, `_`/`-` removed) → the model-file name.
const ACTIVATIONS: &[(&str, &str)] = &[
    ("linear", "linear"),
    ("relu", "relu"),
    ("tanh", "tanh"),
    ("sigmoid", "sigmoid"),
    ("softmax", "softmax"),
];

/// Other enum-valued options, matched case-insensitively.
const LOWERCASE_OPTIONS: &[&str] = &["padding", "merge_mode", "init"];

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance (on chars).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Looks `name` up in `table` (see [`LAYER_TYPES`]); on a miss, the error names it, suggests
/// the nearest spelling when one is close, and lists the valid names.
fn canonical(
    name: &str,
    table: &[(&str, &'static str)],
    what: &str,
) -> std::result::Result<&'static str, String> {
    let key = squash(name);
    if let Some((_, c)) = table.iter().find(|(k, _)| *k == key) {
        return Ok(c);
    }
    let mut valid: Vec<&str> = table.iter().map(|(_, c)| *c).collect();
    valid.dedup();
    let best = table
        .iter()
        .map(|(k, c)| (edit_distance(&key, k), *c))
        .min_by_key(|(d, _)| *d);
    let suggestion = match best {
        Some((d, c)) if d <= 2.max(key.chars().count() / 3) => format!(" (did you mean {c:?}?)"),
        _ => String::new(),
    };
    Err(format!(
        "unknown {what} {name:?}{suggestion}; valid: {}",
        valid.join(", ")
    ))
}

/// Rewrites a layer object in place: `type` and `activation` to their model-file names, other
/// enum options to lower case; recurses into `bidirectional`'s `layer`.
fn normalize_layer(layer: &mut serde_json::Value) -> std::result::Result<(), String> {
    let Some(obj) = layer.as_object_mut() else {
        return Ok(()); // serde reports the wrong JSON type with the layer's index
    };
    if let Some(serde_json::Value::String(t)) = obj.get("type") {
        let c = canonical(t, LAYER_TYPES, "layer type")?;
        obj.insert("type".into(), c.into());
    }
    if let Some(serde_json::Value::String(a)) = obj.get("activation") {
        let c = canonical(a, ACTIVATIONS, "activation")?;
        obj.insert("activation".into(), c.into());
    }
    for key in LOWERCASE_OPTIONS {
        if let Some(serde_json::Value::String(v)) = obj.get_mut(*key) {
            *v = v.to_ascii_lowercase();
        }
    }
    if let Some(inner) = obj.get_mut("layer") {
        normalize_layer(inner).map_err(|m| format!("wrapped layer: {m}"))?;
    }
    Ok(())
}

/// serde's "missing field `x`" said the way a model file's author thinks of it.
fn required(e: serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.strip_prefix("missing field ") {
        Some(rest) => format!("missing required option {rest}"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    #[test]
    fn parses_the_user_story_model_with_defaults() {
        let text = r#"{"input_shape": [40, 4], "layers": [
          {"type": "conv1d", "filters": 100, "kernel_size": 10, "activation": "relu"},
          {"type": "maxpool1d", "pool_size": 5, "strides": 5},
          {"type": "bidirectional", "merge_mode": "concat", "layer": {"type": "simple_rnn", "units": 100, "return_sequences": true}},
          {"type": "flatten"},
          {"type": "dense", "units": 100, "activation": "relu"},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#;
        let m = ModelSpec::from_json(text, "test").unwrap();
        assert_eq!(m.layers.len(), 6);
        match &m.layers[0] {
            LayerSpec::Conv1d(c) => {
                assert_eq!(
                    (c.filters, c.kernel_size, c.strides, c.dilation_rate),
                    (100, 10, 1, 1)
                );
                assert!(c.use_bias);
                assert_eq!(c.padding, Padding::Valid);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.layers[2].kind(), "bidirectional(simple_rnn)");
        let again = ModelSpec::from_json(&m.to_json(), "again").unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn keras_aliases_are_accepted() {
        let text = r#"{"input_shape": [10, 4], "layers": [{"type": "Conv1D", "filters": 2, "kernel_size": 3},
            {"type": "MaxPooling1D"}, {"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1}]}"#;
        let m = ModelSpec::from_json(text, "t").unwrap();
        assert_eq!(m.layers[1].kind(), "maxpool1d");
        assert_eq!(m.layers[2].kind(), "lstm");
    }

    #[test]
    fn unknown_type_lists_valid_types() {
        let err = ModelSpec::from_json(
            r#"{"input_shape":[4,4],"layers":[{"type":"conv2d"}]}"#,
            "m.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("m.json"), "{err}");
        assert!(
            err.contains("conv2d") && err.contains("conv1d") && err.contains("bidirectional"),
            "{err}"
        );
    }

    #[test]
    fn unknown_option_lists_valid_options() {
        let err = ModelSpec::from_json(
            r#"{"input_shape":[4,4],"layers":[{"type":"conv1d","filters":2,"kernel":3}]}"#,
            "m.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("kernel") && err.contains("kernel_size"),
            "{err}"
        );
    }

    #[test]
    fn types_and_activations_are_case_insensitive_and_canonicalised() {
        let text = r#"{"input_shape": [10, 4], "layers": [
            {"type": "maxpooling1d"}, {"type": "MAX_POOL_1D"},
            {"type": "conv1D", "filters": 2, "kernel_size": 3, "activation": "ReLU", "padding": "SAME"},
            {"type": "Bidirectional", "layer": {"type": "simpleRNN", "units": 2}, "merge_mode": "Sum"},
            {"type": "activation", "activation": "Sigmoid"}]}"#;
        let m = ModelSpec::from_json(text, "t").unwrap();
        let kinds: Vec<String> = m.layers.iter().map(LayerSpec::kind).collect();
        assert_eq!(
            kinds,
            [
                "maxpool1d",
                "maxpool1d",
                "conv1d",
                "bidirectional(simple_rnn)",
                "activation"
            ]
        );
        match &m.layers[2] {
            LayerSpec::Conv1d(c) => {
                assert_eq!(c.activation, Activation::Relu);
                assert_eq!(c.padding, Padding::Same);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn near_misses_get_a_suggestion_and_far_misses_none() {
        assert_eq!(edit_distance("conv2d", "conv1d"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let e = canonical("Conv2D", LAYER_TYPES, "layer type").unwrap_err();
        assert!(e.contains("did you mean \"conv1d\""), "{e}");
        let e = canonical("reluu", ACTIVATIONS, "activation").unwrap_err();
        assert!(e.contains("did you mean \"relu\""), "{e}");
        let e = canonical("transformer", LAYER_TYPES, "layer type").unwrap_err();
        assert!(
            !e.contains("did you mean") && e.contains("valid: conv1d"),
            "{e}"
        );
    }

    #[test]
    fn required_options_are_named() {
        let err = ModelSpec::from_json(
            r#"{"input_shape":[4,4],"layers":[{"type":"flatten"},{"type":"dense"}]}"#,
            "m.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("layer #1 (dense): missing required option `units`"),
            "{err}"
        );
    }
}
