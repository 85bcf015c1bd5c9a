//! Non-finite diagnostics: when a loss, gradient, weight or validation loss stops being finite,
//! these find *where* (the first layer whose output, or the first parameter whose gradient or
//! value, is not finite) so the training error can name it.

use ndarray::ArrayD;

use super::eval::model_input;
use crate::data::Dataset;
use crate::loss::Loss;
use crate::model::Sequential;
use crate::tensor::{Float, Mode};

/// Re-runs a batch (padded records with their `lengths`, as the training step ran it) and
/// names the first layer whose output is not finite. Positions past a record's end are zero in
/// every sequence output, so padding never counts.
pub(crate) fn locate_forward<T: Float>(
    model: &mut Sequential<T>,
    x: &ArrayD<T>,
    lengths: Option<&[usize]>,
    mode: Mode,
) -> String {
    let kinds: Vec<String> = model.spec().layers.iter().map(|l| l.kind()).collect();
    let mut done = 0usize;
    let mut first_bad: Option<usize> = None;
    let result = model.forward_logits_observed_masked(x.view(), lengths, mode, &mut |i, o| {
        done = i + 1;
        if first_bad.is_none() && !all_finite(o) {
            first_bad = Some(i);
        }
    });
    match (first_bad, result) {
        (Some(i), _) => format!("first non-finite output at layer #{i} ({})", kinds[i]),
        (None, Err(e)) => match kinds.get(done) {
            Some(k) => format!("layer #{done} ({k}) failed: {e}"),
            None => format!("the forward pass failed: {e}"),
        },
        (None, Ok(_)) => {
            "every layer output is finite; the loss itself overflowed (targets or outputs out of range?)"
                .into()
        }
    }
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
        let (xb, lens) = data.batch_range(start, end);
        let xb = model_input(model, xb);
        let yb = data
            .y
            .slice(ndarray::s![start..end, ..])
            .to_owned()
            .into_dyn();
        let bad = match model.forward_logits_masked(xb.view(), lens.as_deref(), Mode::Eval) {
            Ok(l) => loss_fn
                .compute_masked(l.view(), yb.view(), lens.as_deref())
                .map_or(true, |(v, _)| !v.is_finite()),
            Err(_) => true,
        };
        if bad {
            let id = data.ids.get(start).map(String::as_str).unwrap_or("?");
            return format!(
                "records {}..{} (first {id}): {}",
                start + 1,
                end,
                locate_forward(model, &xb, lens.as_deref(), Mode::Eval)
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

    #[test]
    fn locate_forward_runs_the_batch_with_its_lengths() {
        let spec = crate::spec::ModelSpec::from_json(
            r#"{"input_shape": [null, 4], "layers": [
              {"type": "conv1d", "filters": 3, "kernel_size": 3, "activation": "relu"},
              {"type": "lstm", "units": 2},
              {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
            "t",
        )
        .unwrap();
        let mut m = Sequential::<f64>::from_spec(&spec, 1).unwrap();
        // Record 1 has 5 real positions; the padding after it holds NaN, which the masked
        // forward pass never reads.
        let mut x = crate::gradcheck::random_array(&[2, 8, 4], -1.0, 1.0, 3);
        for t in 5..8 {
            x[[1, t, 2]] = f64::NAN;
        }
        let lens = [8usize, 5];
        assert!(m
            .forward_logits_masked(x.view(), Some(&lens), Mode::Eval)
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        assert_eq!(
            locate_forward(&mut m, &x, Some(&lens), Mode::Eval),
            "every layer output is finite; the loss itself overflowed (targets or outputs out of range?)"
        );
        // A NaN inside a record is found at the first layer.
        x[[1, 2, 0]] = f64::NAN;
        assert_eq!(
            locate_forward(&mut m, &x, Some(&lens), Mode::Eval),
            "first non-finite output at layer #0 (conv1d)"
        );
    }
}
