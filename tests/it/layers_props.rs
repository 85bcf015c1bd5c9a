//! Property, value and shape tests of the core layers: conv1d against a hand-computed example,
//! gradient accumulation, overlapping pool windows adding their gradients, max ties, Keras
//! `same` lengths, dropout masks, errors, f32 and thread-count determinism.

use ndarray::{array, ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::random_array;
use seqgrad::layers::activation_layer::ActivationLayer;
use seqgrad::layers::conv1d::Conv1d;
use seqgrad::layers::dropout::Dropout;
use seqgrad::layers::flatten::Flatten;
use seqgrad::layers::global_pool::GlobalPool1d;
use seqgrad::layers::pool::{Pool1d, PoolOp};
use seqgrad::spec::{
    ActivationSpec, Conv1dSpec, DenseSpec, DropoutSpec, EmptySpec, LayerSpec, Padding, PoolSpec,
};
use seqgrad::{Error, Layer, Mode, Sequential, ShapeIssue};

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(1)
}

fn conv_spec(filters: usize, k: usize, s: usize, d: usize, padding: Padding) -> Conv1dSpec {
    Conv1dSpec {
        filters,
        kernel_size: k,
        strides: s,
        dilation_rate: d,
        padding,
        ..Default::default()
    }
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

// ---------------------------------------------------------------- conv1d values and shapes

/// x (1, 3, 2) = [[1, 10], [2, 20], [3, 30]], W[0, 0, :] = [1, 2], W[0, 1, :] = [0.5, −1],
/// b = 0.25. Valid, stride 1: y[t] = b + 1·x[t,0] + 2·x[t+1,0] + 0.5·x[t,1] − 1·x[t+1,1]:
/// y[0] = 0.25 + 1 + 4 + 5 − 20 = −9.75, y[1] = 0.25 + 2 + 6 + 10 − 30 = −11.75.
/// Same (L=3, k=2: total pad 1, left 0, right 1): y[2] = 0.25 + 3 + 0 + 15 − 0 = 18.25.
/// Valid with dilation 2 (taps t and t+2): y[0] = 0.25 + 1 + 6 + 5 − 30 = −17.75.
#[test]
fn conv1d_forward_matches_hand_computed_example() {
    let x = array![[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]].into_dyn();
    let set = |c: &mut Conv1d<f64>| {
        for p in c.params_mut() {
            if p.name == "weight" {
                p.value = array![[[1.0, 2.0], [0.5, -1.0]]].into_dyn();
            } else {
                p.value = array![0.25].into_dyn();
            }
        }
    };
    for (padding, d, expected) in [
        (Padding::Valid, 1, vec![-9.75, -11.75]),
        (Padding::Same, 1, vec![-9.75, -11.75, 18.25]),
        (Padding::Valid, 2, vec![-17.75]),
    ] {
        let mut c =
            Conv1d::<f64>::new(&conv_spec(1, 2, 1, d, padding), &[3, 2], &mut rng()).unwrap();
        assert_eq!(
            c.params()[0].value.shape(),
            &[1, 2, 2],
            "PyTorch layout (filters, in, kernel)"
        );
        set(&mut c);
        let y = c.forward(x.view(), Mode::Eval).unwrap();
        let want = ArrayD::from_shape_vec(IxDyn(&[1, expected.len(), 1]), expected).unwrap();
        assert!(max_abs_diff(&y, &want) < 1e-12, "{padding:?} d={d}: {y}");
    }
}

#[test]
fn conv1d_same_with_stride_pads_like_keras() {
    // L=5, k=3, s=2, same: out = 3, total pad = (3−1)·2 + 3 − 5 = 2, left 1, right 1.
    // A weight of ones with one channel sums each window: [x0+x1, x1+x2+x3, x3+x4].
    let mut c = Conv1d::<f64>::new(
        &Conv1dSpec {
            use_bias: false,
            ..conv_spec(1, 3, 2, 1, Padding::Same)
        },
        &[5, 1],
        &mut rng(),
    )
    .unwrap();
    c.params_mut()[0].value.fill(1.0);
    let x = array![[[1.0], [2.0], [4.0], [8.0], [16.0]]].into_dyn();
    let y = c.forward(x.view(), Mode::Eval).unwrap();
    assert_eq!(y, array![[[3.0], [14.0], [24.0]]].into_dyn());
    // L=6, k=4, s=1, same: total pad 3, left 1, right 2 (the extra goes right, as Keras/TF).
    let mut c = Conv1d::<f64>::new(
        &Conv1dSpec {
            use_bias: false,
            ..conv_spec(1, 4, 1, 1, Padding::Same)
        },
        &[6, 1],
        &mut rng(),
    )
    .unwrap();
    c.params_mut()[0].value.fill(1.0);
    let x = array![[[1.0], [2.0], [4.0], [8.0], [16.0], [32.0]]].into_dyn();
    let y = c.forward(x.view(), Mode::Eval).unwrap();
    assert_eq!(
        y,
        array![[[7.0], [15.0], [30.0], [60.0], [56.0], [48.0]]].into_dyn()
    );
}

#[test]
fn conv1d_output_shapes() {
    let cases = [
        // (len, k, s, d, padding, expected out len)
        (10, 3, 2, 1, Padding::Same, 5),
        (10, 3, 1, 1, Padding::Same, 10),
        (11, 3, 3, 2, Padding::Same, 4),
        (1, 5, 1, 1, Padding::Same, 1),
        (10, 3, 1, 1, Padding::Valid, 8),
        (10, 3, 2, 1, Padding::Valid, 4),
        (10, 3, 3, 2, Padding::Valid, 2),
        (10, 10, 1, 1, Padding::Valid, 1),
        (40, 10, 1, 1, Padding::Valid, 31),
        (60, 26, 1, 1, Padding::Valid, 35),
    ];
    for (len, k, s, d, padding, out) in cases {
        let c = Conv1d::<f32>::new(&conv_spec(8, k, s, d, padding), &[len, 4], &mut rng()).unwrap();
        assert_eq!(
            c.output_shape(&[len, 4]).unwrap(),
            vec![out, 8],
            "L={len} k={k} s={s} d={d} {padding:?}"
        );
        let y = Conv1d::<f32>::new(&conv_spec(8, k, s, d, padding), &[len, 4], &mut rng())
            .unwrap()
            .forward(ArrayD::zeros(IxDyn(&[2, len, 4])).view(), Mode::Eval)
            .unwrap();
        assert_eq!(y.shape(), &[2, out, 8]);
    }
}

#[test]
fn conv1d_shape_errors_name_both_lengths() {
    // `new` checks the geometry before allocating, so a layer built for a longer input is used
    // to ask `output_shape` about the short one; `new` on the short input gives the same error.
    let c = Conv1d::<f64>::new(
        &conv_spec(4, 20, 1, 1, Padding::Valid),
        &[30, 4],
        &mut rng(),
    )
    .unwrap();
    let e = c.output_shape(&[10, 4]).unwrap_err();
    assert_eq!(
        Conv1d::<f64>::new(
            &conv_spec(4, 20, 1, 1, Padding::Valid),
            &[10, 4],
            &mut rng()
        )
        .err(),
        Some(e.clone())
    );
    assert_eq!(
        e,
        ShapeIssue::TooShort {
            what: "kernel_size".into(),
            needed: 20,
            got: 10
        }
    );
    assert_eq!(
        e.to_string(),
        "kernel_size 20 is longer than the input length 10"
    );
    let c =
        Conv1d::<f64>::new(&conv_spec(4, 4, 1, 3, Padding::Valid), &[20, 4], &mut rng()).unwrap();
    let msg = c.output_shape(&[9, 4]).unwrap_err().to_string();
    assert!(
        msg.contains("10") && msg.contains(" 9") && msg.contains("dilation_rate 3"),
        "{msg}"
    );
    // Same padding never is too short.
    let c =
        Conv1d::<f64>::new(&conv_spec(4, 20, 1, 1, Padding::Same), &[10, 4], &mut rng()).unwrap();
    assert_eq!(c.output_shape(&[10, 4]).unwrap(), vec![10, 4]);
    // Not a sequence.
    assert_eq!(
        Conv1d::<f64>::new(&conv_spec(4, 3, 1, 1, Padding::Valid), &[12], &mut rng()).err(),
        Some(ShapeIssue::NeedsSequence { got: vec![12] })
    );
    // Invalid options.
    for spec in [
        conv_spec(0, 3, 1, 1, Padding::Valid),
        conv_spec(2, 0, 1, 1, Padding::Valid),
        conv_spec(2, 3, 0, 1, Padding::Valid),
        conv_spec(2, 3, 1, 0, Padding::Valid),
    ] {
        assert!(
            matches!(
                Conv1d::<f64>::new(&spec, &[10, 4], &mut rng()),
                Err(ShapeIssue::Invalid(_))
            ),
            "{spec:?}"
        );
    }
}

#[test]
fn conv1d_init_is_keras_glorot_uniform() {
    let c = Conv1d::<f64>::new(
        &conv_spec(64, 9, 1, 1, Padding::Valid),
        &[50, 16],
        &mut rng(),
    )
    .unwrap();
    let limit = (6.0f64 / (16.0 * 9.0 + 64.0 * 9.0)).sqrt();
    let w = &c.params()[0].value;
    assert_eq!(w.shape(), &[64, 16, 9]);
    let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max <= limit && max > 0.95 * limit, "{max} vs {limit}");
    assert!(c.params()[1].value.iter().all(|&b| b == 0.0));
    assert_eq!(c.param_count(), 64 * 16 * 9 + 64);
}

#[test]
fn conv1d_backward_twice_doubles_parameter_gradients() {
    for padding in [Padding::Valid, Padding::Same] {
        let mut c = Conv1d::<f64>::new(
            &Conv1dSpec {
                activation: Activation::Tanh,
                ..conv_spec(3, 3, 2, 2, padding)
            },
            &[11, 2],
            &mut rng(),
        )
        .unwrap();
        let x = random_array(&[3, 11, 2], -1.0, 1.0, 1);
        let y = c.forward(x.view(), Mode::Train).unwrap();
        let dy = random_array(y.shape(), -1.0, 1.0, 2);
        let dx1 = c.backward(dy.view()).unwrap();
        let once: Vec<_> = c.params().iter().map(|p| p.grad.clone()).collect();
        assert!(once.iter().all(|g| g.iter().any(|&v| v != 0.0)));
        let dx2 = c.backward(dy.view()).unwrap();
        assert_eq!(dx1, dx2, "input gradient does not accumulate");
        for (p, g1) in c.params().iter().zip(once) {
            assert!(max_abs_diff(&p.grad, &(&g1 * 2.0)) < 1e-12, "{}", p.name);
        }
        c.zero_grad();
        assert!(c.params().iter().all(|p| p.grad.iter().all(|&v| v == 0.0)));
    }
}

#[test]
fn conv1d_is_bit_identical_across_thread_counts() {
    // Enough rows (12·58 = 696) for several GEMM blocks.
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut c = Conv1d::<f32>::new(
                &Conv1dSpec {
                    activation: Activation::Relu,
                    ..conv_spec(16, 3, 1, 1, Padding::Valid)
                },
                &[60, 4],
                &mut rng(),
            )
            .unwrap();
            let x = random_array(&[12, 60, 4], -1.0, 1.0, 3).mapv(|v| v as f32);
            let y = c.forward(x.view(), Mode::Train).unwrap();
            let dy = random_array(y.shape(), -1.0, 1.0, 4).mapv(|v| v as f32);
            let dx = c.backward(dy.view()).unwrap();
            (
                y,
                dx,
                c.params()[0].grad.clone(),
                c.params()[1].grad.clone(),
            )
        })
    };
    assert!(run(1) == run(3));
}

#[test]
fn f32_and_f64_agree() {
    let build = || {
        Sequential::<f64>::builder(&[20, 4])
            .add(LayerSpec::Conv1d(Conv1dSpec {
                activation: Activation::Relu,
                ..conv_spec(6, 5, 1, 1, Padding::Same)
            }))
            .add(LayerSpec::Avgpool1d(PoolSpec {
                pool_size: 3,
                strides: Some(2),
                padding: Padding::Same,
            }))
            .add(LayerSpec::Maxpool1d(PoolSpec::default()))
            .add(LayerSpec::GlobalAvgpool1d(EmptySpec {}))
            .add(LayerSpec::Activation(ActivationSpec {
                activation: Activation::Softmax,
            }))
    };
    let mut m64: Sequential<f64> = build().build(3).unwrap();
    let mut m32: Sequential<f32> = build().build(3).unwrap();
    assert_eq!(m64.head(), Some(Activation::Softmax));
    let x = random_array(&[4, 20, 4], -1.0, 1.0, 9);
    let y64 = m64.forward(x.view(), Mode::Train).unwrap();
    let y32 = m32
        .forward(x.mapv(|v| v as f32).view(), Mode::Train)
        .unwrap();
    assert!(max_abs_diff(&y64, &y32.mapv(|v| v as f64)) < 1e-5);
    let dy = random_array(y64.shape(), -1.0, 1.0, 1);
    let dx64 = m64.backward(dy.view()).unwrap();
    let dx32 = m32.backward(dy.mapv(|v| v as f32).view()).unwrap();
    assert!(max_abs_diff(&dx64, &dx32.mapv(|v| v as f64)) < 1e-4);
}

// ---------------------------------------------------------------- pools

fn pool(op: PoolOp, p: usize, s: Option<usize>, padding: Padding, input: &[usize]) -> Pool1d<f64> {
    Pool1d::new(
        op,
        &PoolSpec {
            pool_size: p,
            strides: s,
            padding,
        },
        input,
    )
    .unwrap()
}

#[test]
fn overlapping_max_windows_add_their_gradients() {
    // pool 3, stride 1 on [0, 1, 9, 2, 3]: all three windows have their max at index 2, so it
    // receives dy0 + dy1 + dy2 = 1 + 2 + 4 = 7.
    let mut p = pool(PoolOp::Max, 3, Some(1), Padding::Valid, &[5, 1]);
    let x = array![[[0.0], [1.0], [9.0], [2.0], [3.0]]].into_dyn();
    let y = p.forward(x.view(), Mode::Train).unwrap();
    assert_eq!(y, array![[[9.0], [9.0], [9.0]]].into_dyn());
    let dx = p
        .backward(array![[[1.0], [2.0], [4.0]]].into_dyn().view())
        .unwrap();
    assert_eq!(dx, array![[[0.0], [0.0], [7.0], [0.0], [0.0]]].into_dyn());

    // pool 4, stride 2 over two channels: position 3 is the max of windows 0 and 1 in channel 0;
    // in channel 1 the windows' maxima differ.
    let mut p = pool(PoolOp::Max, 4, Some(2), Padding::Valid, &[6, 2]);
    let x = array![[
        [0.0, 6.0],
        [1.0, 1.0],
        [2.0, 2.0],
        [8.0, 3.0],
        [3.0, 7.0],
        [4.0, 5.0]
    ]]
    .into_dyn();
    p.forward(x.view(), Mode::Train).unwrap();
    let dx = p
        .backward(array![[[1.0, 10.0], [100.0, 1000.0]]].into_dyn().view())
        .unwrap();
    assert_eq!(
        dx,
        array![[
            [0.0, 10.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [101.0, 0.0],
            [0.0, 1000.0],
            [0.0, 0.0]
        ]]
        .into_dyn()
    );
}

#[test]
fn overlapping_avg_windows_add_their_gradients() {
    // pool 2, stride 1 on 3 steps: dx = [dy0/2, dy0/2 + dy1/2, dy1/2].
    let mut p = pool(PoolOp::Avg, 2, Some(1), Padding::Valid, &[3, 1]);
    p.forward(array![[[1.0], [2.0], [3.0]]].into_dyn().view(), Mode::Train)
        .unwrap();
    let dx = p
        .backward(array![[[1.0], [2.0]]].into_dyn().view())
        .unwrap();
    assert_eq!(dx, array![[[0.5], [1.5], [1.0]]].into_dyn());
}

#[test]
fn max_ties_send_the_gradient_to_the_first_maximum() {
    let mut p = pool(PoolOp::Max, 3, None, Padding::Valid, &[3, 1]);
    p.forward(array![[[5.0], [5.0], [5.0]]].into_dyn().view(), Mode::Train)
        .unwrap();
    let dx = p.backward(array![[[1.0]]].into_dyn().view()).unwrap();
    assert_eq!(dx, array![[[1.0], [0.0], [0.0]]].into_dyn());
    let mut g = GlobalPool1d::<f64>::new(PoolOp::Max, &[3, 1]).unwrap();
    g.forward(array![[[1.0], [5.0], [5.0]]].into_dyn().view(), Mode::Train)
        .unwrap();
    let dx = g.backward(array![[2.0]].into_dyn().view()).unwrap();
    assert_eq!(dx, array![[[0.0], [2.0], [0.0]]].into_dyn());
}

#[test]
fn same_padding_pools_ignore_padded_positions() {
    // L=5, pool 3, stride 1, same: total pad 2, left 1. Avg divides by the real count (Keras/TF):
    // [1,2,3,4,5] -> [(1+2)/2, 2, 3, 4, (4+5)/2].
    let x = array![[[1.0], [2.0], [3.0], [4.0], [5.0]]].into_dyn();
    let mut p = pool(PoolOp::Avg, 3, Some(1), Padding::Same, &[5, 1]);
    let y = p.forward(x.view(), Mode::Train).unwrap();
    assert_eq!(y, array![[[1.5], [2.0], [3.0], [4.0], [4.5]]].into_dyn());
    // Max ignores padding even when every real value is negative.
    let mut p = pool(PoolOp::Max, 2, None, Padding::Same, &[5, 1]);
    let y = p.forward((-&x).view(), Mode::Train).unwrap();
    assert_eq!(y, array![[[-1.0], [-3.0], [-5.0]]].into_dyn());
}

#[test]
fn pool_output_shapes_and_errors() {
    for (op, len, p, s, padding, out) in [
        (PoolOp::Max, 10, 2, None, Padding::Valid, 5),
        (PoolOp::Max, 11, 2, None, Padding::Valid, 5),
        (PoolOp::Max, 11, 2, None, Padding::Same, 6),
        (PoolOp::Avg, 10, 3, Some(2), Padding::Same, 5),
        (PoolOp::Avg, 10, 3, Some(2), Padding::Valid, 4),
        (PoolOp::Max, 31, 5, Some(5), Padding::Valid, 6),
        (PoolOp::Avg, 3, 5, None, Padding::Same, 1),
    ] {
        let l = pool(op, p, s, padding, &[len, 3]);
        assert_eq!(
            l.output_shape(&[len, 3]).unwrap(),
            vec![out, 3],
            "{op:?} L={len} p={p} s={s:?} {padding:?}"
        );
    }
    let l = pool(PoolOp::Max, 5, None, Padding::Valid, &[3, 3]);
    assert_eq!(
        l.output_shape(&[3, 3]).unwrap_err().to_string(),
        "pool_size 5 is longer than the input length 3"
    );
    assert_eq!(
        Pool1d::<f64>::new(PoolOp::Max, &PoolSpec::default(), &[7]).err(),
        Some(ShapeIssue::NeedsSequence { got: vec![7] })
    );
    let zero = PoolSpec {
        pool_size: 0,
        ..Default::default()
    };
    assert!(matches!(
        Pool1d::<f64>::new(PoolOp::Avg, &zero, &[7, 2]),
        Err(ShapeIssue::Invalid(_))
    ));
    let zero = PoolSpec {
        strides: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        Pool1d::<f64>::new(PoolOp::Avg, &zero, &[7, 2]),
        Err(ShapeIssue::Invalid(_))
    ));
}

#[test]
fn global_pools_values_and_shapes() {
    let x = array![[[1.0, -4.0], [3.0, -2.0], [2.0, -3.0]]].into_dyn();
    let mut g = GlobalPool1d::<f64>::new(PoolOp::Max, &[3, 2]).unwrap();
    assert_eq!(
        g.forward(x.view(), Mode::Eval).unwrap(),
        array![[3.0, -2.0]].into_dyn()
    );
    let mut g = GlobalPool1d::<f64>::new(PoolOp::Avg, &[3, 2]).unwrap();
    assert_eq!(
        g.forward(x.view(), Mode::Eval).unwrap(),
        array![[2.0, -3.0]].into_dyn()
    );
    assert_eq!(g.output_shape(&[3, 2]).unwrap(), vec![2]);
    assert!(matches!(
        g.output_shape(&[6]),
        Err(ShapeIssue::NeedsSequence { .. })
    ));
}

// ---------------------------------------------------------------- flatten

#[test]
fn flatten_is_time_major() {
    let mut f = Flatten::<f64>::new(&[3, 2]).unwrap();
    assert_eq!(f.output_shape(&[3, 2]).unwrap(), vec![6]);
    assert_eq!(
        f.output_shape(&[5]).unwrap(),
        vec![5],
        "flatten of (features) is the identity"
    );
    let x = array![[[0.0, 1.0], [10.0, 11.0], [20.0, 21.0]]].into_dyn();
    let y = f.forward(x.view(), Mode::Train).unwrap();
    assert_eq!(
        y,
        array![[0.0, 1.0, 10.0, 11.0, 20.0, 21.0]].into_dyn(),
        "index t·C + c"
    );
    let dx = f.backward(y.view()).unwrap();
    assert_eq!(dx, x);
}

// ---------------------------------------------------------------- dropout

fn dropout(rate: f64, seed: u64) -> Dropout<f64> {
    Dropout::new(&DropoutSpec { rate }, seed).unwrap()
}

#[test]
fn dropout_eval_is_identity() {
    let mut d = dropout(0.5, 1);
    let x = random_array(&[4, 7, 3], -1.0, 1.0, 1);
    assert_eq!(d.forward(x.view(), Mode::Eval).unwrap(), x);
    let dy = random_array(&[4, 7, 3], -1.0, 1.0, 2);
    assert_eq!(d.backward(dy.view()).unwrap(), dy);
}

#[test]
fn dropout_train_keeps_about_one_minus_rate_and_scales() {
    for rate in [0.2, 0.5, 0.8] {
        let mut d = dropout(rate, 7);
        let x = ArrayD::from_elem(IxDyn(&[100, 1000]), 1.0);
        let y = d.forward(x.view(), Mode::Train).unwrap();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
        // 100 000 Bernoulli draws: standard deviation ≤ 0.0016.
        assert!(
            (kept - (1.0 - rate)).abs() < 0.01,
            "rate {rate}: kept {kept}"
        );
        let scale = 1.0 / (1.0 - rate);
        assert!(y.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-12));
        // Backward uses the same mask.
        let dy = ArrayD::from_elem(IxDyn(&[100, 1000]), 2.0);
        let dx = d.backward(dy.view()).unwrap();
        assert_eq!(dx, &y * 2.0);
    }
}

#[test]
fn dropout_mask_is_a_function_of_seed_and_step() {
    let x = random_array(&[8, 50], 0.5, 1.0, 3);
    let run = |seed: u64, step: u64| {
        let mut d = dropout(0.5, seed);
        d.set_step(step);
        d.forward(x.view(), Mode::Train).unwrap()
    };
    assert_eq!(run(1, 4), run(1, 4));
    assert_ne!(run(1, 4), run(1, 5));
    assert_ne!(run(1, 4), run(2, 4));
    // A layer gives the same mask on every forward pass until the step changes.
    let mut d = dropout(0.5, 1);
    d.set_step(4);
    let a = d.forward(x.view(), Mode::Train).unwrap();
    assert_eq!(d.forward(x.view(), Mode::Train).unwrap(), a);
    assert_eq!(a, run(1, 4));
    // Two dropout layers of one model get different seeds, hence different masks.
    let mut m: Sequential<f64> = Sequential::<f64>::builder(&[50])
        .add(LayerSpec::Dropout(DropoutSpec { rate: 0.5 }))
        .add(LayerSpec::Dropout(DropoutSpec { rate: 0.0 }))
        .build(1)
        .unwrap();
    let mut m2: Sequential<f64> = Sequential::<f64>::builder(&[50])
        .add(LayerSpec::Dropout(DropoutSpec { rate: 0.0 }))
        .add(LayerSpec::Dropout(DropoutSpec { rate: 0.5 }))
        .build(1)
        .unwrap();
    assert_ne!(
        m.forward(x.view(), Mode::Train).unwrap(),
        m2.forward(x.view(), Mode::Train).unwrap()
    );
}

#[test]
fn dropout_rate_must_be_in_unit_interval() {
    for rate in [1.0, 1.5, -0.1, f64::NAN] {
        let e = Dropout::<f64>::new(&DropoutSpec { rate }, 0).err();
        assert!(
            matches!(e, Some(ShapeIssue::Invalid(ref m)) if m.contains("[0, 1)")),
            "{rate}: {e:?}"
        );
    }
    let d = dropout(0.0, 0);
    assert_eq!(d.output_shape(&[5, 3]).unwrap(), vec![5, 3]);
    assert_eq!(d.output_shape(&[5]).unwrap(), vec![5]);
}

// ---------------------------------------------------------------- activation layer

#[test]
fn activation_layer_values_and_head() {
    let x = array![[-1.0, 0.0, 2.0]].into_dyn();
    for (act, want) in [
        (Activation::Linear, array![[-1.0, 0.0, 2.0]]),
        (Activation::Relu, array![[0.0, 0.0, 2.0]]),
    ] {
        let mut a = ActivationLayer::<f64>::new(&ActivationSpec { activation: act }, &[3]).unwrap();
        assert_eq!(a.forward(x.view(), Mode::Eval).unwrap(), want.into_dyn());
    }
    let mut a = ActivationLayer::<f64>::new(
        &ActivationSpec {
            activation: Activation::Softmax,
        },
        &[2, 3],
    )
    .unwrap();
    let y = a
        .forward(random_array(&[2, 2, 3], -3.0, 3.0, 1).view(), Mode::Eval)
        .unwrap();
    for row in y.lanes(ndarray::Axis(2)) {
        assert!(
            (row.sum() - 1.0).abs() < 1e-12,
            "softmax over the last axis"
        );
    }
    assert_eq!(a.take_output_activation(), Some(Activation::Softmax));
    assert_eq!(Layer::<f64>::output_shape(&a, &[2, 3]).unwrap(), vec![2, 3]);
    assert_eq!(Layer::<f64>::output_shape(&a, &[7]).unwrap(), vec![7]);
    let mut r = ActivationLayer::<f64>::new(
        &ActivationSpec {
            activation: Activation::Relu,
        },
        &[3],
    )
    .unwrap();
    assert_eq!(r.take_output_activation(), None);
    // A model ending in a sigmoid activation layer or a sigmoid conv gets a sigmoid head.
    let m: Sequential<f32> = Sequential::<f64>::builder(&[10, 4])
        .add(LayerSpec::Conv1d(Conv1dSpec {
            activation: Activation::Sigmoid,
            ..conv_spec(2, 3, 1, 1, Padding::Valid)
        }))
        .build(0)
        .unwrap();
    assert_eq!(m.head(), Some(Activation::Sigmoid));
}

// ---------------------------------------------------------------- every layer

#[test]
fn backward_without_forward_is_an_error_for_every_layer() {
    let layers: Vec<Box<dyn Layer<f64>>> = vec![
        Box::new(Conv1d::new(&conv_spec(2, 3, 1, 1, Padding::Valid), &[8, 2], &mut rng()).unwrap()),
        Box::new(pool(PoolOp::Max, 2, None, Padding::Valid, &[8, 2])),
        Box::new(pool(PoolOp::Avg, 2, None, Padding::Valid, &[8, 2])),
        Box::new(GlobalPool1d::new(PoolOp::Max, &[8, 2]).unwrap()),
        Box::new(GlobalPool1d::new(PoolOp::Avg, &[8, 2]).unwrap()),
        Box::new(Flatten::new(&[8, 2]).unwrap()),
        Box::new(dropout(0.5, 0)),
        Box::new(
            ActivationLayer::new(
                &ActivationSpec {
                    activation: Activation::Tanh,
                },
                &[8, 2],
            )
            .unwrap(),
        ),
    ];
    let kinds = [
        "conv1d",
        "maxpool1d",
        "avgpool1d",
        "global_maxpool1d",
        "global_avgpool1d",
        "flatten",
        "dropout",
        "activation",
    ];
    for (mut l, kind) in layers.into_iter().zip(kinds) {
        assert_eq!(l.kind(), kind);
        let dy = ArrayD::zeros(IxDyn(&[1, 8, 2]));
        match l.backward(dy.view()) {
            Err(Error::NoForward { layer }) => assert_eq!(layer, kind),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[test]
fn model_builds_danq_like_stack_and_reports_conv_errors_with_hints() {
    let m: Sequential<f32> = Sequential::<f64>::builder(&[60, 4])
        .add(LayerSpec::Conv1d(Conv1dSpec {
            activation: Activation::Relu,
            ..conv_spec(32, 13, 1, 1, Padding::Valid)
        }))
        .add(LayerSpec::Maxpool1d(PoolSpec {
            pool_size: 4,
            strides: Some(4),
            padding: Padding::Valid,
        }))
        .add(LayerSpec::Dropout(DropoutSpec { rate: 0.2 }))
        .add(LayerSpec::Flatten(EmptySpec {}))
        .add(LayerSpec::Dense(DenseSpec {
            units: 2,
            activation: Activation::Softmax,
            use_bias: true,
        }))
        .build(0)
        .unwrap();
    assert_eq!(
        m.layer_shapes(),
        &[vec![48, 32], vec![12, 32], vec![12, 32], vec![384], vec![2]]
    );
    assert_eq!(m.param_count(), 32 * 4 * 13 + 32 + 384 * 2 + 2);
    assert_eq!(m.named_params()[0].0, "layers.0.weight");

    let err = Sequential::<f32>::builder(&[30, 4])
        .add(LayerSpec::Flatten(EmptySpec {}))
        .add(LayerSpec::Conv1d(conv_spec(4, 3, 1, 1, Padding::Valid)))
        .build::<f32>(0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("layer #1 (conv1d)") && err.contains("(120)") && err.contains("Flatten (#0)"),
        "{err}"
    );

    let err = Sequential::<f32>::builder(&[30, 4])
        .add(LayerSpec::Maxpool1d(PoolSpec {
            pool_size: 5,
            strides: None,
            padding: Padding::Valid,
        }))
        .add(LayerSpec::Conv1d(conv_spec(4, 8, 1, 1, Padding::Valid)))
        .build::<f32>(0)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "layer #1 (conv1d): kernel_size 8 is longer than the input length 6"
    );
}
