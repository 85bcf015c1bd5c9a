//! Keras 3 parity: models converted from Keras' own JSON, with Keras' weights mapped to
//! PyTorch names, give Keras' outputs and input gradients (fixtures by
//! `python/keras_fixtures.py`, Keras 3 with the torch backend).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use seqgrad::weights::{self, StoredTensor};
use seqgrad::{keras, Float, Mode, Sequential};

#[allow(unused_imports)]
use crate::common::{fails_with, seqgrad};

pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras")
}

/// Every parity model: same padding at stride > 1, pools with same padding, every merge mode,
/// GRU, stacked RNNs, a functional chain, the seed model's structure and layer norm (each also
/// saved as `NAME.f32.keras` / `NAME.f64.keras`: `keras_archives.rs`).
pub(crate) const MODELS: &[&str] = &[
    "conv_same_stride",
    "pools_same",
    "pools_valid_global_avg",
    "bi_lstm_concat",
    "bi_gru_sum",
    "bi_rnn_mul",
    "bi_lstm_ave",
    "stacked_rnns",
    "functional_chain",
    "seed_small",
    "conv_layer_norm",
];

fn max_abs_diff(a: &ndarray::ArrayD<f64>, b: &ndarray::ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs one fixture; returns (max |Δoutput|, max |Δinput gradient|).
fn run<T: Float>(name: &str, tag: &str) -> (f64, f64) {
    let json = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
    let km = keras::model_from_keras_json(&json, name).unwrap();
    let all = weights::read_tensors(&dir().join(format!("{name}.{tag}.safetensors"))).unwrap();
    let vars: BTreeMap<String, StoredTensor> = all
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("keras/").map(|s| (s.to_string(), t.clone())))
        .collect();
    let mapped = keras::map_weights(&km, &vars, name).unwrap();
    let mut m = Sequential::<T>::from_spec(&km.spec, 0).unwrap();
    weights::load_from(&mut m, &mapped).unwrap();
    let x = all["input"].array.mapv(T::lit);
    let y = m.forward(x.view(), Mode::Eval).unwrap();
    let g = all["output_grad"].array.mapv(T::lit);
    let dx = m.backward(g.view()).unwrap();
    let e_out = max_abs_diff(&y.mapv(|v| v.to_f64c()), &all["output"].array);
    let e_dx = max_abs_diff(&dx.mapv(|v| v.to_f64c()), &all["input_grad"].array);
    (e_out, e_dx)
}

#[test]
fn keras_models_match_keras_in_f32_within_1e5() {
    let mut bad = Vec::new();
    for name in MODELS {
        let (o, g) = run::<f32>(name, "f32");
        eprintln!("keras parity f32 {name:24} output {o:.2e} input grad {g:.2e}");
        if !(o <= 1e-5 && g <= 1e-5) {
            bad.push(format!("{name}: output {o:e}, input grad {g:e}"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn keras_models_match_keras_in_f64_within_1e9() {
    let mut bad = Vec::new();
    for name in MODELS {
        let (o, g) = run::<f64>(name, "f64");
        eprintln!("keras parity f64 {name:24} output {o:.2e} input grad {g:.2e}");
        if !(o <= 1e-9 && g <= 1e-9) {
            bad.push(format!("{name}: output {o:e}, input grad {g:e}"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn a_wrong_gate_order_would_be_caught() {
    // The GRU fixture fails if the z and r blocks are not swapped: swap them back in the Keras
    // variables and the outputs no longer match (the parity test can fail).
    let name = "bi_gru_sum";
    let json = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
    let km = keras::model_from_keras_json(&json, name).unwrap();
    let all = weights::read_tensors(&dir().join(format!("{name}.f64.safetensors"))).unwrap();
    let mut vars: BTreeMap<String, StoredTensor> = all
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("keras/").map(|s| (s.to_string(), t.clone())))
        .collect();
    let k = vars
        .get_mut("layers/bidirectional/forward_layer/cell/vars/0")
        .unwrap();
    let u = k.array.shape()[1] / 3;
    let mut swapped = k.array.clone();
    for r in 0..k.array.shape()[0] {
        for j in 0..u {
            swapped[[r, j]] = k.array[[r, u + j]];
            swapped[[r, u + j]] = k.array[[r, j]];
        }
    }
    k.array = swapped;
    let mapped = keras::map_weights(&km, &vars, name).unwrap();
    let mut m = Sequential::<f64>::from_spec(&km.spec, 0).unwrap();
    weights::load_from(&mut m, &mapped).unwrap();
    let y = m.forward(all["input"].array.view(), Mode::Eval).unwrap();
    assert!(max_abs_diff(&y, &all["output"].array) > 1e-4);
}

#[test]
fn seed_keras_archive_reads_as_the_seed_model() {
    let spec = seqgrad::spec::ModelSpec::from_file(dir().join("seed.keras")).unwrap();
    let seed = seqgrad::spec::ModelSpec::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/seed.json"),
    )
    .unwrap();
    assert_eq!(spec, seed);
}

#[test]
fn summary_takes_keras_json_and_keras_archives() {
    let d = tempfile::tempdir().unwrap();
    for f in ["bi_lstm_concat.json", "seed.keras"] {
        let o = seqgrad(
            &["summary", "--model", dir().join(f).to_str().unwrap()],
            d.path(),
        );
        assert!(o.status.success(), "{f}: {}", crate::common::stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Total params"), "{out}");
    }
}

#[test]
fn convert_model_json_writes_model_only() {
    let d = tempfile::tempdir().unwrap();
    let o = seqgrad(
        &[
            "convert",
            "--from",
            dir().join("stacked_rnns.json").to_str().unwrap(),
            "--out",
            "conv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let spec = seqgrad::spec::ModelSpec::from_file(d.path().join("conv/model.json")).unwrap();
    assert_eq!(spec.layers.len(), 7);
    assert!(!d.path().join("conv/weights.safetensors").exists());
}

/// `convert --keras-weights` (the variables as `python/keras_to_seqgrad.py` dumps them) writes
/// weights that `seqgrad grad` runs to Keras' output and input gradient.
#[test]
fn convert_with_dumped_keras_weights_then_grad_matches_keras() {
    let d = tempfile::tempdir().unwrap();
    let name = "functional_chain";
    let all = weights::read_tensors(&dir().join(format!("{name}.f64.safetensors"))).unwrap();
    let vars: Vec<(String, ndarray::ArrayD<f64>)> = all
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix("keras/")
                .map(|s| (s.to_string(), t.array.clone()))
        })
        .collect();
    let views: Vec<(String, ndarray::ArrayViewD<'_, f64>)> =
        vars.iter().map(|(k, a)| (k.clone(), a.view())).collect();
    weights::write_tensors(&d.path().join("vars.safetensors"), &views).unwrap();
    let o = seqgrad(
        &[
            "convert",
            "--from",
            dir().join(format!("{name}.json")).to_str().unwrap(),
            "--keras-weights",
            "vars.safetensors",
            "--out",
            "conv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("F64"));
    let io = [
        ("input".to_string(), all["input"].array.view()),
        ("output_grad".to_string(), all["output_grad"].array.view()),
    ];
    weights::write_tensors(&d.path().join("in.safetensors"), &io).unwrap();
    let o = seqgrad(
        &[
            "grad",
            "--model",
            "conv/model.json",
            "--weights",
            "conv/weights.safetensors",
            "--input",
            "in.safetensors",
            "--out",
            "out.safetensors",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let out = weights::read_tensors(&d.path().join("out.safetensors")).unwrap();
    assert!(max_abs_diff(&out["output"].array, &all["output"].array) <= 1e-9);
    assert!(max_abs_diff(&out["input_grad"].array, &all["input_grad"].array) <= 1e-9);
}

/// `seqgrad convert --from seed.keras [extra] --out conv`, then `seqgrad predict` on
/// `seed_data.csv`; returns max |seqgrad − Keras| over the 12 records' probabilities
/// (`seed_expected.tsv`, Keras' predictions).
fn seed_convert_and_predict(extra: &[&str]) -> f64 {
    let d = tempfile::tempdir().unwrap();
    let from = dir().join("seed.keras");
    let mut args = vec!["convert", "--from", from.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", "conv"]);
    let o = seqgrad(&args, d.path());
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let o = seqgrad(
        &[
            "predict",
            "--model",
            "conv/model.json",
            "--weights",
            "conv/weights.safetensors",
            "--data",
            dir().join("seed_data.csv").to_str().unwrap(),
            "--out",
            "p.tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let got = std::fs::read_to_string(d.path().join("p.tsv")).unwrap();
    let want = std::fs::read_to_string(dir().join("seed_expected.tsv")).unwrap();
    let parse = |s: &str| -> Vec<(String, Vec<f64>)> {
        s.lines()
            .skip(1)
            .map(|l| {
                let mut c = l.split('\t');
                let id = c.next().unwrap().to_string();
                (id, c.map(|v| v.parse().unwrap()).collect())
            })
            .collect()
    };
    let (got, want) = (parse(&got), parse(&want));
    assert_eq!(got.len(), 12);
    assert_eq!(want.len(), 12);
    let mut worst = 0.0f64;
    for ((gi, gv), (wi, wv)) in got.iter().zip(&want) {
        assert_eq!(gi, wi);
        assert_eq!(gv.len(), 2);
        assert_eq!(wv.len(), 2);
        for (a, b) in gv.iter().zip(wv) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

/// The seed model saved by Keras 3 as `.keras` converts with its variables given as
/// `python/keras_to_seqgrad.py` dumps them (`seed.vars.safetensors`, committed by
/// `python/keras_fixtures.py`; byte-identical to the translator's output:
/// `python/tests/test_keras_vars_fixture.py`), and `seqgrad predict` gives Keras' predictions
/// within 1e-5.
#[test]
fn seed_keras_converts_with_dumped_vars_and_predicts_like_keras() {
    let vars = dir().join("seed.vars.safetensors");
    let worst = seed_convert_and_predict(&["--keras-weights", vars.to_str().unwrap()]);
    eprintln!("seed.keras + seed.vars.safetensors predict: max |seqgrad - keras| = {worst:.2e}");
    assert!(worst <= 1e-5, "{worst:e}");
}

/// The acceptance test: `convert` reads the archive's `model.weights.h5` itself (pure
/// Rust, default build), and `seqgrad predict` gives Keras' predictions within 1e-5.
#[test]
fn seed_keras_converts_and_predicts_like_keras() {
    let worst = seed_convert_and_predict(&[]);
    eprintln!("seed.keras predict: max |seqgrad - keras| = {worst:.2e}");
    assert!(worst <= 1e-5, "{worst:e}");
}

/// The seed model's output and input gradient (f32, full precision, not the 6 decimals of
/// `predict`'s TSV) with `seed.keras`'s variables from `vars` against Keras'
/// (`seed.f32.safetensors`); returns (max |Δoutput|, max |Δinput gradient|).
fn seed_parity(vars: &BTreeMap<String, StoredTensor>) -> (f64, f64) {
    let a = keras::read_archive(&dir().join("seed.keras")).unwrap();
    let mapped = keras::map_weights(&a.model, vars, "seed").unwrap();
    let mut m = Sequential::<f32>::from_spec(&a.model.spec, 0).unwrap();
    weights::load_from(&mut m, &mapped).unwrap();
    let all = weights::read_tensors(&dir().join("seed.f32.safetensors")).unwrap();
    let x = all["input"].array.mapv(|v| v as f32);
    let y = m.forward(x.view(), Mode::Eval).unwrap();
    let dx = m
        .backward(all["output_grad"].array.mapv(|v| v as f32).view())
        .unwrap();
    let eo = max_abs_diff(&y.mapv(f64::from), &all["output"].array);
    let eg = max_abs_diff(&dx.mapv(f64::from), &all["input_grad"].array);
    (eo, eg)
}

/// The seed model's output and input gradient from the dumped variables (plain `cargo test`).
#[test]
fn seed_vars_output_and_input_grad_match_keras() {
    let vars = keras::archive::read_vars(&dir().join("seed.vars.safetensors")).unwrap();
    let (eo, eg) = seed_parity(&vars);
    eprintln!("keras parity f32 seed (.keras + vars)   output {eo:.2e} input grad {eg:.2e}");
    assert!(eo <= 1e-5 && eg <= 1e-5, "{eo:e} {eg:e}");
}

/// The seed model's output and input gradient from the `.keras` weights (read with HDF5), and
/// the two readers agree bit for bit: seqgrad's HDF5 reader and the committed dump by
/// `python/keras_to_seqgrad.py` (h5py) hold the same variables, names, dtypes and values.
#[test]
fn seed_keras_output_and_input_grad_match_keras() {
    let a = keras::read_archive(&dir().join("seed.keras")).unwrap();
    let h5 = keras::archive::vars_from_h5(a.weights_h5.as_ref().unwrap(), "seed").unwrap();
    let dumped = keras::archive::read_vars(&dir().join("seed.vars.safetensors")).unwrap();
    assert_eq!(
        h5.keys().collect::<Vec<_>>(),
        dumped.keys().collect::<Vec<_>>()
    );
    for (k, t) in &h5 {
        assert_eq!(t.dtype, dumped[k].dtype, "{k}");
        assert_eq!(t.array, dumped[k].array, "{k}");
    }
    let (eo, eg) = seed_parity(&h5);
    eprintln!("keras parity f32 seed (.keras)          output {eo:.2e} input grad {eg:.2e}");
    assert!(eo <= 1e-5 && eg <= 1e-5, "{eo:e} {eg:e}");
}

/// Keras' backends disagree on `AveragePooling1D(padding="same")` with asymmetric padding:
/// TensorFlow/JAX average the real positions, the torch backend counts replicated edge values
/// (docs/keras.md). seqgrad follows TensorFlow/JAX: pool 3, stride 2 over 6 steps pads one step
/// on the right, and the last window is (x₄ + x₅)/2, not the torch backend's (x₄ + 2·x₅)/3.
#[test]
fn avgpool_same_averages_real_positions_as_keras_tf_and_jax() {
    use seqgrad::spec::{LayerSpec, Padding, PoolSpec};
    let mut m = Sequential::<f64>::builder(&[6, 1])
        .add(LayerSpec::Avgpool1d(PoolSpec {
            pool_size: 3,
            strides: Some(2),
            padding: Padding::Same,
        }))
        .build(0)
        .unwrap();
    let x = ndarray::Array3::from_shape_vec((1, 6, 1), vec![0., 1., 2., 3., 4., 5.]).unwrap();
    let y = m.forward(x.into_dyn().view(), Mode::Eval).unwrap();
    assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![1.0, 3.0, 4.5]);
}
