//! Command-line data handling: reader errors (exit 2, one line, naming file/line/column or the
//! record), synth determinism, train → evaluate → predict round trip.

use std::path::Path;

use crate::common::{fails_with, seqgrad, setup, stderr};

fn train_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--model",
        "m.json",
        "--data",
        data,
        "--out",
        out,
        "--progress",
        "quiet",
    ]
}

#[test]
fn bad_character_names_file_line_and_column() {
    let d = setup();
    std::fs::write(
        d.path().join("bad.csv"),
        "label,sequence\nyes,ACGTACGT\nno,  ACGTAXGT\n",
    )
    .unwrap();
    let o = seqgrad(&train_args("bad.csv", "run"), d.path());
    fails_with(&o, &["bad.csv", "line 3", "column 11", "'X'"]);
    assert!(
        !d.path().join("run").exists(),
        "nothing written on a data error"
    );
    std::fs::write(d.path().join("bad.fa"), ">a label=yes\nACGT\nAC GT\n").unwrap();
    fails_with(
        &seqgrad(&train_args("bad.fa", "run"), d.path()),
        &["bad.fa", "line 3", "column 3", "' '"],
    );
}

#[test]
fn mixed_lengths_name_the_record() {
    let d = setup();
    std::fs::write(
        d.path().join("mixed.csv"),
        "id,label,sequence\na,yes,ACGTACGT\nb,no,ACGTACGTA\n",
    )
    .unwrap();
    fails_with(
        &seqgrad(&train_args("mixed.csv", "run"), d.path()),
        &["mixed.csv", "line 3", "record b", "length 9", "--crop"],
    );
    std::fs::write(
        d.path().join("mixed.fa"),
        ">a label=yes\nACGTACGT\n>b label=no\nACG\nT\n",
    )
    .unwrap();
    fails_with(
        &seqgrad(&train_args("mixed.fa", "run"), d.path()),
        &["mixed.fa", "line 3", "record b", "length 4"],
    );
}

#[test]
fn empty_file_and_missing_columns() {
    let d = setup();
    std::fs::write(d.path().join("empty.csv"), "").unwrap();
    fails_with(
        &seqgrad(&train_args("empty.csv", "run"), d.path()),
        &["empty.csv", "empty"],
    );
    std::fs::write(d.path().join("header.csv"), "label,sequence\n").unwrap();
    fails_with(
        &seqgrad(&train_args("header.csv", "run"), d.path()),
        &["header.csv", "no records"],
    );
    std::fs::write(d.path().join("nolabel.csv"), "name,sequence\na,ACGTACGT\n").unwrap();
    fails_with(
        &seqgrad(&train_args("nolabel.csv", "run"), d.path()),
        &["nolabel.csv", "no label column", "name, sequence"],
    );
    std::fs::write(d.path().join("noseq.csv"), "label,dna\nyes,ACGTACGT\n").unwrap();
    fails_with(
        &seqgrad(&train_args("noseq.csv", "run"), d.path()),
        &["noseq.csv", "no sequence column"],
    );
    // a named column that is absent
    let mut a = train_args("d.csv", "run");
    a.extend(["--label-column", "target"]);
    fails_with(&seqgrad(&a, d.path()), &["no label column \"target\""]);
    // the same file with the right names given
    std::fs::write(
        d.path().join("renamed.csv"),
        "target,dna\nyes,ACGTACGT\nno,TTTTGGGG\n",
    )
    .unwrap();
    let mut a = train_args("renamed.csv", "run2");
    a.extend([
        "--label-column",
        "target",
        "--sequence-column",
        "DNA",
        "--val-split",
        "0",
        "--test-split",
        "0",
    ]);
    let o = seqgrad(&a, d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.path().join("run").exists());
}

#[test]
fn bad_flags_exit_2() {
    let d = setup();
    let mut a = train_args("d.csv", "run");
    a.extend(["--optimizer", "lbfgs"]);
    fails_with(&seqgrad(&a, d.path()), &["unknown optimizer", "lbfgs"]);
    let mut a = train_args("d.csv", "run");
    a.extend(["--lr", "-1"]);
    fails_with(&seqgrad(&a, d.path()), &["--lr"]);
    assert!(!d.path().join("run").exists());
    let o = seqgrad(&["train", "--model", "m.json"], d.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn train_evaluate_predict_round_trip_and_unknown_label() {
    let d = setup();
    let mut a = train_args("d.csv", "run");
    a.extend(["--epochs", "20", "--optimizer", "adam", "--lr", "0.05"]);
    let o = seqgrad(&a, d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("test: 4 records") && out.contains("confusion matrix"),
        "{out}"
    );
    for f in [
        "weights.safetensors",
        "model.json",
        "labels.json",
        "history.csv",
        "history.json",
        "test_metrics.json",
    ] {
        assert!(d.path().join("run").join(f).exists(), "{f}");
    }
    let labels = std::fs::read_to_string(d.path().join("run/labels.json")).unwrap();
    assert!(
        labels.contains("\"no\",\n    \"yes\""),
        "sorted classes: {labels}"
    );
    let o = seqgrad(&["evaluate", "--run", "run", "--data", "d.csv"], d.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("accuracy 1.0000"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // unknown label at evaluate time
    std::fs::write(
        d.path().join("other.csv"),
        "label,sequence\nyes,ACGTACGT\nmaybe,ACGTACGT\n",
    )
    .unwrap();
    let o = seqgrad(
        &[
            "evaluate",
            "--model",
            "run/model.json",
            "--weights",
            "run/weights.safetensors",
            "--data",
            "other.csv",
        ],
        d.path(),
    );
    fails_with(
        &o,
        &["other.csv", "line 3", "unknown label \"maybe\"", "no, yes"],
    );
    // predict (no labels needed), with the reverse-complement average
    std::fs::write(d.path().join("p.fa"), ">q1\nACGTACGT\n>q2\nTTTTGGGG\n").unwrap();
    let o = seqgrad(
        &[
            "predict",
            "--run",
            "run",
            "--data",
            "p.fa",
            "--rc-average",
            "--out",
            "preds.tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let tsv = std::fs::read_to_string(d.path().join("preds.tsv")).unwrap();
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines[0], "id\tno\tyes");
    assert!(
        lines[1].starts_with("q1\t") && lines[2].starts_with("q2\t"),
        "{tsv}"
    );
    let p: Vec<f64> = lines[1]
        .split('\t')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((p[0] + p[1] - 1.0).abs() < 1e-4);
}

#[test]
fn synth_is_deterministic_and_readable() {
    let d = setup();
    for (out, extra) in [
        ("a.csv", vec!["--classes", "3"]),
        ("b.csv", vec!["--classes", "3"]),
        ("c.fa", vec!["--labels", "4"]),
    ] {
        let mut a = vec![
            "synth", "--count", "30", "--length", "50", "--seed", "7", "--out", out,
        ];
        a.extend(extra);
        let o = seqgrad(&a, d.path());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = std::fs::read(d.path().join("a.csv")).unwrap();
    assert_eq!(a, std::fs::read(d.path().join("b.csv")).unwrap());
    let text = String::from_utf8(a).unwrap();
    assert!(
        text.starts_with("id,label,sequence\nseq1,JASPAR2016_"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 31);
    let fa = std::fs::read_to_string(d.path().join("c.fa")).unwrap();
    assert!(fa.starts_with(">seq1 labels="), "{fa}");
    let o = seqgrad(
        &[
            "synth", "--count", "30", "--length", "50", "--seed", "8", "--out", "e.csv",
        ],
        d.path(),
    );
    assert!(o.status.success());
    assert_ne!(
        std::fs::read(d.path().join("e.csv")).unwrap(),
        text.as_bytes()
    );
    fails_with(
        &seqgrad(
            &[
                "synth",
                "--motifs",
                "NOPE",
                "--classes",
                "1",
                "--out",
                "x.csv",
            ],
            d.path(),
        ),
        &["no motif named \"NOPE\""],
    );
    assert!(!d.path().join("x.csv").exists());
}

/// Reverse complement of a DNA string (A/C/G/T and the IUPAC codes used here).
fn revcomp(s: &str) -> String {
    s.chars()
        .rev()
        .map(|c| match c {
            'A' => 'T',
            'C' => 'G',
            'G' => 'C',
            'T' => 'A',
            'R' => 'Y',
            'Y' => 'R',
            'N' => 'N',
            _ => panic!("{c}"),
        })
        .collect()
}

fn predictions(d: &Path, file: &str, rc_average: bool) -> Vec<(String, Vec<f64>)> {
    let mut a = vec!["predict", "--run", "run", "--data", file];
    if rc_average {
        a.push("--rc-average");
    }
    let o = seqgrad(&a, d);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split('\t');
            let id = f.next().unwrap().to_string();
            (id, f.map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn rc_average_is_the_mean_of_forward_and_reverse_complement_predictions() {
    let d = setup();
    let mut a = train_args("d.csv", "run");
    a.extend(["--epochs", "5", "--lr", "0.05"]);
    assert!(seqgrad(&a, d.path()).status.success());
    let seqs = ["AAGTCCGT", "TTTTGGGG", "ACGTNNRG", "GGGGCCCA"];
    let fwd: String = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| format!(">q{i}\n{s}\n"))
        .collect();
    let rev: String = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| format!(">q{i}\n{}\n", revcomp(s)))
        .collect();
    std::fs::write(d.path().join("f.fa"), fwd).unwrap();
    std::fs::write(d.path().join("r.fa"), rev).unwrap();
    let f = predictions(d.path(), "f.fa", false);
    let r = predictions(d.path(), "r.fa", false);
    let avg = predictions(d.path(), "f.fa", true);
    // the reverse-complemented file on its own gives the same average
    assert_eq!(avg, predictions(d.path(), "r.fa", true));
    let mut differs = false;
    for ((fi, ri), ai) in f.iter().zip(&r).zip(&avg) {
        assert_eq!(fi.0, ai.0);
        for k in 0..2 {
            // printed with 6 decimals: the mean of rounded values is within 1e-6
            assert!(
                (ai.1[k] - (fi.1[k] + ri.1[k]) / 2.0).abs() <= 1.1e-6,
                "{fi:?} {ri:?} {ai:?}"
            );
            differs |= (fi.1[k] - ri.1[k]).abs() > 1e-3;
        }
    }
    assert!(
        differs,
        "the model must not be strand-symmetric here: {f:?} {r:?}"
    );
}
