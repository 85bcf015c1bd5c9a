//! `simple_rnn`: the Elman cell, one gate (G = 1).
//!
//! Forward (per batch row, `act` = `tanh` or `relu`):
//! `a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh`, `h_t = act(a_t)`.
//!
//! Backward, given the total gradient `dh_t` reaching `h_t`:
//! `da_t = dh_t ⊙ act'(a_t)` with `tanh' = 1 − h_t²`, `relu' = [h_t > 0]` (from the cached
//! output); the recurrent part `dh_{t−1} = W_hhᵀ da_t` is one GEMM per step done by the shared
//! loop in [`super`], and there is no direct path from `h_{t−1}` to `h_t` besides it.
//!
//! The recurrent loop, caches and parameter GEMMs are shared by all cells (see [`super`]);
//! this file holds only the per-row element-wise step.

use super::tanh;
use crate::activation::Activation;

super::spec::recurrent_kind!(SimpleRnnKind, SimpleRnn, "SimpleRNN");

crate::tensor::wide_kernel! {
    /// One forward step for one batch row: turns the pre-activation row into the activated one
    /// (kept as the cached "gate") and writes `h_t`.
    ///
    /// # Shapes
    /// - `pre`: `(units)` pre-activation in, activation out; `h`: `(units)`.
    pub(crate) fn forward_row / forward_body<T>(act: Activation, pre: &mut [T], h: &mut [T]) {
        let relu = act == Activation::Relu;
        for (p, hv) in pre.iter_mut().zip(h.iter_mut()) {
            // `relu(NaN)` stays NaN (`max` would return 0 and hide it from the finiteness checks).
            let v = if !relu {
                tanh(*p)
            } else if *p < T::zero() {
                T::zero()
            } else {
                *p
            };
            *p = v;
            *hv = v;
        }
    }
}

crate::tensor::wide_kernel! {
    /// One backward step for one batch row: `da = dh ⊙ act'(·)`.
    ///
    /// # Shapes
    /// - `h`, `dh`, `da`: `(units)`.
    pub(crate) fn backward_row / backward_body<T>(
        act: Activation,
        h: &[T],
        dh: &[T],
        da: &mut [T],
    ) {
        let relu = act == Activation::Relu;
        for ((d, &hv), &g) in da.iter_mut().zip(h).zip(dh) {
            *d = if relu {
                if hv > T::zero() {
                    g
                } else {
                    T::zero()
                }
            } else {
                g * (T::one() - hv * hv)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_step_keeps_nan_and_infinities() {
        let mut pre = [f64::NAN, -1.0, 2.0, f64::INFINITY, f64::NEG_INFINITY];
        let mut h = [0.0; 5];
        forward_row(Activation::Relu, &mut pre, &mut h);
        assert!(h[0].is_nan() && pre[0].is_nan(), "{h:?}");
        assert_eq!(&h[1..], &[0.0, 2.0, f64::INFINITY, 0.0]);
        let mut pre = [f64::NAN];
        let mut h = [0.0];
        forward_row(Activation::Tanh, &mut pre, &mut h);
        assert!(h[0].is_nan());
    }
}
