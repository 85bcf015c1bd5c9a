//! Keras weights → seqgrad's PyTorch-named state dict.
//!
//! Keras 3 keeps a model's variables in `model.weights.h5` as `layers/{name}/vars/{i}` (the
//! cell of a recurrent layer: `layers/{name}/cell/vars/{i}`; `Bidirectional`:
//! `layers/{name}/forward_layer/cell/vars/{i}` and `…/backward_layer/…`), where `{name}` is
//! the layer's class in snake case, numbered when it repeats (`conv1d`, `conv1d_1` …; see
//! [`super::KerasLayer::path`]). [`map_weights`] takes
//! those arrays by path (read by [`super::archive`] or dumped by `python/keras_to_seqgrad.py`)
//! and returns seqgrad's tensors:
//!
//! | Keras | seqgrad / PyTorch |
//! |---|---|
//! | `Conv1D` kernel `(k, in, out)`, bias `(out)` | `weight (out, in, k)`, `bias` |
//! | `Dense` kernel `(in, out)`, bias | `weight (out, in)` = kernelᵀ, `bias` |
//! | `SimpleRNN`/`LSTM` kernel `(in, G·U)`, recurrent `(U, G·U)`, bias `(G·U)` | `weight_ih_l0` = kernelᵀ, `weight_hh_l0` = recurrentᵀ, `bias_ih_l0` = bias, `bias_hh_l0` = 0 (Keras' LSTM gates i, f, c, o are PyTorch's i, f, g, o) |
//! | `GRU` (`reset_after`) kernel `(in, 3U)` gates z, r, h, recurrent `(U, 3U)`, bias `(2, 3U)` | gate blocks reordered to r, z, n: `weight_ih_l0`, `weight_hh_l0` (transposed), `bias_ih_l0` = bias[0], `bias_hh_l0` = bias[1] |
//!
//! `Bidirectional` adds the same with `_reverse` for the backward layer. Every Keras variable
//! must be used and every seqgrad parameter found; anything else is an error listing it.

use std::collections::BTreeMap;

use ndarray::{concatenate, ArrayD, Axis, IxDyn, Slice};

use super::KerasModel;
use crate::error::{Error, Result};
use crate::spec::{LayerSpec, RecurrentSpec};
use crate::tensor::fmt_shape;
use crate::weights::StoredTensor;

fn werr(origin: &str, msg: impl Into<String>) -> Error {
    Error::Weights {
        path: origin.to_string(),
        msg: msg.into(),
    }
}

/// Maps Keras variables (by `model.weights.h5` path) to seqgrad parameters
/// (`layers.{i}.weight` …), in the variables' dtype.
pub fn map_weights(
    model: &KerasModel,
    vars: &BTreeMap<String, StoredTensor>,
    origin: &str,
) -> Result<BTreeMap<String, StoredTensor>> {
    let mut out = BTreeMap::new();
    let mut used: Vec<&str> = Vec::new();
    let dtype = vars.values().next().map(|t| t.dtype).unwrap_or("F32");
    if let Some((n, t)) = vars.iter().find(|(_, t)| t.dtype != dtype) {
        return Err(werr(
            origin,
            format!("Keras variable {n} is {} but others are {dtype}", t.dtype),
        ));
    }
    for (i, (spec, meta)) in model.spec.layers.iter().zip(&model.layers).enumerate() {
        let base = meta.path.clone();
        let mut take = |sub: &str, n: usize| -> Result<Vec<ArrayD<f64>>> {
            let mut got = Vec::new();
            for k in 0..n {
                let key = format!("{base}{sub}/vars/{k}");
                let (name, t) = vars.get_key_value(&key).ok_or_else(|| {
                    werr(
                        origin,
                        format!(
                            "Keras layer '{}' ({}): variable {key} is missing",
                            meta.name, meta.class
                        ),
                    )
                })?;
                used.push(name.as_str());
                got.push(t.array.clone());
            }
            Ok(got)
        };
        let p = |name: &str| format!("layers.{i}.{name}");
        let at = format!("Keras layer '{}' ({})", meta.name, meta.class);
        match spec {
            LayerSpec::Conv1d(c) => {
                let v = take("", if c.use_bias { 2 } else { 1 })?;
                let k = expect_rank(&v[0], 3, &at, "kernel", origin)?;
                out.insert(p("weight"), k.permuted_axes(IxDyn(&[2, 1, 0])));
                if c.use_bias {
                    out.insert(p("bias"), v[1].clone());
                }
            }
            LayerSpec::Dense(d) => {
                let v = take("", if d.use_bias { 2 } else { 1 })?;
                let k = expect_rank(&v[0], 2, &at, "kernel", origin)?;
                out.insert(p("weight"), k.reversed_axes());
                if d.use_bias {
                    out.insert(p("bias"), v[1].clone());
                }
            }
            LayerSpec::SimpleRnn(_) | LayerSpec::Lstm(_) | LayerSpec::Gru(_) => {
                let gru = matches!(spec, LayerSpec::Gru(_));
                let v = take("/cell", 3)?;
                cell(&v, gru, "", &at, origin, &p, &mut out)?;
            }
            LayerSpec::Bidirectional(b) => {
                let gru = matches!(b.layer, RecurrentSpec::Gru(_));
                let f = take("/forward_layer/cell", 3)?;
                cell(&f, gru, "", &at, origin, &p, &mut out)?;
                let r = take("/backward_layer/cell", 3)?;
                cell(&r, gru, "_reverse", &at, origin, &p, &mut out)?;
            }
            _ => {}
        }
    }
    let unused: Vec<&String> = vars
        .keys()
        .filter(|k| !used.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        return Err(werr(
            origin,
            format!(
                "{} Keras variable(s) belong to no converted layer: {}",
                unused.len(),
                unused
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(out
        .into_iter()
        .map(|(k, array)| {
            let array = array.as_standard_layout().into_owned();
            (k, StoredTensor { dtype, array })
        })
        .collect())
}

fn expect_rank(
    a: &ArrayD<f64>,
    rank: usize,
    at: &str,
    what: &str,
    origin: &str,
) -> Result<ArrayD<f64>> {
    if a.ndim() != rank {
        return Err(werr(
            origin,
            format!(
                "{at}: {what} has shape {} (rank {rank} expected)",
                fmt_shape(a.shape())
            ),
        ));
    }
    Ok(a.clone())
}

/// Keras GRU gate blocks z, r, h (last axis) → PyTorch r, z, n.
fn gru_reorder(a: &ArrayD<f64>, at: &str, origin: &str) -> Result<ArrayD<f64>> {
    let ax = Axis(a.ndim() - 1);
    let n = a.len_of(ax);
    if !n.is_multiple_of(3) {
        return Err(werr(
            origin,
            format!(
                "{at}: GRU variable of shape {} is not 3 gate blocks",
                fmt_shape(a.shape())
            ),
        ));
    }
    let u = n / 3;
    let z = a.slice_axis(ax, Slice::from(0..u));
    let r = a.slice_axis(ax, Slice::from(u..2 * u));
    let h = a.slice_axis(ax, Slice::from(2 * u..3 * u));
    concatenate(ax, &[r, z, h]).map_err(|e| werr(origin, format!("{at}: {e}")))
}

/// One recurrent cell: kernel `(in, G·U)`, recurrent kernel `(U, G·U)`, bias `(G·U)` (GRU:
/// `(2, 3U)`).
fn cell(
    v: &[ArrayD<f64>],
    gru: bool,
    suffix: &str,
    at: &str,
    origin: &str,
    p: &dyn Fn(&str) -> String,
    out: &mut BTreeMap<String, ArrayD<f64>>,
) -> Result<()> {
    let mut k = expect_rank(&v[0], 2, at, "kernel", origin)?;
    let mut rk = expect_rank(&v[1], 2, at, "recurrent_kernel", origin)?;
    let (b_ih, b_hh) = if gru {
        k = gru_reorder(&k, at, origin)?;
        rk = gru_reorder(&rk, at, origin)?;
        let b = expect_rank(&v[2], 2, at, "bias (reset_after: (2, 3·units))", origin)?;
        if b.shape()[0] != 2 {
            return Err(werr(
                origin,
                format!(
                    "{at}: GRU bias has shape {}; seqgrad needs reset_after's (2, 3·units)",
                    fmt_shape(b.shape())
                ),
            ));
        }
        let b = gru_reorder(&b, at, origin)?;
        (
            b.index_axis(Axis(0), 0).to_owned(),
            b.index_axis(Axis(0), 1).to_owned(),
        )
    } else {
        let b = expect_rank(&v[2], 1, at, "bias", origin)?;
        let zeros = ArrayD::zeros(b.raw_dim());
        (b, zeros)
    };
    out.insert(p(&format!("weight_ih_l0{suffix}")), k.reversed_axes());
    out.insert(p(&format!("weight_hh_l0{suffix}")), rk.reversed_axes());
    out.insert(p(&format!("bias_ih_l0{suffix}")), b_ih);
    out.insert(p(&format!("bias_hh_l0{suffix}")), b_hh);
    Ok(())
}
