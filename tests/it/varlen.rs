//! Variable-length sequences (issue 11, item 3): `input_shape: [null, C]`, per-record lengths,
//! and the invariant that a record's outputs and gradients in a padded mixed-length batch equal
//! those of the record run alone at its own length.

use seqgrad::error::Error;
use seqgrad::spec::ModelSpec;
use seqgrad::{Mode, Sequential};

fn model(json: &str) -> seqgrad::Result<Sequential<f64>> {
    Sequential::from_spec(&ModelSpec::from_json(json, "test")?, 7)
}

#[test]
fn null_length_parses_round_trips_and_summarises_with_a_question_mark() {
    let json = r#"{"input_shape": [null, 4], "layers": [
        {"type": "conv1d", "filters": 3, "kernel_size": 3},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "bidirectional", "layer": {"type": "lstm", "units": 2}},
        {"type": "dense", "units": 2, "activation": "softmax"}]}"#;
    let spec = ModelSpec::from_json(json, "t").unwrap();
    assert_eq!(spec.input_shape, vec![None, Some(4)]);
    assert!(spec.is_variable_length());
    let again = ModelSpec::from_json(&spec.to_json(), "t").unwrap();
    assert_eq!(again, spec);
    assert!(spec.to_json().contains("null"));
    let m: Sequential<f64> = Sequential::from_spec(&spec, 1).unwrap();
    assert_eq!(m.input_len(), None);
    assert!(m.is_variable_length());
    assert_eq!(m.input_shape(), &[0, 4]);
    assert_eq!(m.layer_dims()[0], vec![None, Some(3)]);
    assert_eq!(m.output_shape(), &[2]);
    let table = m.summary();
    assert!(table.contains("(?, 4)"), "{table}");
    assert!(table.contains("(?, 3)"), "{table}");
    // the memory planner (seqgrad summary) agrees
    let plan = seqgrad::memory::plan(&spec).unwrap();
    assert_eq!(seqgrad::memory::summary_table(&plan), table);
}

#[test]
fn builder_any_length_equals_the_model_file() {
    use seqgrad::spec::{EmptySpec, LayerSpec};
    let b = Sequential::<f32>::builder_any_length(4)
        .add(LayerSpec::GlobalMaxpool1d(EmptySpec::default()));
    assert_eq!(b.spec().input_shape, vec![None, Some(4)]);
    let m: Sequential<f32> = b.build(0).unwrap();
    assert_eq!(m.output_shape(), &[4]);
    let fixed: Sequential<f32> = Sequential::<f32>::builder(&[10, 4]).build(0).unwrap();
    assert_eq!(fixed.input_len(), Some(10));
    assert_eq!(fixed.input_shape(), &[10, 4]);
}

#[test]
fn flatten_after_a_null_length_is_refused_at_build_time_with_the_fix() {
    let e = model(
        r#"{"input_shape": [null, 4], "layers": [
        {"type": "conv1d", "filters": 3, "kernel_size": 3}, {"type": "flatten"},
        {"type": "dense", "units": 2}]}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("layer #1 (flatten)"), "{e}");
    assert!(e.contains("fixed length"), "{e}");
    assert!(e.contains("global_maxpool1d"), "{e}");
    assert!(e.contains("return_sequences false"), "{e}");
    // the planner gives the same error
    let spec = ModelSpec::from_json(
        r#"{"input_shape": [null, 4], "layers": [{"type": "flatten"}]}"#,
        "t",
    )
    .unwrap();
    let pe = seqgrad::memory::plan(&spec).err().unwrap().to_string();
    assert!(pe.contains("flatten needs a fixed length"), "{pe}");
}

#[test]
fn bad_input_shapes_are_refused() {
    for bad in [
        r#"{"input_shape": [null], "layers": []}"#,
        r#"{"input_shape": [4, null], "layers": []}"#,
        r#"{"input_shape": [null, null], "layers": []}"#,
        r#"{"input_shape": [0, 4], "layers": []}"#,
    ] {
        let e = model(bad).err().unwrap().to_string();
        assert!(e.contains("input_shape"), "{bad}: {e}");
    }
}

#[test]
fn wrong_lengths_are_typed_errors() {
    let mut m =
        model(r#"{"input_shape": [null, 2], "layers": [{"type": "global_avgpool1d"}]}"#).unwrap();
    let x = ndarray::Array3::<f64>::ones((2, 5, 2)).into_dyn();
    for (lens, what) in [
        (vec![5], "1 lengths for a batch of 2"),
        (vec![5, 0], "record 1 has length 0"),
        (vec![6, 5], "record 0 has length 6"),
    ] {
        let e = m
            .forward_logits_masked(x.view(), Some(&lens), Mode::Eval)
            .unwrap_err();
        assert!(matches!(e, Error::Lengths(_)), "{e}");
        assert!(e.to_string().contains(what), "{e}");
    }
    // a null-length model takes any padded length
    for l in [1, 3, 17] {
        let x = ndarray::Array3::<f64>::ones((2, l, 2)).into_dyn();
        assert_eq!(m.forward(x.view(), Mode::Infer).unwrap().shape(), &[2, 2]);
    }
    // a fixed-length model still checks its length
    let mut f =
        model(r#"{"input_shape": [5, 2], "layers": [{"type": "global_avgpool1d"}]}"#).unwrap();
    let x = ndarray::Array3::<f64>::ones((2, 4, 2)).into_dyn();
    assert!(matches!(
        f.forward_logits_masked(x.view(), Some(&[4, 4]), Mode::Eval),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn a_record_too_short_for_a_valid_conv_names_the_record_and_the_minimal_length() {
    let mut m = model(
        r#"{"input_shape": [null, 2], "layers": [
        {"type": "conv1d", "filters": 2, "kernel_size": 3},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "global_maxpool1d"}]}"#,
    )
    .unwrap();
    let x = ndarray::Array3::<f64>::ones((3, 8, 2)).into_dyn();
    let e = m
        .forward_logits_masked(x.view(), Some(&[8, 3, 6]), Mode::Eval)
        .unwrap_err()
        .to_string();
    assert!(e.contains("record 1 (length 3)"), "{e}");
    assert!(e.contains("layer #1 (maxpool1d)"), "{e}");
    assert!(e.contains("at least 4 positions"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The invariant: a padded mixed-length batch equals each record run alone at its own length.

use ndarray::{s, ArrayD, Axis};
use seqgrad::gradcheck::{check_model, random_array};
use seqgrad::Layer;

/// Worst |a − b| / max(1, |a|, |b|).
fn diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1.0))
        .fold(0.0, f64::max)
}

/// Runs `json` (a `[null, C]` model) on a padded batch with `lens` and on every record alone;
/// returns the worst difference over outputs (Eval and Infer), input gradients and parameter
/// gradients, after asserting the padded positions are exactly zero.
fn invariant(json: &str, channels: usize, lens: &[usize], seed: u64) -> f64 {
    let mut m = model(json).unwrap();
    let (b, l) = (lens.len(), *lens.iter().max().unwrap());
    // garbage (non-zero) in the padded positions: they must be ignored
    let x = random_array(&[b, l, channels], -1.0, 1.0, seed);
    m.zero_grad();
    let y = m
        .forward_logits_masked(x.view(), Some(lens), Mode::Eval)
        .unwrap();
    let dy = random_array(y.shape(), -1.0, 1.0, seed + 1);
    let dx = m.backward_logits(dy.view()).unwrap();
    let grads: Vec<ArrayD<f64>> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.grad.clone())
        .collect();
    let y_inf = m
        .forward_logits_masked(x.view(), Some(lens), Mode::Infer)
        .unwrap();
    let mut worst = diff(&y, &y_inf);

    let mut alone_grads: Vec<ArrayD<f64>> =
        grads.iter().map(|g| ArrayD::zeros(g.raw_dim())).collect();
    for (r, &n) in lens.iter().enumerate() {
        m.zero_grad();
        let xr = x.slice(s![r..r + 1, ..n, ..]).to_owned().into_dyn();
        let yr = m.forward_logits(xr.view(), Mode::Eval).unwrap();
        let yb = y.index_axis(Axis(0), r).to_owned();
        let dyb = dy.index_axis(Axis(0), r).to_owned();
        let (yb_real, dyr) = if yr.ndim() == 3 {
            let o = yr.shape()[1];
            // outputs past the record's output length are zero
            assert!(
                yb.slice(s![o.., ..]).iter().all(|&v| v == 0.0),
                "record {r}: padded outputs not zero"
            );
            (
                yb.slice(s![..o, ..])
                    .to_owned()
                    .insert_axis(Axis(0))
                    .into_dyn(),
                dyb.slice(s![..o, ..])
                    .to_owned()
                    .insert_axis(Axis(0))
                    .into_dyn(),
            )
        } else {
            (yb.insert_axis(Axis(0)), dyb.insert_axis(Axis(0)))
        };
        worst = worst.max(diff(&yr, &yb_real));
        let dxr = m.backward_logits(dyr.view()).unwrap();
        let dxb = dx.index_axis(Axis(0), r);
        assert!(
            dxb.slice(s![n.., ..]).iter().all(|&v| v == 0.0),
            "record {r}: padded input gradient not zero"
        );
        worst = worst.max(diff(
            &dxr,
            &dxb.slice(s![..n, ..])
                .to_owned()
                .insert_axis(Axis(0))
                .into_dyn(),
        ));
        for (acc, (_, p)) in alone_grads.iter_mut().zip(m.named_params()) {
            *acc += &p.grad;
        }
        let yr_inf = m.forward(xr.view(), Mode::Infer).unwrap();
        let _ = yr_inf;
    }
    for (a, g) in alone_grads.iter().zip(&grads) {
        worst = worst.max(diff(a, g));
    }
    worst
}

const LENS: [usize; 4] = [9, 4, 7, 9];

fn seq_model(layers: &str, channels: usize) -> String {
    format!(r#"{{"input_shape": [null, {channels}], "layers": [{layers}]}}"#)
}

#[test]
fn invariant_holds_for_conv_and_pools() {
    for layers in [
        r#"{"type": "conv1d", "filters": 3, "kernel_size": 3, "activation": "relu"}"#,
        r#"{"type": "conv1d", "filters": 3, "kernel_size": 4, "padding": "same", "dilation_rate": 2, "activation": "tanh"}"#,
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 3, "padding": "same", "strides": 2}"#,
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 2, "strides": 2}"#,
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 2, "padding": "same"}"#,
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 5, "padding": "same", "strides": 3}"#,
        r#"{"type": "avgpool1d", "pool_size": 4, "strides": 3, "padding": "same"}"#,
        r#"{"type": "maxpool1d", "pool_size": 2}"#,
        r#"{"type": "maxpool1d", "pool_size": 3, "strides": 2, "padding": "same"}"#,
        r#"{"type": "avgpool1d", "pool_size": 3, "strides": 1}"#,
        r#"{"type": "avgpool1d", "pool_size": 2, "padding": "same"}"#,
        r#"{"type": "global_maxpool1d"}"#,
        r#"{"type": "global_avgpool1d"}"#,
        r#"{"type": "conv1d", "filters": 3, "kernel_size": 3, "padding": "same"}, {"type": "maxpool1d", "pool_size": 2}, {"type": "conv1d", "filters": 2, "kernel_size": 2}, {"type": "global_avgpool1d"}"#,
        r#"{"type": "dense", "units": 3, "activation": "relu"}, {"type": "dropout", "rate": 0.3}, {"type": "activation", "activation": "tanh"}, {"type": "conv1d", "filters": 2, "kernel_size": 3, "padding": "same"}"#,
    ] {
        let w = invariant(&seq_model(layers, 3), 3, &LENS, 11);
        assert!(w < 1e-12, "{layers}: {w:e}");
    }
}

fn rnn_layers() -> Vec<String> {
    let mut out = Vec::new();
    for cell in [
        r#""type": "simple_rnn", "units": 3"#,
        r#""type": "simple_rnn", "units": 3, "activation": "relu""#,
        r#""type": "lstm", "units": 3"#,
        r#""type": "gru", "units": 3"#,
    ] {
        for rs in [true, false] {
            out.push(format!(r#"{{{cell}, "return_sequences": {rs}}}"#));
            for merge in ["concat", "sum", "mul", "ave"] {
                out.push(format!(
                    r#"{{"type": "bidirectional", "merge_mode": "{merge}", "layer": {{{cell}, "return_sequences": {rs}}}}}"#
                ));
            }
        }
    }
    out
}

#[test]
fn invariant_holds_for_every_recurrent_layer_and_merge_mode() {
    for layer in rnn_layers() {
        let w = invariant(&seq_model(&layer, 2), 2, &LENS, 5);
        assert!(w < 1e-12, "{layer}: {w:e}");
    }
}

#[test]
fn invariant_holds_for_a_stacked_danq_like_model() {
    let layers = r#"{"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "bidirectional", "layer": {"type": "lstm", "units": 3, "return_sequences": true}},
        {"type": "dropout", "rate": 0.2},
        {"type": "bidirectional", "merge_mode": "sum", "layer": {"type": "gru", "units": 2}},
        {"type": "dense", "units": 3, "activation": "softmax"}"#;
    let w = invariant(&seq_model(layers, 4), 4, &[12, 5, 9, 4, 12], 3);
    assert!(w < 1e-12, "{w:e}");
    // full-length lengths = the unmasked path, bit for bit
    let mut m = model(&seq_model(layers, 4)).unwrap();
    let x = random_array(&[3, 8, 4], -1.0, 1.0, 9);
    let a = m
        .forward_masked(x.view(), Some(&[8, 8, 8]), Mode::Eval)
        .unwrap();
    let b = m.forward(x.view(), Mode::Eval).unwrap();
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------------------------
// Finite-difference gradient checks on masked batches.

fn gradcheck_masked(json: &str, channels: usize, lens: &[usize]) -> f64 {
    let mut m = model(json).unwrap();
    // random non-zero biases so no gradient is trivially zero
    for (i, (_, p)) in m.named_params_mut().into_iter().enumerate() {
        p.value = random_array(p.value.shape(), -0.5, 0.5, 100 + i as u64);
    }
    let l = *lens.iter().max().unwrap();
    let x = random_array(&[lens.len(), l, channels], -1.0, 1.0, 1);
    Layer::set_lengths(&mut m, Some(lens));
    let y = Layer::forward(&mut m, x.view(), Mode::Eval).unwrap();
    let dy = random_array(y.shape(), -1.0, 1.0, 2);
    let r = check_model(&mut m, &x, &dy, Mode::Eval).unwrap();
    assert!(
        r.zero_tensors.is_empty(),
        "{json}: unexercised {:?}",
        r.zero_tensors
    );
    r.worst()
}

#[test]
fn masked_batches_pass_finite_difference_gradient_checks() {
    let lens = [6, 3, 5];
    let mut cases: Vec<String> = vec![
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 3, "padding": "same", "strides": 2, "activation": "tanh"}"#.into(),
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 2}, {"type": "maxpool1d", "pool_size": 2, "padding": "same"}"#.into(),
        r#"{"type": "avgpool1d", "pool_size": 2, "strides": 1}, {"type": "global_avgpool1d"}"#.into(),
        r#"{"type": "conv1d", "filters": 2, "kernel_size": 2}, {"type": "global_maxpool1d"}"#.into(),
    ];
    for cell in ["simple_rnn", "lstm", "gru"] {
        for rs in [true, false] {
            cases.push(format!(
                r#"{{"type": "{cell}", "units": 2, "return_sequences": {rs}}}"#
            ));
            cases.push(format!(
                r#"{{"type": "bidirectional", "merge_mode": "mul", "layer": {{"type": "{cell}", "units": 2, "return_sequences": {rs}}}}}"#
            ));
        }
    }
    for layers in cases {
        let w = gradcheck_masked(&seq_model(&layers, 2), 2, &lens);
        assert!(w < 1e-6, "{layers}: {w:e}");
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch parity with pack_padded_sequence: fixtures written by python/varlen_fixtures.py.

use seqgrad::Float;
use std::path::{Path, PathBuf};

fn varlen_fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/varlen");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Worst |rust − torch| / max|torch| over output, input gradient and every parameter gradient.
fn torch_case<T: Float>(dir: &Path, file: &str) -> Vec<(String, f64)> {
    let tensors = seqgrad::weights::read_tensors(&dir.join(file)).unwrap();
    let get = |n: &str| -> ArrayD<f64> {
        tensors
            .get(n)
            .unwrap_or_else(|| panic!("{}: no {n}", dir.display()))
            .array
            .clone()
    };
    let mut m = Sequential::<T>::from_file(dir.join("model.json"), 0).unwrap();
    assert!(m.is_variable_length());
    let params = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("layers."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    seqgrad::weights::load_from(&mut m, &params).unwrap();
    let x = get("input").mapv(T::lit);
    let lens: Vec<usize> = get("lengths").iter().map(|&v| v as usize).collect();
    let og = get("output_grad").mapv(T::lit);
    let y = m.forward_masked(x.view(), Some(&lens), Mode::Eval).unwrap();
    let dx = m.backward(og.view()).unwrap();
    let mut got = vec![
        ("output".to_string(), y.mapv(|v| v.to_f64c())),
        ("input_grad".to_string(), dx.mapv(|v| v.to_f64c())),
    ];
    for (n, p) in m.named_params() {
        got.push((format!("grad.{n}"), p.grad.mapv(|v| v.to_f64c())));
    }
    let expected = tensors
        .keys()
        .filter(|k| k.starts_with("expected."))
        .count();
    assert_eq!(got.len(), expected, "{}: tensors compared", dir.display());
    got.into_iter()
        .map(|(n, a)| {
            let e = get(&format!("expected.{n}"));
            assert_eq!(a.shape(), e.shape(), "{} {n}", dir.display());
            let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
            let worst = a
                .iter()
                .zip(e.iter())
                .fold(0.0f64, |m, (a, e)| m.max((a - e).abs()));
            (n, worst / scale)
        })
        .collect()
}

#[test]
fn matches_pytorch_pack_padded_sequence() {
    let dirs = varlen_fixtures();
    assert!(
        dirs.len() >= 5,
        "fixtures missing: run python/varlen_fixtures.py"
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        for (file, tol, worst_f) in [
            (
                "f64.safetensors",
                1e-9,
                torch_case::<f64> as fn(&Path, &str) -> Vec<(String, f64)>,
            ),
            ("f32.safetensors", 1e-5, torch_case::<f32>),
        ] {
            let errs = worst_f(dir, file);
            let worst = errs.iter().map(|e| e.1).fold(0.0, f64::max);
            println!(
                "{} {file}: worst relative error {worst:.2e}",
                dir.file_name().unwrap().to_string_lossy()
            );
            for (n, e) in errs {
                if e > tol {
                    failures.push(format!("{} {file} {n}: {e:.2e}", dir.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn per_position_losses_count_real_positions_only() {
    use seqgrad::loss::Loss;
    let lens = [3usize, 1, 2];
    let z = random_array(&[3, 3, 4], -2.0, 2.0, 4);
    let mut t = ArrayD::<f64>::zeros(z.raw_dim());
    for (i, mut row) in t.lanes_mut(Axis(2)).into_iter().enumerate() {
        row[i % 4] = 1.0;
    }
    for loss in [
        Loss::CrossEntropy,
        Loss::BinaryCrossEntropy,
        Loss::MeanSquaredError,
    ] {
        let (l, g) = loss
            .compute_masked(z.view(), t.view(), Some(&lens))
            .unwrap();
        // the real positions stacked into one (6, 4) batch
        let pick = |a: &ArrayD<f64>| {
            let rows: Vec<_> = lens
                .iter()
                .enumerate()
                .flat_map(|(b, &n)| (0..n).map(move |ti| (b, ti)))
                .map(|(b, ti)| a.slice(s![b, ti, ..]).to_owned())
                .collect();
            ndarray::stack(Axis(0), &rows.iter().map(|r| r.view()).collect::<Vec<_>>())
                .unwrap()
                .into_dyn()
        };
        let (l2, g2) = loss.compute(pick(&z).view(), pick(&t).view()).unwrap();
        assert!((l - l2).abs() < 1e-14, "{loss:?}");
        assert!(diff(&pick(&g), &g2) < 1e-15, "{loss:?}");
        for (b, &n) in lens.iter().enumerate() {
            assert!(g.slice(s![b, n.., ..]).iter().all(|&v| v == 0.0));
        }
        // per-record (B, K) targets: lengths change nothing
        let z2 = z.slice(s![.., 0, ..]).to_owned().into_dyn();
        let t2 = t.slice(s![.., 0, ..]).to_owned().into_dyn();
        assert_eq!(
            loss.compute_masked(z2.view(), t2.view(), Some(&lens))
                .unwrap()
                .0,
            loss.compute(z2.view(), t2.view()).unwrap().0
        );
    }
}

#[test]
fn unmasked_runs_differ_from_pytorch_so_the_parity_test_can_fail() {
    // the parity fixtures really exercise the masking: ignoring the lengths breaks them
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/varlen/conv_pool_bilstm");
    let tensors = seqgrad::weights::read_tensors(&dir.join("f64.safetensors")).unwrap();
    let mut m = Sequential::<f64>::from_file(dir.join("model.json"), 0).unwrap();
    let params = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("layers."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    seqgrad::weights::load_from(&mut m, &params).unwrap();
    let y = m
        .forward(tensors["input"].array.view(), Mode::Eval)
        .unwrap();
    assert!(diff(&y, &tensors["expected.output"].array) > 1e-3);
}

#[test]
fn hints_for_a_null_length_model_show_the_unknown_length_as_a_question_mark() {
    let e = model(
        r#"{"input_shape": [null, 4], "layers": [{"type": "global_maxpool1d"},
        {"type": "lstm", "units": 2}]}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("turning (?, 4) into (4)"), "{e}");
    let e = model(
        r#"{"input_shape": [null, 4], "layers": [{"type": "conv1d", "filters": 2, "kernel_size": 5000}]}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("give input_shape a fixed length"), "{e}");
}

#[test]
fn a_keras_model_with_a_none_length_converts_to_a_null_length_model() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/bi_gru_sum.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(v["config"]["layers"][0]["class_name"], "InputLayer");
    let input = &mut v["config"]["layers"][0]["config"];
    let c = input["batch_shape"][2].clone();
    input["batch_shape"] = serde_json::json!([null, null, c]);
    let spec = seqgrad::keras::spec_from_keras_json(&v.to_string(), "k.json").unwrap();
    assert_eq!(spec.input_shape[0], None);
    assert!(Sequential::<f32>::from_spec(&spec, 0)
        .unwrap()
        .is_variable_length());
    // only the length may be None
    v["config"]["layers"][0]["config"]["batch_shape"] = serde_json::json!([null, 5, null]);
    let e = seqgrad::keras::spec_from_keras_json(&v.to_string(), "k.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("only the length"), "{e}");
}
