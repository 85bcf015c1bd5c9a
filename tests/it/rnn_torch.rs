//! Forward results match PyTorch (`nn.RNN` / `nn.LSTM` / `nn.GRU`, `batch_first=True`,
//! `bidirectional=True`, float64) to rounding, for fixed weights given by a formula.
//!
//! The reference numbers were produced by this script (torch 2.x, float64):
//! ```python
//! import torch, math
//! torch.set_default_dtype(torch.float64)
//! B, L, F, U = 2, 4, 3, 3
//! def fill(t, c):
//!     flat = t.view(-1)
//!     for k in range(flat.numel()):
//!         flat[k] = 0.5 * math.sin(0.37 * k + c)
//! x = torch.empty(B, L, F); fill(x, 0.1); x *= 2.0
//! for name, cls, kw in [("simple_rnn_tanh", torch.nn.RNN, dict(nonlinearity="tanh")),
//!                       ("simple_rnn_relu", torch.nn.RNN, dict(nonlinearity="relu")),
//!                       ("lstm", torch.nn.LSTM, {}), ("gru", torch.nn.GRU, {})]:
//!     m = cls(F, U, batch_first=True, bidirectional=True, **kw)
//!     with torch.no_grad():
//!         for i, (pn, p) in enumerate(m.named_parameters()):
//!             fill(p, 1.0 + i)
//!     y, h = m(x)   # y: (B, L, 2U), printed flattened
//! ```

#![allow(clippy::excessive_precision)]

use ndarray::{s, ArrayD, Axis, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::layers::rnn::Bidirectional;
use seqgrad::spec::{BidirectionalSpec, MergeMode, RecurrentSpec, RnnSpec};
use seqgrad::{Layer, Mode};

const SIMPLE_RNN_TANH: [f64; 48] = [
    3.122713270577216e-01,
    -2.869151087111896e-01,
    -8.195250678387527e-01,
    5.845085325789487e-01,
    9.672896249374333e-01,
    9.646019511952506e-01,
    7.236947916461793e-01,
    5.205579959862443e-01,
    -7.495410622811561e-01,
    -3.408429214117530e-02,
    9.707242514615833e-01,
    9.920469074071079e-01,
    5.499019009445212e-01,
    4.457735782948852e-02,
    -8.172069300096421e-01,
    1.709149140411805e-01,
    8.955048521905872e-01,
    9.619867287885066e-01,
    -7.792971117278157e-01,
    -6.352427809818341e-01,
    -1.909605635122059e-01,
    8.902261314357464e-01,
    5.456815939923744e-01,
    -2.273312686176418e-02,
    -9.243819278335407e-01,
    -8.915226383667737e-01,
    -2.189519945876472e-01,
    9.644165293455202e-01,
    9.502989717518339e-01,
    4.478994215501736e-01,
    -8.865558191797903e-01,
    -6.031285376565780e-01,
    2.117729683277347e-01,
    8.839678492844686e-01,
    9.631418938718503e-01,
    8.425271616011235e-01,
    1.417030643879911e-01,
    -5.089263314180938e-03,
    -6.150283399348726e-01,
    3.280176657938248e-01,
    9.593853816690211e-01,
    9.775357915215304e-01,
    7.002449300480960e-01,
    4.112674946919823e-01,
    -7.813416821634804e-01,
    -2.077942023175093e-01,
    7.921709724235250e-01,
    9.657315833823066e-01,
];
const SIMPLE_RNN_RELU: [f64; 48] = [
    3.230601814287624e-01,
    0.000000000000000e+00,
    0.000000000000000e+00,
    1.227568201352047e+00,
    4.317699218929256e+00,
    3.468085411700292e+00,
    1.180464494485165e+00,
    2.630476644663336e-01,
    0.000000000000000e+00,
    2.934429923606892e-01,
    3.093612521698375e+00,
    3.313602125863590e+00,
    8.826244237987966e-01,
    0.000000000000000e+00,
    0.000000000000000e+00,
    1.060722106939869e-01,
    1.687388854330718e+00,
    2.250385809910718e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    1.423014618813004e+00,
    6.122109830847069e-01,
    0.000000000000000e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    2.329080783593152e+00,
    4.216115227757808e+00,
    2.276231846277243e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    0.000000000000000e+00,
    1.811239015759155e+00,
    3.721988911017167e+00,
    2.354635699183466e+00,
    7.146192110753310e-01,
    0.000000000000000e+00,
    0.000000000000000e+00,
    5.574836908874335e-01,
    2.676732724127451e+00,
    2.678820621163120e+00,
    1.250233456560242e+00,
    2.452630273272447e-01,
    0.000000000000000e+00,
    0.000000000000000e+00,
    1.077233619409717e+00,
    2.024697815210172e+00,
];
const LSTM: [f64; 48] = [
    3.360644848892862e-02,
    -3.066012552330493e-02,
    -6.998024919220984e-02,
    -1.954194819471357e-01,
    -6.723459746950010e-02,
    -1.225323721728279e-02,
    1.464571373897122e-01,
    8.317888503836190e-02,
    -1.614111398884372e-01,
    -2.256892580942521e-01,
    -4.600673917088654e-02,
    4.015490245646384e-02,
    9.321292112161048e-02,
    5.758161819524991e-02,
    -1.122945064413981e-01,
    -1.217396001664875e-01,
    -1.502748740982202e-01,
    -6.656534631092283e-02,
    -8.185102651667933e-02,
    -2.856253946346791e-02,
    1.278833818369237e-01,
    1.740193281911775e-02,
    -2.126287441265665e-01,
    -2.159466326406997e-01,
    -1.316951094010448e-01,
    -6.958391308020200e-02,
    1.481313580526339e-01,
    4.009598510571686e-02,
    -3.721599830841214e-01,
    -3.487078792873808e-01,
    -2.064950490134579e-01,
    -1.018471736259633e-01,
    1.400757712574296e-01,
    -6.980232832282968e-02,
    -1.230793822283883e-01,
    -1.310521943999660e-01,
    8.883258655507136e-02,
    -8.052353372992612e-03,
    -8.166788880892294e-03,
    -1.818502024665326e-01,
    1.357295728958710e-02,
    4.650926979370669e-02,
    1.487964611656031e-01,
    7.688477548188387e-02,
    -1.239571570753417e-01,
    -1.289123647560025e-01,
    1.207619050928836e-02,
    4.847601193183874e-02,
];
const GRU: [f64; 48] = [
    1.094701278773682e-01,
    -1.401138334597194e-01,
    -3.082420205213116e-01,
    -1.909361616874500e-01,
    5.543753312104764e-03,
    7.676282937229899e-02,
    6.537542468559879e-01,
    1.839559758856409e-01,
    -5.527681015301990e-01,
    -1.627660415689810e-01,
    -4.707463454831851e-02,
    3.744228579023341e-01,
    3.547709569751681e-01,
    9.788532764226292e-02,
    -4.944660062749109e-01,
    -6.365975172557464e-02,
    -2.489095311880294e-01,
    -1.361831809857824e-01,
    -2.875957263809775e-01,
    -2.058328708829548e-01,
    3.425520854218704e-01,
    6.992216901342452e-02,
    -2.271241442984734e-01,
    -2.491883456000921e-01,
    -3.630481253852402e-01,
    -3.312756287617589e-01,
    6.027099824632871e-01,
    2.427169161332456e-01,
    -2.562589255461053e-01,
    -2.661216094414123e-01,
    -5.627741976633394e-01,
    -4.237116896489970e-01,
    2.834429050145095e-01,
    5.551983015351702e-03,
    -3.703946909800238e-02,
    -1.028659533572786e-01,
    2.037279615634675e-01,
    -8.302467286320930e-02,
    -2.736412355491320e-01,
    -1.905638270580426e-01,
    2.300779769032819e-01,
    3.324082445033780e-01,
    6.339300652242359e-01,
    1.801609924121083e-01,
    -5.189261981783804e-01,
    -1.141800500999401e-01,
    1.121623092066171e-01,
    3.953998230895560e-01,
];

const B: usize = 2;
const L: usize = 4;
const F: usize = 3;
const U: usize = 3;

fn fill(shape: &[usize], c: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|k| 0.5 * (0.37 * k as f64 + c).sin()).collect(),
    )
    .unwrap()
}

fn check(layer: RecurrentSpec, want: &[f64]) {
    let kind = layer.kind();
    for return_sequences in [true, false] {
        let mut layer = layer.clone();
        match &mut layer {
            RecurrentSpec::SimpleRnn(s) | RecurrentSpec::Lstm(s) | RecurrentSpec::Gru(s) => {
                s.return_sequences = return_sequences
            }
        }
        let spec = BidirectionalSpec {
            layer,
            merge_mode: MergeMode::Concat,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut bi = Bidirectional::<f64>::new(&spec, &[L, F], &mut rng).unwrap();
        for (i, p) in bi.params_mut().into_iter().enumerate() {
            p.value = fill(p.value.shape(), 1.0 + i as f64);
        }
        let x = fill(&[B, L, F], 0.1) * 2.0;
        let y = bi.forward(x.view(), Mode::Eval).unwrap();
        let full = ArrayD::from_shape_vec(IxDyn(&[B, L, 2 * U]), want.to_vec()).unwrap();
        let expect = if return_sequences {
            full
        } else {
            // torch's h_n: forward state at t = L-1, reverse state at t = 0.
            let f = full.slice(s![.., L - 1, 0..U]).to_owned();
            let b = full.slice(s![.., 0, U..2 * U]).to_owned();
            ndarray::concatenate(Axis(1), &[f.view(), b.view()])
                .unwrap()
                .into_dyn()
        };
        assert_eq!(y.shape(), expect.shape());
        let worst = (&y - &expect).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(
            worst < 1e-12,
            "{kind} return_sequences={return_sequences}: worst {worst:e}\n{y}\n{expect}"
        );
    }
}

fn rnn(act: Activation) -> RnnSpec {
    RnnSpec {
        units: U,
        activation: act,
        ..Default::default()
    }
}

#[test]
fn simple_rnn_tanh_matches_torch() {
    check(
        RecurrentSpec::SimpleRnn(rnn(Activation::Tanh)),
        &SIMPLE_RNN_TANH,
    );
}

#[test]
fn simple_rnn_relu_matches_torch() {
    check(
        RecurrentSpec::SimpleRnn(rnn(Activation::Relu)),
        &SIMPLE_RNN_RELU,
    );
}

#[test]
fn lstm_matches_torch() {
    check(RecurrentSpec::Lstm(rnn(Activation::Tanh)), &LSTM);
}

#[test]
fn gru_matches_torch() {
    check(RecurrentSpec::Gru(rnn(Activation::Tanh)), &GRU);
}
