//! Replays every committed fuzz input (`fuzz/seeds/<target>/*`: the hand-made seed corpora and
//! every input a fuzz run found, kept as regressions) through the same code paths as the fuzz
//! targets in `fuzz/fuzz_targets/`, so `cargo test` holds what fuzzing established without
//! libFuzzer: no panic, and for models the plan equals the build.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension, IxDyn};
use seqgrad::data::{self, meme, reader::ReadOptions, Labels, LengthPolicy};
use seqgrad::memory::{self, Workload};
use seqgrad::spec::ModelSpec;
use seqgrad::{Mode, Sequential};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

/// `fuzz_targets/common.rs`: the first byte picks the options, the rest is the file.
fn read_and_encode(ext: &str, data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mut f = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .unwrap();
    f.write_all(body).unwrap();
    f.flush().unwrap();
    let opts = ReadOptions {
        label_column: (sel & 2 != 0).then(|| "class".to_string()),
        sequence_column: (sel & 4 != 0).then(|| "seq".to_string()),
        multi_label: sel & 8 != 0,
        require_labels: sel & 16 != 0,
        format: None,
    };
    let Ok(raw) = data::reader::read(f.path(), &opts) else {
        return;
    };
    let Ok(labels) = Labels::from_data(&raw) else {
        return;
    };
    let policy = LengthPolicy {
        pad: (sel & 32 != 0).then_some(16),
        crop: (sel & 64 != 0).then_some(16),
        any_length: false,
    };
    let _ = data::encode::<f32>(&raw, &labels, policy, sel & 128 != 0);
}

#[test]
fn table_inputs_never_panic() {
    for (_, data) in inputs("table") {
        let ext = if data.first().is_some_and(|b| b & 1 == 1) {
            "tsv"
        } else {
            "csv"
        };
        read_and_encode(ext, &data);
    }
}

#[test]
fn fasta_inputs_never_panic() {
    for (_, data) in inputs("fasta") {
        read_and_encode("fa", &data);
    }
}

#[test]
fn meme_inputs_never_panic() {
    for (_, data) in inputs("meme") {
        if let Ok(motifs) = meme::parse(&String::from_utf8_lossy(&data), "seed.meme") {
            for m in motifs {
                let _ = m.information();
            }
        }
    }
}

#[test]
fn safetensors_inputs_never_panic() {
    let spec = ModelSpec::from_json(
        r#"{"input_shape": [8, 4], "layers": [{"type": "conv1d", "filters": 2, "kernel_size": 3},
            {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "fuzz",
    )
    .unwrap();
    let mut loaded = 0;
    for (_, data) in inputs("safetensors") {
        if let Ok(t) = seqgrad::weights::parse_tensors(&data) {
            let mut m32 = Sequential::<f32>::from_spec(&spec, 0).unwrap();
            loaded += usize::from(seqgrad::weights::load_from(&mut m32, &t).is_ok());
            let mut m64 = Sequential::<f64>::from_spec(&spec, 0).unwrap();
            loaded += usize::from(seqgrad::weights::load_from(&mut m64, &t).is_ok());
        }
    }
    // The seeds include one complete f32 and one complete f64 state dict.
    assert!(loaded >= 2, "{loaded}");
}

#[test]
fn model_inputs_plan_as_they_build_and_run_with_the_planned_shapes() {
    for (path, data) in inputs("model_spec") {
        let what = path.display().to_string();
        let Ok(spec) = ModelSpec::from_json(&String::from_utf8_lossy(&data), &what) else {
            continue;
        };
        let plan = match memory::plan(&spec) {
            Ok(p) => p,
            Err(e) => {
                // Only build small prefixes (the layers before the failing one are allocated).
                let mut prefix = spec.clone();
                if let Some(i) = e
                    .to_string()
                    .strip_prefix("layer #")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    prefix.layers.truncate(i);
                    let fine = memory::plan(&prefix).unwrap();
                    if memory::estimate(&fine, 1, Workload::Gradient, 4).total() > 64 << 20 {
                        continue;
                    }
                }
                let built = Sequential::<f32>::from_spec(&spec, 0)
                    .err()
                    .map(|e| e.to_string());
                assert_eq!(built, Some(e.to_string()), "{what}");
                continue;
            }
        };
        if memory::estimate(&plan, 2, Workload::Gradient, 4).total() > 64 << 20 {
            continue;
        }
        let mut model = Sequential::<f32>::from_spec(&spec, 0).unwrap();
        assert_eq!(model.param_count(), plan.param_count(), "{what}");
        let shape: Vec<usize> = std::iter::once(2)
            .chain(plan.input_shape.iter().copied())
            .collect();
        let x = ArrayD::<f32>::from_shape_fn(IxDyn(&shape), |i| {
            (i.slice().iter().sum::<usize>() % 3) as f32 - 1.0
        });
        let y = model.forward(x.view(), Mode::Train).unwrap();
        let want: Vec<usize> = std::iter::once(2)
            .chain(plan.output_shape().iter().copied())
            .collect();
        assert_eq!(y.shape(), want.as_slice(), "{what}");
        let dx = model
            .backward(ArrayD::<f32>::ones(y.raw_dim()).view())
            .unwrap();
        assert_eq!(dx.shape(), x.shape(), "{what}");
    }
}
