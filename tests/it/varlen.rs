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
