//! The layer registry: every layer kind seqgrad has, in one list ([`LayerSpec`] below).
//!
//! A layer kind is a type implementing [`LayerKind`] in the layer's own file, next to its
//! forward and backward passes: its spec (the options of the model file), its shape rule
//! ([`LayerKind::plan`]: validation, output shape and PyTorch-named parameters for a per-sample
//! input, the one rule that building a model, `summary`, the memory estimate and the Keras
//! importer all read), its memory rule, its builder and its Keras mapping. One line of the
//! registry ties it to its model-file type name, the spellings accepted for it, and serde's
//! aliases. See `docs/adding-a-layer.md`.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ShapeIssue};
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::Layer;
use crate::tensor::Float;

use crate::layers::activation_layer::{ActivationKind, ActivationSpec};
use crate::layers::conv1d::{Conv1dKind, Conv1dSpec};
use crate::layers::dense::{DenseKind, DenseSpec};
use crate::layers::dropout::{DropoutKind, DropoutSpec};
use crate::layers::flatten::FlattenKind;
use crate::layers::global_pool::{GlobalAvgKind, GlobalMaxKind};
use crate::layers::layer_norm::{LayerNormKind, LayerNormSpec};
use crate::layers::pool::{AvgPoolKind, MaxPoolKind, PoolSpec};
use crate::layers::rnn::bidirectional::{BidirectionalKind, BidirectionalSpec};
use crate::layers::rnn::gru::GruKind;
use crate::layers::rnn::lstm::LstmKind;
use crate::layers::rnn::simple_rnn::SimpleRnnKind;
use crate::layers::rnn::RnnSpec;

/// A shape rule's answer, or why the input or the options are wrong.
pub type Issue<T> = std::result::Result<T, ShapeIssue>;

/// What a layer kind gives for one per-sample input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Per-sample output shape.
    pub output: Vec<usize>,
    /// Parameters by PyTorch name (`weight`, `bias_hh_l0_reverse` …) with their shapes, in the
    /// layer's order.
    pub params: Vec<(String, Vec<usize>)>,
}

impl Planned {
    /// An output shape and no parameters.
    pub fn new(output: Vec<usize>) -> Self {
        Planned {
            output,
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: impl Into<String>, shape: &[usize]) -> Self {
        self.params.push((name.into(), shape.to_vec()));
        self
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.params
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// What one layer holds for a whole batch, in bytes (see `crate::memory`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerBytes {
    /// Its output.
    pub out: f64,
    /// What its forward pass caches for backward (train and gradient passes).
    pub cache: f64,
    /// Buffers kept from one backward pass to the next (conv's `dX̂`).
    pub keep: f64,
    /// The peak transient of its backward pass besides incoming and outgoing gradients.
    pub tmp: f64,
    /// What an inference pass (`Mode::Infer`, no cache) keeps in working buffers.
    pub infer: f64,
    /// Inference only: the layer's output, handed back to it once the next layer has read it
    /// ([`crate::layers::Layer::recycle`]) and held until its next pass writes into it. (In
    /// training only a first-layer conv1d keeps a buffer between passes, over the optimizer
    /// step, after the training peak: not counted.)
    pub spare: f64,
}

/// The sizes a memory rule works from.
#[derive(Debug, Clone, Copy)]
pub struct MemoryIo<'a> {
    /// Per-sample input shape.
    pub input: &'a [usize],
    /// Per-sample output shape (from the shape rule).
    pub output: &'a [usize],
    /// Batch size.
    pub batch: f64,
    /// Bytes per element (4 for f32, 8 for f64).
    pub elem: f64,
    /// Training mode (dropout draws a mask).
    pub train: bool,
    /// Whether backward computes ∂L/∂input (training turns it off for the first layer).
    pub input_grad: bool,
    /// Whether the layer reads the model's input (the data: one-hot DNA, which `conv1d`
    /// multiplies without a patch matrix in inference).
    pub model_input: bool,
}

impl MemoryIo<'_> {
    /// Elements of the whole batch's input.
    pub fn input_elems(&self) -> f64 {
        self.batch * prod(self.input)
    }

    /// Elements of the whole batch's output.
    pub fn output_elems(&self) -> f64 {
        self.batch * prod(self.output)
    }

    /// [`LayerBytes`] with only the output counted.
    pub fn output_only(&self) -> LayerBytes {
        LayerBytes {
            out: self.output_elems() * self.elem,
            ..Default::default()
        }
    }
}

/// The product of a shape's dimensions as f64 (sizes in bytes, no overflow).
pub fn prod(shape: &[usize]) -> f64 {
    shape.iter().map(|&d| d as f64).product()
}

/// Where a layer that removed the time axis stands, for the fix suggested when a later layer
/// needs a sequence ([`LayerKind::removed_time_axis`]).
#[derive(Debug, Clone)]
pub struct TimeAxisHint {
    /// Index of the layer that removed the time axis.
    pub index: usize,
    /// Its input and output shapes, formatted (`(?, 8)`, `(16)`).
    pub before: String,
    pub after: String,
    /// What needs the sequence: "a recurrent layer" or "this layer".
    pub needs: &'static str,
    /// "the recurrent layer" or "this layer".
    pub this: &'static str,
    /// Whether the layer that needs the sequence is recurrent.
    pub recurrent: bool,
    /// For a `flatten`: the index of the first recurrent layer after it whose output is
    /// still a sequence at the end of the model once the flatten is removed (then the flatten
    /// belongs after that layer).
    pub move_after: Option<usize>,
}

impl TimeAxisHint {
    /// "`kind` (#j) removed the time axis, turning … into …".
    pub fn removed(&self, kind: &str) -> String {
        format!(
            "{kind} (#{}) removed the time axis, turning {} into {}",
            self.index, self.before, self.after
        )
    }
}

/// One layer kind: everything seqgrad knows about it besides its forward and backward passes,
/// which live on the built [`Layer`].
pub trait LayerKind {
    /// The options of the model file (a struct with serde derives and defaults).
    type Spec;

    /// The Keras classes this kind is imported from.
    const KERAS: &'static [&'static str];

    /// The shape rule: the output shape and parameters for a per-sample input shape
    /// (`[length, channels]` or `[features]`), or why the options or the input are wrong. The
    /// layer's constructor calls it, so the built layer, `summary` and the memory estimate
    /// cannot disagree.
    fn plan(s: &Self::Spec, input: &[usize]) -> Issue<Planned>;

    /// What the layer holds for a batch: output, forward cache, kept buffers, backward
    /// transient, inference buffers.
    fn memory(s: &Self::Spec, io: &MemoryIo<'_>) -> LayerBytes;

    /// Builds the layer for a per-sample input; `seed` is the layer's own seed (dropout),
    /// `rng` draws the initial weights.
    fn build<T: Float>(
        s: &Self::Spec,
        input: &[usize],
        seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>>;

    /// Converts a Keras layer of one of the classes given in its registry line. `o` reads the
    /// Keras config; options not read are refused afterwards.
    fn from_keras(class: &str, o: &mut KerasOpts<'_>) -> Result<Self::Spec>;

    /// Moves the Keras variables of this layer into PyTorch-named parameters. Default: none.
    fn keras_weights(_s: &Self::Spec, _vars: &mut KerasVars<'_>) -> Result<()> {
        Ok(())
    }

    /// The parameter count Keras reports for the same layer. Default: seqgrad's.
    fn keras_param_count(_s: &Self::Spec, planned: &Planned) -> usize {
        planned.param_count()
    }

    /// The type name shown in errors and `summary` (`name` is the model-file type).
    fn kind(_s: &Self::Spec, name: &'static str) -> String {
        name.into()
    }

    /// The `summary` table's "Layer (type)" cell for an output shape (`None` = unknown length).
    fn summary_kind(s: &Self::Spec, name: &'static str, _output: &[Option<usize>]) -> String {
        Self::kind(s, name)
    }

    /// Whether a model of any length builds this layer once for every length (shape-keeping
    /// layers that check their input: built at length 0), instead of at a probe length.
    fn any_length(_s: &Self::Spec) -> bool {
        false
    }

    /// Why a model of any length cannot have this layer, when that is so whatever the rest of
    /// the model (`flatten`: its output size is the length times the channels).
    fn needs_fixed_length(_s: &Self::Spec) -> Option<String> {
        None
    }

    /// Whether the layer needs a sequence input because it is recurrent (error wording).
    fn is_recurrent(_s: &Self::Spec) -> bool {
        false
    }

    /// The fix suggested when this layer removed the time axis a later layer needs.
    fn removed_time_axis(s: &Self::Spec, name: &'static str, h: &TimeAxisHint) -> String {
        format!(
            "{}: remove layer #{} or reorder the layers",
            h.removed(&Self::kind(s, name)),
            h.index
        )
    }
}

/// A `summary` type cell with a non-linear activation appended: `conv1d, relu`.
pub fn with_activation(kind: &str, activation: crate::activation::Activation) -> String {
    if activation == crate::activation::Activation::Linear {
        kind.to_string()
    } else {
        format!("{kind}, {}", activation.name())
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

/// The registry: `Variant(Spec) = "type name" => Kind, [spellings];` with serde's aliases as
/// attributes. Spellings are lower case without `_`/`-`/spaces (the model file's `type` is
/// matched that way); their order is the order of the "valid:" list in errors.
macro_rules! registry {
    ($( $(#[$attr:meta])* $variant:ident($spec:ty) = $name:literal => $kind:ty,
        [$($spelling:literal),* $(,)?]; )*) => {
        /// One layer of the model file, tagged by `type`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum LayerSpec {
            $( $(#[$attr])* #[serde(rename = $name)] $variant($spec), )*
        }

        /// Layer type spellings (lower case, `_`/`-`/space removed) → the model-file type name.
        pub const LAYER_TYPES: &[(&str, &str)] = &[ $( $( ($spelling, $name), )* )* ];

        impl LayerSpec {
            /// The type name as written in model files (`bidirectional(lstm)` for the wrapper).
            pub fn kind(&self) -> String {
                match self { $( LayerSpec::$variant(s) => <$kind>::kind(s, $name), )* }
            }

            /// The shape rule ([`LayerKind::plan`]).
            pub fn plan(&self, input: &[usize]) -> Issue<Planned> {
                match self { $( LayerSpec::$variant(s) => <$kind>::plan(s, input), )* }
            }

            /// The memory rule ([`LayerKind::memory`]).
            pub fn memory(&self, io: &MemoryIo<'_>) -> LayerBytes {
                match self { $( LayerSpec::$variant(s) => <$kind>::memory(s, io), )* }
            }

            /// Builds the layer ([`LayerKind::build`]).
            pub fn build<T: Float>(
                &self,
                input: &[usize],
                seed: u64,
                rng: &mut ChaCha8Rng,
            ) -> Issue<Box<dyn Layer<T>>> {
                match self { $( LayerSpec::$variant(s) => <$kind>::build(s, input, seed, rng), )* }
            }

            /// See [`LayerKind::summary_kind`].
            pub fn summary_kind(&self, output: &[Option<usize>]) -> String {
                match self {
                    $( LayerSpec::$variant(s) => <$kind>::summary_kind(s, $name, output), )*
                }
            }

            /// See [`LayerKind::any_length`].
            pub fn builds_for_any_length(&self) -> bool {
                match self { $( LayerSpec::$variant(s) => <$kind>::any_length(s), )* }
            }

            /// See [`LayerKind::needs_fixed_length`].
            pub fn needs_fixed_length(&self) -> Option<String> {
                match self { $( LayerSpec::$variant(s) => <$kind>::needs_fixed_length(s), )* }
            }

            /// True for layers that need a sequence input because they are recurrent
            /// (recurrent layers and the wrapper).
            pub fn is_recurrent(&self) -> bool {
                match self { $( LayerSpec::$variant(s) => <$kind>::is_recurrent(s), )* }
            }

            /// See [`LayerKind::removed_time_axis`].
            pub fn removed_time_axis(&self, h: &TimeAxisHint) -> String {
                match self {
                    $( LayerSpec::$variant(s) => <$kind>::removed_time_axis(s, $name, h), )*
                }
            }

            /// See [`LayerKind::keras_param_count`].
            pub fn keras_param_count(&self, planned: &Planned) -> usize {
                match self {
                    $( LayerSpec::$variant(s) => <$kind>::keras_param_count(s, planned), )*
                }
            }

            /// See [`LayerKind::keras_weights`].
            pub fn keras_weights(&self, vars: &mut KerasVars<'_>) -> Result<()> {
                match self { $( LayerSpec::$variant(s) => <$kind>::keras_weights(s, vars), )* }
            }

            /// Converts a Keras layer by class name, or `None` for a class no kind takes.
            pub fn from_keras(class: &str, o: &mut KerasOpts<'_>) -> Option<Result<LayerSpec>> {
                $(
                    if <$kind>::KERAS.contains(&class) {
                        return Some(<$kind>::from_keras(class, o).map(LayerSpec::$variant));
                    }
                )*
                None
            }
        }

        /// The Keras classes the registry converts, in registry order.
        pub fn keras_classes() -> Vec<&'static str> {
            let mut v: Vec<&'static str> = Vec::new();
            $( v.extend_from_slice(<$kind>::KERAS); )*
            v
        }
    };
}

registry! {
    #[serde(alias = "Conv1D", alias = "Conv1d")]
    Conv1d(Conv1dSpec) = "conv1d" => Conv1dKind, ["conv1d"];
    #[serde(alias = "MaxPooling1D", alias = "MaxPool1D", alias = "MaxPool1d")]
    Maxpool1d(PoolSpec) = "maxpool1d" => MaxPoolKind, ["maxpool1d", "maxpooling1d"];
    #[serde(alias = "AveragePooling1D", alias = "AvgPool1D", alias = "AvgPool1d")]
    Avgpool1d(PoolSpec) = "avgpool1d" => AvgPoolKind,
        ["avgpool1d", "averagepooling1d", "averagepool1d", "avgpooling1d"];
    #[serde(alias = "GlobalMaxPooling1D", alias = "GlobalMaxPool1D")]
    GlobalMaxpool1d(EmptySpec) = "global_maxpool1d" => GlobalMaxKind,
        ["globalmaxpool1d", "globalmaxpooling1d"];
    #[serde(alias = "GlobalAveragePooling1D", alias = "GlobalAvgPool1D")]
    GlobalAvgpool1d(EmptySpec) = "global_avgpool1d" => GlobalAvgKind,
        ["globalavgpool1d", "globalaveragepooling1d", "globalaveragepool1d", "globalavgpooling1d"];
    #[serde(alias = "Dense", alias = "Linear")]
    Dense(DenseSpec) = "dense" => DenseKind, ["dense", "linear"];
    #[serde(alias = "Flatten")]
    Flatten(EmptySpec) = "flatten" => FlattenKind, ["flatten"];
    #[serde(alias = "Dropout")]
    Dropout(DropoutSpec) = "dropout" => DropoutKind, ["dropout"];
    #[serde(alias = "Activation")]
    Activation(ActivationSpec) = "activation" => ActivationKind, ["activation"];
    #[serde(alias = "SimpleRNN", alias = "RNN")]
    SimpleRnn(RnnSpec) = "simple_rnn" => SimpleRnnKind, ["simplernn", "rnn"];
    #[serde(alias = "LSTM")]
    Lstm(RnnSpec) = "lstm" => LstmKind, ["lstm"];
    #[serde(alias = "GRU")]
    Gru(RnnSpec) = "gru" => GruKind, ["gru"];
    #[serde(alias = "Bidirectional")]
    Bidirectional(BidirectionalSpec) = "bidirectional" => BidirectionalKind, ["bidirectional"];
    #[serde(alias = "LayerNormalization", alias = "LayerNorm")]
    LayerNorm(LayerNormSpec) = "layer_norm" => LayerNormKind, ["layernorm", "layernormalization"];
}
