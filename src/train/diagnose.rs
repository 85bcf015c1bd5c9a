//! Non-finite diagnostics: when a loss, gradient, weight or validation loss stops being finite,
//! these find *where* (the first layer whose output, or the first parameter whose gradient or
//! value, is not finite) so the training error can name it.

use ndarray::ArrayD;

use super::eval::model_input;
use crate::data::Dataset;
use crate::loss::Loss;
use crate::model::Sequential;
use crate::tensor::{Float, Mode};

/// Re-runs a batch layer by layer to find the first layer whose output is not finite.
pub(crate) fn locate_forward<T: Float>(
    model: &mut Sequential<T>,
    x: &ArrayD<T>,
    mode: Mode,
) -> String {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    let mut h = x.clone();
    for (i, l) in model.layers_mut().iter_mut().enumerate() {
        match l.forward(h.view(), mode) {
            Ok(o) => h = o,
            Err(e) => return format!("layer #{i} ({}) failed: {e}", kinds[i]),
        }
        if !all_finite(&h) {
            return format!("first non-finite output at layer #{i} ({})", kinds[i]);
        }
    }
    "every layer output is finite; the loss itself overflowed (targets or outputs out of range?)"
        .into()
}

/// Names where a gradient first became non-finite (walking back from the output), if any.
/// Whether every element is finite; large contiguous arrays are checked in parallel (the
/// training loop checks every gradient and weight each step: W3's 44 M parameters twice).
pub(crate) fn all_finite<T: Float>(a: &ArrayD<T>) -> bool {
    use rayon::prelude::*;
    match a.as_slice_memory_order() {
        Some(s) if s.len() >= 1 << 16 => s
            .par_chunks(1 << 15)
            .all(|c| c.iter().all(|v| v.is_finite())),
        _ => a.iter().all(|v| v.is_finite()),
    }
}

pub(crate) fn locate_backward<T: Float>(model: &Sequential<T>) -> Option<String> {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    let norms = model.output_grad_norms();
    if let Some(i) = (0..norms.len()).rev().find(|&i| !norms[i].is_finite()) {
        let source = if i + 1 < kinds.len() {
            format!(
                ", coming from the backward pass of layer #{} ({})",
                i + 1,
                kinds[i + 1]
            )
        } else {
            " (the loss gradient)".into()
        };
        return Some(format!(
            "first non-finite gradient at the output of layer #{i} ({}){source}",
            kinds[i]
        ));
    }
    model
        .named_params()
        .into_iter()
        .find(|(_, p)| !all_finite(&p.grad))
        .map(|(n, _)| format!("first non-finite parameter gradient in {n}"))
}

/// Finds where a data set's evaluation-mode loss becomes non-finite: the first batch (in record
/// order, `batch_size` records each) whose outputs are not finite, and in it the first layer.
pub(crate) fn locate_eval<T: Float>(
    model: &mut Sequential<T>,
    data: &Dataset<T>,
    batch_size: usize,
) -> String {
    let loss_fn = Loss::for_head(model.head());
    let n = data.len();
    let bs = batch_size.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let xb = model_input(
            model,
            data.x.slice(ndarray::s![start..end, .., ..]).to_owned(),
        );
        let yb = data
            .y
            .slice(ndarray::s![start..end, ..])
            .to_owned()
            .into_dyn();
        let bad = match model.forward_logits(xb.view(), Mode::Eval) {
            Ok(l) => loss_fn
                .compute(l.view(), yb.view())
                .map_or(true, |(v, _)| !v.is_finite()),
            Err(_) => true,
        };
        if bad {
            let id = data.ids.get(start).map(String::as_str).unwrap_or("?");
            return format!(
                "records {}..{} (first {id}): {}",
                start + 1,
                end,
                locate_forward(model, &xb, Mode::Eval)
            );
        }
        start = end;
    }
    "no single batch is non-finite".into()
}

/// The first parameter (in model order) with a non-finite value, with its layer.
pub(crate) fn first_non_finite_param<T: Float>(model: &Sequential<T>) -> Option<String> {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    model
        .named_params()
        .into_iter()
        .find(|(_, p)| !all_finite(&p.value))
        .map(|(n, _)| {
            let layer = n
                .strip_prefix("layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok());
            match layer.and_then(|i| kinds.get(i).map(|k| (i, k))) {
                Some((i, k)) => format!("{n} (layer #{i}, {k})"),
                None => n,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_backward_names_the_output_gradient_or_the_parameter() {
        let spec = crate::spec::ModelSpec::from_json(
            r#"{"input_shape": [6, 4], "layers": [
              {"type": "conv1d", "filters": 3, "kernel_size": 3, "activation": "relu"},
              {"type": "flatten"},
              {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
            "t",
        )
        .unwrap();
        let mut m = Sequential::<f64>::from_spec(&spec, 1).unwrap();
        let x = crate::gradcheck::random_array(&[2, 6, 4], -1.0, 1.0, 3);
        m.zero_grad();
        m.forward_logits(x.view(), Mode::Train).unwrap();
        let g = crate::gradcheck::random_array(&[2, 2], -1.0, 1.0, 4);
        m.backward_logits(g.view()).unwrap();
        assert_eq!(locate_backward(&m), None);
        // a non-finite parameter gradient with finite output gradients names the parameter
        for (n, p) in m.named_params_mut() {
            if n == "layers.2.weight" {
                p.grad[[1, 0]] = f64::INFINITY;
            }
        }
        assert_eq!(
            locate_backward(&m).unwrap(),
            "first non-finite parameter gradient in layers.2.weight"
        );
        // a NaN loss gradient: the last layer's output gradient is named first
        m.zero_grad();
        m.forward_logits(x.view(), Mode::Train).unwrap();
        let mut g = g.clone();
        g[[0, 1]] = f64::NAN;
        m.backward_logits(g.view()).unwrap();
        assert_eq!(
            locate_backward(&m).unwrap(),
            "first non-finite gradient at the output of layer #2 (dense) (the loss gradient)"
        );
    }
}
