//! Hostile command-line input (huge --pad, huge synth sizes, a MEME file with a huge width)
//! and a closed standard output: one-line errors with exit status 2 (or a quiet exit 0 for a
//! closed pipe), never a panic or an allocation abort.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{fails_with, seqgrad, setup, stderr};

fn train(d: &Path, extra: &[&str]) -> Output {
    crate::common::train_tiny(d, &[&["--epochs", "1"], extra].concat())
}

#[test]
fn huge_pad_is_a_usage_error_in_train_evaluate_and_predict() {
    let d = setup();
    for pad in ["18446744073709551615", "100000000000", "9"] {
        let o = train(d.path(), &["--pad", pad]);
        fails_with(&o, &["the model input is (8, 4)", &format!("length {pad}")]);
    }
    assert!(train(d.path(), &[]).status.success());
    for cmd in ["evaluate", "predict"] {
        for pad in ["18446744073709551615", "100000000000"] {
            let o = seqgrad(
                &[cmd, "--run", "run", "--data", "d.csv", "--pad", pad],
                d.path(),
            );
            fails_with(&o, &["the model input is (8, 4)", pad]);
        }
    }
}

#[test]
fn encoding_a_too_large_data_set_is_refused_before_allocating() {
    // The library path (no model to compare against): the size cap.
    use seqgrad::data::{encode, read, Labels, LengthPolicy, ReadOptions};
    let d = setup();
    let raw = read(&d.path().join("d.csv"), &ReadOptions::default()).unwrap();
    let labels = Labels::from_data(&raw).unwrap();
    let policy = LengthPolicy {
        crop: None,
        pad: Some(100_000_000_000),
        any_length: false,
    };
    let e = encode::<f32>(&raw, &labels, policy, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than the 1073741824"), "{e}");
}

#[test]
fn huge_synth_sizes_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let o = seqgrad(
        &["synth", "--count", "18446744073709551615", "--out", "s.csv"],
        d.path(),
    );
    fails_with(&o, &["--count 18446744073709551615", "1073741824 bases"]);
    let o = seqgrad(
        &[
            "synth",
            "--count",
            "1000",
            "--length",
            "100000000000",
            "--out",
            "s.csv",
        ],
        d.path(),
    );
    fails_with(&o, &["--length 100000000000", "1073741824 bases"]);
    assert!(!d.path().join("s.csv").exists());
}

#[test]
fn meme_with_a_huge_width_is_an_error_naming_the_missing_rows() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("m.meme"),
        "MEME version 4\n\nMOTIF M1 x\nletter-probability matrix: alength= 4 w= 1000000000000000000\n1 0 0 0\n0 1 0 0\n",
    )
    .unwrap();
    let o = seqgrad(
        &[
            "synth",
            "--meme",
            "m.meme",
            "--motifs",
            "0",
            "--classes",
            "1",
            "--out",
            "s.csv",
        ],
        d.path(),
    );
    fails_with(
        &o,
        &[
            "m.meme",
            "line 7",
            "motif M1 x ends after 2 of 1000000000000000000 rows",
        ],
    );
}

/// Runs `args` with standard output a pipe that is read for one line and then closed.
fn with_closed_stdout(args: &[&str], cwd: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(out).read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    // the reader (and the pipe's read end) is dropped here
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_predict_and_train_quietly() {
    let d = setup();
    assert!(train(d.path(), &[]).status.success());
    // > 64 KiB of output, more than a pipe buffer holds
    let mut fa = String::new();
    for i in 0..6000 {
        fa.push_str(&format!(">query_number_{i}\nACGTACGT\n"));
    }
    std::fs::write(d.path().join("q.fa"), fa).unwrap();
    let o = with_closed_stdout(&["predict", "--run", "run", "--data", "q.fa"], d.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    // train keeps training after its first line is read and the pipe closed, and finishes the run
    let mut csv = String::from("label,sequence\n");
    for i in 0..6000 {
        csv.push_str(if i % 2 == 0 {
            "yes,ACGTACGT\n"
        } else {
            "no,TTTTGGGG\n"
        });
    }
    std::fs::write(d.path().join("big.csv"), csv).unwrap();
    let o = with_closed_stdout(
        &[
            "train",
            "--model",
            "m.json",
            "--data",
            "big.csv",
            "--out",
            "run2",
            "--progress",
            "quiet",
            "--epochs",
            "1",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(d.path().join("run2/history.csv").exists());
}
