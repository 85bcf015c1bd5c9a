//! Metrics.
//!
//! - **Accuracy** (multi-class): share of records whose arg-max prediction is the arg-max target
//!   (ties go to the lowest class index).
//! - **Confusion matrix**: `m[true][predicted]` counts.
//! - **ROC AUC** per label: the probability that a random positive scores above a random
//!   negative, ties counting ½ (Mann–Whitney U with average ranks). Undefined (`None`) when a
//!   label has no positive or no negative.
//! - **PR AUC** per label as **average precision** (scikit-learn's definition):
//!   `AP = Σ_n (R_n − R_{n−1}) P_n` over distinct score thresholds, from high to low.
//! - Means over labels skip undefined labels (DanQ reports these means).
//! - **Binary** (one sigmoid output, `(records, 1)`): accuracy at threshold 0.5 (a probability
//!   above 0.5 predicts the positive class, as Keras' `binary_accuracy`), plus the ROC AUC and
//!   PR AUC of the single column; [`two_columns`] turns `p` into `[1 − p, p]` so the arg-max
//!   metrics (confusion matrix) apply unchanged.

use ndarray::{ArrayView2, Axis};

use crate::tensor::Float;

/// Arg-max of each row (first maximum wins).
pub fn argmax_rows<T: Float>(a: ArrayView2<'_, T>) -> Vec<usize> {
    a.outer_iter()
        .map(|r| {
            let mut best = 0;
            for (j, v) in r.iter().enumerate() {
                if *v > r[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Share of rows whose arg-max matches.
pub fn accuracy<T: Float>(probs: ArrayView2<'_, T>, targets: ArrayView2<'_, T>) -> f64 {
    let p = argmax_rows(probs);
    let t = argmax_rows(targets);
    if p.is_empty() {
        return 0.0;
    }
    p.iter().zip(&t).filter(|(a, b)| a == b).count() as f64 / p.len() as f64
}

/// Share of rows where `p > 0.5` agrees with `target > 0.5` (binary head, `(records, 1)`).
pub fn binary_accuracy<T: Float>(probs: ArrayView2<'_, T>, targets: ArrayView2<'_, T>) -> f64 {
    let n = probs.len();
    if n == 0 {
        return 0.0;
    }
    probs
        .iter()
        .zip(targets.iter())
        .filter(|(p, t)| (p.to_f64c() > 0.5) == (t.to_f64c() > 0.5))
        .count() as f64
        / n as f64
}

/// `(records, 1)` positive-class probabilities as `(records, 2)` `[1 − p, p]`, so that arg-max
/// (ties to class 0) is the 0.5 threshold.
pub fn two_columns<T: Float>(p: ArrayView2<'_, T>) -> ndarray::Array2<T> {
    let mut out = ndarray::Array2::zeros((p.nrows(), 2));
    for (mut row, v) in out.outer_iter_mut().zip(p.column(0).iter()) {
        row[0] = T::one() - *v;
        row[1] = *v;
    }
    out
}

/// `m[true][predicted]`.
pub fn confusion<T: Float>(
    probs: ArrayView2<'_, T>,
    targets: ArrayView2<'_, T>,
) -> Vec<Vec<usize>> {
    let k = probs.shape()[1];
    let mut m = vec![vec![0usize; k]; k];
    for (p, t) in argmax_rows(probs).into_iter().zip(argmax_rows(targets)) {
        m[t][p] += 1;
    }
    m
}

/// Formats a confusion matrix with class names (rows: true class, columns: predicted).
pub fn format_confusion(m: &[Vec<usize>], names: &[String]) -> String {
    let w = names
        .iter()
        .map(|n| n.len())
        .chain(m.iter().flatten().map(|v| v.to_string().len()))
        .max()
        .unwrap_or(1)
        .max(4);
    let mut s = format!(
        "{:>w$}  {}\n",
        "true\\pred",
        names
            .iter()
            .map(|n| format!("{n:>w$}"))
            .collect::<Vec<_>>()
            .join(" "),
        w = w.max(9)
    );
    for (i, row) in m.iter().enumerate() {
        s.push_str(&format!(
            "{:>w$}  {}\n",
            names.get(i).map(String::as_str).unwrap_or("?"),
            row.iter()
                .map(|v| format!("{v:>w$}"))
                .collect::<Vec<_>>()
                .join(" "),
            w = w.max(9)
        ));
    }
    s
}

/// Indices sorted by score, descending (stable: ties keep record order).
fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx
}

/// ROC AUC of scores for binary truths (`None` if one class is missing).
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos = truth.iter().filter(|&&t| t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // average ranks (1-based, ascending) over ties
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if truth[k] {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Average precision (area under the precision–recall curve, step-wise), `None` without
/// positives.
pub fn average_precision(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos = truth.iter().filter(|&&t| t).count();
    if pos == 0 {
        return None;
    }
    let idx = order_desc(scores);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if truth[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    Some(ap)
}

/// Per-label ROC AUC and average precision of `(records, labels)` scores.
pub fn per_label_auc<T: Float>(
    probs: ArrayView2<'_, T>,
    targets: ArrayView2<'_, T>,
) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let mut roc = Vec::new();
    let mut pr = Vec::new();
    for (p, t) in probs.axis_iter(Axis(1)).zip(targets.axis_iter(Axis(1))) {
        let s: Vec<f64> = p.iter().map(|v| v.to_f64c()).collect();
        let y: Vec<bool> = t.iter().map(|v| v.to_f64c() > 0.5).collect();
        roc.push(roc_auc(&s, &y));
        pr.push(average_precision(&s, &y));
    }
    (roc, pr)
}

/// Mean of the defined values (NaN if none).
pub fn mean_defined(v: &[Option<f64>]) -> f64 {
    let d: Vec<f64> = v.iter().flatten().copied().collect();
    if d.is_empty() {
        f64::NAN
    } else {
        d.iter().sum::<f64>() / d.len() as f64
    }
}
