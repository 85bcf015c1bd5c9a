//! Optimizers and gradient clipping. State (moments, velocities) is kept per parameter
//! position (the model's parameter order); checkpoints store it under the parameter's name
//! (`layers.{i}.weight` …) and map names back to positions on load.
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

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

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

/// Elements per parallel work item of an optimizer step (a constant, so how the work is split
/// does not depend on the thread count; every element's arithmetic is the same either way).
const CHUNK: usize = 1 << 15;

/// One parameter's optimizer state. Empty vectors: not created yet.
#[derive(Debug, Clone, Default)]
struct Slot<T> {
    /// Full name of the parameter (`layers.{i}.weight` …) whose state this is.
    name: String,
    /// Shape of the parameter (for checkpoints).
    shape: Vec<usize>,
    /// Momentum buffer, Adam m, RMSprop v. Row-major, `len = ∏ shape`; `None`: not created.
    s1: Option<Vec<T>>,
    /// Adam v.
    s2: Option<Vec<T>>,
}

/// An optimizer with its per-parameter state, kept under each parameter's full name
/// ([`crate::model::Sequential::named_params_mut`]): a parameter always gets its own moments,
/// whatever the order or the set of parameters passed to a step.
#[derive(Debug, Clone)]
pub struct Optimizer<T: Float> {
    pub config: OptimizerConfig,
    /// Number of steps taken.
    pub t: u64,
    /// State per parameter, in the order of the last step's parameters.
    slots: Vec<Slot<T>>,
}

/// What one step does to one element, with the step's constants.
#[derive(Clone, Copy)]
enum Rule<T> {
    Sgd {
        lr: T,
        wd: T,
        mu: T,
        momentum: bool,
        nesterov: bool,
    },
    Adam {
        lr: T,
        wd: T,
        b1: T,
        b2: T,
        bc1: T,
        bc2: T,
        eps: T,
        decoupled: bool,
    },
    RmsProp {
        lr: T,
        wd: T,
        r: T,
        eps: T,
    },
}

impl<T: Float> Rule<T> {
    /// Updates one chunk in one fused pass. `first`: the momentum buffer is new (SGD sets
    /// `b = g` instead of `μb + g`). The per-element arithmetic is the formula in the module
    /// docs, in the same order for every element whatever the chunking, so results do not
    /// depend on the number of threads.
    fn apply(self, w: &mut [T], g: &[T], s1: &mut [T], s2: &mut [T], first: bool) {
        let one = T::one();
        match self {
            Rule::Sgd {
                lr,
                wd,
                mu,
                momentum,
                nesterov,
            } => {
                if !momentum {
                    for (w, &g) in w.iter_mut().zip(g) {
                        let g = g + wd * *w;
                        *w -= lr * g;
                    }
                } else {
                    for ((w, &g), b) in w.iter_mut().zip(g).zip(s1.iter_mut()) {
                        let g = g + wd * *w;
                        *b = if first { g } else { mu * *b + g };
                        let dir = if nesterov { g + mu * *b } else { *b };
                        *w -= lr * dir;
                    }
                }
            }
            Rule::Adam {
                lr,
                wd,
                b1,
                b2,
                bc1,
                bc2,
                eps,
                decoupled,
            } => {
                let (c1, c2) = (one - b1, one - b2);
                let lwd = lr * wd;
                let it = w.iter_mut().zip(g).zip(s1.iter_mut()).zip(s2.iter_mut());
                if decoupled {
                    for (((w, &g), m), v) in it {
                        *w -= lwd * *w;
                        *m = b1 * *m + c1 * g;
                        *v = b2 * *v + c2 * g * g;
                        let mh = *m / bc1;
                        let vh = *v / bc2;
                        *w -= lr * mh / (vh.sqrt() + eps);
                    }
                } else {
                    for (((w, &g), m), v) in it {
                        let g = g + wd * *w;
                        *m = b1 * *m + c1 * g;
                        *v = b2 * *v + c2 * g * g;
                        let mh = *m / bc1;
                        let vh = *v / bc2;
                        *w -= lr * mh / (vh.sqrt() + eps);
                    }
                }
            }
            Rule::RmsProp { lr, wd, r, eps } => {
                let c = one - r;
                for ((w, &g), v) in w.iter_mut().zip(g).zip(s1.iter_mut()) {
                    let g = g + wd * *w;
                    *v = r * *v + c * g * g;
                    *w -= lr * g / (*v + eps).sqrt();
                }
            }
        }
    }
}

impl<T: Float> Optimizer<T> {
    pub fn new(config: OptimizerConfig) -> Self {
        Optimizer {
            config,
            t: 0,
            slots: Vec::new(),
        }
    }

    /// Whether this optimizer keeps a first / second state slot per parameter.
    fn uses_slots(&self) -> (bool, bool) {
        match self.config.kind {
            OptimizerKind::Sgd { momentum, .. } => (momentum > 0.0, false),
            OptimizerKind::Adam { .. } | OptimizerKind::AdamW { .. } => (true, true),
            OptimizerKind::RmsProp { .. } => (true, false),
        }
    }

    /// The per-parameter state as named tensors, for a checkpoint: `state1.<param>` (momentum
    /// buffer, Adam m, RMSprop v) and `state2.<param>` (Adam v), under the full parameter names
    /// the steps were given (`layers.{i}.weight` …). With [`Optimizer::t`] and the config this
    /// is everything the next step depends on.
    pub fn state_tensors(&self) -> Result<Vec<(String, ArrayViewD<'_, T>)>> {
        fn view<'v, T>(shape: &[usize], v: &'v [T]) -> Result<ArrayViewD<'v, T>> {
            ArrayViewD::from_shape(IxDyn(shape), v)
                .map_err(|e| Error::Train(format!("optimizer state: {e}")))
        }
        let mut out = Vec::new();
        for (which, pick) in [("state1", 0), ("state2", 1)] {
            for s in &self.slots {
                if let Some(v) = if pick == 0 { &s.s1 } else { &s.s2 } {
                    out.push((format!("{which}.{}", s.name), view(&s.shape, v)?));
                }
            }
        }
        Ok(out)
    }

    /// Restores what [`Optimizer::state_tensors`] gave (and the step count `t`), replacing the
    /// current state. `params` are the model's parameter names and shapes by position.
    pub fn load_state_tensors(
        &mut self,
        t: u64,
        tensors: impl IntoIterator<Item = (String, ArrayD<T>)>,
        params: &[(String, Vec<usize>)],
    ) -> Result<()> {
        self.t = t;
        self.slots = params
            .iter()
            .map(|(name, shape)| Slot {
                name: name.clone(),
                shape: shape.clone(),
                s1: None,
                s2: None,
            })
            .collect();
        let position: std::collections::HashMap<&str, usize> = params
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect();
        for (name, a) in tensors {
            let (second, pname) = if let Some(n) = name.strip_prefix("state1.") {
                (false, n)
            } else if let Some(n) = name.strip_prefix("state2.") {
                (true, n)
            } else {
                return Err(Error::Train(format!(
                    "optimizer state: unexpected tensor {name:?}"
                )));
            };
            let i = *position.get(pname).ok_or_else(|| {
                Error::Train(format!(
                    "optimizer state: tensor {name:?} names no parameter of the model"
                ))
            })?;
            let slot = &mut self.slots[i];
            if a.shape() != slot.shape.as_slice() {
                return Err(Error::Train(format!(
                    "optimizer state: tensor {name:?} has shape {:?}, the parameter {:?}",
                    a.shape(),
                    slot.shape
                )));
            }
            let v = a.as_standard_layout().iter().copied().collect();
            if second {
                slot.s2 = Some(v);
            } else {
                slot.s1 = Some(v);
            }
        }
        Ok(())
    }

    /// Updates every parameter from its gradient (one step). `params` are the parameters with
    /// their full names ([`crate::model::Sequential::named_params_mut`]); each parameter's
    /// state is found by its name, so a different order or set of parameters never gives one
    /// parameter another's moments (a name not seen before, or whose shape changed, starts
    /// from fresh state).
    ///
    /// One fused pass per parameter (decay, moments, bias correction, update), in parallel
    /// over parameters and over fixed chunks of large parameters; each element's arithmetic
    /// is the same whatever the thread count.
    pub fn step<'a, I>(&mut self, params: I)
    where
        I: IntoIterator<Item = (String, &'a mut Param<T>)>,
        T: 'a,
    {
        let mut params: Vec<(String, &'a mut Param<T>)> = params.into_iter().collect();
        self.t += 1;
        let c = self.config;
        let lr = T::lit(c.lr);
        let wd = T::lit(c.weight_decay);
        let eps = T::lit(c.eps);
        let rule = match c.kind {
            OptimizerKind::Sgd { momentum, nesterov } => Rule::Sgd {
                lr,
                wd,
                mu: T::lit(momentum),
                momentum: momentum > 0.0,
                nesterov,
            },
            OptimizerKind::Adam { beta1, beta2 } | OptimizerKind::AdamW { beta1, beta2 } => {
                Rule::Adam {
                    lr,
                    wd,
                    b1: T::lit(beta1),
                    b2: T::lit(beta2),
                    bc1: T::lit(1.0 - beta1.powi(self.t as i32)),
                    bc2: T::lit(1.0 - beta2.powi(self.t as i32)),
                    eps,
                    decoupled: matches!(c.kind, OptimizerKind::AdamW { .. }),
                }
            }
            OptimizerKind::RmsProp { rho } => Rule::RmsProp {
                lr,
                wd,
                r: T::lit(rho),
                eps,
            },
        };
        let (use1, use2) = self.uses_slots();
        let same_names = self.slots.len() == params.len()
            && self
                .slots
                .iter()
                .zip(&params)
                .all(|(s, (n, _))| &s.name == n);
        if !same_names {
            // Re-key by name (the common case, the same list as the last step, skips this).
            let mut old: std::collections::HashMap<String, Slot<T>> =
                std::mem::take(&mut self.slots)
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect();
            self.slots = params
                .iter()
                .map(|(n, _)| {
                    old.remove(n).unwrap_or_else(|| Slot {
                        name: n.clone(),
                        ..Slot::default()
                    })
                })
                .collect();
        }
        // Work items: (chunk of w, of g, of s1, of s2, first use of s1).
        type Item<'b, T> = (&'b mut [T], &'b [T], &'b mut [T], &'b mut [T], bool);
        let mut items: Vec<Item<'_, T>> = Vec::new();
        for ((_, p), slot) in params.iter_mut().zip(self.slots.iter_mut()) {
            let n = p.value.len();
            if slot.shape.as_slice() != p.value.shape() {
                // A new parameter (or one whose shape changed): fresh state.
                *slot = Slot {
                    name: std::mem::take(&mut slot.name),
                    shape: p.value.shape().to_vec(),
                    s1: None,
                    s2: None,
                };
            }
            let first = use1 && slot.s1.is_none();
            if first {
                slot.s1 = Some(vec![T::zero(); n]);
            }
            if use2 && slot.s2.is_none() {
                slot.s2 = Some(vec![T::zero(); n]);
            }
            let Param { value, grad, .. } = &mut **p;
            if !value.is_standard_layout() {
                *value = value.as_standard_layout().into_owned();
            }
            if !grad.is_standard_layout() {
                *grad = grad.as_standard_layout().into_owned();
            }
            // ok: both made row-major just above (`as_slice` only fails on other layouts).
            let (Some(w), Some(g)) = (value.as_slice_mut(), grad.as_slice()) else {
                continue;
            };
            let mut s1 = slot.s1.as_deref_mut().unwrap_or_default().chunks_mut(CHUNK);
            let mut s2 = slot.s2.as_deref_mut().unwrap_or_default().chunks_mut(CHUNK);
            for (w, g) in w.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
                items.push((
                    w,
                    g,
                    s1.next().unwrap_or_default(),
                    s2.next().unwrap_or_default(),
                    first,
                ));
            }
        }
        items
            .into_par_iter()
            .for_each(|(w, g, s1, s2, first)| rule.apply(w, g, s1, s2, first));
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

    /// The update as it was written before the state moved to positions (one `Zip` per
    /// parameter, state by name): the fused parallel pass must give bit-identical results.
    fn reference_step(
        c: &OptimizerConfig,
        t: u64,
        p: &mut Param<f32>,
        s1: &mut Option<ArrayD<f32>>,
        s2: &mut Option<ArrayD<f32>>,
    ) {
        use ndarray::Zip;
        let (lr, wd, eps, one) = (c.lr as f32, c.weight_decay as f32, c.eps as f32, 1f32);
        let first = s1.is_none();
        let s1 = s1.get_or_insert_with(|| ArrayD::zeros(p.value.raw_dim()));
        match c.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                let mu = momentum as f32;
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
                let s2 = s2.get_or_insert_with(|| ArrayD::zeros(p.value.raw_dim()));
                let (b1, b2) = (beta1 as f32, beta2 as f32);
                let bc1 = (1.0 - beta1.powi(t as i32)) as f32;
                let bc2 = (1.0 - beta2.powi(t as i32)) as f32;
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
                let r = rho as f32;
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

    #[test]
    fn fused_parallel_step_is_bit_identical_to_the_reference_at_1_and_2_threads() {
        let mk = |n: usize, seed: u32| -> Vec<f32> {
            let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
            (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    (s as f32 / u32::MAX as f32) - 0.5
                })
                .collect()
        };
        let sizes = [3 * CHUNK + 17, 5, 1];
        let mut configs = Vec::new();
        for name in ["adam", "adamw", "rmsprop", "sgd"] {
            let mut c = OptimizerConfig::named(name).unwrap();
            c.weight_decay = 0.01;
            configs.push(c);
        }
        let mut c = OptimizerConfig::named("sgd").unwrap();
        c.kind = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: true,
        };
        configs.push(c);
        c.kind = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        configs.push(c);
        for c in configs {
            let fresh = || -> Vec<Param<f32>> {
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| {
                        Param::new("p", ndarray::Array1::from(mk(n, i as u32)).into_dyn())
                    })
                    .collect()
            };
            let grads = |step: u32, i: usize, n: usize| mk(n, 100 + step * 7 + i as u32);
            // reference
            let mut want = fresh();
            type State = (Option<ArrayD<f32>>, Option<ArrayD<f32>>);
            let mut st: Vec<State> = vec![(None, None); sizes.len()];
            for step in 0..3u32 {
                for (i, p) in want.iter_mut().enumerate() {
                    p.grad = ndarray::Array1::from(grads(step, i, p.value.len())).into_dyn();
                    let (a, b) = &mut st[i];
                    reference_step(&c, step as u64 + 1, p, a, b);
                }
            }
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| {
                    let mut ps = fresh();
                    let mut opt = Optimizer::<f32>::new(c);
                    for step in 0..3u32 {
                        for (i, p) in ps.iter_mut().enumerate() {
                            p.grad =
                                ndarray::Array1::from(grads(step, i, p.value.len())).into_dyn();
                        }
                        opt.step(ps.iter_mut().enumerate().map(|(i, p)| (format!("p{i}"), p)));
                    }
                    ps
                });
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.value
                            .iter()
                            .zip(&w.value)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{:?} at {threads} threads differs from the reference",
                        c.kind
                    );
                }
            }
        }
    }

    #[test]
    fn state_round_trips_by_name() {
        let c = OptimizerConfig::named("adam").unwrap();
        let mut a = Param::new("a", ndarray::arr1(&[1.0f32, 2.0]).into_dyn());
        let mut b = Param::new("b", ndarray::arr2(&[[3.0f32]]).into_dyn());
        a.grad.fill(0.5);
        b.grad.fill(-1.0);
        let mut opt = Optimizer::<f32>::new(c);
        let names = ["layers.0.a".to_string(), "layers.1.b".to_string()];
        opt.step(vec![(names[0].clone(), &mut a), (names[1].clone(), &mut b)]);
        let saved: Vec<(String, ArrayD<f32>)> = opt
            .state_tensors()
            .unwrap()
            .into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect();
        let got: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            got,
            [
                "state1.layers.0.a",
                "state1.layers.1.b",
                "state2.layers.0.a",
                "state2.layers.1.b"
            ]
        );
        // loading in another order restores the same positions
        let shapes = vec![(names[0].clone(), vec![2]), (names[1].clone(), vec![1, 1])];
        let mut back = Optimizer::<f32>::new(c);
        back.load_state_tensors(1, saved.iter().rev().cloned(), &shapes)
            .unwrap();
        let (mut a2, mut b2) = (a.clone(), b.clone());
        opt.step(vec![(names[0].clone(), &mut a), (names[1].clone(), &mut b)]);
        back.step(vec![
            (names[0].clone(), &mut a2),
            (names[1].clone(), &mut b2),
        ]);
        assert_eq!(a.value, a2.value);
        assert_eq!(b.value, b2.value);
        // an unknown name or a wrong shape is an error
        let bad = vec![("state1.layers.9.x".to_string(), saved[0].1.clone())];
        assert!(back.load_state_tensors(1, bad, &shapes).is_err());
        let bad = vec![("state1.layers.0.a".to_string(), saved[1].1.clone())];
        assert!(back.load_state_tensors(1, bad, &shapes).is_err());
    }

    /// Two parameters of the same shape passed in the other order (or one left out) at the
    /// second step each keep their own moments: the result equals stepping each alone.
    #[test]
    fn state_follows_the_parameter_name_not_its_position() {
        let c = OptimizerConfig::named("adam").unwrap();
        let fresh = || {
            let mut a = Param::new("weight", ndarray::arr1(&[1.0f64, -2.0]).into_dyn());
            let mut b = Param::new("weight", ndarray::arr1(&[0.5f64, 3.0]).into_dyn());
            a.grad.fill(0.3);
            b.grad.fill(-4.0);
            (a, b)
        };
        let (an, bn) = ("layers.0.weight".to_string(), "layers.2.weight".to_string());
        // Reference: each parameter with an optimizer of its own.
        let (mut ra, mut rb) = fresh();
        let (mut oa, mut ob) = (Optimizer::<f64>::new(c), Optimizer::<f64>::new(c));
        for _ in 0..2 {
            oa.step(vec![(an.clone(), &mut ra)]);
            ob.step(vec![(bn.clone(), &mut rb)]);
        }
        // One optimizer, the order swapped at the second step.
        let (mut a, mut b) = fresh();
        let mut opt = Optimizer::<f64>::new(c);
        opt.step(vec![(an.clone(), &mut a), (bn.clone(), &mut b)]);
        opt.step(vec![(bn.clone(), &mut b), (an.clone(), &mut a)]);
        assert_eq!(a.value, ra.value);
        assert_eq!(b.value, rb.value);
        // Only b at the third step: b continues its own state, a's is dropped.
        rb.grad.fill(1.0);
        b.grad.fill(1.0);
        ob.step(vec![(bn.clone(), &mut rb)]);
        opt.step(vec![(bn.clone(), &mut b)]);
        assert_eq!(b.value, rb.value);
        let kept: Vec<String> = opt
            .state_tensors()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(kept, ["state1.layers.2.weight", "state2.layers.2.weight"]);
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
