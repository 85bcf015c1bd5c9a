//! `seqgrad train`: trains a model file on a labelled data file and writes a run folder
//! (`weights.safetensors` best weights, `model.json`, `labels.json`, `history.csv`,
//! `history.json`, `test_metrics.json` when there is a test split), by
//! [`crate::run::train::Training`]. With no subcommand, `seqgrad` runs the main job
//! ([`TrainOptions::main_job`]): the bundled splice model on the bundled splice data.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::args::{any_path, at_least_one};
use crate::cli::format::{print_stdout, report};
use crate::error::{Error, Result};
use crate::run::train::{Fitted, TrainOptions, Training};
use crate::run::with_threads;
use crate::run::DataOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The model file (JSON). Required unless --resume.
    #[arg(long, default_value = "", hide_default_value = true, value_parser = any_path)]
    pub model: PathBuf,
    /// Training data (CSV, TSV or FASTA). Required unless --resume.
    #[arg(long, default_value = "", hide_default_value = true, value_parser = any_path)]
    pub data: PathBuf,
    /// A separate validation file (otherwise --val-split of --data is held out).
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Maximum number of epochs (early stopping may end training sooner).
    #[arg(long, default_value_t = 30, value_parser = at_least_one)]
    pub epochs: usize,
    /// Records per training step (mini-batch size).
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    pub batch_size: usize,
    /// adam, adamw, sgd or rmsprop.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate (default: 1e-3; 0.01 for sgd).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// SGD Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw; default 0, adamw 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f64>,
    /// Clip each gradient entry to [-v, v].
    #[arg(long, allow_negative_numbers = true)]
    pub clip_value: Option<f64>,
    /// Early-stopping patience in epochs (0: no early stopping).
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Share of --data held out for validation (when --valid is not given).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub val_split: f64,
    /// Share of --data held out for the test.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub test_split: f64,
    /// Seed for weight initialisation, the splits, shuffling, dropout and augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run folder (default: runs/<model>-<data>-s<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Randomly reverse-complement half of the training records each epoch.
    #[arg(long)]
    pub rc_augment: bool,
    #[command(flatten)]
    pub data_args: DataOptions,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Progress output: auto (bar on a terminal), plain (a line per epoch) or quiet.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Record gradient statistics every N steps (and at step 0) into grads.csv and steps.csv
    /// in the run folder (see docs/training.md).
    #[arg(long, value_name = "N")]
    pub record_grads: Option<u64>,
    /// Continue an interrupted, killed or crashed run from its last checkpoint, with its saved
    /// settings (only --threads and --progress may be given too).
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// Write the resume checkpoint (RUN/checkpoint/) every N steps, every epoch, or never
    /// (then only Ctrl-C writes one).
    #[arg(long, value_name = "N|epoch|never", default_value = "epoch")]
    pub checkpoint_every: String,
    /// Do not draw the run's pictures (RUN/plots/: training curves and, with --record-grads,
    /// gradient pictures) at the end.
    #[arg(long)]
    pub no_plots: bool,
    /// Write TensorBoard event files into DIR: loss and metrics per epoch, with --record-grads
    /// the gradient statistics and histograms, the run's pictures at the end
    /// (`tensorboard --logdir DIR`).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

impl Args {
    /// The library's options: every flag by the same name.
    pub fn options(&self) -> TrainOptions {
        TrainOptions {
            model: self.model.clone(),
            data: self.data.clone(),
            valid: self.valid.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer.clone(),
            lr: self.lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            clip_norm: self.clip_norm,
            clip_value: self.clip_value,
            patience: self.patience,
            val_split: self.val_split,
            test_split: self.test_split,
            seed: self.seed,
            out: self.out.clone(),
            rc_augment: self.rc_augment,
            data_options: self.data_args.clone(),
            threads: self.threads,
            progress: self.progress.clone(),
            record_grads: self.record_grads,
            resume: self.resume.clone(),
            checkpoint_every: self.checkpoint_every.clone(),
            no_plots: self.no_plots,
            tensorboard: self.tensorboard.clone(),
        }
    }
}

pub fn run(a: &Args) -> Result<()> {
    run_options(&a.options())
}

/// Trains with `o` and prints what `seqgrad train` prints.
pub fn run_options(o: &TrainOptions) -> Result<()> {
    let threads = o.resolved()?.threads;
    with_threads(threads, || {
        let t = Training::prepare(o)?;
        print_stdout(&format!(
            "training {} ({} parameters) on {}: {} train / {} validation / {} test records, classes {}\n",
            t.options.model.display(),
            crate::model::group(t.model.param_count()),
            t.options.data.display(),
            t.train_set.len(),
            t.valid_set.as_ref().map_or(0, |v| v.len()),
            t.test_set.len(),
            t.labels.classes.join(", ")
        ))?;
        let out = t.out.clone();
        let fitted = t.fit(Some(stop_flag()?), |epoch, step| {
            print_stdout(&format!(
                "resuming {} at epoch {epoch}, step {step}\n",
                out.display()
            ))
        })?;
        if let Some((what, run)) = fitted.interruption() {
            eprintln!(
                "seqgrad: {what}; continue with: seqgrad train --resume {}",
                run.display()
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(130);
        }
        let Fitted::Finished(trained) = fitted else {
            return Err(Error::Train("training was interrupted".into()));
        };
        let h = &trained.history;
        print_stdout(&format!(
            "training time: {:.2} s ({} epochs, best epoch {}{})\n",
            trained.seconds,
            h.rows.len(),
            h.best_epoch,
            if h.stopped_early {
                ", stopped early"
            } else {
                ""
            }
        ))?;
        if let Some(r) = &trained.test {
            print_stdout(&report(r))?;
        }
        print_stdout(&format!("run folder: {}\n", out.display()))?;
        match &trained.plots {
            Some(Ok(files)) => print_stdout(&format!(
                "plots: {} ({} files; `seqgrad plot {}` redraws them)\n",
                out.join("plots").display(),
                files.len(),
                out.display()
            ))?,
            Some(Err(e)) => eprintln!("seqgrad: warning: could not draw the run's pictures: {e}"),
            None => {}
        }
        Ok(())
    })
}

/// SIGINT/SIGTERM set the returned flag (the loop then stops after the current step and
/// writes a checkpoint); a second signal while the flag is set exits at once with status 130.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&flag)))
            .map_err(|e| Error::Train(format!("cannot install the signal handler: {e}")))?;
    }
    Ok(flag)
}
