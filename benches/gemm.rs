//! f32 GEMM backends at the shapes the workloads use, in GFLOP/s: ndarray's `matrixmultiply`
//! (`general_mat_mul`) against the `gemm` crate (`seqgrad::layers::gemm::mat_mul`) on 1 and 2
//! rayon threads. `matrixmultiply`'s own threading is a compile-time feature:
//!
//!     cargo bench --bench gemm                                   # matrixmultiply 1 thread
//!     MATMUL_NUM_THREADS=2 cargo bench --bench gemm --features mm-threading
//!
//! Prints one line per shape and backend (median of 5 timed runs after a warm-up). Results in
//! `docs/performance.md`.

use ndarray::{linalg::general_mat_mul, Array2};
use seqgrad::layers::gemm::mat_mul;

#[path = "support/gemm_inputs.rs"]
mod gemm_inputs;
use gemm_inputs::{filled, median_secs};

/// Row-major operands, the same values as before this helper was shared.
fn arr(m: usize, n: usize) -> Array2<f32> {
    filled(m, n, false, 12345)
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let shapes: [(&str, usize, usize, usize, usize); 6] = [
        // (what, m, k, n, repeats per timing)
        ("square 1024", 1024, 1024, 1024, 1),
        ("W3 dense fwd 100x48000x925", 100, 48000, 925, 1),
        ("W3 conv fwd 97500x104x320", 97500, 104, 320, 1),
        ("W3 lstm input proj 7500x320x1280", 7500, 320, 1280, 1),
        ("W3 lstm step 100x320x1280", 100, 320, 1280, 20),
        ("W2 lstm step 64x64x256", 64, 64, 256, 200),
    ];
    let mm_threads = std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "1".into());
    for (what, m, k, n, rep) in shapes {
        if !filter.is_empty() && !filter.iter().any(|f| what.contains(f.as_str())) {
            continue;
        }
        let (a, b) = (arr(m, k), arr(k, n));
        let mut c = Array2::<f32>::zeros((m, n));
        let flop = 2.0 * (m * k * n * rep) as f64;
        let t = median_secs(|| {
            for _ in 0..rep {
                general_mat_mul(1.0, &a, &b, 0.0, &mut c)
            }
        });
        println!(
            "{what:36} matrixmultiply (MATMUL_NUM_THREADS={mm_threads}) {:7.1} GFLOP/s",
            flop / t / 1e9
        );
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let t = pool.install(|| {
                median_secs(|| {
                    for _ in 0..rep {
                        mat_mul(1.0, &a, &b, 0.0, &mut c)
                    }
                })
            });
            println!(
                "{what:36} gemm crate, {threads} rayon thread(s)        {:7.1} GFLOP/s",
                flop / t / 1e9
            );
        }
    }
}
