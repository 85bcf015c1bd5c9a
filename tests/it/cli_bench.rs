//! `seqgrad bench`: one JSON line with the documented fields, for every mode; bad flags are
//! one-line usage errors.

use crate::common::{fails_with, seqgrad, setup};

fn json_line(args: &[&str]) -> serde_json::Value {
    let dir = setup();
    let out = seqgrad(args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {text:?}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn bench_prints_one_json_line_per_mode() {
    for mode in ["train", "infer"] {
        let v = json_line(&[
            "bench",
            "--workload",
            "w2",
            "--mode",
            mode,
            "--batch-size",
            "3",
            "--threads",
            "1",
            "--seconds",
            "0",
        ]);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for k in [
            "workload",
            "mode",
            "batch_size",
            "threads",
            "steps",
            "samples_per_sec",
            "ms_per_step",
            "peak_rss_mb",
            "flops_per_sample",
            "gflops",
        ] {
            assert!(keys.contains(&k), "missing {k} in {v}");
        }
        assert_eq!(keys.len(), 10, "{v}");
        // W2 forward: conv 0.24 M + BiLSTM 2.23 M + dense 0.28 M per sample
        let fps = v["flops_per_sample"].as_f64().unwrap();
        assert!((fps / 1e6 - 2.75).abs() < 0.01, "{v}");
        assert!(v["gflops"].as_f64().unwrap() > 0.0, "{v}");
        assert_eq!(v["workload"], "w2");
        assert_eq!(v["mode"], mode);
        assert_eq!(v["batch_size"], 3);
        assert_eq!(v["threads"], 1);
        assert!(v["steps"].as_u64().unwrap() >= 1);
        let sps = v["samples_per_sec"].as_f64().unwrap();
        let ms = v["ms_per_step"].as_f64().unwrap();
        assert!(sps > 0.0 && ms > 0.0, "{v}");
        // samples/s and ms/step describe the same measurement (up to the printed rounding).
        assert!((sps * ms / 1000.0 / 3.0 - 1.0).abs() < 0.05, "{v}");
        if cfg!(target_os = "linux") {
            assert!(v["peak_rss_mb"].as_f64().unwrap() > 1.0, "{v}");
        }
    }
}

#[test]
fn bench_takes_a_model_file_and_refuses_bad_flags() {
    let dir = setup();
    let model = dir.path().join("m.json");
    std::fs::write(
        &model,
        r#"{"input_shape": [12, 4], "layers": [
          {"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
          {"type": "flatten"},
          {"type": "dense", "units": 2, "activation": "sigmoid"}]}"#,
    )
    .unwrap();
    let v = json_line(&[
        "bench",
        "--workload",
        model.to_str().unwrap(),
        "--batch-size",
        "2",
        "--seconds",
        "0",
    ]);
    assert_eq!(v["mode"], "train");
    assert_eq!(v["batch_size"], 2);
    let o = seqgrad(&["bench", "--workload", "w9", "--seconds", "0"], dir.path());
    fails_with(&o, &["w9", "w1, w2, w3"]);
    let o = seqgrad(
        &[
            "bench",
            "--workload",
            "w1",
            "--batch-size",
            "0",
            "--seconds",
            "0",
        ],
        dir.path(),
    );
    fails_with(&o, &["--batch-size"]);
    let o = seqgrad(&["bench", "--workload", "w1", "--seconds=-1"], dir.path());
    fails_with(&o, &["--seconds"]);
}
