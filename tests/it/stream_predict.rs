//! Streaming `predict`/`evaluate`: memory that does not grow with the file (peak RSS of a child
//! process on 20k vs 200k records), the file's own ids, CSV/TSV output by extension, and
//! chunked results equal to the whole-batch ones.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use seqgrad::model::Sequential;

use crate::common::{fails_with, seqgrad, setup, MODEL};

/// `m.json` and random-initialised `w.safetensors` in `dir` (MODEL: 8 bp, two classes).
fn model_and_weights(dir: &Path) {
    let spec = seqgrad::spec::ModelSpec::from_json(MODEL, "m.json").unwrap();
    let m = Sequential::<f32>::from_spec(&spec, 5).unwrap();
    seqgrad::weights::save(&m, &dir.join("w.safetensors")).unwrap();
    std::fs::write(dir.join("m.json"), MODEL).unwrap();
}

/// A CSV of `n` labelled 8 bp records.
fn write_csv(path: &Path, n: usize) {
    use std::io::Write;
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(f);
    writeln!(w, "name,label,sequence").unwrap();
    let b = b"ACGT";
    for i in 0..n {
        let s: String = (0..8)
            .map(|j| b[(i.wrapping_mul(2654435761) >> (2 * j)) & 3] as char)
            .collect();
        writeln!(w, "seq{i},{},{s}", if i % 3 == 0 { "yes" } else { "no" }).unwrap();
    }
}

/// Runs `seqgrad ARGS` in `cwd`, polling `/proc/PID/status` for VmHWM (the peak resident set
/// size, which only grows, so the last value read before exit is the peak). Returns kB.
fn peak_rss_kb(args: &[&str], cwd: &Path) -> Option<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = None;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = Some(kb);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "seqgrad {args:?} failed");
            return peak;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn predict_and_evaluate_peak_rss_does_not_grow_with_the_file() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc (peak RSS is read from /proc/PID/status)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    model_and_weights(d.path());
    write_csv(&d.path().join("small.csv"), 20_000);
    write_csv(&d.path().join("big.csv"), 200_000);
    let mut report = Vec::new();
    for cmd in ["predict", "evaluate"] {
        let run = |data: &str| {
            let mut a = vec![
                cmd,
                "--model",
                "m.json",
                "--weights",
                "w.safetensors",
                "--data",
                data,
                "--threads",
                "1",
            ];
            if cmd == "predict" {
                a.extend(["--out", "p.tsv"]);
            }
            peak_rss_kb(&a, d.path())
        };
        let (Some(small), Some(big)) = (run("small.csv"), run("big.csv")) else {
            eprintln!("skipped: VmHWM not readable");
            return;
        };
        report.push(format!("{cmd}: 20k {small} kB, 200k {big} kB"));
        // the whole-file path held ~200 bytes per record (strings + one-hot): 200k records
        // would add ~40 MB; streaming keeps a chunk, plus (evaluate) 16 bytes of outputs and
        // labels per record (~3 MB)
        let margin = if cmd == "predict" { 6_000 } else { 12_000 };
        assert!(
            big <= small + margin,
            "{cmd}: peak RSS {big} kB on 200k records vs {small} kB on 20k (margin {margin} kB)"
        );
    }
    eprintln!("peak RSS: {}", report.join("; "));
    let out = std::fs::read_to_string(d.path().join("p.tsv")).unwrap();
    assert_eq!(out.lines().count(), 200_001);
    assert!(out.lines().last().unwrap().starts_with("seq199999\t"));
}

#[test]
fn streamed_predictions_equal_single_batch_ones_and_keep_ids() {
    let d = setup();
    model_and_weights(d.path());
    write_csv(&d.path().join("x.csv"), 1000);
    let w = ["--model", "m.json", "--weights", "w.safetensors"];
    let run = |extra: &[&str]| {
        let mut a = vec!["predict"];
        a.extend(w);
        a.extend(extra);
        let o = seqgrad(&a, d.path());
        assert!(o.status.success(), "{}", crate::common::stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    // chunks of 7 records vs one chunk of all 1000
    let a = run(&["--data", "x.csv", "--batch-size", "7"]);
    let b = run(&["--data", "x.csv", "--batch-size", "1000"]);
    // Same records, ids and columns in the same order; the probabilities agree to f32
    // rounding (the GEMM's blocking, and so its rounding, depends on the batch size).
    assert_eq!(a.lines().count(), b.lines().count());
    for (la, lb) in a.lines().zip(b.lines()) {
        let (fa, fb): (Vec<&str>, Vec<&str>) = (la.split('\t').collect(), lb.split('\t').collect());
        assert_eq!(fa.len(), fb.len(), "{la} vs {lb}");
        assert_eq!(fa[0], fb[0], "{la} vs {lb}");
        for (x, y) in fa[1..].iter().zip(&fb[1..]) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!((x - y).abs() <= 2e-6, "{la} vs {lb}"),
                _ => assert_eq!(x, y, "{la} vs {lb}"),
            }
        }
    }
    assert!(
        a.starts_with("id\tno\tyes\n") || a.starts_with("id\tclass0\tclass1\n"),
        "{a}"
    );
    assert!(a.lines().nth(1).unwrap().starts_with("seq0\t"));
    // --id-column picks another column; FASTA keeps header ids
    let c = run(&[
        "--data",
        "x.csv",
        "--id-column",
        "LABEL",
        "--batch-size",
        "3",
    ]);
    assert!(c.lines().nth(1).unwrap().starts_with("yes\t"), "{c}");
    let fa: String = std::fs::read_to_string(d.path().join("x.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!(">{} label={}\n{}\n{}\n", f[0], f[1], &f[2][..3], &f[2][3..])
        })
        .collect();
    std::fs::write(d.path().join("x.fa"), fa).unwrap();
    let f = run(&["--data", "x.fa", "--batch-size", "10"]);
    assert_eq!(f, a);
    // CSV by the --out extension, TSV otherwise
    run(&["--data", "x.csv", "--out", "p.csv", "--batch-size", "64"]);
    let csv = std::fs::read_to_string(d.path().join("p.csv")).unwrap();
    assert_eq!(csv, a.replace('\t', ","));
    run(&["--data", "x.csv", "--out", "p.TSV", "--batch-size", "64"]);
    assert_eq!(std::fs::read_to_string(d.path().join("p.TSV")).unwrap(), a);
    // evaluate streamed in chunks gives the same report as one chunk
    let ev = |bs: &str| {
        let mut a = vec!["evaluate"];
        a.extend(w);
        a.extend(["--data", "x.csv", "--batch-size", bs]);
        let o = seqgrad(&a, d.path());
        assert!(o.status.success(), "{}", crate::common::stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(ev("13"), ev("1000"));
}

#[test]
fn a_bad_record_in_a_later_chunk_is_a_one_line_error_and_no_output_file() {
    let d = setup();
    model_and_weights(d.path());
    let mut csv = String::from("id,sequence\n");
    for i in 0..50 {
        csv.push_str(&format!("r{i},ACGTACGT\n"));
    }
    csv.push_str("r50,ACGTACG\n");
    std::fs::write(d.path().join("bad.csv"), &csv).unwrap();
    let args = [
        "predict",
        "--model",
        "m.json",
        "--weights",
        "w.safetensors",
        "--data",
        "bad.csv",
        "--batch-size",
        "8",
        "--out",
        "p.tsv",
    ];
    let o = seqgrad(&args, d.path());
    fails_with(
        &o,
        &[
            "bad.csv",
            "line 52",
            "record r50 has length 7",
            "first record's length 8 (line 2)",
        ],
    );
    assert!(!d.path().join("p.tsv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let o = seqgrad(
        &[
            "predict",
            "--model",
            "m.json",
            "--weights",
            "w.safetensors",
            "--data",
            "bad.csv",
            "--id-column",
            "gene",
        ],
        d.path(),
    );
    fails_with(&o, &["bad.csv", "no id column \"gene\"", "id, sequence"]);
}
