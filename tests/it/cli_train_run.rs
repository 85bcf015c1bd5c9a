//! The run folder: a re-run into an existing --out removes the old run's outputs first, so a
//! failed re-run never leaves old weights for `evaluate --run` to pick up; errors name a
//! checkpoint only when one was saved; a diverging learning rate is an error naming the step
//! and the parameter.

use std::path::Path;
use std::process::Output;

use crate::common::{seqgrad, setup, stderr};

fn train(d: &Path, extra: &[&str]) -> Output {
    crate::common::train_tiny(d, extra)
}

#[test]
fn a_failed_rerun_leaves_no_stale_outputs_and_claims_no_checkpoint() {
    let d = setup();
    let o = train(d.path(), &["--epochs", "3", "--lr", "0.05"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.path().join("run");
    for f in [
        "weights.safetensors",
        "history.csv",
        "history.json",
        "test_metrics.json",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    // a file of the user's in the run folder is left alone
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    // the reviewer's case: no validation set, a learning rate that diverges (1e39 is infinite
    // in f32), so step 1 breaks the weights
    let o = train(
        d.path(),
        &[
            "--epochs",
            "3",
            "--val-split",
            "0",
            "--test-split",
            "0",
            "--lr",
            "1e39",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    for part in [
        "epoch 1, step 1 (global step 1)",
        "parameter layers.0.weight (layer #0, conv1d) became non-finite after the optimizer step",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    assert!(!e.contains("checkpoint"), "no checkpoint was saved: {e}");
    for f in [
        "weights.safetensors",
        "history.csv",
        "history.json",
        "test_metrics.json",
    ] {
        assert!(!run.join(f).exists(), "stale {f} left behind");
    }
    assert!(run.join("model.json").exists() && run.join("labels.json").exists());
    assert_eq!(
        std::fs::read_to_string(run.join("notes.txt")).unwrap(),
        "mine"
    );
    // evaluate --run no longer silently uses the old weights
    let o = seqgrad(&["evaluate", "--run", "run", "--data", "d.csv"], d.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("weights.safetensors"), "{}", stderr(&o));
}

#[test]
fn history_has_the_gradient_norm_and_one_row_per_epoch() {
    let d = setup();
    let o = train(
        d.path(),
        &["--epochs", "4", "--patience", "0", "--clip-norm", "0.001"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(d.path().join("run/history.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,loss,accuracy,val_loss,val_accuracy,grad_norm,grad_norm_max,seconds"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    for l in &lines[1..] {
        let c: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        // the pre-clipping norm: above the 0.001 threshold, mean <= max
        assert!(c[5] > 0.001 && c[5] <= c[6], "{l}");
    }
    let json = std::fs::read_to_string(d.path().join("run/history.json")).unwrap();
    assert!(json.contains("\"grad_norm\"") && json.contains("\"grad_norm_max\""));
    // the per-epoch line shows it too
    let o = seqgrad(
        &[
            "train",
            "--model",
            "m.json",
            "--data",
            "d.csv",
            "--out",
            "run",
            "--epochs",
            "1",
            "--progress",
            "plain",
        ],
        d.path(),
    );
    assert!(stderr(&o).contains("grad_norm "), "{}", stderr(&o));
}
