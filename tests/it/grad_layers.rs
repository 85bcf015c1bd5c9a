//! Finite-difference gradient checks (f64, worst relative error < 1e-6, random uneven upstream
//! gradient) for every core layer and every option: conv1d, max/avg pooling, global pooling,
//! flatten, dropout, the activation layer, layer_norm, and a small stacked model.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::{check_layer, check_model, random_array, GradReport};
use seqgrad::layers::activation_layer::ActivationLayer;
use seqgrad::layers::conv1d::Conv1d;
use seqgrad::layers::dropout::Dropout;
use seqgrad::layers::flatten::Flatten;
use seqgrad::layers::global_pool::GlobalPool1d;
use seqgrad::layers::layer_norm::{LayerNorm, LayerNormSpec};
use seqgrad::layers::pool::{Pool1d, PoolOp};
use seqgrad::spec::{
    ActivationSpec, Conv1dSpec, DenseSpec, DropoutSpec, EmptySpec, LayerSpec, Padding, PoolSpec,
};
use seqgrad::{Layer, Mode, Sequential};

const TOL: f64 = 1e-6;

const ACTS: [Activation; 5] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softmax,
];

/// Tracks the worst error seen by a test, printed at the end (`cargo test -- --nocapture`).
struct Worst(f64, String);

impl Worst {
    fn new() -> Self {
        Worst(0.0, String::new())
    }
    fn see(&mut self, what: &str, r: &GradReport) {
        assert!(r.worst() < TOL, "{what}: {r}");
        // An error of 0 from all-zero gradients checks nothing.
        assert!(r.zero_tensors.is_empty(), "{what}: dead check: {r}");
        if r.worst() >= self.0 {
            self.0 = r.worst();
            self.1 = format!("{what}: {r}");
        }
    }
    fn print(&self, test: &str) {
        println!("{test}: worst {:.2e} ({})", self.0, self.1);
    }
}

fn with_batch(batch: usize, shape: &[usize]) -> Vec<usize> {
    let mut s = vec![batch];
    s.extend_from_slice(shape);
    s
}

/// Distinct values (a shuffled grid spaced 0.05 apart, shifted), so no two inputs of a max
/// window are within a finite-difference step of each other.
fn distinct_array(shape: &[usize], seed: u64) -> ndarray::ArrayD<f64> {
    let n: usize = shape.iter().product();
    let mut vals: Vec<f64> = (0..n).map(|i| i as f64 * 0.05 - n as f64 * 0.025).collect();
    vals.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), vals).unwrap()
}

fn conv(spec: &Conv1dSpec, input: &[usize]) -> Conv1d<f64> {
    let mut c = Conv1d::new(spec, input, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    for p in c.params_mut() {
        if p.name == "bias" {
            p.value = random_array(p.value.shape(), -0.5, 0.5, 17);
        }
    }
    c
}

#[test]
fn conv1d_gradients_every_option() {
    let mut worst = Worst::new();
    let mut checks = 0;
    for padding in [Padding::Valid, Padding::Same] {
        for strides in [1, 2, 3] {
            for dilation_rate in [1, 2] {
                for (ai, activation) in ACTS.into_iter().enumerate() {
                    for use_bias in [true, false] {
                        for len in [9usize, 10] {
                            let spec = Conv1dSpec {
                                filters: 4,
                                kernel_size: 3,
                                strides,
                                padding,
                                dilation_rate,
                                activation,
                                use_bias,
                            };
                            let input = [len, 3];
                            let mut c = conv(&spec, &input);
                            let out = c.output_shape(&input).unwrap();
                            let seed = (len * 10 + ai) as u64;
                            let x = random_array(&with_batch(2, &input), -1.0, 1.0, seed);
                            let dy = random_array(&with_batch(2, &out), -1.0, 1.0, seed + 100);
                            let r = check_layer(&mut c, &x, &dy, Mode::Train).unwrap();
                            worst.see(&format!("{spec:?} len={len}"), &r);
                            checks += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checks, 240);
    worst.print("conv1d");
}

#[test]
fn conv1d_gradients_even_kernel_and_long_span() {
    // Even kernels make `same` padding asymmetric (more on the right), and a span close to the
    // input length leaves windows that are mostly padding.
    let mut worst = Worst::new();
    for (k, d, s, len) in [
        (4, 1, 1, 7),
        (2, 3, 2, 8),
        (5, 2, 1, 9),
        (6, 1, 4, 6),
        (1, 1, 2, 5),
    ] {
        for padding in [Padding::Valid, Padding::Same] {
            let spec = Conv1dSpec {
                filters: 3,
                kernel_size: k,
                strides: s,
                padding,
                dilation_rate: d,
                activation: Activation::Tanh,
                use_bias: true,
            };
            let input = [len, 2];
            let mut c = conv(&spec, &input);
            let out = c.output_shape(&input).unwrap();
            let x = random_array(&with_batch(3, &input), -1.0, 1.0, 1);
            let dy = random_array(&with_batch(3, &out), -1.0, 1.0, 2);
            let r = check_layer(&mut c, &x, &dy, Mode::Eval).unwrap();
            worst.see(&format!("{spec:?} len={len}"), &r);
        }
    }
    worst.print("conv1d even/long");
}

#[test]
fn pool_gradients_every_option() {
    let mut worst = Worst::new();
    for op in [PoolOp::Max, PoolOp::Avg] {
        for padding in [Padding::Valid, Padding::Same] {
            // (pool, stride): non-overlapping, overlapping, gaps between windows, pool 1.
            for (pool, strides) in [
                (2, None),
                (3, Some(3)),
                (3, Some(1)),
                (4, Some(2)),
                (2, Some(3)),
                (1, None),
            ] {
                for len in [9usize, 10] {
                    let spec = PoolSpec {
                        pool_size: pool,
                        strides,
                        padding,
                    };
                    let input = [len, 3];
                    let mut p = Pool1d::<f64>::new(op, &spec, &input).unwrap();
                    let out = p.output_shape(&input).unwrap();
                    let x = distinct_array(&with_batch(2, &input), len as u64);
                    let dy = random_array(&with_batch(2, &out), -1.0, 1.0, 7);
                    let r = check_layer(&mut p, &x, &dy, Mode::Train).unwrap();
                    worst.see(&format!("{op:?} {spec:?} len={len}"), &r);
                }
            }
        }
    }
    worst.print("pools");
}

#[test]
fn global_pool_gradients() {
    let mut worst = Worst::new();
    for op in [PoolOp::Max, PoolOp::Avg] {
        for len in [1usize, 6, 7] {
            let input = [len, 4];
            let mut p = GlobalPool1d::<f64>::new(op, &input).unwrap();
            assert_eq!(p.output_shape(&input).unwrap(), vec![4]);
            let x = distinct_array(&with_batch(3, &input), 3);
            let dy = random_array(&[3, 4], -1.0, 1.0, 4);
            let r = check_layer(&mut p, &x, &dy, Mode::Train).unwrap();
            worst.see(&format!("{op:?} len={len}"), &r);
        }
    }
    worst.print("global pools");
}

#[test]
fn flatten_gradients() {
    let mut worst = Worst::new();
    for input in [vec![5usize, 3], vec![7]] {
        let mut f = Flatten::<f64>::new(&input).unwrap();
        let out = f.output_shape(&input).unwrap();
        let x = random_array(&with_batch(2, &input), -1.0, 1.0, 1);
        let dy = random_array(&with_batch(2, &out), -1.0, 1.0, 2);
        let r = check_layer(&mut f, &x, &dy, Mode::Train).unwrap();
        worst.see(&format!("{input:?}"), &r);
    }
    worst.print("flatten");
}

#[test]
fn dropout_gradients_train_and_eval() {
    let mut worst = Worst::new();
    for rate in [0.0, 0.3, 0.75] {
        for mode in [Mode::Train, Mode::Eval] {
            for input in [vec![6usize, 3], vec![11]] {
                let mut d = Dropout::<f64>::new(&DropoutSpec { rate }, 42).unwrap();
                d.set_step(9);
                let x = random_array(&with_batch(2, &input), -1.0, 1.0, 1);
                let dy = random_array(&with_batch(2, &input), -1.0, 1.0, 2);
                let r = check_layer(&mut d, &x, &dy, mode).unwrap();
                worst.see(&format!("rate={rate} {mode:?} {input:?}"), &r);
            }
        }
    }
    worst.print("dropout");
}

#[test]
fn activation_layer_gradients() {
    let mut worst = Worst::new();
    for activation in ACTS {
        for input in [vec![5usize, 3], vec![4]] {
            let mut a =
                ActivationLayer::<f64>::new(&ActivationSpec { activation }, &input).unwrap();
            let x = random_array(&with_batch(2, &input), -2.0, 2.0, 3);
            let dy = random_array(&with_batch(2, &input), -1.0, 1.0, 4);
            let r = check_layer(&mut a, &x, &dy, Mode::Train).unwrap();
            worst.see(&format!("{activation:?} {input:?}"), &r);
        }
    }
    worst.print("activation");
}

#[test]
fn stacked_model_gradients() {
    let mut worst = Worst::new();
    for mode in [Mode::Train, Mode::Eval] {
        let mut m: Sequential<f64> = Sequential::<f64>::builder(&[12, 4])
            .add(LayerSpec::Conv1d(Conv1dSpec {
                filters: 5,
                kernel_size: 3,
                padding: Padding::Same,
                activation: Activation::Tanh,
                ..Default::default()
            }))
            .add(LayerSpec::Maxpool1d(PoolSpec {
                pool_size: 3,
                strides: Some(2),
                padding: Padding::Valid,
            }))
            .add(LayerSpec::Dropout(DropoutSpec { rate: 0.4 }))
            .add(LayerSpec::Flatten(EmptySpec {}))
            .add(LayerSpec::Dense(DenseSpec {
                units: 3,
                activation: Activation::Softmax,
                use_bias: true,
            }))
            .build(11)
            .unwrap();
        assert_eq!(
            m.layer_shapes(),
            &[vec![12, 5], vec![5, 5], vec![5, 5], vec![25], vec![3]]
        );
        m.set_step(3);
        let x = random_array(&[2, 12, 4], -1.0, 1.0, 5);
        let dy = random_array(&[2, 3], -1.0, 1.0, 6);
        let r = check_model(&mut m, &x, &dy, mode).unwrap();
        assert!(r.params.iter().any(|p| p.0 == "layers.0.weight"), "{r}");
        worst.see(&format!("{mode:?}"), &r);
    }
    worst.print("stacked model");
}

#[test]
fn layer_norm_gradients() {
    let mut worst = Worst::new();
    for epsilon in [1e-5, 1e-3, 0.5] {
        for input in [vec![5usize, 4], vec![7], vec![3, 1]] {
            let mut ln = LayerNorm::<f64>::new(&LayerNormSpec { epsilon }, &input).unwrap();
            assert_eq!(ln.output_shape(&input).unwrap(), input);
            // Weight and bias off their initial 1 and 0, so both roles are checked.
            let c = input[input.len() - 1];
            for (k, p) in ln.params_mut().into_iter().enumerate() {
                p.value = random_array(&[c], 0.5, 1.5, 10 + k as u64);
            }
            let x = random_array(&with_batch(3, &input), -2.0, 2.0, 1);
            let dy = random_array(&with_batch(3, &input), -1.0, 1.0, 2);
            let r = check_layer(&mut ln, &x, &dy, Mode::Train).unwrap();
            if c == 1 {
                // One feature normalises to 0: the input gradient and the weight's are zero.
                assert!(r.worst() < TOL, "eps={epsilon} {input:?}: {r}");
                continue;
            }
            worst.see(&format!("eps={epsilon} {input:?}"), &r);
        }
    }
    worst.print("layer_norm");
}
