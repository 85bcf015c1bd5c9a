//! The model-file parser and builder: any text parses to a spec or gives an error; a spec plans
//! (`memory::plan`: shapes and parameter counts, nothing allocated) exactly when it builds, with
//! the same error; a small one is built, and one forward and backward pass gives exactly the
//! planned shapes. Never a panic, never an allocation the estimate did not announce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, Dimension, IxDyn};
use seqgrad::memory::{self, Workload};
use seqgrad::spec::ModelSpec;
use seqgrad::{Mode, Sequential};

/// Builds and runs only models whose estimated gradient pass at batch 2 stays under this.
const BUDGET: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = ModelSpec::from_json(text, "fuzz.json") else {
        return;
    };
    let plan = memory::plan(&spec);
    let Ok(plan) = plan else {
        // Plans fail exactly when builds fail; building a failing spec only allocates the layers
        // before the failing one, so check that only for small prefixes.
        let err = plan.unwrap_err().to_string();
        let mut prefix = spec.clone();
        if let Some(i) = err
            .strip_prefix("layer #")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            prefix.layers.truncate(i);
            let fine = memory::plan(&prefix).expect("the layers before the failing one plan");
            if memory::estimate(&fine, 1, Workload::Gradient, 4).total() > BUDGET {
                return;
            }
        }
        match Sequential::<f32>::from_spec(&spec, 0) {
            Ok(_) => panic!("plan failed ({err}) but the model built"),
            Err(e) => assert_eq!(e.to_string(), err),
        }
        return;
    };
    let batch = 2;
    if memory::estimate(&plan, batch, Workload::Gradient, 4).total() > BUDGET {
        return;
    }
    // Long sequences make recurrent layers slow without finding anything new.
    if plan.input_shape.iter().product::<usize>() > 1 << 16 {
        return;
    }
    let mut model = Sequential::<f32>::from_spec(&spec, 0).expect("a planned model builds");
    assert_eq!(model.param_count(), plan.param_count());
    assert_eq!(model.layer_shapes().len(), plan.layers.len());
    for (got, want) in model.layer_shapes().iter().zip(&plan.layers) {
        assert_eq!(got, &want.output);
    }
    let mut shape = vec![batch];
    shape.extend_from_slice(&plan.input_shape);
    let x = ArrayD::<f32>::from_shape_fn(IxDyn(&shape), |i| {
        (i.slice().iter().sum::<usize>() % 3) as f32 - 1.0
    });
    let y = model
        .forward(x.view(), Mode::Train)
        .expect("forward on the planned input shape");
    let mut out_shape = vec![batch];
    out_shape.extend_from_slice(plan.output_shape());
    assert_eq!(y.shape(), out_shape.as_slice());
    let g = ArrayD::<f32>::ones(y.raw_dim());
    let dx = model.backward(g.view()).expect("backward after forward");
    assert_eq!(dx.shape(), x.shape());
});
