//! `seqgrad predict`: a table of model outputs per record: an `id` column (the record's id —
//! the FASTA header's first word, the `--id-column`/`id`/`name` column of a CSV/TSV — or its
//! 1-based row number), then one probability column per class named after the class (`class0`,
//! `class1` … when no labels.json is known). A binary head (dense of 1 unit with sigmoid on
//! two classes) writes one probability column named after the positive (second sorted) class
//! and a `predicted` column with the class its probability gives at threshold 0.5. The table is
//! tab-separated, or comma-separated (fields quoted as needed) when `--out` ends in `.csv`.
//!
//! The file is streamed ([`crate::run::Run::predict`]), so memory does not grow with the file;
//! a progress bar (bytes read) is shown when standard error is a terminal. `--out FILE` is
//! written to a temporary file renamed at the end, so an error part-way leaves no partial FILE.
//!
//! `--rc-average` averages the outputs for each sequence and its reverse complement; on a run
//! not trained with `--rc-augment` (per its `config.json`) it warns on stderr that the model
//! has not seen reverse complements.

use std::path::PathBuf;

use crate::cli::args::{at_least_one, ModelArgs};
use crate::cli::format::{has_ext, progress_bar, row, Sink};
use crate::data::{stream::RecordStream, ReadOptions};
use crate::error::Result;
use crate::run::DataOptions;
use crate::run::{predict::rc_average_warning, with_threads, Run};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences (CSV, TSV or FASTA); labels, if present, are ignored.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataOptions,
    /// The CSV/TSV column holding record ids (default: `id` or `name`, else the row number).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Average forward and reverse-complement predictions.
    #[arg(long)]
    pub rc_average: bool,
    /// Output table: comma-separated if it ends in .csv, else tab-separated (default: TSV on
    /// standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        a.model
            .check_fits(a.batch_size, crate::memory::Workload::Inference)?;
        let mut run: Run = a.model.open()?;
        let data = a.data_args.clone();
        run.policy(&data)?;
        if a.rc_average {
            // a config.json that cannot be read counts as no config.json (the warning says so)
            let cfg = run.config().ok().flatten();
            if let Some(w) = rc_average_warning(cfg.map(|c| c.rc_augment)) {
                eprintln!("seqgrad: warning: {w}");
            }
        }
        let opts = ReadOptions {
            require_labels: false,
            ..data.read_options()
        };
        let stream = RecordStream::open(&a.data, &opts, a.id_column.as_deref())?;
        let delim = match &a.out {
            Some(p) if has_ext(p, "csv") => b',',
            _ => b'\t',
        };
        let mut sink = Sink::create(a.out.as_deref())?;
        let mut rows = run.predict(stream, &data, a.batch_size, a.rc_average)?;
        sink.write(&row(&rows.columns(), delim))?;
        let progress = progress_bar(rows.bytes_read().1);
        while let Some(r) = rows.next() {
            let r = r?;
            let mut cells = vec![r.id];
            cells.extend(r.probs.iter().map(|v| format!("{v:.6}")));
            cells.extend(r.predicted);
            if !sink.write(&row(&cells, delim))? {
                break; // standard output was closed (`| head`): stop quietly
            }
            progress.set_position(rows.bytes_read().0);
        }
        progress.finish_and_clear();
        sink.finish()
    })
}
