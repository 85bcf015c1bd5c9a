//! `seqgrad filters`: the first conv layer's filters as motifs (DanQ's method, see
//! [`crate::motifs`] and `docs/filters.md`), written as MEME; with `--match`, each filter's best
//! match in a motif file (Tomtom-like: mean column Pearson correlation, all offsets with at
//! least `--min-overlap` columns, both strands).

use std::path::PathBuf;

use crate::cli::args::ModelArgs;
use crate::cli::format::print_stdout;
use crate::data::meme;
use crate::error::{Error, Result};
use crate::motifs;
use crate::run::filters::consensus;
use crate::run::DataOptions;
use crate::run::{with_threads, Run};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences (CSV, TSV or FASTA) the filters are run over; labels are ignored.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataOptions,
    /// Where to write the filters' letter-probability matrices (MEME format, atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// A MEME motif file (e.g. JASPAR) to compare every filter with.
    #[arg(long = "match", value_name = "MOTIFS.meme")]
    pub match_file: Option<PathBuf>,
    /// Fewest overlapping columns of a filter/motif alignment (capped at the shorter width).
    #[arg(long, default_value_t = motifs::MIN_OVERLAP)]
    pub min_overlap: usize,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    if a.min_overlap == 0 {
        return Err(Error::Usage("--min-overlap must be at least 1".into()));
    }
    let targets = a.match_file.as_ref().map(|p| meme::read(p)).transpose()?;
    with_threads(a.threads, || {
        let mut run: Run = a.model.open()?;
        let f = run.filters(
            &a.data,
            &a.data_args,
            a.batch_size,
            targets.as_deref(),
            a.min_overlap,
        )?;
        let ms: Vec<meme::Motif> = f.found.iter().map(|f| f.motif.clone()).collect();
        let sites: Vec<usize> = f.found.iter().map(|f| f.sites).collect();
        meme::write(&a.out, &ms, Some(&sites))?;

        let mut rows: Vec<Vec<String>> = vec![["filter", "sites", "max_act", "bits", "consensus"]
            .iter()
            .map(|s| s.to_string())
            .collect()];
        if targets.is_some() {
            for h in ["best_match", "score", "strand", "offset"] {
                rows[0].push(h.into());
            }
        }
        for (fm, m) in f.found.iter().zip(&f.matches) {
            let mut row = vec![
                fm.filter.to_string(),
                fm.sites.to_string(),
                format!("{:.3}", fm.max_activation),
                format!("{:.1}", fm.motif.information()),
                if fm.sites == 0 {
                    "(no sites)".into()
                } else {
                    consensus(&fm.motif)
                },
            ];
            match (&targets, m) {
                (Some(t), Some(m)) => {
                    row.push(t[m.motif].name.clone());
                    row.push(format!("{:.3}", m.alignment.score));
                    row.push(m.strand.to_string());
                    row.push(m.alignment.offset.to_string());
                }
                (Some(_), None) => row.extend(["-", "-", "-", "-"].map(String::from)),
                (None, _) => {}
            }
            rows.push(row);
        }
        let mut text = crate::cli::format::aligned(&rows);
        text.push_str(&format!(
            "\n{} filters over {} records written to {}",
            f.found.len(),
            f.records,
            a.out.display()
        ));
        if let (Some(t), Some(p)) = (&targets, &a.match_file) {
            text.push_str(&format!(
                "; {} distinct motifs of {} ({}) are some filter's best match",
                f.matched_motifs(),
                t.len(),
                p.display()
            ));
        }
        text.push('\n');
        print_stdout(&text)
    })
}
