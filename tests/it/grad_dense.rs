//! Finite-difference gradient checks for `dense` (2-D and 3-D input, every activation, with and
//! without bias) and its properties.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::{check_layer, random_array};
use seqgrad::layers::dense::Dense;
use seqgrad::spec::DenseSpec;
use seqgrad::{Layer, Mode};

const TOL: f64 = 1e-6;

fn dense(units: usize, act: Activation, use_bias: bool, input: &[usize]) -> Dense<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut d = Dense::new(
        &DenseSpec {
            units,
            activation: act,
            use_bias,
        },
        input,
        &mut rng,
    )
    .unwrap();
    // Non-zero biases so their effect is visible.
    for p in d.params_mut() {
        if p.name == "bias" {
            p.value = random_array(p.value.shape(), -0.5, 0.5, 11);
        }
    }
    d
}

#[test]
fn dense_gradients_every_activation_2d_and_3d() {
    let acts = [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax,
    ];
    for act in acts {
        for use_bias in [true, false] {
            for input in [vec![5usize], vec![4, 5]] {
                let mut d = dense(3, act, use_bias, &input);
                let out = d.output_shape(&input).unwrap();
                let mut xs = vec![2];
                xs.extend(&input);
                let mut ys = vec![2];
                ys.extend(&out);
                let x = random_array(&xs, -1.0, 1.0, 1);
                let dy = random_array(&ys, -1.0, 1.0, 2);
                let r = check_layer(&mut d, &x, &dy, Mode::Train).unwrap();
                assert!(
                    r.worst() < TOL,
                    "{act:?} bias={use_bias} input={input:?}: {r}"
                );
                assert!(
                    r.zero_tensors.is_empty(),
                    "{act:?} bias={use_bias} input={input:?}: dead check: {r}"
                );
            }
        }
    }
}

#[test]
fn dense_on_sequence_keeps_time_axis() {
    let d = dense(7, Activation::Relu, true, &[10, 5]);
    assert_eq!(d.output_shape(&[10, 5]).unwrap(), vec![10, 7]);
    assert!(d.output_shape(&[10, 6]).is_err());
}

#[test]
fn backward_twice_doubles_parameter_gradients() {
    let mut d = dense(3, Activation::Tanh, true, &[5]);
    let x = random_array(&[4, 5], -1.0, 1.0, 1);
    let dy = random_array(&[4, 3], -1.0, 1.0, 2);
    d.forward(x.view(), Mode::Train).unwrap();
    d.backward(dy.view()).unwrap();
    let once: Vec<_> = d.params().iter().map(|p| p.grad.clone()).collect();
    d.backward(dy.view()).unwrap();
    for (p, g1) in d.params().iter().zip(once) {
        let diff = (&p.grad - &(&g1 * 2.0))
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(diff < 1e-12, "{}", p.name);
    }
}

#[test]
fn backward_without_forward_is_an_error() {
    let mut d = dense(3, Activation::Linear, true, &[5]);
    let dy = random_array(&[4, 3], -1.0, 1.0, 2);
    assert!(d.backward(dy.view()).is_err());
}
