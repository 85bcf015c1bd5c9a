//! How a unit test checks a model's shapes — and the error a wrong model gives.
//!
//! A seqgrad model validates every shape when it is built, so a test of "does my model fit my
//! data" is: build it, look at `output_shape()` / `layer_shapes()`, and for a model that must
//! not build, look at the error. The classic mistake — a `Flatten` before a recurrent layer —
//! is refused with the layer, the shape it got, what removed the time axis, and the fix.
//!
//! `cargo run --example shape_test` prints both; `cargo test --example shape_test` (and plain
//! `cargo test`) runs the tests below.

use seqgrad::spec::ModelSpec;
use seqgrad::Sequential;

/// conv → pool → BiLSTM → dense, over 60 bp.
const GOOD: &str = r#"{"input_shape": [60, 4], "layers": [
  {"type": "conv1d", "filters": 16, "kernel_size": 9, "activation": "relu"},
  {"type": "maxpool1d", "pool_size": 4},
  {"type": "bidirectional", "layer": {"type": "lstm", "units": 8}},
  {"type": "dense", "units": 3, "activation": "softmax"}]}"#;

/// The same with a Flatten before the LSTM: the time axis is gone.
const FLATTEN_BEFORE_LSTM: &str = r#"{"input_shape": [60, 4], "layers": [
  {"type": "conv1d", "filters": 16, "kernel_size": 9, "activation": "relu"},
  {"type": "maxpool1d", "pool_size": 4},
  {"type": "flatten"},
  {"type": "bidirectional", "layer": {"type": "lstm", "units": 8}},
  {"type": "dense", "units": 3, "activation": "softmax"}]}"#;

fn build(json: &str) -> seqgrad::Result<Sequential<f32>> {
    Sequential::from_spec(&ModelSpec::from_json(json, "model")?, 0)
}

fn main() -> seqgrad::Result<()> {
    let model = build(GOOD)?;
    print!("{}", model.summary());
    match build(FLATTEN_BEFORE_LSTM) {
        Ok(_) => println!("unexpected: the broken model built"),
        Err(e) => println!("the broken model does not build:\n  {e}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqgrad::{BuildError, Error};

    #[test]
    fn every_layer_has_the_shape_i_expect() {
        let model = build(GOOD).unwrap();
        // (60 − 9 + 1) = 52 steps × 16 filters, pooled by 4 → 13, BiLSTM → 2 × 8, dense → 3.
        assert_eq!(
            model.layer_shapes(),
            &[vec![52, 16], vec![13, 16], vec![16], vec![3]]
        );
        assert_eq!(model.output_shape(), &[3]);
        assert_eq!(
            model.param_count(),
            16 * 4 * 9 + 16 + 2 * 4 * 8 * (16 + 8 + 2) + 3 * 16 + 3
        );
    }

    #[test]
    fn flatten_before_the_lstm_is_refused_with_the_fix() {
        let err = build(FLATTEN_BEFORE_LSTM).err().expect("must not build");
        // The typed error says which layer, what it got, and what produced it …
        match &err {
            Error::Build(b) => {
                let BuildError {
                    index, kind, input, ..
                } = b.as_ref();
                assert_eq!((*index, kind.as_str()), (3, "bidirectional(lstm)"));
                assert_eq!(input, &vec![208]);
            }
            other => panic!("expected a build error, got {other}"),
        }
        // … and its message names the culprit and the fix.
        let msg = err.to_string();
        assert!(msg.contains("Flatten (#2) removed the time axis"), "{msg}");
        assert!(msg.contains("turning (13, 16) into (208)"), "{msg}");
        assert!(msg.contains("remove the Flatten"), "{msg}");
    }
}
