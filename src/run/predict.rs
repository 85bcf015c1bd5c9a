//! Predictions over a stream of records: [`Run::predict`] returns an iterator of typed rows
//! (record id, model outputs, and a binary head's predicted class). Records are read, encoded
//! and predicted `batch_size` at a time, so memory does not grow with the file.
//!
//! With `rc_average` the outputs for each sequence and its reverse complement are averaged
//! ([`rc_average_warning`] says when that is unwise).

use std::collections::VecDeque;

use super::{DataOptions, Run};
use crate::data::{self, stream::RecordStream, Dataset, Labels, LengthPolicy, RawData};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::train;

/// One record's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// The record's id (FASTA header's first word, the id column, or the 1-based row number).
    pub id: String,
    /// The model outputs (after the head): one probability per class, or the positive class's
    /// probability for a binary head.
    pub probs: Vec<f32>,
    /// A binary head's predicted class at threshold 0.5.
    pub predicted: Option<String>,
}

/// The rows of [`Run::predict`], in record order; an error ends the iteration.
pub struct Predictions<'a> {
    model: &'a mut Sequential<f32>,
    stream: RecordStream,
    labels: Labels,
    policy: LengthPolicy,
    lengths: SameLength,
    batch_size: usize,
    rc_average: bool,
    ready: VecDeque<PredictionRow>,
    done: bool,
}

impl Run<f32> {
    /// Predicts every record of `stream` (opened with labels not required), `batch_size` at a
    /// time, averaging with the reverse complement when `rc_average`.
    pub fn predict(
        &mut self,
        stream: RecordStream,
        data: &DataOptions,
        batch_size: usize,
        rc_average: bool,
    ) -> Result<Predictions<'_>> {
        let policy = self.policy(data)?;
        let labels = self.labels_or_numbered();
        Ok(Predictions {
            model: &mut self.model,
            stream,
            labels,
            policy,
            lengths: SameLength::new(policy),
            batch_size,
            rc_average,
            ready: VecDeque::new(),
            done: false,
        })
    }
}

impl Predictions<'_> {
    /// The column names of a table of these rows: `id`, then one per class, or for a binary
    /// head the positive class and `predicted`.
    pub fn columns(&self) -> Vec<String> {
        let mut header = vec!["id".to_string()];
        match self.labels.positive() {
            Some(p) => header.extend([p.to_string(), "predicted".to_string()]),
            None => header.extend(self.labels.classes.iter().cloned()),
        }
        header
    }

    /// Bytes of the input read so far, and its size when known (for a progress bar).
    pub fn bytes_read(&self) -> (u64, Option<u64>) {
        (self.stream.bytes_read(), self.stream.total_bytes())
    }

    fn next_chunk(&mut self) -> Result<bool> {
        let Some(raw) = self.stream.next_chunk(self.batch_size)? else {
            return Ok(false);
        };
        self.lengths.check(&raw)?;
        let ds = data::encode::<f32>(&raw, &self.labels, self.policy, false)?;
        train::check_fit(self.model, ds.seq_len(), self.labels.outputs())?;
        check_fits_chunk(self.model, &ds, self.batch_size)?;
        let lens = ds.lengths.as_deref();
        let mut probs = train::predict_masked(self.model, &ds.x, lens, self.batch_size, false)?;
        if self.rc_average {
            let rc = train::predict_masked(self.model, &ds.x, lens, self.batch_size, true)?;
            probs = (probs + rc) * 0.5f32;
        }
        for (id, p) in ds.ids.into_iter().zip(probs.outer_iter()) {
            let predicted = self.labels.binary.then(|| {
                let pos = p.first().is_some_and(|&v| v > 0.5);
                self.labels
                    .classes
                    .get(usize::from(pos))
                    .cloned()
                    .unwrap_or_default()
            });
            self.ready.push_back(PredictionRow {
                id,
                probs: p.to_vec(),
                predicted,
            });
        }
        Ok(true)
    }
}

impl Iterator for Predictions<'_> {
    type Item = Result<PredictionRow>;

    fn next(&mut self) -> Option<Result<PredictionRow>> {
        while self.ready.is_empty() && !self.done {
            match self.next_chunk() {
                Ok(more) => self.done = !more,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

/// The memory check of a model of any length for a chunk of records, at the chunk's longest
/// record (a fixed-length model was checked before reading).
pub(crate) fn check_fits_chunk(
    model: &Sequential<f32>,
    ds: &Dataset<f32>,
    batch_size: usize,
) -> Result<()> {
    if !model.is_variable_length() {
        return Ok(());
    }
    crate::memory::check_fits_length(
        model.spec(),
        batch_size.min(ds.len().max(1)),
        crate::memory::Workload::Inference,
        ds.max_len(),
    )
}

/// Without `--crop`/`--pad` every record must have the first record's length; chunks are
/// encoded one at a time, so this checks each chunk against the file's first record (the same
/// error as reading the whole file).
pub(crate) struct SameLength {
    policy: LengthPolicy,
    first: Option<(usize, usize)>,
}

impl SameLength {
    pub(crate) fn new(policy: LengthPolicy) -> SameLength {
        SameLength {
            policy,
            first: None,
        }
    }

    pub(crate) fn check(&mut self, raw: &RawData) -> Result<()> {
        if self.policy.crop.is_some() || self.policy.pad.is_some() || self.policy.any_length {
            return Ok(());
        }
        let Some(f) = raw.records.first() else {
            return Ok(());
        };
        let (len, line) = *self.first.get_or_insert((f.seq.len(), f.line));
        if let Some(r) = raw.records.iter().find(|r| r.seq.len() != len) {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: format!(
                    "line {}: record {} has length {}, which differs from the first record's length {len} (line {line}); {}",
                    r.line,
                    r.id,
                    r.seq.len(),
                    data::MIXED_LENGTHS_FIX
                ),
            });
        }
        Ok(())
    }
}

/// The warning for `rc_average`, given whether the run was trained with `--rc-augment`
/// (`None`: not known, no `config.json`).
pub fn rc_average_warning(rc_augment: Option<bool>) -> Option<&'static str> {
    match rc_augment {
        Some(true) => None,
        Some(false) => Some(
            "--rc-average: this model was trained without --rc-augment, so it has not seen reverse complements; on strand-specific data (e.g. splice sites) averaging with them can lower accuracy a lot",
        ),
        None => Some(
            "--rc-average: no config.json beside these weights, so seqgrad cannot tell whether the model was trained with --rc-augment; without it the model has not seen reverse complements and averaging with them can lower accuracy",
        ),
    }
}
