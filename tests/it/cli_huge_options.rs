//! Oversized or overflowing options must not crash `seqgrad summary`: exit code 2, one line on
//! stderr naming the numbers, no panic, no allocation abort (the layers check geometry and
//! tensor sizes before allocating anything).

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

/// Exit code 2 (not a signal: an abort has no code), one stderr line, no panic; returns it.
fn one_line_error(json: &str) -> String {
    let out = summary(json);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{json}\nstderr: {err}");
    assert!(
        !err.contains("panicked")
            && !err.contains("memory allocation")
            && !err.contains("backtrace"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line: {err}");
    assert!(lines[0].starts_with("seqgrad: error: "), "{err}");
    assert!(out.stdout.is_empty());
    lines[0].to_string()
}

fn model(input: &str, layers: &str) -> String {
    format!(r#"{{"input_shape": {input}, "layers": [{layers}]}}"#)
}

const CAP: &str = "more than the 1073741824 seqgrad allows";

#[test]
fn huge_valid_kernel_is_longer_than_input() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "conv1d", "filters": 1, "kernel_size": 1000000000000}"#,
    ));
    assert!(err.contains("layer #0 (conv1d)"), "{err}");
    assert!(
        err.contains("kernel_size 1000000000000 is longer than the input length 40"),
        "{err}"
    );
}

#[test]
fn kernel_of_2_pow_62_is_longer_than_input() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "conv1d", "filters": 1, "kernel_size": 4611686018427387904}"#,
    ));
    assert!(
        err.contains("4611686018427387904 is longer than the input length 40"),
        "{err}"
    );
}

#[test]
fn huge_same_kernel_is_refused_by_the_size_cap() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "conv1d", "filters": 1, "kernel_size": 1000000000000, "padding": "same"}"#,
    ));
    assert!(
        err.contains("weight (1, 4, 1000000000000) would hold 4000000000000 elements"),
        "{err}"
    );
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn overflowing_dilation_is_an_error_not_wrong_padding() {
    for padding in ["same", "valid"] {
        let err = one_line_error(&model(
            "[40, 4]",
            &format!(
                r#"{{"type": "conv1d", "filters": 1, "kernel_size": 3,
                    "dilation_rate": 9223372036854775807, "padding": "{padding}"}}"#
            ),
        ));
        assert!(err.contains("layer #0 (conv1d)"), "{err}");
        assert!(err.contains("9223372036854775807"), "{err}");
        if padding == "same" {
            // (L' − 1)·s + span overflows: before, the padding wrapped to a wrong value.
            assert!(err.contains("overflow"), "{err}");
        } else {
            // span = 2·(2⁶³ − 1) + 1 = usize::MAX still fits: simply too long.
            assert!(
                err.contains("of 18446744073709551615 is longer than the input length 40"),
                "{err}"
            );
        }
    }
    // span itself overflows (kernel 4 · dilation 2⁶³ − 1).
    for padding in ["same", "valid"] {
        let err = one_line_error(&model(
            "[40, 4]",
            &format!(
                r#"{{"type": "conv1d", "filters": 1, "kernel_size": 4,
                    "dilation_rate": 9223372036854775807, "padding": "{padding}"}}"#
            ),
        ));
        assert!(err.contains("overflow"), "{err}");
    }
}

#[test]
fn huge_conv_filters() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "conv1d", "filters": 100000000000, "kernel_size": 3}"#,
    ));
    assert!(
        err.contains("weight (100000000000, 4, 3) would hold 1200000000000 elements"),
        "{err}"
    );
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn huge_dense_after_flatten() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "flatten"}, {"type": "dense", "units": 100000000000}"#,
    ));
    assert!(err.contains("layer #1 (dense)"), "{err}");
    assert!(
        err.contains("weight (100000000000, 160) would hold 16000000000000 elements"),
        "{err}"
    );
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn huge_lstm_units() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "lstm", "units": 4294967296}"#,
    ));
    assert!(err.contains("layer #0 (lstm)"), "{err}");
    assert!(err.contains("weight_ih_l0 (17179869184, 4)"), "{err}");
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn huge_gru_units_and_bidirectional() {
    let err = one_line_error(&model("[40, 4]", r#"{"type": "gru", "units": 3000000000}"#));
    assert!(err.contains("weight_ih_l0 (9000000000, 4)"), "{err}");
    assert!(err.contains(CAP), "{err}");
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "bidirectional", "layer": {"type": "gru", "units": 3000000000}}"#,
    ));
    assert!(err.contains("layer #0 (bidirectional(gru))"), "{err}");
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn units_times_gates_overflowing_usize() {
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "lstm", "units": 9223372036854775807}"#,
    ));
    assert!(err.contains("9223372036854775807"), "{err}");
}

#[test]
fn huge_input_shape_then_flatten_dense() {
    let err = one_line_error(&model(
        "[100000000, 100]",
        r#"{"type": "flatten"}, {"type": "dense", "units": 10}"#,
    ));
    assert!(
        err.contains("input_shape (100000000, 100) would hold 10000000000 elements"),
        "{err}"
    );
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn overflowing_input_shape_product() {
    let err = one_line_error(&model("[4294967296, 4294967296]", r#"{"type": "flatten"}"#));
    assert!(
        err.contains("input_shape (4294967296, 4294967296)"),
        "{err}"
    );
    assert!(err.contains(CAP), "{err}");
}

#[test]
fn huge_layer_output_is_refused() {
    // 1000 · 2000000 = 2e9 activations per sample, though the weight (2000000, 4, 1) fits.
    let err = one_line_error(&model(
        "[1000, 4]",
        r#"{"type": "conv1d", "filters": 2000000, "kernel_size": 1}"#,
    ));
    assert!(
        err.contains("output (1000, 2000000) would hold 2000000000 elements"),
        "{err}"
    );
}

#[test]
fn huge_pool_sizes_error_or_work() {
    // valid: longer than the input.
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "maxpool1d", "pool_size": 18446744073709551615}"#,
    ));
    assert!(
        err.contains("pool_size 18446744073709551615 is longer than the input length 40"),
        "{err}"
    );
    // same with stride 1: (L' − 1)·s + p overflows.
    let err = one_line_error(&model(
        "[40, 4]",
        r#"{"type": "avgpool1d", "pool_size": 18446744073709551615, "strides": 1, "padding": "same"}"#,
    ));
    assert!(err.contains("overflow"), "{err}");
}

#[test]
fn summary_shows_the_conv1d_activation() {
    let out = summary(&model(
        "[40, 4]",
        r#"{"type": "conv1d", "filters": 8, "kernel_size": 3, "activation": "relu"},
           {"type": "conv1d", "filters": 8, "kernel_size": 3},
           {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}"#,
    ));
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("conv1d")).collect();
    assert_eq!(rows.len(), 2, "{s}");
    assert!(rows[0].contains("conv1d, relu"), "{s}");
    assert!(!rows[1].contains("conv1d,"), "linear is not shown: {s}");
    assert!(s.contains("dense, softmax"), "{s}");
}

#[test]
fn bidirectional_culprit_hint_names_the_wrapped_layer() {
    let err = one_line_error(&model(
        "[30, 4]",
        r#"{"type": "bidirectional", "layer": {"type": "lstm", "units": 4}},
           {"type": "gru", "units": 4}"#,
    ));
    assert!(err.contains("layer #1 (gru)"), "{err}");
    assert!(
        err.contains("set return_sequences=true in the wrapped layer of layer #0"),
        "{err}"
    );
}
