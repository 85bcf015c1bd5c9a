//! CLI tests for recurrent models: the user story's Flatten-before-RNN mistake, the other
//! layers that remove the time axis, and the DanQ / seed model summaries.

use std::path::Path;
use std::process::{Command, Output};

fn summary(model: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .arg("summary")
        .arg("--model")
        .arg(model)
        .output()
        .unwrap()
}

fn summary_of(json: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, json).unwrap();
    summary(&path)
}

/// Exit code 2 and exactly one line of stderr, no panic; returns that line.
fn one_line_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(err.starts_with("seqgrad: error: "), "{err}");
    err.trim_end().to_string()
}

const USER_STORY_BROKEN: &str = r#"{"input_shape": [40, 4], "layers": [
  {"type": "conv1d", "filters": 100, "kernel_size": 10, "activation": "relu"},
  {"type": "maxpool1d", "pool_size": 5, "strides": 5},
  {"type": "flatten"},
  {"type": "bidirectional", "merge_mode": "concat", "layer": {"type": "simple_rnn", "units": 100}},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

#[test]
fn flatten_before_rnn_names_flatten_and_the_fix() {
    let err = one_line_error(&summary_of(USER_STORY_BROKEN));
    // The layer that failed, what it needs and what it got.
    assert!(
        err.contains("layer #3 (bidirectional(simple_rnn))"),
        "{err}"
    );
    assert!(err.contains("(length, features)"), "{err}");
    assert!(err.contains("got (600)"), "{err}");
    // Who removed the time axis, from which shape, and the fix.
    assert!(err.contains("Flatten (#2) removed the time axis"), "{err}");
    assert!(err.contains("(6, 100)"), "{err}");
    assert!(err.contains("remove the Flatten"), "{err}");
    assert!(
        err.contains("return_sequences=false on the last recurrent layer"),
        "{err}"
    );
    eprintln!("{err}");
}

#[test]
fn recurrent_layer_without_sequences_before_another_is_named() {
    let err = one_line_error(&summary_of(
        r#"{"input_shape": [30, 4], "layers": [
          {"type": "lstm", "units": 8},
          {"type": "gru", "units": 4},
          {"type": "dense", "units": 1}]}"#,
    ));
    assert!(err.contains("layer #1 (gru)"), "{err}");
    assert!(
        err.contains("lstm (#0) with return_sequences=false removed the time axis"),
        "{err}"
    );
    assert!(err.contains("(30, 4) into (8)"), "{err}");
    assert!(
        err.contains("set return_sequences=true on layer #0"),
        "{err}"
    );
}

#[test]
fn global_pool_before_rnn_is_named() {
    let err = one_line_error(&summary_of(
        r#"{"input_shape": [30, 4], "layers": [
          {"type": "conv1d", "filters": 6, "kernel_size": 3},
          {"type": "global_maxpool1d"},
          {"type": "bidirectional", "layer": {"type": "gru", "units": 4}}]}"#,
    ));
    assert!(err.contains("layer #2 (bidirectional(gru))"), "{err}");
    assert!(
        err.contains("global_maxpool1d (#1) removed the time axis"),
        "{err}"
    );
}

#[test]
fn invalid_recurrent_activation_is_a_clear_error() {
    let err = one_line_error(&summary_of(
        r#"{"input_shape": [30, 4], "layers": [{"type": "lstm", "units": 8, "activation": "relu"}]}"#,
    ));
    assert!(
        err.contains("layer #0 (lstm)") && err.contains("tanh") && err.contains("relu"),
        "{err}"
    );
}

#[test]
fn danq_summary_shapes_and_parameter_count() {
    let out = summary(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/danq.json"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shape in [
        "(975, 320)",
        "(75, 320)",
        "(75, 640)",
        "(48000)",
        "(925)",
        "(919)",
    ] {
        assert!(text.contains(shape), "{shape} missing:\n{text}");
    }
    assert!(text.contains("bidirectional(lstm)"), "{text}");
    assert!(text.contains("1,643,520"), "{text}");
    assert!(text.contains("Total params: 46,929,039"), "{text}");
}

#[test]
fn seed_model_builds() {
    let out = summary(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/seed.json"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bidirectional(simple_rnn)") && text.contains("(6, 200)"),
        "{text}"
    );
    assert!(
        text.contains("(1200)") && text.contains("Total params: 164,802"),
        "{text}"
    );
}
