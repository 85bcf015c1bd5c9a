//! `seqgrad summary --model FILE`: the table for good models; for bad ones exit code 2 and one
//! clear line on stderr (no panic, no backtrace).

use std::io::Write;
use std::process::{Command, Output};

fn summary(model_json: &str) -> Output {
    let mut f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    f.write_all(model_json.as_bytes()).unwrap();
    f.flush().unwrap();
    Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(["summary", "--model"])
        .arg(f.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code 2, exactly one non-empty stderr line, no panic; returns that line.
fn one_line_error(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line: {err}");
    assert!(lines[0].starts_with("seqgrad: error: "), "{err}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    lines[0].to_string()
}

#[test]
fn kernel_longer_than_its_input_exits_2_naming_both_lengths_and_the_layer() {
    // 30 → conv1d k=5 → 26 → maxpool 5 → 5 → conv1d k=8: the kernel (8) is longer than 5.
    let out = summary(
        r#"{"input_shape": [30, 4], "layers": [
            {"type": "conv1d", "filters": 8, "kernel_size": 5},
            {"type": "maxpool1d", "pool_size": 5},
            {"type": "conv1d", "filters": 8, "kernel_size": 8}]}"#,
    );
    let line = one_line_error(&out);
    assert!(line.contains("#2") && line.contains("conv1d"), "{line}");
    assert!(
        line.contains("kernel_size 8") && line.contains("input length 5"),
        "{line}"
    );

    // The simplest case: the model input itself is shorter than the kernel.
    let out = summary(
        r#"{"input_shape": [10, 4], "layers": [{"type": "conv1d", "filters": 8, "kernel_size": 20}]}"#,
    );
    let line = one_line_error(&out);
    assert!(
        line.contains("#0 (conv1d)") && line.contains("20") && line.contains("10"),
        "{line}"
    );
}

#[test]
fn dense_after_conv1d_shows_the_time_distributed_shape() {
    // 40 − 10 + 1 = 31 steps; dense keeps the time axis: (31, 8).
    let out = summary(
        r#"{"input_shape": [40, 4], "layers": [
            {"type": "conv1d", "filters": 16, "kernel_size": 10, "activation": "relu"},
            {"type": "dense", "units": 8}]}"#,
    );
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(s.contains("(31, 16)"), "{s}");
    let dense_row = s.lines().find(|l| l.contains("dense")).unwrap_or_default();
    assert!(dense_row.contains("(31, 8)"), "{s}");
}

#[test]
fn unknown_layer_type_exits_2_listing_valid_types() {
    let out = summary(r#"{"input_shape": [40, 4], "layers": [{"type": "conv2d", "filters": 4}]}"#);
    let line = one_line_error(&out);
    for t in [
        "conv2d",
        "conv1d",
        "maxpool1d",
        "avgpool1d",
        "global_maxpool1d",
        "dense",
        "flatten",
        "dropout",
    ] {
        assert!(line.contains(t), "{t} missing: {line}");
    }
}

#[test]
fn unknown_option_exits_2_listing_valid_options() {
    let out = summary(r#"{"input_shape": [40, 4], "layers": [{"type": "maxpool1d", "pool": 3}]}"#);
    let line = one_line_error(&out);
    for o in ["pool", "pool_size", "strides", "padding"] {
        assert!(line.contains(o), "{o} missing: {line}");
    }
    let out = summary(
        r#"{"input_shape": [40, 4], "layers": [{"type": "conv1d", "filters": 4, "kernel": 3}]}"#,
    );
    let line = one_line_error(&out);
    for o in ["kernel", "kernel_size", "dilation_rate", "use_bias"] {
        assert!(line.contains(o), "{o} missing: {line}");
    }
}

#[test]
fn invalid_dropout_rate_exits_2() {
    let out = summary(r#"{"input_shape": [40, 4], "layers": [{"type": "dropout", "rate": 1.0}]}"#);
    let line = one_line_error(&out);
    assert!(
        line.contains("#0 (dropout)") && line.contains("[0, 1)") && line.contains('1'),
        "{line}"
    );
}

#[test]
fn good_model_exits_0_with_the_right_parameter_count() {
    // conv1d: 16 filters · 4 channels · 10 taps + 16 biases = 656     → (31, 16)
    // maxpool1d 5/5: (31 − 5)/5 + 1 = 6                                 → (6, 16)
    // dropout, flatten: 0                                               → (96)
    // dense 10: 96·10 + 10 = 970;  dense 2: 10·2 + 2 = 22
    // total 656 + 970 + 22 = 1,648
    let out = summary(
        r#"{"input_shape": [40, 4], "layers": [
            {"type": "conv1d", "filters": 16, "kernel_size": 10, "activation": "relu"},
            {"type": "maxpool1d", "pool_size": 5, "strides": 5},
            {"type": "dropout", "rate": 0.2},
            {"type": "flatten"},
            {"type": "dense", "units": 10, "activation": "relu"},
            {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
    );
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(s.contains("Total params: 1,648"), "{s}");
    for shape in ["(31, 16)", "(6, 16)", "(96)", "(10)", "(2)"] {
        assert!(s.contains(shape), "{shape}: {s}");
    }
    let conv_row = s.lines().find(|l| l.contains("conv1d")).unwrap_or_default();
    assert!(conv_row.contains("656"), "{s}");
}

#[test]
fn keras_aliases_build_every_core_layer() {
    // 20 → Conv1D same s2 → 10 → AveragePooling1D 2 → 5 → GlobalMaxPooling1D → (6) → Dense 3.
    // Params: 6·4·3 + 6 = 78; 6·3 + 3 = 21; total 99.
    let out = summary(
        r#"{"input_shape": [20, 4], "layers": [
            {"type": "Conv1D", "filters": 6, "kernel_size": 3, "strides": 2, "padding": "same"},
            {"type": "AveragePooling1D"},
            {"type": "Dropout", "rate": 0.5},
            {"type": "Activation", "activation": "tanh"},
            {"type": "GlobalMaxPooling1D"},
            {"type": "Dense", "units": 3}]}"#,
    );
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        s.contains("(10, 6)") && s.contains("(5, 6)") && s.contains("Total params: 99"),
        "{s}"
    );
}

/// The train line of `summary`'s memory estimate for the `null`-length demo model at `length`.
fn train_activation_line(length: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args([
            "summary",
            "--model",
            "models/varlen.json",
            "--length",
            length,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("(?, 4)"), "{s}");
    assert!(s.contains(&format!("records of length {length}")), "{s}");
    s.lines()
        .find(|l| l.trim_start().starts_with("train"))
        .unwrap()
        .to_string()
}

#[test]
fn null_length_model_estimates_memory_at_the_given_length() {
    // Longer records need more activation memory; the estimate is not taken at length 0.
    let short = train_activation_line("50");
    let long = train_activation_line("5000");
    assert_ne!(short, long);
    assert!(!long.contains("activations and caches 0 B"), "{long}");
}
