//! Losses. Each returns the mean loss and its gradient with respect to what it was given (logits
//! or outputs), already divided by the count the mean is over.
//!
//! - **Softmax cross-entropy** from logits `z` and targets `t` (one-hot or probabilities), over
//!   the last axis: `L = −(1/R) Σ_r Σ_j t_rj · log softmax(z_r)_j` where the `R` rows are every
//!   position of the leading axes (`R = B` for `(B, K)` logits, `R = B·L` for per-time-step
//!   `(B, L, K)` logits: PyTorch's mean reduction over all positions), computed with log-sum-exp
//!   so it is stable; `∂L/∂z = (softmax(z) − t)/R`.
//! - **Sigmoid binary cross-entropy** (multi-label) from logits:
//!   `L = (1/(B·K)) Σ max(z, 0) − z·t + log(1 + e^{−|z|})` (stable at |z| = 100);
//!   `∂L/∂z = (σ(z) − t)/(B·K)`. Averaged over labels as Keras and PyTorch do.
//! - **Mean squared error** on outputs: `L = (1/(B·K)) Σ (y − t)²`, `∂L/∂y = 2(y − t)/(B·K)`.
//!
//! Variable-length batches ([`Loss::compute_masked`]): per-record targets `(B, K)` are
//! unaffected by padding. Per-position targets `(B, L, K)` count real positions only: the
//! rows `t < L_b` of every record form the mean (`R = Σ_b L_b` for cross-entropy, `R·K`
//! elements for the others) and padded positions get a zero gradient — the same loss as the
//! real positions stacked into one `(R, K)` batch.

use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use serde::{Deserialize, Serialize};

use crate::activation::{sigmoid, Activation};
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Float};

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy (multi-class).
    CrossEntropy,
    /// Sigmoid binary cross-entropy (multi-label).
    BinaryCrossEntropy,
    MeanSquaredError,
}

impl Loss {
    /// The natural loss for a model head: softmax → cross-entropy, sigmoid → binary
    /// cross-entropy, none → mean squared error.
    pub fn for_head(head: Option<Activation>) -> Loss {
        match head {
            Some(Activation::Softmax) => Loss::CrossEntropy,
            Some(Activation::Sigmoid) => Loss::BinaryCrossEntropy,
            _ => Loss::MeanSquaredError,
        }
    }

    /// Loss and gradient. `pred` is logits for the two cross-entropies, outputs for MSE.
    ///
    /// # Shapes
    /// - `pred`, `target`: `(batch, classes)` (or any shape, for MSE/BCE); gradient like `pred`.
    pub fn compute<T: Float>(
        self,
        pred: ArrayViewD<'_, T>,
        target: ArrayViewD<'_, T>,
    ) -> Result<(f64, ArrayD<T>)> {
        if pred.shape() != target.shape() {
            return Err(Error::Shape {
                what: "loss target".into(),
                expected: fmt_shape(pred.shape()),
                got: fmt_shape(target.shape()),
            });
        }
        let n = pred.len().max(1);
        Ok(match self {
            Loss::CrossEntropy => {
                let classes = match pred.shape().last() {
                    Some(&k) if k > 0 => k,
                    _ => {
                        return Err(Error::Shape {
                            what: "cross-entropy logits".into(),
                            expected: "(…, classes ≥ 1)".into(),
                            got: fmt_shape(pred.shape()),
                        })
                    }
                };
                // Every position of the leading axes is one row of the mean.
                let rows = (pred.len() / classes).max(1);
                softmax_cross_entropy(pred, target, rows)
            }
            Loss::BinaryCrossEntropy => {
                let mut loss = 0.0f64;
                let mut grad = ArrayD::zeros(pred.raw_dim());
                let scale = T::lit(1.0 / n as f64);
                Zip::from(&mut grad)
                    .and(&pred)
                    .and(&target)
                    .for_each(|g, &z, &t| {
                        let zf = z.to_f64c();
                        let tf = t.to_f64c();
                        loss += zf.max(0.0) - zf * tf + (-zf.abs()).exp().ln_1p();
                        *g = (sigmoid(z) - t) * scale;
                    });
                (loss / n as f64, grad)
            }
            Loss::MeanSquaredError => {
                let mut loss = 0.0f64;
                let mut grad = ArrayD::zeros(pred.raw_dim());
                let scale = T::lit(2.0 / n as f64);
                Zip::from(&mut grad)
                    .and(&pred)
                    .and(&target)
                    .for_each(|g, &y, &t| {
                        let d = y - t;
                        loss += d.to_f64c() * d.to_f64c();
                        *g = d * scale;
                    });
                (loss / n as f64, grad)
            }
        })
    }
}

impl Loss {
    /// [`Loss::compute`] with targets given as an array or as class indices (see
    /// [`crate::targets::Targets`]): `&[usize]`, `&Vec<usize>`, `&Array1<usize>`, `&Array2<T>` …
    ///
    /// # Shapes
    /// - `pred`: `(batch, …, outputs)`; `targets`: an array of that shape, or one class index
    ///   per row of the last axis; the gradient is shaped like `pred`.
    pub fn compute_targets<'a, T: Float>(
        self,
        pred: ArrayViewD<'_, T>,
        targets: impl Into<crate::targets::Targets<'a, T>>,
    ) -> Result<(f64, ArrayD<T>)> {
        let t = targets.into().to_array(pred.shape())?;
        self.compute(pred, t.view())
    }

    /// [`Loss::compute`] on a padded batch: for `(B, L, K)` predictions and per-record
    /// `lengths`, only the real positions `t < lengths[b]` count (mean over them, zero
    /// gradient at padded positions). `None`, or a prediction without a time axis, is
    /// [`Loss::compute`].
    ///
    /// # Shapes
    /// - `pred`, `target`: `(batch, length, classes)` or `(batch, classes)`; `lengths`:
    ///   `(batch)`; gradient like `pred`.
    pub fn compute_masked<T: Float>(
        self,
        pred: ArrayViewD<'_, T>,
        target: ArrayViewD<'_, T>,
        lengths: Option<&[usize]>,
    ) -> Result<(f64, ArrayD<T>)> {
        let Some(lens) = lengths.filter(|_| pred.ndim() == 3) else {
            return self.compute(pred, target);
        };
        if pred.shape() != target.shape() {
            return Err(Error::Shape {
                what: "loss target".into(),
                expected: fmt_shape(pred.shape()),
                got: fmt_shape(target.shape()),
            });
        }
        let (b, l, k) = (pred.shape()[0], pred.shape()[1], pred.shape()[2]);
        if lens.len() != b || lens.iter().any(|&n| n == 0 || n > l) {
            return Err(Error::Lengths(format!(
                "loss: lengths {lens:?} do not fit a batch of {b} records of padded length {l}"
            )));
        }
        let rows: usize = lens.iter().sum();
        let mut p = ndarray::Array2::<T>::zeros((rows, k));
        let mut t = ndarray::Array2::<T>::zeros((rows, k));
        let mut r = 0;
        for (bi, &n) in lens.iter().enumerate() {
            for ti in 0..n {
                p.row_mut(r)
                    .assign(&pred.index_axis(Axis(0), bi).index_axis(Axis(0), ti));
                t.row_mut(r)
                    .assign(&target.index_axis(Axis(0), bi).index_axis(Axis(0), ti));
                r += 1;
            }
        }
        let (loss, g) = self.compute(p.view().into_dyn(), t.view().into_dyn())?;
        let mut grad = ArrayD::<T>::zeros(pred.raw_dim());
        let mut r = 0;
        for (bi, &n) in lens.iter().enumerate() {
            for ti in 0..n {
                grad.index_axis_mut(Axis(0), bi)
                    .index_axis_mut(Axis(0), ti)
                    .assign(&g.index_axis(Axis(0), r));
                r += 1;
            }
        }
        Ok((loss, grad))
    }
}

/// Mean softmax cross-entropy `Σ_k t_k (lse(z) − z_k)` over `rows` rows (lanes of the last
/// axis) and its gradient; target rows need not sum to 1 (as PyTorch's `CrossEntropyLoss` with
/// class probabilities).
fn softmax_cross_entropy<T: Float>(
    z: ArrayViewD<'_, T>,
    t: ArrayViewD<'_, T>,
    rows: usize,
) -> (f64, ArrayD<T>) {
    let last = Axis(z.ndim() - 1);
    let mut grad = z.to_owned();
    let mut loss = 0.0f64;
    let inv_b = T::lit(1.0 / rows as f64);
    for ((mut g, zr), tr) in grad
        .lanes_mut(last)
        .into_iter()
        .zip(z.lanes(last))
        .zip(t.lanes(last))
    {
        let m = zr.fold(f64::NEG_INFINITY, |a, &b| a.max(b.to_f64c()));
        let lse = m + zr.iter().map(|v| (v.to_f64c() - m).exp()).sum::<f64>().ln();
        loss += zr
            .iter()
            .zip(tr.iter())
            .map(|(z, t)| t.to_f64c() * (lse - z.to_f64c()))
            .sum::<f64>();
        // ∂/∂z_j of Σ_k t_k (lse − z_k) is (Σ_k t_k)·p_j − t_j: exact for soft, partial or
        // all-zero target rows too (one-hot rows have Σ t = 1 exactly, so p_j − t_j).
        let mass = tr.iter().fold(T::zero(), |a, &t| a + t);
        Zip::from(&mut g).and(&tr).for_each(|g, &t| {
            *g = (T::lit((g.to_f64c() - lse).exp()) * mass - t) * inv_b;
        });
    }
    (loss / rows as f64, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn numeric(loss: Loss, z: &ArrayD<f64>, t: &ArrayD<f64>) -> ArrayD<f64> {
        let eps = 1e-6;
        let mut g = ArrayD::zeros(z.raw_dim());
        for i in 0..z.len() {
            let mut zp = z.clone();
            zp.as_slice_mut().unwrap()[i] += eps;
            let mut zm = z.clone();
            zm.as_slice_mut().unwrap()[i] -= eps;
            let lp = loss.compute(zp.view(), t.view()).unwrap().0;
            let lm = loss.compute(zm.view(), t.view()).unwrap().0;
            g.as_slice_mut().unwrap()[i] = (lp - lm) / (2.0 * eps);
        }
        g
    }

    #[test]
    fn gradients_match_finite_differences() {
        let z = array![[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]].into_dyn();
        let onehot = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]].into_dyn();
        let multi = array![[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]].into_dyn();
        for (loss, t) in [
            (Loss::CrossEntropy, &onehot),
            (Loss::BinaryCrossEntropy, &multi),
            (Loss::MeanSquaredError, &multi),
        ] {
            let (_, g) = loss.compute(z.view(), t.view()).unwrap();
            let n = numeric(loss, &z, t);
            let err = crate::gradcheck::rel_error(&g, &n);
            assert!(err < 1e-7, "{loss:?}: {err}");
        }
    }

    #[test]
    fn cross_entropy_on_3d_logits_is_the_mean_over_every_position() {
        // (batch 2, length 3, classes 4): 6 rows.
        let z = crate::gradcheck::random_array(&[2, 3, 4], -2.0, 2.0, 1);
        let mut t = ArrayD::<f64>::zeros(z.raw_dim());
        for (i, mut row) in t.lanes_mut(Axis(2)).into_iter().enumerate() {
            row[i % 4] = 1.0;
        }
        let (l, g) = Loss::CrossEntropy.compute(z.view(), t.view()).unwrap();
        let n = numeric(Loss::CrossEntropy, &z, &t);
        let err = crate::gradcheck::rel_error(&g, &n);
        assert!(err < 1e-7, "3-D cross-entropy: {err}");
        // The value is the mean of the 6 per-row losses, as the same rows as a (6, 4) batch.
        let z2 = z
            .clone()
            .into_shape_with_order(ndarray::IxDyn(&[6, 4]))
            .unwrap();
        let t2 = t
            .clone()
            .into_shape_with_order(ndarray::IxDyn(&[6, 4]))
            .unwrap();
        let (l2, g2) = Loss::CrossEntropy.compute(z2.view(), t2.view()).unwrap();
        assert!((l - l2).abs() < 1e-12, "{l} vs {l2}");
        assert!(g.iter().zip(g2.iter()).all(|(a, b)| (a - b).abs() < 1e-15));
        let by_hand: f64 = z2
            .rows()
            .into_iter()
            .zip(t2.rows())
            .map(|(zr, tr)| {
                let lse = zr.iter().map(|v| v.exp()).sum::<f64>().ln();
                zr.iter()
                    .zip(tr.iter())
                    .map(|(z, t)| t * (lse - z))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / 6.0;
        assert!((l - by_hand).abs() < 1e-12, "{l} vs {by_hand}");
    }

    #[test]
    fn cross_entropy_gradient_agrees_with_the_loss_when_target_rows_do_not_sum_to_one() {
        // An all-zero row, a soft row summing to 0.6, and a one-hot row.
        let z = array![[0.3, -1.2, 2.0], [1.5, 0.1, -0.4], [0.2, 0.9, -2.0]].into_dyn();
        let t = array![[0.0, 0.0, 0.0], [0.3, 0.0, 0.3], [0.0, 1.0, 0.0]].into_dyn();
        let (_, g) = Loss::CrossEntropy.compute(z.view(), t.view()).unwrap();
        let n = numeric(Loss::CrossEntropy, &z, &t);
        for (a, b) in g.iter().zip(n.iter()) {
            assert!((a - b).abs() < 1e-8, "analytic {a} vs numeric {b}");
        }
        assert!(
            g.index_axis(ndarray::Axis(0), 0).iter().all(|&v| v == 0.0),
            "an all-zero row has no gradient"
        );
    }

    #[test]
    fn cross_entropy_needs_a_class_axis() {
        let z = ndarray::arr0(1.0f64).into_dyn();
        assert!(Loss::CrossEntropy.compute(z.view(), z.view()).is_err());
    }

    #[test]
    fn cross_entropy_value_matches_definition() {
        let z = array![[1.0f64, 2.0, 3.0]].into_dyn();
        let t = array![[0.0, 1.0, 0.0]].into_dyn();
        let (l, _) = Loss::CrossEntropy.compute(z.view(), t.view()).unwrap();
        let p = (2.0f64).exp() / (1.0f64.exp() + 2.0f64.exp() + 3.0f64.exp());
        assert!((l + p.ln()).abs() < 1e-12);
    }

    #[test]
    fn stable_for_huge_logits() {
        let z = array![[100.0f32, -100.0], [-100.0, 100.0]].into_dyn();
        let t = array![[0.0f32, 1.0], [0.0, 1.0]].into_dyn();
        for loss in [Loss::CrossEntropy, Loss::BinaryCrossEntropy] {
            let (l, g) = loss.compute(z.view(), t.view()).unwrap();
            assert!(l.is_finite(), "{loss:?}");
            assert!(g.iter().all(|v| v.is_finite()), "{loss:?}");
        }
        let (l, _) = Loss::BinaryCrossEntropy
            .compute(z.view(), t.view())
            .unwrap();
        assert!((l - 50.0).abs() < 1e-3, "{l}");
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let z = array![[1.0f64, 2.0]].into_dyn();
        let t = array![[1.0f64, 0.0, 0.0]].into_dyn();
        assert!(Loss::CrossEntropy.compute(z.view(), t.view()).is_err());
    }
}
