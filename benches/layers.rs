//! Criterion benches per layer, forward (`Mode::Train`, caching) + backward and inference
//! forward (`Mode::Infer`), f32, at the sizes of issue 9's W3 (DanQ, batch 100) and W2:
//! conv1d, maxpool1d, dense, bidirectional LSTM. (`benches/conv.rs` and `benches/rnn.rs` keep
//! their older, smaller cases.) Inputs are uniform in [−1, 1], except the `one-hot` conv1d
//! case, whose one-hot DNA takes conv1d's one-hot path (no GEMM in the forward pass).
//!
//! `cargo bench --bench layers [-- conv1d]`

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::gradcheck::random_array;
use seqgrad::model::build_layer;
use seqgrad::spec::LayerSpec;
use seqgrad::Mode;

fn case(c: &mut Criterion, name: &str, spec: &str, batch: usize, input: &[usize]) {
    let mut xs = vec![batch];
    xs.extend_from_slice(input);
    let x = random_array(&xs, -1.0, 1.0, 1).mapv(|v| v as f32);
    case_with(c, name, spec, input, x);
}

/// One-hot `(batch, length, 4)`: the hot channel of each position from uniform noise.
fn one_hot(batch: usize, len: usize) -> ArrayD<f32> {
    let u = random_array(&[batch, len], 0.0, 4.0, 1);
    let mut x = ArrayD::zeros(IxDyn(&[batch, len, 4]));
    for ((b, t), &v) in u.indexed_iter().map(|(i, v)| ((i[0], i[1]), v)) {
        x[[b, t, (v as usize).min(3)]] = 1.0;
    }
    x
}

fn case_with(c: &mut Criterion, name: &str, spec: &str, input: &[usize], x: ArrayD<f32>) {
    let batch = x.shape()[0];
    let spec: LayerSpec = serde_json::from_str(spec).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut layer = build_layer::<f32>(&spec, input, 0, &mut rng).unwrap();
    let out = layer.output_shape(input).unwrap();
    let mut ys = vec![batch];
    ys.extend_from_slice(&out);
    let dy = random_array(&ys, -1.0, 1.0, 2).mapv(|v| v as f32);
    let mut g = c.benchmark_group(name);
    g.bench_function("fwd+bwd", |b| {
        b.iter(|| {
            layer.forward(x.view(), Mode::Train).unwrap();
            layer.backward(dy.view()).unwrap()
        })
    });
    g.bench_function("infer", |b| {
        b.iter(|| layer.forward(x.view(), Mode::Infer).unwrap())
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    case(
        c,
        "conv1d 320x26 b100 l1000",
        r#"{"type": "conv1d", "filters": 320, "kernel_size": 26, "activation": "relu"}"#,
        100,
        &[1000, 4],
    );
    case_with(
        c,
        "conv1d 320x26 b100 l1000 one-hot",
        r#"{"type": "conv1d", "filters": 320, "kernel_size": 26, "activation": "relu"}"#,
        &[1000, 4],
        one_hot(100, 1000),
    );
    case(
        c,
        "maxpool1d 13 b100 l975 c320",
        r#"{"type": "maxpool1d", "pool_size": 13, "strides": 13}"#,
        100,
        &[975, 320],
    );
    case(
        c,
        "bilstm 320 b100 l75 f320",
        r#"{"type": "bidirectional", "layer": {"type": "lstm", "units": 320, "return_sequences": true}}"#,
        100,
        &[75, 320],
    );
    case(
        c,
        "bilstm 64 b64 l17 f64",
        r#"{"type": "bidirectional", "layer": {"type": "lstm", "units": 64, "return_sequences": true}}"#,
        64,
        &[17, 64],
    );
    case(
        c,
        "dense 925 b100 f48000",
        r#"{"type": "dense", "units": 925, "activation": "relu"}"#,
        100,
        &[48000],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
