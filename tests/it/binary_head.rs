//! Binary heads: a model ending in `dense` of 1 unit with `sigmoid` on two-class data trains as
//! binary classification (labels 0/1 in sorted order, recorded in labels.json; accuracy at 0.5,
//! ROC AUC and PR AUC), evaluates, predicts one probability column named after the positive
//! class, and is refused with a reason on three classes.

use std::path::Path;
use std::process::Output;

use ndarray::array;
use seqgrad::train::compute_metrics;

use crate::common::{fails_with, seqgrad, setup, stderr, train_tiny};

const BINARY_MODEL: &str = r#"{"input_shape": [8, 4], "layers": [
  {"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
  {"type": "global_maxpool1d"},
  {"type": "dense", "units": 1, "activation": "sigmoid"}]}"#;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The tiny data of [`setup`] (classes `no`/`yes`) with the binary model as `m.json`.
fn binary_setup() -> tempfile::TempDir {
    let d = setup();
    std::fs::write(d.path().join("m.json"), BINARY_MODEL).unwrap();
    d
}

fn train(d: &Path) -> Output {
    let o = train_tiny(
        d,
        &[
            "--epochs",
            "30",
            "--lr",
            "0.05",
            "--test-split",
            "0.25",
            "--patience",
            "0",
            "--no-plots",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// The value after `name ` on the line starting with `prefix`.
fn metric(text: &str, prefix: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"));
    let rest = &line[line.find(&format!("  {name} ")).expect(name) + name.len() + 3..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn metrics_of_a_fixed_example_by_hand() {
    // scores 0.1 0.4 0.35 0.8 for truths 0 0 1 1: of the 4 (positive, negative) pairs, 3 are
    // ordered right (0.35 < 0.4 is the one wrong) → ROC AUC 3/4. Average precision: at 0.8
    // recall 1/2 precision 1; at 0.35 recall 1 precision 2/3 → 1/2·1 + 1/2·2/3 = 5/6.
    // Accuracy at 0.5: predictions 0 0 0 1 → 3 of 4 right.
    let p = array![[0.1f64], [0.4], [0.35], [0.8]];
    let y = array![[0.0f64], [0.0], [1.0], [1.0]];
    let m = compute_metrics(&p, &y, false);
    let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["accuracy", "roc_auc", "pr_auc"]);
    assert!((m[0].1 - 0.75).abs() < 1e-12, "{m:?}");
    assert!((m[1].1 - 0.75).abs() < 1e-12, "{m:?}");
    assert!((m[2].1 - 5.0 / 6.0).abs() < 1e-12, "{m:?}");
    // exactly 0.5 is the negative class (Keras' binary_accuracy: p > 0.5)
    let m = compute_metrics(&array![[0.5f64]], &array![[0.0f64]], false);
    assert_eq!(m[0].1, 1.0);
    // two columns stay multi-class (arg-max accuracy only)
    let m = compute_metrics(&array![[0.2f64, 0.8]], &array![[0.0f64, 1.0]], false);
    assert_eq!(m.len(), 1);
}

#[test]
fn trains_evaluates_and_predicts_through_the_cli() {
    let d = binary_setup();
    let o = train(d.path());
    let out = stdout(&o);
    assert!(out.contains("classes no, yes"), "{out}");
    // labels.json: sorted classes, binary (no = 0, yes = 1)
    let labels: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("run/labels.json")).unwrap())
            .unwrap();
    assert_eq!(labels["classes"], serde_json::json!(["no", "yes"]));
    assert_eq!(labels["binary"], serde_json::json!(true));
    assert_eq!(labels["multi_label"], serde_json::json!(false));
    // the test report has the three metrics; the data is separable, so it is learnt
    for k in ["accuracy", "roc_auc", "pr_auc"] {
        let v = metric(&out, "test:", k);
        assert!((0.0..=1.0).contains(&v), "{k} {v}");
    }
    assert_eq!(metric(&out, "test:", "accuracy"), 1.0, "{out}");
    assert_eq!(metric(&out, "test:", "roc_auc"), 1.0, "{out}");
    assert!(
        out.contains("predicted; yes when its probability > 0.5"),
        "{out}"
    );
    let tm: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("run/test_metrics.json")).unwrap(),
    )
    .unwrap();
    for k in ["accuracy", "roc_auc", "pr_auc", "loss", "confusion"] {
        assert!(tm.get(k).is_some(), "{k} missing: {tm}");
    }
    assert_eq!(tm["positive_class"], serde_json::json!("yes"));
    // the validation metrics are in the history
    let hist = std::fs::read_to_string(d.path().join("run/history.csv")).unwrap();
    let head = hist.lines().next().unwrap();
    for k in ["val_accuracy", "val_roc_auc", "val_pr_auc", "roc_auc"] {
        assert!(head.split(',').any(|c| c == k), "{k} not in {head}");
    }

    // predict: id, one probability column named after the positive class, the predicted class
    let o = seqgrad(&["predict", "--run", "run", "--data", "d.csv"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("id\tyes\tpredicted"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 40);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0], format!("r{i}"));
        let p: f64 = r[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(r[2], if p > 0.5 { "yes" } else { "no" });
        // even records are "yes" (ACGTACGT), odd ones "no"; the model learnt them all
        assert_eq!(r[2], if i % 2 == 0 { "yes" } else { "no" }, "{r:?}");
    }

    // evaluate: the three metrics; the ROC AUC is the pairwise one of predict's probabilities
    let o = seqgrad(
        &[
            "evaluate",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--metrics-out",
            "m.json.out",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = stdout(&o);
    let p: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let (mut right, mut pairs) = (0.0, 0.0);
    for (i, pi) in p.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        for (_, pj) in p.iter().enumerate().filter(|(j, _)| j % 2 == 1) {
            pairs += 1.0;
            right += if pi > pj {
                1.0
            } else if pi == pj {
                0.5
            } else {
                0.0
            };
        }
        let _ = i;
    }
    let roc = metric(&ev, "d.csv", "roc_auc");
    assert!(
        (roc - right / pairs).abs() < 1e-4,
        "{roc} vs {}",
        right / pairs
    );
    assert_eq!(metric(&ev, "d.csv", "accuracy"), 1.0, "{ev}");
    assert!(metric(&ev, "d.csv", "pr_auc") > 0.99, "{ev}");
    let mo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("m.json.out")).unwrap())
            .unwrap();
    assert_eq!(mo["confusion"], serde_json::json!([[20, 0], [0, 20]]));

    // saliency/grad explain the single logit: --target names the positive class (or 0)
    let o = seqgrad(
        &[
            "saliency",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--records",
            "2",
            "--target",
            "yes",
            "--out",
            "s.tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("logit of class yes"), "{}", stdout(&o));
    let o = seqgrad(
        &[
            "grad",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--records",
            "2",
            "--target",
            "no",
        ],
        d.path(),
    );
    fails_with(&o, &["--target \"no\"", "one output, the logit of \"yes\""]);

    // the test split, as train reported it
    let o = seqgrad(&["evaluate", "--run", "run", "--split", "test"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("roc_auc"), "{}", stdout(&o));
}

#[test]
fn three_classes_on_a_one_unit_sigmoid_head_say_what_to_use() {
    let d = binary_setup();
    let mut csv = String::from("id,label,sequence\n");
    for i in 0..30 {
        let l = ["a", "b", "c"][i % 3];
        csv.push_str(&format!("r{i},{l},ACGTACGT\n"));
    }
    std::fs::write(d.path().join("d.csv"), csv).unwrap();
    let o = train_tiny(d.path(), &["--epochs", "1"]);
    fails_with(
        &o,
        &[
            "d.csv",
            "dense(1 unit, sigmoid)",
            "3 classes (a, b, c)",
            "dense(3 units, softmax)",
            "--multi-label",
        ],
    );
    assert!(!d.path().join("run/labels.json").exists());
}

#[test]
fn a_softmax_model_on_two_classes_is_unchanged() {
    // the old two-unit softmax model keeps its labels.json (no "binary" key) and accuracy only
    let d = setup();
    let o = train_tiny(d.path(), &["--epochs", "2", "--no-plots"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels = std::fs::read_to_string(d.path().join("run/labels.json")).unwrap();
    assert!(!labels.contains("binary"), "{labels}");
    let hist = std::fs::read_to_string(d.path().join("run/history.csv")).unwrap();
    assert!(!hist.lines().next().unwrap().contains("roc_auc"), "{hist}");
}
