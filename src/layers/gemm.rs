//! The matrix product every layer uses: `C = α·A·B + β·C` over `ndarray` views, computed by the
//! [`gemm`](https://crates.io/crates/gemm) crate (AVX-512 / AVX2+FMA kernels picked at run time,
//! parallel over the current rayon pool).
//!
//! Why this crate and not ndarray's `matrixmultiply`: measured in `docs/performance.md`
//! (`benches/gemm.rs`): on this machine's AVX-512 cores `gemm` is faster on one thread, and it
//! parallelises inside the caller's rayon pool (no second thread pool competing with rayon).
//!
//! Determinism: `gemm` splits the work over blocks of rows and columns of `C` only; every element
//! of `C` is a sum over `k` in the same blocked order whatever the number of threads, so the
//! result is bit-identical at any thread count (checked by a test below at 1 and 2 threads).

use ndarray::{ArrayBase, Data, DataMut, Ix2};

use crate::tensor::Float;

/// `c = alpha·a·b + beta·c` (`beta = 0` ignores the old contents of `c`, NaN included).
///
/// # Shapes
/// - `a`: `(m, k)`, `b`: `(k, n)`, `c`: `(m, n)`; any strides (transposed views are fine).
///
/// # Panics
/// When the shapes do not agree (a bug in the calling layer, never user input: layers check
/// input shapes before they multiply).
pub fn mat_mul<T, S1, S2, S3>(
    alpha: T,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    beta: T,
    c: &mut ArrayBase<S3, Ix2>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
    S3: DataMut<Elem = T>,
{
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n),
        "mat_mul shapes: ({m}, {k}) · ({k2}, {n}) into {:?}",
        c.dim()
    ); // ok: layer bug, not user input
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == T::zero() {
        if beta == T::zero() {
            c.fill(T::zero());
        } else if beta != T::one() {
            c.mapv_inplace(|v| v * beta);
        }
        return;
    }
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    let read_dst = beta != T::zero();
    if log_enabled() {
        // m k n, then which operands are stored transposed (column-major), as
        // `benches/peers/gemm_bound.py` reads it.
        eprintln!(
            "GEMM {m} {k} {n} a_t={} b_t={} accumulate={read_dst}",
            column_major(a_rs, a_cs, m, k),
            column_major(b_rs, b_cs, k, n)
        );
    }
    // SAFETY: the pointers and strides come from live ndarray views whose every element
    // `base + i·rs + j·cs` (i < rows, j < cols) is in bounds: exactly the elements `gemm` reads
    // (a: m×k, b: k×n) and writes (c: m×n), given the shape check above. `c` is borrowed
    // mutably, so it aliases neither `a` nor `b` (shared borrows). `T` is f32 or f64, the
    // types `gemm` supports (any other `T` would panic, not misbehave). `gemm` computes
    // `dst = α_g·dst + β_g·lhs·rhs`, hence α_g = beta and β_g = alpha.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            read_dst,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

/// Whether `SEQGRAD_LOG_GEMM` is set (to anything but empty or `0`): then every product prints
/// its shape to stderr (read once). A tool for finding which products a model runs
/// (`benches/peers/gemm_bound.py`).
fn log_enabled() -> bool {
    static LOG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOG.get_or_init(|| {
        std::env::var_os("SEQGRAD_LOG_GEMM").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

/// Whether a `(rows, cols)` operand with strides `(rs, cs)` is stored column-major (a
/// transposed view of a row-major array), as the product log reports it. A single row is
/// row-major and a single column column-major, whatever their strides.
fn column_major(rs: isize, cs: isize, rows: usize, cols: usize) -> bool {
    if rows == 1 || cols == 1 {
        return cols == 1 && rows > 1;
    }
    rs.unsigned_abs() < cs.unsigned_abs()
}

/// With `SEQGRAD_LOG_GEMM` set, prints `GEMM-NOTE {what}` to stderr between the products' lines
/// (`seqgrad bench` marks the start of each step).
pub fn log_note(what: &str) {
    if log_enabled() {
        eprintln!("GEMM-NOTE {what}");
    }
}

/// `a · b` into a new `(m, n)` array.
pub fn dot<T, S1, S2>(a: &ArrayBase<S1, Ix2>, b: &ArrayBase<S2, Ix2>) -> ndarray::Array2<T>
where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
{
    let mut c = ndarray::Array2::zeros((a.nrows(), b.ncols()));
    mat_mul(T::one(), a, b, T::zero(), &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{linalg::general_mat_mul, Array2, ShapeBuilder};

    fn arr(m: usize, n: usize, seed: u64) -> Array2<f32> {
        let mut s = seed;
        Array2::from_shape_simple_fn((m, n), || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
    }

    #[test]
    fn the_log_names_column_major_operands() {
        let a = arr(3, 5, 1);
        let col = |v: &ndarray::ArrayView2<f32>| {
            column_major(v.strides()[0], v.strides()[1], v.nrows(), v.ncols())
        };
        assert!(!col(&a.view()));
        assert!(col(&a.t()));
        let f = Array2::<f32>::zeros((3, 5).f());
        assert!(col(&f.view()));
        assert!(!col(&f.t()));
        // one row or one column: the layout follows the shape
        assert!(!col(&arr(1, 5, 1).view()));
        assert!(!col(&arr(5, 1, 1).t()));
        assert!(col(&arr(1, 5, 1).t()));
        assert!(col(&arr(5, 1, 1).view()));
    }

    #[test]
    fn matches_ndarray_and_is_thread_count_independent() {
        for &(m, k, n) in &[
            (1, 7, 5),
            (3, 1, 4),
            (100, 320, 1280),
            (257, 40, 100),
            (100, 4800, 92),
        ] {
            let a = arr(m, k, 1);
            let b = arr(k, n, 2);
            let c0 = arr(m, n, 3);
            let mut want = c0.clone();
            general_mat_mul(0.5, &a, &b, 2.0, &mut want);
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut c = c0.clone();
                    mat_mul(0.5, &a.view(), &b.view(), 2.0, &mut c.view_mut());
                    // transposed operands and output
                    let mut ct = c0.t().to_owned();
                    mat_mul(0.5, &b.t(), &a.t(), 2.0, &mut ct.view_mut());
                    (c, ct)
                })
            };
            let (c1, ct1) = run(1);
            let (c2, ct2) = run(2);
            assert_eq!(c1, c2, "bit-identical at 1 and 2 threads ({m}, {k}, {n})");
            assert_eq!(ct1, ct2);
            for (x, y) in c1.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
            }
            for (x, y) in ct1.t().iter().zip(&want) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
        // beta = 0 ignores NaN in c; k = 0 scales c.
        let mut c = Array2::from_elem((2, 2), f32::NAN);
        mat_mul(
            1.0,
            &arr(2, 3, 1).view(),
            &arr(3, 2, 2).view(),
            0.0,
            &mut c.view_mut(),
        );
        assert!(c.iter().all(|v| v.is_finite()));
        let mut c = Array2::from_elem((2, 2), 3.0f32);
        mat_mul(
            1.0,
            &arr(2, 0, 1).view(),
            &arr(0, 2, 2).view(),
            0.5,
            &mut c.view_mut(),
        );
        assert!(c.iter().all(|&v| v == 1.5));
    }
}
