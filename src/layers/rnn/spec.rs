//! What the recurrent kinds (`simple_rnn`, `lstm`, `gru`, and `bidirectional` around them)
//! share: the spec, the shape rule of one direction, the memory of one direction, and the Keras
//! mapping of a cell's options and variables. Each kind's registry entry is in its own file
//! (`simple_rnn.rs`, `lstm.rs`, `gru.rs`, `bidirectional.rs`) and calls these.

use ndarray::{concatenate, ArrayD, Axis, Slice};
use serde::{Deserialize, Serialize};

use super::CellKind;
use crate::activation::Activation;
use crate::error::{Result, ShapeIssue};
use crate::layers::checked_elems;
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::registry::{Issue, LayerBytes, MemoryIo, Planned, TimeAxisHint};
use crate::tensor::fmt_shape;

fn tanh() -> Activation {
    Activation::Tanh
}

/// Weight initialisation of recurrent layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnInit {
    /// Keras: Glorot-uniform input weights, orthogonal recurrent weights, zero biases, LSTM
    /// forget-gate bias 1.
    #[default]
    Keras,
    /// PyTorch: every weight and bias U(−1/√units, 1/√units).
    Pytorch,
}

/// `simple_rnn`, `lstm`, `gru`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnnSpec {
    /// Required.
    pub units: usize,
    /// Default false: output the last step `(units)`; true: `(length, units)`.
    #[serde(default)]
    pub return_sequences: bool,
    /// `simple_rnn` only: `tanh` (default) or `relu`.
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Default `keras`.
    #[serde(default)]
    pub init: RnnInit,
    /// The initial biases: `keras` (zeros, LSTM forget gate 1), `zeros` or `chrono` (gated
    /// cells); default: as `init` has them. See `docs/rnn.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_init: Option<BiasInit>,
    /// chrono's `T` (at least 3): gate biases `ln U(1, T−1)`. Default: the layer's input length;
    /// required when that is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chrono_t_max: Option<usize>,
    /// The initial recurrent weights `weight_hh`: `orthogonal` (Keras), `identity`
    /// (`simple_rnn` only, IRNN) or `pytorch` (U(−1/√units, 1/√units)); default: as `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_init: Option<RecurrentInit>,
}

/// Initial biases of a recurrent layer (`bias_init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasInit {
    /// Zeros, and 1 on the LSTM forget gate (Keras' `unit_forget_bias`).
    Keras,
    Zeros,
    /// Tallec & Ollivier 2018: LSTM `b_f ~ ln U(1, T−1)`, `b_i = −b_f`; GRU
    /// `b_z ~ ln U(1, T−1)`; other biases zero.
    Chrono,
}

/// Initial recurrent weights of a recurrent layer (`recurrent_init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentInit {
    Orthogonal,
    Identity,
    Pytorch,
}

impl Default for RnnSpec {
    fn default() -> Self {
        RnnSpec {
            units: 0,
            return_sequences: false,
            activation: Activation::Tanh,
            init: RnnInit::Keras,
            bias_init: None,
            chrono_t_max: None,
            recurrent_init: None,
        }
    }
}

/// The cell a `bidirectional` layer wraps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecurrentSpec {
    #[serde(alias = "SimpleRNN", alias = "RNN")]
    SimpleRnn(RnnSpec),
    #[serde(alias = "LSTM")]
    Lstm(RnnSpec),
    #[serde(alias = "GRU")]
    Gru(RnnSpec),
}

impl RecurrentSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            RecurrentSpec::SimpleRnn(_) => "simple_rnn",
            RecurrentSpec::Lstm(_) => "lstm",
            RecurrentSpec::Gru(_) => "gru",
        }
    }

    pub fn rnn(&self) -> &RnnSpec {
        match self {
            RecurrentSpec::SimpleRnn(s) | RecurrentSpec::Lstm(s) | RecurrentSpec::Gru(s) => s,
        }
    }
}

/// The shape rule of one direction: output `(length, units)` or `(units)`, parameters
/// `weight_ih_l0{suffix} (G·U, F)`, `weight_hh_l0{suffix} (G·U, U)`, `bias_ih_l0{suffix}`,
/// `bias_hh_l0{suffix} (G·U)`.
pub fn plan(spec: &RecurrentSpec, suffix: &str, input: &[usize]) -> Issue<Planned> {
    let cell = CellKind::from_spec(spec)?;
    let rnn = spec.rnn();
    if rnn.units == 0 {
        return Err(ShapeIssue::Invalid("units must be at least 1".into()));
    }
    let (l, f) = match input {
        [l, f] if *l > 0 && *f > 0 => (*l, *f),
        [_, _] => {
            return Err(ShapeIssue::Invalid(format!(
                "needs a non-empty sequence (length, features) but got ({}, {})",
                input[0], input[1]
            )))
        }
        _ => {
            return Err(ShapeIssue::NeedsSequence {
                got: input.to_vec(),
            })
        }
    };
    let g = cell.gates();
    let gu = g.checked_mul(rnn.units).ok_or_else(|| {
        ShapeIssue::Invalid(format!(
            "units {} times {g} gates overflows usize",
            rnn.units
        ))
    })?;
    checked_elems("weight_ih_l0", &[gu, f])?;
    checked_elems("weight_hh_l0", &[gu, rnn.units])?;
    let output = if rnn.return_sequences {
        vec![l, rnn.units]
    } else {
        vec![rnn.units]
    };
    Ok(Planned::new(output)
        .param(format!("weight_ih_l0{suffix}"), &[gu, f])
        .param(format!("weight_hh_l0{suffix}"), &[gu, rnn.units])
        .param(format!("bias_ih_l0{suffix}"), &[gu])
        .param(format!("bias_hh_l0{suffix}"), &[gu]))
}

/// Keras keeps one bias per gate (`G·U`) where PyTorch has two, except the GRU with
/// `reset_after`, which has both: Keras' count of one direction.
pub fn keras_count(spec: &RecurrentSpec, planned: &Planned) -> usize {
    let n = planned.param_count();
    match spec {
        RecurrentSpec::Gru(_) => n,
        _ => n - planned.params.last().map_or(0, |(_, s)| s.iter().product()),
    }
}

/// Memory of one direction for a batch: forward caches the time-major input `(L·B, F)`, every
/// step's gates `(L·B, G·U)` (GRU also `Ĥ`), all hidden states `((L+1)·B, U)` (LSTM also all
/// cell states); backward's `dA` (GRU also `dĤ`) stays allocated for the next pass, and it
/// makes the time-major input gradient. Inference keeps the same working state.
pub fn direction_bytes(cell: CellKind, units: usize, io: &MemoryIo<'_>) -> LayerBytes {
    let (s, b) = (io.elem, io.batch);
    let (len, f) = (io.input[0] as f64, io.input[1] as f64);
    let (u, gu) = (units as f64, (cell.gates() * units) as f64);
    let rows = len * b;
    let mut cache = rows * f + rows * gu + (len + 1.0) * b * u;
    let mut grads = rows * gu;
    match cell {
        CellKind::Gru => {
            cache += rows * gu;
            grads += rows * gu;
        }
        CellKind::Lstm => cache += (len + 1.0) * b * u,
        CellKind::SimpleRnn(_) => {}
    }
    let seq = io.output.len() == 2;
    let out = if seq { b * len * u } else { b * u };
    LayerBytes {
        cache: cache * s,
        out: out * s,
        keep: grads * s,
        tmp: (rows * f + 4.0 * b * u) * s,
        infer: cache * s,
        spare: 0.0,
    }
}

/// The fix when a recurrent layer with `return_sequences=false` removed the time axis.
pub fn removed_time_axis(kind: &str, wrapped: bool, h: &TimeAxisHint) -> String {
    let removed = format!(
        "{kind} (#{}) with return_sequences=false removed the time axis, turning {} into {}",
        h.index, h.before, h.after
    );
    if wrapped {
        format!(
            "{removed}: set return_sequences=true in the wrapped layer of layer #{} so it \
             outputs (length, units)",
            h.index
        )
    } else {
        format!(
            "{removed}: set return_sequences=true on layer #{} so it outputs (length, units)",
            h.index
        )
    }
}

/// A Keras `SimpleRNN`, `LSTM` or `GRU` config.
pub fn from_keras(class: &str, o: &mut KerasOpts<'_>) -> Result<RecurrentSpec> {
    let units = o.int("units", None)?;
    let return_sequences = o.boolean("return_sequences", false)?;
    let activation = o.activation("activation", "tanh")?;
    o.require_bool("return_state", false, "a layer returns one output")?;
    o.require_bool("go_backwards", false, "use Bidirectional to read backwards")?;
    o.require_bool("stateful", false, "every batch starts from a zero state")?;
    o.require_bool("time_major", false, "inputs are (batch, length, features)")?;
    o.require_bool("use_bias", true, "recurrent layers always have biases")?;
    o.require_zero(
        "dropout",
        "recurrent layers have no input dropout; add a Dropout layer",
    )?;
    o.require_zero("recurrent_dropout", "recurrent dropout is not implemented")?;
    // LSTM's unit_forget_bias (default true) is bias_init keras; false is zeros.
    let bias_init = if class == "LSTM" && !o.boolean("unit_forget_bias", true)? {
        Some(BiasInit::Zeros)
    } else {
        None
    };
    let spec = RnnSpec {
        units,
        return_sequences,
        activation,
        bias_init,
        ..Default::default()
    };
    let cell = match class {
        "SimpleRNN" => {
            if !matches!(activation, Activation::Tanh | Activation::Relu) {
                return Err(o.err(format!(
                    "activation '{}' is not supported by seqgrad for SimpleRNN; it has tanh, relu",
                    activation.name()
                )));
            }
            RecurrentSpec::SimpleRnn(spec)
        }
        "LSTM" | "GRU" => {
            o.require(
                "activation",
                activation.name(),
                "tanh",
                "gated cells use tanh",
            )?;
            let ra = o.activation("recurrent_activation", "sigmoid")?;
            o.require(
                "recurrent_activation",
                ra.name(),
                "sigmoid",
                "gates use the logistic sigmoid",
            )?;
            if class == "GRU" {
                o.require_bool(
                    "reset_after",
                    true,
                    "seqgrad's GRU applies the reset gate after the recurrent product, as PyTorch",
                )?;
                RecurrentSpec::Gru(spec)
            } else {
                RecurrentSpec::Lstm(spec)
            }
        }
        other => {
            return Err(o.err(format!(
                "Keras layer class {other} is not a recurrent layer seqgrad supports \
                 (SimpleRNN, LSTM, GRU)"
            )))
        }
    };
    o.done(&[])?;
    Ok(cell)
}

/// Keras GRU gate blocks z, r, h (last axis) → PyTorch r, z, n.
fn gru_reorder(a: &ArrayD<f64>, vars: &KerasVars<'_>) -> Result<ArrayD<f64>> {
    let ax = Axis(a.ndim() - 1);
    let n = a.len_of(ax);
    if !n.is_multiple_of(3) {
        return Err(vars.err(format!(
            "GRU variable of shape {} is not 3 gate blocks",
            fmt_shape(a.shape())
        )));
    }
    let u = n / 3;
    let z = a.slice_axis(ax, Slice::from(0..u));
    let r = a.slice_axis(ax, Slice::from(u..2 * u));
    let h = a.slice_axis(ax, Slice::from(2 * u..3 * u));
    concatenate(ax, &[r, z, h]).map_err(|e| vars.err(e))
}

/// One Keras cell's variables under `sub` (kernel `(in, G·U)`, recurrent kernel `(U, G·U)`,
/// bias `(G·U)`, GRU `(2, 3U)`) → PyTorch's four parameters with `suffix`. Keras' LSTM gates
/// i, f, c, o are PyTorch's i, f, g, o; its single bias becomes `bias_ih`, `bias_hh` = 0.
pub fn keras_cell(gru: bool, sub: &str, suffix: &str, vars: &mut KerasVars<'_>) -> Result<()> {
    let v = vars.take(sub, 3)?;
    let mut k = vars.expect_rank(&v[0], 2, "kernel")?;
    let mut rk = vars.expect_rank(&v[1], 2, "recurrent_kernel")?;
    let (b_ih, b_hh) = if gru {
        k = gru_reorder(&k, vars)?;
        rk = gru_reorder(&rk, vars)?;
        let b = vars.expect_rank(&v[2], 2, "bias (reset_after: (2, 3·units))")?;
        if b.shape()[0] != 2 {
            return Err(vars.err(format!(
                "GRU bias has shape {}; seqgrad needs reset_after's (2, 3·units)",
                fmt_shape(b.shape())
            )));
        }
        let b = gru_reorder(&b, vars)?;
        (
            b.index_axis(Axis(0), 0).to_owned(),
            b.index_axis(Axis(0), 1).to_owned(),
        )
    } else {
        let b = vars.expect_rank(&v[2], 1, "bias")?;
        let zeros = ArrayD::zeros(b.raw_dim());
        (b, zeros)
    };
    vars.put(format!("weight_ih_l0{suffix}"), k.reversed_axes());
    vars.put(format!("weight_hh_l0{suffix}"), rk.reversed_axes());
    vars.put(format!("bias_ih_l0{suffix}"), b_ih);
    vars.put(format!("bias_hh_l0{suffix}"), b_hh);
    Ok(())
}

/// The registry entry of a unidirectional recurrent kind: `recurrent_kind!(LstmKind, Lstm,
/// "LSTM")` (the kind type, its [`RecurrentSpec`] variant, its Keras class).
macro_rules! recurrent_kind {
    ($kind:ident, $variant:ident, $keras:literal) => {
        /// A unidirectional recurrent kind (registry entry); see `rnn/spec.rs`.
        pub struct $kind;

        impl $crate::layers::registry::LayerKind for $kind {
            type Spec = $crate::layers::rnn::RnnSpec;
            const KERAS: &'static [&'static str] = &[$keras];

            fn plan(
                s: &Self::Spec,
                input: &[usize],
            ) -> $crate::layers::registry::Issue<$crate::layers::registry::Planned> {
                let spec = $crate::layers::rnn::RecurrentSpec::$variant(s.clone());
                $crate::layers::rnn::spec::plan(&spec, "", input)
            }

            fn memory(
                s: &Self::Spec,
                io: &$crate::layers::registry::MemoryIo<'_>,
            ) -> $crate::layers::registry::LayerBytes {
                let spec = $crate::layers::rnn::RecurrentSpec::$variant(s.clone());
                match $crate::layers::rnn::CellKind::from_spec(&spec) {
                    Ok(cell) => $crate::layers::rnn::spec::direction_bytes(cell, s.units, io),
                    Err(_) => io.output_only(),
                }
            }

            fn build<T: $crate::tensor::Float>(
                s: &Self::Spec,
                input: &[usize],
                _seed: u64,
                rng: &mut rand_chacha::ChaCha8Rng,
            ) -> $crate::layers::registry::Issue<Box<dyn $crate::layers::Layer<T>>> {
                Ok(Box::new($crate::layers::rnn::Recurrent::<T>::new(
                    &$crate::layers::rnn::RecurrentSpec::$variant(s.clone()),
                    input,
                    $crate::layers::rnn::Direction::Forward,
                    rng,
                )?))
            }

            fn from_keras(
                class: &str,
                o: &mut $crate::layers::keras_config::KerasOpts<'_>,
            ) -> $crate::error::Result<Self::Spec> {
                Ok($crate::layers::rnn::spec::from_keras(class, o)?
                    .rnn()
                    .clone())
            }

            fn keras_weights(
                _s: &Self::Spec,
                vars: &mut $crate::layers::keras_config::KerasVars<'_>,
            ) -> $crate::error::Result<()> {
                let gru = $keras == "GRU";
                $crate::layers::rnn::spec::keras_cell(gru, "/cell", "", vars)
            }

            fn keras_param_count(
                s: &Self::Spec,
                planned: &$crate::layers::registry::Planned,
            ) -> usize {
                let spec = $crate::layers::rnn::RecurrentSpec::$variant(s.clone());
                $crate::layers::rnn::spec::keras_count(&spec, planned)
            }

            fn is_recurrent(_s: &Self::Spec) -> bool {
                true
            }

            fn removed_time_axis(
                _s: &Self::Spec,
                name: &'static str,
                h: &$crate::layers::registry::TimeAxisHint,
            ) -> String {
                $crate::layers::rnn::spec::removed_time_axis(name, false, h)
            }
        }
    };
}
pub(crate) use recurrent_kind;
