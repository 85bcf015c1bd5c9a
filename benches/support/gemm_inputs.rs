//! Shared by `benches/gemm.rs`, `examples/gemm_shapes.rs` and `examples/gemm_peak.rs` (each
//! includes this file with `#[path]`): deterministic f32 GEMM operands and a median timer.
#![allow(dead_code)] // each includer uses part of it

use std::time::Instant;

use ndarray::{Array2, ShapeBuilder};

/// Deterministic values in [-0.5, 0.5) from `seed` (no denormals, no special cases), stored
/// row-major or, with `col_major`, column-major.
pub fn filled(rows: usize, cols: usize, col_major: bool, seed: u64) -> Array2<f32> {
    let mut s = seed;
    Array2::from_shape_simple_fn((rows, cols).set_f(col_major), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    })
}

/// Seconds `f` takes: one warm-up call, then the median of 5 timed calls.
pub fn median_secs(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..5)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[2]
}
