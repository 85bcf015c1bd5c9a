//! `gru`: the gated recurrent unit, gates r, z, n (G = 3, PyTorch's row order), with the reset
//! gate applied after the recurrent matrix product (PyTorch; Keras' `reset_after=True`).
//!
//! Forward (per batch row), with `x̂ = W_ih x_t + b_ih` and `ĥ = W_hh h_{t−1} + b_hh` each
//! split in three:
//! `r = σ(x̂_r + ĥ_r)`, `z = σ(x̂_z + ĥ_z)`, `n = tanh(x̂_n + r ⊙ ĥ_n)`,
//! `h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`.
//!
//! Backward, given the total `dh_t`:
//! `dn = dh_t ⊙ (1 − z)`, `dz = dh_t ⊙ (h_{t−1} − n)`, direct `dh_{t−1} ⊇ dh_t ⊙ z`;
//! `dâ_n = dn ⊙ (1 − n²)` (gradient w.r.t. `x̂_n`), `dĥ_n = dâ_n ⊙ r`,
//! `dâ_r = dâ_n ⊙ ĥ_n ⊙ r(1−r)`, `dâ_z = dz ⊙ z(1−z)`.
//! The input side gets `dx̂ = [dâ_r, dâ_z, dâ_n]`, the recurrent side
//! `dĥ = [dâ_r, dâ_z, dĥ_n]`; `dh_{t−1} = dh_t ⊙ z + W_hhᵀ dĥ` (GEMM in the shared loop).
//! Because the two sides differ, the GRU caches `ĥ` per step and keeps a separate `dĥ` buffer.
//!
//! The recurrent loop, caches and parameter GEMMs are shared by all cells (see [`super`]).

use super::sigmoid;
use super::tanh;
use crate::tensor::Float;

super::spec::recurrent_kind!(GruKind, Gru, "GRU");

/// One forward step for one batch row: writes the gates `[r, z, n]` over `pre` and `h_t`.
///
/// # Shapes
/// - `pre`: `(3·units)` input projections `x̂` in, gates out; `hh`: `(3·units)` `ĥ`;
///   `h_prev`, `h`: `(units)`.
#[inline]
pub(crate) fn forward_row<T: Float>(pre: &mut [T], hh: &[T], h_prev: &[T], h: &mut [T]) {
    let u = h.len();
    let one = T::one();
    let (r, rest) = pre.split_at_mut(u);
    let (z, n) = rest.split_at_mut(u);
    for j in 0..u {
        let rv = sigmoid(r[j] + hh[j]);
        let zv = sigmoid(z[j] + hh[u + j]);
        let nv = tanh(n[j] + rv * hh[2 * u + j]);
        r[j] = rv;
        z[j] = zv;
        n[j] = nv;
        h[j] = (one - zv) * nv + zv * h_prev[j];
    }
}

/// One backward step for one batch row: the input-side and recurrent-side pre-activation
/// gradients and the direct part of `dh_{t−1}`.
///
/// # Shapes
/// - `gates`, `hh`, `dax`, `dah`: `(3·units)`; `h_prev`, `dh`, `dh_prev`: `(units)`.
#[inline]
pub(crate) fn backward_row<T: Float>(
    gates: &[T],
    hh: &[T],
    h_prev: &[T],
    dh: &[T],
    dax: &mut [T],
    dah: &mut [T],
    dh_prev: &mut [T],
) {
    let u = dh.len();
    let one = T::one();
    for j in 0..u {
        let (rv, zv, nv) = (gates[j], gates[u + j], gates[2 * u + j]);
        let g = dh[j];
        let dan = g * (one - zv) * (one - nv * nv);
        let dar = dan * hh[2 * u + j] * rv * (one - rv);
        let daz = g * (h_prev[j] - nv) * zv * (one - zv);
        dax[j] = dar;
        dax[u + j] = daz;
        dax[2 * u + j] = dan;
        dah[j] = dar;
        dah[u + j] = daz;
        dah[2 * u + j] = dan * rv;
        dh_prev[j] = g * zv;
    }
}
