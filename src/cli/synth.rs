//! `seqgrad synth`: writes a synthetic labelled data set with planted JASPAR motifs (see
//! [`crate::data::synth`]).

use std::path::PathBuf;

use crate::cli::args::bundled;
use crate::data::{meme, synth};
use crate::error::Result;

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
    let (n, multi_label) = match (a.classes, a.labels) {
        (_, Some(l)) => (l, true),
        (Some(c), None) => (c, false),
        (None, None) => (3, false),
    };
    synth::check_sizes(a.count, a.length, n)?;
    let meme_path = a
        .meme
        .clone()
        .unwrap_or_else(|| bundled("data/jaspar2016_vertebrates.meme"));
    let motifs = meme::read(&meme_path)?;
    let chosen = synth::choose_motifs(&motifs, &a.motifs, n, a.length, a.seed)?;
    let cfg = synth::SynthConfig {
        count: a.count,
        length: a.length,
        n,
        multi_label,
        label_prob: a.label_prob,
        seed: a.seed,
    };
    let records = synth::generate(&motifs, &chosen, &cfg)?;
    synth::write(&a.out, &records, multi_label)?;
    let names: Vec<String> = chosen
        .iter()
        .map(|&i| synth::motif_label(&motifs[i]))
        .collect();
    eprintln!(
        "wrote {} {} sequences of {} bp to {} ({} {}: {})",
        a.count,
        if multi_label {
            "multi-label"
        } else {
            "multi-class"
        },
        a.length,
        a.out.display(),
        n,
        if multi_label { "labels" } else { "classes" },
        names.join(", ")
    );
    Ok(())
}
