//! Keras model JSON in: what converts, and every option seqgrad does not implement refused by
//! name (never ignored).

use std::path::Path;

use serde_json::{json, Value};

use seqgrad::keras;
use seqgrad::spec::{LayerSpec, MergeMode, Padding};

use crate::common::{fails_with, seqgrad};

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Keras layer `i` (Sequential: index in `config.layers`) of a fixture, to edit.
fn layer(v: &mut Value, i: usize) -> &mut serde_json::Map<String, Value> {
    v["config"]["layers"][i]["config"].as_object_mut().unwrap()
}

fn refused(v: &Value, parts: &[&str]) {
    let e = keras::spec_from_keras_json(&v.to_string(), "k.json")
        .unwrap_err()
        .to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("k.json"), "{e}");
    for p in parts {
        assert!(e.contains(p), "{p:?} not in: {e}");
    }
}

#[test]
fn options_map_to_seqgrad() {
    let s = keras::spec_from_keras_json(&fixture("conv_same_stride").to_string(), "k").unwrap();
    assert_eq!(s.input_shape, vec![Some(23), Some(4)]);
    match &s.layers[0] {
        LayerSpec::Conv1d(c) => {
            assert_eq!((c.filters, c.kernel_size, c.strides), (5, 4, 3));
            assert_eq!(c.padding, Padding::Same);
        }
        o => panic!("{o:?}"),
    }
    match &s.layers[2] {
        LayerSpec::Conv1d(c) => assert_eq!(c.dilation_rate, 2),
        o => panic!("{o:?}"),
    }
    let s = keras::spec_from_keras_json(&fixture("bi_rnn_mul").to_string(), "k").unwrap();
    match &s.layers[0] {
        LayerSpec::Bidirectional(b) => {
            assert_eq!(b.merge_mode, MergeMode::Mul);
            assert!(b.layer.rnn().return_sequences);
            assert_eq!(b.layer.kind(), "simple_rnn");
        }
        o => panic!("{o:?}"),
    }
    let s = keras::spec_from_keras_json(&fixture("functional_chain").to_string(), "k").unwrap();
    let kinds: Vec<String> = s.layers.iter().map(|l| l.kind()).collect();
    assert_eq!(
        kinds,
        [
            "conv1d",
            "activation",
            "bidirectional(gru)",
            "global_avgpool1d",
            "dropout",
            "dense"
        ]
    );
}

#[test]
fn recurrent_options_seqgrad_lacks_are_refused_by_name() {
    // stacked_rnns: 0 Conv1D, 1 MaxPooling1D, 2 GRU, 3 LSTM, 4 SimpleRNN (index +1 for InputLayer)
    let cases: &[(usize, &str, Value, &[&str])] = &[
        (
            4,
            "recurrent_dropout",
            json!(0.2),
            &["(LSTM)", "recurrent_dropout=0.2"],
        ),
        (
            3,
            "reset_after",
            json!(false),
            &["GRU", "reset_after=false"],
        ),
        (
            4,
            "go_backwards",
            json!(true),
            &["go_backwards=true", "Bidirectional"],
        ),
        (4, "stateful", json!(true), &["stateful=true"]),
        (
            4,
            "recurrent_activation",
            json!("hard_sigmoid"),
            &["recurrent_activation", "hard_sigmoid"],
        ),
        (4, "use_bias", json!(false), &["use_bias=false"]),
        (5, "dropout", json!(0.1), &["dropout=0.1", "Dropout layer"]),
        (3, "activation", json!("relu"), &["activation=relu", "tanh"]),
        (4, "return_state", json!(true), &["return_state=true"]),
        (
            4,
            "kernel_regularizer",
            json!({"class_name": "L2"}),
            &["kernel_regularizer"],
        ),
        (4, "some_new_option", json!(3), &["some_new_option=3"]),
        (4, "trainable", json!(false), &["trainable=false"]),
    ];
    for (i, key, val, parts) in cases {
        let mut v = fixture("stacked_rnns");
        layer(&mut v, *i).insert(key.to_string(), val.clone());
        refused(&v, parts);
    }
}

#[test]
fn conv_and_pool_options_seqgrad_lacks_are_refused_by_name() {
    let cases: &[(usize, &str, Value, &[&str])] = &[
        (
            1,
            "padding",
            json!("causal"),
            &["padding='causal'", "'valid' or 'same'"],
        ),
        (
            1,
            "data_format",
            json!("channels_first"),
            &["data_format=channels_first", "channels-last"],
        ),
        (1, "groups", json!(2), &["groups=2"]),
        (
            2,
            "data_format",
            json!("channels_first"),
            &["MaxPooling1D", "data_format"],
        ),
    ];
    for (i, key, val, parts) in cases {
        let mut v = fixture("pools_same");
        layer(&mut v, *i).insert(key.to_string(), val.clone());
        refused(&v, parts);
    }
    let mut v = fixture("pools_valid_global_avg");
    layer(&mut v, 4).insert("keepdims".into(), json!(true));
    refused(&v, &["GlobalAveragePooling1D", "keepdims=true"]);
}

#[test]
fn bidirectional_options_are_checked() {
    let mut v = fixture("bi_lstm_ave");
    layer(&mut v, 1).insert("merge_mode".into(), Value::Null);
    refused(&v, &["merge_mode=None"]);
    let mut v = fixture("bi_lstm_ave");
    layer(&mut v, 1)["layer"]["config"]
        .as_object_mut()
        .unwrap()
        .insert("recurrent_dropout".into(), json!(0.5));
    refused(&v, &["wrapped layer (LSTM)", "recurrent_dropout=0.5"]);
    let mut v = fixture("bi_lstm_ave");
    layer(&mut v, 1)["backward_layer"]["config"]["units"] = json!(7);
    refused(&v, &["backward_layer", "differs"]);
}

#[test]
fn unsupported_classes_name_the_class_and_what_seqgrad_supports() {
    let mut v = fixture("stacked_rnns");
    v["config"]["layers"][2]["class_name"] = json!("Conv2D");
    refused(&v, &["Conv2D", "not supported", "Conv1D", "Bidirectional"]);
    let mut v = fixture("stacked_rnns");
    v["config"]["layers"][6]["class_name"] = json!("BatchNormalization");
    refused(&v, &["BatchNormalization", "MaxPooling1D"]);
    let mut v = fixture("stacked_rnns");
    v["class_name"] = json!("Subclassed");
    refused(&v, &["Subclassed", "Sequential"]);
}

#[test]
fn a_none_axis_other_than_the_length_is_refused() {
    // A None length converts to a null-length model (tests/it/varlen.rs); a None channel
    // axis cannot.
    let mut v = fixture("bi_gru_sum");
    layer(&mut v, 0).insert("batch_shape".into(), json!([null, 8, null]));
    refused(&v, &["None", "only the length"]);
}

#[test]
fn functional_models_must_be_one_chain() {
    let mut v = fixture("functional_chain");
    // Make the Dense read the Conv1D's output: a skip, not a chain.
    let s = v.to_string();
    let last = v["config"]["layers"].as_array().unwrap().len() - 1;
    let node =
        &mut v["config"]["layers"][last]["inbound_nodes"][0]["args"][0]["config"]["keras_history"];
    node[0] = json!("conv1d");
    assert_ne!(s, v.to_string());
    refused(&v, &["not a single chain", "conv1d"]);
}

#[test]
fn keras_2_style_json_converts() {
    // tf.keras 2: batch_input_shape on the first layer, plain ints, no InputLayer.
    let v = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Conv1D", "config": {"name": "c", "batch_input_shape": [null, 30, 4],
            "filters": 4, "kernel_size": 5, "strides": 1, "padding": "valid",
            "activation": "relu", "use_bias": true, "kernel_regularizer": null}},
        {"class_name": "MaxPooling1D", "config": {"name": "p", "pool_size": 2, "strides": null, "padding": "valid"}},
        {"class_name": "LSTM", "config": {"name": "l", "units": 3, "implementation": 2,
            "recurrent_activation": "sigmoid", "time_major": false}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "softmax"}}]}});
    let s = keras::spec_from_keras_json(&v.to_string(), "k2").unwrap();
    assert_eq!(s.input_shape, vec![Some(30), Some(4)]);
    assert_eq!(s.layers.len(), 4);
    seqgrad::Sequential::<f32>::from_spec(&s, 0).unwrap();
}

#[test]
fn cli_refusal_is_one_line_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let mut v = fixture("stacked_rnns");
    layer(&mut v, 4).insert("recurrent_dropout".into(), json!(0.25));
    std::fs::write(d.path().join("k.json"), v.to_string()).unwrap();
    let o = seqgrad(&["summary", "--model", "k.json"], d.path());
    fails_with(&o, &["k.json", "LSTM", "recurrent_dropout=0.25"]);
    let o = seqgrad(&["convert", "--from", "k.json", "--out", "x"], d.path());
    fails_with(&o, &["recurrent_dropout=0.25"]);
    assert!(!d.path().join("x").exists());
}
