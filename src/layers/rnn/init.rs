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

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A `(rows, cols)` matrix with orthonormal columns (`rows ≥ cols`), or orthonormal rows when
/// `rows < cols`: the Q factor of a standard normal matrix, with R's diagonal made positive.
///
/// # Shapes
/// - returns `(rows, cols)`.
pub fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    if rows < cols {
        return orthogonal(cols, rows, rng).reversed_axes();
    }
    let mut a = Array2::from_shape_simple_fn((rows, cols), || normal(rng));
    // Modified Gram–Schmidt over the columns: R's diagonal is the (positive) norm.
    for j in 0..cols {
        for k in 0..j {
            let dot: f64 = (0..rows).map(|i| a[[i, k]] * a[[i, j]]).sum();
            for i in 0..rows {
                a[[i, j]] -= dot * a[[i, k]];
            }
        }
        let norm = (0..rows).map(|i| a[[i, j]] * a[[i, j]]).sum::<f64>().sqrt();
        // A column of a normal matrix is (almost surely) independent of the previous ones; if it
        // is not, replace it by a fresh draw orthogonalised again.
        if norm < 1e-10 {
            for i in 0..rows {
                a[[i, j]] = normal(rng);
            }
            for k in 0..j {
                let dot: f64 = (0..rows).map(|i| a[[i, k]] * a[[i, j]]).sum();
                for i in 0..rows {
                    a[[i, j]] -= dot * a[[i, k]];
                }
            }
        }
        let norm = (0..rows).map(|i| a[[i, j]] * a[[i, j]]).sum::<f64>().sqrt();
        for i in 0..rows {
            a[[i, j]] /= norm;
        }
    }
    a
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
