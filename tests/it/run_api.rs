//! The `Run` API (`src/run`): the library gives, as typed values, what the command line prints
//! and writes for the same run folder.

use seqgrad::data::{stream::RecordStream, ReadOptions};
use seqgrad::run::source::load_records;
use seqgrad::run::{grad, DataOptions, Pick, PredictionRow, Run, SplitName};

use crate::common::{seqgrad, stderr, train_tiny};

fn trained() -> tempfile::TempDir {
    let d = crate::common::setup();
    let o = train_tiny(
        d.path(),
        &["--epochs", "2", "--test-split", "0.25", "--no-plots"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    d
}

#[test]
fn run_open_evaluates_predicts_and_grads_as_the_command_line_does() {
    let d = trained();
    let dir = d.path().join("run");
    let csv = d.path().join("d.csv");
    let mut run: Run = Run::open(&dir).unwrap();
    assert_eq!(run.labels.as_ref().unwrap().classes, ["no", "yes"]);
    assert!(run.config().unwrap().is_some());
    let history = run.history().unwrap().unwrap();
    assert_eq!(history["epoch"], [1.0, 2.0]);
    assert_eq!(history["loss"].len(), 2);

    // evaluate: the test split's metrics are the test_metrics.json train wrote
    let r = run.evaluate_split(SplitName::Test, None, 256).unwrap();
    assert_eq!(r.records(), 10);
    let written = std::fs::read_to_string(dir.join("test_metrics.json")).unwrap();
    assert_eq!(r.metrics_json(), written);
    let cli = seqgrad(&["evaluate", "--run", "run", "--split", "test"], d.path());
    assert!(cli.status.success(), "{}", stderr(&cli));
    let acc = r.metric("accuracy").unwrap();
    assert!(String::from_utf8_lossy(&cli.stdout).contains(&format!("accuracy {acc:.4}")));

    // predict: the rows are the table `predict` prints
    let opts = ReadOptions {
        require_labels: false,
        ..DataOptions::default().read_options()
    };
    let stream = RecordStream::open(&csv, &opts, None).unwrap();
    let preds = run
        .predict(stream, &DataOptions::default(), 256, false)
        .unwrap();
    assert_eq!(preds.columns(), ["id", "no", "yes"]);
    let rows: Vec<PredictionRow> = preds.collect::<seqgrad::Result<_>>().unwrap();
    assert_eq!(rows.len(), 40);
    let cli = seqgrad(&["predict", "--run", "run", "--data", "d.csv"], d.path());
    let text = String::from_utf8_lossy(&cli.stdout).into_owned();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), rows.len());
    for (row, line) in rows.iter().zip(&lines) {
        let mut cells = vec![row.id.clone()];
        cells.extend(row.probs.iter().map(|v| format!("{v:.6}")));
        assert_eq!(cells.join("\t"), *line);
    }

    // grad: the gradients `grad --data --out` writes
    let (ds, labels) = load_records::<f32>(
        &csv,
        &DataOptions::default(),
        &Pick::default(),
        Some(64),
        run.labels.as_ref(),
        &run.model,
        true,
    )
    .unwrap();
    assert_eq!(labels.classes, ["no", "yes"]);
    let objective = grad::objective_for(&run.model, None);
    let g = grad::of_records(&mut run.model, &ds, objective).unwrap();
    let cli = seqgrad(
        &[
            "grad",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--out",
            "g.safetensors",
        ],
        d.path(),
    );
    assert!(cli.status.success(), "{}", stderr(&cli));
    let loss_line = format!("loss {:.6}", g.value.unwrap());
    assert!(String::from_utf8_lossy(&cli.stdout).contains(&loss_line));
    let t = seqgrad::weights::read_tensors(&d.path().join("g.safetensors")).unwrap();
    let close = |name: &str, a: &ndarray::ArrayD<f32>| {
        let b = &t[name].array;
        assert_eq!(a.shape(), b.shape(), "{name}");
        let worst = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (f64::from(*x) - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{name}: {worst}");
    };
    close("input_grad", &g.input_grad);
    close("output", &g.output);
    assert_eq!(g.params.len(), 4);
    for (name, grad) in &g.params {
        close(&format!("grad.{name}"), grad);
    }
}

#[test]
fn saliency_prints_its_options_in_command_line_spelling() {
    let d = trained();
    let o = seqgrad(
        &[
            "saliency",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--records",
            "3",
            "--baseline",
            "uniform",
            "--quadrature",
            "trapezoid",
            "--steps",
            "8",
            "--max-steps",
            "8",
            "--out",
            "s.tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("--quadrature trapezoid --steps 8:") && out.contains("--baseline uniform)"),
        "{out}"
    );
    assert!(
        !out.contains("Uniform") && !out.contains("Trapezoid"),
        "{out}"
    );
}
