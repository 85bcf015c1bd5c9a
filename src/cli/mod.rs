//! The `seqgrad` command line. Each subcommand lives in its own file, which parses its
//! arguments, calls the library ([`crate::run`] and the modules below it) and formats the
//! result; no subcommand's file uses another's. The argument groups several subcommands share
//! are in [`args`], the shared output helpers in [`format`]. Every error a user can cause comes
//! back as an [`Error`](crate::error::Error) that `main` prints on one line with exit code 2.

use clap::{Parser, Subcommand};

use crate::error::Result;

pub mod args;
pub mod bench;
pub mod convert;
pub mod evaluate;
pub mod filters;
pub mod format;
pub mod grad;
pub mod gradcheck;
pub mod gradflow;
pub mod plot;
pub mod predict;
pub mod saliency;
pub mod summary;
pub mod synth;
pub mod train;

/// The run folder's `config.json` (moved to the library; kept here for its old path).
pub use crate::run::config;

/// Hand-written neural networks over DNA sequences, with exact gradients.
#[derive(Debug, Parser)]
#[command(
    name = "seqgrad",
    version,
    about,
    long_about = None,
    after_help = "With no command, seqgrad runs the demo: it trains the built-in splice model on the built-in splice data into runs/splice."
)]
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
    /// The vanishing-gradient experiment: ‖∂L/∂h_t‖ vs t for simple_rnn/lstm/gru at several lengths.
    Gradflow(gradflow::Args),
    /// First-layer conv filters as motifs (MEME), optionally matched against a motif file.
    Filters(filters::Args),
    /// Finite-difference check (f64) of every layer's and the whole model's gradients; exit 1 on failure.
    Gradcheck(gradcheck::Args),
    /// Per-base saliency of a trained model for sequences (gradient, integrated gradients, ISM) as TSV.
    Saliency(Box<saliency::Args>),
    /// Convert a Keras model (.keras archive or model JSON) to model.json + weights.safetensors.
    Convert(convert::Args),
    /// Draw a run's pictures (training curves, gradient norms, heat maps) as PNG and SVG.
    Plot(plot::Args),
    /// Throughput of a workload (w1, w2, w3 or a model file) on random data: one JSON line.
    Bench(bench::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Summary(a)) => summary::run(&a),
        Some(Command::Train(a)) => train::run(&a),
        Some(Command::Evaluate(a)) => evaluate::run(&a),
        Some(Command::Predict(a)) => predict::run(&a),
        Some(Command::Synth(a)) => synth::run(&a),
        Some(Command::Grad(a)) => grad::run(&a),
        Some(Command::Gradflow(a)) => gradflow::run(&a),
        Some(Command::Filters(a)) => filters::run(&a),
        Some(Command::Gradcheck(a)) => gradcheck::run(&a),
        Some(Command::Saliency(a)) => saliency::run(&a),
        Some(Command::Convert(a)) => convert::run(&a),
        Some(Command::Plot(a)) => plot::run(&a),
        Some(Command::Bench(a)) => bench::run(&a),
        // The main job: train the bundled splice model on the bundled splice data.
        None => train::run_options(&crate::run::TrainOptions::main_job()),
    }
}

/// Parses the command line. Help and version go to stdout (exit 0); a usage error becomes one
/// line, e.g. `error: unexpected argument '--epoch' found (tip: a similar argument exists:
/// '--epochs'); see 'seqgrad train --help'`, for `main` to print with exit code 2.
pub fn parse<I, S>(args: I) -> std::result::Result<Cli, ParseOutcome>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    use clap::error::ErrorKind;
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    Cli::try_parse_from(&args).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ParseOutcome::Print(e.to_string()),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ParseOutcome::Print(e.to_string()),
        _ => ParseOutcome::Error(one_line_usage_error(&e.to_string(), &args)),
    })
}

/// What `parse` returns instead of a command line.
#[derive(Debug)]
pub enum ParseOutcome {
    /// Help or version text to print to stdout (exit 0).
    Print(String),
    /// A usage error on one line (exit 2).
    Error(String),
}

/// Folds clap's multi-line error (message, usage, hint) into one line.
fn one_line_usage_error(text: &str, args: &[std::ffi::OsString]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if let Some(tip) = line.strip_prefix("tip: ") {
            parts.push(format!("({tip})"));
        } else if !line.is_empty() {
            parts.push(line.to_string());
        }
    }
    let sub = args
        .get(1)
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| {
            use clap::CommandFactory;
            Cli::command().get_subcommands().any(|c| c.get_name() == a)
        })
        .map(|a| format!("seqgrad {a} --help"))
        .unwrap_or_else(|| "seqgrad --help".into());
    let msg = parts.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg).to_string();
    format!("{msg}; see '{sub}'")
}
