//! The one shape planner: walks a [`ModelSpec`] with the per-sample shape, asking every layer
//! kind's rule ([`LayerSpec::plan`], in the layer's own file) for its output shape and
//! parameters, without allocating a single weight. Building a model
//! ([`Sequential::from_spec`](crate::Sequential::from_spec)), `summary`, the memory estimate
//! (`crate::memory`) and the Keras importer all read this walk, so they give the same shapes and
//! the very same errors.
//!
//! A `null` input length is planned with the length unknown: each layer is asked at two probe
//! lengths; a sequence output keeps an unknown length, a flat output must not depend on the
//! length (`flatten` and the like are refused with the fix).

use crate::error::{BuildError, Error, Result, ShapeIssue};
use crate::layers::registry::{Planned, TimeAxisHint};
use crate::layers::{self, LayerSpec};
use crate::spec::ModelSpec;
use crate::tensor::fmt_shape;

/// One layer of a [`Plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    pub spec: LayerSpec,
    /// Per-sample input shape (an unknown length written as 0).
    pub input: Vec<usize>,
    /// Per-sample output shape (an unknown length written as 0).
    pub output: Vec<usize>,
    /// Per-sample output shape, `None` for an unknown length.
    pub output_dims: Vec<Option<usize>>,
    /// Number of scalar parameters.
    pub params: usize,
    /// Parameters by PyTorch name (within the layer) with their shapes.
    pub param_shapes: Vec<(String, Vec<usize>)>,
    /// The parameter count Keras gives the same layer.
    pub keras_params: usize,
}

/// A model's shapes and parameter counts, computed from its spec without allocating weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per-sample input shape; an unknown (`null`) length written as 0.
    pub input_shape: Vec<usize>,
    /// Per-sample input shape, `None` for an unknown length.
    pub input_dims: Vec<Option<usize>>,
    pub layers: Vec<LayerPlan>,
}

impl Plan {
    /// Total number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Total number of parameters as Keras counts them.
    pub fn keras_param_count(&self) -> usize {
        self.layers.iter().map(|l| l.keras_params).sum()
    }

    /// Per-sample output shape of the model.
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map(|l| l.output.as_slice())
            .unwrap_or(&self.input_shape)
    }

    /// Per-sample output shape with `None` for an unknown length.
    pub fn output_dims(&self) -> &[Option<usize>] {
        self.layers
            .last()
            .map(|l| l.output_dims.as_slice())
            .unwrap_or(&self.input_dims)
    }

    /// The per-sample input shape layer `i` is built for: its input, except that an unknown
    /// length becomes a probe length (or 0 for layers that take any length,
    /// [`LayerSpec::builds_for_any_length`]).
    pub fn build_input(&self, i: usize) -> Vec<usize> {
        let l = &self.layers[i];
        let dims = if i == 0 {
            &self.input_dims
        } else {
            &self.layers[i - 1].output_dims
        };
        match dims.as_slice() {
            [None, Some(c)] if l.spec.builds_for_any_length() => vec![0, *c],
            [None, Some(c)] => vec![PROBE_LENGTHS[0], *c],
            _ => l.input.clone(),
        }
    }
}

/// The shapes and parameter counts of a model, or the error building it gives (the same
/// [`Error`], message and all), without allocating any weight.
pub fn plan(spec: &ModelSpec) -> Result<Plan> {
    let input0 = check_input_shape(spec)?;
    let mut out: Vec<LayerPlan> = Vec::with_capacity(spec.layers.len());
    for (index, ls) in spec.layers.iter().enumerate() {
        let input = out
            .last()
            .map_or(&spec.input_shape, |l| &l.output_dims)
            .clone();
        match symbolic_output(ls, &input) {
            Ok((planned, d)) => out.push(LayerPlan {
                spec: ls.clone(),
                input: zero_unknown(&input),
                output: zero_unknown(&d),
                output_dims: d,
                params: planned.param_count(),
                keras_params: ls.keras_param_count(&planned),
                param_shapes: planned.params,
            }),
            Err(issue) => {
                let shapes: Vec<Vec<usize>> = out.iter().map(|l| l.output.clone()).collect();
                let hint = hint_for(spec, &shapes, ls, &issue);
                return Err(BuildError {
                    index,
                    kind: ls.kind(),
                    input: zero_unknown(&input),
                    issue,
                    hint,
                }
                .into());
            }
        }
    }
    Ok(Plan {
        input_shape: input0,
        input_dims: spec.input_shape.clone(),
        layers: out,
    })
}

/// [`plan`] with an unknown (`null`) input length replaced by `length` (memory estimates for
/// a model of any length at a given padded batch length); a fixed-length spec is planned as is.
pub fn plan_for_length(spec: &ModelSpec, length: usize) -> Result<Plan> {
    let mut s = spec.clone();
    if s.is_variable_length() {
        s.input_shape[0] = Some(length);
    }
    plan(&s)
}

/// A per-sample shape with an unknown length shown as `?`: `(?, 4)`.
pub fn fmt_dims(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
        .collect();
    format!("({})", parts.join(", "))
}

/// A concrete per-sample shape with a 0 length (unknown) shown as `?`: `(?, 4)`.
fn fmt_sym(shape: &[usize]) -> String {
    match shape {
        [0, c] => format!("(?, {c})"),
        _ => fmt_shape(shape),
    }
}

/// A shape with `None` (unknown length) written as 0.
pub fn zero_unknown(dims: &[Option<usize>]) -> Vec<usize> {
    dims.iter().map(|d| d.unwrap_or(0)).collect()
}

/// Validates a spec's input shape; returns it with an unknown length written as 0.
pub fn check_input_shape(spec: &ModelSpec) -> Result<Vec<usize>> {
    let shape = &spec.input_shape;
    let bad = || Error::Spec {
        path: "input_shape".into(),
        msg: format!(
            "input_shape must be [length, channels] (length a number or null for any length) \
             or [features] with no zero, got [{}]",
            shape
                .iter()
                .map(|d| d.map_or_else(|| "null".to_string(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let ok = match shape.as_slice() {
        [Some(f)] => *f > 0,
        [l, Some(c)] => *c > 0 && *l != Some(0),
        _ => false,
    };
    if !ok {
        return Err(bad());
    }
    let concrete = zero_unknown(shape);
    let check: Vec<usize> = concrete.iter().map(|&d| d.max(1)).collect();
    if let Err(issue) = layers::checked_elems("input_shape", &check) {
        return Err(Error::Spec {
            path: "input_shape".into(),
            msg: issue.to_string(),
        });
    }
    Ok(concrete)
}

/// The two lengths a layer is probed at when the input length is unknown.
const PROBE_LENGTHS: [usize; 2] = [4096, 8191];

/// A layer's rule for a symbolic input shape (`None` = unknown length): with a known length
/// its [`LayerSpec::plan`]; with an unknown one the rule at two probe lengths: a sequence
/// output keeps an unknown length, a flat output must be the same at both (else the layer
/// needs a fixed length).
fn symbolic_output(
    spec: &LayerSpec,
    input: &[Option<usize>],
) -> std::result::Result<(Planned, Vec<Option<usize>>), ShapeIssue> {
    let fixed_fix = "with input length null end the sequence part with global_maxpool1d / \
                     global_avgpool1d or a recurrent layer with return_sequences false";
    if input.iter().all(Option::is_some) {
        let p = spec.plan(&zero_unknown(input))?;
        layers::checked_elems("output", &p.output)?;
        let dims = p.output.iter().map(|&d| Some(d)).collect();
        return Ok((p, dims));
    }
    let [None, Some(c)] = *input else {
        return Err(ShapeIssue::Invalid(format!(
            "input {} has an unknown length where seqgrad cannot take one",
            fmt_dims(input)
        )));
    };
    if let Some(why) = spec.needs_fixed_length() {
        return Err(ShapeIssue::NeedsFixedLength(format!("{why}; {fixed_fix}")));
    }
    // chrono biases without chrono_t_max take T from the input length.
    layers::rnn::init::check_unknown_length(spec)?;
    let [pa, pb] = PROBE_LENGTHS;
    let probe_issue = |e: ShapeIssue| match e {
        ShapeIssue::TooShort { what, needed, .. } => ShapeIssue::NeedsFixedLength(format!(
            "{what} {needed} is longer than the {pa} positions a null-length model is checked \
             with; give input_shape a fixed length"
        )),
        other => other,
    };
    let a = spec.plan(&[pa, c]).map_err(probe_issue)?;
    let b = spec.plan(&[pb, c]).map_err(probe_issue)?;
    layers::checked_elems("output", &b.output)?;
    match (a.output.as_slice(), b.output.as_slice()) {
        ([_, ca], [_, cb]) if ca == cb => {
            let dims = vec![None, Some(*ca)];
            Ok((a, dims))
        }
        ([fa], [fb]) if fa == fb => {
            let dims = vec![Some(*fa)];
            Ok((a, dims))
        }
        _ => Err(ShapeIssue::NeedsFixedLength(format!(
            "{} would give an output whose size depends on the input length; {fixed_fix}",
            spec.kind()
        ))),
    }
}

/// Thousands separators: 46929039 → "46,929,039".
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Explains where a wrong shape came from and how to fix it: the layer that removed the time
/// axis a later layer needs gives the fix ([`LayerSpec::removed_time_axis`]).
fn hint_for(
    spec: &ModelSpec,
    shapes: &[Vec<usize>],
    layer: &LayerSpec,
    issue: &ShapeIssue,
) -> Option<String> {
    let ShapeIssue::NeedsSequence { got } = issue else {
        return None;
    };
    let input_shape = zero_unknown(&spec.input_shape);
    if got.len() != 1 {
        return None;
    }
    let recurrent = layer.is_recurrent();
    let needs = if recurrent {
        "a recurrent layer"
    } else {
        "this layer"
    };
    // The last layer that turned a (length, features) input into a flat one.
    let culprit = (0..shapes.len()).rev().find(|&j| {
        let before = if j == 0 { &input_shape } else { &shapes[j - 1] };
        before.len() == 2 && shapes[j].len() == 1
    });
    let Some(j) = culprit else {
        return Some(format!(
            "the model input {} has no time axis; {needs} needs (length, features): \
             set input_shape to [length, channels]",
            fmt_sym(&input_shape)
        ));
    };
    let h = TimeAxisHint {
        index: j,
        before: fmt_sym(if j == 0 { &input_shape } else { &shapes[j - 1] }),
        after: fmt_sym(&shapes[j]),
        needs,
        this: if recurrent {
            "the recurrent layer"
        } else {
            "this layer"
        },
        recurrent,
        move_after: if recurrent && spec.layers[j].needs_fixed_length().is_some() {
            sequence_end_without(spec, j)
        } else {
            None
        },
    };
    Some(spec.layers[j].removed_time_axis(&h))
}

/// When the model without layer `j` builds and ends in a sequence output, the index (in the
/// model with layer `j`) of its last recurrent layer: the place a flatten at `j` belongs.
fn sequence_end_without(spec: &ModelSpec, j: usize) -> Option<usize> {
    let mut rest = spec.clone();
    rest.layers.remove(j);
    let p = plan(&rest).ok()?;
    if p.output_shape().len() != 2 {
        return None;
    }
    spec.layers.iter().rposition(LayerSpec::is_recurrent)
}

/// The `summary` table of a plan: index, layer (type, with its activation), output shape,
/// parameters, share, and the totals (with Keras' count when it differs).
pub fn summary_table(plan: &Plan) -> String {
    let total = plan.param_count();
    let mut rows: Vec<[String; 5]> = vec![[
        "#".into(),
        "Layer (type)".into(),
        "Output shape".into(),
        "Param #".into(),
        "Share".into(),
    ]];
    rows.push([
        "".into(),
        "input".into(),
        fmt_dims(&plan.input_dims),
        "0".into(),
        "".into(),
    ]);
    for (i, l) in plan.layers.iter().enumerate() {
        let p = l.params;
        let share = if total > 0 {
            format!("{:.1}%", 100.0 * p as f64 / total as f64)
        } else {
            "-".into()
        };
        rows.push([
            i.to_string(),
            l.spec.summary_kind(&l.output_dims),
            fmt_dims(&l.output_dims),
            group(p),
            share,
        ]);
    }
    let w: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let rule = "─".repeat(w.iter().sum::<usize>() + 8);
    let mut out = format!("{rule}\n");
    for (k, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        ));
        if k == 0 {
            out.push_str(&format!("{rule}\n"));
        }
    }
    out.push_str(&format!("{rule}\nTotal params: {}\n", group(total)));
    let keras = plan.keras_param_count();
    if keras != total {
        out.push_str(&format!(
            "Keras counts {}: its recurrent layers keep one bias per gate where PyTorch and \
             seqgrad keep two (bias_ih and bias_hh)\n",
            group(keras)
        ));
    }
    out
}
