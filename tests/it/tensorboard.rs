//! `seqgrad train --tensorboard DIR`: the event files decode (TFRecord framing, masked
//! CRC-32C, `Event` protos) to the run's own numbers: every `history.json` value, every
//! `grads.csv` row, a gradient histogram per parameter tensor and recorded step, and the
//! pictures of `RUN/plots/`. A killed and resumed run adds a second file whose steps continue.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use seqgrad::train::tensorboard::{self, event, summary, Event, HistogramProto};

use crate::common::{seqgrad, stderr};
use crate::train_resume::write_data;

/// Everything in a log folder, files read in name order; a (tag, step) logged again by a later
/// file replaces the earlier value (as TensorBoard does for a restarted run).
#[derive(Default)]
struct Log {
    files: usize,
    scalars: BTreeMap<(String, i64), f32>,
    histograms: BTreeMap<(String, i64), HistogramProto>,
    images: BTreeMap<String, summary::Image>,
    /// Per file: the steps of its `epoch/loss` scalars.
    epoch_steps: Vec<Vec<i64>>,
}

fn read_log(dir: &Path) -> Log {
    let mut log = Log::default();
    for f in tensorboard::event_files(dir).unwrap() {
        let events: Vec<Event> = tensorboard::read_events(&f).unwrap();
        assert_eq!(
            events[0].what,
            Some(event::What::FileVersion("brain.Event:2".into())),
            "{}",
            f.display()
        );
        log.files += 1;
        let mut steps = Vec::new();
        for e in &events[1..] {
            let Some(event::What::Summary(s)) = &e.what else {
                panic!("{}: an event without a summary", f.display());
            };
            for v in &s.value {
                let key = (v.tag.clone(), e.step);
                match v.kind.clone() {
                    Some(summary::value::Kind::SimpleValue(x)) => {
                        if v.tag == "epoch/loss" {
                            steps.push(e.step);
                        }
                        log.scalars.insert(key, x);
                    }
                    Some(summary::value::Kind::Histo(h)) => {
                        log.histograms.insert(key, h);
                    }
                    Some(summary::value::Kind::Image(i)) => {
                        log.images.insert(v.tag.clone(), i);
                    }
                    None => panic!("{}: {} has no value", f.display(), v.tag),
                }
            }
        }
        log.epoch_steps.push(steps);
    }
    log
}

fn same(a: f32, b: f64) -> bool {
    a.to_bits() == (b as f32).to_bits() || (a.is_nan() && b.is_nan())
}

/// `history.json`'s columns (but `epoch`) are `epoch/<column>` at step = epoch; returns how
/// many values were compared.
fn check_history(run: &Path, log: &Log, skip: &[&str]) -> usize {
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).unwrap()).unwrap();
    let mut n = 0;
    for (col, vals) in h.as_object().unwrap() {
        let Some(vals) = vals.as_array() else {
            continue;
        };
        if col == "epoch" || skip.contains(&col.as_str()) {
            continue;
        }
        for (i, v) in vals.iter().enumerate() {
            let tag = format!("epoch/{col}");
            let got = log.scalars.get(&(tag.clone(), i as i64 + 1));
            let want = v.as_f64().unwrap();
            assert!(
                got.is_some_and(|g| same(*g, want)),
                "{tag} at epoch {}: {got:?} vs history.json {want}",
                i + 1
            );
            n += 1;
        }
    }
    n
}

/// Every `grads.csv` row is the scalar `<statistic>/<tensor>` (or `<statistic>/layers.<i>`)
/// at its step, and each tensor's gradient histogram at that step holds its l2 norm; returns
/// the number of rows compared.
fn check_grads(run: &Path, log: &Log) -> usize {
    let csv = std::fs::read_to_string(run.join("grads.csv")).unwrap();
    let mut n = 0;
    for line in csv.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let step: i64 = c[0].parse().unwrap();
        let value: f64 = c[4].parse().unwrap();
        let tag = if c[2].is_empty() {
            format!("{}/layers.{}", c[3], c[1])
        } else {
            format!("{}/{}", c[3], c[2])
        };
        let got = log.scalars.get(&(tag.clone(), step));
        assert!(
            got.is_some_and(|g| same(*g, value)),
            "{tag} at step {step}: {got:?} vs grads.csv {value}"
        );
        if c[3] == "l2_norm" {
            let h = &log.histograms[&(format!("grad/{}", c[2]), step)];
            assert!(
                (h.sum_squares.sqrt() - value).abs() <= 1e-9 * value.max(1e-30),
                "grad/{} at {step}: histogram norm {} vs {value}",
                c[2],
                h.sum_squares.sqrt()
            );
            assert_eq!(h.bucket.iter().sum::<f64>(), h.num);
        }
        n += 1;
    }
    n
}

fn train_args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--model",
        "m.json",
        "--data",
        "d.csv",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--patience",
        "0",
        "--progress",
        "quiet",
        "--record-grads",
        "4",
        "--tensorboard",
        "tb",
        "--out",
        "run",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn event_files_hold_the_history_the_recorded_grads_and_the_pictures() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    let args = train_args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = seqgrad(&args, d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let log = read_log(&d.path().join("tb"));
    assert_eq!(log.files, 1);
    let run = d.path().join("run");
    assert!(check_history(&run, &log, &[]) >= 3 * 4);
    assert!(check_grads(&run, &log) > 0);
    // One histogram per parameter tensor and recorded step, with every element counted.
    let w = seqgrad::weights::read_tensors(&run.join("weights.safetensors")).unwrap();
    let steps: std::collections::BTreeSet<i64> = log.histograms.keys().map(|(_, s)| *s).collect();
    assert!(steps.len() >= 2, "{steps:?}");
    for (name, t) in &w {
        for s in &steps {
            let h = &log.histograms[&(format!("grad/{name}"), *s)];
            assert_eq!(h.num, t.array.len() as f64, "{name} at {s}");
        }
    }
    assert_eq!(log.histograms.len(), w.len() * steps.len());
    // Every PNG of run/plots, as drawn, at the last epoch.
    let mut pngs = 0;
    for f in std::fs::read_dir(run.join("plots")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "png") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let img = &log.images[&format!("plots/{stem}")];
            let bytes = std::fs::read(&p).unwrap();
            let decoded = image::load_from_memory(&bytes).unwrap();
            assert_eq!(
                (img.width as u32, img.height as u32),
                (decoded.width(), decoded.height())
            );
            assert_eq!(img.encoded_image_string, bytes);
            pngs += 1;
        }
    }
    assert!(pngs >= 2, "{pngs}");
    assert_eq!(log.images.len(), pngs);
}

#[test]
fn a_killed_and_resumed_run_adds_a_file_whose_steps_continue() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    // Killed (SIGKILL) right after epoch 2 was logged, before its checkpoint: the resumed run
    // starts again from the last checkpoint that was complete (the end of epoch 1, or the
    // start if that one was still being written).
    let o = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(train_args(&["--no-plots"]))
        .current_dir(d.path())
        .env("SEQGRAD_TEST_KILL", "epoch@2")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(read_log(&d.path().join("tb")).epoch_steps, vec![vec![1, 2]]);
    let o = seqgrad(
        &["train", "--resume", "run", "--progress", "quiet"],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let log = read_log(&d.path().join("tb"));
    assert_eq!(log.files, 2);
    assert_eq!(log.epoch_steps[0], vec![1, 2]);
    let resumed_at = log.epoch_steps[1][0];
    assert!((1..=2).contains(&resumed_at), "{:?}", log.epoch_steps);
    assert_eq!(log.epoch_steps[1], (resumed_at..=3).collect::<Vec<_>>());
    // Later values win: the run's files, as TensorBoard shows them, are the final history
    // (but the wall-clock seconds of the epoch that ran twice) and grads.csv.
    let run = d.path().join("run");
    assert!(check_history(&run, &log, &[]) >= 3 * 4);
    assert!(check_grads(&run, &log) > 0);
}
