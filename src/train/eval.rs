//! Evaluation and metrics: checking that data fits a model, batched prediction and evaluation
//! in evaluation mode (record order), and the metrics of outputs against targets (accuracy for
//! multi-class data, mean ROC/PR AUC for multi-label data, all three for a binary head).

use ndarray::{Array2, ArrayD, Axis, Ix2};

use crate::data::{dna, Dataset};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics;
use crate::model::Sequential;
use crate::tensor::{fmt_shape, Float, Mode};

/// Result of evaluating a model on a data set.
#[derive(Debug, Clone)]
pub struct Evaluation<T> {
    pub loss: f64,
    /// `(records, classes)` model outputs (after the softmax/sigmoid head).
    pub probs: Array2<T>,
    /// `accuracy` (multi-class), `roc_auc` and `pr_auc` means (multi-label), or all three
    /// (binary head).
    pub metrics: Vec<(String, f64)>,
}

/// Checks that a data set fits a model: sequence input `(length, 4)` or flat `(length·4)`
/// input, and a flat output of `classes` units (one per class, or 1 for a binary head: pass
/// [`crate::data::Labels::outputs`]).
pub fn check_fit<T: Float>(model: &Sequential<T>, seq_len: usize, classes: usize) -> Result<()> {
    check_input_len(model, seq_len)?;
    if model.output_shape() != [classes] {
        return Err(Error::Usage(format!(
            "the model output is {} but the data has {classes} classes/labels; end the model with a dense layer of {classes} units on a flat input",
            fmt_shape(model.output_shape())
        )));
    }
    Ok(())
}

/// Checks that sequences of length `seq_len` fit the model input (`(length, 4)` or flat
/// `(length·4)`). Cheap, so the CLI calls it with the `--crop`/`--pad` length before encoding
/// (a huge `--pad` is then an error before any allocation).
pub fn check_input_len<T: Float>(model: &Sequential<T>, seq_len: usize) -> Result<()> {
    let input = model.input_shape();
    let ok = input == [seq_len, 4]
        || seq_len.checked_mul(4).is_some_and(|f| input == [f])
        || (model.is_variable_length() && input.get(1) == Some(&4) && seq_len > 0);
    if !ok {
        return Err(Error::Usage(format!(
            "the model input is {} but the data is {} one-hot sequences of length {seq_len} (use --crop/--pad or change input_shape)",
            fmt_shape(input),
            fmt_shape(&[seq_len, 4])
        )));
    }
    Ok(())
}

/// Shapes a `(batch, length, 4)` batch for the model (flattening for a flat input).
pub fn model_input<T: Float>(model: &Sequential<T>, x: ndarray::Array3<T>) -> ArrayD<T> {
    if model.input_shape().len() == 1 {
        let b = x.shape()[0];
        let f = x.shape()[1] * x.shape()[2];
        crate::tensor::reshape(x, &[b, f])
    } else {
        x.into_dyn()
    }
}

/// The metrics of outputs against targets. Single-column outputs of non-multi-label data are
/// a binary head: accuracy at threshold 0.5, ROC AUC and PR AUC.
pub fn compute_metrics<T: Float>(
    probs: &Array2<T>,
    y: &Array2<T>,
    multi_label: bool,
) -> Vec<(String, f64)> {
    if !multi_label && probs.ncols() == 1 && y.ncols() == 1 {
        let (roc, pr) = metrics::per_label_auc(probs.view(), y.view());
        vec![
            (
                "accuracy".into(),
                metrics::binary_accuracy(probs.view(), y.view()),
            ),
            ("roc_auc".into(), metrics::mean_defined(&roc)),
            ("pr_auc".into(), metrics::mean_defined(&pr)),
        ]
    } else if multi_label {
        let (roc, pr) = metrics::per_label_auc(probs.view(), y.view());
        vec![
            ("roc_auc".into(), metrics::mean_defined(&roc)),
            ("pr_auc".into(), metrics::mean_defined(&pr)),
        ]
    } else {
        vec![("accuracy".into(), metrics::accuracy(probs.view(), y.view()))]
    }
}

pub(crate) fn to2<T: Float>(a: ArrayD<T>) -> Result<Array2<T>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| Error::Shape {
        what: "model output".into(),
        expected: "(batch, classes)".into(),
        got: fmt_shape(&shape),
    })
}

/// Model outputs (after the head) in evaluation mode, in batches, in record order.
///
/// # Shapes
/// - `x`: `(records, length, 4)`; returns `(records, classes)`.
pub fn predict<T: Float>(
    model: &mut Sequential<T>,
    x: &ndarray::Array3<T>,
    batch_size: usize,
    rc: bool,
) -> Result<Array2<T>> {
    predict_masked(model, x, None, batch_size, rc)
}

/// [`predict`] of records padded to `x`'s length with their own `lengths` (a model of any
/// length; `None`: every record is full length). Each batch is cut to its longest record.
///
/// # Shapes
/// - `x`: `(records, length, 4)`, `lengths`: `(records)`; returns `(records, classes)`.
pub fn predict_masked<T: Float>(
    model: &mut Sequential<T>,
    x: &ndarray::Array3<T>,
    lengths: Option<&[usize]>,
    batch_size: usize,
    rc: bool,
) -> Result<Array2<T>> {
    let n = x.shape()[0];
    let bs = batch_size.max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let lens = lengths.map(|l| &l[start..end]);
        let m = lens.map_or(x.shape()[1], |l| l.iter().copied().max().unwrap_or(0));
        let mut xb = x.slice(ndarray::s![start..end, ..m, ..]).to_owned();
        if rc {
            xb = match lens {
                Some(l) => dna::reverse_complement_padded(xb.view(), l),
                None => dna::reverse_complement_batch(xb.view()),
            };
        }
        let out = model.forward_masked(model_input(model, xb).view(), lens, Mode::Infer)?;
        parts.push(to2(out)?);
        start = end;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views)
        .map_err(|e| Error::Train(format!("joining predictions: {e}")))
}

/// Loss, outputs and metrics on a data set (evaluation mode, batches in record order).
pub fn evaluate<T: Float>(
    model: &mut Sequential<T>,
    data: &Dataset<T>,
    batch_size: usize,
    multi_label: bool,
) -> Result<Evaluation<T>> {
    let loss_fn = Loss::for_head(model.head());
    let n = data.len();
    let bs = batch_size.max(1);
    let mut parts = Vec::new();
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let (xb, lens) = data.batch_range(start, end);
        let yb = data
            .y
            .slice(ndarray::s![start..end, ..])
            .to_owned()
            .into_dyn();
        let mut logits = model.forward_logits_masked(
            model_input(model, xb).view(),
            lens.as_deref(),
            Mode::Infer,
        )?;
        let (l, _) = loss_fn.compute(logits.view(), yb.view())?;
        total += l * (end - start) as f64;
        if let Some(h) = model.head() {
            h.forward_inplace(logits.view_mut());
        }
        parts.push(to2(logits)?);
        start = end;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let probs = ndarray::concatenate(Axis(0), &views)
        .map_err(|e| Error::Train(format!("joining outputs: {e}")))?;
    let metrics = compute_metrics(&probs, &data.y, multi_label);
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        probs,
        metrics,
    })
}
