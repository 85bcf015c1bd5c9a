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

use ndarray::ArrayD;

use super::KerasModel;
use crate::error::{Error, Result};
use crate::layers::keras_config::KerasVars;
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
        let at = format!("Keras layer '{}' ({})", meta.name, meta.class);
        let mut layer_vars = KerasVars::new(&mut take, at, origin.to_string());
        spec.keras_weights(&mut layer_vars)?;
        for (name, a) in layer_vars.out {
            out.insert(format!("layers.{i}.{name}"), a);
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
