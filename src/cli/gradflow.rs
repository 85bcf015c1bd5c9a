//! `seqgrad gradflow`: the vanishing-gradient experiment in one command (see
//! [`crate::gradflow`] and `docs/gradflow.md`). Prints the table (means over seeds with their
//! range) and writes `gradflow.csv` (long format), `gradflow_summary.csv` (one row per seed)
//! and the pictures of [`crate::plot::plot_gradflow`] into `--out`.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::train::{print_stdout, with_threads};
use crate::error::{Error, Result};
use crate::gradflow::{self, Cell, GradflowConfig, Init};
use crate::spec::ModelSpec;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Recurrent cells, comma-separated (simple_rnn, lstm, gru).
    #[arg(long, value_delimiter = ',', default_value = "simple_rnn,lstm,gru")]
    pub cells: Vec<String>,
    /// Sequence lengths, comma-separated [default: 50,200; a --model of fixed length: its length].
    #[arg(long, value_delimiter = ',')]
    pub lengths: Option<Vec<usize>>,
    /// Which layers: uni, bi or both.
    #[arg(long, default_value = "both")]
    pub layers: String,
    /// Gate-bias initialisations to compare, comma-separated (keras, chrono); simple_rnn has no
    /// gates and always runs with keras.
    #[arg(long, value_delimiter = ',', default_value = "keras,chrono")]
    pub init: Vec<String>,
    /// Seeds, comma-separated: every variant is run once per seed (data, weights, chrono draws).
    #[arg(long, alias = "seed", value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Width of the conv front end's filters.
    #[arg(long, default_value_t = GradflowConfig::default().kernel_size)]
    pub kernel_size: usize,
    /// Train on motifs at uniform positions (held-out motifs stay at the start).
    #[arg(long)]
    pub curriculum: bool,
    /// Run the experiment on this conv→RNN model file instead (its cell, layer and init as
    /// written; input (length or null, 4), 2 outputs).
    #[arg(long, conflicts_with_all = ["cells", "layers", "init", "kernel_size"])]
    pub model: Option<PathBuf>,
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
    /// Output folder for the CSVs and pictures.
    #[arg(long, default_value = "gradflow")]
    pub out: PathBuf,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No per-variant progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Only draw the pictures of the CSVs already in --out (no experiment).
    #[arg(long)]
    pub plot_only: bool,
}

impl Args {
    /// The experiment's configuration, or a usage error.
    pub fn config(&self) -> Result<GradflowConfig> {
        let cells = self
            .cells
            .iter()
            .map(|c| Cell::parse(c))
            .collect::<Result<Vec<_>>>()?;
        let inits = self
            .init
            .iter()
            .map(|c| Init::parse(c))
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
        let model = self.model.as_ref().map(ModelSpec::from_file).transpose()?;
        let lengths = match (&self.lengths, &model) {
            (Some(l), _) => l.clone(),
            (None, Some(m)) => m
                .input_shape
                .first()
                .copied()
                .flatten()
                .map_or_else(|| GradflowConfig::default().lengths, |l| vec![l]),
            (None, None) => GradflowConfig::default().lengths,
        };
        let cfg = GradflowConfig {
            cells,
            lengths,
            bidirectional,
            inits,
            seeds: self.seeds.clone(),
            steps: self.steps,
            batch_size: self.batch_size,
            lr: self.lr,
            test_count: self.test_count,
            record_count: self.record_count,
            kernel_size: self.kernel_size,
            curriculum: self.curriculum,
            model,
            verbose: !self.quiet,
            ..Default::default()
        };
        gradflow::check(&cfg)?;
        Ok(cfg)
    }
}

pub fn run(a: &Args) -> Result<()> {
    if a.plot_only {
        let pictures = crate::plot::plot_gradflow(&a.out.join("gradflow.csv"), &a.out)?;
        let names: Vec<String> = pictures.iter().map(|p| p.display().to_string()).collect();
        return print_stdout(&format!("wrote {}\n", names.join(", ")));
    }
    let cfg = a.config()?;
    let t0 = Instant::now();
    let (results, shortcut) = with_threads(a.threads, || {
        Ok((gradflow::run(&cfg)?, gradflow::shortcut_line(&cfg)?))
    })?;
    gradflow::write_csvs(&a.out, &results)?;
    let pictures = crate::plot::plot_gradflow(&a.out.join("gradflow.csv"), &a.out)?;
    let mut text = gradflow::table(&gradflow::aggregate(&gradflow::summary(&results)));
    text.push('\n');
    text.push_str(&gradflow::notes(&cfg));
    text.push_str(&shortcut);
    text.push_str(&format!(
        "{} runs in {:.1}s; wrote {}, {}{}\n",
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
