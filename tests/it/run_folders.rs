//! Runs that explain themselves and messages that say what is wrong (case-insensitive layer
//! types included): `config.json`, `evaluate --split`, the training-
//! records warning, the `--rc-average` warning, `--format`, and the one-line errors for
//! missing layer options, near-miss spellings, one-class data, a tab-separated `.txt`, and zero
//! epochs/batch size; bare `seqgrad` announcing and running the built-in demo.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{fails_with, seqgrad, stderr};

/// A small two-class data set that a tiny conv net learns partly in a few epochs: 160 records
/// of 20 bp; class `b` has `GGGG` planted somewhere, class `a` does not (xorshift, fixed seed).
fn planted_csv() -> String {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut csv = String::from("id,label,sequence\n");
    for i in 0..160 {
        let mut seq: Vec<u8> = (0..20).map(|_| b"ACT"[(next() % 3) as usize]).collect();
        let label = if i % 2 == 0 {
            let at = (next() % 17) as usize;
            seq[at..at + 4].copy_from_slice(b"GGGG");
            "b"
        } else {
            "a"
        };
        csv.push_str(&format!(
            "r{i},{label},{}\n",
            String::from_utf8(seq).unwrap()
        ));
    }
    csv
}

const PLANTED_MODEL: &str = r#"{"input_shape": [20, 4], "layers": [
  {"type": "conv1d", "filters": 4, "kernel_size": 4, "activation": "relu"},
  {"type": "global_maxpool1d"},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

/// A temp folder with `m.json` and `d.csv` (see [`planted_csv`]).
fn planted() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.json"), PLANTED_MODEL).unwrap();
    std::fs::write(d.path().join("d.csv"), planted_csv()).unwrap();
    d
}

fn train(d: &Path, extra: &[&str]) -> Output {
    let defaults = ["--epochs", "3", "--lr", "0.02", "--test-split", "0.25"];
    let o = crate::common::train_tiny(d, &[&defaults[..], extra].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn config(d: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(d.join("run/config.json")).unwrap()).unwrap()
}

/// The test report `train` printed: from `test:` up to the `run folder:` line.
fn test_block(train_stdout: &str) -> String {
    let start = train_stdout.find("test:").expect("a test report");
    let end = train_stdout.find("run folder:").unwrap();
    train_stdout[start..end].to_string()
}

#[test]
fn config_json_records_every_setting_the_splits_and_the_data_hash() {
    let d = planted();
    train(d.path(), &["--seed", "7", "--rc-augment", "--threads", "1"]);
    let c = config(d.path());
    assert_eq!(c["seqgrad_version"], env!("CARGO_PKG_VERSION"));
    let cl: Vec<&str> = c["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(cl.ends_with(&["--rc-augment", "--threads", "1"]), "{cl:?}");
    assert_eq!(c["seed"], 7);
    assert_eq!(c["epochs"], 3);
    assert_eq!(c["batch_size"], 64);
    assert_eq!(c["patience"], 5);
    assert_eq!(c["rc_augment"], true);
    assert_eq!(c["threads"], 1);
    assert_eq!(c["optimizer"]["name"], "adam");
    assert_eq!(c["optimizer"]["lr"], 0.02);
    assert_eq!(c["optimizer"]["beta2"], 0.999);
    assert_eq!(c["test_split"], 0.25);
    assert_eq!(c["classes"], serde_json::json!(["a", "b"]));
    assert_eq!(c["data"]["path"], "d.csv");
    let bytes = std::fs::read(d.path().join("d.csv")).unwrap();
    assert_eq!(c["data"]["sha256"], seqgrad::bundled::sha256_hex(&bytes));
    assert_eq!(c["data_settings"]["records"], 160);
    assert_eq!(c["model_spec"]["layers"][0]["filters"], 4);
    // the splits partition the 160 records
    let mut all = Vec::new();
    for s in ["train", "valid", "test"] {
        let idx = seqgrad::cli::config::expand(c["splits"][s].as_str().unwrap(), 160).unwrap();
        assert_eq!(idx.len(), c["splits"][format!("{s}_records")], "{s}");
        all.extend(idx);
    }
    all.sort_unstable();
    assert_eq!(all, (0..160).collect::<Vec<_>>());
    assert_eq!(c["splits"]["test_records"], 40);
    // the weights say which seqgrad wrote them and where the settings are
    let meta = seqgrad::weights::read_metadata(&d.path().join("run/weights.safetensors")).unwrap();
    assert_eq!(meta["seqgrad_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["config"], "config.json");
}

#[test]
fn evaluate_split_test_reproduces_the_test_report_train_printed() {
    let d = planted();
    let o = train(d.path(), &[]);
    let printed = test_block(&stdout(&o));
    // from another folder: the data path comes from config.json
    let elsewhere = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let run = run.to_str().unwrap();
    let e = seqgrad(
        &[
            "evaluate",
            "--run",
            run,
            "--split",
            "test",
            "--metrics-out",
            "m.json",
        ],
        elsewhere.path(),
    );
    assert!(e.status.success(), "{}", stderr(&e));
    assert_eq!(stdout(&e), printed);
    assert!(printed.starts_with("test: 40 records  loss "), "{printed}");
    // bit for bit: the full-precision metrics (shortest round-trip decimals) are the same text
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("m.json")).unwrap(),
        std::fs::read_to_string(d.path().join("run/test_metrics.json")).unwrap()
    );
    // the other splits score their saved records
    let e = seqgrad(&["evaluate", "--run", "run", "--split", "train"], d.path());
    assert!(
        stdout(&e).starts_with("train: 104 records"),
        "{}",
        stdout(&e)
    );
    let e = seqgrad(&["evaluate", "--run", "run", "--split", "valid"], d.path());
    assert!(
        stdout(&e).starts_with("valid: 16 records"),
        "{}",
        stdout(&e)
    );
}

#[test]
fn evaluate_split_refuses_a_data_file_that_changed() {
    let d = planted();
    train(d.path(), &[]);
    let mut csv = planted_csv();
    csv.push_str("r160,a,ACTACTACTACTACTACTAC\n");
    std::fs::write(d.path().join("d2.csv"), &csv).unwrap();
    let o = seqgrad(
        &[
            "evaluate", "--run", "run", "--split", "test", "--data", "d2.csv",
        ],
        d.path(),
    );
    fails_with(&o, &["d2.csv", "SHA-256", "trained on", "d.csv"]);
    // the recorded file itself, changed in place
    std::fs::write(d.path().join("d.csv"), &csv).unwrap();
    let o = seqgrad(&["evaluate", "--run", "run", "--split", "test"], d.path());
    fails_with(&o, &["SHA-256"]);
    // --split needs --run
    let o = seqgrad(
        &[
            "evaluate",
            "--model",
            "m.json",
            "--weights",
            "run/weights.safetensors",
            "--split",
            "test",
        ],
        d.path(),
    );
    fails_with(&o, &["--run"]);
}

#[test]
fn evaluate_without_split_warns_how_many_training_records_the_file_holds() {
    let d = planted();
    train(d.path(), &[]);
    let c = config(d.path());
    let o = seqgrad(&["evaluate", "--run", "run", "--data", "d.csv"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let n = c["splits"]["train_records"].as_u64().unwrap();
    assert!(
        stderr(&o).contains(&format!(
            "warning: {n} records of d.csv are training records"
        )),
        "{}",
        stderr(&o)
    );
    // a file of the held-out test records only: no warning; a few training records: counted
    let csv = planted_csv();
    let lines: Vec<&str> = csv.lines().collect();
    let test = seqgrad::cli::config::expand(c["splits"]["test"].as_str().unwrap(), 160).unwrap();
    let train = seqgrad::cli::config::expand(c["splits"]["train"].as_str().unwrap(), 160).unwrap();
    let mut held = String::from("id,label,sequence\n");
    for &i in &test {
        held.push_str(lines[i + 1]);
        held.push('\n');
    }
    std::fs::write(d.path().join("held.csv"), &held).unwrap();
    let o = seqgrad(
        &["evaluate", "--run", "run", "--data", "held.csv"],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    for &i in &train[..3] {
        held.push_str(lines[i + 1]);
        held.push('\n');
    }
    std::fs::write(d.path().join("mixed.csv"), &held).unwrap();
    let o = seqgrad(
        &["evaluate", "--run", "run", "--data", "mixed.csv"],
        d.path(),
    );
    assert!(
        stderr(&o).contains("warning: 3 records of mixed.csv are training records"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rc_average_warns_when_the_model_never_saw_reverse_complements() {
    let d = planted();
    train(d.path(), &[]);
    let args = ["predict", "--run", "run", "--data", "d.csv", "--rc-average"];
    let o = seqgrad(&args, d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("trained without --rc-augment") && e.contains("reverse complements"),
        "{e}"
    );
    // without --rc-average, or on a run trained with --rc-augment: no warning
    let o = seqgrad(&args[..5], d.path());
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    train(d.path(), &["--rc-augment"]);
    let o = seqgrad(&args, d.path());
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
}

fn summary(d: &Path, model: &str) -> Output {
    std::fs::write(d.join("s.json"), model).unwrap();
    seqgrad(&["summary", "--model", "s.json"], d)
}

#[test]
fn a_missing_required_layer_option_says_it_is_required() {
    let d = tempfile::tempdir().unwrap();
    for (layer, field) in [
        (r#"{"type": "conv1d", "kernel_size": 3}"#, "filters"),
        (r#"{"type": "conv1d", "filters": 3}"#, "kernel_size"),
        (r#"{"type": "dense"}"#, "units"),
        (r#"{"type": "lstm"}"#, "units"),
        (
            r#"{"type": "bidirectional", "layer": {"type": "gru"}}"#,
            "units",
        ),
    ] {
        let m = format!(r#"{{"input_shape": [20, 4], "layers": [{layer}]}}"#);
        let o = summary(d.path(), &m);
        fails_with(
            &o,
            &[
                "s.json",
                "layer #0",
                &format!("missing required option `{field}`"),
            ],
        );
        assert!(!stderr(&o).contains("at least 1"), "{}", stderr(&o));
    }
    fails_with(
        &summary(d.path(), r#"{"layers": []}"#),
        &["missing required option `input_shape`"],
    );
}

#[test]
fn layer_types_and_activations_match_case_insensitively() {
    let d = tempfile::tempdir().unwrap();
    let o = summary(
        d.path(),
        r#"{"input_shape": [40, 4], "layers": [
          {"type": "Conv1D", "filters": 4, "kernel_size": 3, "activation": "ReLU", "padding": "Same"},
          {"type": "MaxPooling1D"},
          {"type": "maxpooling1d"},
          {"type": "conv1D", "filters": 4, "kernel_size": 3, "activation": "RELU"},
          {"type": "Bidirectional", "layer": {"type": "Lstm", "units": 3}, "merge_mode": "Concat"},
          {"type": "Dense", "units": 2, "activation": "Softmax"}]}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("maxpool1d") && s.contains("bidirectional(lstm)"),
        "{s}"
    );
}

#[test]
fn near_misses_suggest_the_valid_spelling() {
    let d = tempfile::tempdir().unwrap();
    for (layer, parts) in [
        (
            r#"{"type": "conv2d", "filters": 2, "kernel_size": 3}"#,
            &[
                "layer #0",
                "unknown layer type \"conv2d\"",
                "did you mean \"conv1d\"",
            ][..],
        ),
        (
            r#"{"type": "maxpoling1d"}"#,
            &["did you mean \"maxpool1d\""][..],
        ),
        (
            r#"{"type": "dense", "units": 2, "activation": "rellu"}"#,
            &[
                "unknown activation \"rellu\"",
                "did you mean \"relu\"",
                "softmax",
            ][..],
        ),
        (
            r#"{"type": "bidirectional", "layer": {"type": "lstmm", "units": 2}}"#,
            &["did you mean \"lstm\""][..],
        ),
        (
            r#"{"type": "transformer"}"#,
            &["unknown layer type \"transformer\"", "valid: conv1d"][..],
        ),
    ] {
        let m = format!(r#"{{"input_shape": [20, 4], "layers": [{layer}]}}"#);
        fails_with(&summary(d.path(), &m), parts);
    }
}

#[test]
fn one_class_data_says_a_classifier_needs_two_classes() {
    let d = planted();
    let mut csv = String::from("id,label,sequence\n");
    for i in 0..20 {
        csv.push_str(&format!("r{i},b,ACGTACGTACGTACGTACGT\n"));
    }
    std::fs::write(d.path().join("one.csv"), csv).unwrap();
    let o = seqgrad(
        &["train", "--model", "m.json", "--data", "one.csv"],
        d.path(),
    );
    fails_with(&o, &["one.csv", "\"b\"", "at least two classes"]);
}

#[test]
fn a_tab_separated_txt_gets_a_separator_hint_and_format_reads_it() {
    let d = planted();
    std::fs::write(d.path().join("d.txt"), planted_csv().replace(',', "\t")).unwrap();
    let base = [
        "train", "--model", "m.json", "--data", "d.txt", "--epochs", "1",
    ];
    let o = seqgrad(&base, d.path());
    fails_with(&o, &["d.txt", "tab-separated", "--format tsv"]);
    let mut a = base.to_vec();
    a.extend(["--format", "tsv", "--out", "run", "--progress", "quiet"]);
    let o = seqgrad(&a, d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config(d.path())["data_settings"]["format"], "tsv");
    // evaluate and predict take --format too; --split reads the file as the run did
    let o = seqgrad(
        &[
            "evaluate", "--run", "run", "--data", "d.txt", "--format", "tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = seqgrad(&["evaluate", "--run", "run", "--split", "test"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = seqgrad(
        &[
            "predict", "--run", "run", "--data", "d.txt", "--format", "tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // a CSV named .tsv and a table named .fa get the opposite hints
    std::fs::write(d.path().join("c.tsv"), planted_csv()).unwrap();
    let o = seqgrad(&["predict", "--run", "run", "--data", "c.tsv"], d.path());
    fails_with(&o, &["c.tsv", "--format csv"]);
    std::fs::write(d.path().join("c.fa"), planted_csv()).unwrap();
    let o = seqgrad(&["predict", "--run", "run", "--data", "c.fa"], d.path());
    fails_with(&o, &["c.fa", "--format csv"]);
    let o = seqgrad(
        &[
            "predict", "--run", "run", "--data", "c.fa", "--format", "json",
        ],
        d.path(),
    );
    fails_with(&o, &["--format", "csv", "tsv", "fasta"]);
}

#[test]
fn zero_epochs_or_batch_size_name_the_flag() {
    let d = planted();
    for (flag, cmd) in [
        ("--epochs", "train"),
        ("--batch-size", "train"),
        ("--batch-size", "evaluate"),
        ("--batch-size", "predict"),
    ] {
        let mut a = vec![cmd, flag, "0", "--data", "d.csv"];
        if cmd == "train" {
            a.extend(["--model", "m.json"]);
        } else {
            a.extend(["--run", "run"]);
        }
        let o = seqgrad(&a, d.path());
        fails_with(&o, &[&format!("'{flag} <"), "must be at least 1"]);
    }
}

#[test]
fn bare_seqgrad_announces_the_demo_and_runs_it_from_built_in_files() {
    // An empty folder: no models/ or data/ to read; the demo's files are in the binary.
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .current_dir(d.path())
        .env("SEQGRAD_DEMO_EPOCHS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or("");
    assert!(
        first.contains("running the demo") && first.contains("seqgrad --help"),
        "{e}"
    );
    let s = stdout(&o);
    assert!(s.contains("2552 train / 319 validation / 319 test"), "{s}");
    let run = d.path().join("runs/splice");
    assert!(run.join("weights.safetensors").is_file());
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["data"]["path"], "bundled:data/splice.csv");
    assert_eq!(c["epochs"], 1);
    // the demo run is a run like any other: its test split scores from the built-in data
    let o = seqgrad(
        &["evaluate", "--run", "runs/splice", "--split", "test"],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), test_block(&s));
}

#[test]
fn evaluate_split_valid_scores_a_separate_valid_file_whole() {
    let d = planted();
    let csv = planted_csv();
    let lines: Vec<&str> = csv.lines().collect();
    // the last 30 records as the --valid file, the rest as --data
    std::fs::write(
        d.path().join("v.csv"),
        format!("{}\n{}\n", lines[0], lines[131..].join("\n")),
    )
    .unwrap();
    std::fs::write(d.path().join("t.csv"), lines[..131].join("\n") + "\n").unwrap();
    let o = seqgrad(
        &[
            "train",
            "--model",
            "m.json",
            "--data",
            "t.csv",
            "--valid",
            "v.csv",
            "--epochs",
            "1",
            "--out",
            "run",
            "--progress",
            "quiet",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = config(d.path());
    assert_eq!(c["valid_data"]["path"], "v.csv");
    assert_eq!(c["splits"]["valid_records"], 30);
    assert_eq!(c["splits"]["valid"], "");
    let o = seqgrad(&["evaluate", "--run", "run", "--split", "valid"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("valid: 30 records"),
        "{}",
        stdout(&o)
    );
}

/// Equal tensors and metadata give byte-identical weights files, whatever order the metadata
/// map iterates in (each `HashMap` has its own random hash order).
#[test]
fn weights_files_with_metadata_are_byte_identical_across_writes() {
    use std::collections::HashMap;
    let d = tempfile::tempdir().unwrap();
    let a = ndarray::ArrayD::<f32>::from_shape_fn(ndarray::IxDyn(&[3, 2]), |i| {
        (i[0] * 2 + i[1]) as f32
    });
    let b = ndarray::ArrayD::<f32>::from_elem(ndarray::IxDyn(&[4]), 0.5);
    let write = |name: &str| {
        let meta: HashMap<String, String> = (0..12)
            .map(|k| (format!("key{k}"), format!("value {k}")))
            .collect();
        let path = d.path().join(name);
        seqgrad::weights::write_tensors_with_metadata(
            &path,
            &[("w".to_string(), a.view()), ("b".to_string(), b.view())],
            Some(meta),
        )
        .unwrap();
        std::fs::read(path).unwrap()
    };
    let first = write("1.safetensors");
    for i in 2..6 {
        assert_eq!(
            first,
            write(&format!("{i}.safetensors")),
            "write {i} differs"
        );
    }
    let meta = seqgrad::weights::read_metadata(&d.path().join("1.safetensors")).unwrap();
    assert_eq!(meta.len(), 12);
    assert_eq!(meta["key7"], "value 7");
}
