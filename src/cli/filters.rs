//! `seqgrad filters`: the first conv layer's filters as motifs (DanQ's method, see
//! [`crate::motifs`] and `docs/filters.md`), written as MEME; with `--match`, each filter's best
//! match in a motif file (Tomtom-like: mean column Pearson correlation, all offsets with at
//! least `--min-overlap` columns, both strands).

use std::path::PathBuf;

use crate::cli::evaluate::ModelArgs;
use crate::cli::train::{print_stdout, with_threads, DataArgs};
use crate::data::{self, meme, Labels, ReadOptions};
use crate::error::{Error, Result};
use crate::motifs;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences (CSV, TSV or FASTA) the filters are run over; labels are ignored.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
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

/// The most likely base of every column (`N` where no base has probability above 0.5 …
/// lower-case where the top base is below 0.5).
fn consensus(m: &meme::Motif) -> String {
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

pub fn run(a: &Args) -> Result<()> {
    if a.min_overlap == 0 {
        return Err(Error::Usage("--min-overlap must be at least 1".into()));
    }
    let targets = a.match_file.as_ref().map(|p| meme::read(p)).transpose()?;
    with_threads(a.threads, || {
        let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
        let opts = ReadOptions {
            require_labels: false,
            ..a.data_args.read_options()
        };
        let raw = data::read(&a.data, &opts)?;
        let labels = labels.unwrap_or_else(|| Labels {
            classes: Vec::new(),
            multi_label: false,
            binary: false,
        });
        // motif sites are read from the windows of full-length records: no masked padding
        let policy = data::LengthPolicy {
            any_length: false,
            ..policy
        };
        let lens: std::collections::BTreeSet<usize> =
            raw.records.iter().map(|r| r.seq.len()).collect();
        if policy.target()?.is_none() && lens.len() > 1 && model.is_variable_length() {
            return Err(Error::Usage(format!(
                "{}: records have lengths {}–{}; seqgrad filters reads records of one length (use --crop N to cut them to N bases)",
                a.data.display(),
                lens.first().copied().unwrap_or(0),
                lens.last().copied().unwrap_or(0)
            )));
        }
        let ds = data::encode::<f32>(&raw, &labels, policy, false)?;
        let found = motifs::filter_motifs(&mut model, &ds.x, a.batch_size)?;
        let ms: Vec<meme::Motif> = found.iter().map(|f| f.motif.clone()).collect();
        let sites: Vec<usize> = found.iter().map(|f| f.sites).collect();
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
        let mut matched: Vec<usize> = Vec::new();
        for f in &found {
            let mut row = vec![
                f.filter.to_string(),
                f.sites.to_string(),
                format!("{:.3}", f.max_activation),
                format!("{:.1}", f.motif.information()),
                if f.sites == 0 {
                    "(no sites)".into()
                } else {
                    consensus(&f.motif)
                },
            ];
            if let Some(t) = &targets {
                match motifs::best_match(&f.motif.probs, t, a.min_overlap).filter(|_| f.sites > 0) {
                    Some(m) => {
                        if !matched.contains(&m.motif) {
                            matched.push(m.motif);
                        }
                        row.push(t[m.motif].name.clone());
                        row.push(format!("{:.3}", m.alignment.score));
                        row.push(m.strand.to_string());
                        row.push(m.alignment.offset.to_string());
                    }
                    None => row.extend(["-", "-", "-", "-"].map(String::from)),
                }
            }
            rows.push(row);
        }
        let w: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut text = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, v)| format!("{v:<w$}", w = w[c]))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text.push_str(&format!(
            "\n{} filters over {} records written to {}",
            found.len(),
            ds.len(),
            a.out.display()
        ));
        if let (Some(t), Some(p)) = (&targets, &a.match_file) {
            text.push_str(&format!(
                "; {} distinct motifs of {} ({}) are some filter's best match",
                matched.len(),
                t.len(),
                p.display()
            ));
        }
        text.push('\n');
        print_stdout(&text)
    })
}
