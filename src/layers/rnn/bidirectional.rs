//! `bidirectional`: runs a recurrent layer forward and a second copy (own parameters, names
//! suffixed `_reverse`) on the time-reversed sequence, and merges the two.
//!
//! Forward: `y_f = RNN_f(x)`, `y_b[t] = RNN_b(reverse(x))[L−1−t]` (the reverse direction's
//! outputs sit at their original time index). With `return_sequences` false, `y_f` is the forward
//! direction's state at t = L−1 and `y_b` the reverse direction's final state, at t = 0.
//! Merge: `concat` → `[y_f, y_b]` on the feature axis (forward first), `sum` → `y_f + y_b`,
//! `mul` → `y_f ⊙ y_b`, `ave` → `(y_f + y_b) / 2`.
//!
//! Backward, given `dy`: `concat` → `dy_f, dy_b` = the two halves; `sum` → both `dy`;
//! `ave` → both `dy / 2`; `mul` → `dy_f = dy ⊙ y_b`, `dy_b = dy ⊙ y_f`. Then each direction
//! back-propagates through time on its own and `dx = dx_f + dx_b`.
//!
//! The two directions own their parameters and caches, so they run concurrently
//! (`rayon::join`) with no shared writes; results do not depend on the thread count.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::spec::{self as rnn_spec, RecurrentSpec};
use super::{CellKind, Direction, Recurrent};
use crate::error::{Error, Result, ShapeIssue};
use crate::layers::keras_config::{KerasOpts, KerasVars};
use crate::layers::registry::{Issue, LayerBytes, LayerKind, MemoryIo, Planned, TimeAxisHint};
use crate::layers::{no_forward, Layer, Param};
use crate::tensor::{Float, Mode};

/// How `bidirectional` merges the two directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Forward first, then backward, on the feature axis (default).
    #[default]
    Concat,
    Sum,
    Mul,
    Ave,
}

/// `bidirectional`: wraps a recurrent layer; backward-direction parameters carry `_reverse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidirectionalSpec {
    pub layer: RecurrentSpec,
    #[serde(default)]
    pub merge_mode: MergeMode,
}

/// The `bidirectional` kind (registry entry).
pub struct BidirectionalKind;

impl LayerKind for BidirectionalKind {
    type Spec = BidirectionalSpec;
    const KERAS: &'static [&'static str] = &["Bidirectional"];

    /// The wrapped layer's rule twice (the reverse direction's names end in `_reverse`);
    /// `concat` doubles the features.
    fn plan(s: &BidirectionalSpec, input: &[usize]) -> Issue<Planned> {
        let fwd = rnn_spec::plan(&s.layer, "", input)?;
        let bwd = rnn_spec::plan(&s.layer, "_reverse", input)?;
        let mut output = fwd.output;
        if s.merge_mode == MergeMode::Concat {
            if let Some(last) = output.last_mut() {
                *last *= 2;
            }
        }
        let mut params = fwd.params;
        params.extend(bwd.params);
        Ok(Planned { output, params })
    }

    /// Two directions; `concat` writes each into its half of the output, `mul` caches both
    /// directions' outputs for backward. Both backward passes run at once, each with its own
    /// input gradient.
    fn memory(s: &BidirectionalSpec, io: &MemoryIo<'_>) -> LayerBytes {
        let Ok(cell) = CellKind::from_spec(&s.layer) else {
            return io.output_only();
        };
        let one = rnn_spec::direction_bytes(cell, s.layer.rnn().units, io);
        let outs = if s.merge_mode == MergeMode::Mul {
            2.0 * one.out
        } else {
            0.0
        };
        let out = io.output_only();
        LayerBytes {
            cache: 2.0 * one.cache + outs,
            infer: 2.0 * one.infer,
            keep: 2.0 * one.keep,
            tmp: 2.0 * one.tmp + 2.0 * io.input_elems() * io.elem,
            // concat: the last inference output, held for the next pass.
            spare: if s.merge_mode == MergeMode::Concat {
                out.out
            } else {
                0.0
            },
            ..out
        }
    }

    fn build<T: Float>(
        s: &BidirectionalSpec,
        input: &[usize],
        _seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Issue<Box<dyn Layer<T>>> {
        Ok(Box::new(Bidirectional::<T>::new(s, input, rng)?))
    }

    fn kind(s: &BidirectionalSpec, name: &'static str) -> String {
        format!("{name}({})", s.layer.kind())
    }

    fn is_recurrent(_s: &BidirectionalSpec) -> bool {
        true
    }

    fn removed_time_axis(s: &BidirectionalSpec, name: &'static str, h: &TimeAxisHint) -> String {
        rnn_spec::removed_time_axis(&Self::kind(s, name), true, h)
    }

    fn keras_param_count(s: &BidirectionalSpec, planned: &Planned) -> usize {
        let half = planned.params.len() / 2;
        let one = Planned {
            output: Vec::new(),
            params: planned.params[..half].to_vec(),
        };
        2 * rnn_spec::keras_count(&s.layer, &one)
    }

    fn from_keras(_class: &str, o: &mut KerasOpts<'_>) -> Result<BidirectionalSpec> {
        let merge = o.string("merge_mode", "concat")?;
        let merge_mode = match merge.as_str() {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            other => {
                return Err(o.err(format!(
                    "merge_mode={other} is not supported by seqgrad; it has concat, sum, \
                     mul, ave"
                )))
            }
        };
        if o.cfg.get("merge_mode").is_some_and(Value::is_null) {
            return Err(o.err(
                "merge_mode=None (two outputs) is not supported by seqgrad; it has concat, \
                 sum, mul, ave",
            ));
        }
        let inner = o
            .get("layer")
            .ok_or_else(|| o.err("has no wrapped layer"))?;
        let (iclass, icfg) = class_and_config(inner).ok_or_else(|| o.err("bad wrapped layer"))?;
        let iat = format!("{} wrapped layer ({iclass})", o.at);
        let mut io = KerasOpts::new(icfg, &iat, o.origin);
        let fwd = rnn_spec::from_keras(iclass, &mut io)?;
        if let Some(back) = o.get("backward_layer") {
            // Keras writes the backward copy out; it must be the forward layer read
            // backwards, nothing else.
            let (bclass, bcfg) =
                class_and_config(back).ok_or_else(|| o.err("bad backward_layer"))?;
            let bat = format!("{} backward_layer ({bclass})", o.at);
            let mut bcfg = bcfg.clone();
            if bcfg.get("go_backwards").and_then(Value::as_bool) != Some(true) {
                return Err(o.err(
                    "a backward_layer that does not read backwards (go_backwards=false) is \
                     not supported by seqgrad",
                ));
            }
            bcfg.remove("go_backwards");
            let mut bo = KerasOpts::new(&bcfg, &bat, o.origin);
            let bwd = rnn_spec::from_keras(bclass, &mut bo)?;
            if bwd != fwd {
                return Err(o.err(
                    "a backward_layer that differs from the forward layer is not \
                     supported by seqgrad (both directions share one configuration)",
                ));
            }
        }
        Ok(BidirectionalSpec {
            layer: fwd,
            merge_mode,
        })
    }

    /// `forward_layer/cell` and `backward_layer/cell` (the latter with `_reverse`).
    fn keras_weights(s: &BidirectionalSpec, vars: &mut KerasVars<'_>) -> Result<()> {
        let gru = matches!(s.layer, RecurrentSpec::Gru(_));
        rnn_spec::keras_cell(gru, "/forward_layer/cell", "", vars)?;
        rnn_spec::keras_cell(gru, "/backward_layer/cell", "_reverse", vars)
    }
}

fn class_and_config(v: &Value) -> Option<(&str, &Map<String, Value>)> {
    Some((
        v.get("class_name")?.as_str()?,
        v.get("config")?.as_object()?,
    ))
}

/// What backward needs: one direction's output shape, and for `mul` the two outputs.
struct MergeCache<T> {
    /// Shape of one direction's output. `(B, L, U)` or `(B, U)`.
    half: Vec<usize>,
    /// `mul` only: forward direction's output and reverse direction's output (original time
    /// order), each shaped `half`.
    outs: Option<(ArrayD<T>, ArrayD<T>)>,
}

/// A bidirectional recurrent layer.
pub struct Bidirectional<T: Float> {
    fwd: Recurrent<T>,
    bwd: Recurrent<T>,
    merge: MergeMode,
    cache: Option<MergeCache<T>>,
    /// `concat` only: the last output, handed back by the model ([`Layer::recycle`]); the next
    /// pass writes into it when the shapes match (both directions overwrite every element).
    spare: Option<ArrayD<T>>,
}

impl<T: Float> Bidirectional<T> {
    /// Builds both directions for a per-sample input `[length, features]` (forward direction's
    /// weights drawn first).
    ///
    /// # Shapes
    /// - `input`: `[L, F]`; a 1-D `[F]` gives [`ShapeIssue::NeedsSequence`].
    pub fn new(
        spec: &BidirectionalSpec,
        input: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<Self, ShapeIssue> {
        let fwd = Recurrent::new(&spec.layer, input, Direction::Forward, rng)?;
        let bwd = Recurrent::new(&spec.layer, input, Direction::Reverse, rng)?;
        Ok(Bidirectional {
            fwd,
            bwd,
            merge: spec.merge_mode,
            cache: None,
            spare: None,
        })
    }

    pub fn merge_mode(&self) -> MergeMode {
        self.merge
    }

    /// The forward and reverse directions.
    pub fn directions(&self) -> (&Recurrent<T>, &Recurrent<T>) {
        (&self.fwd, &self.bwd)
    }

    /// Mutable access to the two directions.
    pub fn directions_mut(&mut self) -> (&mut Recurrent<T>, &mut Recurrent<T>) {
        (&mut self.fwd, &mut self.bwd)
    }
}

impl<T: Float> Layer<T> for Bidirectional<T> {
    fn kind(&self) -> String {
        format!("bidirectional({})", self.fwd.cell().name())
    }

    fn recycle(&mut self, spent: ArrayD<T>) {
        if self.merge == MergeMode::Concat {
            self.spare = Some(spent);
        }
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        let mut out = self.fwd.output_shape(input)?;
        if self.merge == MergeMode::Concat {
            if let Some(last) = out.last_mut() {
                *last *= 2;
            }
        }
        Ok(out)
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        self.cache = None;
        let (fwd, bwd) = (&mut self.fwd, &mut self.bwd);
        if self.merge == MergeMode::Concat {
            // Each direction writes its half of the row-major output in place.
            let (b, l) = fwd.input_dims(x.shape())?;
            let half = fwd.output_dims(b, l);
            let mut full = half.clone();
            let last = full.len() - 1;
            let u = full[last];
            full[last] = 2 * u;
            let mut out = match self.spare.take() {
                Some(o) if o.shape() == full.as_slice() && o.is_standard_layout() => o,
                _ => ArrayD::<T>::zeros(IxDyn(&full)),
            };
            {
                let (left, right) = out.view_mut().split_at(Axis(last), u);
                let (rf, rb) = rayon::join(
                    || fwd.forward_into(x.view(), mode, left),
                    || bwd.forward_into(x.view(), mode, right),
                );
                rf?;
                rb?;
            }
            if mode.caches() {
                self.cache = Some(MergeCache { half, outs: None });
            }
            return Ok(out);
        }
        let (yf, yb) = rayon::join(
            || fwd.forward(x.view(), mode),
            || bwd.forward(x.view(), mode),
        );
        let (yf, yb) = (yf?, yb?);
        let out = match self.merge {
            MergeMode::Sum | MergeMode::Concat => &yf + &yb,
            MergeMode::Mul => &yf * &yb,
            MergeMode::Ave => (&yf + &yb) * T::lit(0.5),
        };
        if mode.caches() {
            let half = yf.shape().to_vec();
            let outs = (self.merge == MergeMode::Mul).then_some((yf, yb));
            self.cache = Some(MergeCache { half, outs });
        }
        Ok(out)
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let kind = self.kind();
        let cache = self.cache.as_ref().ok_or_else(|| no_forward(&kind))?;
        let mut want = cache.half.clone();
        if self.merge == MergeMode::Concat {
            if let Some(l) = want.last_mut() {
                *l *= 2;
            }
        }
        if grad_out.shape() != want.as_slice() {
            return Err(Error::Shape {
                what: format!("{kind} output gradient"),
                expected: format!("{want:?}"),
                got: format!("{:?}", grad_out.shape()),
            });
        }
        let last = Axis(grad_out.ndim() - 1);
        let u = cache.half[last.index()];
        let (fwd, bwd) = (&mut self.fwd, &mut self.bwd);
        let (dxf, dxb) = match (self.merge, &cache.outs) {
            // The two halves are passed as (strided) views: no copy.
            (MergeMode::Concat, _) => {
                let gf = grad_out.slice_axis(last, Slice::from(0..u));
                let gb = grad_out.slice_axis(last, Slice::from(u..2 * u));
                rayon::join(|| fwd.backward(gf), || bwd.backward(gb))
            }
            (MergeMode::Sum, _) => rayon::join(
                || fwd.backward(grad_out.view()),
                || bwd.backward(grad_out.view()),
            ),
            (MergeMode::Mul, Some((yf, yb))) => {
                let (gf, gb) = (&grad_out * yb, &grad_out * yf);
                rayon::join(|| fwd.backward(gf.view()), || bwd.backward(gb.view()))
            }
            (MergeMode::Mul, None) => return Err(no_forward(&kind)),
            (MergeMode::Ave, _) => {
                let h = grad_out.mapv(|v| v * T::lit(0.5));
                rayon::join(|| fwd.backward(h.view()), || bwd.backward(h.view()))
            }
        };
        let mut dx = dxf?;
        dx += &dxb?;
        Ok(dx)
    }

    fn params(&self) -> Vec<&Param<T>> {
        self.fwd
            .params()
            .into_iter()
            .chain(self.bwd.params())
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.fwd
            .params_mut()
            .into_iter()
            .chain(self.bwd.params_mut())
            .collect()
    }

    fn set_need_input_grad(&mut self, on: bool) {
        self.fwd.set_need_input_grad(on);
        self.bwd.set_need_input_grad(on);
    }

    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.fwd.set_lengths(lengths);
        self.bwd.set_lengths(lengths);
    }

    fn set_record_step_grads(&mut self, on: bool) {
        self.fwd.set_record_step_grads(on);
        self.bwd.set_record_step_grads(on);
    }

    fn step_grad_norms(&self) -> Vec<(String, ndarray::Array2<f64>)> {
        self.fwd
            .step_grad_norms()
            .into_iter()
            .chain(self.bwd.step_grad_norms())
            .collect()
    }

    fn gate_saturation(&self) -> Vec<(String, String, f64)> {
        let mut v = self.fwd.gate_saturation();
        v.extend(self.bwd.gate_saturation());
        v
    }
}
