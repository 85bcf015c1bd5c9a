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

#[test]
fn library_interrupt_at_a_fixed_step_then_resume_is_bit_identical() {
    let (all, _) = motif_data(120, 11);
    let train_set = all.subset(&(0..90).collect::<Vec<_>>());
    let valid = all.subset(&(90..120).collect::<Vec<_>>());
    let cfg = config();
    let mut full = motif_model(2);
    let h_full = train::fit(&mut full, &train_set, Some(&valid), false, &cfg).unwrap();
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

fn write_data(dir: &Path) {
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
