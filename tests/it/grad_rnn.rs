//! Finite-difference gradient checks (f64, worst relative error < 1e-6) for every recurrent cell
//! × return_sequences × {plain, bidirectional with every merge mode}, on the input and every
//! parameter, with random non-zero biases and a random uneven upstream gradient; plus the
//! stacked conv → pool → BiLSTM(seq) → BiGRU(last) → dense model.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::{check_layer, check_model, random_array, GradReport};
use seqgrad::layers::rnn::{Bidirectional, Direction, Recurrent};
use seqgrad::spec::{
    BidirectionalSpec, Conv1dSpec, DenseSpec, LayerSpec, MergeMode, PoolSpec, RecurrentSpec,
    RnnInit, RnnSpec,
};
use seqgrad::{Layer, Mode, Sequential};

const TOL: f64 = 1e-6;
const B: usize = 3;
const L: usize = 5;
const F: usize = 3;
const U: usize = 3;

fn cells() -> Vec<(&'static str, RecurrentSpec)> {
    let r = |act| RnnSpec {
        units: U,
        activation: act,
        ..Default::default()
    };
    vec![
        (
            "simple_rnn(tanh)",
            RecurrentSpec::SimpleRnn(r(Activation::Tanh)),
        ),
        (
            "simple_rnn(relu)",
            RecurrentSpec::SimpleRnn(r(Activation::Relu)),
        ),
        ("lstm", RecurrentSpec::Lstm(r(Activation::Tanh))),
        ("gru", RecurrentSpec::Gru(r(Activation::Tanh))),
    ]
}

fn with(spec: &RecurrentSpec, return_sequences: bool, init: RnnInit) -> RecurrentSpec {
    let mut s = spec.clone();
    match &mut s {
        RecurrentSpec::SimpleRnn(r) | RecurrentSpec::Lstm(r) | RecurrentSpec::Gru(r) => {
            r.return_sequences = return_sequences;
            r.init = init;
        }
    }
    s
}

/// Random non-zero biases so their effect (and the GRU's b_hn inside the reset product) shows.
fn randomise_biases(layer: &mut dyn Layer<f64>, seed: u64) {
    for (k, p) in layer.params_mut().into_iter().enumerate() {
        if p.name.starts_with("bias") {
            p.value = random_array(p.value.shape(), -0.5, 0.5, seed + k as u64);
        }
    }
}

fn check(layer: &mut dyn Layer<f64>, seed: u64) -> GradReport {
    randomise_biases(layer, seed);
    let out = layer.output_shape(&[L, F]).unwrap();
    let mut ys = vec![B];
    ys.extend(&out);
    let x = random_array(&[B, L, F], -1.0, 1.0, seed + 100);
    let dy = random_array(&ys, -1.0, 1.0, seed + 200);
    let r = check_layer(layer, &x, &dy, Mode::Train).unwrap();
    // An error of 0 from all-zero gradients checks nothing.
    assert!(r.zero_tensors.is_empty(), "dead check: {r}");
    r
}

#[test]
fn plain_cells_gradients() {
    let mut worst: f64 = 0.0;
    for (i, (name, cell)) in cells().iter().enumerate() {
        for rs in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let mut layer = Recurrent::<f64>::new(
                &with(cell, rs, RnnInit::Keras),
                &[L, F],
                Direction::Forward,
                &mut rng,
            )
            .unwrap();
            let r = check(&mut layer, 10 * i as u64 + rs as u64);
            assert_eq!(r.params.len(), 4);
            assert!(r.worst() < TOL, "{name} return_sequences={rs}: {r}");
            worst = worst.max(r.worst());
        }
    }
    eprintln!("plain cells: worst relative error {worst:.2e}");
}

#[test]
fn reverse_direction_gradients() {
    for (i, (name, cell)) in cells().iter().enumerate() {
        for rs in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let mut layer = Recurrent::<f64>::new(
                &with(cell, rs, RnnInit::Keras),
                &[L, F],
                Direction::Reverse,
                &mut rng,
            )
            .unwrap();
            assert!(layer.params()[0].name.ends_with("_reverse"));
            let r = check(&mut layer, 7 + i as u64);
            assert!(r.worst() < TOL, "{name} reverse return_sequences={rs}: {r}");
        }
    }
}

#[test]
fn bidirectional_gradients_every_merge_mode() {
    let mut worst: f64 = 0.0;
    for (i, (name, cell)) in cells().iter().enumerate() {
        for rs in [false, true] {
            for merge in [
                MergeMode::Concat,
                MergeMode::Sum,
                MergeMode::Mul,
                MergeMode::Ave,
            ] {
                let spec = BidirectionalSpec {
                    layer: with(cell, rs, RnnInit::Keras),
                    merge_mode: merge,
                };
                let mut rng = ChaCha8Rng::seed_from_u64(i as u64 + 50);
                let mut layer = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
                let r = check(&mut layer, 1000 + 10 * i as u64 + rs as u64);
                assert_eq!(r.params.len(), 8);
                assert!(
                    r.worst() < TOL,
                    "bidirectional({name}) {merge:?} return_sequences={rs}: {r}"
                );
                worst = worst.max(r.worst());
            }
        }
    }
    eprintln!("bidirectional: worst relative error {worst:.2e}");
}

#[test]
fn pytorch_init_builds_and_checks() {
    for (i, (name, cell)) in cells().iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        let spec = BidirectionalSpec {
            layer: with(cell, true, RnnInit::Pytorch),
            merge_mode: MergeMode::Concat,
        };
        let mut layer = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
        let bound = 1.0 / (U as f64).sqrt();
        for p in layer.params() {
            assert!(
                p.value.iter().all(|v| v.abs() <= bound),
                "{name} {}",
                p.name
            );
            assert!(p.value.iter().any(|&v| v != 0.0), "{name} {}", p.name);
        }
        // Check with PyTorch's (already non-zero) biases.
        let x = random_array(&[B, L, F], -1.0, 1.0, 5);
        let dy = random_array(&[B, L, 2 * U], -1.0, 1.0, 6);
        let r = check_layer(&mut layer, &x, &dy, Mode::Eval).unwrap();
        assert!(r.worst() < TOL, "{name} pytorch init: {r}");
        assert!(
            r.zero_tensors.is_empty(),
            "{name} pytorch init: dead check: {r}"
        );
    }
}

/// conv1d → maxpool1d → bidirectional(lstm, return_sequences) → bidirectional(gru, last) → dense.
#[test]
fn stacked_conv_pool_bilstm_bigru_dense() {
    let rnn = |units, rs| RnnSpec {
        units,
        return_sequences: rs,
        ..Default::default()
    };
    let spec_model = Sequential::<f64>::builder(&[12, 4])
        .add(LayerSpec::Conv1d(Conv1dSpec {
            filters: 3,
            kernel_size: 3,
            activation: Activation::Relu,
            ..Default::default()
        }))
        .add(LayerSpec::Maxpool1d(PoolSpec {
            pool_size: 2,
            strides: None,
            ..Default::default()
        }))
        .add(LayerSpec::Bidirectional(BidirectionalSpec {
            layer: RecurrentSpec::Lstm(rnn(3, true)),
            merge_mode: MergeMode::Concat,
        }))
        .add(LayerSpec::Bidirectional(BidirectionalSpec {
            layer: RecurrentSpec::Gru(rnn(2, false)),
            merge_mode: MergeMode::Concat,
        }))
        .add(LayerSpec::Dense(DenseSpec {
            units: 2,
            ..Default::default()
        }));
    let mut model: Sequential<f64> = spec_model.build(4).unwrap();
    assert_eq!(
        model.layer_shapes(),
        &[vec![10, 3], vec![5, 3], vec![5, 6], vec![4], vec![2]]
    );
    for (k, (name, p)) in model.named_params_mut().into_iter().enumerate() {
        if name.contains("bias") {
            p.value = random_array(p.value.shape(), -0.3, 0.3, 40 + k as u64);
        }
    }
    let x = random_array(&[2, 12, 4], -1.0, 1.0, 1);
    let dy = random_array(&[2, 2], -1.0, 1.0, 2);
    let r = check_model(&mut model, &x, &dy, Mode::Train).unwrap();
    assert!(
        r.params
            .iter()
            .any(|(n, _)| n == "layers.3.weight_hh_l0_reverse"),
        "{r}"
    );
    assert!(r.worst() < TOL, "stacked: {r}");
    assert!(r.zero_tensors.is_empty(), "stacked: dead check: {r}");
    eprintln!("stacked: worst relative error {:.2e}", r.worst());
}
