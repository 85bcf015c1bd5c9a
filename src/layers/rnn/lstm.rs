//! `lstm`: the long short-term memory cell, gates i, f, g, o (G = 4, PyTorch's row order in
//! `weight_ih_l0` / `weight_hh_l0`).
//!
//! Forward (per batch row), with `a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh` split in four:
//! `i = σ(a_i)`, `f = σ(a_f)`, `g = tanh(a_g)`, `o = σ(a_o)`,
//! `c_t = f ⊙ c_{t−1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`.
//!
//! Backward, given the total `dh_t` and the cell-state gradient `dc` carried from step t+1:
//! `do = dh_t ⊙ tanh(c_t)`, `dc_t = dc + dh_t ⊙ o ⊙ (1 − tanh²(c_t))`,
//! `di = dc_t ⊙ g`, `df = dc_t ⊙ c_{t−1}`, `dg = dc_t ⊙ i`, `dc_{t−1} = dc_t ⊙ f`;
//! pre-activations: `da_i = di ⊙ i(1−i)`, `da_f = df ⊙ f(1−f)`, `da_g = dg ⊙ (1−g²)`,
//! `da_o = do ⊙ o(1−o)`. `dh_{t−1} = W_hhᵀ da` (GEMM in the shared loop).
//!
//! The recurrent loop, caches and parameter GEMMs are shared by all cells (see [`super`]).

use super::sigmoid;
use super::tanh;
use crate::tensor::Float;

super::spec::recurrent_kind!(LstmKind, Lstm, "LSTM");

/// One forward step for one batch row: activates the four gates in place, writes `c_t`, `h_t`.
///
/// # Shapes
/// - `pre`: `(4·units)` pre-activations in, gates `[i, f, g, o]` out; `c_prev`, `c`, `h`: `(units)`.
#[inline]
pub(crate) fn forward_row<T: Float>(pre: &mut [T], c_prev: &[T], c: &mut [T], h: &mut [T]) {
    let u = h.len();
    let (i, rest) = pre.split_at_mut(u);
    let (f, rest) = rest.split_at_mut(u);
    let (g, o) = rest.split_at_mut(u);
    forward_kernel(i, f, g, o, c_prev, c, h);
}

crate::tensor::wide_kernel! {
    /// The element-wise body of [`forward_row`], 8 lanes wide on AVX2 with the same bits
    /// ([`crate::tensor::wide_kernel`]). Every slice is a separate argument: function arguments
    /// carry `noalias`, which the sub-slices of one buffer would not, so the loop vectorises
    /// without run-time overlap checks.
    pub(crate) fn forward_kernel / forward_body<T>(
        i: &mut [T],
        f: &mut [T],
        g: &mut [T],
        o: &mut [T],
        c_prev: &[T],
        c: &mut [T],
        h: &mut [T],
    ) {
        let u = h.len();
        // Every slice re-cut to exactly `u`, so the loop has no bounds checks.
        let (i, f, g, o) = (&mut i[..u], &mut f[..u], &mut g[..u], &mut o[..u]);
        let (c_prev, c) = (&c_prev[..u], &mut c[..u]);
        for j in 0..u {
            let (iv, fv, gv, ov) = (sigmoid(i[j]), sigmoid(f[j]), tanh(g[j]), sigmoid(o[j]));
            i[j] = iv;
            f[j] = fv;
            g[j] = gv;
            o[j] = ov;
            let cv = fv * c_prev[j] + iv * gv;
            c[j] = cv;
            h[j] = ov * tanh(cv);
        }
    }
}

/// One backward step for one batch row. `dc` holds the cell-state gradient from step t+1 on
/// entry and `dc_{t−1}` on exit.
///
/// # Shapes
/// - `gates`, `da`: `(4·units)`; `c_prev`, `c`, `dh`, `dc`: `(units)`.
#[inline]
pub(crate) fn backward_row<T: Float>(
    gates: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &mut [T],
    da: &mut [T],
) {
    let u = dh.len();
    let (dai, rest) = da.split_at_mut(u);
    let (daf, rest) = rest.split_at_mut(u);
    let (dag, dao) = rest.split_at_mut(u);
    let (gi, rest) = gates.split_at(u);
    let (gf, rest) = rest.split_at(u);
    let (gg, go) = rest.split_at(u);
    backward_kernel([gi, gf, gg, go], c_prev, c, dh, dc, [dai, daf, dag, dao]);
}

crate::tensor::wide_kernel! {
    /// The element-wise body of [`backward_row`], 8 lanes wide on AVX2 with the same bits
    /// (separate `noalias` arguments, see [`forward_kernel`]).
    pub(crate) fn backward_kernel / backward_body<T>(
        gates: [&[T]; 4],
        c_prev: &[T],
        c: &[T],
        dh: &[T],
        dc: &mut [T],
        da: [&mut [T]; 4],
    ) {
        let [gi, gf, gg, go] = gates;
        let [dai, daf, dag, dao] = da;
        let u = dh.len();
        let one = T::one();
        // Every slice re-cut to exactly `u`, so the loop has no bounds checks.
        let (dai, daf, dag, dao) = (&mut dai[..u], &mut daf[..u], &mut dag[..u], &mut dao[..u]);
        let (gi, gf, gg, go) = (&gi[..u], &gf[..u], &gg[..u], &go[..u]);
        let (c_prev, c, dc) = (&c_prev[..u], &c[..u], &mut dc[..u]);
        for j in 0..u {
            let (iv, fv, gv, ov) = (gi[j], gf[j], gg[j], go[j]);
            let tc = tanh(c[j]);
            let dct = dc[j] + dh[j] * ov * (one - tc * tc);
            dai[j] = dct * gv * iv * (one - iv);
            daf[j] = dct * c_prev[j] * fv * (one - fv);
            dag[j] = dct * iv * (one - gv * gv);
            dao[j] = dh[j] * tc * ov * (one - ov);
            dc[j] = dct * fv;
        }
    }
}
