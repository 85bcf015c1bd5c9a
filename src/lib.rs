//! # seqgrad
//!
//! Hand-written neural networks over sequences, for conv→RNN stacks on DNA (the DanQ family):
//! one-hot DNA → `conv1d` → `maxpool1d` → `dropout` → `bidirectional(lstm)` → `flatten` →
//! `dense` → softmax/sigmoid. Every layer's forward and backward pass is written out by hand
//! over `ndarray`; a [`Sequential`] model validates shapes when it is built.
//!
//! Layout is channels-last: sequences are `(batch, length, channels)`, flat data
//! `(batch, features)`. Elements are `f32` or `f64` ([`Float`]). Parameter names and shapes
//! follow PyTorch (`layers.{i}.weight`, `layers.{i}.weight_ih_l0_reverse` …).
//!
//! ```
//! use seqgrad::{Sequential, spec::{LayerSpec, Conv1dSpec, PoolSpec, DenseSpec}, activation::Activation};
//! # fn main() -> seqgrad::Result<()> {
//! let model: Sequential<f32> = Sequential::<f32>::builder(&[60, 4])
//!     .add(LayerSpec::Conv1d(Conv1dSpec { filters: 8, kernel_size: 9, activation: Activation::Relu, ..Default::default() }))
//!     .add(LayerSpec::Dense(DenseSpec { units: 3, activation: Activation::Softmax, ..Default::default() }))
//!     .build(7)?;
//! assert_eq!(model.output_shape(), &[52, 3]);
//! # Ok(())
//! # }
//! ```

pub mod activation;
pub mod batch;
pub mod bundled;
pub mod cli;
pub mod data;
pub mod error;
pub mod gradcheck;
pub mod gradflow;
pub mod keras;
pub mod layers;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod motifs;
pub mod optim;
pub mod plot;
pub mod run;
pub mod saliency;
pub mod spec;
pub mod system;
pub mod targets;
pub mod tensor;
pub mod train;
pub mod weights;

pub use error::{BuildError, Error, Result, ShapeIssue};
pub use layers::{Layer, Param};
pub use model::Sequential;
pub use tensor::{Float, Mode};

// What a library user needs without pinning `ndarray` separately (issue 11).
pub use activation::Activation;
pub use batch::{dna_batch, one_hot_targets, AsBatch, Predict, Targets};
pub use loss::Loss;
pub use ndarray;
pub use spec::{LayerSpec, ModelSpec};

// The `Run` API: what the command line does, as a library (a run folder, training, evaluation,
// prediction, gradients).
pub use run::{Run, TrainOptions};

/// The Rust code blocks of the README and of docs/ (keras, variable-length, saliency, training,
/// plots), compiled and run by `cargo test --doc` (the plots block, which needs a finished run
/// folder, is compiled only).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../docs/keras.md")]
#[doc = include_str!("../docs/variable-length.md")]
#[doc = include_str!("../docs/saliency.md")]
#[doc = include_str!("../docs/training.md")]
#[doc = include_str!("../docs/plots.md")]
pub struct ReadmeDoctests;
