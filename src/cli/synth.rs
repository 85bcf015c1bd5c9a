//! `seqgrad synth`: writes a synthetic labelled data set with planted JASPAR motifs (see
//! [`crate::data::synth`]).

use std::path::PathBuf;

use crate::error::Result;
use crate::run::synth::{self, SynthOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Number of sequences (count × length at most 2^30 bases).
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Sequence length.
    #[arg(long, default_value_t = 200)]
    pub length: usize,
    /// Multi-class: N classes, class k has motif k planted once (default 3).
    #[arg(long, conflicts_with = "labels")]
    pub classes: Option<usize>,
    /// Multi-label (DanQ-like): N labels, each motif present with probability --label-prob.
    #[arg(long)]
    pub labels: Option<usize>,
    /// Probability that each label's motif is present (multi-label).
    #[arg(long, default_value_t = 0.3)]
    pub label_prob: f64,
    /// Motifs by name (e.g. JASPAR2016_007) or 0-based index, comma-separated (default: a
    /// seeded choice of informative motifs).
    #[arg(long, value_delimiter = ',')]
    pub motifs: Vec<String>,
    /// The MEME motif file.
    #[arg(long)]
    pub meme: Option<PathBuf>,
    /// Seed for the sequences, the motif sites, the labels and the default motif choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file: CSV (default), TSV (.tsv) or FASTA (.fa/.fasta).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    let s = synth::synth(&SynthOptions {
        count: a.count,
        length: a.length,
        classes: a.classes,
        labels: a.labels,
        label_prob: a.label_prob,
        motifs: a.motifs.clone(),
        meme: a.meme.clone(),
        seed: a.seed,
        out: a.out.clone(),
    })?;
    eprintln!(
        "wrote {} {} sequences of {} bp to {} ({} {}: {})",
        a.count,
        if s.multi_label {
            "multi-label"
        } else {
            "multi-class"
        },
        a.length,
        a.out.display(),
        s.n,
        if s.multi_label { "labels" } else { "classes" },
        s.motifs.join(", ")
    );
    Ok(())
}
