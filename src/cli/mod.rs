//! The `seqgrad` command line. Each subcommand lives in its own file; every error a user can
//! cause comes back as an [`Error`] that `main` prints on one line with exit code 2.

use clap::{Parser, Subcommand};

use crate::error::Result;

pub mod evaluate;
pub mod grad;
pub mod predict;
pub mod summary;
pub mod synth;
pub mod train;

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
    /// Train a model on labelled sequences; writes a run folder (weights, labels, history).
    Train(Box<train::Args>),
    /// Loss and accuracy/confusion matrix (or ROC/PR AUC) of trained weights on labelled data.
    Evaluate(evaluate::Args),
    /// Class probabilities per record as TSV.
    Predict(predict::Args),
    /// Write a synthetic data set with planted JASPAR motifs.
    Synth(synth::Args),
    /// Exact gradients of a model for one input batch: output, input gradient, parameter gradients.
    Grad(grad::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Summary(a)) => summary::run(&a),
        Some(Command::Train(a)) => train::run(&a),
        Some(Command::Evaluate(a)) => evaluate::run(&a),
        Some(Command::Predict(a)) => predict::run(&a),
        Some(Command::Synth(a)) => synth::run(&a),
        // The main job: train the bundled splice model on the bundled splice data.
        Some(Command::Grad(a)) => grad::run(&a),
        // The main job: train the bundled splice model on the bundled splice data.
        None => train::run(&train::Args::main_job()),
    }
}
