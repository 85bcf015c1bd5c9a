//! `seqgrad bench --workload w1|w2|w3|MODEL.json [--batch-size N] [--mode train|infer]
//! [--threads N] [--seconds S] [--seed N]`: throughput of one workload on random one-hot data,
//! as ONE JSON line on stdout (see [`crate::run::bench`]).

use crate::error::Result;
use crate::run::bench::{measure, BenchMode, BenchOptions};
use crate::run::with_threads;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Forward + loss + backward + Adam update.
    Train,
    /// One inference forward pass (no caches).
    Infer,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `w1`, `w2`, `w3` (issue 9's workloads) or a model file (JSON).
    #[arg(long)]
    pub workload: String,
    /// Records per step (default: the workload's, 32 for a model file).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// What one step is.
    #[arg(long, value_enum, default_value_t = ModeArg::Train)]
    pub mode: ModeArg,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds of timed steps (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seed of the model's weights (the random batch uses seed + 1).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let opts = BenchOptions {
        workload: args.workload.clone(),
        batch_size: args.batch_size,
        mode: match args.mode {
            ModeArg::Train => BenchMode::Train,
            ModeArg::Infer => BenchMode::Infer,
        },
        seconds: args.seconds,
        seed: args.seed,
    };
    let r = with_threads(args.threads, || measure(&opts))?;
    crate::cli::format::print_stdout(&(r.json() + "\n"))
}
