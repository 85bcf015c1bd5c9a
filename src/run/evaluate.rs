//! Scoring trained weights on labelled data: a saved split of the run's training data
//! ([`Run::evaluate_split`]), or a whole file streamed in chunks ([`Run::evaluate_file`]), with
//! a typed [`Report`] (loss, metrics, outputs, confusion matrix or per-label AUCs, the JSON of
//! `test_metrics.json`).
//!
//! `evaluate_split` reads the data file as the run read it (format, columns, crop/pad from its
//! `config.json`); the data path comes from `config.json` unless given, and a file whose
//! SHA-256 differs from the recorded one is refused. `evaluate_file` keeps only each record's
//! outputs and labels (the AUCs and the confusion matrix need all of them), never the
//! sequences, and counts how many scored records are training records of the run when that can
//! be told ([`Report::training_overlap`]).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};

use super::config::{self, RunConfig};
use super::{DataOptions, Run};
use crate::data::{self, stream::RecordStream, Dataset, Labels};
use crate::error::{Error, Result};
use crate::metrics;
use crate::train::{self, Evaluation};

/// A saved split of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Loss and metrics of a model on labelled records.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was scored: the split's name, or the data file's path.
    pub name: String,
    pub loss: f64,
    /// `accuracy` (multi-class), `roc_auc` and `pr_auc` means (multi-label), or all three
    /// (binary head).
    pub metrics: Vec<(String, f64)>,
    /// `(records, outputs)` model outputs (after the head).
    pub probs: Array2<f32>,
    /// `(records, outputs)` targets.
    pub y: Array2<f32>,
    pub labels: Labels,
    /// How many scored records are training records of the run (`None`: cannot be told, or
    /// not asked).
    pub training_overlap: Option<usize>,
}

impl Report {
    /// The report of an evaluation against targets `y`.
    pub fn new(name: &str, eval: Evaluation<f32>, y: Array2<f32>, labels: &Labels) -> Report {
        Report {
            name: name.to_string(),
            loss: eval.loss,
            metrics: eval.metrics,
            probs: eval.probs,
            y,
            labels: labels.clone(),
            training_overlap: None,
        }
    }

    pub fn records(&self) -> usize {
        self.y.nrows()
    }

    /// A metric by name (`accuracy`, `roc_auc`, `pr_auc`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| k == name)
            .map(|&(_, v)| v)
    }

    /// The confusion matrix, `m[true][predicted]` (a binary head's 0.5 threshold included).
    pub fn confusion(&self) -> Vec<Vec<usize>> {
        if self.labels.binary {
            metrics::confusion(
                metrics::two_columns(self.probs.view()).view(),
                metrics::two_columns(self.y.view()).view(),
            )
        } else {
            metrics::confusion(self.probs.view(), self.y.view())
        }
    }

    /// Per-label ROC AUC and PR AUC (multi-label data; `None` where a label has one class only).
    pub fn per_label_auc(&self) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
        metrics::per_label_auc(self.probs.view(), self.y.view())
    }

    /// The metrics as JSON (`test_metrics.json`; `evaluate --metrics-out`).
    pub fn metrics_json(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert("records".into(), serde_json::json!(self.records()));
        m.insert("loss".into(), serde_json::json!(self.loss));
        for (k, v) in &self.metrics {
            m.insert(k.clone(), serde_json::json!(v));
        }
        if self.labels.multi_label {
            let (roc, pr) = self.per_label_auc();
            m.insert("per_label_roc_auc".into(), serde_json::json!(roc));
            m.insert("per_label_pr_auc".into(), serde_json::json!(pr));
        } else {
            m.insert("confusion".into(), serde_json::json!(self.confusion()));
        }
        m.insert("classes".into(), serde_json::json!(self.labels.classes));
        if let Some(p) = self.labels.positive() {
            m.insert("positive_class".into(), serde_json::json!(p));
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default() + "\n"
    }
}

impl Run<f32> {
    /// Scores exactly a saved split of the run's training data. `data` replaces the recorded
    /// data path (its SHA-256 must still match).
    pub fn evaluate_split(
        &mut self,
        split: SplitName,
        data: Option<&Path>,
        batch_size: usize,
    ) -> Result<Report> {
        let run = self
            .dir
            .clone()
            .ok_or_else(|| Error::Usage("--split needs --run RUN".into()))?;
        let cfg = config::load(&run)?.ok_or_else(|| {
            Error::Usage(format!(
                "{} has no config.json (trained by an older seqgrad), so its splits are not known; evaluate with --data FILE",
                run.display()
            ))
        })?;
        let labels = self
            .labels
            .clone()
            .ok_or_else(|| Error::Usage("the run has no labels.json".into()))?;
        let s = &cfg.data_settings;
        let policy = s.policy().for_model(&self.model);
        if let Some(t) = policy.target()? {
            train::check_input_len(&self.model, t)?;
        }
        let separate_valid = split == SplitName::Valid && cfg.valid_data.is_some();
        let file = match (&cfg.valid_data, split) {
            (Some(v), SplitName::Valid) => v,
            _ => &cfg.data,
        };
        let path = cfg.resolve_data(data, file)?;
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
        train::check_fit(&self.model, ds.seq_len(), labels.outputs())?;
        let eval = train::evaluate(&mut self.model, &ds, batch_size, labels.multi_label)?;
        Ok(Report::new(split.name(), eval, ds.y, &labels))
    }

    /// Scores a labelled file, streamed `batch_size` records at a time; `progress` is called
    /// after each chunk with the bytes read and the file's size (when known). Without class
    /// names the file's own sorted classes are collected first, in one extra pass.
    pub fn evaluate_file(
        &mut self,
        path: &Path,
        data: &DataOptions,
        batch_size: usize,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Report> {
        let policy = self.policy(data)?;
        let mut opts = data.read_options();
        opts.multi_label |= self.labels.as_ref().is_some_and(|l| l.multi_label);
        let labels = match &self.labels {
            Some(l) => l.clone(),
            // the class names come from the whole file: one pass over its labels first
            None => labels_of(path, &opts)?.for_model(
                self.model.output_shape(),
                self.model.head(),
                &path.display().to_string(),
            )?,
        };
        // the check is a courtesy: a config.json that cannot be read skips it
        let cfg = self.config().ok().flatten();
        let mut overlap = match &cfg {
            Some(c) => Overlap::new(c, path, &labels)?,
            None => Overlap::Unknown,
        };
        let mut stream = RecordStream::open(path, &opts, None)?;
        let mut lengths = super::predict::SameLength::new(policy);
        let (mut probs, mut ys) = (Vec::new(), Vec::new());
        let (mut n, mut total_loss) = (0usize, 0.0f64);
        while let Some(raw) = stream.next_chunk(batch_size)? {
            lengths.check(&raw)?;
            let ds = data::encode::<f32>(&raw, &labels, policy, true)?;
            super::predict::check_fits_chunk(&self.model, &ds, batch_size)?;
            train::check_fit(&self.model, ds.seq_len(), labels.outputs())?;
            overlap.count(&ds);
            let e = train::evaluate(&mut self.model, &ds, batch_size, labels.multi_label)?;
            total_loss += e.loss * ds.len() as f64;
            n += ds.len();
            probs.push(e.probs);
            ys.push(ds.y);
            progress(stream.bytes_read(), stream.total_bytes());
        }
        let join = |parts: &[Array2<f32>]| {
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            ndarray::concatenate(Axis(0), &views)
                .map_err(|e| Error::Train(format!("joining outputs: {e}")))
        };
        let (probs, y) = (join(&probs)?, join(&ys)?);
        let metrics = train::compute_metrics(&probs, &y, labels.multi_label);
        let eval = Evaluation {
            loss: total_loss / n.max(1) as f64,
            probs,
            metrics,
        };
        let mut report = Report::new(&path.display().to_string(), eval, y, &labels);
        report.training_overlap = overlap.found();
        Ok(report)
    }
}

/// The sorted class names of a labelled file, read in one streaming pass (as
/// [`data::load_labelled`] derives them).
fn labels_of(path: &Path, opts: &data::ReadOptions) -> Result<Labels> {
    let mut stream = RecordStream::open(path, opts, None)?;
    let mut classes = BTreeSet::new();
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
        records: vec![data::Record {
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
        seen: HashSet<u64>,
        len: usize,
        found: Option<usize>,
    },
}

fn row_hash(x: ArrayView2<'_, f32>) -> u64 {
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
            .map(|&i| row_hash(all.x.index_axis(Axis(0), i)))
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
