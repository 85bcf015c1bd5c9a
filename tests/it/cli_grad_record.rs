//! `seqgrad grad --record-steps`: per-layer output-gradient norms and per-time-step ‖∂L/∂h_t‖,
//! checked where they are known exactly: at the last step each direction processes, nothing
//! flows in from later steps, so ‖∂L/∂h‖ there is the norm of that direction's share of the
//! upstream gradient.

use std::process::Command;

use seqgrad::gradcheck::random_array;
use seqgrad::weights::{read_tensors, write_tensors};

#[test]
fn record_steps_writes_exact_norms() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    std::fs::write(
        &model,
        r#"{"input_shape": [6, 4], "layers": [
            {"type": "bidirectional", "layer": {"type": "lstm", "units": 3}}]}"#,
    )
    .unwrap();
    let x = random_array(&[2, 6, 4], -1.0, 1.0, 1);
    let g = random_array(&[2, 6], -1.0, 1.0, 2);
    let input = dir.path().join("in.safetensors");
    write_tensors::<f64>(
        &input,
        &[("input".into(), x.view()), ("output_grad".into(), g.view())],
    )
    .unwrap();
    let out = dir.path().join("out.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(["grad", "--dtype", "f64", "--record-steps", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let t = read_tensors(&out).unwrap();
    let fwd = &t["step_grad_norm.layers.0.forward"].array;
    let rev = &t["step_grad_norm.layers.0.reverse"].array;
    assert_eq!(fwd.shape(), &[2, 6]);
    assert_eq!(rev.shape(), &[2, 6]);
    for b in 0..2 {
        let norm =
            |lo: usize, hi: usize| (lo..hi).map(|j| g[[b, j]] * g[[b, j]]).sum::<f64>().sqrt();
        // Forward direction: its output is h_5; the reverse direction's is h_0.
        assert!((fwd[[b, 5]] - norm(0, 3)).abs() < 1e-12, "{fwd}");
        assert!((rev[[b, 0]] - norm(3, 6)).abs() < 1e-12, "{rev}");
        // Earlier steps receive gradient only through the recurrence: non-zero, finite.
        assert!(fwd
            .iter()
            .chain(rev.iter())
            .all(|v| v.is_finite() && *v > 0.0));
    }
    let layer_norms = &t["output_grad_norm"].array;
    let total = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert_eq!(layer_norms.shape(), &[1]);
    assert!((layer_norms[[0]] - total).abs() < 1e-12);

    // The OUT file (initial weights plus records) is accepted back as --weights.
    let again = dir.path().join("again.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(["grad", "--record-steps", "--model"])
        .arg(&model)
        .arg("--weights")
        .arg(&out)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&again)
        .status()
        .unwrap();
    assert!(status.success());
    let t2 = read_tensors(&again).unwrap();
    assert_eq!(t2["step_grad_norm.layers.0.forward"].array, *fwd);
}

#[test]
fn without_the_flag_nothing_extra_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    std::fs::write(
        &model,
        r#"{"input_shape": [5, 4], "layers": [{"type": "gru", "units": 2}]}"#,
    )
    .unwrap();
    let input = dir.path().join("in.safetensors");
    let x = random_array(&[1, 5, 4], -1.0, 1.0, 1);
    let g = random_array(&[1, 2], -1.0, 1.0, 2);
    write_tensors::<f64>(
        &input,
        &[("input".into(), x.view()), ("output_grad".into(), g.view())],
    )
    .unwrap();
    let out = dir.path().join("out.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(["grad", "--dtype", "f64", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let t = read_tensors(&out).unwrap();
    assert!(t.keys().all(|k| !k.contains("grad_norm")), "{:?}", t.keys());
}
