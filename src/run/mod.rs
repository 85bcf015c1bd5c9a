//! The `Run` API: what the command line does, as a library. Every `seqgrad` subcommand parses
//! its arguments, calls into this module and formats what comes back; the Python bindings wrap
//! the same calls.
//!
//! - [`Run::open`] loads a run folder written by `train` (model, weights, labels, config and
//!   split); [`Run::from_files`] a model file with weights.
//! - [`Run::train`] trains ([`TrainOptions`] holds every `train` option) and returns the run.
//! - [`Run::evaluate_split`] / [`Run::evaluate_file`] return a typed [`Report`];
//!   [`Run::predict`] an iterator of typed rows ([`PredictionRow`]); [`grad`], [`saliency`],
//!   [`filters`] typed results (ndarray + names), not text.
//!
//! ```no_run
//! # fn main() -> seqgrad::Result<()> {
//! use seqgrad::run::{Run, SplitName};
//! let mut run: Run = Run::open("runs/splice")?;
//! let report = run.evaluate_split(SplitName::Test, None, 256)?;
//! println!("test accuracy {:?}", report.metric("accuracy"));
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{reader::Format, Labels, LengthPolicy, ReadOptions};
use crate::error::{Error, Result};
use crate::memory::Workload;
use crate::model::Sequential;
use crate::tensor::Float;

pub mod bench;
pub mod config;
pub mod convert;
pub mod evaluate;
pub mod filters;
pub mod grad;
pub mod gradcheck;
pub mod predict;
pub mod saliency;
pub mod source;
pub mod train;

pub use config::RunConfig;
pub use evaluate::{Report, SplitName};
pub use predict::{PredictionRow, Predictions};
pub use source::{Pick, Source};
pub use train::{TrainOptions, Trained};

/// How a data file is read: its columns, format and length policy (the data options every
/// subcommand that reads a data file shares; the command line's flags of the same names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct DataOptions {
    /// Name of the label column (default: `label`, `class` or `labels`, any case).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Name of the sequence column (default: `sequence` or `seq`, any case).
    #[arg(long)]
    pub sequence_column: Option<String>,
    /// Cut longer sequences to their centred N bases.
    #[arg(long, value_name = "N")]
    pub crop: Option<usize>,
    /// Pad shorter sequences with empty (all-zero) positions at the end up to N.
    #[arg(long, value_name = "N")]
    pub pad: Option<usize>,
    /// Several labels per record (split on `;` or `,`); implied by a `labels` column or
    /// `labels=` FASTA headers.
    #[arg(long)]
    pub multi_label: bool,
    /// The data file format (default: by extension: .tsv/.tab tab-separated,
    /// .fa/.fasta/.fna/.fas FASTA, anything else comma-separated).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

impl DataOptions {
    /// The reader's options (labels required).
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            label_column: self.label_column.clone(),
            sequence_column: self.sequence_column.clone(),
            multi_label: self.multi_label,
            require_labels: true,
            format: self.format,
        }
    }

    /// The length policy (`--crop`/`--pad` checked).
    pub fn policy(&self) -> Result<LengthPolicy> {
        let p = LengthPolicy {
            crop: self.crop,
            pad: self.pad,
            any_length: false,
        };
        p.target()?;
        Ok(p)
    }

    /// True when any option differs from its default.
    pub fn any_given(&self) -> bool {
        self != &DataOptions::default()
    }
}

/// Runs `f` in a rayon pool of `threads` threads (or the global pool).
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<R> + Send,
) -> Result<R> {
    match threads {
        None => f(),
        Some(0) => Err(Error::Usage("--threads must be at least 1".into())),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}

/// A trained model with what belongs to it: a run folder written by `train`, or a model file
/// with its weights (and class names, when known).
pub struct Run<T: Float = f32> {
    /// The run folder, when the weights come from one (given, or the weights' folder when it
    /// holds a `config.json`).
    pub dir: Option<PathBuf>,
    /// The model file and the weights file it was loaded from.
    pub model_path: PathBuf,
    pub weights_path: PathBuf,
    pub model: Sequential<T>,
    /// The class names (labels.json), when known.
    pub labels: Option<Labels>,
}

impl<T: Float> Run<T> {
    /// Opens a run folder written by `seqgrad train`: `model.json`, its weights and
    /// `labels.json`. The weights are `weights.safetensors` for a finished run; for an
    /// unfinished one (killed, interrupted or crashed) the best weights of its last
    /// checkpoint, with a warning on stderr.
    pub fn open(dir: impl AsRef<Path>) -> Result<Run<T>> {
        Run::open_with_labels(dir, None)
    }

    /// [`Run::open`] with the class names from `labels` instead of the run's labels.json.
    pub fn open_with_labels(dir: impl AsRef<Path>, labels: Option<&Path>) -> Result<Run<T>> {
        let dir = dir.as_ref();
        let labels = labels.map_or_else(|| dir.join("labels.json"), Path::to_path_buf);
        let mut run = Run::load(
            dir.join("model.json"),
            dir.join("weights.safetensors"),
            Some(labels),
            Some(dir),
        )?;
        run.dir = Some(dir.to_path_buf());
        Ok(run)
    }

    /// A model file with its weights; class names from `labels`, else from a `labels.json`
    /// next to the weights (if there is one).
    pub fn from_files(
        model: impl AsRef<Path>,
        weights: impl AsRef<Path>,
        labels: Option<&Path>,
    ) -> Result<Run<T>> {
        let weights = weights.as_ref();
        let near = weights
            .parent()
            .unwrap_or(Path::new("."))
            .join("labels.json");
        let labels = labels
            .map(Path::to_path_buf)
            .or(near.exists().then_some(near));
        let mut run = Run::load(
            model.as_ref().to_path_buf(),
            weights.to_path_buf(),
            labels,
            None,
        )?;
        let dir = weights
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        run.dir = dir.join(config::FILE).is_file().then(|| dir.to_path_buf());
        Ok(run)
    }

    /// The model, its weights (a run folder's: see [`Run::open`]) and its class names.
    fn load(
        model_path: PathBuf,
        weights_path: PathBuf,
        labels: Option<PathBuf>,
        run_dir: Option<&Path>,
    ) -> Result<Run<T>> {
        let mut model = Sequential::<T>::from_file(&model_path, 0)?;
        match run_dir {
            Some(r) => crate::train::checkpoint::load_run_weights(&mut model, r)?,
            None => crate::weights::load(&mut model, &weights_path)?,
        }
        let labels = match labels {
            Some(p) => {
                let l = Labels::load(&p)?.for_model(
                    model.output_shape(),
                    model.head(),
                    &p.display().to_string(),
                )?;
                if model.output_shape() != [l.outputs()] {
                    return Err(Error::Usage(format!(
                        "the model has output {} but labels.json lists {} classes",
                        crate::tensor::fmt_shape(model.output_shape()),
                        l.classes.len()
                    )));
                }
                Some(l)
            }
            None => None,
        };
        Ok(Run {
            dir: None,
            model_path,
            weights_path,
            model,
            labels,
        })
    }

    /// The run's `config.json` (`None` without a run folder, or a run made by an older
    /// seqgrad).
    pub fn config(&self) -> Result<Option<RunConfig>> {
        match &self.dir {
            Some(d) => config::load(d),
            None => Ok(None),
        }
    }

    /// The run's `history.json` as columns (`epoch`, `loss`, `val_loss`, … : one value per
    /// epoch; `null` values as NaN); `None` without a run folder or history.
    pub fn history(&self) -> Result<Option<std::collections::BTreeMap<String, Vec<f64>>>> {
        let Some(p) = self.dir.as_ref().map(|d| d.join("history.json")) else {
            return Ok(None);
        };
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: not a seqgrad history ({e})", p.display())))?;
        let columns = v
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, col)| {
                let col = col.as_array()?;
                Some((
                    k.clone(),
                    col.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
                ))
            })
            .collect();
        Ok(Some(columns))
    }

    /// The data options' length policy for this model, checked against the model's input
    /// length before any data is read (so a huge `--pad` is refused, not allocated).
    pub fn policy(&self, data: &DataOptions) -> Result<LengthPolicy> {
        // a model of any length takes records of mixed lengths (padded per batch, masked)
        let policy = data.policy()?.for_model(&self.model);
        if let Some(t) = policy.target()? {
            crate::train::check_input_len(&self.model, t)?;
        }
        Ok(policy)
    }

    /// The class names, or `class0`, `class1` … when no labels.json is known.
    pub fn labels_or_numbered(&self) -> Labels {
        self.labels.clone().unwrap_or_else(|| {
            let k = self.model.output_shape().iter().product::<usize>();
            Labels {
                classes: (0..k).map(|i| format!("class{i}")).collect(),
                multi_label: false,
                binary: false,
            }
        })
    }
}

/// Checks, from the model file alone, that a model of `batch` records fits in memory (before
/// any weight is allocated).
pub fn check_fits(model_file: &Path, batch: usize, workload: Workload) -> Result<()> {
    crate::memory::check_fits_file(model_file, batch, workload)
}
