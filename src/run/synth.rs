//! Writing a synthetic labelled data set with planted JASPAR motifs, as `seqgrad synth` does
//! (see [`crate::data::synth`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{meme, synth};
use crate::error::Result;

/// The motifs planted when no MEME file is given: JASPAR 2016 vertebrates, built in.
pub const DEFAULT_MEME: &str = "bundled:data/jaspar2016_vertebrates.meme";

/// Every option of `seqgrad synth`, by the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthOptions {
    /// Number of sequences.
    pub count: usize,
    /// Length of every sequence.
    pub length: usize,
    /// Multi-class data with this many classes (default 3 when `labels` is not given).
    pub classes: Option<usize>,
    /// Multi-label data with this many labels.
    pub labels: Option<usize>,
    /// Multi-label: the chance of each label per record.
    pub label_prob: f64,
    /// Motif names or ids to plant (default: drawn from the file).
    pub motifs: Vec<String>,
    /// The MEME file of the motifs (default [`DEFAULT_MEME`]).
    pub meme: Option<PathBuf>,
    pub seed: u64,
    /// The data file to write (CSV).
    pub out: PathBuf,
}

impl Default for SynthOptions {
    /// The command line's defaults, with no output file.
    fn default() -> SynthOptions {
        SynthOptions {
            count: 2000,
            length: 200,
            classes: None,
            labels: None,
            label_prob: 0.3,
            motifs: Vec::new(),
            meme: None,
            seed: 42,
            out: PathBuf::new(),
        }
    }
}

/// What [`synth`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesized {
    pub multi_label: bool,
    /// Classes or labels.
    pub n: usize,
    /// The planted motifs' labels, one per class or label.
    pub motifs: Vec<String>,
}

/// Writes the data set `o` describes.
pub fn synth(o: &SynthOptions) -> Result<Synthesized> {
    let (n, multi_label) = match (o.classes, o.labels) {
        (_, Some(l)) => (l, true),
        (Some(c), None) => (c, false),
        (None, None) => (3, false),
    };
    synth::check_sizes(o.count, o.length, n)?;
    let meme_path = o
        .meme
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MEME));
    let motifs = meme::read(&meme_path)?;
    let chosen = synth::choose_motifs(&motifs, &o.motifs, n, o.length, o.seed)?;
    let cfg = synth::SynthConfig {
        count: o.count,
        length: o.length,
        n,
        multi_label,
        label_prob: o.label_prob,
        seed: o.seed,
    };
    let records = synth::generate(&motifs, &chosen, &cfg)?;
    synth::write(&o.out, &records, multi_label)?;
    Ok(Synthesized {
        multi_label,
        n,
        motifs: chosen
            .iter()
            .map(|&i| synth::motif_label(&motifs[i]))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_built_in_motifs_data_set() {
        let dir = tempfile::tempdir().unwrap();
        let o = SynthOptions {
            count: 30,
            length: 60,
            classes: Some(2),
            seed: 3,
            out: dir.path().join("s.csv"),
            ..SynthOptions::default()
        };
        let s = synth(&o).unwrap();
        assert_eq!((s.multi_label, s.n, s.motifs.len()), (false, 2, 2));
        let text = std::fs::read_to_string(&o.out).unwrap();
        assert_eq!(text.lines().count(), 31, "a header and 30 records");
        // the same seed writes the same file
        let again = dir.path().join("t.csv");
        synth(&SynthOptions {
            out: again.clone(),
            ..o
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(again).unwrap(), text);
    }
}
