//! The `seqgrad` command line. Each subcommand lives in its own file; every error a user can
//! cause comes back as an [`Error`] that `main` prints on one line with exit code 2.

use clap::{Parser, Subcommand};

use crate::error::Result;

pub mod grad;
pub mod summary;

/// Hand-written neural networks over DNA sequences, with exact gradients.
#[derive(Debug, Parser)]
#[command(name = "seqgrad", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a model's layers, output shapes and parameter counts (or why it does not build).
    Summary(summary::Args),
    /// Exact gradients of a model for one input batch: output, input gradient, parameter gradients.
    Grad(grad::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Summary(a)) => summary::run(&a),
        Some(Command::Grad(a)) => grad::run(&a),
        None => summary::run(&summary::Args { model: "models/seed.json".into() }),
    }
}
