//! DNA data: reading ([`reader`]), encoding ([`dna`]), splitting ([`split`]), motif files
//! ([`meme`]) and synthetic data ([`synth`]).
//!
//! A [`Dataset`] is the encoded form: `x` is `(records, length, 4)` channels-last in A, C, G, T
//! order, `y` is `(records, classes)` one-hot (multi-class) or multi-hot (multi-label).
//!
//! Class names ([`Labels`]) are **sorted** (byte order), so the class order does not depend on
//! the order of the file; they are saved in a run folder as `labels.json` so `evaluate` and
//! `predict` map model outputs back to names.
//!
//! **Binary heads.** Two-class data with a model ending in `dense` of 1 unit with `sigmoid`
//! (Keras' `Dense(1, activation="sigmoid")`) is binary classification: the first sorted class
//! is 0, the second 1 (the *positive* class), `y` is `(records, 1)`, and `labels.json` records
//! `"binary": true` ([`Labels::for_model`]).

use std::path::Path;

use ndarray::{Array2, Array3, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::Float;

pub mod dna;
pub mod meme;
pub mod reader;
pub mod split;
pub mod stream;
pub mod synth;

pub use reader::{read, RawData, ReadOptions, Record};

/// The class (or label) names of a data set, in model-output order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    pub classes: Vec<String>,
    /// Multi-label (sigmoid, several labels per record) rather than multi-class (softmax).
    pub multi_label: bool,
    /// Binary classification with one sigmoid output: `classes` are exactly two, the first is
    /// 0 and the second (the positive class) is 1; targets and outputs are `(records, 1)`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub binary: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Labels {
    /// The sorted distinct labels of a data set.
    pub fn from_data(raw: &RawData) -> Result<Labels> {
        if !raw.has_labels {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: "the file has no labels".into(),
            });
        }
        let mut classes: Vec<String> = raw
            .records
            .iter()
            .flat_map(|r| r.labels.iter().cloned())
            .collect();
        classes.sort();
        classes.dedup();
        if classes.is_empty() {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: "no record has a label".into(),
            });
        }
        Ok(Labels {
            classes,
            multi_label: raw.multi_label,
            binary: false,
        })
    }

    /// Outputs a model needs for these labels: 1 for a binary head, else one per class.
    pub fn outputs(&self) -> usize {
        if self.binary {
            1
        } else {
            self.classes.len()
        }
    }

    /// The positive class of a binary head (the second sorted class).
    pub fn positive(&self) -> Option<&str> {
        self.binary
            .then(|| self.classes.get(1).map(String::as_str))
            .flatten()
    }

    /// These labels as a model with per-sample output `outputs` and `head` reads them: a
    /// 1-unit sigmoid model on multi-class data of two classes is a binary head (sets
    /// [`Labels::binary`]); on three or more classes it is an error saying what to use instead.
    /// Anything else is returned unchanged. `path` names the data in the error.
    pub fn for_model(
        mut self,
        outputs: &[usize],
        head: Option<crate::activation::Activation>,
        path: &str,
    ) -> Result<Labels> {
        let sigmoid_1 = outputs == [1] && head == Some(crate::activation::Activation::Sigmoid);
        if self.multi_label || self.binary || !sigmoid_1 {
            return Ok(self);
        }
        match self.classes.len() {
            2 => {
                self.binary = true;
                Ok(self)
            }
            k if k > 2 => Err(Error::Data {
                path: path.to_string(),
                msg: format!(
                    "the model ends in dense(1 unit, sigmoid), a binary head, but the data has {k} classes ({}): end the model in dense({k} units, softmax) for multi-class data, or use --multi-label with dense({k} units, sigmoid) for independent labels",
                    self.classes.join(", ")
                ),
            }),
            _ => Ok(self),
        }
    }

    /// A multi-class classifier needs at least two classes: an error naming the one class
    /// otherwise (multi-label data may have one label: each output is its own yes/no).
    pub fn check_classifier(&self, path: &str) -> Result<()> {
        if !self.multi_label && self.classes.len() < 2 {
            return Err(Error::Data {
                path: path.to_string(),
                msg: format!(
                    "every record has the label {:?}: a classifier needs at least two classes",
                    self.classes.first().map(String::as_str).unwrap_or("")
                ),
            });
        }
        Ok(())
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    /// Reads `labels.json`.
    pub fn load(path: &Path) -> Result<Labels> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let l: Labels = serde_json::from_str(&text).map_err(|e| Error::Data {
            path: path.display().to_string(),
            msg: format!("not a labels file: {e}"),
        })?;
        if l.binary && (l.classes.len() != 2 || l.multi_label) {
            return Err(Error::Data {
                path: path.display().to_string(),
                msg: format!(
                    "\"binary\": true needs exactly two classes and no multi_label, got {} classes",
                    l.classes.len()
                ),
            });
        }
        Ok(l)
    }

    /// Writes `labels.json` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Usage(e.to_string()))?;
        crate::weights::write_atomic(path, (text + "\n").as_bytes())
    }
}

/// How sequences of different lengths are brought to one length. With neither, all sequences
/// must have the same length. With `crop = n`, longer sequences are cut to their centred `n`
/// bases; with `pad = n`, shorter ones get all-zero rows (no base) appended at the end up to `n`.
/// Both may be given with the same `n`.
///
/// With `any_length` (a model whose `input_shape` is `[null, 4]`) records may have different
/// lengths: they are padded with all-zero rows to the longest record (or to `pad`), and every
/// record's own length is kept in [`Dataset::lengths`] (after cropping to `crop`, if given) so
/// the model masks the padding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LengthPolicy {
    pub crop: Option<usize>,
    pub pad: Option<usize>,
    /// Mixed lengths allowed (padded, with per-record lengths): for a model of any length.
    pub any_length: bool,
}

impl LengthPolicy {
    /// This policy for `model`: mixed lengths allowed when the model accepts any length.
    pub fn for_model<T: Float>(mut self, model: &crate::model::Sequential<T>) -> LengthPolicy {
        self.any_length = model.is_variable_length();
        self
    }
}

impl LengthPolicy {
    pub fn target(&self) -> Result<Option<usize>> {
        match (self.crop, self.pad) {
            (Some(0), _) | (_, Some(0)) => {
                Err(Error::Usage("--crop/--pad must be at least 1".into()))
            }
            (Some(a), Some(b)) if a != b => Err(Error::Usage(format!(
                "--crop {a} and --pad {b} disagree; give the same length"
            ))),
            (a, b) => Ok(a.or(b)),
        }
    }
}

/// An encoded data set.
#[derive(Debug, Clone)]
pub struct Dataset<T> {
    pub ids: Vec<String>,
    /// `(records, length, 4)`.
    pub x: Array3<T>,
    /// `(records, classes)`; all zeros when the file has no labels.
    pub y: Array2<T>,
    /// Each record's own length when records have different lengths (a model of any length):
    /// `x` is padded with all-zero rows past it. `None`: every record is `x`'s full length.
    pub lengths: Option<Vec<usize>>,
}

impl<T: Float> Dataset<T> {
    /// A data set from an encoded batch `x` and its targets, as an array `(records, outputs)`
    /// or as class indices ([`crate::targets::Targets`]); ids are the row numbers `0`, `1` ….
    /// For the training API ([`crate::train::fit`]).
    ///
    /// ```
    /// use seqgrad::{data::Dataset, dna_batch};
    /// # fn main() -> seqgrad::Result<()> {
    /// let x = dna_batch::<f32>(&["ACGT", "TTGA", "GGCC"])?;
    /// let ds = Dataset::new(x, &[1usize, 0, 1][..], 2)?; // class indices, 2 classes
    /// assert_eq!(ds.y.row(0).to_vec(), vec![0.0, 1.0]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Shapes
    /// - `x`: `(records, length, 4)`; targets `(records, outputs)` or `(records)` indices.
    pub fn new<'a>(
        x: Array3<T>,
        targets: impl Into<crate::targets::Targets<'a, T>>,
        outputs: usize,
    ) -> Result<Dataset<T>> {
        let n = x.shape()[0];
        let y = targets
            .into()
            .to_array(&[n, outputs])?
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| Error::Usage(format!("targets: {e}")))?;
        Ok(Dataset {
            ids: (0..n).map(|i| i.to_string()).collect(),
            x,
            y,
            lengths: None,
        })
    }

    pub fn len(&self) -> usize {
        self.x.shape()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequence length.
    pub fn seq_len(&self) -> usize {
        self.x.shape()[1]
    }

    /// Turns one-hot two-class targets `(records, 2)` into binary targets `(records, 1)` (the
    /// second class is 1), for labels that [`Labels::for_model`] made binary.
    pub fn binarize(&mut self) {
        if self.y.ncols() == 2 {
            self.y = self.y.slice(ndarray::s![.., 1..2]).to_owned();
        }
    }

    /// The records at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset<T> {
        let lengths = self
            .lengths
            .as_ref()
            .map(|l| idx.iter().map(|&i| l[i]).collect::<Vec<usize>>());
        let mut x = self.x.select(Axis(0), idx);
        if let Some(m) = lengths.as_ref().and_then(|l| l.iter().max()) {
            // a subset is padded to its own longest record
            x = x.slice(ndarray::s![.., ..*m, ..]).to_owned();
        }
        Dataset {
            ids: idx.iter().map(|&i| self.ids[i].clone()).collect(),
            x,
            y: self.y.select(Axis(0), idx),
            lengths,
        }
    }

    /// The input batch of the records `idx`, padded to their longest record, with their
    /// lengths (`None` for fixed-length data: then exactly `x.select(Axis(0), idx)`).
    ///
    /// # Shapes
    /// - returns `(idx.len(), length, 4)` and `(idx.len())` lengths.
    pub fn batch(&self, idx: &[usize]) -> (Array3<T>, Option<Vec<usize>>) {
        match &self.lengths {
            None => (self.x.select(Axis(0), idx), None),
            Some(l) => {
                let lens: Vec<usize> = idx.iter().map(|&i| l[i]).collect();
                let m = lens.iter().copied().max().unwrap_or(0);
                let mut x = Array3::zeros((idx.len(), m, self.x.shape()[2]));
                for (k, &i) in idx.iter().enumerate() {
                    x.index_axis_mut(Axis(0), k)
                        .assign(&self.x.slice(ndarray::s![i, ..m, ..]));
                }
                (x, Some(lens))
            }
        }
    }

    /// The records `start..end` as a batch ([`Dataset::batch`] of a range).
    pub fn batch_range(&self, start: usize, end: usize) -> (Array3<T>, Option<Vec<usize>>) {
        match &self.lengths {
            None => (
                self.x.slice(ndarray::s![start..end, .., ..]).to_owned(),
                None,
            ),
            Some(_) => self.batch(&(start..end).collect::<Vec<usize>>()),
        }
    }

    /// The longest record (the padded length).
    pub fn max_len(&self) -> usize {
        match &self.lengths {
            Some(l) => l.iter().copied().max().unwrap_or(0),
            None => self.seq_len(),
        }
    }

    /// A stratum key per record for stratified splits: the class (multi-class) or the label set
    /// (multi-label).
    pub fn strata(&self) -> Vec<String> {
        self.y
            .outer_iter()
            .map(|row| {
                row.iter()
                    .map(|v| if v.to_f64c() > 0.5 { '1' } else { '0' })
                    .collect()
            })
            .collect()
    }
}

/// Encodes records. `labels` gives the class order (unknown labels are errors naming them);
/// `with_labels = false` leaves `y` zero (prediction).
pub fn encode<T: Float>(
    raw: &RawData,
    labels: &Labels,
    policy: LengthPolicy,
    with_labels: bool,
) -> Result<Dataset<T>> {
    let derr = |msg: String| Error::Data {
        path: raw.path.clone(),
        msg,
    };
    let first = raw
        .records
        .first()
        .ok_or_else(|| derr("no records".into()))?;
    let target = policy.target()?;
    let longest = raw.records.iter().map(|r| r.seq.len()).max().unwrap_or(0);
    let len = match (policy.any_length, target, policy.crop) {
        // mixed lengths: pad to the longest (cropped) record, or to --pad
        (true, None, _) => longest,
        (true, Some(t), Some(_)) => longest.min(t).max(policy.pad.unwrap_or(0)),
        (true, Some(t), None) => longest.max(t),
        (false, t, _) => t.unwrap_or(first.seq.len()),
    };
    if policy.any_length && longest == 0 {
        return Err(derr(format!(
            "line {}: record {} is empty; a sequence needs at least one base",
            first.line, first.id
        )));
    }
    for r in &raw.records {
        let l = r.seq.len();
        let ok = l == len
            || (l > len && policy.crop.is_some())
            || (l < len && (policy.pad.is_some() || policy.any_length));
        if !ok {
            let why = match target {
                Some(t) if l > t => format!("is longer than {t} (use --crop {t} to cut it)"),
                Some(t) => format!("is shorter than {t} (use --pad {t} to pad it)"),
                None => format!(
                    "differs from the first record's length {len} (line {}); {MIXED_LENGTHS_FIX}",
                    first.line
                ),
            };
            return Err(derr(format!(
                "line {}: record {} has length {l}, which {why}",
                r.line, r.id
            )));
        }
    }
    let n = raw.records.len();
    let k = labels.outputs();
    // Checked before allocating: a huge --pad must be an error, not an abort.
    crate::layers::checked_elems("the encoded data set", &[n, len, 4])
        .map_err(|e| Error::Usage(format!("{e} (check --pad/--crop)")))?;
    let mut x = encoded_buffer::<T>(n, len)?;
    let mut y = Array2::<T>::zeros((n, k));
    for (i, r) in raw.records.iter().enumerate() {
        let s = r.seq.as_bytes();
        let s = if s.len() > len {
            let start = (s.len() - len) / 2;
            &s[start..start + len]
        } else {
            s
        };
        dna::encode_into(s, x.index_axis_mut(Axis(0), i));
        if with_labels {
            if !labels.multi_label && r.labels.len() != 1 {
                return Err(derr(format!(
                    "line {}: record {} has {} labels but the data is multi-class (use --multi-label)",
                    r.line,
                    r.id,
                    r.labels.len()
                )));
            }
            for l in &r.labels {
                let j = labels.index(l).ok_or_else(|| {
                    derr(format!(
                        "line {}: unknown label {l:?} (the model knows: {})",
                        r.line,
                        labels.classes.join(", ")
                    ))
                })?;
                if !labels.binary {
                    y[[i, j]] = T::one();
                } else if j == 1 {
                    y[[i, 0]] = T::one();
                }
            }
        }
    }
    let lengths = policy.any_length.then(|| {
        raw.records
            .iter()
            .map(|r| r.seq.len().min(len))
            .collect::<Vec<usize>>()
    });
    if let Some(r) = lengths
        .as_ref()
        .and_then(|l| l.iter().position(|&n| n == 0))
    {
        let r = &raw.records[r];
        return Err(derr(format!(
            "line {}: record {} is empty; a sequence needs at least one base",
            r.line, r.id
        )));
    }
    Ok(Dataset {
        ids: raw.records.iter().map(|r| r.id.clone()).collect(),
        x,
        y,
        lengths,
    })
}

/// What to do about records of different lengths for a fixed-length model (the end of the
/// error message).
pub const MIXED_LENGTHS_FIX: &str = "use --pad N or --crop N to bring every record to N bases, or give the model file \"input_shape\": [null, 4] so it takes any length";

/// Reads and encodes a labelled file, deriving the class names from it when `labels` is None.
pub fn load_labelled<T: Float>(
    path: &Path,
    opts: &ReadOptions,
    policy: LengthPolicy,
    labels: Option<&Labels>,
) -> Result<(Dataset<T>, Labels)> {
    let multi_label = opts.multi_label || labels.is_some_and(|l| l.multi_label);
    let raw = read(
        path,
        &ReadOptions {
            require_labels: true,
            multi_label,
            ..opts.clone()
        },
    )?;
    let labels = match labels {
        Some(l) => l.clone(),
        None => {
            let l = Labels::from_data(&raw)?;
            l.check_classifier(&raw.path)?;
            l
        }
    };
    let ds = encode(&raw, &labels, policy, true)?;
    Ok((ds, labels))
}

/// A zeroed `(n, len, 4)` array for the one-hot data set, or a one-line error when it cannot
/// fit: the data set is held whole in memory during training, so a file larger than memory
/// must give an error, not an allocation abort.
fn encoded_buffer<T: Float>(n: usize, len: usize) -> Result<Array3<T>> {
    let elems = n.saturating_mul(len).saturating_mul(4);
    let bytes = (elems as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    let refuse = |available: u64, origin: String| Error::Memory {
        what: format!("the encoded data set ({n} records × {len} positions × 4 bases)"),
        needed: bytes,
        available,
        origin,
        advice: "use a smaller data file (split it), or --crop to shorter sequences".into(),
    };
    if let Some(avail) = crate::system::available()? {
        if bytes > avail.bytes {
            return Err(refuse(avail.bytes, avail.source));
        }
    }
    let mut buf: Vec<T> = Vec::new();
    buf.try_reserve_exact(elems)
        .map_err(|_| refuse(0, "the allocator".into()))?;
    buf.resize(elems, T::zero());
    Array3::from_shape_vec((n, len, 4), buf)
        .map_err(|e| Error::Usage(format!("the encoded data set: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_of(seqs: &[&str]) -> RawData {
        RawData {
            path: "t.csv".into(),
            records: seqs
                .iter()
                .enumerate()
                .map(|(i, s)| Record {
                    id: format!("r{i}"),
                    seq: s.to_string(),
                    labels: vec![if i % 2 == 0 { "a" } else { "b" }.into()],
                    line: i + 2,
                })
                .collect(),
            has_labels: true,
            multi_label: false,
        }
    }

    #[test]
    fn any_length_pads_to_the_longest_and_keeps_lengths() {
        let raw = raw_of(&["ACGTAC", "AC", "ACGTACGTAC"]);
        let labels = Labels::from_data(&raw).unwrap();
        let any = LengthPolicy {
            any_length: true,
            ..Default::default()
        };
        let ds = encode::<f32>(&raw, &labels, any, true).unwrap();
        assert_eq!(ds.x.shape(), &[3, 10, 4]);
        assert_eq!(ds.lengths.as_deref(), Some(&[6, 2, 10][..]));
        assert!(ds
            .x
            .slice(ndarray::s![1, 2.., ..])
            .iter()
            .all(|&v| v == 0.0));
        // a subset and a batch are padded to their own longest record
        let sub = ds.subset(&[0, 1]);
        assert_eq!(sub.x.shape(), &[2, 6, 4]);
        assert_eq!(sub.lengths.as_deref(), Some(&[6, 2][..]));
        let (xb, lb) = ds.batch(&[1]);
        assert_eq!((xb.shape(), lb), (&[1, 2, 4][..], Some(vec![2])));
        // --crop 4: longer records cut to 4, shorter ones keep their length
        let crop = LengthPolicy {
            crop: Some(4),
            ..any
        };
        let ds = encode::<f32>(&raw, &labels, crop, true).unwrap();
        assert_eq!(ds.lengths.as_deref(), Some(&[4, 2, 4][..]));
        assert_eq!(ds.seq_len(), 4);
        // --pad 12: padded to at least 12
        let pad = LengthPolicy {
            pad: Some(12),
            ..any
        };
        let ds = encode::<f32>(&raw, &labels, pad, true).unwrap();
        assert_eq!(ds.seq_len(), 12);
        assert_eq!(ds.lengths.as_deref(), Some(&[6, 2, 10][..]));
        // without any_length the mixed lengths are an error naming every fix
        let e = encode::<f32>(&raw, &labels, LengthPolicy::default(), true)
            .unwrap_err()
            .to_string();
        for part in ["record r1 has length 2", "--pad N", "--crop N", "[null, 4]"] {
            assert!(e.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn binary_labels_for_a_one_unit_sigmoid() {
        use crate::activation::Activation::{Sigmoid, Softmax};
        let two = Labels::from_data(&raw_of(&["AC", "GT"])).unwrap();
        let b = two.clone().for_model(&[1], Some(Sigmoid), "f").unwrap();
        assert!(b.binary && b.outputs() == 1 && b.positive() == Some("b"));
        // softmax, or two units: unchanged
        assert!(
            !two.clone()
                .for_model(&[1], Some(Softmax), "f")
                .unwrap()
                .binary
        );
        assert!(
            !two.clone()
                .for_model(&[2], Some(Sigmoid), "f")
                .unwrap()
                .binary
        );
        // the targets are the second class
        let ds = encode::<f32>(
            &raw_of(&["AC", "GT", "GG"]),
            &b,
            LengthPolicy::default(),
            true,
        )
        .unwrap();
        assert_eq!(ds.y.as_slice().unwrap(), &[0.0, 1.0, 0.0]);
        let mut three = two.clone();
        three.classes.push("c".into());
        let e = three
            .for_model(&[1], Some(Sigmoid), "f.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.csv") && e.contains("3 classes (a, b, c)"),
            "{e}"
        );
    }

    #[test]
    fn one_class_is_not_a_classifier_but_one_label_is_fine_multi_label() {
        let one = Labels {
            classes: vec!["A".into()],
            multi_label: false,
            binary: false,
        };
        let e = one.check_classifier("f.csv").unwrap_err().to_string();
        assert!(
            e.contains("f.csv") && e.contains("\"A\"") && e.contains("at least two classes"),
            "{e}"
        );
        let multi = Labels {
            multi_label: true,
            ..one
        };
        assert!(multi.check_classifier("f.csv").is_ok());
    }
}
