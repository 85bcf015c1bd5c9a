//! Training: the loop ([`Trainer`], [`fit`]), its callbacks, history, evaluation and
//! diagnostics, one job per file:
//!
//! - [`trainer`]: the loop itself, its state ([`TrainState`]) and how a call ends ([`Outcome`]);
//! - [`callbacks`]: the hook trait ([`Callback`], [`Context`]) and the built-in callbacks
//!   (best weights, history files, progress, early stopping, stop on a flag);
//! - [`record`]: [`GradRecorder`], gradient/activation statistics written while training;
//! - [`tensorboard`]: [`TensorBoard`], TensorBoard event files of the history and the recorded
//!   statistics;
//! - [`checkpoint`]: saving and loading the full loop state for an exact resume, periodically
//!   while training;
//! - [`durable`]: atomic, `fsync`ed checkpoint folders with a manifest;
//! - [`history`]: the per-epoch [`History`];
//! - [`eval`]: evaluation, prediction and metrics;
//! - [`diagnose`]: where a non-finite loss, gradient or weight first appeared.
//!
//! [`fit`] is the short form: a [`Trainer`] with the built-in callbacks the [`TrainConfig`]
//! asks for, run to the end.

use std::path::PathBuf;

use crate::data::Dataset;
use crate::error::Result;
use crate::model::Sequential;
use crate::optim::OptimizerConfig;
use crate::tensor::Float;

pub mod callbacks;
pub mod checkpoint;
pub mod diagnose;
pub mod durable;
pub mod eval;
pub mod history;
pub mod record;
pub mod tensorboard;
pub mod trainer;

pub use callbacks::{
    BestWeights, Callback, CallbackState, Context, EarlyStopping, EpochLogs, HistoryWriter,
    ProgressPrinter, StopOnFlag,
};
pub use checkpoint::CheckpointEvery;
pub use eval::{
    check_fit, check_input_len, compute_metrics, evaluate, predict, predict_masked, Evaluation,
};
pub use history::History;
pub use record::GradRecorder;
pub use tensorboard::{TensorBoard, TensorBoardLog};
pub use trainer::{epoch_order, Outcome, TrainState, Trainer};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar with ETA and live loss when stderr is a terminal, plain lines otherwise.
    Auto,
    /// One line per epoch on stderr.
    Plain,
    /// Nothing.
    Quiet,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
    /// Early-stopping patience in epochs (`None`: train all epochs).
    pub patience: Option<usize>,
    pub seed: u64,
    /// Randomly reverse-complement half of the training records each epoch.
    pub rc_augment: bool,
    /// Where the best weights are saved (safetensors) whenever they improve.
    pub checkpoint: Option<PathBuf>,
    /// A folder where `history.csv` and `history.json` are rewritten (atomically) after every
    /// epoch, so a run that fails later keeps the history of its completed epochs.
    pub history_dir: Option<PathBuf>,
    pub progress: Progress,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 64,
            optimizer: OptimizerConfig::named("adam").unwrap_or(OptimizerConfig {
                kind: crate::optim::OptimizerKind::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                lr: 1e-3,
                weight_decay: 0.0,
                eps: 1e-7,
            }),
            clip_norm: None,
            clip_value: None,
            patience: Some(5),
            seed: 42,
            rc_augment: false,
            checkpoint: None,
            history_dir: None,
            progress: Progress::Auto,
        }
    }
}

/// Trains a model with the built-in callbacks `cfg` asks for (best weights kept and restored,
/// history files, progress, early stopping). `multi_label` selects the metrics (AUCs instead
/// of accuracy).
pub fn fit<T: Float>(
    model: &mut Sequential<T>,
    train: &Dataset<T>,
    valid: Option<&Dataset<T>>,
    multi_label: bool,
    cfg: &TrainConfig,
) -> Result<History> {
    let mut t = Trainer::new(cfg.clone(), multi_label);
    t.fit(model, train, valid)?;
    Ok(t.state.history.clone())
}
