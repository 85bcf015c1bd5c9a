//! Interrupt and exact resume: through the library (a callback interrupts at a fixed step,
//! the checkpoint is saved and loaded into a fresh model and trainer) and through the CLI (a
//! real SIGINT to `seqgrad train`, then `--resume`). Both must end with weights bit-identical to
//! an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seqgrad::model::Sequential;
use seqgrad::train::{self, Callback, Context, Outcome, TrainConfig, Trainer};

use crate::common::{motif_data, motif_model, quick_config, seqgrad};

/// Interrupts at global step `at`.
struct InterruptAt(u64);

impl Callback<f32> for InterruptAt {
    fn on_step_end(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        if ctx.step == self.0 {
            ctx.interrupt();
        }
        Ok(())
    }
}

fn weights(m: &Sequential<f32>) -> Vec<(String, Vec<u32>)> {
    m.named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn rows_without_seconds(h: &train::History) -> Vec<Vec<u64>> {
    h.rows
        .iter()
        .map(|r| r[..r.len() - 1].iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn config() -> TrainConfig {
    let mut c = quick_config(6);
    c.rc_augment = true; // its draws must be replayed on resume
    c.patience = Some(2);
    c.clip_norm = Some(1.0);
    c
}

/// The data, the configuration, and the model and history of an uninterrupted run.
fn uninterrupted() -> (
    seqgrad::data::Dataset<f32>,
    seqgrad::data::Dataset<f32>,
    TrainConfig,
    Sequential<f32>,
    train::History,
) {
    let (all, _) = motif_data(120, 11);
    let train_set = all.subset(&(0..90).collect::<Vec<_>>());
    let valid = all.subset(&(90..120).collect::<Vec<_>>());
    let cfg = config();
    let mut full = motif_model(2);
    let h_full = train::fit(&mut full, &train_set, Some(&valid), false, &cfg).unwrap();
    (train_set, valid, cfg, full, h_full)
}

#[test]
fn library_interrupt_at_a_fixed_step_then_resume_is_bit_identical() {
    let (train_set, valid, cfg, full, h_full) = uninterrupted();
    assert!(h_full.rows.len() >= 3);
    // 6 steps per epoch: interrupt mid-epoch, at an epoch's last step, and twice in one run
    for stops in [vec![4u64], vec![12], vec![1, 9, 15]] {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("checkpoint");
        let mut resumed_from: Option<u64> = None;
        let mut model = motif_model(2);
        let mut done = None;
        for (k, &at) in stops.iter().enumerate() {
            let mut t = Trainer::<f32>::new(cfg.clone(), false);
            t.add_callback(InterruptAt(at));
            if k > 0 {
                // a fresh process: new model (same seed) and trainer, state from the checkpoint
                model = motif_model(2);
                t.load_checkpoint(&mut model, &ck).unwrap();
                assert_eq!(t.state().step, resumed_from.unwrap());
            }
            match t.fit(&mut model, &train_set, Some(&valid)).unwrap() {
                Outcome::Interrupted { step, .. } => {
                    assert_eq!(step, at);
                    t.save_checkpoint(&model, &ck).unwrap();
                    resumed_from = Some(step);
                }
                Outcome::Finished(h) => done = Some(h),
            }
        }
        assert!(done.is_none(), "every stop lands before the end");
        let mut model = motif_model(2);
        let mut t = Trainer::<f32>::new(cfg.clone(), false);
        t.load_checkpoint(&mut model, &ck).unwrap();
        let Outcome::Finished(h) = t.fit(&mut model, &train_set, Some(&valid)).unwrap() else {
            panic!("not finished")
        };
        assert_eq!(weights(&model), weights(&full), "stops {stops:?}");
        assert_eq!(rows_without_seconds(&h), rows_without_seconds(&h_full));
        assert_eq!(
            (h.best_epoch, h.stopped_early),
            (h_full.best_epoch, h_full.stopped_early)
        );
    }
}

const MODEL: &str = r#"{"input_shape": [40, 4], "layers": [
  {"type": "conv1d", "filters": 8, "kernel_size": 9, "activation": "relu"},
  {"type": "dropout", "rate": 0.2},
  {"type": "bidirectional", "layer": {"type": "gru", "units": 8}},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

pub fn write_data(dir: &Path) {
    let (d, labels) = motif_data(400, 21);
    let mut csv = String::from("id,label,sequence\n");
    for i in 0..d.len() {
        let row = d.x.index_axis(ndarray::Axis(0), i);
        let seq: String = row
            .outer_iter()
            .map(|b| ['A', 'C', 'G', 'T'][b.iter().position(|v| *v > 0.5).unwrap_or(0)])
            .collect();
        let class = d.y.row(i).iter().position(|v| *v > 0.5).unwrap();
        csv.push_str(&format!("{},{},{seq}\n", d.ids[i], labels.classes[class]));
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(dir.join("m.json"), MODEL).unwrap();
}

const ARGS: [&str; 12] = [
    "train",
    "--model",
    "m.json",
    "--data",
    "d.csv",
    "--epochs",
    "12",
    "--batch-size",
    "16",
    "--progress",
    "plain",
    "--rc-augment",
];

#[test]
fn cli_sigint_writes_a_checkpoint_and_resume_is_bit_identical() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    let mut full_args = ARGS.to_vec();
    full_args.extend(["--out", "full", "--patience", "0"]);
    let o = seqgrad(&full_args, d.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut args = ARGS.to_vec();
    args.extend(["--out", "run", "--patience", "0", "--record-grads", "5"]);
    let child = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(&args)
        .current_dir(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the run has started (recorded its first step), then a real SIGINT
    let started = Instant::now();
    while !d.path().join("run/grads.csv").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {err}");
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("seqgrad: interrupted after step ")
            && last.contains("checkpoint in run/checkpoint")
            && last.ends_with("seqgrad train --resume run"),
        "{last}"
    );
    assert!(d.path().join("run/checkpoint/state.json").exists());
    if !d.path().join("run/weights.safetensors").exists() {
        // interrupted before the first epoch ended: evaluate says so
        let e = seqgrad(&["evaluate", "--run", "run", "--data", "d.csv"], d.path());
        assert!(String::from_utf8_lossy(&e.stderr).contains("is unfinished"));
    }

    let o = seqgrad(
        &["train", "--resume", "run", "--progress", "plain"],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !d.path().join("run/checkpoint").exists(),
        "a finished run has no checkpoint"
    );
    // Compare the tensors bit for bit (the header's metadata order is not fixed).
    let read = |p: &str| -> Vec<(String, Vec<u64>)> {
        seqgrad::weights::read_tensors(&d.path().join(p))
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.array.iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    let (a, b) = (
        read("full/weights.safetensors"),
        read("run/weights.safetensors"),
    );
    assert!(!a.is_empty());
    assert!(a == b, "resumed weights differ from the uninterrupted run");
    let cut = |p: &str| -> Vec<String> {
        std::fs::read_to_string(d.path().join(p))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(cut("full/history.csv"), cut("run/history.csv"));
    // the recorder kept what it had and continued: every 5th step once, in order
    let g = std::fs::read_to_string(d.path().join("run/grads.csv")).unwrap();
    let mut steps: Vec<u64> = g
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    steps.dedup();
    let want: Vec<u64> = (0..steps.len() as u64).map(|i| 5 * i).collect();
    assert_eq!(steps, want);
    assert_eq!(g.lines().filter(|l| l.starts_with("step,")).count(), 1);
}

#[test]
fn resume_without_a_checkpoint_is_a_one_line_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("run")).unwrap();
    let o = seqgrad(&["train", "--resume", "run"], d.path());
    crate::common::fails_with(&o, &["has no checkpoint to resume"]);
    let o = seqgrad(&["train", "--resume", "run", "--model", "m.json"], d.path());
    crate::common::fails_with(&o, &["only --threads and --progress"]);
    let o = seqgrad(&["train", "--data", "d.csv"], d.path());
    crate::common::fails_with(
        &o,
        &["required arguments were not provided: --model (or --resume RUN"],
    );
}

/// A checkpoint taken mid-epoch 2 (step 9 of 6-step epochs): optimizer moments, the epoch's
/// outputs and the best weights (of epoch 1, not the current ones) are all in it.
fn mid_epoch_checkpoint(dir: &Path) -> (TrainConfig, seqgrad::data::Dataset<f32>) {
    let (all, _) = motif_data(120, 11);
    let train_set = all.subset(&(0..90).collect::<Vec<_>>());
    let cfg = config();
    let mut model = motif_model(2);
    let mut t = Trainer::<f32>::new(cfg.clone(), false);
    t.add_callback(InterruptAt(9));
    assert!(matches!(
        t.fit(&mut model, &train_set, None).unwrap(),
        Outcome::Interrupted { step: 9, .. }
    ));
    t.save_checkpoint(&model, dir).unwrap();
    (cfg, train_set)
}

/// Rewrites `state.safetensors` of a checkpoint through `edit` (tensors as f64 arrays and
/// their dtype), stored as `dtype`, and updates the manifest so the damage is not caught there.
fn edit_state(
    dir: &Path,
    dtype: &str,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, seqgrad::weights::StoredTensor>),
) {
    let p = dir.join("state.safetensors");
    let mut t = seqgrad::weights::read_tensors(&p).unwrap();
    edit(&mut t);
    let bytes = if dtype == "F64" {
        let v: Vec<(String, ndarray::ArrayViewD<'_, f64>)> =
            t.iter().map(|(k, v)| (k.clone(), v.array.view())).collect();
        seqgrad::weights::serialize_tensors::<f64>(&v, None).unwrap()
    } else {
        let owned: Vec<(String, ndarray::ArrayD<f32>)> = t
            .iter()
            .map(|(k, v)| (k.clone(), v.array.mapv(|x| x as f32)))
            .collect();
        let v: Vec<(String, ndarray::ArrayViewD<'_, f32>)> =
            owned.iter().map(|(k, a)| (k.clone(), a.view())).collect();
        seqgrad::weights::serialize_tensors::<f32>(&v, None).unwrap()
    };
    std::fs::write(&p, &bytes).unwrap();
    let mp = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    m["files"]["state.safetensors"] =
        serde_json::json!({"bytes": bytes.len(), "crc32": crc32fast::hash(&bytes)});
    std::fs::write(&mp, serde_json::to_string(&m).unwrap()).unwrap();
    assert!(seqgrad::train::checkpoint::verify(dir).is_ok());
}

/// Loading the checkpoint in `dir` into a fresh model and trainer fails with one line holding
/// every part.
fn load_fails(dir: &Path, cfg: &TrainConfig, parts: &[&str]) {
    let mut model = motif_model(2);
    let mut t = Trainer::<f32>::new(cfg.clone(), false);
    let e = t.load_checkpoint(&mut model, dir).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    for p in parts {
        assert!(e.contains(p), "{p:?} not in: {e}");
    }
}

/// Review finding: `BestWeights::load_state` took the best-weights tensors in index order
/// whatever the gaps and shapes, so a damaged checkpoint shifted tensors onto the wrong
/// parameters or panicked when training ended.
#[test]
fn best_weights_with_a_gap_or_a_wrong_shape_are_an_error_naming_the_tensor() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("ck");
    let (cfg, _) = mid_epoch_checkpoint(&ck);
    let before = std::fs::read(ck.join("state.safetensors")).unwrap();
    edit_state(&ck, "F32", |t| {
        assert!(t.remove("callback.best_weights.1").is_some());
    });
    load_fails(
        &ck,
        &cfg,
        &["checkpoint", "tensor callback.best_weights.1 is missing"],
    );
    std::fs::write(ck.join("state.safetensors"), &before).unwrap();
    edit_state(&ck, "F32", |t| {
        let b = t.get_mut("callback.best_weights.0").unwrap();
        b.array = ndarray::ArrayD::zeros(vec![3, 3]);
    });
    load_fails(
        &ck,
        &cfg,
        &["tensor callback.best_weights.0 has shape (3, 3) but parameter layers.0."],
    );
    std::fs::write(ck.join("state.safetensors"), &before).unwrap();
    edit_state(&ck, "F32", |t| {
        let last = t
            .keys()
            .filter_map(|k| k.strip_prefix("callback.best_weights."))
            .filter_map(|k| k.parse::<usize>().ok())
            .max()
            .unwrap();
        t.remove(&format!("callback.best_weights.{last}"));
    });
    load_fails(&ck, &cfg, &["best-weights tensors", "but the model has"]);
}

/// Review finding: the checkpoint's dtype was never checked, so an F64 state was cast to f32
/// without a word.
#[test]
fn a_checkpoint_in_another_dtype_is_an_error_naming_the_tensor() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("ck");
    let (cfg, _) = mid_epoch_checkpoint(&ck);
    edit_state(&ck, "F64", |_| {});
    load_fails(
        &ck,
        &cfg,
        &[
            "tensor ",
            " in state.safetensors is F64 but the model runs in F32",
        ],
    );
    // a whole checkpoint written by an f64 trainer
    let (all, _) = motif_data(40, 11);
    let spec = seqgrad::spec::ModelSpec::from_json(
        r#"{"input_shape": [40, 4], "layers": [{"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "m",
    )
    .unwrap();
    let mut m64 = Sequential::<f64>::from_spec(&spec, 1).unwrap();
    let data64 = seqgrad::data::Dataset {
        ids: all.ids.clone(),
        x: all.x.mapv(|v| v as f64),
        y: all.y.mapv(|v| v as f64),
        lengths: None,
    };
    let mut t = Trainer::<f64>::new(quick_config(1), false);
    t.fit(&mut m64, &data64, None).unwrap();
    let ck64 = d.path().join("ck64");
    t.save_checkpoint(&m64, &ck64).unwrap();
    let mut m32 = Sequential::<f32>::from_spec(&spec, 1).unwrap();
    let mut t32 = Trainer::<f32>::new(quick_config(1), false);
    let e = t32
        .load_checkpoint(&mut m32, &ck64)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("written by a model running in F64, this one runs in F32"),
        "{e}"
    );
}

#[test]
fn every_other_damage_to_a_checkpoints_tensors_is_an_error_naming_the_tensor() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("ck");
    let (cfg, train_set) = mid_epoch_checkpoint(&ck);
    let before = std::fs::read(ck.join("state.safetensors")).unwrap();
    let manifest = std::fs::read(ck.join("manifest.json")).unwrap();
    let restore = || {
        std::fs::write(ck.join("state.safetensors"), &before).unwrap();
        std::fs::write(ck.join("manifest.json"), &manifest).unwrap();
    };
    // an optimizer moment missing for one parameter
    edit_state(&ck, "F32", |t| {
        t.remove("optimizer.state2.layers.0.bias").unwrap();
    });
    load_fails(
        &ck,
        &cfg,
        &["tensor optimizer.state2.layers.0.bias is missing (3 of 4 parameters have one)"],
    );
    restore();
    // an optimizer moment of the wrong shape
    edit_state(&ck, "F32", |t| {
        t.get_mut("optimizer.state1.layers.3.bias").unwrap().array =
            ndarray::ArrayD::zeros(vec![5]);
    });
    load_fails(&ck, &cfg, &["tensor optimizer.state1.layers.3.bias has shape (5) but parameter layers.3.bias is (2)"]);
    restore();
    // a tensor nobody wrote
    edit_state(&ck, "F32", |t| {
        let x = t["epoch.outputs"].clone();
        t.insert("junk.tensor".into(), x);
    });
    load_fails(&ck, &cfg, &["unexpected tensor junk.tensor"]);
    restore();
    // the epoch's outputs with the wrong number of classes
    edit_state(&ck, "F32", |t| {
        t.get_mut("epoch.outputs").unwrap().array = ndarray::ArrayD::zeros(vec![48, 3]);
    });
    load_fails(&ck, &cfg, &["tensor epoch.outputs has shape (48, 3)"]);
    restore();
    // the epoch's outputs with too few rows for the batches done: caught when fit resumes
    edit_state(&ck, "F32", |t| {
        t.get_mut("epoch.outputs").unwrap().array = ndarray::ArrayD::zeros(vec![7, 2]);
    });
    let mut model = motif_model(2);
    let mut t = Trainer::<f32>::new(cfg.clone(), false);
    t.load_checkpoint(&mut model, &ck).unwrap();
    let e = t.fit(&mut model, &train_set, None).unwrap_err().to_string();
    assert!(e.contains("tensor epoch.outputs has 7 rows"), "{e}");
    restore();
    // callback state for a callback the trainer does not have
    edit_state(&ck, "F32", |t| {
        let x = t["epoch.outputs"].clone();
        t.insert("callback.nobody.0".into(), x);
    });
    load_fails(
        &ck,
        &cfg,
        &["tensor callback.nobody.0 belongs to no callback"],
    );
    restore();
    // and undamaged it loads and finishes
    let mut model = motif_model(2);
    let mut t = Trainer::<f32>::new(cfg.clone(), false);
    t.load_checkpoint(&mut model, &ck).unwrap();
    assert_eq!(t.state().step, 9);
    assert!(matches!(
        t.fit(&mut model, &train_set, None).unwrap(),
        Outcome::Finished(_)
    ));
}

/// Checkpoints written by the loop itself (every N steps, in the background) resume
/// bit-identically from each of them.
#[test]
fn periodic_checkpoints_resume_bit_identically_from_each() {
    let (train_set, valid, cfg, full, h_full) = uninterrupted();
    for (every, at) in [
        (train::CheckpointEvery::Steps(4), 8u64),
        (train::CheckpointEvery::Steps(5), 15),
        (train::CheckpointEvery::Epoch, 12),
    ] {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("checkpoint");
        let mut model = motif_model(2);
        let mut t = Trainer::<f32>::new(cfg.clone(), false);
        t.checkpoint_every(&ck, every)
            .add_callback(InterruptAt(at + 1));
        // interrupted one step after the checkpoint: the checkpoint is the last periodic one
        assert!(matches!(
            t.fit(&mut model, &train_set, Some(&valid)).unwrap(),
            Outcome::Interrupted { .. }
        ));
        drop(t);
        let mut model = motif_model(2);
        let mut t = Trainer::<f32>::new(cfg.clone(), false);
        t.load_checkpoint(&mut model, &ck).unwrap();
        assert_eq!(t.state().step, at, "{every}");
        let Outcome::Finished(h) = t.fit(&mut model, &train_set, Some(&valid)).unwrap() else {
            panic!("not finished")
        };
        assert_eq!(weights(&model), weights(&full), "{every}");
        assert_eq!(rows_without_seconds(&h), rows_without_seconds(&h_full));
    }
}
