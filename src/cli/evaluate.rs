//! `seqgrad evaluate`: loss and accuracy + confusion matrix (multi-class) or per-label ROC/PR
//! AUC (multi-label) of trained weights on a labelled data file.
//!
//! `--split test|valid|train` (with `--run`) scores exactly that saved split of the data the
//! run was trained on, read as the run read it (format, columns, crop/pad from its
//! `config.json`); the data path comes from `config.json` unless `--data` is given, and a file
//! whose SHA-256 differs from the recorded one is refused. The test split's report is the one
//! `train` printed, to the last digit. Without `--split`, a file that contains records of the
//! run's training split gets a warning on stderr naming how many (when the training data is
//! still at its recorded path, or is the file being scored).

use std::path::{Path, PathBuf};

use crate::cli::config::{self, RunConfig};
use crate::cli::train::{report, with_threads, DataArgs};
use crate::data::{self, Dataset, Labels, LengthPolicy};
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
                {
                    crate::train::checkpoint::check_run_finished(r)?;
                    r.join("model.json")
                },
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

    /// The run folder the weights belong to: `--run`, or the weights' folder when it holds a
    /// `config.json` (`--weights RUN/weights.safetensors`).
    pub fn run_dir(&self) -> Option<PathBuf> {
        if let Some(r) = &self.run {
            return Some(r.clone());
        }
        let dir = self
            .weights
            .as_ref()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        dir.join(config::FILE).is_file().then_some(dir)
    }

    /// The run's `config.json`, if the weights come from a run folder that has one.
    pub fn run_config(&self) -> Result<Option<RunConfig>> {
        match self.run_dir() {
            Some(d) => config::load(&d),
            None => Ok(None),
        }
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
    /// Labelled data (CSV, TSV or FASTA). With --split: default the file the run was trained on.
    #[arg(long, required_unless_present = "split")]
    pub data: Option<PathBuf>,
    /// Score exactly this saved split of the run's training data (needs --run).
    #[arg(long, value_enum, requires = "run")]
    pub split: Option<SplitName>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = config::EVAL_BATCH_SIZE, value_parser = config::at_least_one)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the metrics as JSON (the format of a run's test_metrics.json).
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
}

/// A saved split of a run (`--split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitName {
    Train,
    Valid,
    Test,
}

impl SplitName {
    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Valid => "valid",
            SplitName::Test => "test",
        }
    }
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        crate::memory::check_fits_args(&a.model, a.batch_size, crate::memory::Workload::Inference)?;
        match a.split {
            Some(split) => run_split(a, split),
            None => run_file(a),
        }
    })
}

fn run_file(a: &Args) -> Result<()> {
    let path = a
        .data
        .as_ref()
        .ok_or_else(|| Error::Usage("give --data FILE (or --run RUN --split test)".into()))?;
    let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
    let (ds, labels) =
        data::load_labelled::<f32>(path, &a.data_args.read_options(), policy, labels.as_ref())?;
    train::check_fit(&model, ds.seq_len(), labels.classes.len())?;
    // the check is a courtesy: a config.json that cannot be read skips it
    if let Some(cfg) = a.model.run_config().ok().flatten() {
        if let Some(n) = training_overlap(&cfg, path, &ds, &labels)? {
            if n > 0 {
                eprintln!(
                    "seqgrad: warning: {n} records of {} are training records of this run (same sequence as one of its {} training records), so the scores overstate accuracy on new data (use --split test to score the held-out records)",
                    path.display(),
                    cfg.splits.train_records
                );
            }
        }
    }
    let eval = train::evaluate(&mut model, &ds, a.batch_size, labels.multi_label)?;
    write_metrics(a, &eval, &ds, &labels)?;
    crate::cli::train::print_stdout(&report(&path.display().to_string(), &eval, &ds, &labels))
}

fn write_metrics(
    a: &Args,
    eval: &train::Evaluation<f32>,
    ds: &Dataset<f32>,
    labels: &Labels,
) -> Result<()> {
    match &a.metrics_out {
        Some(p) => crate::weights::write_atomic(
            p,
            crate::cli::train::metrics_json(eval, ds, labels).as_bytes(),
        ),
        None => Ok(()),
    }
}

/// How many records of `ds` (read from `path`) are training records of the run: all of the
/// training split when `path` is the training file itself (same SHA-256), else the records
/// whose encoded sequence equals a training record's. `None` when it cannot be told (the
/// training data is gone or has changed).
fn training_overlap(
    cfg: &RunConfig,
    path: &Path,
    ds: &Dataset<f32>,
    labels: &Labels,
) -> Result<Option<usize>> {
    let sha = crate::bundled::sha256_hex(&crate::bundled::read(path)?);
    if sha == cfg.data.sha256 {
        return Ok(Some(cfg.splits.train_records));
    }
    let Ok(train_path) = cfg.resolve_data(None, &cfg.data) else {
        return Ok(None);
    };
    let s = &cfg.data_settings;
    let Ok((all, _)) =
        data::load_labelled::<f32>(&train_path, &s.read_options(), s.policy(), Some(labels))
    else {
        return Ok(None);
    };
    if all.seq_len() != ds.seq_len() {
        return Ok(None);
    }
    let Ok(idx) = config::expand(&cfg.splits.train, all.len()) else {
        return Ok(None);
    };
    let row_hash = |x: ndarray::ArrayView2<'_, f32>| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for v in x.iter() {
            v.to_bits().hash(&mut h);
        }
        h.finish()
    };
    let seen: std::collections::HashSet<u64> = idx
        .iter()
        .map(|&i| row_hash(all.x.index_axis(ndarray::Axis(0), i)))
        .collect();
    Ok(Some(
        ds.x.outer_iter()
            .filter(|r| seen.contains(&row_hash(r.view())))
            .count(),
    ))
}

/// `evaluate --run RUN --split S`.
fn run_split(a: &Args, split: SplitName) -> Result<()> {
    let run = a
        .model
        .run
        .as_ref()
        .ok_or_else(|| Error::Usage("--split needs --run RUN".into()))?;
    let d = &a.data_args;
    if d.label_column.is_some()
        || d.sequence_column.is_some()
        || d.crop.is_some()
        || d.pad.is_some()
        || d.multi_label
        || d.format.is_some()
    {
        return Err(Error::Usage(
            "--split reads the data as the run did (format, columns, --crop/--pad from its config.json); drop the data options".into(),
        ));
    }
    let cfg = config::load(run)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} has no config.json (trained by an older seqgrad), so its splits are not known; evaluate with --data FILE",
            run.display()
        ))
    })?;
    let (mut model, labels) = a.model.load()?;
    let labels = labels.ok_or_else(|| Error::Usage("the run has no labels.json".into()))?;
    let s = &cfg.data_settings;
    let policy = s.policy();
    if let Some(t) = policy.target()? {
        train::check_input_len(&model, t)?;
    }
    let separate_valid = split == SplitName::Valid && cfg.valid_data.is_some();
    let file = match (&cfg.valid_data, split) {
        (Some(v), SplitName::Valid) => v,
        _ => &cfg.data,
    };
    let path = cfg.resolve_data(a.data.as_deref(), file)?;
    let (all, labels) =
        data::load_labelled::<f32>(&path, &s.read_options(), policy, Some(&labels))?;
    let ds = if separate_valid {
        all
    } else {
        let (list, count) = match split {
            SplitName::Train => (&cfg.splits.train, cfg.splits.train_records),
            SplitName::Valid => (&cfg.splits.valid, cfg.splits.valid_records),
            SplitName::Test => (&cfg.splits.test, cfg.splits.test_records),
        };
        let idx = config::expand(list, all.len())?;
        if idx.len() != count || all.len() != s.records {
            return Err(Error::Usage(format!(
                "{}: config.json's {} split does not fit {} ({} records)",
                run.display(),
                split.name(),
                path.display(),
                all.len()
            )));
        }
        if idx.is_empty() {
            return Err(Error::Usage(format!(
                "the run has no {} split (it was trained with --{}-split 0)",
                split.name(),
                if split == SplitName::Test {
                    "test"
                } else {
                    "val"
                }
            )));
        }
        all.subset(&idx)
    };
    train::check_fit(&model, ds.seq_len(), labels.classes.len())?;
    let eval = train::evaluate(&mut model, &ds, a.batch_size, labels.multi_label)?;
    write_metrics(a, &eval, &ds, &labels)?;
    crate::cli::train::print_stdout(&report(split.name(), &eval, &ds, &labels))
}
