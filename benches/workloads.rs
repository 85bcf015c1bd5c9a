//! Criterion benches of issue 9's workloads (`seqgrad bench`'s w1, w2, w3): one training step
//! (forward, loss, backward, Adam) and one inference pass, f32, in the global rayon pool
//! (`RAYON_NUM_THREADS=1` for one thread).
//!
//! `cargo bench --bench workloads [-- w1]`

use criterion::{criterion_group, criterion_main, Criterion};
use seqgrad::optim::{Optimizer, OptimizerConfig};
use seqgrad::run::bench::{prepare, train_step};
use seqgrad::Mode;

fn bench(c: &mut Criterion) {
    for w in ["w1", "w2", "w3"] {
        let (mut model, x, y) = prepare(w, None, 0).unwrap();
        model.set_need_input_grad(false);
        let mut opt = Optimizer::<f32>::new(OptimizerConfig::named("adam").unwrap());
        let mut step = 0;
        let mut g = c.benchmark_group(w);
        if w == "w3" {
            g.sample_size(10);
        }
        g.bench_function("train step", |b| {
            b.iter(|| {
                step += 1;
                train_step(&mut model, &mut opt, &x, &y, step).unwrap()
            })
        });
        g.bench_function("inference", |b| {
            b.iter(|| model.forward(x.view(), Mode::Infer).unwrap())
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
