//! Model build time (issue 9, item 3): Keras' orthogonal initialisation of recurrent weights
//! and building whole models (every weight drawn), in the global rayon pool
//! (`RAYON_NUM_THREADS=1` for one thread).
//!
//! `cargo bench --bench init [-- danq]`
//!
//! Targets (docs/performance.md, "Model build time"): `models/danq.json` ≤ 0.5 s, a
//! bidirectional LSTM with 2,048 units ≤ 5 s. One-off timings of a model file:
//! `cargo run --release --example build_time -- MODEL.json [THREADS]`.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqgrad::layers::rnn::init::orthogonal;
use seqgrad::spec::ModelSpec;
use seqgrad::Sequential;

/// A bidirectional LSTM with `units` units on 10 steps of 4 features.
fn bilstm(units: usize) -> ModelSpec {
    let json = format!(
        r#"{{"input_shape": [10, 4], "layers": [{{"type": "bidirectional", "merge_mode": "concat",
            "layer": {{"type": "lstm", "units": {units}}}}}]}}"#
    );
    ModelSpec::from_json(&json, "bilstm").unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("orthogonal");
    g.sample_size(10);
    for (r, u) in [(4 * 320, 320), (4 * 1024, 1024), (512, 512)] {
        g.bench_function(format!("{r}x{u}"), |b| {
            b.iter(|| orthogonal(r, u, &mut ChaCha8Rng::seed_from_u64(0)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    let danq =
        ModelSpec::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/models/danq.json")).unwrap();
    g.bench_function("danq", |b| {
        b.iter(|| Sequential::<f32>::from_spec(&danq, 0).unwrap())
    });
    for u in [1024, 2048] {
        let spec = bilstm(u);
        g.bench_function(format!("bilstm{u}"), |b| {
            b.iter(|| Sequential::<f32>::from_spec(&spec, 0).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotting panics on machines without fonts (FontUnavailable).
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
