//! `seqgrad train`: trains a model file on a labelled data file and writes a run folder
//! (`weights.safetensors` best weights, `model.json`, `labels.json`, `history.csv`,
//! `history.json`, `test_metrics.json` when there is a test split). Those files from an earlier
//! run in the same folder are deleted first; the history is rewritten after every epoch, the
//! weights at every improvement. With no subcommand,
//! `seqgrad` runs [`main_job`]: the bundled splice model on the bundled splice data.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::data::{self, split, Dataset, Labels, LengthPolicy, ReadOptions};
use crate::error::{Error, Result};
use crate::metrics;
use crate::model::Sequential;
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::train::{self, Progress, TrainConfig};

/// Options shared by every command that reads a data file.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DataArgs {
    /// Name of the label column (default: `label`, `class` or `labels`, any case).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Name of the sequence column (default: `sequence` or `seq`, any case).
    #[arg(long)]
    pub sequence_column: Option<String>,
    /// Cut longer sequences to their centred N bases.
    #[arg(long, value_name = "N")]
    pub crop: Option<usize>,
    /// Pad shorter sequences with empty (all-zero) positions at the end up to N.
    #[arg(long, value_name = "N")]
    pub pad: Option<usize>,
    /// Several labels per record (split on `;` or `,`); implied by a `labels` column or
    /// `labels=` FASTA headers.
    #[arg(long)]
    pub multi_label: bool,
    /// The data file format (default: by extension: .tsv/.tab tab-separated,
    /// .fa/.fasta/.fna/.fas FASTA, anything else comma-separated).
    #[arg(long, value_enum)]
    pub format: Option<crate::data::reader::Format>,
}

impl DataArgs {
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            label_column: self.label_column.clone(),
            sequence_column: self.sequence_column.clone(),
            multi_label: self.multi_label,
            require_labels: true,
            format: self.format,
        }
    }

    pub fn policy(&self) -> Result<LengthPolicy> {
        let p = LengthPolicy {
            crop: self.crop,
            pad: self.pad,
            any_length: false,
        };
        p.target()?;
        Ok(p)
    }
}

#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
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
    #[arg(long, default_value_t = 30, value_parser = crate::cli::config::at_least_one)]
    pub epochs: usize,
    /// Records per training step (mini-batch size).
    #[arg(long, default_value_t = 64, value_parser = crate::cli::config::at_least_one)]
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
    pub data_args: DataArgs,
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
    #[serde(default = "epoch")]
    pub checkpoint_every: String,
    /// Do not draw the run's pictures (RUN/plots/: training curves and, with --record-grads,
    /// gradient pictures) at the end.
    #[arg(long)]
    #[serde(default)]
    pub no_plots: bool,
}

impl Args {
    /// The main job's settings: models/splice.json on data/splice.csv, both built into the
    /// binary (`bundled:` paths, see [`crate::bundled`]), so it runs from any folder.
    /// `SEQGRAD_DEMO_EPOCHS=N` (for tests) caps the epochs.
    pub fn main_job() -> Args {
        let epochs = std::env::var("SEQGRAD_DEMO_EPOCHS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(30);
        Args {
            model: PathBuf::from("bundled:models/splice.json"),
            data: PathBuf::from("bundled:data/splice.csv"),
            valid: None,
            epochs,
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
            out: Some(PathBuf::from("runs/splice")),
            rc_augment: false,
            data_args: DataArgs::default(),
            threads: None,
            progress: "auto".into(),
            record_grads: None,
            resume: None,
            checkpoint_every: epoch(),
            no_plots: false,
        }
    }
}

fn epoch() -> String {
    "epoch".into()
}

/// A path as given (the empty default of `--model`/`--data` means "not given").
fn any_path(s: &str) -> std::result::Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

/// A bundled file: relative to the current folder if it exists there, else to the crate root.
pub fn bundled(rel: &str) -> PathBuf {
    let p = PathBuf::from(rel);
    if p.exists() {
        p
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// Writes `text` to standard output. A closed pipe (`seqgrad predict … | head -1`) is not an
/// error: the reader has what it wanted, so the output stops quietly (exit status 0).
pub fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Runs `f` in a rayon pool of `threads` threads (or the global pool).
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<R> + Send,
) -> Result<R> {
    match threads {
        None => f(),
        Some(0) => Err(Error::Usage("--threads must be at least 1".into())),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {n} threads: {e}")))?
            .install(f),
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

/// Builds the training configuration from the flags (every value checked).
pub fn train_config(a: &Args) -> Result<TrainConfig> {
    let mut opt = OptimizerConfig::named(&a.optimizer)?;
    positive("lr", a.lr)?;
    positive("clip-norm", a.clip_norm)?;
    positive("clip-value", a.clip_value)?;
    if let Some(lr) = a.lr {
        opt.lr = lr;
    }
    if let Some(wd) = a.weight_decay {
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(Error::Usage(format!(
                "--weight-decay must be >= 0, got {wd}"
            )));
        }
        opt.weight_decay = wd;
    }
    match &mut opt.kind {
        OptimizerKind::Sgd { momentum, nesterov } => {
            let m = a.momentum.unwrap_or(if a.nesterov { 0.9 } else { 0.0 });
            if !(0.0..1.0).contains(&m) {
                return Err(Error::Usage(format!(
                    "--momentum must be in [0, 1), got {m}"
                )));
            }
            *momentum = m;
            *nesterov = a.nesterov;
        }
        _ => {
            if a.momentum.is_some() || a.nesterov {
                return Err(Error::Usage(format!(
                    "--momentum/--nesterov apply to sgd, not {}",
                    a.optimizer
                )));
            }
        }
    }
    if a.epochs == 0 || a.batch_size == 0 {
        return Err(Error::Usage(
            "--epochs and --batch-size must be at least 1".into(),
        ));
    }
    let progress = match a.progress.as_str() {
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
        epochs: a.epochs,
        batch_size: a.batch_size,
        optimizer: opt,
        clip_norm: a.clip_norm,
        clip_value: a.clip_value,
        patience: (a.patience > 0).then_some(a.patience),
        seed: a.seed,
        rc_augment: a.rc_augment,
        checkpoint: None,
        history_dir: None,
        progress,
    })
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

/// Prints loss and metrics (and the confusion matrix for multi-class data).
pub fn report(
    what: &str,
    eval: &train::Evaluation<f32>,
    data: &Dataset<f32>,
    labels: &Labels,
) -> String {
    let mut s = format!("{what}: {} records  loss {:.4}", data.len(), eval.loss);
    for (k, v) in &eval.metrics {
        s.push_str(&format!("  {k} {v:.4}"));
    }
    s.push('\n');
    if labels.multi_label {
        let (roc, pr) = metrics::per_label_auc(eval.probs.view(), data.y.view());
        s.push_str("label  roc_auc  pr_auc\n");
        let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
        for (i, c) in labels.classes.iter().enumerate() {
            s.push_str(&format!("{c}  {}  {}\n", f(roc[i]), f(pr[i])));
        }
    } else {
        s.push_str(&format!(
            "confusion matrix (rows: true class, columns: predicted{}):\n",
            match labels.positive() {
                Some(p) => format!("; {p} when its probability > 0.5"),
                None => String::new(),
            }
        ));
        s.push_str(&metrics::format_confusion(
            &confusion(eval, data, labels),
            &labels.classes,
        ));
    }
    s
}

/// The confusion matrix, `m[true][predicted]` (a binary head's 0.5 threshold included).
fn confusion(
    eval: &train::Evaluation<f32>,
    data: &Dataset<f32>,
    labels: &Labels,
) -> Vec<Vec<usize>> {
    if labels.binary {
        metrics::confusion(
            metrics::two_columns(eval.probs.view()).view(),
            metrics::two_columns(data.y.view()).view(),
        )
    } else {
        metrics::confusion(eval.probs.view(), data.y.view())
    }
}

/// The metrics as JSON (`test_metrics.json`; `evaluate --metrics-out`).
pub fn metrics_json(eval: &train::Evaluation<f32>, data: &Dataset<f32>, labels: &Labels) -> String {
    let mut m = serde_json::Map::new();
    m.insert("records".into(), serde_json::json!(data.len()));
    m.insert("loss".into(), serde_json::json!(eval.loss));
    for (k, v) in &eval.metrics {
        m.insert(k.clone(), serde_json::json!(v));
    }
    if labels.multi_label {
        let (roc, pr) = metrics::per_label_auc(eval.probs.view(), data.y.view());
        m.insert("per_label_roc_auc".into(), serde_json::json!(roc));
        m.insert("per_label_pr_auc".into(), serde_json::json!(pr));
    } else {
        m.insert(
            "confusion".into(),
            serde_json::json!(confusion(eval, data, labels)),
        );
    }
    m.insert("classes".into(), serde_json::json!(labels.classes));
    if let Some(p) = labels.positive() {
        m.insert("positive_class".into(), serde_json::json!(p));
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default() + "\n"
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
    crate::train::checkpoint::remove(&crate::train::checkpoint::dir_of(out))?;
    for f in RUN_OUTPUTS.iter().chain(&RECORD_OUTPUTS) {
        let p = out.join(f);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
            _ => {}
        }
    }
    Ok(())
}

pub fn run(a: &Args) -> Result<()> {
    let a = match &a.resume {
        Some(run) => resumed_args(a, run)?,
        None => {
            let missing: Vec<&str> = [("--model", &a.model), ("--data", &a.data)]
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
            a.clone()
        }
    };
    with_threads(a.threads, || run_inner(&a))
}

/// The settings of the run to resume (from `RUN/checkpoint/args.json`), with this call's
/// `--threads` and `--progress`.
fn resumed_args(a: &Args, run: &Path) -> Result<Args> {
    if !a.model.as_os_str().is_empty() || !a.data.as_os_str().is_empty() {
        return Err(Error::Usage(
            "--resume continues a run with its saved settings; only --threads and --progress may be given with it".into(),
        ));
    }
    let ck = crate::train::checkpoint::dir_of(run);
    let p = ck.join("args.json");
    let Some(text) = crate::train::checkpoint::read_file(&ck, "args.json")? else {
        return Err(Error::Usage(format!(
            "{} has no checkpoint to resume ({} is missing): it finished, or was stopped before its training began",
            run.display(),
            p.display()
        )));
    };
    let mut saved: Args = serde_json::from_slice(&text)
        .map_err(|e| Error::Usage(format!("{}: not a seqgrad resume file ({e})", p.display())))?;
    saved.out = Some(run.to_path_buf());
    saved.resume = Some(run.to_path_buf());
    if a.threads.is_some() {
        saved.threads = a.threads;
    }
    saved.progress = a.progress.clone();
    Ok(saved)
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

fn run_inner(a: &Args) -> Result<()> {
    // Everything is checked before the run folder is created.
    let mut cfg = train_config(a)?;
    let policy = a.data_args.policy()?;
    let resuming = a.resume.is_some();
    let spec = match (&a.resume, &a.out) {
        (Some(_), Some(out)) => crate::spec::ModelSpec::from_file(out.join("model.json"))?,
        _ => crate::spec::ModelSpec::from_file(&a.model)?,
    };
    crate::memory::check_fits(&spec, a.batch_size, crate::memory::Workload::Train)?;
    let mut model = Sequential::<f32>::from_spec(&spec, a.seed)?;
    if let Some(t) = policy.target()? {
        train::check_input_len(&model, t)?;
    }
    // a model of any length takes records of mixed lengths (padded per batch, masked)
    let policy = policy.for_model(&model);
    let opts = a.data_args.read_options();
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
    if !labels.multi_label && !labels.binary && head != Some(crate::activation::Activation::Softmax)
    {
        return Err(Error::Usage(
            "multi-class data needs a model ending in a softmax".into(),
        ));
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-{}-s{}", stem(&a.model), stem(&a.data), a.seed))
    });
    if !resuming {
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        remove_run_outputs(&out)?;
        crate::weights::write_atomic(&out.join("model.json"), (spec.to_json() + "\n").as_bytes())?;
        labels.save(&out.join("labels.json"))?;
        crate::cli::config::write(
            &out,
            a,
            &crate::cli::config::RunFacts {
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
    print_stdout(&format!(
        "training {} ({} parameters) on {}: {} train / {} validation / {} test records, classes {}\n",
        a.model.display(),
        crate::model::group(model.param_count()),
        a.data.display(),
        train_set.len(),
        valid_set.as_ref().map(|v| v.len()).unwrap_or(0),
        test_set.len(),
        labels.classes.join(", ")
    ))?;
    let ck = train::checkpoint::dir_of(&out);
    let every: train::CheckpointEvery = a.checkpoint_every.parse()?;
    let flag = stop_flag()?;
    let mut trainer = train::Trainer::new(cfg, labels.multi_label);
    let mut saved = a.clone();
    saved.resume = None;
    saved.out = Some(out.clone());
    trainer.checkpoint_every(&ck, every).checkpoint_file(
        "args.json",
        (serde_json::to_string_pretty(&saved).unwrap_or_default() + "\n").into_bytes(),
    );
    if let Some(n) = a.record_grads {
        if n == 0 {
            return Err(Error::Usage("--record-grads must be at least 1".into()));
        }
        trainer.add_callback(train::GradRecorder::<f32>::new(out.clone(), n));
    }
    trainer.add_callback(train::StopOnFlag::new(flag));
    if resuming {
        train::checkpoint::remove_stale_temps(&out);
        trainer.load_checkpoint(&mut model, &ck)?;
        let s = trainer.state();
        print_stdout(&format!(
            "resuming {} at epoch {}, step {}\n",
            out.display(),
            s.epoch,
            s.step
        ))?;
    }
    let t0 = Instant::now();
    let outcome = trainer.fit(&mut model, &train_set, valid_set.as_ref())?;
    let secs = t0.elapsed().as_secs_f64();
    let history = match outcome {
        train::Outcome::Finished(h) => h,
        train::Outcome::Interrupted { epoch, step, batch } => {
            trainer.save_checkpoint(&model, &ck)?;
            let per_epoch = train_set.len().div_ceil(a.batch_size);
            eprintln!(
                "seqgrad: interrupted after step {step} (epoch {epoch}, batch {batch}/{per_epoch}); checkpoint in {}; continue with: seqgrad train --resume {}",
                ck.display(),
                out.display()
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(130);
        }
    };
    print_stdout(&format!(
        "training time: {secs:.2} s ({} epochs, best epoch {}{})\n",
        history.rows.len(),
        history.best_epoch,
        if history.stopped_early {
            ", stopped early"
        } else {
            ""
        }
    ))?;
    if !test_set.is_empty() {
        let eval = train::evaluate(
            &mut model,
            &test_set,
            crate::cli::config::EVAL_BATCH_SIZE,
            labels.multi_label,
        )?;
        print_stdout(&report("test", &eval, &test_set, &labels))?;
        crate::weights::write_atomic(
            &out.join("test_metrics.json"),
            metrics_json(&eval, &test_set, &labels).as_bytes(),
        )?;
    }
    // Finished and its results written: the resume checkpoint is no longer needed.
    train::checkpoint::remove(&ck)?;
    print_stdout(&format!("run folder: {}\n", out.display()))?;
    if !a.no_plots {
        // The pictures are a courtesy: a failure to draw them does not fail the run.
        match crate::plot::plot_run(&out, &out.join("plots")) {
            Ok(files) => print_stdout(&format!(
                "plots: {} ({} files; `seqgrad plot {}` redraws them)\n",
                out.join("plots").display(),
                files.len(),
                out.display()
            ))?,
            Err(e) => eprintln!("seqgrad: warning: could not draw the run's pictures: {e}"),
        }
    }
    Ok(())
}
