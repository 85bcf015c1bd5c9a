//! The first conv layer's filters as motifs over a data file ([`Run::filters`], DanQ's method,
//! see [`crate::motifs`]), each with its best match in a motif list when one is given.

use std::collections::BTreeSet;
use std::path::Path;

use super::{DataOptions, Run};
use crate::data::{self, meme::Motif, Labels, ReadOptions};
use crate::error::{Error, Result};
use crate::motifs::{self, FilterMotif, Match};

/// The filters of a run over a data file.
#[derive(Debug, Clone)]
pub struct Filters {
    /// One per filter, in filter order.
    pub found: Vec<FilterMotif>,
    /// Each filter's best match among the motifs given (`None`: no motifs, no sites, or no
    /// alignment of the minimum overlap).
    pub matches: Vec<Option<Match>>,
    /// Records the filters were run over.
    pub records: usize,
}

impl Filters {
    /// The distinct motifs that are some filter's best match.
    pub fn matched_motifs(&self) -> usize {
        self.matches
            .iter()
            .flatten()
            .map(|m| m.motif)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

impl Run<f32> {
    /// Runs the first conv layer's filters over the records of `path` (labels ignored, records
    /// of one length) and matches each against `targets` with at least `min_overlap` columns.
    pub fn filters(
        &mut self,
        path: &Path,
        data: &DataOptions,
        batch_size: usize,
        targets: Option<&[Motif]>,
        min_overlap: usize,
    ) -> Result<Filters> {
        if min_overlap == 0 {
            return Err(Error::Usage("--min-overlap must be at least 1".into()));
        }
        let policy = self.policy(data)?;
        let opts = ReadOptions {
            require_labels: false,
            ..data.read_options()
        };
        let raw = data::read(path, &opts)?;
        let labels = self.labels.clone().unwrap_or_else(|| Labels {
            classes: Vec::new(),
            multi_label: false,
            binary: false,
        });
        // motif sites are read from the windows of full-length records: no masked padding
        let policy = data::LengthPolicy {
            any_length: false,
            ..policy
        };
        let lens: BTreeSet<usize> = raw.records.iter().map(|r| r.seq.len()).collect();
        if policy.target()?.is_none() && lens.len() > 1 && self.model.is_variable_length() {
            return Err(Error::Usage(format!(
                "{}: records have lengths {}–{}; seqgrad filters reads records of one length (use --crop N to cut them to N bases)",
                path.display(),
                lens.first().copied().unwrap_or(0),
                lens.last().copied().unwrap_or(0)
            )));
        }
        let ds = data::encode::<f32>(&raw, &labels, policy, false)?;
        let found = motifs::filter_motifs(&mut self.model, &ds.x, batch_size)?;
        let matches = found
            .iter()
            .map(|f| {
                targets
                    .and_then(|t| motifs::best_match(&f.motif.probs, t, min_overlap))
                    .filter(|_| f.sites > 0)
            })
            .collect();
        Ok(Filters {
            found,
            matches,
            records: ds.len(),
        })
    }
}

/// The most likely base of every column: upper case where its probability is at least 0.5,
/// lower case above 0.3, `n` otherwise.
pub fn consensus(m: &Motif) -> String {
    m.probs
        .iter()
        .map(|r| {
            let (k, p) = r
                .iter()
                .enumerate()
                .fold((0, f64::MIN), |a, (k, &p)| if p > a.1 { (k, p) } else { a });
            let c = b"ACGT"[k] as char;
            if p >= 0.5 {
                c
            } else if p > 0.3 {
                c.to_ascii_lowercase()
            } else {
                'n'
            }
        })
        .collect()
}
