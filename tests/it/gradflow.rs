//! `seqgrad gradflow`: the CSV formats, the table, one-line errors, and that a bidirectional
//! layer learns a start-planted motif in a tiny run (library).

use seqgrad::gradflow::{self, Cell, GradflowConfig};

use crate::common::{fails_with, seqgrad};

#[test]
fn gradflow_writes_long_and_summary_csvs_and_prints_the_table() {
    let d = tempfile::tempdir().unwrap();
    let o = seqgrad(
        &[
            "gradflow",
            "--quiet",
            "--cells",
            "simple_rnn,gru",
            "--lengths",
            "10,20",
            "--steps",
            "5",
            "--test-count",
            "40",
            "--record-count",
            "8",
            "--out",
            "gf",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let long = std::fs::read_to_string(d.path().join("gf/gradflow.csv")).unwrap();
    let mut lines = long.lines();
    assert_eq!(
        lines.next().unwrap(),
        "cell,bidirectional,length,stage,direction,t,norm"
    );
    // per cell: uni (1 direction) + bi (2 directions), 2 stages, t over each length
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2 * 3 * 2 * (10 + 20));
    for r in &rows {
        assert_eq!(r.len(), 7, "{r:?}");
        assert!(["simple_rnn", "gru"].contains(&r[0].as_str()));
        assert!(["true", "false"].contains(&r[1].as_str()));
        let len: usize = r[2].parse().unwrap();
        assert!(["init", "trained"].contains(&r[3].as_str()));
        assert!(["forward", "reverse"].contains(&r[4].as_str()));
        assert!(
            r[4] == "forward" || r[1] == "true",
            "reverse only for bidirectional"
        );
        let t: usize = r[5].parse().unwrap();
        assert!(t < len);
        let n: f64 = r[6].parse().unwrap();
        assert!(n.is_finite() && n > 0.0, "{r:?}");
    }
    // t runs 0..L-1 in order within one curve
    let first: Vec<usize> = rows
        .iter()
        .filter(|r| {
            r[0] == "gru"
                && r[1] == "true"
                && r[2] == "10"
                && r[3] == "trained"
                && r[4] == "reverse"
        })
        .map(|r| r[5].parse().unwrap())
        .collect();
    assert_eq!(first, (0..10).collect::<Vec<_>>());

    let summary = std::fs::read_to_string(d.path().join("gf/gradflow_summary.csv")).unwrap();
    let mut sl = summary.lines();
    assert_eq!(
        sl.next().unwrap(),
        "cell,bidirectional,length,direction,init_ratio,init_decay,trained_ratio,trained_decay,accuracy"
    );
    let srows: Vec<&str> = sl.collect();
    assert_eq!(srows.len(), 2 * 3 * 2);
    for r in &srows {
        let f: Vec<&str> = r.split(',').collect();
        assert_eq!(f.len(), 9);
        let ratio: f64 = f[4].parse().unwrap();
        let decay: f64 = f[5].parse().unwrap();
        let len: f64 = f[2].parse().unwrap();
        // decay is the geometric mean per step of the ratio
        assert!((decay.powf(len - 1.0) / ratio - 1.0).abs() < 1e-6, "{r}");
        let acc: f64 = f[8].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    // the table: a header, a rule, one row per summary row
    let table: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    assert!(table[0].starts_with("cell") && table[0].contains("init first/last"));
    assert!(table[0].contains("trained decay/step") && table[0].ends_with("accuracy"));
    assert!(table[1].chars().all(|c| c == '-'));
    assert_eq!(table.len(), 2 + srows.len());
    assert!(
        table[2].starts_with("simple_rnn")
            && table[2].contains("uni")
            && table[2].contains("forward")
    );
    assert!(out.contains("gradflow.csv"));
    // the pictures, drawn from gradflow.csv
    for f in ["gradflow_unidirectional", "gradflow_bidirectional"] {
        for ext in ["png", "svg"] {
            let p = d.path().join(format!("gf/{f}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
}

#[test]
fn gradflow_bad_flags_are_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    fails_with(
        &seqgrad(&["gradflow", "--lengths", "5", "--out", "x"], d.path()),
        &["--lengths", "5", "at least 9"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--cells", "lstm,tcn", "--out", "x"], d.path()),
        &["tcn", "simple_rnn, lstm, gru"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--layers", "both2", "--out", "x"], d.path()),
        &["--layers", "uni, bi or both"],
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn bidirectional_layers_learn_a_start_planted_motif() {
    let cfg = GradflowConfig {
        cells: Cell::ALL.to_vec(),
        lengths: vec![20],
        bidirectional: vec![true],
        steps: 150,
        test_count: 200,
        record_count: 16,
        ..Default::default()
    };
    let results = gradflow::run(&cfg).unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(
            r.accuracy >= 0.9,
            "{} bi at length 20: accuracy {}",
            r.variant.cell.name(),
            r.accuracy
        );
        assert_eq!(r.init.len(), 2);
        assert_eq!(r.trained.len(), 2);
        // at initialisation the gradient shrinks going back through time, in both directions
        for c in &r.init {
            assert_eq!(c.norms.len(), 20);
            assert!(
                c.ratio() < 1.0,
                "{} {}: {}",
                r.variant.cell.name(),
                c.direction,
                c.ratio()
            );
        }
    }
}
