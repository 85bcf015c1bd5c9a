//! A run folder that explains itself: `config.json`, written by `seqgrad train` before the
//! first epoch, records how the run was made — the full command line, every setting with its
//! effective value (defaults filled in), the model (path, SHA-256 and a copy), the data file
//! (path, absolute path, SHA-256, format and reading options), the classes, and the record
//! indices of the train/validation/test splits in a compact form (`"0-4,7,9-12"`: 0-based
//! indices of the records in file order, as ranges).
//!
//! `evaluate --run RUN --split test|valid|train` ([`crate::run::Run::evaluate_split`]) reads it back to score exactly the saved split
//! ([`load`], [`RunConfig::resolve_data`], [`expand`]); `predict --rc-average` reads
//! `rc_augment` from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundled;
use crate::data::reader::Format;
use crate::data::split::Split;
use crate::data::{Labels, LengthPolicy, ReadOptions};
use crate::error::{Error, Result};
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::spec::ModelSpec;
use crate::train::TrainConfig;

use super::DataOptions;

/// The file name in a run folder.
pub const FILE: &str = "config.json";

/// A file the run read: the path as given, its absolute form, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    /// The absolute path when it could be resolved (not for `bundled:` files).
    pub absolute_path: Option<String>,
    pub sha256: String,
}

impl FileRef {
    /// Hashes the file (or built-in file) at `path`.
    pub fn of(path: &Path) -> Result<FileRef> {
        let bytes = bundled::read(path)?;
        Ok(FileRef {
            path: path.display().to_string(),
            absolute_path: bundled::get(path)
                .is_none()
                .then(|| std::fs::canonicalize(path).ok())
                .flatten()
                .map(|p| p.display().to_string()),
            sha256: bundled::sha256_hex(&bytes),
        })
    }
}

/// How the data files were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSettings {
    /// The format used (given with `--format` or chosen by the extension).
    pub format: Format,
    pub label_column: Option<String>,
    pub sequence_column: Option<String>,
    pub multi_label: bool,
    pub crop: Option<usize>,
    pub pad: Option<usize>,
    /// Records in the `--data` file.
    pub records: usize,
}

impl DataSettings {
    /// The data options the run read its files with.
    pub fn options(&self) -> DataOptions {
        DataOptions {
            label_column: self.label_column.clone(),
            sequence_column: self.sequence_column.clone(),
            crop: self.crop,
            pad: self.pad,
            multi_label: self.multi_label,
            format: Some(self.format),
        }
    }

    pub fn read_options(&self) -> ReadOptions {
        self.options().read_options()
    }

    pub fn policy(&self) -> LengthPolicy {
        LengthPolicy {
            crop: self.crop,
            pad: self.pad,
            any_length: false,
        }
    }
}

/// The optimizer with every hyper-parameter in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub name: String,
    pub lr: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub momentum: Option<f64>,
    pub nesterov: Option<bool>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub rho: Option<f64>,
}

impl OptimizerSettings {
    fn of(o: &OptimizerConfig) -> Self {
        let mut s = OptimizerSettings {
            name: String::new(),
            lr: o.lr,
            weight_decay: o.weight_decay,
            eps: o.eps,
            momentum: None,
            nesterov: None,
            beta1: None,
            beta2: None,
            rho: None,
        };
        match o.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                s.name = "sgd".into();
                s.momentum = Some(momentum);
                s.nesterov = Some(nesterov);
            }
            OptimizerKind::Adam { beta1, beta2 } | OptimizerKind::AdamW { beta1, beta2 } => {
                s.name = if matches!(o.kind, OptimizerKind::Adam { .. }) {
                    "adam"
                } else {
                    "adamw"
                }
                .into();
                s.beta1 = Some(beta1);
                s.beta2 = Some(beta2);
            }
            OptimizerKind::RmsProp { rho } => {
                s.name = "rmsprop".into();
                s.rho = Some(rho);
            }
        }
        s
    }
}

/// The three splits as compact index lists (see [`compact`]) with their sizes. With a separate
/// `--valid` file, `valid` is empty and the validation records are that whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    pub train: String,
    pub valid: String,
    pub test: String,
    pub train_records: usize,
    pub valid_records: usize,
    pub test_records: usize,
}

/// Everything `config.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub seqgrad_version: String,
    /// The command line, one argument per entry.
    pub command_line: Vec<String>,
    /// The folder `train` ran in (relative paths below are relative to it).
    pub working_dir: Option<String>,
    pub model: FileRef,
    /// A copy of the model (also saved as `model.json`).
    pub model_spec: ModelSpec,
    pub data: FileRef,
    pub data_settings: DataSettings,
    /// The separate validation file (`--valid`), if any.
    pub valid_data: Option<FileRef>,
    pub classes: Vec<String>,
    pub multi_label: bool,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Early-stopping patience in epochs (0: none).
    pub patience: usize,
    pub optimizer: OptimizerSettings,
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
    pub val_split: f64,
    pub test_split: f64,
    pub rc_augment: bool,
    /// Threads the run used.
    pub threads: usize,
    /// Records per forward pass of the final test evaluation.
    pub eval_batch_size: usize,
    pub out: String,
    pub splits: Splits,
}

/// The batch size `train` evaluates the test split with (and `evaluate --split` uses by default).
pub const EVAL_BATCH_SIZE: usize = 256;

/// Everything [`write`] records about a `train` run.
pub struct RunFacts<'a> {
    /// The model file as given (`--model`).
    pub model_path: &'a Path,
    /// The data file as given (`--data`).
    pub data_path: &'a Path,
    /// The separate validation file (`--valid`), if any.
    pub valid_path: Option<&'a Path>,
    /// How the data files were read.
    pub data: &'a DataOptions,
    pub val_split: f64,
    pub test_split: f64,
    pub spec: &'a ModelSpec,
    pub cfg: &'a TrainConfig,
    pub labels: &'a Labels,
    pub split: &'a Split,
    /// Records in the `--data` file.
    pub records: usize,
    /// Records of the separate `--valid` file (when given).
    pub valid_records: usize,
}

/// Writes `out/config.json` (atomically) for a `train` run.
pub fn write(out: &Path, f: &RunFacts<'_>) -> Result<()> {
    let d = f.data;
    let cfg = RunConfig {
        seqgrad_version: env!("CARGO_PKG_VERSION").into(),
        command_line: std::env::args_os()
            .map(|s| s.to_string_lossy().into_owned())
            .collect(),
        working_dir: std::env::current_dir()
            .ok()
            .map(|p| p.display().to_string()),
        model: FileRef::of(f.model_path)?,
        model_spec: f.spec.clone(),
        data: FileRef::of(f.data_path)?,
        data_settings: DataSettings {
            format: d.format.unwrap_or_else(|| Format::of(f.data_path)),
            label_column: d.label_column.clone(),
            sequence_column: d.sequence_column.clone(),
            multi_label: f.labels.multi_label,
            crop: d.crop,
            pad: d.pad,
            records: f.records,
        },
        valid_data: f.valid_path.map(FileRef::of).transpose()?,
        classes: f.labels.classes.clone(),
        multi_label: f.labels.multi_label,
        seed: f.cfg.seed,
        epochs: f.cfg.epochs,
        batch_size: f.cfg.batch_size,
        patience: f.cfg.patience.unwrap_or(0),
        optimizer: OptimizerSettings::of(&f.cfg.optimizer),
        clip_norm: f.cfg.clip_norm,
        clip_value: f.cfg.clip_value,
        val_split: if f.valid_path.is_some() {
            0.0
        } else {
            f.val_split
        },
        test_split: f.test_split,
        rc_augment: f.cfg.rc_augment,
        threads: rayon::current_num_threads(),
        eval_batch_size: EVAL_BATCH_SIZE,
        out: out.display().to_string(),
        splits: Splits {
            train: compact(&f.split.train),
            valid: compact(&f.split.valid),
            test: compact(&f.split.test),
            train_records: f.split.train.len(),
            valid_records: if f.valid_path.is_some() {
                f.valid_records
            } else {
                f.split.valid.len()
            },
            test_records: f.split.test.len(),
        },
    };
    let text = serde_json::to_string_pretty(&cfg).map_err(|e| Error::Usage(e.to_string()))?;
    crate::weights::write_atomic(&out.join(FILE), (text + "\n").as_bytes())
}

/// Reads `run/config.json`; `None` when the run has none (made by an older seqgrad).
pub fn load(run: &Path) -> Result<Option<RunConfig>> {
    let p = run.join(FILE);
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Usage(format!("{}: not a seqgrad run config ({e})", p.display())))
}

impl RunConfig {
    /// The data file to read for `--split`: `given` (`--data`) if any, else the recorded path
    /// (its absolute form first, then as written, then relative to the recorded working
    /// folder). Its SHA-256 must match the recorded one: a file that changed since training
    /// would make the saved indices point at other records.
    pub fn resolve_data(&self, given: Option<&Path>, file: &FileRef) -> Result<PathBuf> {
        let path = match given {
            Some(p) => p.to_path_buf(),
            None => {
                let mut candidates: Vec<PathBuf> = Vec::new();
                if let Some(a) = &file.absolute_path {
                    candidates.push(a.into());
                }
                candidates.push(PathBuf::from(&file.path));
                if let Some(w) = &self.working_dir {
                    candidates.push(Path::new(w).join(&file.path));
                }
                candidates
                    .into_iter()
                    .find(|p| bundled::get(p).is_some() || p.is_file())
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "the run was trained on {}, which is not there any more; pass --data with that file",
                            file.path
                        ))
                    })?
            }
        };
        let got = bundled::sha256_hex(&bundled::read(&path)?);
        if got != file.sha256 {
            return Err(Error::Usage(format!(
                "{} has SHA-256 {}… but the run was trained on a file with SHA-256 {}… ({}); the saved split indices would point at other records",
                path.display(),
                &got[..12],
                file.sha256.chars().take(12).collect::<String>(),
                file.path
            )));
        }
        Ok(path)
    }
}

/// Sorted indices as ranges: `[0, 1, 2, 3, 4, 7, 9, 10, 11, 12]` → `"0-4,7,9-12"`.
pub fn compact(idx: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let start = idx[i];
        let mut end = start;
        while i + 1 < idx.len() && idx[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// The inverse of [`compact`], for a file of `len` records: an index `>= len` is an error
/// (checked before anything is allocated, so a damaged config.json cannot ask for a huge list).
pub fn expand(s: &str, len: usize) -> Result<Vec<usize>> {
    let bad = || {
        let short: String = s.chars().take(40).collect();
        Error::Usage(format!(
            "config.json: bad index list {short:?} for a file of {len} records"
        ))
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        // a split lists each record at most once, so it never holds more than `len` indices
        if b < a || b >= len || out.len() + (b - a) >= len {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_round_trips() {
        for idx in [
            vec![],
            vec![5],
            vec![0, 1, 2, 3, 4, 7, 9, 10, 11, 12],
            vec![1, 3, 5],
        ] {
            let c = compact(&idx);
            assert_eq!(expand(&c, 13).unwrap(), idx, "{c}");
        }
        assert_eq!(compact(&[0, 1, 2, 3, 4, 7, 9, 10, 11, 12]), "0-4,7,9-12");
        assert!(expand("3-1", 13).is_err() && expand("x", 13).is_err());
        assert!(expand("0-18446744073709551615", 13).is_err());
        assert!(expand("13", 13).is_err());
        assert!(expand("0-12,0-12", 13).is_err());
    }
}
