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
//!
//! `--data FILE` is streamed in chunks of `--batch-size` records: only each record's outputs
//! and labels are kept (the AUCs and the confusion matrix need all of them), never the
//! sequences, so memory grows by a few bytes per record and class, not with the sequences.
//! Without a labels.json the class names are first collected in one extra pass over the file.
//! `--split` reads the whole file as before (it needs the records' indices).

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
        match &self.run {
            // an unfinished run: the best weights of its last checkpoint
            Some(r) => crate::train::checkpoint::load_run_weights(&mut m, r)?,
            None => crate::weights::load(&mut m, &weights)?,
        }
        let labels = match labels {
            Some(p) => {
                let l = Labels::load(&p)?.for_model(
                    m.output_shape(),
                    m.head(),
                    &p.display().to_string(),
                )?;
                if m.output_shape() != [l.outputs()] {
                    return Err(Error::Usage(format!(
                        "the model has output {} but labels.json lists {} classes",
                        crate::tensor::fmt_shape(m.output_shape()),
                        l.classes.len()
                    )));
                }
                Some(l)
            }
            None => None,
        };
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
        // a model of any length takes records of mixed lengths (padded per batch, masked)
        let policy = data_args.policy()?.for_model(&model);
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
        check_fits_args(&a.model, a.batch_size, crate::memory::Workload::Inference)?;
        match a.split {
            Some(split) => run_split(a, split),
            None => run_file(a),
        }
    })
}

/// `evaluate --data FILE`: streamed in chunks of `--batch-size` records; only the outputs and
/// the labels of every record are kept (the AUCs and the confusion matrix need all of them),
/// not the sequences.
fn run_file(a: &Args) -> Result<()> {
    let path = a
        .data
        .as_ref()
        .ok_or_else(|| Error::Usage("give --data FILE (or --run RUN --split test)".into()))?;
    let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
    let mut opts = a.data_args.read_options();
    opts.multi_label |= labels.as_ref().is_some_and(|l| l.multi_label);
    let labels = match labels {
        Some(l) => l,
        // the class names come from the whole file: one pass over its labels first
        None => labels_of(path, &opts)?.for_model(
            model.output_shape(),
            model.head(),
            &path.display().to_string(),
        )?,
    };
    // the check is a courtesy: a config.json that cannot be read skips it
    let cfg = a.model.run_config().ok().flatten();
    let mut overlap = match &cfg {
        Some(c) => Overlap::new(c, path, &labels)?,
        None => Overlap::Unknown,
    };
    let mut stream = crate::data::stream::RecordStream::open(path, &opts, None)?;
    let progress = crate::cli::predict::progress_bar(stream.total_bytes());
    let mut lengths = crate::cli::predict::SameLength::new(policy);
    let (mut probs, mut ys) = (Vec::new(), Vec::new());
    let (mut n, mut total_loss) = (0usize, 0.0f64);
    while let Some(raw) = stream.next_chunk(a.batch_size)? {
        lengths.check(&raw)?;
        let ds = data::encode::<f32>(&raw, &labels, policy, true)?;
        crate::cli::predict::check_fits_chunk(&model, &ds, a.batch_size)?;
        train::check_fit(&model, ds.seq_len(), labels.outputs())?;
        overlap.count(&ds);
        let e = train::evaluate(&mut model, &ds, a.batch_size, labels.multi_label)?;
        total_loss += e.loss * ds.len() as f64;
        n += ds.len();
        probs.push(e.probs);
        ys.push(ds.y);
        progress.set_position(stream.bytes_read());
    }
    progress.finish_and_clear();
    let join = |parts: &[ndarray::Array2<f32>]| {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(ndarray::Axis(0), &views)
            .map_err(|e| Error::Train(format!("joining outputs: {e}")))
    };
    let (probs, y) = (join(&probs)?, join(&ys)?);
    if let Some(n) = overlap.found() {
        if n > 0 {
            if let Some(c) = &cfg {
                eprintln!(
                    "seqgrad: warning: {n} records of {} are training records of this run (same sequence as one of its {} training records), so the scores overstate accuracy on new data (use --split test to score the held-out records)",
                    path.display(),
                    c.splits.train_records
                );
            }
        }
    }
    let metrics = train::compute_metrics(&probs, &y, labels.multi_label);
    let eval = train::Evaluation {
        loss: total_loss / n.max(1) as f64,
        probs,
        metrics,
    };
    // the report needs the record count and the labels only: no sequences are kept
    let ds = Dataset {
        ids: Vec::new(),
        x: ndarray::Array3::zeros((n, 0, 4)),
        y,
        lengths: None,
    };
    write_metrics(a, &eval, &ds, &labels)?;
    crate::cli::train::print_stdout(&report(&path.display().to_string(), &eval, &ds, &labels))
}

/// The sorted class names of a labelled file, read in one streaming pass (as
/// [`data::load_labelled`] derives them).
fn labels_of(path: &Path, opts: &data::ReadOptions) -> Result<Labels> {
    let mut stream = crate::data::stream::RecordStream::open(path, opts, None)?;
    let mut classes = std::collections::BTreeSet::new();
    let mut multi = opts.multi_label;
    let mut has_labels = true;
    while let Some(raw) = stream.next_chunk(4096)? {
        multi |= raw.multi_label;
        has_labels &= raw.has_labels;
        for r in raw.records {
            classes.extend(r.labels);
        }
    }
    let raw = data::RawData {
        path: stream.path().to_string(),
        records: vec![crate::data::Record {
            id: String::new(),
            seq: String::new(),
            labels: classes.into_iter().collect(),
            line: 0,
        }],
        has_labels,
        multi_label: multi,
    };
    let l = Labels::from_data(&raw)?;
    l.check_classifier(&raw.path)?;
    Ok(l)
}

/// How many scored records are training records of the run, counted chunk by chunk.
enum Overlap {
    /// Cannot be told (the training data is gone or has changed, or another length).
    Unknown,
    /// The scored file is the training file itself: all of its training split.
    Whole(usize),
    /// Hashes of the training records' encoded sequences, and the count so far.
    Hashes {
        seen: std::collections::HashSet<u64>,
        len: usize,
        found: Option<usize>,
    },
}

fn row_hash(x: ndarray::ArrayView2<'_, f32>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in x.iter() {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// SHA-256 of a file read in blocks (or of a built-in file).
fn sha256_file(path: &Path) -> Result<String> {
    if let Some(b) = crate::bundled::get(path) {
        return Ok(crate::bundled::sha256_hex(b?));
    }
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl Overlap {
    fn new(cfg: &RunConfig, path: &Path, labels: &Labels) -> Result<Overlap> {
        if sha256_file(path)? == cfg.data.sha256 {
            return Ok(Overlap::Whole(cfg.splits.train_records));
        }
        let Ok(train_path) = cfg.resolve_data(None, &cfg.data) else {
            return Ok(Overlap::Unknown);
        };
        let s = &cfg.data_settings;
        let Ok((all, _)) =
            data::load_labelled::<f32>(&train_path, &s.read_options(), s.policy(), Some(labels))
        else {
            return Ok(Overlap::Unknown);
        };
        let Ok(idx) = config::expand(&cfg.splits.train, all.len()) else {
            return Ok(Overlap::Unknown);
        };
        let seen = idx
            .iter()
            .map(|&i| row_hash(all.x.index_axis(ndarray::Axis(0), i)))
            .collect();
        Ok(Overlap::Hashes {
            seen,
            len: all.seq_len(),
            found: Some(0),
        })
    }

    fn count(&mut self, ds: &Dataset<f32>) {
        if let Overlap::Hashes { seen, len, found } = self {
            if ds.seq_len() != *len {
                *found = None;
            }
            if let Some(f) = found {
                *f +=
                    ds.x.outer_iter()
                        .filter(|r| seen.contains(&row_hash(r.view())))
                        .count();
            }
        }
    }

    fn found(&self) -> Option<usize> {
        match self {
            Overlap::Unknown => None,
            Overlap::Whole(n) => Some(*n),
            Overlap::Hashes { found, .. } => *found,
        }
    }
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
    let policy = s.policy().for_model(&model);
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
    train::check_fit(&model, ds.seq_len(), labels.outputs())?;
    let eval = train::evaluate(&mut model, &ds, a.batch_size, labels.multi_label)?;
    write_metrics(a, &eval, &ds, &labels)?;
    crate::cli::train::print_stdout(&report(split.name(), &eval, &ds, &labels))
}

/// [`check_fits_file`] for `evaluate`/`predict`'s model options (`--run` or `--model`).
pub fn check_fits_args(
    m: &ModelArgs,
    batch: usize,
    workload: crate::memory::Workload,
) -> crate::error::Result<()> {
    let path = match (&m.run, &m.model) {
        (Some(r), _) => r.join("model.json"),
        (None, Some(p)) => p.clone(),
        _ => return Ok(()),
    };
    crate::memory::check_fits_file(&path, batch, workload)
}
