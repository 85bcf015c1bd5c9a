//! Properties of the recurrent layers: backward twice doubles parameter gradients, the
//! bidirectional wrapper equals two plain layers (one on the time-reversed input), the per-step
//! gradient record matches a hand computation, shape/option errors, determinism across thread
//! counts, names and kinds.

use ndarray::{s, Array2, ArrayD, Axis, Ix3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::random_array;
use seqgrad::layers::rnn::{Bidirectional, Direction, Recurrent};
use seqgrad::spec::{BidirectionalSpec, MergeMode, RecurrentSpec, RnnInit, RnnSpec};
use seqgrad::{Layer, Mode, ShapeIssue};

const B: usize = 3;
const L: usize = 5;
const F: usize = 3;
const U: usize = 4;

fn rnn(units: usize, rs: bool, act: Activation) -> RnnSpec {
    RnnSpec {
        units,
        return_sequences: rs,
        activation: act,
        init: RnnInit::Keras,
        ..Default::default()
    }
}

fn cells(rs: bool) -> Vec<RecurrentSpec> {
    vec![
        RecurrentSpec::SimpleRnn(rnn(U, rs, Activation::Tanh)),
        RecurrentSpec::SimpleRnn(rnn(U, rs, Activation::Relu)),
        RecurrentSpec::Lstm(rnn(U, rs, Activation::Tanh)),
        RecurrentSpec::Gru(rnn(U, rs, Activation::Tanh)),
    ]
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (a - b).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v))
}

fn randomise(layer: &mut dyn Layer<f64>, seed: u64) {
    for (k, p) in layer.params_mut().into_iter().enumerate() {
        p.value = random_array(p.value.shape(), -0.6, 0.6, seed + k as u64);
    }
}

#[test]
fn backward_twice_doubles_parameter_gradients() {
    for rs in [false, true] {
        for cell in cells(rs) {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let spec = BidirectionalSpec {
                layer: cell.clone(),
                merge_mode: MergeMode::Mul,
            };
            let mut layers: Vec<Box<dyn Layer<f64>>> = vec![
                Box::new(Recurrent::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap()),
                Box::new(Bidirectional::new(&spec, &[L, F], &mut rng).unwrap()),
            ];
            for layer in &mut layers {
                randomise(layer.as_mut(), 3);
                let x = random_array(&[B, L, F], -1.0, 1.0, 1);
                let y = layer.forward(x.view(), Mode::Train).unwrap();
                let dy = random_array(y.shape(), -1.0, 1.0, 2);
                let dx1 = layer.backward(dy.view()).unwrap();
                let once: Vec<_> = layer.params().iter().map(|p| p.grad.clone()).collect();
                assert!(
                    once.iter().all(|g| g.iter().any(|&v| v != 0.0)),
                    "{}",
                    layer.kind()
                );
                let dx2 = layer.backward(dy.view()).unwrap();
                assert_eq!(
                    dx1,
                    dx2,
                    "{}: input gradient does not accumulate",
                    layer.kind()
                );
                for (p, g1) in layer.params().iter().zip(once) {
                    let diff = max_abs_diff(&p.grad, &(&g1 * 2.0));
                    assert!(diff < 1e-12, "{} {}: {diff}", layer.kind(), p.name);
                }
                layer.zero_grad();
                assert!(layer
                    .params()
                    .iter()
                    .all(|p| p.grad.iter().all(|&v| v == 0.0)));
            }
        }
    }
}

fn reverse_time(a: &ArrayD<f64>) -> ArrayD<f64> {
    a.slice(s![.., ..;-1, ..]).to_owned().into_dyn()
}

/// Bidirectional = plain layer on x  ⊕  plain layer with the `_reverse` weights on reversed x.
#[test]
fn bidirectional_equals_two_plain_layers() {
    for rs in [false, true] {
        for cell in cells(rs) {
            for merge in [
                MergeMode::Concat,
                MergeMode::Sum,
                MergeMode::Mul,
                MergeMode::Ave,
            ] {
                let mut rng = ChaCha8Rng::seed_from_u64(9);
                let spec = BidirectionalSpec {
                    layer: cell.clone(),
                    merge_mode: merge,
                };
                let mut bi = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
                randomise(&mut bi, 20);
                let mut f =
                    Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
                let mut r =
                    Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
                {
                    let bp = bi.params();
                    assert_eq!(bp[4].name, "weight_ih_l0_reverse");
                    for (k, p) in f.params_mut().into_iter().enumerate() {
                        p.value = bp[k].value.clone();
                    }
                    for (k, p) in r.params_mut().into_iter().enumerate() {
                        p.value = bp[4 + k].value.clone();
                    }
                }
                let x = random_array(&[B, L, F], -1.0, 1.0, 4);
                let y = bi.forward(x.view(), Mode::Eval).unwrap();
                let yf = f.forward(x.view(), Mode::Eval).unwrap();
                let mut yb = r.forward(reverse_time(&x).view(), Mode::Eval).unwrap();
                if rs {
                    yb = reverse_time(&yb);
                }
                let last = Axis(yf.ndim() - 1);
                let want = match merge {
                    MergeMode::Concat => {
                        ndarray::concatenate(last, &[yf.view(), yb.view()]).unwrap()
                    }
                    MergeMode::Sum => &yf + &yb,
                    MergeMode::Mul => &yf * &yb,
                    MergeMode::Ave => (&yf + &yb) * 0.5,
                };
                let d = max_abs_diff(&y, &want);
                assert!(d < 1e-12, "{} {merge:?} rs={rs}: {d}", bi.kind());
                let mut shape = vec![B];
                shape.extend(bi.output_shape(&[L, F]).unwrap());
                assert_eq!(y.shape(), shape.as_slice());
            }
        }
    }
}

/// With relu and positive weights, biases and inputs every pre-activation is positive, so the
/// cell is linear: dh_{t-1} = W_hhᵀ dh_t (+ dy_{t-1} with return_sequences).
#[test]
fn step_grad_record_matches_hand_computation() {
    for rs in [false, true] {
        let cell = RecurrentSpec::SimpleRnn(rnn(U, rs, Activation::Relu));
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut layer =
            Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
        for (k, p) in layer.params_mut().into_iter().enumerate() {
            p.value = random_array(p.value.shape(), 0.05, 0.5, 30 + k as u64);
        }
        let w_hh: Array2<f64> = layer.params()[1]
            .value
            .clone()
            .into_dimensionality()
            .unwrap();
        let x = random_array(&[B, L, F], 0.0, 1.0, 5);
        let y = layer.forward(x.view(), Mode::Train).unwrap();
        let dy = random_array(y.shape(), -1.0, 1.0, 6);
        layer.backward(dy.view()).unwrap();
        assert!(
            layer.step_grad_norms().is_empty(),
            "recording is off by default"
        );

        layer.set_record_step_grads(true);
        layer.backward(dy.view()).unwrap();
        let rec = layer.step_grad_norms();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].0, "forward");
        let norms = &rec[0].1;
        assert_eq!(norms.dim(), (B, L));
        for b in 0..B {
            let mut g = if rs {
                dy.view()
                    .into_dimensionality::<Ix3>()
                    .unwrap()
                    .slice(s![b, L - 1, ..])
                    .to_owned()
            } else {
                dy.slice(s![b, ..])
                    .to_owned()
                    .into_dimensionality()
                    .unwrap()
            };
            for t in (0..L).rev() {
                let want = g.dot(&g).sqrt();
                assert!(
                    (norms[[b, t]] - want).abs() < 1e-12 * want.max(1.0),
                    "b={b} t={t} rs={rs}"
                );
                if t > 0 {
                    g = w_hh.t().dot(&g);
                    if rs {
                        g += &dy.view().into_dimensionality::<Ix3>().unwrap().slice(s![
                            b,
                            t - 1,
                            ..
                        ]);
                    }
                }
            }
        }
        layer.set_record_step_grads(false);
        assert!(layer.step_grad_norms().is_empty());
    }
}

/// Bidirectional records one entry per direction; the reverse direction's final state sits at
/// t = 0, so with return_sequences=false its norm at t = 0 is ‖dy‖ of its half.
#[test]
fn bidirectional_record_has_both_directions() {
    let spec = BidirectionalSpec {
        layer: RecurrentSpec::Lstm(rnn(U, false, Activation::Tanh)),
        merge_mode: MergeMode::Concat,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut bi = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
    bi.set_record_step_grads(true);
    let x = random_array(&[B, L, F], -1.0, 1.0, 5);
    bi.forward(x.view(), Mode::Train).unwrap();
    let dy = random_array(&[B, 2 * U], -1.0, 1.0, 6);
    bi.backward(dy.view()).unwrap();
    let rec = bi.step_grad_norms();
    let names: Vec<&str> = rec.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["forward", "reverse"]);
    for b in 0..B {
        let nf = dy.slice(s![b, 0..U]).mapv(|v| v * v).sum().sqrt();
        let nb = dy.slice(s![b, U..2 * U]).mapv(|v| v * v).sum().sqrt();
        assert!((rec[0].1[[b, L - 1]] - nf).abs() < 1e-12);
        assert!((rec[1].1[[b, 0]] - nb).abs() < 1e-12);
        for t in 0..L {
            assert!(rec[0].1[[b, t]] > 0.0 && rec[1].1[[b, t]] > 0.0);
        }
    }
}

#[test]
fn flat_input_needs_a_sequence() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for cell in cells(false) {
        let err = Recurrent::<f32>::new(&cell, &[60], Direction::Forward, &mut rng)
            .err()
            .unwrap();
        assert_eq!(err, ShapeIssue::NeedsSequence { got: vec![60] });
        let spec = BidirectionalSpec {
            layer: cell.clone(),
            merge_mode: MergeMode::Concat,
        };
        let err = Bidirectional::<f32>::new(&spec, &[60], &mut rng)
            .err()
            .unwrap();
        assert_eq!(err, ShapeIssue::NeedsSequence { got: vec![60] });
        let ok = Bidirectional::<f32>::new(&spec, &[7, F], &mut rng).unwrap();
        assert_eq!(ok.output_shape(&[7, F]).unwrap(), vec![2 * U]);
        assert_eq!(
            ok.output_shape(&[60]).unwrap_err(),
            ShapeIssue::NeedsSequence { got: vec![60] }
        );
        assert!(matches!(
            ok.output_shape(&[7, F + 1]),
            Err(ShapeIssue::Rank { .. })
        ));
        assert!(matches!(
            ok.output_shape(&[2, 3, 4]),
            Err(ShapeIssue::NeedsSequence { .. })
        ));
    }
}

#[test]
fn invalid_options_are_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let bad = [
        RecurrentSpec::SimpleRnn(rnn(U, false, Activation::Sigmoid)),
        RecurrentSpec::Lstm(rnn(U, false, Activation::Relu)),
        RecurrentSpec::Gru(rnn(U, false, Activation::Linear)),
        RecurrentSpec::Lstm(rnn(0, false, Activation::Tanh)),
    ];
    for cell in bad {
        let err = Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng)
            .err()
            .unwrap();
        assert!(matches!(err, ShapeIssue::Invalid(_)), "{cell:?}: {err:?}");
    }
}

#[test]
fn runtime_errors_not_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let cell = RecurrentSpec::Gru(rnn(U, true, Activation::Tanh));
    let mut layer = Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
    assert!(layer
        .backward(random_array(&[B, L, U], -1.0, 1.0, 1).view())
        .is_err());
    assert!(layer
        .forward(
            random_array(&[B, L, F + 1], -1.0, 1.0, 1).view(),
            Mode::Train
        )
        .is_err());
    assert!(layer
        .forward(random_array(&[B, F], -1.0, 1.0, 1).view(), Mode::Train)
        .is_err());
    layer
        .forward(random_array(&[B, L, F], -1.0, 1.0, 1).view(), Mode::Train)
        .unwrap();
    assert!(layer
        .backward(random_array(&[B, U], -1.0, 1.0, 1).view())
        .is_err());
    // Any length works at run time.
    let y = layer
        .forward(random_array(&[2, 9, F], -1.0, 1.0, 1).view(), Mode::Train)
        .unwrap();
    assert_eq!(y.shape(), &[2, 9, U]);
    let spec = BidirectionalSpec {
        layer: cell,
        merge_mode: MergeMode::Concat,
    };
    let mut bi = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
    assert!(bi
        .backward(random_array(&[B, L, 2 * U], -1.0, 1.0, 1).view())
        .is_err());
    bi.forward(random_array(&[B, L, F], -1.0, 1.0, 1).view(), Mode::Train)
        .unwrap();
    assert!(bi
        .backward(random_array(&[B, L, U], -1.0, 1.0, 1).view())
        .is_err());
}

#[test]
fn names_kinds_and_counts_follow_pytorch() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let spec = BidirectionalSpec {
        layer: RecurrentSpec::Lstm(rnn(U, true, Activation::Tanh)),
        merge_mode: MergeMode::Sum,
    };
    let bi = Bidirectional::<f32>::new(&spec, &[L, F], &mut rng).unwrap();
    assert_eq!(bi.kind(), "bidirectional(lstm)");
    let names: Vec<(String, Vec<usize>)> = bi
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.value.shape().to_vec()))
        .collect();
    let want = [
        ("weight_ih_l0", vec![4 * U, F]),
        ("weight_hh_l0", vec![4 * U, U]),
        ("bias_ih_l0", vec![4 * U]),
        ("bias_hh_l0", vec![4 * U]),
        ("weight_ih_l0_reverse", vec![4 * U, F]),
        ("weight_hh_l0_reverse", vec![4 * U, U]),
        ("bias_ih_l0_reverse", vec![4 * U]),
        ("bias_hh_l0_reverse", vec![4 * U]),
    ];
    for ((n, s), (wn, ws)) in names.iter().zip(want.iter()) {
        assert_eq!((n.as_str(), s), (*wn, ws));
    }
    assert_eq!(bi.param_count(), 2 * (4 * U * (F + U) + 8 * U));
    assert_eq!(bi.output_shape(&[L, F]).unwrap(), vec![L, U]);
    for (cell, kind, g) in [
        (
            RecurrentSpec::SimpleRnn(rnn(U, false, Activation::Tanh)),
            "simple_rnn",
            1,
        ),
        (
            RecurrentSpec::Gru(rnn(U, false, Activation::Tanh)),
            "gru",
            3,
        ),
    ] {
        let l = Recurrent::<f32>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
        assert_eq!(l.kind(), kind);
        assert_eq!(l.params()[1].value.shape(), &[g * U, U]);
    }
}

/// The keras init's recurrent weights are orthogonal (columns of the (G·U, U) matrix).
#[test]
fn keras_recurrent_weights_are_orthogonal() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let cell = RecurrentSpec::Gru(rnn(U, false, Activation::Tanh));
    let l = Recurrent::<f64>::new(&cell, &[L, F], Direction::Forward, &mut rng).unwrap();
    let w: Array2<f64> = l.params()[1].value.clone().into_dimensionality().unwrap();
    let wtw = w.t().dot(&w);
    for i in 0..U {
        for j in 0..U {
            assert!((wtw[[i, j]] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
    assert!(l.params()[2].value.iter().all(|&v| v == 0.0));
}

/// Forward and backward give bit-identical results with 1 and with 4 threads.
#[test]
fn deterministic_across_thread_counts() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let spec = BidirectionalSpec {
                layer: RecurrentSpec::Lstm(rnn(8, true, Activation::Tanh)),
                merge_mode: MergeMode::Concat,
            };
            let mut bi = Bidirectional::<f32>::new(&spec, &[17, 6], &mut rng).unwrap();
            let x = random_array(&[16, 17, 6], -1.0, 1.0, 1).mapv(|v| v as f32);
            let y = bi.forward(x.view(), Mode::Train).unwrap();
            let dy = random_array(y.shape(), -1.0, 1.0, 2).mapv(|v| v as f32);
            let dx = bi.backward(dy.view()).unwrap();
            let grads: Vec<_> = bi.params().iter().map(|p| p.grad.clone()).collect();
            (y, dx, grads)
        })
    };
    assert_eq!(run(1), run(4));
}

/// f32 agrees with f64 to single-precision rounding.
#[test]
fn f32_matches_f64() {
    let spec = BidirectionalSpec {
        layer: RecurrentSpec::Gru(rnn(U, true, Activation::Tanh)),
        merge_mode: MergeMode::Concat,
    };
    let mut b64 =
        Bidirectional::<f64>::new(&spec, &[L, F], &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut b32 =
        Bidirectional::<f32>::new(&spec, &[L, F], &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let x = random_array(&[B, L, F], -1.0, 1.0, 1);
    let y64 = b64.forward(x.view(), Mode::Eval).unwrap();
    let y32 = b32
        .forward(x.mapv(|v| v as f32).view(), Mode::Eval)
        .unwrap();
    let d = max_abs_diff(&y64, &y32.mapv(|v| v as f64));
    assert!(d < 1e-5, "{d}");
}

/// Buffers reused from a previous pass (same or different shape) leave no trace: a layer that
/// has already run gives exactly what a fresh copy gives.
#[test]
fn reused_buffers_leave_no_trace() {
    for rs in [false, true] {
        for cell in cells(rs) {
            let spec = BidirectionalSpec {
                layer: cell,
                merge_mode: MergeMode::Concat,
            };
            let mut used =
                Bidirectional::<f64>::new(&spec, &[L, F], &mut ChaCha8Rng::seed_from_u64(3))
                    .unwrap();
            let mut fresh =
                Bidirectional::<f64>::new(&spec, &[L, F], &mut ChaCha8Rng::seed_from_u64(3))
                    .unwrap();
            for (shape, seed) in [([B, L, F], 1), ([2, 7, F], 2), ([B, L, F], 3)] {
                let x = random_array(&shape, -3.0, 3.0, seed);
                let y = used.forward(x.view(), Mode::Train).unwrap();
                let dy = random_array(y.shape(), -1.0, 1.0, seed + 10);
                used.backward(dy.view()).unwrap();
            }
            used.zero_grad();
            let x = random_array(&[B, L, F], -1.0, 1.0, 4);
            let y1 = used.forward(x.view(), Mode::Train).unwrap();
            let y2 = fresh.forward(x.view(), Mode::Train).unwrap();
            assert_eq!(y1, y2, "{}", used.kind());
            let dy = random_array(y1.shape(), -1.0, 1.0, 5);
            assert_eq!(
                used.backward(dy.view()).unwrap(),
                fresh.backward(dy.view()).unwrap()
            );
            for (a, b) in used.params().iter().zip(fresh.params()) {
                assert_eq!(a.grad, b.grad, "{} {}", used.kind(), a.name);
            }
        }
    }
}
