//! conv1d forward and backward on a DanQ-like shape (f32): `cargo bench --bench conv`.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::activation::Activation;
use seqgrad::gradcheck::random_array;
use seqgrad::layers::conv1d::Conv1d;
use seqgrad::layers::pool::{Pool1d, PoolOp};
use seqgrad::spec::{Conv1dSpec, PoolSpec};
use seqgrad::{Layer, Mode};

fn bench(c: &mut Criterion) {
    // One-hot DNA, 60 bp, batch 128; 64 filters of width 13 (relu), then maxpool 4.
    let (batch, len, ch) = (128, 60, 4);
    let spec = Conv1dSpec {
        filters: 64,
        kernel_size: 13,
        activation: Activation::Relu,
        ..Default::default()
    };
    let mut conv =
        Conv1d::<f32>::new(&spec, &[len, ch], &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let x = random_array(&[batch, len, ch], 0.0, 1.0, 1).mapv(|v| v as f32);
    let y = conv.forward(x.view(), Mode::Train).unwrap();
    let dy = random_array(y.shape(), -1.0, 1.0, 2).mapv(|v| v as f32);
    c.bench_function("conv1d forward 128x60x4 -> 64 k13", |b| {
        b.iter(|| conv.forward(x.view(), Mode::Train).unwrap())
    });
    c.bench_function("conv1d forward+backward 128x60x4 -> 64 k13", |b| {
        b.iter(|| {
            conv.forward(x.view(), Mode::Train).unwrap();
            conv.backward(dy.view()).unwrap()
        })
    });
    let mut pool = Pool1d::<f32>::new(
        PoolOp::Max,
        &PoolSpec {
            pool_size: 4,
            strides: None,
            ..Default::default()
        },
        &[48, 64],
    )
    .unwrap();
    let py = pool.forward(y.view(), Mode::Train).unwrap();
    let pdy = random_array(py.shape(), -1.0, 1.0, 3).mapv(|v| v as f32);
    c.bench_function("maxpool1d forward+backward 128x48x64 p4", |b| {
        b.iter(|| {
            pool.forward(y.view(), Mode::Train).unwrap();
            pool.backward(pdy.view()).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
