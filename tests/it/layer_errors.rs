//! Library-level hardening: every layer refuses wrong shapes with `Error::Shape` (no panic),
//! overflowing geometry is an error (never wrong padding), the model checks the gradient it is
//! given against its head output, and NaN is never hidden by relu or max pooling.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::gradcheck::random_array;
use seqgrad::model::build_layer;
use seqgrad::spec::{LayerSpec, ModelSpec};
use seqgrad::{Error, Layer, Mode, Sequential, ShapeIssue};

fn spec(layer_json: &str) -> LayerSpec {
    let m = ModelSpec::from_json(
        &format!(r#"{{"input_shape": [1, 1], "layers": [{layer_json}]}}"#),
        "test",
    )
    .unwrap();
    m.layers[0].clone()
}

fn layer(layer_json: &str, input: &[usize]) -> Box<dyn Layer<f64>> {
    build_layer::<f64>(
        &spec(layer_json),
        input,
        7,
        &mut ChaCha8Rng::seed_from_u64(7),
    )
    .unwrap()
}

fn build_err(layer_json: &str, input: &[usize]) -> ShapeIssue {
    match build_layer::<f64>(
        &spec(layer_json),
        input,
        7,
        &mut ChaCha8Rng::seed_from_u64(7),
    ) {
        Ok(_) => panic!("{layer_json} on {input:?} built"),
        Err(e) => e,
    }
}

fn zeros(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::zeros(IxDyn(shape))
}

fn is_shape_err<T: std::fmt::Debug>(r: seqgrad::Result<T>, what: &str) {
    match r {
        Err(Error::Shape { .. }) => {}
        other => panic!("{what}: expected Error::Shape, got {other:?}"),
    }
}

/// Every layer, called directly: forward with a wrong-rank (and a wrong-width) input and
/// backward with a wrong-shaped gradient return `Error::Shape`.
#[test]
fn every_layer_refuses_wrong_shapes_without_panicking() {
    let seq = [6usize, 3];
    let cases: Vec<(&str, Vec<usize>)> = vec![
        (
            r#"{"type": "conv1d", "filters": 2, "kernel_size": 3, "activation": "relu"}"#,
            seq.to_vec(),
        ),
        (r#"{"type": "maxpool1d", "pool_size": 2}"#, seq.to_vec()),
        (
            r#"{"type": "avgpool1d", "pool_size": 2, "padding": "same"}"#,
            seq.to_vec(),
        ),
        (r#"{"type": "global_maxpool1d"}"#, seq.to_vec()),
        (r#"{"type": "global_avgpool1d"}"#, seq.to_vec()),
        (r#"{"type": "flatten"}"#, seq.to_vec()),
        (r#"{"type": "dropout", "rate": 0.5}"#, seq.to_vec()),
        (
            r#"{"type": "activation", "activation": "softmax"}"#,
            seq.to_vec(),
        ),
        (r#"{"type": "activation", "activation": "relu"}"#, vec![4]),
        (r#"{"type": "dense", "units": 2}"#, vec![4]),
        (
            r#"{"type": "dense", "units": 2, "activation": "sigmoid"}"#,
            seq.to_vec(),
        ),
        (
            r#"{"type": "simple_rnn", "units": 2, "return_sequences": true}"#,
            seq.to_vec(),
        ),
        (r#"{"type": "lstm", "units": 2}"#, seq.to_vec()),
        (r#"{"type": "gru", "units": 2}"#, seq.to_vec()),
        (
            r#"{"type": "bidirectional", "layer": {"type": "lstm", "units": 2, "return_sequences": true}}"#,
            seq.to_vec(),
        ),
        (
            r#"{"type": "bidirectional", "merge_mode": "mul", "layer": {"type": "gru", "units": 2}}"#,
            seq.to_vec(),
        ),
    ];
    for (json, input) in cases {
        let mut l = layer(json, &input);
        let mut good = vec![2];
        good.extend(&input);
        // Wrong rank: no batch axis, a scalar, one axis too many. (Dense is rank-flexible by
        // design: a sequence-built dense takes a `(batch, features)` input too, so for it the
        // "no batch axis" case is a rank-1 input.)
        let no_batch = if json.contains("dense") {
            vec![input[input.len() - 1]]
        } else {
            input.clone()
        };
        for bad in [no_batch, vec![], [good.clone(), vec![2]].concat()] {
            is_shape_err(
                l.forward(zeros(&bad).view(), Mode::Train),
                &format!("{json} forward {bad:?}"),
            );
        }
        // Wrong width of the last axis (every layer but the element-wise dropout knows it).
        if !json.contains("dropout") && !json.contains("pool") {
            let mut wide = good.clone();
            *wide.last_mut().unwrap() += 1;
            is_shape_err(
                l.forward(zeros(&wide).view(), Mode::Train),
                &format!("{json} forward {wide:?}"),
            );
        }
        let x = random_array(&good, -1.0, 1.0, 3);
        let y = l.forward(x.view(), Mode::Train).unwrap();
        // Wrong gradients: another batch size, another last axis, another rank, a scalar.
        let mut other_batch = y.shape().to_vec();
        other_batch[0] += 1;
        let mut other_last = y.shape().to_vec();
        *other_last.last_mut().unwrap() += 1;
        let extra = [y.shape().to_vec(), vec![1]].concat();
        for bad in [
            other_batch,
            other_last,
            extra,
            vec![],
            y.shape()[1..].to_vec(),
        ] {
            is_shape_err(
                l.backward(zeros(&bad).view()),
                &format!("{json} backward {bad:?}"),
            );
        }
        // And the right one still works afterwards.
        l.backward(ArrayD::ones(y.raw_dim()).view()).unwrap();
    }
}

#[test]
fn dense_rejects_a_wrong_feature_count() {
    let mut d = layer(r#"{"type": "dense", "units": 3}"#, &[4]);
    is_shape_err(d.forward(zeros(&[2, 5]).view(), Mode::Eval), "dense (2, 5)");
    // Same element count, other shape: backward compares full shapes.
    d.forward(zeros(&[2, 4]).view(), Mode::Eval).unwrap();
    is_shape_err(d.backward(zeros(&[3, 2]).view()), "dense grad (3, 2)");
    let mut d = layer(r#"{"type": "dense", "units": 3}"#, &[5, 4]);
    d.forward(zeros(&[2, 5, 4]).view(), Mode::Eval).unwrap();
    is_shape_err(d.backward(zeros(&[5, 2, 3]).view()), "dense grad (5, 2, 3)");
}

fn model(json: &str) -> Sequential<f64> {
    Sequential::from_spec(&ModelSpec::from_json(json, "test").unwrap(), 1).unwrap()
}

#[test]
fn model_backward_checks_the_gradient_against_the_head_output() {
    let sig = r#"{"input_shape": [4], "layers": [{"type": "dense", "units": 3, "activation": "sigmoid"}]}"#;
    let soft = r#"{"input_shape": [4], "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]}"#;
    for json in [sig, soft] {
        let mut m = model(json);
        m.forward(random_array(&[2, 4], -1.0, 1.0, 1).view(), Mode::Train)
            .unwrap();
        for bad in [[2usize, 4], [1, 3], [3, 3]] {
            is_shape_err(
                m.backward(zeros(&bad).view()),
                &format!("{json} grad {bad:?}"),
            );
        }
        m.backward(ArrayD::ones(IxDyn(&[2, 3])).view()).unwrap();

        // A stale head output: forward batch 2, forward_logits batch 1, backward batch 1.
        m.forward(random_array(&[2, 4], -1.0, 1.0, 1).view(), Mode::Train)
            .unwrap();
        m.forward_logits(random_array(&[1, 4], -1.0, 1.0, 2).view(), Mode::Train)
            .unwrap();
        match m.backward(zeros(&[1, 3]).view()) {
            Err(Error::NoForward { .. }) => {}
            other => panic!("stale head output: {other:?}"),
        }
        // backward_logits is the right call after forward_logits.
        m.backward_logits(zeros(&[1, 3]).view()).unwrap();
    }
}

#[test]
fn overflowing_geometry_is_an_error_not_wrong_padding() {
    // Valid conv whose span 2·(2⁶³ − 1) + 1 = usize::MAX fits: too short.
    let e = build_err(
        r#"{"type": "conv1d", "filters": 1, "kernel_size": 3, "dilation_rate": 9223372036854775807}"#,
        &[40, 4],
    );
    assert!(
        matches!(
            e,
            ShapeIssue::TooShort {
                needed: usize::MAX,
                got: 40,
                ..
            }
        ),
        "{e:?}"
    );
    // Same conv: (L' − 1)·s + span overflows.
    let e = build_err(
        r#"{"type": "conv1d", "filters": 1, "kernel_size": 3, "dilation_rate": 9223372036854775807, "padding": "same"}"#,
        &[40, 4],
    );
    assert!(
        matches!(&e, ShapeIssue::Invalid(m) if m.contains("overflow")),
        "{e:?}"
    );
    // Pool: same with stride 1 overflows; valid is too short.
    let l = layer(
        r#"{"type": "avgpool1d", "pool_size": 18446744073709551615, "strides": 1, "padding": "same"}"#,
        &[5, 2],
    );
    assert!(
        matches!(l.output_shape(&[5, 2]), Err(ShapeIssue::Invalid(m)) if m.contains("overflow"))
    );
    let l = layer(
        r#"{"type": "maxpool1d", "pool_size": 18446744073709551615}"#,
        &[5, 2],
    );
    assert!(matches!(
        l.output_shape(&[5, 2]),
        Err(ShapeIssue::TooShort { .. })
    ));
    // Flatten's product.
    let e = build_err(r#"{"type": "flatten"}"#, &[usize::MAX, 2]);
    assert!(
        matches!(&e, ShapeIssue::Invalid(m) if m.contains("more than 2^128") || m.contains("elements"))
    );
    let f = layer(r#"{"type": "flatten"}"#, &[5, 2]);
    assert!(f.output_shape(&[1 << 40, 1 << 40]).is_err());
}

#[test]
fn pool_as_long_as_usize_max_averages_the_whole_sequence() {
    // same padding, stride = pool = usize::MAX: one window holding every real position.
    let x = random_array(&[2, 5, 3], -1.0, 1.0, 4);
    for (op, want) in [
        ("avgpool1d", x.mean_axis(ndarray::Axis(1)).unwrap()),
        (
            "maxpool1d",
            x.fold_axis(ndarray::Axis(1), f64::NEG_INFINITY, |a, b| a.max(*b)),
        ),
    ] {
        let mut l = layer(
            &format!(r#"{{"type": "{op}", "pool_size": 18446744073709551615, "padding": "same"}}"#),
            &[5, 3],
        );
        assert_eq!(l.output_shape(&[5, 3]).unwrap(), vec![1, 3]);
        let y = l.forward(x.view(), Mode::Eval).unwrap();
        assert_eq!(y.shape(), &[2, 1, 3]);
        for (a, b) in y.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "{op}: {a} vs {b}");
        }
        // Its gradient goes back to real positions only.
        let dx = l.backward(ArrayD::ones(y.raw_dim()).view()).unwrap();
        assert!((dx.sum() - 6.0).abs() < 1e-12, "{op}: {}", dx.sum());
    }
}

#[test]
fn nan_is_never_hidden() {
    let mut x = random_array(&[2, 6, 3], -1.0, 1.0, 5);
    // NaN in the middle of a window, not its first position; one per sample.
    x[[0, 3, 1]] = f64::NAN;
    x[[1, 1, 0]] = f64::NAN;
    let cases = [
        (
            r#"{"type": "activation", "activation": "relu"}"#,
            vec![[0, 3, 1], [1, 1, 0]],
        ),
        (
            r#"{"type": "maxpool1d", "pool_size": 3}"#,
            vec![[0, 1, 1], [1, 0, 0]],
        ),
        (
            r#"{"type": "maxpool1d", "pool_size": 2, "padding": "same", "strides": 1}"#,
            vec![[0, 3, 1]],
        ),
    ];
    for (json, nan_at) in cases {
        let mut l = layer(json, &[6, 3]);
        // Inference (no arg max kept, a branch-free loop) gives the same bits as training.
        let y_infer = l.forward(x.view(), Mode::Infer).unwrap();
        let y = l.forward(x.view(), Mode::Train).unwrap();
        assert!(
            y.iter()
                .zip(&y_infer)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{json}: {y} / {y_infer}"
        );
        for at in nan_at {
            assert!(y[at].is_nan(), "{json}: {at:?} = {}", y[at]);
        }
        assert_eq!(
            y.iter().filter(|v| v.is_nan()).count(),
            match json {
                j if j.contains("activation") => 2,
                j if j.contains("strides") => 4,
                _ => 2,
            },
            "{json}: {y}"
        );
    }
    let mut g = layer(r#"{"type": "global_maxpool1d"}"#, &[6, 3]);
    let y = g.forward(x.view(), Mode::Train).unwrap();
    assert!(y[[0, 1]].is_nan() && y[[1, 0]].is_nan(), "{y}");
    assert_eq!(y.iter().filter(|v| v.is_nan()).count(), 2);
    // The gradient goes to the NaN's position.
    let dx = g.backward(ArrayD::ones(y.raw_dim()).view()).unwrap();
    assert_eq!(dx[[0, 3, 1]], 1.0);
    assert_eq!(dx[[1, 1, 0]], 1.0);

    // Through the seed model (conv relu → maxpool → BiRNN → flatten → dense relu → softmax).
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/seed.json")).unwrap();
    let mut m =
        Sequential::<f32>::from_spec(&ModelSpec::from_json(&text, "seed").unwrap(), 3).unwrap();
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[2, 40, 4]));
    for t in 0..40 {
        x[[0, t, t % 4]] = 1.0;
        x[[1, t, (t + 1) % 4]] = 1.0;
    }
    let clean = m.forward(x.view(), Mode::Eval).unwrap();
    assert!(clean.iter().all(|v| v.is_finite()));
    x[[0, 17, 2]] = f32::NAN;
    let y = m.forward(x.view(), Mode::Eval).unwrap();
    assert!(y.row_or_nan(0), "sample 0 should be NaN: {y}");
    assert!(
        y.index_axis(ndarray::Axis(0), 1)
            .iter()
            .all(|v| v.is_finite()),
        "{y}"
    );
}

trait RowNan {
    fn row_or_nan(&self, i: usize) -> bool;
}

impl RowNan for ArrayD<f32> {
    fn row_or_nan(&self, i: usize) -> bool {
        self.index_axis(ndarray::Axis(0), i)
            .iter()
            .all(|v| v.is_nan())
    }
}

#[test]
fn gradcheck_reports_dead_checks() {
    // A relu dense whose every unit is off: all gradients are zero, so error 0 checks nothing.
    let mut d = layer(
        r#"{"type": "dense", "units": 3, "activation": "relu"}"#,
        &[4],
    );
    for p in d.params_mut() {
        p.value.fill(if p.name == "bias" { -10.0 } else { 0.0 });
    }
    let x = random_array(&[2, 4], -1.0, 1.0, 1);
    let dy = random_array(&[2, 3], -1.0, 1.0, 2);
    let r = seqgrad::gradcheck::check_layer(d.as_mut(), &x, &dy, Mode::Train).unwrap();
    assert_eq!(r.worst(), 0.0);
    assert_eq!(r.zero_tensors, vec!["input", "weight", "bias"]);
    assert!(
        r.to_string()
            .contains("identically zero (not checked): input, weight, bias"),
        "{r}"
    );
    // Alive again: nothing is reported.
    for p in d.params_mut() {
        p.value.fill(0.5);
    }
    let r = seqgrad::gradcheck::check_layer(d.as_mut(), &x, &dy, Mode::Train).unwrap();
    assert!(r.zero_tensors.is_empty(), "{r}");
    assert!(r.worst() < 1e-6, "{r}");
}

/// A flatten before a recurrent layer that returns sequences: removing the flatten would leave
/// the model ending in a sequence, so the fix says to move it after the recurrent layer; when
/// removing it leaves a flat output, the fix stays "remove the Flatten".
#[test]
fn flatten_before_a_sequence_rnn_suggests_moving_it_after() {
    let msg = |json: &str| {
        let spec = ModelSpec::from_json(json, "m.json").unwrap();
        let planned = seqgrad::spec::plan(&spec).unwrap_err().to_string();
        let built = Sequential::<f32>::from_spec(&spec, 0)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(planned, built);
        planned
    };
    let seq = msg(r#"{"input_shape": [40, 4], "layers": [
          {"type": "conv1d", "filters": 8, "kernel_size": 10, "activation": "relu"},
          {"type": "maxpool1d", "pool_size": 5},
          {"type": "flatten"},
          {"type": "bidirectional", "layer": {"type": "lstm", "units": 4, "return_sequences": true}},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#);
    assert!(
        seq.contains("Flatten (#2) removed the time axis, turning (6, 8) into (48)")
            && seq.contains("move the Flatten after layer #3 (the last recurrent layer)")
            && seq.contains("the model still ends in a flat output"),
        "{seq}"
    );
    let last = msg(r#"{"input_shape": [40, 4], "layers": [
          {"type": "conv1d", "filters": 8, "kernel_size": 10, "activation": "relu"},
          {"type": "flatten"},
          {"type": "gru", "units": 4},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#);
    assert!(
        last.contains("remove the Flatten so the recurrent layer gets (31, 8)")
            && !last.contains("move the Flatten after"),
        "{last}"
    );
}
