//! `seqgrad grad`: round trips of weights through the command, agreement with the PyTorch
//! fixtures, and one clear line (exit code 2) for every user error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};
use seqgrad::weights::{self, StoredTensor};

/// A dense-only model (runs on the foundation alone): (10, 4) → dense 8 relu → dense 3 softmax.
const MODEL: &str = r#"{"input_shape": [10, 4], "layers": [
  {"type": "dense", "units": 8, "activation": "relu"},
  {"type": "dense", "units": 3, "activation": "softmax"}]}"#;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.json"), MODEL).unwrap();
        Dir { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn arr(shape: &[usize], seed: u64) -> ArrayD<f64> {
    // Deterministic, uneven values in (-1, 1).
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

fn write<T: seqgrad::Float>(path: &Path, tensors: &[(&str, ArrayD<f64>)]) {
    let cast: Vec<(String, ArrayD<T>)> = tensors
        .iter()
        .map(|(n, a)| (n.to_string(), a.mapv(T::lit)))
        .collect();
    let views: Vec<_> = cast.iter().map(|(n, a)| (n.clone(), a.view())).collect();
    weights::write_tensors(path, &views).unwrap();
}

fn grad(args: &[&str], dir: &Dir) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seqgrad"));
    cmd.arg("grad")
        .current_dir(dir.dir.path())
        .env("RUST_BACKTRACE", "1");
    cmd.args(args);
    cmd.output().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exit code 2, exactly one stderr line starting `seqgrad: error: `, no panic; returns it.
fn one_line_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line: {err}");
    assert!(lines[0].starts_with("seqgrad: error: "), "{err}");
    lines[0].to_string()
}

fn read(path: &Path) -> BTreeMap<String, StoredTensor> {
    weights::read_tensors(path).unwrap()
}

/// A good input file: batch 2.
fn write_input<T: seqgrad::Float>(dir: &Dir, name: &str) {
    write::<T>(
        &dir.path(name),
        &[
            ("input", arr(&[2, 10, 4], 1)),
            ("output_grad", arr(&[2, 10, 3], 2)),
        ],
    );
}

fn std_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--model", "model.json", "--input", "in.safetensors"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn seeded_weights_round_trip_bit_identically_in_both_dtypes() {
    let dir = Dir::new();
    for (dtype, want) in [("f32", "F32"), ("f64", "F64")] {
        if dtype == "f32" {
            write_input::<f32>(&dir, "in.safetensors");
        } else {
            write_input::<f64>(&dir, "in.safetensors");
        }
        // 1. Seeded initial weights: written to OUT next to output, input_grad and grad.*.
        ok(&grad(
            &std_args(&["--out", "a.safetensors", "--seed", "5", "--dtype", dtype]),
            &dir,
        ));
        let a = read(&dir.path("a.safetensors"));
        let names: Vec<&str> = a.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "grad.layers.0.bias",
                "grad.layers.0.weight",
                "grad.layers.1.bias",
                "grad.layers.1.weight",
                "input_grad",
                "layers.0.bias",
                "layers.0.weight",
                "layers.1.bias",
                "layers.1.weight",
                "output"
            ]
        );
        assert!(a.values().all(|t| t.dtype == want));
        assert_eq!(a["output"].array.shape(), &[2, 10, 3]);
        assert_eq!(a["input_grad"].array.shape(), &[2, 10, 4]);
        assert_eq!(a["layers.0.weight"].array.shape(), &[8, 4]);
        assert!(a["grad.layers.0.weight"].array.iter().any(|v| *v != 0.0));
        // Probabilities: rows sum to one.
        for row in a["output"].array.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
        }

        // 2. Those weights, saved alone, loaded back: identical output and gradients.
        let w: Vec<(&str, ArrayD<f64>)> = a
            .iter()
            .filter(|(k, _)| k.starts_with("layers."))
            .map(|(k, t)| (k.as_str(), t.array.clone()))
            .collect();
        if dtype == "f32" {
            write::<f32>(&dir.path("w.safetensors"), &w);
        } else {
            write::<f64>(&dir.path("w.safetensors"), &w);
        }
        ok(&grad(
            &std_args(&["--weights", "w.safetensors", "--out", "b.safetensors"]),
            &dir,
        ));
        let b = read(&dir.path("b.safetensors"));
        assert!(
            !b.contains_key("layers.0.weight"),
            "weights are only echoed without --weights"
        );
        for name in [
            "output",
            "input_grad",
            "grad.layers.0.weight",
            "grad.layers.0.bias",
            "grad.layers.1.weight",
        ] {
            assert_eq!(
                a[name].array, b[name].array,
                "{dtype} {name} differs after the round trip"
            );
            assert_eq!(b[name].dtype, want);
        }

        // 3. A grad output file works directly as --weights (its output/grad tensors ignored).
        ok(&grad(
            &std_args(&["--weights", "a.safetensors", "--out", "c.safetensors"]),
            &dir,
        ));
        assert_eq!(
            read(&dir.path("c.safetensors"))["output"].array,
            a["output"].array
        );

        // 4. Another seed gives other weights.
        ok(&grad(
            &std_args(&["--out", "d.safetensors", "--seed", "6", "--dtype", dtype]),
            &dir,
        ));
        assert_ne!(
            read(&dir.path("d.safetensors"))["output"].array,
            a["output"].array
        );
    }
}

#[test]
fn default_dtype_is_f32_and_input_is_converted() {
    let dir = Dir::new();
    write_input::<f64>(&dir, "in.safetensors");
    ok(&grad(&std_args(&["--out", "o.safetensors"]), &dir));
    assert!(read(&dir.path("o.safetensors"))
        .values()
        .all(|t| t.dtype == "F32"));
}

/// The command agrees with PyTorch on committed fixtures (fixture files hold `input` and
/// `output_grad`, so they serve as --input directly; extra tensors there are ignored).
#[test]
fn agrees_with_the_pytorch_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity");
    for (case, file, tol) in [
        ("dense_stack_2d", "f64.safetensors", 1e-9),
        ("dense3d_softmax", "f32.safetensors", 1e-4),
    ] {
        let dir = Dir::new();
        let fixture = root.join(case).join(file);
        let t = read(&fixture);
        let w: Vec<(&str, ArrayD<f64>)> = t
            .iter()
            .filter(|(k, _)| k.starts_with("layers."))
            .map(|(k, v)| (k.as_str(), v.array.clone()))
            .collect();
        if file.starts_with("f64") {
            write::<f64>(&dir.path("w.safetensors"), &w);
        } else {
            write::<f32>(&dir.path("w.safetensors"), &w);
        }
        let model = root.join(case).join("model.json");
        let out = grad(
            &[
                "--model",
                model.to_str().unwrap(),
                "--weights",
                "w.safetensors",
                "--input",
                fixture.to_str().unwrap(),
                "--out",
                "o.safetensors",
            ],
            &dir,
        );
        ok(&out);
        let o = read(&dir.path("o.safetensors"));
        let mut compared = 0;
        for (name, e) in t
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("expected.").map(|n| (n, v)))
        {
            let a = &o
                .get(name)
                .unwrap_or_else(|| panic!("{case}: no {name} in the output"))
                .array;
            let scale = e
                .array
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()))
                .max(f64::MIN_POSITIVE);
            let worst = a
                .iter()
                .zip(e.array.iter())
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= tol * scale,
                "{case} {name}: worst {worst:e} vs max {scale:e}"
            );
            compared += 1;
        }
        assert!(compared >= 4, "{case}: only {compared} tensors compared");
    }
}

#[test]
fn weights_missing_a_tensor_is_one_clear_line() {
    let dir = Dir::new();
    write_input::<f32>(&dir, "in.safetensors");
    write::<f32>(
        &dir.path("w.safetensors"),
        &[
            ("layers.0.weight", arr(&[8, 4], 3)),
            ("layers.0.bias", arr(&[8], 4)),
            ("layers.1.weight", arr(&[3, 8], 5)),
        ],
    );
    let out = grad(
        &std_args(&["--weights", "w.safetensors", "--out", "o.safetensors"]),
        &dir,
    );
    let line = one_line_error(&out);
    assert!(
        line.contains("w.safetensors")
            && line.contains("1 problem(s): missing tensor layers.1.bias (3)"),
        "{line}"
    );
    assert!(!dir.path("o.safetensors").exists(), "no output on error");
}

#[test]
fn weights_with_a_wrong_shape_is_one_clear_line_listing_every_problem() {
    let dir = Dir::new();
    write_input::<f32>(&dir, "in.safetensors");
    write::<f32>(
        &dir.path("w.safetensors"),
        &[
            ("layers.0.weight", arr(&[8, 5], 3)),
            ("layers.0.bias", arr(&[8], 4)),
            ("layers.1.weight", arr(&[3, 8], 5)),
            ("layers.1.bias", arr(&[4], 6)),
            ("layers.2.weight", arr(&[1], 7)),
        ],
    );
    let out = grad(
        &std_args(&["--weights", "w.safetensors", "--out", "o.safetensors"]),
        &dir,
    );
    let line = one_line_error(&out);
    for want in [
        "3 problem(s)",
        "tensor layers.0.weight has shape (8, 5) but the model expects (8, 4)",
        "tensor layers.1.bias has shape (4) but the model expects (3)",
        "unexpected tensor layers.2.weight",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
}

#[test]
fn missing_input_and_wrong_shapes_exit_2() {
    let dir = Dir::new();
    // No `input`.
    write::<f32>(
        &dir.path("in.safetensors"),
        &[("output_grad", arr(&[2, 10, 3], 2))],
    );
    let line = one_line_error(&grad(&std_args(&["--out", "o.safetensors"]), &dir));
    assert!(
        line.contains("no tensor named `input` (batch, 10, 4)")
            && line.contains("holds: output_grad"),
        "{line}"
    );
    // No `output_grad`.
    write::<f32>(
        &dir.path("in.safetensors"),
        &[("input", arr(&[2, 10, 4], 1))],
    );
    let line = one_line_error(&grad(&std_args(&["--out", "o.safetensors"]), &dir));
    assert!(
        line.contains("no tensor named `output_grad`") && line.contains("(2, 10, 3)"),
        "{line}"
    );
    // Wrong input shape.
    write::<f32>(
        &dir.path("in.safetensors"),
        &[
            ("input", arr(&[2, 9, 4], 1)),
            ("output_grad", arr(&[2, 9, 3], 2)),
        ],
    );
    let line = one_line_error(&grad(&std_args(&["--out", "o.safetensors"]), &dir));
    assert!(
        line.contains("`input` has shape (2, 9, 4) but the model takes (batch, 10, 4)"),
        "{line}"
    );
    // Wrong output_grad shape.
    write::<f32>(
        &dir.path("in.safetensors"),
        &[
            ("input", arr(&[2, 10, 4], 1)),
            ("output_grad", arr(&[2, 3], 2)),
        ],
    );
    let line = one_line_error(&grad(&std_args(&["--out", "o.safetensors"]), &dir));
    assert!(
        line.contains(
            "`output_grad` has shape (2, 3) but the model output for this input is (2, 10, 3)"
        ),
        "{line}"
    );
    assert!(!dir.path("o.safetensors").exists(), "no output on error");
}

#[test]
fn corrupt_files_and_conflicting_dtype_exit_2() {
    let dir = Dir::new();
    write_input::<f32>(&dir, "in.safetensors");
    // Truncated weights.
    ok(&grad(&std_args(&["--out", "a.safetensors"]), &dir));
    let bytes = std::fs::read(dir.path("a.safetensors")).unwrap();
    std::fs::write(dir.path("t.safetensors"), &bytes[..bytes.len() - 7]).unwrap();
    let line = one_line_error(&grad(
        &std_args(&["--weights", "t.safetensors", "--out", "o.safetensors"]),
        &dir,
    ));
    assert!(
        line.contains("t.safetensors") && line.contains("not a valid safetensors file"),
        "{line}"
    );
    // Garbage input file.
    std::fs::write(dir.path("bad.safetensors"), b"hello").unwrap();
    let line = one_line_error(&grad(
        &[
            "--model",
            "model.json",
            "--input",
            "bad.safetensors",
            "--out",
            "o.safetensors",
        ],
        &dir,
    ));
    assert!(
        line.contains("bad.safetensors") && line.contains("not a valid safetensors file"),
        "{line}"
    );
    // Missing file.
    let line = one_line_error(&grad(
        &std_args(&["--weights", "nope.safetensors", "--out", "o.safetensors"]),
        &dir,
    ));
    assert!(line.contains("nope.safetensors"), "{line}");
    // --dtype against the weights' dtype.
    let line = one_line_error(&grad(
        &std_args(&[
            "--weights",
            "a.safetensors",
            "--dtype",
            "f64",
            "--out",
            "o.safetensors",
        ]),
        &dir,
    ));
    assert!(
        line.contains("--dtype f64 but the weights file") && line.contains("F32"),
        "{line}"
    );
    assert!(!dir.path("o.safetensors").exists());
}
