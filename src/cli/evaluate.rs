//! `seqgrad evaluate`: loss and accuracy + confusion matrix (multi-class) or per-label ROC/PR
//! AUC (multi-label) of trained weights on a labelled data file.

use std::path::{Path, PathBuf};

use crate::cli::train::{report, with_threads, DataArgs};
use crate::data::{self, Labels, LengthPolicy};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::train;

/// Where the trained model comes from: a run folder, or a model file and a weights file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelArgs {
    /// A run folder written by `seqgrad train` (model.json, weights.safetensors, labels.json).
    #[arg(long, conflicts_with_all = ["model", "weights"])]
    pub run: Option<PathBuf>,
    /// The model file (JSON).
    #[arg(long, requires = "weights")]
    pub model: Option<PathBuf>,
    /// The weights (safetensors).
    #[arg(long, requires = "model")]
    pub weights: Option<PathBuf>,
    /// Class names (labels.json; default: labels.json next to the weights, if any).
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

impl ModelArgs {
    /// Builds the model, loads the weights, and finds the class names (if known).
    pub fn load(&self) -> Result<(Sequential<f32>, Option<Labels>)> {
        let (model, weights, labels) = match (&self.run, &self.model, &self.weights) {
            (Some(r), _, _) => (
                r.join("model.json"),
                r.join("weights.safetensors"),
                Some(r.join("labels.json")),
            ),
            (None, Some(m), Some(w)) => {
                let near = w.parent().unwrap_or(Path::new(".")).join("labels.json");
                (m.clone(), w.clone(), near.exists().then_some(near))
            }
            _ => {
                return Err(Error::Usage(
                    "give --run RUN_DIR, or --model M.json and --weights W.safetensors".into(),
                ))
            }
        };
        let labels = self.labels.clone().or(labels);
        let mut m = Sequential::<f32>::from_file(&model, 0)?;
        crate::weights::load(&mut m, &weights)?;
        let labels = labels.map(|p| Labels::load(&p)).transpose()?;
        if let Some(l) = &labels {
            if m.output_shape() != [l.classes.len()] {
                return Err(Error::Usage(format!(
                    "the model has output {} but labels.json lists {} classes",
                    crate::tensor::fmt_shape(m.output_shape()),
                    l.classes.len()
                )));
            }
        }
        Ok((m, labels))
    }

    /// [`ModelArgs::load`], then the data options' length policy, checked against the model's
    /// input length before any data is read (so a huge `--pad` is refused, not allocated).
    pub fn load_for(
        &self,
        data_args: &DataArgs,
    ) -> Result<(Sequential<f32>, Option<Labels>, LengthPolicy)> {
        let (model, labels) = self.load()?;
        let policy = data_args.policy()?;
        if let Some(t) = policy.target()? {
            train::check_input_len(&model, t)?;
        }
        Ok((model, labels, policy))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labelled data (CSV, TSV or FASTA).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        crate::memory::check_fits_args(&a.model, a.batch_size, crate::memory::Workload::Inference)?;
        let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
        let (ds, labels) = data::load_labelled::<f32>(
            &a.data,
            &a.data_args.read_options(),
            policy,
            labels.as_ref(),
        )?;
        train::check_fit(&model, ds.seq_len(), labels.classes.len())?;
        let eval = train::evaluate(&mut model, &ds, a.batch_size, labels.multi_label)?;
        crate::cli::train::print_stdout(&report(&a.data.display().to_string(), &eval, &ds, &labels))
    })
}
