//! Training a run folder: [`TrainOptions`] holds every option of `seqgrad train` (same names,
//! dashes as underscores); [`Training::prepare`] checks them, reads and splits the data, builds
//! the model and writes the run folder's `model.json`, `labels.json` and `config.json`;
//! [`Training::fit`] trains (best weights, history, checkpoint on a stop request), scores the
//! test split into `test_metrics.json` and draws the run's pictures. [`Run::train`] does both.
//!
//! Files of an earlier run in the same folder ([`RUN_OUTPUTS`], [`RECORD_OUTPUTS`]) are deleted
//! first, so a run folder never mixes files of two runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::{self, EVAL_BATCH_SIZE};
use super::evaluate::Report;
use super::{DataOptions, Run};
use crate::data::{self, split, Dataset, Labels};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::spec::ModelSpec;
use crate::train::{self, History, Progress, TrainConfig};

/// Every option of `seqgrad train`, by the same names. Saved as `RUN/checkpoint/args.json`
/// for `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The model file (JSON).
    pub model: PathBuf,
    /// Training data (CSV, TSV or FASTA).
    pub data: PathBuf,
    /// A separate validation file (otherwise `val_split` of `data` is held out).
    pub valid: Option<PathBuf>,
    /// Maximum number of epochs (early stopping may end training sooner).
    pub epochs: usize,
    /// Records per training step.
    pub batch_size: usize,
    /// adam, adamw, sgd or rmsprop.
    pub optimizer: String,
    /// Learning rate (default: 1e-3; 0.01 for sgd).
    pub lr: Option<f64>,
    /// SGD momentum.
    pub momentum: Option<f64>,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw; default 0, adamw 0.01).
    pub weight_decay: Option<f64>,
    /// Clip gradients to this global L2 norm.
    pub clip_norm: Option<f64>,
    /// Clip each gradient entry to [-v, v].
    pub clip_value: Option<f64>,
    /// Early-stopping patience in epochs (0: no early stopping).
    pub patience: usize,
    /// Share of `data` held out for validation (when `valid` is not given).
    pub val_split: f64,
    /// Share of `data` held out for the test.
    pub test_split: f64,
    /// Seed for weight initialisation, the splits, shuffling, dropout and augmentation.
    pub seed: u64,
    /// Run folder (default: runs/<model>-<data>-s<seed>).
    pub out: Option<PathBuf>,
    /// Randomly reverse-complement half of the training records each epoch.
    pub rc_augment: bool,
    /// How the data files are read.
    #[serde(rename = "data_args")]
    pub data_options: DataOptions,
    /// Number of threads (default: all cores).
    pub threads: Option<usize>,
    /// Progress output: auto, plain or quiet.
    pub progress: String,
    /// Record gradient statistics every N steps into grads.csv and steps.csv.
    pub record_grads: Option<u64>,
    /// Continue the interrupted, killed or crashed run in this folder from its last
    /// checkpoint, with its saved settings.
    pub resume: Option<PathBuf>,
    /// Write the resume checkpoint (RUN/checkpoint/) every N steps, every `epoch`, or `never`
    /// (then only a stop request writes one).
    #[serde(default = "epoch")]
    pub checkpoint_every: String,
    /// Do not draw the run's pictures at the end.
    #[serde(default)]
    pub no_plots: bool,
    /// Write TensorBoard event files into this folder: the history after every epoch, the
    /// recorded gradient statistics and histograms (with `record_grads`), the pictures at the
    /// end (see [`crate::train::tensorboard`]).
    #[serde(default)]
    pub tensorboard: Option<PathBuf>,
}

impl Default for TrainOptions {
    /// The command line's defaults, with no model or data file.
    fn default() -> TrainOptions {
        TrainOptions {
            model: PathBuf::new(),
            data: PathBuf::new(),
            valid: None,
            epochs: 30,
            batch_size: 64,
            optimizer: "adam".into(),
            lr: None,
            momentum: None,
            nesterov: false,
            weight_decay: None,
            clip_norm: None,
            clip_value: None,
            patience: 5,
            val_split: 0.1,
            test_split: 0.1,
            seed: 42,
            out: None,
            rc_augment: false,
            data_options: DataOptions::default(),
            threads: None,
            progress: "auto".into(),
            record_grads: None,
            resume: None,
            checkpoint_every: epoch(),
            no_plots: false,
            tensorboard: None,
        }
    }
}

fn epoch() -> String {
    "epoch".into()
}

impl TrainOptions {
    /// The main job (`seqgrad` with no subcommand, `cargo run --release`): models/splice.json
    /// on data/splice.csv, both built into the binary (`bundled:` paths, see
    /// [`crate::bundled`]), into `runs/splice`. `SEQGRAD_DEMO_EPOCHS=N` (for tests) caps the
    /// epochs.
    pub fn main_job() -> TrainOptions {
        let epochs = std::env::var("SEQGRAD_DEMO_EPOCHS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(30);
        TrainOptions {
            model: PathBuf::from("bundled:models/splice.json"),
            data: PathBuf::from("bundled:data/splice.csv"),
            epochs,
            out: Some(PathBuf::from("runs/splice")),
            ..TrainOptions::default()
        }
    }

    /// Options by name, as a Python `train(**kwargs)` gives them: every field by its name
    /// (the command line's flag with dashes as underscores: `batch_size`, `label_column` …),
    /// and each boolean `no_X` flag also as `X` with the opposite value (`plots: false` is
    /// `no_plots: true`). Values are JSON (paths as strings, `null` for an option not given);
    /// the rest keep the command line's defaults. An unknown name is an error listing the
    /// valid ones; a value of the wrong type names the option.
    pub fn from_keywords(
        keywords: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<TrainOptions> {
        use serde_json::Value;
        const DATA: &str = "data_args";
        let Ok(Value::Object(mut top)) = serde_json::to_value(TrainOptions::default()) else {
            return Err(Error::Usage(
                "train options: cannot list the options".into(),
            ));
        };
        let data_names: Vec<String> = match top.get(DATA) {
            Some(Value::Object(d)) => d.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut valid: Vec<String> = top.keys().filter(|k| *k != DATA).cloned().collect();
        valid.extend(data_names.iter().cloned());
        let negated: Vec<String> = valid
            .iter()
            .filter_map(|k| k.strip_prefix("no_").map(str::to_string))
            .collect();
        valid.extend(negated.iter().cloned());
        valid.sort();
        for (given, value) in keywords {
            let name = given.replace('-', "_");
            let (key, value) = if negated.contains(&name) && !top.contains_key(&name) {
                let Value::Bool(b) = value else {
                    return Err(Error::Usage(format!(
                        "train option {given}: expected True or False, got {value}"
                    )));
                };
                (format!("no_{name}"), Value::Bool(!b))
            } else {
                (name, value.clone())
            };
            if key != DATA && top.contains_key(&key) {
                top.insert(key.clone(), value);
            } else if data_names.contains(&key) {
                if let Some(Value::Object(d)) = top.get_mut(DATA) {
                    d.insert(key.clone(), value);
                }
            } else {
                return Err(Error::Usage(format!(
                    "unknown train option {given:?}; the options are: {}",
                    valid.join(", ")
                )));
            }
            // a value of the wrong type is named here, not in a message about the whole set
            serde_json::from_value::<TrainOptions>(Value::Object(top.clone()))
                .map_err(|e| Error::Usage(format!("train option {given}: {e}")))?;
        }
        serde_json::from_value(Value::Object(top))
            .map_err(|e| Error::Usage(format!("train options: {e}")))
    }

    /// The run folder: `out`, or `runs/<model>-<data>-s<seed>`.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{}-{}-s{}",
                stem(&self.model),
                stem(&self.data),
                self.seed
            ))
        })
    }

    /// With `resume`: the settings of the run to continue (from `RUN/checkpoint/args.json`),
    /// with these `threads` and `progress`. Without: these options, which must name a model
    /// and a data file.
    pub fn resolved(&self) -> Result<TrainOptions> {
        let Some(run) = &self.resume else {
            let missing: Vec<&str> = [("--model", &self.model), ("--data", &self.data)]
                .into_iter()
                .filter(|(_, p)| p.as_os_str().is_empty())
                .map(|(f, _)| f)
                .collect();
            if !missing.is_empty() {
                return Err(Error::Usage(format!(
                    "the following required arguments were not provided: {} (or --resume RUN to continue a run); see 'seqgrad train --help'",
                    missing.join(", ")
                )));
            }
            return Ok(self.clone());
        };
        if !self.model.as_os_str().is_empty() || !self.data.as_os_str().is_empty() {
            return Err(Error::Usage(
                "--resume continues a run with its saved settings; only --threads and --progress may be given with it".into(),
            ));
        }
        let ck = train::checkpoint::dir_of(run);
        let p = ck.join("args.json");
        let Some(text) = train::checkpoint::read_file(&ck, "args.json")? else {
            return Err(Error::Usage(format!(
                "{} has no checkpoint to resume ({} is missing): it finished, or was stopped before its training began",
                run.display(),
                p.display()
            )));
        };
        let mut saved: TrainOptions = serde_json::from_slice(&text).map_err(|e| {
            Error::Usage(format!("{}: not a seqgrad resume file ({e})", p.display()))
        })?;
        saved.out = Some(run.to_path_buf());
        saved.resume = Some(run.to_path_buf());
        if self.threads.is_some() {
            saved.threads = self.threads;
        }
        saved.progress = self.progress.clone();
        Ok(saved)
    }

    /// The training loop's settings (every value checked).
    pub fn train_config(&self) -> Result<TrainConfig> {
        let mut opt = OptimizerConfig::named(&self.optimizer)?;
        positive("lr", self.lr)?;
        positive("clip-norm", self.clip_norm)?;
        positive("clip-value", self.clip_value)?;
        if let Some(lr) = self.lr {
            opt.lr = lr;
        }
        if let Some(wd) = self.weight_decay {
            if !(wd.is_finite() && wd >= 0.0) {
                return Err(Error::Usage(format!(
                    "--weight-decay must be >= 0, got {wd}"
                )));
            }
            opt.weight_decay = wd;
        }
        match &mut opt.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                let m = self
                    .momentum
                    .unwrap_or(if self.nesterov { 0.9 } else { 0.0 });
                if !(0.0..1.0).contains(&m) {
                    return Err(Error::Usage(format!(
                        "--momentum must be in [0, 1), got {m}"
                    )));
                }
                *momentum = m;
                *nesterov = self.nesterov;
            }
            _ => {
                if self.momentum.is_some() || self.nesterov {
                    return Err(Error::Usage(format!(
                        "--momentum/--nesterov apply to sgd, not {}",
                        self.optimizer
                    )));
                }
            }
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::Usage(
                "--epochs and --batch-size must be at least 1".into(),
            ));
        }
        let progress = match self.progress.as_str() {
            "auto" => Progress::Auto,
            "plain" => Progress::Plain,
            "quiet" => Progress::Quiet,
            other => {
                return Err(Error::Usage(format!(
                    "--progress must be auto, plain or quiet, got {other:?}"
                )))
            }
        };
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: opt,
            clip_norm: self.clip_norm,
            clip_value: self.clip_value,
            patience: (self.patience > 0).then_some(self.patience),
            seed: self.seed,
            rc_augment: self.rc_augment,
            checkpoint: None,
            history_dir: None,
            progress,
        })
    }
}

fn positive(name: &str, v: Option<f64>) -> Result<()> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(Error::Usage(format!(
            "--{name} must be a positive number, got {x}"
        ))),
        _ => Ok(()),
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

/// The files `train` writes into a run folder. They are removed at the start of a run, so a
/// run folder never mixes files of two runs (a failed re-run leaves no old weights behind for
/// `evaluate --run` to pick up). Other files in the folder are left alone.
pub const RUN_OUTPUTS: [&str; 7] = [
    "weights.safetensors",
    "config.json",
    "history.csv",
    "history.json",
    "test_metrics.json",
    "model.json",
    "labels.json",
];

/// The files `train --record-grads` writes (removed with [`RUN_OUTPUTS`]).
pub const RECORD_OUTPUTS: [&str; 2] = ["grads.csv", "steps.csv"];

fn remove_run_outputs(out: &Path) -> Result<()> {
    train::checkpoint::remove(&train::checkpoint::dir_of(out))?;
    for f in RUN_OUTPUTS.iter().chain(&RECORD_OUTPUTS) {
        let p = out.join(f);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
            _ => {}
        }
    }
    Ok(())
}

/// A run ready to train: options checked, data read and split, model built, run folder
/// written (unless resuming).
pub struct Training {
    /// The options in effect (a resumed run's saved ones).
    pub options: TrainOptions,
    pub out: PathBuf,
    pub model: Sequential<f32>,
    pub labels: Labels,
    pub train_set: Dataset<f32>,
    pub valid_set: Option<Dataset<f32>>,
    pub test_set: Dataset<f32>,
    config: TrainConfig,
}

/// How a [`Training::fit`] ended.
pub enum Fitted {
    Finished(Box<Trained>),
    /// Stopped on request after a step; the checkpoint to resume from is written.
    Interrupted {
        epoch: usize,
        step: u64,
        /// The batch within the epoch, of `batches` per epoch.
        batch: usize,
        batches: usize,
        checkpoint: PathBuf,
        out: PathBuf,
    },
}

impl Fitted {
    /// For a run stopped on request: `interrupted after step S (epoch E, batch B/N);
    /// checkpoint in DIR`, and the run folder to resume. `None` for a finished run.
    pub fn interruption(&self) -> Option<(String, &Path)> {
        match self {
            Fitted::Finished(_) => None,
            Fitted::Interrupted {
                epoch,
                step,
                batch,
                batches,
                checkpoint,
                out,
            } => Some((
                format!(
                    "interrupted after step {step} (epoch {epoch}, batch {batch}/{batches}); checkpoint in {}",
                    checkpoint.display()
                ),
                out,
            )),
        }
    }
}

/// A finished training run.
pub struct Trained {
    /// The run: the best weights, the class names, the run folder.
    pub run: Run,
    pub history: History,
    /// Wall-clock seconds of the training loop.
    pub seconds: f64,
    /// The test split's report (also in `test_metrics.json`), when there is a test split.
    pub test: Option<Report>,
    /// The pictures drawn into `RUN/plots/` (`None` with `no_plots`); a failure to draw them
    /// does not fail the run.
    pub plots: Option<Result<Vec<PathBuf>>>,
}

impl Training {
    /// Checks everything, reads and splits the data and builds the model; then (unless
    /// resuming) creates the run folder with `model.json`, `labels.json` and `config.json`.
    pub fn prepare(options: &TrainOptions) -> Result<Training> {
        let a = options.resolved()?;
        // Everything is checked before the run folder is created.
        let mut cfg = a.train_config()?;
        let policy = a.data_options.policy()?;
        let resuming = a.resume.is_some();
        let spec = match (&a.resume, &a.out) {
            (Some(_), Some(out)) => ModelSpec::from_file(out.join("model.json"))?,
            _ => ModelSpec::from_file(&a.model)?,
        };
        crate::memory::check_fits(&spec, a.batch_size, crate::memory::Workload::Train)?;
        let model = Sequential::<f32>::from_spec(&spec, a.seed)?;
        if let Some(t) = policy.target()? {
            train::check_input_len(&model, t)?;
        }
        // a model of any length takes records of mixed lengths (padded per batch, masked)
        let policy = policy.for_model(&model);
        let opts = a.data_options.read_options();
        let (mut all, labels) = data::load_labelled::<f32>(&a.data, &opts, policy, None)?;
        // a dense(1, sigmoid) model on two-class data is a binary head
        let labels = labels.for_model(
            model.output_shape(),
            model.head(),
            &a.data.display().to_string(),
        )?;
        if labels.binary {
            all.binarize();
        }
        let (train_set, valid_set, test_set, the_split) = match &a.valid {
            Some(v) => {
                let (vs, _) = data::load_labelled::<f32>(v, &opts, policy, Some(&labels))?;
                let s = split::stratified(&all.strata(), 0.0, a.test_split, a.seed)?;
                (all.subset(&s.train), Some(vs), all.subset(&s.test), s)
            }
            None => {
                let s = split::stratified(&all.strata(), a.val_split, a.test_split, a.seed)?;
                let v = (!s.valid.is_empty()).then(|| all.subset(&s.valid));
                (all.subset(&s.train), v, all.subset(&s.test), s)
            }
        };
        if model.is_variable_length() {
            // the estimate needs a length: the longest record
            let longest = all
                .max_len()
                .max(valid_set.as_ref().map_or(0, |v| v.max_len()));
            crate::memory::check_fits_length(
                &spec,
                a.batch_size,
                crate::memory::Workload::Train,
                longest,
            )?;
        }
        if let Some(v) = valid_set.as_ref().filter(|_| !model.is_variable_length()) {
            if v.seq_len() != train_set.seq_len() {
                return Err(Error::Usage(format!(
                    "validation sequences have length {} but training sequences {}",
                    v.seq_len(),
                    train_set.seq_len()
                )));
            }
        }
        train::check_fit(&model, train_set.seq_len(), labels.outputs())?;
        let head = model.head();
        if labels.multi_label && head != Some(crate::activation::Activation::Sigmoid) {
            return Err(Error::Usage(
                "multi-label data needs a model ending in a sigmoid".into(),
            ));
        }
        if !labels.multi_label
            && !labels.binary
            && head != Some(crate::activation::Activation::Softmax)
        {
            return Err(Error::Usage(
                "multi-class data needs a model ending in a softmax".into(),
            ));
        }
        if a.record_grads == Some(0) {
            return Err(Error::Usage("--record-grads must be at least 1".into()));
        }
        let out = a.out_dir();
        if !resuming {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            remove_run_outputs(&out)?;
            crate::weights::write_atomic(
                &out.join("model.json"),
                (spec.to_json() + "\n").as_bytes(),
            )?;
            labels.save(&out.join("labels.json"))?;
            config::write(
                &out,
                &config::RunFacts {
                    model_path: &a.model,
                    data_path: &a.data,
                    valid_path: a.valid.as_deref(),
                    data: &a.data_options,
                    val_split: a.val_split,
                    test_split: a.test_split,
                    spec: &spec,
                    cfg: &cfg,
                    labels: &labels,
                    split: &the_split,
                    records: all.len(),
                    valid_records: valid_set.as_ref().map_or(0, |v| v.len()),
                },
            )?;
        }
        cfg.checkpoint = Some(out.join("weights.safetensors"));
        cfg.history_dir = Some(out.clone());
        Ok(Training {
            options: a,
            out,
            model,
            labels,
            train_set,
            valid_set,
            test_set,
            config: cfg,
        })
    }

    /// Trains. `stop` (e.g. set by a signal handler) ends training after the current step
    /// with a checkpoint to resume from; `on_resume(epoch, step)` is called before training
    /// when a checkpoint is loaded. Then scores the test split, writes `test_metrics.json`
    /// and draws the pictures.
    pub fn fit(
        mut self,
        stop: Option<Arc<AtomicBool>>,
        on_resume: impl FnOnce(usize, u64) -> Result<()>,
    ) -> Result<Fitted> {
        let a = &self.options;
        let out = self.out.clone();
        let ck = train::checkpoint::dir_of(&out);
        let every: train::CheckpointEvery = a.checkpoint_every.parse()?;
        let mut trainer = train::Trainer::new(self.config.clone(), self.labels.multi_label);
        let mut saved = a.clone();
        saved.resume = None;
        saved.out = Some(out.clone());
        trainer.checkpoint_every(&ck, every).checkpoint_file(
            "args.json",
            (serde_json::to_string_pretty(&saved).unwrap_or_default() + "\n").into_bytes(),
        );
        let tensorboard = a.tensorboard.as_ref().map(train::TensorBoardLog::new);
        if let Some(n) = a.record_grads {
            let recorder = train::GradRecorder::<f32>::new(out.clone(), n);
            trainer.add_callback(match &tensorboard {
                Some(log) => recorder.with_tensorboard(log.clone()),
                None => recorder,
            });
        }
        if let Some(log) = &tensorboard {
            trainer.add_callback(train::TensorBoard::new(log.clone()));
        }
        if let Some(flag) = stop {
            trainer.add_callback(train::StopOnFlag::new(flag));
        }
        if a.resume.is_some() {
            train::checkpoint::remove_stale_temps(&out);
            trainer.load_checkpoint(&mut self.model, &ck)?;
            let s = trainer.state();
            on_resume(s.epoch, s.step)?;
        }
        let t0 = Instant::now();
        let outcome = trainer.fit(&mut self.model, &self.train_set, self.valid_set.as_ref())?;
        let seconds = t0.elapsed().as_secs_f64();
        let history = match outcome {
            train::Outcome::Finished(h) => h,
            train::Outcome::Interrupted { epoch, step, batch } => {
                trainer.save_checkpoint(&self.model, &ck)?;
                return Ok(Fitted::Interrupted {
                    epoch,
                    step,
                    batch,
                    batches: self.train_set.len().div_ceil(a.batch_size),
                    checkpoint: ck,
                    out,
                });
            }
        };
        let test = if self.test_set.is_empty() {
            None
        } else {
            let eval = train::evaluate(
                &mut self.model,
                &self.test_set,
                EVAL_BATCH_SIZE,
                self.labels.multi_label,
            )?;
            let r = Report::new("test", eval, self.test_set.y.clone(), &self.labels);
            crate::weights::write_atomic(
                &out.join("test_metrics.json"),
                r.metrics_json().as_bytes(),
            )?;
            Some(r)
        };
        // Finished and its results written: the resume checkpoint is no longer needed.
        train::checkpoint::remove(&ck)?;
        let plots = (!a.no_plots).then(|| crate::plot::plot_run(&out, &out.join("plots")));
        if let (Some(log), Some(Ok(pictures))) = (&tensorboard, &plots) {
            log.pictures(pictures, history.rows.len() as u64)?;
        }
        Ok(Fitted::Finished(Box::new(Trained {
            run: Run {
                dir: Some(out.clone()),
                model_path: out.join("model.json"),
                weights_path: out.join("weights.safetensors"),
                model: self.model,
                labels: Some(self.labels),
            },
            history,
            seconds,
            test,
            plots,
        })))
    }
}

impl Run<f32> {
    /// Trains a run folder as `seqgrad train` does (no stop flag: it runs to its end) and
    /// returns the finished run with its history, test report and pictures.
    pub fn train(options: &TrainOptions) -> Result<Trained> {
        super::with_threads(options.threads, || {
            match Training::prepare(options)?.fit(None, |_, _| Ok(()))? {
                Fitted::Finished(t) => Ok(*t),
                Fitted::Interrupted { .. } => Err(Error::Train("training was interrupted".into())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keywords(v: serde_json::Value) -> Result<TrainOptions> {
        match v {
            serde_json::Value::Object(m) => TrainOptions::from_keywords(&m),
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn keywords_set_fields_data_options_and_negated_flags() {
        let o = keywords(json!({
            "model": "m.json", "data": "d.csv", "epochs": 3, "batch-size": 8, "lr": 0.01,
            "label_column": "y", "crop": 40, "plots": false, "record_grads": 2, "out": null
        }))
        .unwrap();
        let want = TrainOptions {
            model: "m.json".into(),
            data: "d.csv".into(),
            epochs: 3,
            batch_size: 8,
            lr: Some(0.01),
            data_options: DataOptions {
                label_column: Some("y".into()),
                crop: Some(40),
                ..DataOptions::default()
            },
            no_plots: true,
            record_grads: Some(2),
            ..TrainOptions::default()
        };
        assert_eq!(o, want);
        // nothing given: the command line's defaults
        assert_eq!(keywords(json!({})).unwrap(), TrainOptions::default());
        assert!(!keywords(json!({"plots": true})).unwrap().no_plots);
        assert!(keywords(json!({"no_plots": true})).unwrap().no_plots);
    }

    #[test]
    fn unknown_keywords_and_wrong_types_are_named() {
        let e = keywords(json!({"epoch": 3})).unwrap_err().to_string();
        assert!(
            e.starts_with("unknown train option \"epoch\"; the options are: "),
            "{e}"
        );
        for name in [
            "epochs",
            "batch_size",
            "label_column",
            "plots",
            "no_plots",
            "resume",
        ] {
            assert!(e.contains(name), "{name} missing from {e}");
        }
        assert!(!e.contains("data_args"), "{e}");
        let e = keywords(json!({"epochs": "many"})).unwrap_err().to_string();
        assert!(e.starts_with("train option epochs: invalid type"), "{e}");
        let e = keywords(json!({"plots": 0})).unwrap_err().to_string();
        assert_eq!(e, "train option plots: expected True or False, got 0");
    }
}
