//! The machine's f32 GEMM ceiling as seqgrad's backend reaches it: a square `N³` product through
//! `seqgrad::layers::gemm::mat_mul` (the `gemm` crate) in a rayon pool of `THREADS` threads.
//!
//! `cargo run --release --example gemm_peak -- [N=4096] [THREADS=2]`
//!
//! Prints one JSON line, `{"n","threads","runs","gflops","gflops_runs"}`: the median of 5 timed
//! runs after one warm-up (2·N³ FLOPs each). `benches/peers/run.py` runs it for its table's
//! GEMM ceiling, next to numpy's.

use std::time::Instant;

use ndarray::Array2;

#[path = "../benches/support/gemm_inputs.rs"]
mod gemm_inputs;
use gemm_inputs::filled;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(4096), |s| s.parse())?;
    let threads: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let (a, b) = (filled(n, n, false, 1), filled(n, n, false, 2));
    let mut c = Array2::<f32>::zeros((n, n));
    let flop = 2.0 * (n as f64).powi(3);
    let mut runs: Vec<f64> = pool.install(|| {
        seqgrad::layers::gemm::mat_mul(1.0, &a, &b, 0.0, &mut c);
        (0..5)
            .map(|_| {
                let t = Instant::now();
                seqgrad::layers::gemm::mat_mul(1.0, &a, &b, 0.0, &mut c);
                flop / t.elapsed().as_secs_f64() / 1e9
            })
            .collect()
    });
    let shown: Vec<String> = runs.iter().map(|g| format!("{g:.1}")).collect();
    runs.sort_by(f64::total_cmp);
    println!(
        "{{\"n\": {n}, \"threads\": {threads}, \"runs\": 5, \"gflops\": {:.1}, \"gflops_runs\": [{}]}}",
        runs[2],
        shown.join(", ")
    );
    Ok(())
}
