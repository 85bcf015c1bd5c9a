//! Reading a Keras layer's config (`KerasOpts`) and its variables (`KerasVars`): the helpers
//! each layer kind's Keras mapping ([`crate::layers::registry::LayerKind::from_keras`]) uses.
//! Every option is read once or listed as inert; whatever else is in the config is refused.

use ndarray::ArrayD;
use serde_json::{Map, Value};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layers::registry::Padding;
use crate::tensor::fmt_shape;

fn err(origin: &str, msg: impl Into<String>) -> Error {
    Error::Spec {
        path: origin.to_string(),
        msg: msg.into(),
    }
}

/// Options of one Keras layer: each read once; `done` refuses whatever was not read.
pub struct KerasOpts<'a> {
    pub cfg: &'a Map<String, Value>,
    used: Vec<String>,
    pub at: &'a str,
    pub origin: &'a str,
}

/// Options that never change what a converted model computes (initialisers only matter when
/// training from scratch, where seqgrad uses Keras' defaults).
const INERT: &[&str] = &[
    "name",
    "dtype",
    "seed",
    "kernel_initializer",
    "bias_initializer",
    "recurrent_initializer",
    "depthwise_initializer",
    "unit_forget_bias",
    "unroll",
    "implementation",
    "zero_output_for_mask",
];

/// Options that change training and are fine only when null (regularisers, constraints).
const NULL_ONLY: &[&str] = &[
    "kernel_regularizer",
    "bias_regularizer",
    "recurrent_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "recurrent_constraint",
    "lora_rank",
    "lora_alpha",
    "quantization_config",
    "noise_shape",
];

impl<'a> KerasOpts<'a> {
    pub fn new(cfg: &'a Map<String, Value>, at: &'a str, origin: &'a str) -> Self {
        KerasOpts {
            cfg,
            used: Vec::new(),
            at,
            origin,
        }
    }

    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        err(self.origin, format!("{}: {msg}", self.at))
    }

    pub fn ignore(&mut self, keys: &[&str]) {
        self.used.extend(keys.iter().map(|k| k.to_string()));
    }

    pub fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.push(key.to_string());
        self.cfg.get(key).filter(|v| !v.is_null())
    }

    /// A positive integer, or a one-element list of one (`kernel_size: [9]`).
    pub fn int(&mut self, key: &str, default: Option<usize>) -> Result<usize> {
        let v = match self.get(key) {
            None => return default.ok_or_else(|| self.err(format!("{key} is missing"))),
            Some(v) => v,
        };
        let n = match v {
            Value::Array(a) if a.len() == 1 => a[0].as_u64(),
            other => other.as_u64(),
        };
        n.map(|n| n as usize)
            .ok_or_else(|| self.err(format!("{key} = {v} is not a whole number (or [n])")))
    }

    pub fn opt_int(&mut self, key: &str) -> Result<Option<usize>> {
        if self.cfg.get(key).is_some_and(|v| !v.is_null()) {
            Ok(Some(self.int(key, None)?))
        } else {
            self.used.push(key.into());
            Ok(None)
        }
    }

    pub fn float(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("{key} = {v} is not a number"))),
        }
    }

    pub fn boolean(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(format!("{key} = {v} is not true/false"))),
        }
    }

    pub fn string(&mut self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(format!("{key} = {v} is not a string"))),
        }
    }

    /// The option must have the one value seqgrad implements.
    pub fn require<V: PartialEq + std::fmt::Display>(
        &self,
        key: &str,
        got: V,
        want: V,
        what: &str,
    ) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(self.err(format!(
                "{key}={got} is not supported by seqgrad ({what}); use {key}={want}"
            )))
        }
    }

    pub fn require_bool(&mut self, key: &str, default: bool, what: &str) -> Result<()> {
        let v = self.boolean(key, default)?;
        self.require(key, v, default, what)
    }

    pub fn require_zero(&mut self, key: &str, what: &str) -> Result<()> {
        let v = self.float(key, 0.0)?;
        if v != 0.0 {
            return Err(self.err(format!(
                "{key}={v} is not supported by seqgrad ({what}); use {key}=0"
            )));
        }
        Ok(())
    }

    pub fn channels_last(&mut self) -> Result<()> {
        let f = self.string("data_format", "channels_last")?;
        self.require(
            "data_format",
            f.as_str(),
            "channels_last",
            "seqgrad is channels-last: (length, channels)",
        )
    }

    pub fn activation(&mut self, key: &str, default: &str) -> Result<Activation> {
        let name = match self.get(key) {
            None => default.to_string(),
            Some(Value::String(s)) => s.clone(),
            // Keras 3 may serialise a built-in activation as {"class_name": …, "config": …}.
            Some(Value::Object(o)) => o
                .get("config")
                .and_then(|c| c.get("name"))
                .or_else(|| o.get("class_name"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            Some(v) => return Err(self.err(format!("{key} = {v} is not an activation name"))),
        };
        activation_named(&name).ok_or_else(|| {
            self.err(format!(
                "{key} '{name}' is not supported by seqgrad; it has linear, relu, tanh, \
                 sigmoid, softmax"
            ))
        })
    }

    pub fn padding(&mut self, allow_causal: bool) -> Result<Padding> {
        let p = self.string("padding", "valid")?;
        match p.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            other => Err(self.err(format!(
                "padding='{other}' is not supported by seqgrad{}; use 'valid' or 'same'",
                if allow_causal { "" } else { " here" }
            ))),
        }
    }

    pub fn input_shape(&mut self) -> Result<Vec<Option<usize>>> {
        let v = self
            .get("batch_shape")
            .or_else(|| self.cfg.get("batch_input_shape").filter(|v| !v.is_null()))
            .cloned();
        self.used.push("batch_input_shape".into());
        match v {
            Some(v) => shape_of(&v, self.at, self.origin),
            None => Err(self.err("has no batch_shape")),
        }
    }

    /// Refuses every option not read and not known to be inert.
    pub fn done(&self, extra_inert: &[&str]) -> Result<()> {
        for (k, v) in self.cfg {
            if self.used.iter().any(|u| u == k) || INERT.contains(&k.as_str()) {
                continue;
            }
            if extra_inert.contains(&k.as_str()) {
                if v.as_bool() == Some(true) {
                    return Err(self.err(format!("{k}=true is not supported by seqgrad")));
                }
                continue;
            }
            if NULL_ONLY.contains(&k.as_str()) {
                if !v.is_null() {
                    return Err(self.err(format!(
                        "{k}={v} is not supported by seqgrad (it would change training); \
                         set it to None to convert"
                    )));
                }
                continue;
            }
            if k == "trainable" {
                if v.as_bool() == Some(false) {
                    return Err(self.err(
                        "trainable=false (a frozen layer) is not supported by seqgrad; every \
                         layer trains",
                    ));
                }
                continue;
            }
            return Err(self.err(format!(
                "option {k}={v} is not supported by seqgrad (it does not implement it)"
            )));
        }
        Ok(())
    }
}

pub fn activation_named(name: &str) -> Option<Activation> {
    Some(match name.to_ascii_lowercase().as_str() {
        "linear" | "none" => Activation::Linear,
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "softmax" => Activation::Softmax,
        _ => return None,
    })
}

/// A Keras batch shape `[null, L, C]` → seqgrad's per-sample `[L, C]`; a `None` length,
/// `[null, null, C]`, → `[null, C]` (a model of any length, `docs/variable-length.md`).
pub fn shape_of(v: &Value, at: &str, origin: &str) -> Result<Vec<Option<usize>>> {
    let a = v
        .as_array()
        .ok_or_else(|| err(origin, format!("{at}: input shape {v} is not a list")))?;
    let dims = a.get(1..).unwrap_or(&[]);
    if dims.is_empty() {
        return Err(err(
            origin,
            format!("{at}: input shape {v} has no per-sample axes"),
        ));
    }
    let n = dims.len();
    dims.iter()
        .enumerate()
        .map(|(i, d)| match d.as_u64() {
            Some(k) if k > 0 => Ok(Some(k as usize)),
            // The length of a (length, channels) input may be None: any length.
            _ if d.is_null() && n == 2 && i == 0 => Ok(None),
            _ if d.is_null() => Err(err(
                origin,
                format!(
                    "{at}: input shape {v} has a variable (None) axis seqgrad cannot take; only \
                     the length of (length, channels) may be None"
                ),
            )),
            _ => Err(err(
                origin,
                format!("{at}: input shape {v} has a bad axis {d}"),
            )),
        })
        .collect()
}

/// Reads `n` variables `{layer path}{sub}/vars/{0..n}` of a Keras layer: `take(sub, n)`.
pub type TakeVars<'a> = &'a mut dyn FnMut(&str, usize) -> Result<Vec<ArrayD<f64>>>;

/// The variables of one Keras layer, read by path, and the PyTorch-named parameters made from
/// them ([`crate::layers::registry::LayerKind::keras_weights`]).
pub struct KerasVars<'a> {
    take: TakeVars<'a>,
    /// `Keras layer 'name' (Class)`, for messages.
    pub at: String,
    pub origin: String,
    /// Parameters by name within the layer (`weight`, `bias_ih_l0_reverse` …).
    pub out: Vec<(String, ArrayD<f64>)>,
}

impl<'a> KerasVars<'a> {
    /// `take(sub, n)` returns the `n` variables `{layer path}{sub}/vars/{0..n}`.
    pub fn new(take: TakeVars<'a>, at: String, origin: String) -> Self {
        KerasVars {
            take,
            at,
            origin,
            out: Vec::new(),
        }
    }

    /// The `n` variables under `sub` (`""`, `"/cell"`, `"/forward_layer/cell"` …).
    pub fn take(&mut self, sub: &str, n: usize) -> Result<Vec<ArrayD<f64>>> {
        (self.take)(sub, n)
    }

    /// Sets a parameter.
    pub fn put(&mut self, name: impl Into<String>, a: ArrayD<f64>) {
        self.out.push((name.into(), a));
    }

    /// A weights error about this layer.
    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Weights {
            path: self.origin.clone(),
            msg: format!("{}: {msg}", self.at),
        }
    }

    /// `a` when it has rank `rank`, else an error naming `what` and its shape.
    pub fn expect_rank(&self, a: &ArrayD<f64>, rank: usize, what: &str) -> Result<ArrayD<f64>> {
        if a.ndim() != rank {
            return Err(self.err(format!(
                "{what} has shape {} (rank {rank} expected)",
                fmt_shape(a.shape())
            )));
        }
        Ok(a.clone())
    }
}
