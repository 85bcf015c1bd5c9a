//! Weight initialisation of recurrent layers (`init` option).
//!
//! - `keras` (default), as Keras' `SimpleRNN`/`LSTM`/`GRU`:
//!   - `weight_ih_l0 (G·U, F)`: Glorot uniform over Keras' kernel shape `(F, G·U)`, i.e.
//!     U(−l, l) with `l = sqrt(6 / (F + G·U))` (iid, so the transposed layout changes nothing).
//!   - `weight_hh_l0 (G·U, U)`: Keras' `Orthogonal` on its recurrent-kernel shape `(U, G·U)`:
//!     draw `A ~ N(0, 1)` of shape `(G·U, U)`, take its QR decomposition with a positive
//!     diagonal of R (modified Gram–Schmidt, done here by hand) and use `Q` (orthonormal
//!     columns). Keras' kernel is `Qᵀ`; ours is its transpose, so it is `Q`.
//!   - biases zero, except the LSTM forget gate: Keras' `unit_forget_bias` puts 1 in the forget
//!     slice `[U, 2U)` of its single bias. PyTorch has two biases whose sum acts; seqgrad puts
//!     the 1 in `bias_ih_l0` and leaves `bias_hh_l0` zero.
//! - `pytorch`: every weight and bias U(−1/√U, 1/√U), as `torch.nn.RNN/LSTM/GRU`.
//!
//! Draw order from the layer's rng: `weight_ih`, `weight_hh`, then (pytorch) `bias_ih`,
//! `bias_hh`.

use ndarray::{Array2, ArrayD, IxDyn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::layers::gemm::mat_mul;
use crate::layers::{glorot_limit, uniform};
use crate::spec::RnnInit;
use crate::tensor::Float;

/// The four initial parameter values `[weight_ih, weight_hh, bias_ih, bias_hh]`.
///
/// # Shapes
/// - returns `(G·U, F)`, `(G·U, U)`, `(G·U)`, `(G·U)` with `G = gates`, `U = units`,
///   `F = features`.
pub fn init_params<T: Float>(
    init: RnnInit,
    gates: usize,
    is_lstm: bool,
    features: usize,
    units: usize,
    rng: &mut ChaCha8Rng,
) -> [ArrayD<T>; 4] {
    let gu = gates * units;
    match init {
        RnnInit::Keras => {
            let w_ih = uniform(&[gu, features], glorot_limit(features, gu), rng);
            let w_hh = orthogonal(gu, units, rng).mapv(T::lit).into_dyn();
            let mut b_ih = ArrayD::zeros(IxDyn(&[gu]));
            if is_lstm {
                for j in units..2 * units {
                    b_ih[j] = T::one();
                }
            }
            [w_ih, w_hh, b_ih, ArrayD::zeros(IxDyn(&[gu]))]
        }
        RnnInit::Pytorch => {
            let k = 1.0 / (units as f64).sqrt();
            let w_ih = uniform(&[gu, features], k, rng);
            let w_hh = uniform(&[gu, units], k, rng);
            let b_ih = uniform(&[gu], k, rng);
            let b_hh = uniform(&[gu], k, rng);
            [w_ih, w_hh, b_ih, b_hh]
        }
    }
}

/// A standard normal sample (Box–Muller). Consumes exactly two `u64` draws (four 32-bit words
/// of the ChaCha stream), which [`normals`] relies on to split the stream.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` standard normals, exactly the values `n` calls of [`normal`] would give, and `rng`
/// advanced past them; computed in parallel by jumping in the ChaCha stream
/// (`set_word_pos`), so the result does not depend on the thread count.
fn normals(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    const WORDS: u128 = 4; // 32-bit words per normal
    let start = rng.get_word_pos();
    let mut out = vec![0.0; n];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut r = rng.clone();
            r.set_word_pos(start + WORDS * (i * CHUNK) as u128);
            for v in chunk.iter_mut() {
                *v = normal(&mut r);
            }
        });
    rng.set_word_pos(start + WORDS * n as u128);
    out
}

/// Columns of the block Gram–Schmidt.
const BLOCK: usize = 32;

/// A `(rows, cols)` matrix with orthonormal columns (`rows ≥ cols`), or orthonormal rows when
/// `rows < cols`: the Q factor of a standard normal matrix `A` with R's diagonal made positive
/// (Keras' `Orthogonal`: `q, r = qr(a); q *= sign(diag(r))`).
///
/// Computed by block classical Gram–Schmidt on the columns of `A`, held as contiguous rows of
/// `Aᵀ`: each block of [`BLOCK`] columns is projected out of the finished ones with two GEMMs
/// per pass (at GEMM speed, in parallel; two passes, BCGS2, unless `A` is tall), then
/// orthonormalised within the block by modified Gram–Schmidt. Dividing every column by its
/// (positive) norm is what makes R's diagonal positive, so Q is the same matrix as from
/// Householder QR with the sign fix (up to rounding), and `‖QᵀQ − I‖` stays at rounding level
/// (tested at 1e−12).
///
/// # Shapes
/// - returns `(rows, cols)`.
pub fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    if rows < cols {
        return orthogonal(cols, rows, rng).reversed_axes();
    }
    let a = normals(rows * cols, rng);
    // Aᵀ: row j is column j of A (drawn row-major as A).
    let a = Array2::from_shape_vec((rows, cols), a).expect("rows·cols normals"); // ok: n = rows·cols
    let mut at = a.t().as_standard_layout().into_owned();
    // A tall Gaussian matrix is well conditioned (κ ≤ (1 + √(c/r)) / (1 − √(c/r)) ≈ 5.8 for
    // r ≥ 2c, almost surely for large sizes), where one projection pass already leaves
    // ‖QᵀQ − I‖ at rounding level (loss ∝ ε·κ²); a square one (simple_rnn) is not, and gets the
    // second pass (BCGS2).
    let passes = if rows >= 2 * cols { 1 } else { 2 };
    let mut j0 = 0;
    while j0 < cols {
        let j1 = (j0 + BLOCK).min(cols);
        if j0 > 0 {
            let (done, mut rest) = at.view_mut().split_at(ndarray::Axis(0), j0);
            let mut v = rest.slice_mut(ndarray::s![..j1 - j0, ..]);
            let mut r = Array2::<f64>::zeros((j1 - j0, j0));
            for _ in 0..passes {
                // R = V Qᵀ, V ← V − R Q.
                mat_mul(1.0, &v, &done.t(), 0.0, &mut r);
                mat_mul(-1.0, &r, &done, 1.0, &mut v);
            }
        }
        for j in j0..j1 {
            let (before, mut row) = at.view_mut().split_at(ndarray::Axis(0), j);
            let mut row = row.row_mut(0);
            let row = row.as_slice_mut().expect("row of a standard-layout array"); // ok: contiguous
            for pass in 0..2 {
                for k in j0..j {
                    let q = before.row(k);
                    let q = q.as_slice().expect("row of a standard-layout array"); // ok: contiguous
                    let dot = dot_slice(q, row);
                    row.iter_mut().zip(q).for_each(|(x, &qv)| *x -= dot * qv);
                }
                let norm = dot_slice(row, row).sqrt();
                // A column of a normal matrix is (almost surely) independent of the previous
                // ones; if it is numerically not, replace it by a fresh draw orthogonalised
                // against every finished column (first pass only).
                if pass == 0 && norm < 1e-10 {
                    for x in row.iter_mut() {
                        *x = normal(rng);
                    }
                    for k in 0..j0 {
                        let q = before.row(k);
                        let q = q.as_slice().expect("row of a standard-layout array"); // ok: contiguous
                        let dot = dot_slice(q, row);
                        row.iter_mut().zip(q).for_each(|(x, &qv)| *x -= dot * qv);
                    }
                    continue;
                }
                if pass == 1 {
                    row.iter_mut().for_each(|x| *x /= norm);
                }
            }
        }
        j0 = j1;
    }
    at.reversed_axes().as_standard_layout().into_owned()
}

/// `Σ a_i b_i` in 8 independent partial sums (vectorises).
fn dot_slice(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn orthogonal_has_orthonormal_columns_and_rows() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let q = orthogonal(12, 3, &mut rng);
        let qtq = q.t().dot(&q);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((qtq[[i, j]] - want).abs() < 1e-12, "{qtq}");
            }
        }
        for (r, c) in [(400, 100), (130, 130), (256, 64)] {
            // Q is the QR factor of the Gaussian A it drew: R = QᵀA is upper triangular with a
            // positive diagonal (Keras' sign fix).
            let a = Array2::from_shape_vec((r, c), normals(r * c, &mut rng.clone())).unwrap();
            let q = orthogonal(r, c, &mut rng);
            let rr = q.t().dot(&a);
            for i in 0..c {
                assert!(rr[[i, i]] > 0.0);
                for j in 0..i {
                    assert!(rr[[i, j]].abs() < 1e-10, "R[{i}, {j}] = {}", rr[[i, j]]);
                }
            }
            let e = (q.t().dot(&q) - Array2::<f64>::eye(c))
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(e < 1e-12, "({r}, {c}): {e:e}");
        }
        let p = orthogonal(3, 12, &mut rng);
        let ppt = p.dot(&p.t());
        for i in 0..3 {
            assert!((ppt[[i, i]] - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn keras_init_sets_lstm_forget_bias_in_bias_ih() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let [w_ih, w_hh, b_ih, b_hh] = init_params::<f64>(RnnInit::Keras, 4, true, 5, 3, &mut rng);
        assert_eq!(w_ih.shape(), &[12, 5]);
        assert_eq!(w_hh.shape(), &[12, 3]);
        let l = glorot_limit(5, 12);
        assert!(w_ih.iter().all(|v| v.abs() <= l));
        assert_eq!(
            b_ih.as_slice().unwrap(),
            &[0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]
        );
        assert!(b_hh.iter().all(|&v| v == 0.0));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ps = init_params::<f64>(RnnInit::Pytorch, 3, false, 5, 4, &mut rng);
        for p in &ps {
            assert!(p.iter().all(|v| v.abs() <= 0.5));
            assert!(p.iter().any(|&v| v != 0.0));
        }
    }
}
