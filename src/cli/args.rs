//! The argument groups several subcommands share (model, data, records, element type), their
//! value parsers, and the conversions into the library's types.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::{Pick, Run};

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
    pub fn open(&self) -> Result<Run> {
        match (&self.run, &self.model, &self.weights) {
            (Some(r), _, _) => Run::open_with_labels(r, self.labels.as_deref()),
            (None, Some(m), Some(w)) => Run::from_files(m, w, self.labels.as_deref()),
            _ => Err(Error::Usage(
                "give --run RUN_DIR, or --model M.json and --weights W.safetensors".into(),
            )),
        }
    }

    /// The memory check from the model file, before anything is loaded.
    pub fn check_fits(&self, batch: usize, workload: crate::memory::Workload) -> Result<()> {
        match (&self.run, &self.model) {
            (Some(r), _) => crate::run::check_fits(&r.join("model.json"), batch, workload),
            (None, Some(p)) => crate::run::check_fits(p, batch, workload),
            _ => Ok(()),
        }
    }
}

/// Which records of a data file to use.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordArgs {
    /// Use the first N records of --data.
    #[arg(long, value_name = "N", conflicts_with = "ids")]
    pub records: Option<usize>,
    /// Use the records with these ids (comma-separated), in this order.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub ids: Vec<String>,
}

impl RecordArgs {
    pub fn pick(&self) -> Pick {
        Pick {
            records: self.records,
            ids: self.ids.clone(),
        }
    }
}

/// Element type of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
        }
    }
}

/// A clap value parser for counts that must be at least 1 (`--epochs`, `--batch-size`): the
/// error names the flag, e.g. `invalid value '0' for '--epochs <EPOCHS>': must be at least 1`.
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// A path as given (the empty default of `--model`/`--data` means "not given").
pub fn any_path(s: &str) -> std::result::Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

/// A bundled file: relative to the current folder if it exists there, else to the crate root.
pub fn bundled(rel: &str) -> PathBuf {
    let p = PathBuf::from(rel);
    if p.exists() {
        p
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_one_refuses_zero() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert_eq!(at_least_one("0").unwrap_err(), "must be at least 1");
        assert!(at_least_one("-1").is_err());
    }
}
