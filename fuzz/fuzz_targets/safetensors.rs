//! The safetensors loader: any bytes parse to tensors or give an error message, never a panic.
//! Parsed tensors are then loaded into a small model (shape/dtype/name mismatches are errors).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seqgrad::{spec::ModelSpec, Sequential};

const MODEL: &str = r#"{"input_shape": [8, 4], "layers": [
  {"type": "conv1d", "filters": 2, "kernel_size": 3},
  {"type": "flatten"},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = seqgrad::weights::parse_tensors(data) {
        let spec = ModelSpec::from_json(MODEL, "fuzz").expect("fixed model parses");
        let mut m32 = Sequential::<f32>::from_spec(&spec, 0).expect("fixed model builds");
        let _ = seqgrad::weights::load_from(&mut m32, &tensors);
        let mut m64 = Sequential::<f64>::from_spec(&spec, 0).expect("fixed model builds");
        let _ = seqgrad::weights::load_from(&mut m64, &tensors);
        let _ = seqgrad::weights::dtype_of(&tensors);
    }
});
