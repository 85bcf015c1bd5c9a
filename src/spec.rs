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
//! `input_shape` is `[length, channels]` (or `[features]`). Omitted options take the defaults
//! documented on each spec struct. Unknown types or options are errors listing what is valid.
//! Keras class names (`Conv1D`, `MaxPooling1D`, `Dense` …) are accepted as aliases.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};

/// A whole model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Per-sample input shape: `[length, channels]` for sequences, `[features]` for flat data.
    pub input_shape: Vec<usize>,
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// Parses a model from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Spec {
            path: origin.to_string(),
            msg: e.to_string(),
        })
    }

    /// Reads a model file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // Keras model JSON or a `.keras` archive (issue 11): converted by `crate::keras`.
        if let Some(spec) = crate::keras::detect_file(path)? {
            return Ok(spec);
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The model as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("model spec serialises") // ok: plain structs of numbers, strings, enums
    }
}

/// One layer of the model file, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    #[serde(alias = "Conv1D", alias = "Conv1d")]
    Conv1d(Conv1dSpec),
    #[serde(alias = "MaxPooling1D", alias = "MaxPool1D", alias = "MaxPool1d")]
    Maxpool1d(PoolSpec),
    #[serde(alias = "AveragePooling1D", alias = "AvgPool1D", alias = "AvgPool1d")]
    Avgpool1d(PoolSpec),
    #[serde(alias = "GlobalMaxPooling1D", alias = "GlobalMaxPool1D")]
    GlobalMaxpool1d(EmptySpec),
    #[serde(alias = "GlobalAveragePooling1D", alias = "GlobalAvgPool1D")]
    GlobalAvgpool1d(EmptySpec),
    #[serde(alias = "Dense", alias = "Linear")]
    Dense(DenseSpec),
    #[serde(alias = "Flatten")]
    Flatten(EmptySpec),
    #[serde(alias = "Dropout")]
    Dropout(DropoutSpec),
    #[serde(alias = "Activation")]
    Activation(ActivationSpec),
    #[serde(alias = "SimpleRNN", alias = "RNN")]
    SimpleRnn(RnnSpec),
    #[serde(alias = "LSTM")]
    Lstm(RnnSpec),
    #[serde(alias = "GRU")]
    Gru(RnnSpec),
    #[serde(alias = "Bidirectional")]
    Bidirectional(BidirectionalSpec),
}

impl LayerSpec {
    /// The type name as written in model files (`bidirectional(lstm)` for the wrapper).
    pub fn kind(&self) -> String {
        match self {
            LayerSpec::Conv1d(_) => "conv1d".into(),
            LayerSpec::Maxpool1d(_) => "maxpool1d".into(),
            LayerSpec::Avgpool1d(_) => "avgpool1d".into(),
            LayerSpec::GlobalMaxpool1d(_) => "global_maxpool1d".into(),
            LayerSpec::GlobalAvgpool1d(_) => "global_avgpool1d".into(),
            LayerSpec::Dense(_) => "dense".into(),
            LayerSpec::Flatten(_) => "flatten".into(),
            LayerSpec::Dropout(_) => "dropout".into(),
            LayerSpec::Activation(_) => "activation".into(),
            LayerSpec::SimpleRnn(_) => "simple_rnn".into(),
            LayerSpec::Lstm(_) => "lstm".into(),
            LayerSpec::Gru(_) => "gru".into(),
            LayerSpec::Bidirectional(b) => format!("bidirectional({})", b.layer.kind()),
        }
    }

    /// True for layers that need a sequence input (recurrent layers and the wrapper).
    pub fn is_recurrent(&self) -> bool {
        matches!(
            self,
            LayerSpec::SimpleRnn(_)
                | LayerSpec::Lstm(_)
                | LayerSpec::Gru(_)
                | LayerSpec::Bidirectional(_)
        )
    }
}

/// Options without fields (`flatten`, global pools).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptySpec {}

/// `valid` (no padding) or `same` (Keras: output length `ceil(L / stride)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    #[default]
    Valid,
    Same,
}

/// `conv1d`. Weight `(filters, in_channels, kernel_size)` as PyTorch; bias `(filters)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conv1dSpec {
    pub filters: usize,
    pub kernel_size: usize,
    /// Default 1.
    pub strides: usize,
    /// Default `valid`.
    pub padding: Padding,
    /// Default 1.
    pub dilation_rate: usize,
    /// Default `linear`.
    pub activation: Activation,
    /// Default true.
    pub use_bias: bool,
}

impl Default for Conv1dSpec {
    fn default() -> Self {
        Conv1dSpec {
            filters: 0,
            kernel_size: 0,
            strides: 1,
            padding: Padding::Valid,
            dilation_rate: 1,
            activation: Activation::Linear,
            use_bias: true,
        }
    }
}

/// `maxpool1d` / `avgpool1d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSpec {
    /// Default 2 (Keras).
    pub pool_size: usize,
    /// Default: `pool_size`.
    pub strides: Option<usize>,
    /// Default `valid`.
    pub padding: Padding,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            pool_size: 2,
            strides: None,
            padding: Padding::Valid,
        }
    }
}

impl PoolSpec {
    /// The effective stride (defaults to the pool size).
    pub fn stride(&self) -> usize {
        self.strides.unwrap_or(self.pool_size)
    }
}

/// `dense`: on `(features)` input, or on `(length, features)` applied at every time step.
/// Weight `(units, in_features)` as PyTorch; bias `(units)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenseSpec {
    pub units: usize,
    /// Default `linear`.
    pub activation: Activation,
    /// Default true.
    pub use_bias: bool,
}

impl Default for DenseSpec {
    fn default() -> Self {
        DenseSpec {
            units: 0,
            activation: Activation::Linear,
            use_bias: true,
        }
    }
}

/// `dropout`: inverted dropout, identity in eval mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropoutSpec {
    /// Fraction of inputs set to zero in training, in [0, 1).
    pub rate: f64,
}

/// `activation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivationSpec {
    pub activation: Activation,
}

/// Weight initialisation of recurrent layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnInit {
    /// Keras: Glorot-uniform input weights, orthogonal recurrent weights, zero biases, LSTM
    /// forget-gate bias 1.
    #[default]
    Keras,
    /// PyTorch: every weight and bias U(−1/√units, 1/√units).
    Pytorch,
}

/// `simple_rnn`, `lstm`, `gru`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnSpec {
    pub units: usize,
    /// Default false: output the last step `(units)`; true: `(length, units)`.
    pub return_sequences: bool,
    /// `simple_rnn` only: `tanh` (default) or `relu`.
    pub activation: Activation,
    /// Default `keras`.
    pub init: RnnInit,
}

impl Default for RnnSpec {
    fn default() -> Self {
        RnnSpec {
            units: 0,
            return_sequences: false,
            activation: Activation::Tanh,
            init: RnnInit::Keras,
        }
    }
}

/// The cell a `bidirectional` layer wraps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecurrentSpec {
    #[serde(alias = "SimpleRNN", alias = "RNN")]
    SimpleRnn(RnnSpec),
    #[serde(alias = "LSTM")]
    Lstm(RnnSpec),
    #[serde(alias = "GRU")]
    Gru(RnnSpec),
}

impl RecurrentSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            RecurrentSpec::SimpleRnn(_) => "simple_rnn",
            RecurrentSpec::Lstm(_) => "lstm",
            RecurrentSpec::Gru(_) => "gru",
        }
    }

    pub fn rnn(&self) -> &RnnSpec {
        match self {
            RecurrentSpec::SimpleRnn(s) | RecurrentSpec::Lstm(s) | RecurrentSpec::Gru(s) => s,
        }
    }
}

/// How `bidirectional` merges the two directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Forward first, then backward, on the feature axis (default).
    #[default]
    Concat,
    Sum,
    Mul,
    Ave,
}

/// `bidirectional`: wraps a recurrent layer; backward-direction parameters carry `_reverse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidirectionalSpec {
    pub layer: RecurrentSpec,
    #[serde(default)]
    pub merge_mode: MergeMode,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
