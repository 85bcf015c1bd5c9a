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

super::spec::recurrent_kind!(GruKind, Gru, "GRU");

crate::tensor::wide_kernel! {
    /// One forward step for one batch row: writes the gates `[r, z, n]` over `pre` and `h_t`.
    ///
    /// # Shapes
    /// - `pre`: `(3·units)` input projections `x̂` in, gates out; `hh`: `(3·units)` `ĥ`;
    ///   `h_prev`, `h`: `(units)`.
    pub(crate) fn forward_row / forward_body<T>(
        pre: &mut [T],
        hh: &[T],
        h_prev: &[T],
        h: &mut [T],
    ) {
        let u = h.len();
        let one = T::one();
        let (r, rest) = pre.split_at_mut(u);
        let (z, n) = rest.split_at_mut(u);
        // Every slice cut to exactly `u`, so the loop has no bounds checks and vectorises.
        let (r, z, n, h, h_prev) = (
            &mut r[..u],
            &mut z[..u],
            &mut n[..u],
            &mut h[..u],
            &h_prev[..u],
        );
        let (hr, hz, hn) = (&hh[..u], &hh[u..2 * u], &hh[2 * u..3 * u]);
        for j in 0..u {
            let rv = sigmoid(r[j] + hr[j]);
            let zv = sigmoid(z[j] + hz[j]);
            let nv = tanh(n[j] + rv * hn[j]);
            r[j] = rv;
            z[j] = zv;
            n[j] = nv;
            h[j] = (one - zv) * nv + zv * h_prev[j];
        }
    }
}

crate::tensor::wide_kernel! {
    /// One backward step for one batch row: the input-side and recurrent-side pre-activation
    /// gradients and the direct part of `dh_{t−1}`.
    ///
    /// # Shapes
    /// - `gates`, `hh`, `dax`, `dah`: `(3·units)`; `h_prev`, `dh`, `dh_prev`: `(units)`.
    pub(crate) fn backward_row / backward_body<T>(
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
        // Every slice cut to exactly `u`, so the loop has no bounds checks and vectorises.
        let (gr, gz, gn) = (&gates[..u], &gates[u..2 * u], &gates[2 * u..3 * u]);
        let (hn, h_prev, dh) = (&hh[2 * u..3 * u], &h_prev[..u], &dh[..u]);
        let (dxr, rest) = dax.split_at_mut(u);
        let (dxz, dxn) = rest.split_at_mut(u);
        let (dhr, rest) = dah.split_at_mut(u);
        let (dhz, dhn) = rest.split_at_mut(u);
        let (dxn, dhn, dh_prev) = (&mut dxn[..u], &mut dhn[..u], &mut dh_prev[..u]);
        for j in 0..u {
            let (rv, zv, nv) = (gr[j], gz[j], gn[j]);
            let g = dh[j];
            let dan = g * (one - zv) * (one - nv * nv);
            let dar = dan * hn[j] * rv * (one - rv);
            let daz = g * (h_prev[j] - nv) * zv * (one - zv);
            dxr[j] = dar;
            dxz[j] = daz;
            dxn[j] = dan;
            dhr[j] = dar;
            dhz[j] = daz;
            dhn[j] = dan * rv;
            dh_prev[j] = g * zv;
        }
    }
}
