//! `seqgrad evaluate`: loss and accuracy + confusion matrix (multi-class) or per-label ROC/PR
//! AUC (multi-label) of trained weights on a labelled data file.
//!
//! `--split test|valid|train` (with `--run`) scores exactly that saved split of the data the
//! run was trained on ([`Run::evaluate_split`]); the test split's report is the one `train`
//! printed, to the last digit. `--data FILE` is streamed in chunks of `--batch-size` records
//! ([`Run::evaluate_file`]); a file that contains records of the run's training split gets a
//! warning on stderr naming how many.

use std::path::PathBuf;

use crate::cli::args::{at_least_one, ModelArgs};
use crate::cli::format::{print_stdout, progress_bar, report};
use crate::error::{Error, Result};
use crate::run::DataOptions;
use crate::run::{config, with_threads, Report, Run, SplitName};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labelled data (CSV, TSV or FASTA). With --split: default the file the run was trained on.
    #[arg(long, required_unless_present = "split")]
    pub data: Option<PathBuf>,
    /// Score exactly this saved split of the run's training data (needs --run).
    #[arg(long, value_enum, requires = "run")]
    pub split: Option<SplitArg>,
    #[command(flatten)]
    pub data_args: DataOptions,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = config::EVAL_BATCH_SIZE, value_parser = at_least_one)]
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
pub enum SplitArg {
    Train,
    Valid,
    Test,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        a.model
            .check_fits(a.batch_size, crate::memory::Workload::Inference)?;
        let r = match a.split {
            Some(split) => run_split(a, split)?,
            None => run_file(a)?,
        };
        if let Some(p) = &a.metrics_out {
            crate::weights::write_atomic(p, r.metrics_json().as_bytes())?;
        }
        print_stdout(&report(&r))
    })
}

fn run_file(a: &Args) -> Result<Report> {
    let path = a
        .data
        .as_ref()
        .ok_or_else(|| Error::Usage("give --data FILE (or --run RUN --split test)".into()))?;
    let mut run: Run = a.model.open()?;
    let progress = progress_bar(None);
    let r = run.evaluate_file(path, &a.data_args, a.batch_size, |done, total| {
        if let Some(t) = total {
            progress.set_length(t);
        }
        progress.set_position(done);
    })?;
    progress.finish_and_clear();
    if let (Some(n), Ok(Some(c))) = (r.training_overlap.filter(|&n| n > 0), run.config()) {
        eprintln!(
            "seqgrad: warning: {n} records of {} are training records of this run (same sequence as one of its {} training records), so the scores overstate accuracy on new data (use --split test to score the held-out records)",
            path.display(),
            c.splits.train_records
        );
    }
    Ok(r)
}

fn run_split(a: &Args, split: SplitArg) -> Result<Report> {
    if a.model.run.is_none() {
        return Err(Error::Usage("--split needs --run RUN".into()));
    }
    if a.data_args.any_given() {
        return Err(Error::Usage(
            "--split reads the data as the run did (format, columns, --crop/--pad from its config.json); drop the data options".into(),
        ));
    }
    let split = match split {
        SplitArg::Train => SplitName::Train,
        SplitArg::Valid => SplitName::Valid,
        SplitArg::Test => SplitName::Test,
    };
    let mut run: Run = a.model.open()?;
    run.evaluate_split(split, a.data.as_deref(), a.batch_size)
}
