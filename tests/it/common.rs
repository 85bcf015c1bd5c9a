//! Helpers shared by the integration tests: running the binary, checking one-line errors, a
//! tiny model and data set for CLI tests, and planted-motif data for training-loop tests.
//! (Each test binary uses only some of them.)
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use seqgrad::data::{self, meme, synth, Dataset, Labels, LengthPolicy, RawData};
use seqgrad::model::Sequential;
use seqgrad::spec::ModelSpec;
use seqgrad::train::{Progress, TrainConfig};

/// Runs `seqgrad ARGS` in `cwd`.
pub fn seqgrad(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit code 2 and a one-line stderr containing every part.
pub fn fails_with(o: &Output, parts: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    for p in parts {
        assert!(e.contains(p), "{p:?} not in {e}");
    }
}

/// A tiny classifier over 8 bp.
pub const MODEL: &str = r#"{"input_shape": [8, 4], "layers": [
  {"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
  {"type": "global_maxpool1d"},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

/// A temporary folder with `m.json` ([`MODEL`]) and `d.csv`: 40 records of 8 bp, two classes,
/// with padded fields (`r0, yes, ACGTACGT`) so trimming is exercised too.
pub fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.json"), MODEL).unwrap();
    let mut csv = String::from("id, label, sequence\n");
    for i in 0..40 {
        let (l, s) = if i % 2 == 0 {
            ("yes", "ACGTACGT")
        } else {
            ("no", "TTTTGGGG")
        };
        csv.push_str(&format!("r{i}, {l}, {s}\n"));
    }
    std::fs::write(d.path().join("d.csv"), csv).unwrap();
    d
}

/// `count` synthetic 40 bp records with one of two JASPAR motifs planted (class = motif).
pub fn motif_data(count: usize, seed: u64) -> (Dataset<f32>, Labels) {
    let motifs = meme::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/jaspar2016_vertebrates.meme"
    )))
    .unwrap();
    let chosen = synth::choose_motifs(&motifs, &[], 2, 40, 1).unwrap();
    let cfg = synth::SynthConfig {
        count,
        length: 40,
        n: 2,
        multi_label: false,
        label_prob: 0.3,
        seed,
    };
    let records = synth::generate(&motifs, &chosen, &cfg).unwrap();
    let raw = RawData {
        path: "synth".into(),
        records,
        has_labels: true,
        multi_label: false,
    };
    let labels = Labels::from_data(&raw).unwrap();
    (
        data::encode(&raw, &labels, LengthPolicy::default(), true).unwrap(),
        labels,
    )
}

/// conv1d 8×9 relu → global max pool → dropout → dense 2 softmax, over 40 bp.
pub fn motif_model(seed: u64) -> Sequential<f32> {
    let spec = ModelSpec::from_json(
        r#"{"input_shape": [40, 4], "layers": [
          {"type": "conv1d", "filters": 8, "kernel_size": 9, "activation": "relu"},
          {"type": "global_maxpool1d"},
          {"type": "dropout", "rate": 0.1},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "test",
    )
    .unwrap();
    Sequential::from_spec(&spec, seed).unwrap()
}

/// Quiet training, batch 16, seed 5, Adam at lr 0.01.
pub fn quick_config(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig {
        epochs,
        batch_size: 16,
        seed: 5,
        progress: Progress::Quiet,
        ..Default::default()
    };
    c.optimizer.lr = 0.01;
    c
}

/// Runs `seqgrad train` on the tiny `m.json`/`d.csv` of [`setup`] into `run`, quietly, with
/// `extra` options appended.
pub fn train_tiny(d: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "train",
        "--model",
        "m.json",
        "--data",
        "d.csv",
        "--out",
        "run",
        "--progress",
        "quiet",
    ];
    a.extend(extra);
    seqgrad(&a, d)
}
