//! Forward + backward of the recurrent layers in f32 at the main job's size:
//! BiLSTM(64) / BiGRU(64) / BiSimpleRNN(64) on a batch of 64 × 17 steps × 64 features.
//!
//! `cargo bench --bench rnn`

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::gradcheck::random_array;
use seqgrad::layers::rnn::Bidirectional;
use seqgrad::spec::{BidirectionalSpec, MergeMode, RecurrentSpec, RnnSpec};
use seqgrad::{Layer, Mode};

fn bench(c: &mut Criterion) {
    let (b, l, f, u) = (64, 17, 64, 64);
    let rnn = RnnSpec {
        units: u,
        return_sequences: true,
        ..Default::default()
    };
    for cell in [
        RecurrentSpec::Lstm(rnn.clone()),
        RecurrentSpec::Gru(rnn.clone()),
        RecurrentSpec::SimpleRnn(rnn),
    ] {
        let spec = BidirectionalSpec {
            layer: cell,
            merge_mode: MergeMode::Concat,
        };
        let mut layer =
            Bidirectional::<f32>::new(&spec, &[l, f], &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let x = random_array(&[b, l, f], -1.0, 1.0, 1).mapv(|v| v as f32);
        let dy = random_array(&[b, l, 2 * u], -1.0, 1.0, 2).mapv(|v| v as f32);
        c.bench_function(
            &format!("{} fwd+bwd f32 b{b} l{l} f{f} u{u}", layer.kind()),
            |bch| {
                bch.iter(|| {
                    layer.forward(x.view(), Mode::Train).unwrap();
                    layer.backward(dy.view()).unwrap()
                })
            },
        );
        c.bench_function(
            &format!("{} fwd f32 b{b} l{l} f{f} u{u}", layer.kind()),
            |bch| bch.iter(|| layer.forward(x.view(), Mode::Eval).unwrap()),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
