//! Element-wise activations (and softmax over the last axis), shared by every layer that has an
//! `activation` option.
//!
//! Forward: `linear(x) = x`, `relu(x) = max(x, 0)` (NaN stays NaN, so it is never hidden),
//! `tanh(x)`, `sigmoid(x) = 1 / (1 + e^{-x})`,
//! `softmax(x)_j = e^{x_j - max x} / Σ_k e^{x_k - max x}` over the last axis.
//!
//! Backward is written in terms of the *output* `y`, so a layer only caches its output:
//! `relu: dx = dy·[y > 0]` (written as "zero where `y ≤ 0`", so a NaN output, which forward
//! passed through like a positive value, passes its gradient through too),
//! `tanh: dx = dy·(1 − y²)`, `sigmoid: dx = dy·y·(1 − y)`,
//! `softmax: dx_j = y_j·(dy_j − Σ_k dy_k y_k)`.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, Zip};
use serde::{Deserialize, Serialize};

use crate::tensor::Float;

// The scalar kernels live in `tensor` (the `Float` trait's gates use them); re-exported here.
pub use crate::tensor::{exp_f32, sigmoid, sigmoid_f32, tanh_f32};

/// Arrays of at least this many elements get their element-wise activation in parallel.
const PAR_MIN: usize = 1 << 17;
/// Elements per parallel chunk (below [`PAR_MIN`], so a chunk runs the sequential loop).
const PAR_CHUNK: usize = 1 << 15;

/// An activation function, named as in Keras.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Tanh,
    Sigmoid,
    Softmax,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
        }
    }

    /// Detaches an output softmax/sigmoid for the model head: returns it and leaves `linear`
    /// in its place; any other activation stays and gives `None` (the shared body of every
    /// layer's [`crate::layers::Layer::take_output_activation`]).
    pub fn take_output(&mut self) -> Option<Activation> {
        match *self {
            Activation::Softmax | Activation::Sigmoid => Some(std::mem::take(self)),
            _ => None,
        }
    }

    /// Applies the activation in place.
    ///
    /// # Shapes
    /// - `x`: any; softmax works over the last axis.
    pub fn forward_inplace<T: Float>(self, mut x: ArrayViewMutD<'_, T>) {
        // Element-wise kinds on a large contiguous array: in parallel over fixed chunks (each
        // element's value is the same whichever thread computes it). W3's conv output is 31 M.
        if !matches!(self, Activation::Linear | Activation::Softmax) && x.len() >= PAR_MIN {
            if let Some(s) = x.as_slice_memory_order_mut() {
                use rayon::prelude::*;
                s.par_chunks_mut(PAR_CHUNK)
                    .for_each(|c| self.forward_inplace(ndarray::ArrayViewMut1::from(c).into_dyn()));
                return;
            }
        }
        match self {
            Activation::Linear => {}
            // `v < 0 → 0, else v`: NaN propagates instead of becoming 0.
            Activation::Relu => x.mapv_inplace(|v| if v < T::zero() { T::zero() } else { v }),
            Activation::Tanh => x.mapv_inplace(|v| v.gate_tanh()),
            Activation::Sigmoid => x.mapv_inplace(|v| v.gate_sigmoid()),
            Activation::Softmax => {
                let last = Axis(x.ndim() - 1);
                for mut row in x.lanes_mut(last) {
                    let m = row.fold(T::neg_infinity(), |a, &b| a.max(b));
                    row.mapv_inplace(|v| (v - m).exp());
                    let s = row.sum();
                    row.mapv_inplace(|v| v / s);
                }
            }
        }
    }

    /// Returns the activation of `x` in a new array.
    pub fn forward<T: Float>(self, x: &ArrayViewD<'_, T>) -> ArrayD<T> {
        let mut y = x.to_owned();
        self.forward_inplace(y.view_mut());
        y
    }

    /// Turns the gradient w.r.t. the output into the gradient w.r.t. the pre-activation, in
    /// place, using the cached output `y`.
    ///
    /// # Shapes
    /// - `y`, `grad`: the same shape; softmax works over the last axis.
    pub fn backward_inplace<T: Float>(self, y: &ArrayViewD<'_, T>, mut grad: ArrayViewMutD<'_, T>) {
        let one = T::one();
        match self {
            Activation::Linear => {}
            // Branch-free select so the loop vectorises (a hot path in conv backward).
            Activation::Relu => Zip::from(&mut grad)
                .and(y)
                .for_each(|g, &y| *g = if y <= T::zero() { T::zero() } else { *g }),
            Activation::Tanh => Zip::from(&mut grad)
                .and(y)
                .for_each(|g, &y| *g *= one - y * y),
            Activation::Sigmoid => Zip::from(&mut grad)
                .and(y)
                .for_each(|g, &y| *g *= y * (one - y)),
            Activation::Softmax => {
                let last = Axis(y.ndim() - 1);
                for (mut g, yr) in grad.lanes_mut(last).into_iter().zip(y.lanes(last)) {
                    let dot = g
                        .iter()
                        .zip(yr.iter())
                        .fold(T::zero(), |a, (&g, &y)| a + g * y);
                    Zip::from(&mut g)
                        .and(&yr)
                        .for_each(|g, &y| *g = y * (*g - dot));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_rows_sum_to_one_and_are_stable() {
        let x = array![[1000.0f64, 1001.0, 999.0], [-5.0, 0.0, 5.0]].into_dyn();
        let y = Activation::Softmax.forward(&x.view());
        for row in y.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn relu_propagates_nan_and_keeps_its_gradient_mask() {
        let x = array![f64::NAN, -1.0, 0.0, 2.0].into_dyn();
        let y = Activation::Relu.forward(&x.view());
        assert!(y[0].is_nan());
        assert_eq!(
            y.iter().skip(1).copied().collect::<Vec<_>>(),
            vec![0.0, 0.0, 2.0]
        );
        let mut g = array![5.0, 5.0, 5.0, 5.0].into_dyn();
        Activation::Relu.backward_inplace(&y.view(), g.view_mut());
        assert_eq!(
            g.iter().copied().collect::<Vec<_>>(),
            vec![5.0, 0.0, 0.0, 5.0]
        );
    }

    #[test]
    fn take_output_detaches_only_softmax_and_sigmoid() {
        let mut a = Activation::Softmax;
        assert_eq!(a.take_output(), Some(Activation::Softmax));
        assert_eq!(a, Activation::Linear);
        let mut r = Activation::Relu;
        assert_eq!(r.take_output(), None);
        assert_eq!(r, Activation::Relu);
    }

    #[test]
    fn fast_f32_functions_error_bounds() {
        let (mut we, mut ws, mut wt) = (0.0f64, 0.0f64, 0.0f64);
        let rel = |got: f32, exact: f64| ((got as f64 - exact) / exact).abs();
        for k in -2_000_000..=2_000_000 {
            let x = k as f32 * 4.4e-5; // [-88, 88]
            if x > -87.0 {
                we = we.max(rel(exp_f32(x), (x as f64).exp()));
            }
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            if s >= 1e-30 {
                ws = ws.max(rel(sigmoid_f32(x), s));
            }
            for x in [x, x * 1e-3, x * 1e-6] {
                let t = (x as f64).tanh();
                if t != 0.0 {
                    wt = wt.max(rel(tanh_f32(x), t));
                }
            }
        }
        assert!(we < 2.5e-7, "exp {we:e}");
        assert!(ws < 4e-7, "sigmoid {ws:e}");
        assert!(wt < 4e-7, "tanh {wt:e}");
        assert!(exp_f32(f32::NAN).is_nan() && sigmoid_f32(f32::NAN).is_nan());
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(30.0), 1.0);
        assert_eq!(tanh_f32(-30.0), -1.0);
        assert_eq!(sigmoid_f32(200.0), 1.0);
        assert!(sigmoid_f32(-200.0) < 1e-37);
        assert_eq!(tanh_f32(0.0), 0.0);
    }

    #[test]
    fn sigmoid_is_finite_at_extremes() {
        assert_eq!(sigmoid(-1000.0f64), 0.0);
        assert_eq!(sigmoid(1000.0f64), 1.0);
        assert!((sigmoid(0.0f32) - 0.5).abs() < 1e-7);
    }
}
