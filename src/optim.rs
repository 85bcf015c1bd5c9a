//! Optimizers and gradient clipping. State (moments, velocities) is kept per parameter name
//! (`layers.{i}.weight` …), so it follows the parameter whatever the order.
//!
//! With gradient `g`, parameter `p`, learning rate `η`, step `t` (1-based):
//! - **SGD** (PyTorch form): with weight decay `λ`, `g ← g + λp`; with momentum `μ`,
//!   `b ← μb + g` (`b = g` on the first step), the update direction is `b`, or `g + μb` with
//!   Nesterov; `p ← p − η·direction`.
//! - **Adam**: `g ← g + λp` (L2, if `λ > 0`); `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//!   `p ← p − η·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
//! - **AdamW**: like Adam without the L2 term, plus decoupled decay `p ← p − ηλp` first.
//! - **RMSprop** (Keras): `v ← ρv + (1−ρ)g²`, `p ← p − η·g/√(v + ε)` (ε inside the root, as
//!   Keras computes it); with `λ`, `g ← g + λp`.
//!
//! Defaults follow Keras: `η = 1e-3`, `β₁ = 0.9`, `β₂ = 0.999`, `ρ = 0.9`, `ε = 1e-7`
//! (SGD: `η = 0.01`).
//!
//! Clipping: [`clip_grad_norm`] scales all gradients by `max/‖g‖` when the global L2 norm
//! `‖g‖` (over every parameter) exceeds `max` and returns `‖g‖` before clipping;
//! [`clip_grad_value`] clamps each gradient entry to `[−c, c]`.

use std::collections::BTreeMap;

use ndarray::{ArrayD, Zip};

use crate::error::{Error, Result};
use crate::layers::Param;
use crate::tensor::Float;

/// Which optimizer, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    Sgd { momentum: f64, nesterov: bool },
    Adam { beta1: f64, beta2: f64 },
    AdamW { beta1: f64, beta2: f64 },
    RmsProp { rho: f64 },
}

/// Optimizer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

impl OptimizerConfig {
    /// Keras-default settings for an optimizer name (`sgd`, `adam`, `adamw`, `rmsprop`).
    pub fn named(name: &str) -> Result<Self> {
        let (kind, lr) = match name.to_ascii_lowercase().as_str() {
            "sgd" => (
                OptimizerKind::Sgd {
                    momentum: 0.0,
                    nesterov: false,
                },
                0.01,
            ),
            "adam" => (
                OptimizerKind::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                1e-3,
            ),
            "adamw" => (
                OptimizerKind::AdamW {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                1e-3,
            ),
            "rmsprop" => (OptimizerKind::RmsProp { rho: 0.9 }, 1e-3),
            other => {
                return Err(Error::Usage(format!(
                    "unknown optimizer {other:?} (valid: adam, adamw, sgd, rmsprop)"
                )))
            }
        };
        let weight_decay = if matches!(kind, OptimizerKind::AdamW { .. }) {
            0.01
        } else {
            0.0
        };
        Ok(OptimizerConfig {
            kind,
            lr,
            weight_decay,
            eps: 1e-7,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            OptimizerKind::Sgd { .. } => "sgd",
            OptimizerKind::Adam { .. } => "adam",
            OptimizerKind::AdamW { .. } => "adamw",
            OptimizerKind::RmsProp { .. } => "rmsprop",
        }
    }
}

/// An optimizer with its per-parameter state.
#[derive(Debug, Clone)]
pub struct Optimizer<T: Float> {
    pub config: OptimizerConfig,
    /// Number of steps taken.
    pub t: u64,
    /// First state slot per parameter (momentum buffer, Adam m, RMSprop v).
    state1: BTreeMap<String, ArrayD<T>>,
    /// Second slot (Adam v).
    state2: BTreeMap<String, ArrayD<T>>,
}

impl<T: Float> Optimizer<T> {
    pub fn new(config: OptimizerConfig) -> Self {
        Optimizer {
            config,
            t: 0,
            state1: BTreeMap::new(),
            state2: BTreeMap::new(),
        }
    }

    /// The per-parameter state as named tensors, for a checkpoint: `state1.<param>` (momentum
    /// buffer, Adam m, RMSprop v) and `state2.<param>` (Adam v). With [`Optimizer::t`] and the
    /// config this is everything the next step depends on.
    pub fn state_tensors(&self) -> Vec<(String, &ArrayD<T>)> {
        self.state1
            .iter()
            .map(|(n, a)| (format!("state1.{n}"), a))
            .chain(self.state2.iter().map(|(n, a)| (format!("state2.{n}"), a)))
            .collect()
    }

    /// Restores what [`Optimizer::state_tensors`] gave (and the step count `t`), replacing the
    /// current state.
    pub fn load_state_tensors(
        &mut self,
        t: u64,
        tensors: impl IntoIterator<Item = (String, ArrayD<T>)>,
    ) -> Result<()> {
        self.t = t;
        self.state1.clear();
        self.state2.clear();
        for (name, a) in tensors {
            if let Some(n) = name.strip_prefix("state1.") {
                self.state1.insert(n.to_string(), a);
            } else if let Some(n) = name.strip_prefix("state2.") {
                self.state2.insert(n.to_string(), a);
            } else {
                return Err(Error::Train(format!(
                    "optimizer state: unexpected tensor {name:?}"
                )));
            }
        }
        Ok(())
    }

    /// Updates every parameter from its gradient (one step).
    pub fn step<'a, I>(&mut self, params: I)
    where
        I: IntoIterator<Item = (String, &'a mut Param<T>)>,
        T: 'a,
    {
        self.t += 1;
        let c = self.config;
        let lr = T::lit(c.lr);
        let wd = T::lit(c.weight_decay);
        let eps = T::lit(c.eps);
        let one = T::one();
        for (name, p) in params {
            let first = !self.state1.contains_key(&name);
            let s1 = self
                .state1
                .entry(name.clone())
                .or_insert_with(|| ArrayD::zeros(p.value.raw_dim()));
            match c.kind {
                OptimizerKind::Sgd { momentum, nesterov } => {
                    let mu = T::lit(momentum);
                    Zip::from(&mut p.value)
                        .and(&p.grad)
                        .and(s1)
                        .for_each(|w, &g, b| {
                            let g = g + wd * *w;
                            let dir = if momentum > 0.0 {
                                *b = if first { g } else { mu * *b + g };
                                if nesterov {
                                    g + mu * *b
                                } else {
                                    *b
                                }
                            } else {
                                g
                            };
                            *w -= lr * dir;
                        });
                }
                OptimizerKind::Adam { beta1, beta2 } | OptimizerKind::AdamW { beta1, beta2 } => {
                    let decoupled = matches!(c.kind, OptimizerKind::AdamW { .. });
                    let s2 = self
                        .state2
                        .entry(name)
                        .or_insert_with(|| ArrayD::zeros(p.value.raw_dim()));
                    let (b1, b2) = (T::lit(beta1), T::lit(beta2));
                    let bc1 = T::lit(1.0 - beta1.powi(self.t as i32));
                    let bc2 = T::lit(1.0 - beta2.powi(self.t as i32));
                    Zip::from(&mut p.value)
                        .and(&p.grad)
                        .and(s1)
                        .and(s2)
                        .for_each(|w, &g, m, v| {
                            let g = if decoupled {
                                *w -= lr * wd * *w;
                                g
                            } else {
                                g + wd * *w
                            };
                            *m = b1 * *m + (one - b1) * g;
                            *v = b2 * *v + (one - b2) * g * g;
                            let mh = *m / bc1;
                            let vh = *v / bc2;
                            *w -= lr * mh / (vh.sqrt() + eps);
                        });
                }
                OptimizerKind::RmsProp { rho } => {
                    let r = T::lit(rho);
                    Zip::from(&mut p.value)
                        .and(&p.grad)
                        .and(s1)
                        .for_each(|w, &g, v| {
                            let g = g + wd * *w;
                            *v = r * *v + (one - r) * g * g;
                            *w -= lr * g / (*v + eps).sqrt();
                        });
                }
            }
        }
    }
}

/// Global L2 norm of all gradients (accumulated in f64, in parameter order).
pub fn grad_norm<'a, T: Float + 'a>(params: impl IntoIterator<Item = &'a Param<T>>) -> f64 {
    params
        .into_iter()
        .map(|p| {
            p.grad
                .iter()
                .map(|g| g.to_f64c() * g.to_f64c())
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt()
}

/// Scales all gradients so their global L2 norm is at most `max_norm`; returns the norm before
/// clipping.
pub fn clip_grad_norm<'a, T: Float + 'a>(params: Vec<&'a mut Param<T>>, max_norm: f64) -> f64 {
    let norm = grad_norm(params.iter().map(|p| &**p));
    if norm > max_norm && norm.is_finite() {
        let s = T::lit(max_norm / norm);
        for p in params {
            p.grad.mapv_inplace(|g| g * s);
        }
    }
    norm
}

/// Clamps every gradient entry to `[−clip, clip]`.
pub fn clip_grad_value<'a, T: Float + 'a>(params: Vec<&'a mut Param<T>>, clip: f64) {
    let c = T::lit(clip);
    for p in params {
        p.grad.mapv_inplace(|g| g.max(-c).min(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    fn param(w: f64, g: f64) -> Param<f64> {
        let mut p = Param::new("w", arr1(&[w]).into_dyn());
        p.grad = arr1(&[g]).into_dyn();
        p
    }

    fn run(cfg: OptimizerConfig, grads: &[f64]) -> Vec<f64> {
        let mut opt = Optimizer::<f64>::new(cfg);
        let mut p = param(1.0, 0.0);
        let mut out = Vec::new();
        for &g in grads {
            p.grad[[0]] = g;
            opt.step(vec![("w".to_string(), &mut p)]);
            out.push(p.value[[0]]);
        }
        out
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn sgd_momentum_and_nesterov_by_hand() {
        let mut c = OptimizerConfig::named("sgd").unwrap();
        c.lr = 0.1;
        close(&run(c, &[0.5, 0.5]), &[0.95, 0.9]);
        c.kind = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        // b1 = 0.5 → w = 0.95; b2 = 0.45 + 0.5 = 0.95 → w = 0.855
        close(&run(c, &[0.5, 0.5]), &[0.95, 0.855]);
        c.kind = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: true,
        };
        // step1 dir = 0.5 + 0.45 = 0.95 → 0.905; step2 b = 0.95, dir = 0.5 + 0.855 = 1.355 → 0.7695
        close(&run(c, &[0.5, 0.5]), &[0.905, 0.7695]);
        c.weight_decay = 0.1;
        c.kind = OptimizerKind::Sgd {
            momentum: 0.0,
            nesterov: false,
        };
        // g = 0.5 + 0.1 → w = 1 − 0.06
        close(&run(c, &[0.5]), &[0.94]);
    }

    #[test]
    fn adam_adamw_rmsprop_by_hand() {
        let mut c = OptimizerConfig::named("adam").unwrap();
        c.lr = 0.1;
        // first Adam step moves by lr·g/(|g| + eps) ≈ lr
        let eps = 1e-7;
        close(&run(c, &[0.5]), &[1.0 - 0.1 * 0.5 / (0.5 + eps)]);
        // second step with g = −1: m = 0.9·0.05 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001
        let m: f64 = -0.055;
        let v: f64 = 0.999 * 0.00025 + 0.001;
        let mh = m / (1.0 - 0.81);
        let vh = v / (1.0 - 0.999f64.powi(2));
        let w1 = 1.0 - 0.1 * 0.5 / (0.5 + eps);
        close(
            &run(c, &[0.5, -1.0]),
            &[w1, w1 - 0.1 * mh / (vh.sqrt() + eps)],
        );
        let mut cw = OptimizerConfig::named("adamw").unwrap();
        cw.lr = 0.1;
        cw.weight_decay = 0.5;
        // decay first: 1 − 0.1·0.5·1 = 0.95, then the Adam step
        close(&run(cw, &[0.5]), &[0.95 - 0.1 * 0.5 / (0.5 + eps)]);
        let mut cr = OptimizerConfig::named("rmsprop").unwrap();
        assert_eq!(cr.lr, 1e-3);
        cr.lr = 0.1;
        // v = 0.1·0.25 = 0.025 → w = 1 − 0.1·0.5/√(0.025 + eps) (Keras: eps inside the root)
        let w1 = 1.0 - 0.1 * 0.5 / (0.025f64 + eps).sqrt();
        close(&run(cr, &[0.5]), &[w1]);
        // second step, g = −1: v = 0.9·0.025 + 0.1 = 0.1225 → w = w1 + 0.1/√(0.1225 + eps)
        close(
            &run(cr, &[0.5, -1.0]),
            &[w1, w1 + 0.1 / (0.1225f64 + eps).sqrt()],
        );
        // the two placements of eps differ measurably when v is tiny
        cr.lr = 1.0;
        let tiny = run(cr, &[1e-6])[0];
        let keras = 1.0 - 1e-6 / (0.1e-12f64 + eps).sqrt();
        let other = 1.0 - 1e-6 / ((0.1e-12f64).sqrt() + eps);
        assert!((tiny - keras).abs() < 1e-12 && (tiny - other).abs() > 1e-3);
    }

    #[test]
    fn adamw_three_steps_by_hand() {
        // AdamW: decoupled decay w ← w − ηλw first, then the bias-corrected Adam step on the
        // raw gradient (no λw in the moments).
        let (lr, wd, b1, b2, eps) = (0.1, 0.2, 0.9f64, 0.999f64, 1e-7);
        let grads = [0.5, -1.0, 0.25];
        let mut cw = OptimizerConfig::named("adamw").unwrap();
        cw.lr = lr;
        cw.weight_decay = wd;
        let got = run(cw, &grads);
        let (mut w, mut m, mut v) = (1.0f64, 0.0, 0.0);
        let mut want = Vec::new();
        for (t, &g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            w -= lr * wd * w;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let mh = m / (1.0 - b1.powi(t));
            let vh = v / (1.0 - b2.powi(t));
            w -= lr * mh / (vh.sqrt() + eps);
            want.push(w);
        }
        close(&got, &want);
        // the decay really is decoupled: Adam with the same λ as an L2 term differs
        let mut ca = cw;
        ca.kind = OptimizerKind::Adam {
            beta1: b1,
            beta2: b2,
        };
        assert!((run(ca, &grads)[2] - got[2]).abs() > 1e-3);
        // and it does something: without decay the result differs too
        cw.weight_decay = 0.0;
        assert!((run(cw, &grads)[2] - got[2]).abs() > 1e-3);
    }

    #[test]
    fn clipping() {
        let mut a = param(0.0, 3.0);
        let mut b = param(0.0, 4.0);
        let n = clip_grad_norm(vec![&mut a, &mut b], 1.0);
        assert!((n - 5.0).abs() < 1e-12);
        assert!((a.grad[[0]] - 0.6).abs() < 1e-12 && (b.grad[[0]] - 0.8).abs() < 1e-12);
        let n = clip_grad_norm(vec![&mut a, &mut b], 10.0);
        assert!((n - 1.0).abs() < 1e-12 && (a.grad[[0]] - 0.6).abs() < 1e-12);
        clip_grad_value(vec![&mut a, &mut b], 0.7);
        assert!((a.grad[[0]] - 0.6).abs() < 1e-12 && b.grad[[0]] == 0.7);
        assert!(OptimizerConfig::named("lbfgs").is_err());
    }
}
