//! `seqgrad predict`: a TSV of model outputs per record: an `id` column (the record's id, or
//! its 1-based row number), then one probability column per class named after the class
//! (`class0`, `class1` … when no labels.json is known). `--rc-average` averages the outputs for
//! each sequence and its reverse complement; on a run not trained with `--rc-augment` (per its
//! `config.json`) it warns on stderr that the model has not seen reverse complements, since on
//! strand-specific data (splice sites) averaging in the other strand's prediction lowers
//! accuracy.

use std::path::PathBuf;

use crate::cli::evaluate::ModelArgs;
use crate::cli::train::{with_threads, DataArgs};
use crate::data::{self, Labels, ReadOptions};
use crate::error::Result;
use crate::train;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences (CSV, TSV or FASTA); labels, if present, are ignored.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Average forward and reverse-complement predictions.
    #[arg(long)]
    pub rc_average: bool,
    /// Output TSV (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = 256, value_parser = crate::cli::config::at_least_one)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        crate::memory::check_fits_args(&a.model, a.batch_size, crate::memory::Workload::Inference)?;
        let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
        if a.rc_average {
            // a config.json that cannot be read counts as no config.json (the warning says so)
            let cfg = a.model.run_config().ok().flatten();
            if let Some(w) = rc_average_warning(cfg.map(|c| c.rc_augment)) {
                eprintln!("seqgrad: warning: {w}");
            }
        }
        let opts = ReadOptions {
            require_labels: false,
            ..a.data_args.read_options()
        };
        let raw = data::read(&a.data, &opts)?;
        let k = model.output_shape().iter().product::<usize>();
        let labels = labels.unwrap_or_else(|| Labels {
            classes: (0..k).map(|i| format!("class{i}")).collect(),
            multi_label: false,
        });
        let ds = data::encode::<f32>(&raw, &labels, policy, false)?;
        train::check_fit(&model, ds.seq_len(), labels.classes.len())?;
        let mut probs = train::predict(&mut model, &ds.x, a.batch_size, false)?;
        if a.rc_average {
            let rc = train::predict(&mut model, &ds.x, a.batch_size, true)?;
            probs = (probs + rc) * 0.5f32;
        }
        let mut s = format!("id\t{}\n", labels.classes.join("\t"));
        for (id, row) in ds.ids.iter().zip(probs.outer_iter()) {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            s.push_str(&format!("{id}\t{}\n", cells.join("\t")));
        }
        match &a.out {
            Some(p) => crate::weights::write_atomic(p, s.as_bytes()),
            None => crate::cli::train::print_stdout(&s),
        }
    })
}

/// The warning for `--rc-average`, given whether the run was trained with `--rc-augment`
/// (`None`: not known, no `config.json`).
pub fn rc_average_warning(rc_augment: Option<bool>) -> Option<&'static str> {
    match rc_augment {
        Some(true) => None,
        Some(false) => Some(
            "--rc-average: this model was trained without --rc-augment, so it has not seen reverse complements; on strand-specific data (e.g. splice sites) averaging with them can lower accuracy a lot",
        ),
        None => Some(
            "--rc-average: no config.json beside these weights, so seqgrad cannot tell whether the model was trained with --rc-augment; without it the model has not seen reverse complements and averaging with them can lower accuracy",
        ),
    }
}
