//! `seqgrad filters`: a trained model's first-layer filters as MEME motifs (readable by the
//! MEME reader) that recover planted JASPAR motifs as best matches.

use std::path::Path;

use seqgrad::data::meme;

use crate::common::{fails_with, seqgrad};

const JASPAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/jaspar2016_vertebrates.meme"
);

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn trained_filters_recover_planted_jaspar_motifs() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("m.json"),
        r#"{"input_shape": [60, 4], "layers": [
          {"type": "conv1d", "filters": 16, "kernel_size": 15, "activation": "relu"},
          {"type": "global_maxpool1d"},
          {"type": "dense", "units": 5, "activation": "softmax"}]}"#,
    )
    .unwrap();
    let o = seqgrad(
        &[
            "synth",
            "--classes",
            "5",
            "--count",
            "1000",
            "--length",
            "60",
            "--seed",
            "3",
            "--meme",
            JASPAR,
            "--out",
            "d.csv",
        ],
        p,
    );
    ok(&o);
    let note = String::from_utf8_lossy(&o.stderr).into_owned();
    let planted: Vec<String> = note
        .rsplit_once("classes: ")
        .unwrap()
        .1
        .trim()
        .trim_end_matches(')')
        .split(", ")
        .map(String::from)
        .collect();
    assert_eq!(planted.len(), 5, "{note}");
    ok(&seqgrad(
        &[
            "train",
            "--model",
            "m.json",
            "--data",
            "d.csv",
            "--out",
            "run",
            "--epochs",
            "10",
            "--lr",
            "0.01",
            "--seed",
            "3",
            "--progress",
            "quiet",
        ],
        p,
    ));
    let out = ok(&seqgrad(
        &[
            "filters", "--run", "run", "--data", "d.csv", "--out", "f.meme", "--match", JASPAR,
        ],
        p,
    ));
    // MEME file: one motif per filter, kernel-size wide, readable by the MEME reader
    let ms = meme::read(&p.join("f.meme")).unwrap();
    assert_eq!(ms.len(), 16);
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m.name, format!("filter{i}"));
        assert_eq!(m.width(), 15);
    }
    // table: header + 16 rows; column 6 is the best match's id
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("filter") && lines[0].contains("best_match"));
    let best: Vec<&str> = lines[1..17]
        .iter()
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    let recovered: Vec<&String> = planted
        .iter()
        .filter(|m| best.contains(&m.as_str()))
        .collect();
    assert!(
        recovered.len() >= 3,
        "only {recovered:?} of {planted:?} recovered; best matches {best:?}\n{out}"
    );
    assert!(out.contains("distinct motifs of 519"), "{out}");
}

#[test]
fn filters_needs_a_conv_first_layer_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let spec = r#"{"input_shape": [8, 4], "layers": [
      {"type": "lstm", "units": 3}, {"type": "dense", "units": 2, "activation": "softmax"}]}"#;
    std::fs::write(p.join("m.json"), spec).unwrap();
    let m = seqgrad::Sequential::<f32>::from_file(p.join("m.json"), 1).unwrap();
    seqgrad::weights::save(&m, &p.join("w.safetensors")).unwrap();
    std::fs::write(p.join("d.csv"), "id,sequence\nr1,ACGTACGT\n").unwrap();
    fails_with(
        &seqgrad(
            &[
                "filters",
                "--model",
                "m.json",
                "--weights",
                "w.safetensors",
                "--data",
                "d.csv",
                "--out",
                "f.meme",
            ],
            p,
        ),
        &["layer 0 is lstm", "conv1d"],
    );
    assert!(!Path::new(&p.join("f.meme")).exists());
}
