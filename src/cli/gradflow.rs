//! `seqgrad gradflow`: the vanishing-gradient experiment in one command (see
//! [`crate::gradflow`] and `docs/gradflow.md`). Prints the summary table and writes
//! `gradflow.csv` (long format), `gradflow_summary.csv` and the pictures of
//! [`crate::plot::plot_gradflow`] (`gradflow_unidirectional.{png,svg}`,
//! `gradflow_bidirectional.{png,svg}`) into `--out`.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::format::print_stdout;
use crate::error::{Error, Result};
use crate::gradflow::{self, Cell, GradflowConfig};
use crate::run::with_threads;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Recurrent cells, comma-separated (simple_rnn, lstm, gru).
    #[arg(long, value_delimiter = ',', default_value = "simple_rnn,lstm,gru")]
    pub cells: Vec<String>,
    /// Sequence lengths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "25,50,100,200")]
    pub lengths: Vec<usize>,
    /// Which layers: uni, bi or both.
    #[arg(long, default_value = "both")]
    pub layers: String,
    /// Training steps (mini-batches of fresh records) per variant.
    #[arg(long, default_value_t = GradflowConfig::default().steps)]
    pub steps: usize,
    /// Records per training step.
    #[arg(long, default_value_t = GradflowConfig::default().batch_size)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = GradflowConfig::default().lr, allow_negative_numbers = true)]
    pub lr: f64,
    /// Held-out records for the accuracy.
    #[arg(long, default_value_t = GradflowConfig::default().test_count)]
    pub test_count: usize,
    /// Held-out records whose batch-mean ‖∂L/∂h_t‖ is recorded.
    #[arg(long, default_value_t = GradflowConfig::default().record_count)]
    pub record_count: usize,
    /// Seed of the data and the initial weights.
    #[arg(long, default_value_t = GradflowConfig::default().seed)]
    pub seed: u64,
    /// Output folder for gradflow.csv and gradflow_summary.csv.
    #[arg(long, default_value = "gradflow")]
    pub out: PathBuf,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No per-variant progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Args {
    /// The experiment's configuration, or a usage error.
    pub fn config(&self) -> Result<GradflowConfig> {
        let cells = self
            .cells
            .iter()
            .map(|c| Cell::parse(c))
            .collect::<Result<Vec<_>>>()?;
        let bidirectional = match self.layers.as_str() {
            "uni" => vec![false],
            "bi" => vec![true],
            "both" => vec![false, true],
            other => {
                return Err(Error::Usage(format!(
                    "--layers {other:?}: use uni, bi or both"
                )))
            }
        };
        let cfg = GradflowConfig {
            cells,
            lengths: self.lengths.clone(),
            bidirectional,
            steps: self.steps,
            batch_size: self.batch_size,
            lr: self.lr,
            test_count: self.test_count,
            record_count: self.record_count,
            seed: self.seed,
            verbose: !self.quiet,
            ..Default::default()
        };
        gradflow::check(&cfg)?;
        Ok(cfg)
    }
}

pub fn run(a: &Args) -> Result<()> {
    let cfg = a.config()?;
    let t0 = Instant::now();
    let results = with_threads(a.threads, || gradflow::run(&cfg))?;
    gradflow::write_csvs(&a.out, &results)?;
    let pictures = crate::plot::plot_gradflow(&a.out.join("gradflow.csv"), &a.out)?;
    let rows = gradflow::summary(&results);
    let mut text = gradflow::table(&rows);
    text.push_str(&format!(
        "\nfirst/last: batch-mean ‖∂L/∂h‖ at the first-processed step over the step feeding the \
         output; decay/step: its geometric mean per step. {} variants in {:.1}s; wrote {}, {}{}\n",
        results.len(),
        t0.elapsed().as_secs_f64(),
        a.out.join("gradflow.csv").display(),
        a.out.join("gradflow_summary.csv").display(),
        pictures
            .iter()
            .map(|p| format!(", {}", p.display()))
            .collect::<String>()
    ));
    print_stdout(&text)
}
