//! Property tests over random model specs (small sizes): a spec either builds or gives a shape
//! error, never a panic; `memory::plan` (what `summary` prints, computed without allocating)
//! agrees with the build, error message included; a built model runs forward (train and eval
//! mode) and backward with exactly the planned shapes.

use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use seqgrad::activation::Activation;
use seqgrad::memory;
use seqgrad::spec::*;
use seqgrad::{Error, Mode, Sequential};

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Linear),
        Just(Activation::Relu),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::Softmax),
    ]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![Just(Padding::Valid), Just(Padding::Same)]
}

fn rnn() -> impl Strategy<Value = RnnSpec> {
    (
        0usize..4,
        any::<bool>(),
        prop_oneof![3 => Just(Activation::Tanh), 1 => activation()],
        any::<bool>(),
    )
        .prop_map(|(units, return_sequences, activation, torch)| RnnSpec {
            units,
            return_sequences,
            activation,
            init: if torch {
                RnnInit::Pytorch
            } else {
                RnnInit::Keras
            },
            ..Default::default()
        })
}

fn recurrent() -> impl Strategy<Value = RecurrentSpec> {
    prop_oneof![
        rnn().prop_map(RecurrentSpec::SimpleRnn),
        rnn().prop_map(RecurrentSpec::Lstm),
        rnn().prop_map(RecurrentSpec::Gru),
    ]
}

fn pool() -> impl Strategy<Value = PoolSpec> {
    (0usize..5, proptest::option::of(0usize..4), padding()).prop_map(
        |(pool_size, strides, padding)| PoolSpec {
            pool_size,
            strides,
            padding,
        },
    )
}

fn layer() -> impl Strategy<Value = LayerSpec> {
    prop_oneof![
        (
            0usize..4,
            0usize..6,
            0usize..3,
            padding(),
            0usize..3,
            activation(),
            any::<bool>()
        )
            .prop_map(
                |(filters, kernel_size, strides, padding, dilation_rate, activation, use_bias)| {
                    LayerSpec::Conv1d(Conv1dSpec {
                        filters,
                        kernel_size,
                        strides,
                        padding,
                        dilation_rate,
                        activation,
                        use_bias,
                    })
                }
            ),
        pool().prop_map(LayerSpec::Maxpool1d),
        pool().prop_map(LayerSpec::Avgpool1d),
        Just(LayerSpec::GlobalMaxpool1d(EmptySpec {})),
        Just(LayerSpec::GlobalAvgpool1d(EmptySpec {})),
        (0usize..5, activation(), any::<bool>()).prop_map(|(units, activation, use_bias)| {
            LayerSpec::Dense(DenseSpec {
                units,
                activation,
                use_bias,
            })
        }),
        Just(LayerSpec::Flatten(EmptySpec {})),
        prop_oneof![
            Just(0.0),
            Just(0.3),
            Just(0.9),
            Just(1.0),
            Just(-0.1),
            Just(f64::NAN)
        ]
        .prop_map(|rate| LayerSpec::Dropout(DropoutSpec { rate })),
        activation().prop_map(|activation| LayerSpec::Activation(ActivationSpec { activation })),
        rnn().prop_map(LayerSpec::SimpleRnn),
        rnn().prop_map(LayerSpec::Lstm),
        rnn().prop_map(LayerSpec::Gru),
        (
            recurrent(),
            prop_oneof![
                Just(MergeMode::Concat),
                Just(MergeMode::Sum),
                Just(MergeMode::Mul),
                Just(MergeMode::Ave)
            ]
        )
            .prop_map(
                |(layer, merge_mode)| LayerSpec::Bidirectional(BidirectionalSpec {
                    layer,
                    merge_mode
                })
            ),
    ]
}

fn model_spec() -> impl Strategy<Value = ModelSpec> {
    let input = prop_oneof![
        3 => (0usize..12, 0usize..5).prop_map(|(l, c)| vec![l, c]),
        1 => (0usize..12).prop_map(|f| vec![f]),
    ];
    (input, proptest::collection::vec(layer(), 0..5)).prop_map(|(input_shape, layers)| ModelSpec {
        input_shape: input_shape.into_iter().map(Some).collect(),
        layers,
    })
}

fn batched(batch: usize, shape: &[usize]) -> Vec<usize> {
    std::iter::once(batch)
        .chain(shape.iter().copied())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    /// A random spec builds or gives a shape/spec error (never a panic), exactly when the plan
    /// does, with the same message; a built model's shapes and parameter counts are the plan's,
    /// and forward/backward give exactly the planned shapes.
    #[test]
    fn random_specs_build_or_give_a_shape_error_and_run_with_the_planned_shapes(
        spec in model_spec(),
        batch in 1usize..4,
    ) {
        let plan = memory::plan(&spec);
        let built = Sequential::<f64>::from_spec(&spec, 7);
        let (plan, mut model) = match (plan, built) {
            (Ok(p), Ok(m)) => (p, m),
            (Err(pe), Err(be)) => {
                prop_assert!(matches!(be, Error::Build(_) | Error::Spec { .. }), "{be}");
                prop_assert_eq!(pe.to_string(), be.to_string());
                return Ok(());
            }
            (p, b) => {
                return Err(TestCaseError::fail(format!(
                    "plan {:?} but build {:?}",
                    p.map(|_| "ok").map_err(|e| e.to_string()),
                    b.map(|_| "ok").map_err(|e| e.to_string())
                )))
            }
        };
        prop_assert_eq!(plan.param_count(), model.param_count());
        prop_assert_eq!(memory::summary_table(&plan), model.summary());
        for (p, s) in plan.layers.iter().zip(model.layer_shapes()) {
            prop_assert_eq!(&p.output, s);
        }
        // The JSON round trip keeps the model.
        let again = ModelSpec::from_json(&spec.to_json(), "again");
        prop_assert!(again.is_ok());
        let x = ArrayD::<f64>::from_shape_fn(IxDyn(&batched(batch, &plan.input_shape)), |i| {
            ((i.slice().iter().sum::<usize>() % 5) as f64 - 2.0) * 0.3
        });
        let want_out = batched(batch, plan.output_shape());
        for mode in [Mode::Train, Mode::Eval] {
            let y = model.forward(x.view(), mode).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(y.shape(), want_out.as_slice());
            let g = ArrayD::<f64>::ones(y.raw_dim());
            let dx = model.backward(g.view()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(dx.shape(), x.shape());
        }
        for (_, p) in model.named_params() {
            prop_assert_eq!(p.grad.shape(), p.value.shape());
        }
    }
}

/// Bits of every value, every NaN as one (a NaN's sign and payload are left open by IEEE 754).
fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter()
        .map(|v| {
            if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            }
        })
        .collect()
}

/// Layers write into memory they kept from an earlier pass (recycled inference outputs,
/// conv1d's output in the last output gradient, the max pool's arg-max buffer): after passes
/// on another batch have filled every kept buffer with other data, the same input gives a fresh
/// model's bits, in inference and in eval, its gradients included; and another batch size in
/// between (no buffer fits) changes nothing either. Specs that do not build pass.
fn reuse_check(spec: &ModelSpec, batch: usize) -> Result<(), TestCaseError> {
    let Ok(mut fresh) = Sequential::<f32>::from_spec(spec, 7) else {
        return Ok(());
    };
    let fail = |e: Error| TestCaseError::fail(e.to_string());
    let mut model = Sequential::<f32>::from_spec(spec, 7).map_err(fail)?;
    let shape = model.input_shape().to_vec();
    let input = |b: usize, k: usize| {
        ArrayD::<f32>::from_shape_fn(IxDyn(&batched(b, &shape)), |i| {
            (((i.slice().iter().sum::<usize>() + k) % 7) as f32 - 3.0) * 0.25
        })
    };
    let (x, other) = (input(batch, 0), input(batch, 3));
    let grads = |m: &Sequential<f32>| {
        m.named_params()
            .into_iter()
            .map(|(_, p)| bits(&p.grad))
            .collect::<Vec<_>>()
    };
    // The reference: a fresh model.
    let infer = fresh.forward(x.view(), Mode::Infer).map_err(fail)?;
    let eval = fresh.forward(x.view(), Mode::Eval).map_err(fail)?;
    fresh.zero_grad();
    let ones = ArrayD::<f32>::ones(eval.raw_dim());
    let dx = fresh.backward(ones.view()).map_err(fail)?;
    let want_grads = grads(&fresh);
    prop_assert_eq!(bits(&infer), bits(&eval));
    // Another batch in both modes, with a backward pass, fills the kept buffers.
    model.forward(other.view(), Mode::Infer).map_err(fail)?;
    model.forward(other.view(), Mode::Eval).map_err(fail)?;
    model.backward(ones.view()).map_err(fail)?;
    model.forward(other.view(), Mode::Infer).map_err(fail)?;
    let again = model.forward(x.view(), Mode::Infer).map_err(fail)?;
    prop_assert_eq!(bits(&again), bits(&infer));
    model.forward(other.view(), Mode::Infer).map_err(fail)?;
    let again = model.forward(x.view(), Mode::Eval).map_err(fail)?;
    prop_assert_eq!(bits(&again), bits(&eval));
    model.zero_grad();
    let dx2 = model.backward(ones.view()).map_err(fail)?;
    prop_assert_eq!(bits(&dx2), bits(&dx));
    prop_assert_eq!(grads(&model), want_grads);
    // A different batch size in between.
    model
        .forward(input(batch + 2, 1).view(), Mode::Infer)
        .map_err(fail)?;
    let again = model.forward(x.view(), Mode::Infer).map_err(fail)?;
    prop_assert_eq!(bits(&again), bits(&infer));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random models: see [`reuse_check`].
    #[test]
    fn reused_buffers_never_change_a_result(spec in model_spec(), batch in 1usize..4) {
        reuse_check(&spec, batch)?;
    }
}

/// The same on models that surely have every kind that keeps a buffer: the splice model
/// (conv1d first, max pool, dropout, bidirectional LSTM with concat, flatten, dense) and one
/// with a second conv1d without bias (it keeps no training buffer), average pooling and a GRU.
#[test]
fn reused_buffers_never_change_a_result_on_fixed_models() {
    let two_convs = r#"{"input_shape": [30, 4], "layers": [
        {"type": "conv1d", "filters": 6, "kernel_size": 3, "activation": "relu"},
        {"type": "conv1d", "filters": 5, "kernel_size": 3, "use_bias": false, "activation": "tanh"},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "avgpool1d", "pool_size": 2},
        {"type": "bidirectional", "layer": {"type": "gru", "units": 4, "return_sequences": true}},
        {"type": "flatten"},
        {"type": "dense", "units": 3}]}"#;
    let splice =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/splice.json"))
            .expect("models/splice.json");
    for (name, text) in [("splice", splice.as_str()), ("two convs", two_convs)] {
        let spec = ModelSpec::from_json(text, name).expect(name);
        Sequential::<f32>::from_spec(&spec, 7).expect(name);
        for batch in [1, 3] {
            if let Err(e) = reuse_check(&spec, batch) {
                panic!("{name}, batch {batch}: {e}");
            }
        }
    }
}
