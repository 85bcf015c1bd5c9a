//! Weight initialisation of recurrent layers (`init` option).
//!
//! - `keras` (default), as Keras' `SimpleRNN`/`LSTM`/`GRU`:
//!   - `weight_ih_l0 (G·U, F)`: Glorot uniform over Keras' kernel shape `(F, G·U)`, i.e.
//!     U(−l, l) with `l = sqrt(6 / (F + G·U))` (iid, so the transposed layout changes nothing).
//!   - `weight_hh_l0 (G·U, U)`: Keras' `Orthogonal` on its recurrent-kernel shape `(U, G·U)`:
//!     draw `A ~ N(0, 1)` of shape `(G·U, U)`, take its QR decomposition with a positive
//!     diagonal of R (recursive block Gram–Schmidt whose projections are GEMMs, see
//!     [`orthogonal_as`]) and use `Q` (orthonormal columns). Keras' kernel is `Qᵀ`; ours is
//!     its transpose, so it is `Q`.
//!   - biases zero, except the LSTM forget gate: Keras' `unit_forget_bias` puts 1 in the forget
//!     slice `[U, 2U)` of its single bias. PyTorch has two biases whose sum acts; seqgrad puts
//!     the 1 in `bias_ih_l0` and leaves `bias_hh_l0` zero.
//! - `pytorch`: every weight and bias U(−1/√U, 1/√U), as `torch.nn.RNN/LSTM/GRU`.
//!
//! - `recurrent_init` overrides `weight_hh`: `orthogonal` (as Keras), `identity` (`simple_rnn`
//!   only: `W_hh = I`, Le et al. 2015's IRNN), `pytorch` (U(−1/√U, 1/√U)).
//! - `bias_init` overrides the biases: `keras` (as above), `zeros`, `chrono` (gated cells:
//!   [`set_chrono`] with `T = chrono_t_max`, default the input length).
//!
//! Draw order from the layer's rng: `weight_ih`, `weight_hh` (none for identity), then the
//! biases (pytorch: `bias_ih`, `bias_hh`; chrono: one draw per unit).

use ndarray::{s, Array2, ArrayD, Axis, IxDyn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::ShapeIssue;
use crate::layers::gemm::mat_mul;
use crate::layers::registry::LayerSpec;
use crate::layers::rnn::RnnInit;
use crate::layers::rnn::{BiasInit, RecurrentInit, RnnSpec};
use crate::layers::{glorot_limit, par_draws, uniform};
use crate::tensor::Float;

/// The four initial parameter values `[weight_ih, weight_hh, bias_ih, bias_hh]` of a layer
/// with options `rnn` (`init`, and `recurrent_init` / `bias_init` / `chrono_t_max` overriding
/// it) over an input of `length` steps, or why the options do not fit the cell.
///
/// # Shapes
/// - returns `(G·U, F)`, `(G·U, U)`, `(G·U)`, `(G·U)` with `G = gates`, `U = units`,
///   `F = features`.
pub fn init_params<T: Float>(
    rnn: &RnnSpec,
    gates: usize,
    is_lstm: bool,
    features: usize,
    length: usize,
    rng: &mut ChaCha8Rng,
) -> Result<[ArrayD<T>; 4], ShapeIssue> {
    let (units, gu) = (rnn.units, gates * rnn.units);
    let k = 1.0 / (units as f64).sqrt();
    let recurrent = rnn.recurrent_init.unwrap_or(match rnn.init {
        RnnInit::Keras => RecurrentInit::Orthogonal,
        RnnInit::Pytorch => RecurrentInit::Pytorch,
    });
    if recurrent == RecurrentInit::Identity && gates > 1 {
        return Err(ShapeIssue::Invalid(
            "recurrent_init identity is for simple_rnn (IRNN); gated cells take orthogonal or \
             pytorch"
                .into(),
        ));
    }
    let t_max = match rnn.bias_init {
        Some(BiasInit::Chrono) => {
            if gates == 1 {
                return Err(ShapeIssue::Invalid(
                    "bias_init chrono sets gate biases and simple_rnn has no gates; use keras \
                     or zeros"
                        .into(),
                ));
            }
            let t = rnn.chrono_t_max.unwrap_or(length);
            if t < 3 {
                return Err(ShapeIssue::Invalid(format!(
                    "chrono_t_max must be at least 3 (biases ln U(1, T−1)), got {t}"
                )));
            }
            t
        }
        _ => 0,
    };
    let w_ih = match rnn.init {
        RnnInit::Keras => uniform(&[gu, features], glorot_limit(features, gu), rng),
        RnnInit::Pytorch => uniform(&[gu, features], k, rng),
    };
    let w_hh = match recurrent {
        RecurrentInit::Orthogonal => orthogonal_as::<T>(gu, units, rng).into_dyn(),
        RecurrentInit::Pytorch => uniform(&[gu, units], k, rng),
        RecurrentInit::Identity => Array2::<T>::eye(units).into_dyn(),
    };
    let zeros = || ArrayD::<T>::zeros(IxDyn(&[gu]));
    let biases = match (rnn.bias_init, rnn.init) {
        (None, RnnInit::Pytorch) => {
            let b_ih = uniform(&[gu], k, rng);
            (b_ih, uniform(&[gu], k, rng))
        }
        (None, RnnInit::Keras) | (Some(BiasInit::Keras), _) => {
            let mut b_ih = zeros();
            if is_lstm {
                b_ih.slice_mut(s![units..2 * units]).fill(T::one());
            }
            (b_ih, zeros())
        }
        (Some(BiasInit::Zeros), _) => (zeros(), zeros()),
        (Some(BiasInit::Chrono), _) => {
            let (mut b_ih, mut b_hh) = (zeros(), zeros());
            set_chrono(gates, &mut b_ih, &mut b_hh, t_max as f64, rng);
            (b_ih, b_hh)
        }
    };
    Ok([w_ih, w_hh, biases.0, biases.1])
}

/// A recurrent layer (or the one a `bidirectional` wraps) with `bias_init: chrono` and no
/// `chrono_t_max` takes `T` from its input length, so it cannot be built at an unknown (null)
/// length: that is a [`ShapeIssue::NeedsFixedLength`].
pub fn check_unknown_length(spec: &LayerSpec) -> Result<(), ShapeIssue> {
    let rnn = match spec {
        LayerSpec::SimpleRnn(r) | LayerSpec::Lstm(r) | LayerSpec::Gru(r) => r,
        LayerSpec::Bidirectional(b) => b.layer.rnn(),
        _ => return Ok(()),
    };
    if rnn.bias_init == Some(BiasInit::Chrono) && rnn.chrono_t_max.is_none() {
        return Err(ShapeIssue::NeedsFixedLength(
            "bias_init chrono takes T from the input length, which is null here: give \
             chrono_t_max (the longest dependency to remember, in steps)"
                .into(),
        ));
    }
    Ok(())
}

/// Chrono initialisation's gate biases (Tallec & Ollivier 2018, "Can recurrent neural
/// networks warp time?"): `b_j = ln u_j` with `u_j ~ U(1, t_max − 1)` iid per unit, so the
/// characteristic memory `1/(1 − σ(b_j)) ≈ u_j` steps spreads over `1 … t_max − 1`. Needs
/// `t_max > 2` (a smaller `t_max` gives all zeros: `ln 1`).
pub fn chrono_draws(units: usize, t_max: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let hi = (t_max - 1.0).max(1.0);
    (0..units)
        .map(|_| (1.0 + (hi - 1.0) * rng.random::<f64>()).ln())
        .collect()
}

/// Sets chrono gate biases in one direction's `bias_ih` / `bias_hh` (`(G·U)` each, PyTorch
/// gate order) from [`chrono_draws`] `b`: LSTM (`G = 4`, gates i, f, g, o) forget gate
/// `b_f = b` and input gate `b_i = −b`; GRU (`G = 3`, gates r, z, n) update gate `b_z = b`
/// (`h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`, so z near 1 keeps the state). The same slices of
/// `bias_hh` are zeroed, so the sums PyTorch and Keras act on are exactly these values; the
/// other biases are left as they are. Returns false (and changes nothing) for a cell without
/// gates (`G = 1`).
pub fn set_chrono<T: Float>(
    gates: usize,
    b_ih: &mut ArrayD<T>,
    b_hh: &mut ArrayD<T>,
    t_max: f64,
    rng: &mut ChaCha8Rng,
) -> bool {
    if gates == 1 || gates == 0 {
        return false;
    }
    let units = b_ih.len() / gates;
    let b = chrono_draws(units, t_max, rng);
    for (j, &v) in b.iter().enumerate() {
        b_ih[units + j] = T::lit(v);
        b_hh[units + j] = T::zero();
        if gates == 4 {
            b_ih[j] = T::lit(-v);
            b_hh[j] = T::zero();
        }
    }
    true
}

/// A standard normal sample (Box–Muller). Consumes exactly two `u64` draws (four 32-bit words
/// of the ChaCha stream), which [`normals`] relies on to split the stream.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` standard normals, exactly the values `n` calls of [`normal`] would give, and `rng`
/// advanced past them; drawn in parallel by jumping in the ChaCha stream ([`par_draws`]), so
/// the result does not depend on the thread count.
fn normals(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    par_draws(n, 4, rng, normal) // 4 32-bit words per normal
}

/// Rows of the leaves of the recursive Gram–Schmidt (orthonormalised by modified
/// Gram–Schmidt, one vector at a time).
const LEAF: usize = 32;

/// A `(rows, cols)` matrix with orthonormal columns (`rows ≥ cols`), or orthonormal rows when
/// `rows < cols`: the Q factor of a standard normal matrix `A` with R's diagonal made positive
/// (Keras' `Orthogonal`: `q, r = qr(a); q *= sign(diag(r))`), in `T`.
///
/// Computed by recursive block classical Gram–Schmidt on the columns of `A`, held as contiguous
/// rows of `Aᵀ` (see [`orthonormalise_rows`]): the products that project one half of the
/// columns out of the other are big GEMMs (the crate's parallel [`mat_mul`]), which is why a
/// bidirectional LSTM with 2,048 units builds in seconds. Dividing every column by its
/// (positive) norm is what makes R's diagonal positive, so Q is the same matrix as from
/// Householder QR with the sign fix (up to rounding), and `‖QᵀQ − I‖` stays at rounding level
/// (tested at 1e−12). Every step is deterministic at any thread count.
///
/// # Shapes
/// - returns `(rows, cols)`.
pub fn orthogonal_as<T: Float>(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<T> {
    if rows < cols {
        return orthogonal_as::<T>(cols, rows, rng)
            .reversed_axes()
            .as_standard_layout()
            .into_owned();
    }
    let a = normals(rows * cols, rng);
    // Aᵀ: row j is column j of A (drawn row-major as A).
    let mut at = Array2::from_shape_vec((cols, rows), transpose(&a, rows, cols, |v| v))
        .expect("rows·cols values"); // ok: len = rows·cols
                                     // A tall Gaussian matrix is well conditioned (κ ≤ (1 + √(c/r)) / (1 − √(c/r)) ≈ 5.8 for
                                     // r ≥ 2c, almost surely for large sizes), where one projection pass already leaves
                                     // ‖QᵀQ − I‖ at rounding level (loss ∝ ε·κ²); a square one (simple_rnn) is not, and every
                                     // projection is done twice (CGS2, "twice is enough").
    let passes = if rows >= 2 * cols { 1 } else { 2 };
    orthonormalise_rows(&mut at, 0, cols, passes, rng);
    let q = transpose(at.as_slice().expect("standard layout"), cols, rows, T::lit); // ok: owned
    Array2::from_shape_vec((rows, cols), q).expect("rows·cols values") // ok: len = rows·cols
}

/// [`orthogonal_as`] in f64.
///
/// # Shapes
/// - returns `(rows, cols)`.
pub fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    orthogonal_as::<f64>(rows, cols, rng)
}

/// `f` of the transpose of the row-major `(rows, cols)` matrix `src`, as a row-major
/// `(cols, rows)` vector; by 64 × 64 tiles, in parallel over bands of output rows.
fn transpose<T: Send + Copy + Default>(
    src: &[f64],
    rows: usize,
    cols: usize,
    f: impl Fn(f64) -> T + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    const TILE: usize = 64;
    let mut out = vec![T::default(); rows * cols];
    if rows == 0 {
        return out;
    }
    out.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, dst)| {
            let c0 = band * TILE;
            let c1 = (c0 + TILE).min(cols);
            for r0 in (0..rows).step_by(TILE) {
                for c in c0..c1 {
                    let d = &mut dst[(c - c0) * rows..];
                    for r in r0..(r0 + TILE).min(rows) {
                        d[r] = f(src[r * cols + c]);
                    }
                }
            }
        });
    out
}

/// Orthonormalises rows `lo..hi` of `at` (each row a column of A), which on entry have been
/// projected out of rows `0..lo` already: rows `lo..mid` recursively, then rows `mid..hi`
/// projected out of them (`R = V·Qᵀ`, `V ← V − R·Q`, `passes` times: two GEMMs each), then rows
/// `mid..hi` recursively. Leaves of at most [`LEAF`] rows are done by modified Gram–Schmidt,
/// each vector twice (MGS2), then divided by its norm.
///
/// # Shapes
/// - `at`: `(cols, rows)` with contiguous rows.
fn orthonormalise_rows(
    at: &mut Array2<f64>,
    lo: usize,
    hi: usize,
    passes: usize,
    rng: &mut ChaCha8Rng,
) {
    if hi - lo <= LEAF {
        leaf_mgs(at, lo, hi, rng);
        return;
    }
    // Split at a multiple of LEAF so the leaves are full.
    let mid = lo + (hi - lo).div_ceil(2 * LEAF) * LEAF;
    orthonormalise_rows(at, lo, mid, passes, rng);
    {
        let (done, mut rest) = at.view_mut().split_at(Axis(0), mid);
        let q = done.slice(s![lo.., ..]);
        let mut v = rest.slice_mut(s![..hi - mid, ..]);
        let mut r = Array2::<f64>::zeros((hi - mid, mid - lo));
        for _ in 0..passes {
            mat_mul(1.0, &v, &q.t(), 0.0, &mut r);
            mat_mul(-1.0, &r, &q, 1.0, &mut v);
        }
    }
    orthonormalise_rows(at, mid, hi, passes, rng);
}

/// Modified Gram–Schmidt (each vector twice) of rows `lo..hi` of `at`, which are already
/// orthogonal to rows `0..lo`.
fn leaf_mgs(at: &mut Array2<f64>, lo: usize, hi: usize, rng: &mut ChaCha8Rng) {
    for j in lo..hi {
        let (before, mut row) = at.view_mut().split_at(Axis(0), j);
        let mut row = row.row_mut(0);
        let row = row.as_slice_mut().expect("row of a standard-layout array"); // ok: contiguous
        for pass in 0..2 {
            for k in lo..j {
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
                for k in 0..lo {
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

    fn spec(init: RnnInit, units: usize) -> RnnSpec {
        RnnSpec {
            units,
            init,
            ..Default::default()
        }
    }

    #[test]
    fn chrono_biases_are_log_uniform_on_1_to_t_max_minus_1() {
        // Kolmogorov–Smirnov against the CDF of ln U(1, T−1): P(b ≤ x) = (eˣ − 1) / (T − 2).
        let (units, t_max) = (4000, 200.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut b = chrono_draws(units, t_max, &mut rng);
        b.sort_by(f64::total_cmp);
        assert!(b[0] >= 0.0 && b[units - 1] <= (t_max - 1.0f64).ln());
        let d = b
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                let f = (x.exp() - 1.0) / (t_max - 2.0);
                (f - k as f64 / units as f64)
                    .abs()
                    .max((f - (k + 1) as f64 / units as f64).abs())
            })
            .fold(0.0f64, f64::max);
        // 1.63/√n is the 1% critical value; a uniform (not log-uniform) draw gives d ≈ 0.5.
        assert!(d < 1.63 / (units as f64).sqrt(), "KS distance {d}");
        // the median memory 1/(1 − σ(b)) ≈ eᵇ is near the middle of 1 … T−1
        let median = b[units / 2].exp();
        assert!((median - t_max / 2.0).abs() < 0.05 * t_max, "{median}");
    }

    #[test]
    fn chrono_sets_the_lstm_forget_and_input_and_the_gru_update_gate() {
        let u = 5;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut ih = ArrayD::<f64>::from_elem(IxDyn(&[4 * u]), 0.25);
        let mut hh = ArrayD::<f64>::from_elem(IxDyn(&[4 * u]), 0.5);
        assert!(set_chrono(4, &mut ih, &mut hh, 50.0, &mut rng));
        for j in 0..u {
            assert!(ih[u + j] >= 0.0 && ih[u + j] <= 49f64.ln());
            assert_eq!(ih[j], -ih[u + j]);
            assert_eq!((hh[j], hh[u + j]), (0.0, 0.0));
            // cell candidate and output gate untouched
            assert_eq!((ih[2 * u + j], hh[3 * u + j]), (0.25, 0.5));
        }
        let mut ih = ArrayD::<f64>::zeros(IxDyn(&[3 * u]));
        let mut hh = ArrayD::<f64>::from_elem(IxDyn(&[3 * u]), 0.5);
        assert!(set_chrono(3, &mut ih, &mut hh, 50.0, &mut rng));
        assert!((0..u).all(|j| ih[u + j] > 0.0 && hh[u + j] == 0.0 && ih[j] == 0.0));
        let mut ih = ArrayD::<f64>::zeros(IxDyn(&[u]));
        let mut hh = ih.clone();
        assert!(!set_chrono(1, &mut ih, &mut hh, 50.0, &mut rng));
        assert!(ih.iter().all(|&v| v == 0.0));
    }

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

    /// max |QᵀQ − I|.
    fn orth_err(q: &Array2<f64>) -> f64 {
        (q.t().dot(q) - Array2::<f64>::eye(q.ncols()))
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
    }

    /// Square (simple_rnn, two passes), tall 4U × U (lstm), 3U × U (gru) and a width that is
    /// not a multiple of the leaf: orthonormal to 1e−12 and R = QᵀA upper triangular with a
    /// positive diagonal, across several levels of the recursion.
    #[test]
    fn recursive_gram_schmidt_is_householder_qr_with_the_sign_fix() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (r, c) in [(300, 300), (4 * 150, 150), (3 * 97, 97), (200, 199)] {
            let a = Array2::from_shape_vec((r, c), normals(r * c, &mut rng.clone())).unwrap();
            let q = orthogonal(r, c, &mut rng);
            assert_eq!(q.dim(), (r, c));
            let e = orth_err(&q);
            assert!(e < 1e-12, "({r}, {c}): |QᵀQ − I| = {e:e}");
            let rr = q.t().dot(&a);
            for i in 0..c {
                assert!(rr[[i, i]] > 0.0, "({r}, {c}): R[{i}, {i}] = {}", rr[[i, i]]);
                for j in 0..i {
                    assert!(rr[[i, j]].abs() < 1e-10, "R[{i}, {j}] = {}", rr[[i, j]]);
                }
            }
            // A = QR: Q spans A's columns (nothing lost in the projections).
            let back = q.dot(&rr) - &a;
            let e = back.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(e < 1e-10, "({r}, {c}): |QR − A| = {e:e}");
        }
        // Wide: orthonormal rows, the transpose of the tall factor of the same draws.
        let p = orthogonal(40, 160, &mut rng.clone());
        let q = orthogonal(160, 40, &mut rng);
        assert_eq!(p, q.t());
        assert!(orth_err(&q) < 1e-12);
    }

    /// Same seed → bit-identical weights at 1 and 2 threads (GEMMs and parallel draws
    /// included), in f64 and f32, and the rng ends in the same place.
    #[test]
    fn orthogonal_and_uniform_are_thread_count_independent() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                let q = orthogonal(4 * 160, 160, &mut rng);
                let s = orthogonal(150, 150, &mut rng);
                let p = init_params::<f32>(&spec(RnnInit::Keras, 100), 4, true, 70, 10, &mut rng)
                    .unwrap();
                let u = uniform::<f32>(&[300, 200], 0.1, &mut rng);
                (q, s, p, u, rng.get_word_pos())
            })
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one.0, two.0);
        assert_eq!(one.1, two.1);
        assert_eq!(one.2, two.2);
        assert_eq!(one.3, two.3);
        assert_eq!(one.4, two.4);
    }

    /// The parallel draws are exactly the serial ones, and leave the rng where the serial draws
    /// would.
    #[test]
    fn parallel_draws_equal_serial_draws() {
        let n = 3 * (1 << 14) + 5; // several chunks and a partial one
        let mut par = ChaCha8Rng::seed_from_u64(9);
        let _: u32 = par.random(); // an odd word position to start from
        let mut ser = par.clone();
        let u = uniform::<f64>(&[n], 0.3, &mut par);
        let z = normals(n, &mut par);
        let after: u64 = par.random();
        for (i, &v) in u.iter().enumerate() {
            assert_eq!(v, ser.random_range(-0.3..=0.3), "uniform {i}");
        }
        for (i, &v) in z.iter().enumerate() {
            assert_eq!(v, normal(&mut ser), "normal {i}");
        }
        assert_eq!(after, ser.random::<u64>());
    }

    #[test]
    fn keras_init_sets_lstm_forget_bias_in_bias_ih() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let [w_ih, w_hh, b_ih, b_hh] =
            init_params::<f64>(&spec(RnnInit::Keras, 3), 4, true, 5, 10, &mut rng).unwrap();
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
        let ps = init_params::<f64>(&spec(RnnInit::Pytorch, 4), 3, false, 5, 10, &mut rng).unwrap();
        for p in &ps {
            assert!(p.iter().all(|v| v.abs() <= 0.5));
            assert!(p.iter().any(|&v| v != 0.0));
        }
    }
}
