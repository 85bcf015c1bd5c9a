//! Per-base saliency of a model for encoded records ([`of_records`]): the scores explain the
//! logit of the target class (each record's predicted class unless one is given), with the
//! model in f64 and in evaluation mode. See [`crate::saliency`] and `docs/saliency.md`.

use ndarray::{s, ArrayView3};

use crate::data::Dataset;
use crate::error::Result;
use crate::model::Sequential;
use crate::saliency::{self, Options, Saliency};

/// Saliency scores of records with the class each explains.
#[derive(Debug, Clone)]
pub struct RecordSaliency {
    /// The scores (`(records, length, 4)`), completeness and steps used per record.
    pub saliency: Saliency,
    /// The class whose logit each record's scores explain.
    pub targets: Vec<usize>,
}

/// Saliency of every record of `ds` for `target` (default: each record's predicted class).
/// Records of mixed lengths (a model of any length) are each run at their own length.
pub fn of_records(
    model: &mut Sequential<f64>,
    ds: &Dataset<f64>,
    target: Option<usize>,
    opts: &Options,
) -> Result<RecordSaliency> {
    let records: Vec<ArrayView3<'_, f64>> = match &ds.lengths {
        Some(l) => l
            .iter()
            .enumerate()
            .map(|(i, &n)| ds.x.slice(s![i..i + 1, ..n, ..]))
            .collect(),
        None => vec![ds.x.view()],
    };
    let targets = match target {
        Some(c) => vec![c; ds.len()],
        None => {
            let mut t = Vec::with_capacity(ds.len());
            for x in &records {
                t.extend(saliency::predicted(model, x.view(), opts.batch_size)?);
            }
            t
        }
    };
    let sal = if records.len() == 1 {
        saliency::saliency(model, ds.x.view(), &targets, opts)?
    } else {
        let mut parts = Vec::with_capacity(records.len());
        for (i, x) in records.iter().enumerate() {
            parts.push(saliency::saliency(
                model,
                x.view(),
                &targets[i..i + 1],
                opts,
            )?);
        }
        Saliency::join(&parts, ds.seq_len())
    };
    Ok(RecordSaliency {
        saliency: sal,
        targets,
    })
}
