//! Conv filters as motifs, and motif comparison (behind `seqgrad filters`).
//!
//! **Filter → motif** (DanQ's method, Quang & Xie 2016): run the model's first layer, a
//! `conv1d` on the one-hot input, over a data set in eval mode; for each filter `f` take its
//! largest activation `m_f` over every record and position; every window where the activation
//! exceeds `m_f / 2` contributes its sub-sequence (the `kernel_size` bases the filter read,
//! with stride, dilation and `same` padding taken into account) to a count matrix, one row per
//! kernel tap. Windows that reach into `same` padding are skipped (they have no bases there).
//! Rows are normalised into a letter-probability matrix; a filter whose maximum is ≤ 0 (a dead
//! ReLU) or has no complete window gets no sites and a uniform matrix.
//!
//! **Motif comparison** (Tomtom-like, Gupta et al. 2007, without its p-values): a filter
//! matrix `F` (width `w_F`) is aligned with a motif `M` (width `w_M`) and with its reverse
//! complement at every offset whose overlap has at least `min(min_overlap, w_F, w_M)` columns;
//! the score of an alignment is the mean over the overlapping columns of the Pearson
//! correlation of the two 4-vectors (a column with no variance, e.g. uniform, correlates 0).
//! The best match of a filter is the motif, strand and offset with the highest score. The
//! score lies in [−1, 1]; 1 is a perfect match of the overlap.

use ndarray::{s, Array3, Axis};

use crate::data::meme::Motif;
use crate::error::{Error, Result};
use crate::layers::conv1d::window_geometry;
use crate::model::Sequential;
use crate::spec::{Conv1dSpec, LayerSpec};
use crate::tensor::{Float, Mode};

/// Default minimum overlap (columns) of a filter/motif alignment.
pub const MIN_OVERLAP: usize = 6;

/// A filter turned into a motif.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterMotif {
    /// 0-based filter index.
    pub filter: usize,
    /// The filter's largest activation over the data.
    pub max_activation: f64,
    /// Number of windows counted (activation > max / 2).
    pub sites: usize,
    /// The letter-probability matrix, named `filter{i}`.
    pub motif: Motif,
}

/// The first layer's spec, if it is a `conv1d` on one-hot `(length, 4)` input.
fn first_conv<T: Float>(model: &Sequential<T>) -> Result<Conv1dSpec> {
    let input = model.input_shape();
    match model.spec().layers.first() {
        Some(LayerSpec::Conv1d(c)) if input.len() == 2 && input[1] == 4 => Ok(c.clone()),
        Some(LayerSpec::Conv1d(_)) => Err(Error::Usage(format!(
            "the model input is {} but filters needs one-hot sequences (length, 4)",
            crate::tensor::fmt_shape(input)
        ))),
        Some(other) => Err(Error::Usage(format!(
            "filters reads the first layer's filters, but layer 0 is {}, not conv1d",
            other.kind()
        ))),
        None => Err(Error::Usage("the model has no layers".into())),
    }
}

/// Letter-probability matrices of the first conv layer's filters over `x`.
///
/// # Shapes
/// - `x`: `(records, length, 4)` one-hot, `length` the model's input length.
pub fn filter_motifs<T: Float>(
    model: &mut Sequential<T>,
    x: &Array3<T>,
    batch_size: usize,
) -> Result<Vec<FilterMotif>> {
    let conv = first_conv(model)?;
    let len = x.shape()[1];
    crate::train::check_input_len(model, len)?;
    let (out_len, pad) = window_geometry(
        len,
        conv.kernel_size,
        conv.strides,
        conv.dilation_rate,
        conv.padding,
    )
    .ok_or_else(|| Error::Usage("the first conv layer does not fit the data length".into()))?;
    let (k, nf) = (conv.kernel_size, conv.filters);
    let n = x.shape()[0];
    let bs = batch_size.max(1);
    // Runs layer 0 on records start..end: `(batch, out_len, filters)`.
    let mut layer0 = |start: usize, end: usize| -> Result<Array3<T>> {
        let xb = x.slice(s![start..end, .., ..]).to_owned().into_dyn();
        let y = model.layers_mut()[0].forward(xb.view(), Mode::Eval)?;
        y.into_dimensionality::<ndarray::Ix3>()
            .map_err(|_| Error::Usage("the first conv layer did not give a sequence".into()))
    };
    // Pass 1: each filter's maximum.
    let mut max = vec![f64::NEG_INFINITY; nf];
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let y = layer0(start, end)?;
        for (f, m) in max.iter_mut().enumerate() {
            for v in y.index_axis(Axis(2), f) {
                *m = m.max(v.to_f64c());
            }
        }
        start = end;
    }
    // Pass 2: count the sub-sequences of windows above half the maximum.
    let mut counts = vec![vec![[0.0f64; 4]; k]; nf];
    let mut sites = vec![0usize; nf];
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let y = layer0(start, end)?;
        for b in 0..end - start {
            let rec = x.index_axis(Axis(0), start + b);
            for t in 0..out_len {
                // Input position of tap j: t·s + j·d − P; skip windows reaching into padding.
                let first = t * conv.strides;
                let last = first + (k - 1) * conv.dilation_rate;
                if first < pad || last - pad >= len {
                    continue;
                }
                for f in 0..nf {
                    if max[f] <= 0.0 || y[[b, t, f]].to_f64c() <= 0.5 * max[f] {
                        continue;
                    }
                    sites[f] += 1;
                    for (j, row) in counts[f].iter_mut().enumerate() {
                        let p = first + j * conv.dilation_rate - pad;
                        for (c, r) in row.iter_mut().enumerate() {
                            *r += rec[[p, c]].to_f64c();
                        }
                    }
                }
            }
        }
        start = end;
    }
    Ok((0..nf)
        .map(|f| FilterMotif {
            filter: f,
            max_activation: max[f],
            sites: sites[f],
            motif: Motif {
                name: format!("filter{f}"),
                probs: counts[f]
                    .iter()
                    .map(|r| {
                        let s: f64 = r.iter().sum();
                        if s > 0.0 {
                            [r[0] / s, r[1] / s, r[2] / s, r[3] / s]
                        } else {
                            [0.25; 4]
                        }
                    })
                    .collect(),
            },
        })
        .collect())
}

/// Pearson correlation of two columns; 0 when either has no variance.
pub fn column_pcc(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ma = a.iter().sum::<f64>() / 4.0;
    let mb = b.iter().sum::<f64>() / 4.0;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..4 {
        let (da, db) = (a[i] - ma, b[i] - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa <= 1e-12 || sbb <= 1e-12 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The reverse complement of a matrix (rows reversed, A↔T, C↔G).
pub fn reverse_complement(probs: &[[f64; 4]]) -> Vec<[f64; 4]> {
    probs
        .iter()
        .rev()
        .map(|r| [r[3], r[2], r[1], r[0]])
        .collect()
}

/// One alignment of a filter matrix with a motif.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Mean column Pearson correlation over the overlap.
    pub score: f64,
    /// Where the motif's first column sits relative to the filter's first column (may be
    /// negative: the motif starts before the filter).
    pub offset: isize,
    /// Overlapping columns.
    pub overlap: usize,
}

/// The best alignment of `a` (filter) with `b` (motif, one strand) over all offsets whose
/// overlap is at least `min(min_overlap, width a, width b)` columns.
pub fn best_alignment(a: &[[f64; 4]], b: &[[f64; 4]], min_overlap: usize) -> Option<Alignment> {
    let (wa, wb) = (a.len() as isize, b.len() as isize);
    if wa == 0 || wb == 0 {
        return None;
    }
    let need = (min_overlap.max(1) as isize).min(wa).min(wb);
    let mut best: Option<Alignment> = None;
    for off in (need - wb)..=(wa - need) {
        let lo = off.max(0);
        let hi = (off + wb).min(wa);
        let overlap = hi - lo;
        if overlap < need {
            continue;
        }
        let sum: f64 = (lo..hi)
            .map(|i| column_pcc(&a[i as usize], &b[(i - off) as usize]))
            .sum();
        let score = sum / overlap as f64;
        if best.is_none_or(|bst| score > bst.score) {
            best = Some(Alignment {
                score,
                offset: off,
                overlap: overlap as usize,
            });
        }
    }
    best
}

/// A filter's best match in a motif file.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index into the motif list.
    pub motif: usize,
    /// `+` (as written) or `-` (reverse complement).
    pub strand: char,
    pub alignment: Alignment,
}

/// The best match of `filter` among `motifs` (both strands; ties keep the first).
pub fn best_match(filter: &[[f64; 4]], motifs: &[Motif], min_overlap: usize) -> Option<Match> {
    let mut best: Option<Match> = None;
    for (i, m) in motifs.iter().enumerate() {
        for (strand, probs) in [('+', m.probs.clone()), ('-', reverse_complement(&m.probs))] {
            if let Some(al) = best_alignment(filter, &probs, min_overlap) {
                if best.as_ref().is_none_or(|b| al.score > b.alignment.score) {
                    best = Some(Match {
                        motif: i,
                        strand,
                        alignment: al,
                    });
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onehot(s: &str) -> Vec<[f64; 4]> {
        s.bytes()
            .map(|b| {
                let mut r = [0.0; 4];
                r[b"ACGT".iter().position(|&c| c == b).unwrap()] = 1.0;
                r
            })
            .collect()
    }

    #[test]
    fn a_motif_inside_a_wider_filter_matches_at_its_offset_on_both_strands() {
        let motif = onehot("GATTACA");
        let mut filter = vec![[0.25; 4]; 3];
        filter.extend(onehot("GATTACA"));
        filter.push([0.25; 4]);
        let al = best_alignment(&filter, &motif, 6).unwrap();
        assert_eq!((al.offset, al.overlap), (3, 7));
        assert!((al.score - 1.0).abs() < 1e-12);
        // the filter holds the reverse complement: the match is on the - strand
        let rc = reverse_complement(&filter);
        let m = best_match(
            &rc,
            &[Motif {
                name: "x".into(),
                probs: motif,
            }],
            6,
        )
        .unwrap();
        assert_eq!(m.strand, '-');
        assert!((m.alignment.score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pcc_of_uniform_is_zero_and_of_opposites_negative() {
        assert_eq!(column_pcc(&[0.25; 4], &[1.0, 0.0, 0.0, 0.0]), 0.0);
        assert!(column_pcc(&[1.0, 0.0, 0.0, 0.0], &[0.0, 1.0, 1.0, 1.0]) < -0.99);
    }

    #[test]
    fn overlap_shorter_than_the_minimum_is_not_scored() {
        // Only a 2-column overlap would match perfectly; 6 columns are required.
        let a = onehot("AAAACG");
        let b = onehot("CGTTTT");
        let al = best_alignment(&a, &b, 6).unwrap();
        assert_eq!(al.overlap, 6);
        assert_eq!(al.offset, 0);
    }
}
