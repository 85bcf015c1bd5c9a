//! Synthetic labelled DNA: uniform random background (A, C, G, T each ¼) with transcription
//! factor motifs planted, each planted copy sampled base by base from the motif's position
//! probability matrix (forward strand, uniform random position).
//!
//! - **Multi-class** (`classes = N`): record `i` belongs to class `i mod N` (balanced) and has
//!   that class's motif planted once. There is no motif-free class: every class is a motif.
//! - **Multi-label** (`labels = N`, DanQ-like): each of the N motifs is present independently
//!   with probability `label_prob` (default 0.3), planted once where it overlaps no other
//!   planted motif (if one can be found in 100 tries); a record can have no label or several.
//!
//! Class/label names are the motifs' ids (the first word after `MOTIF`). The motifs are chosen
//! by name or index, or by default a seeded choice among informative motifs (≥ 12 bits, width
//! 6–20). The output depends only on the options and the seed.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::meme::Motif;
use crate::data::Record;
use crate::error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub count: usize,
    pub length: usize,
    /// Number of classes (multi-class) or labels (multi-label).
    pub n: usize,
    pub multi_label: bool,
    /// Probability that a label's motif is present (multi-label).
    pub label_prob: f64,
    pub seed: u64,
}

/// Resolves `--motifs` (names, id prefixes or 0-based indices) or makes the seeded default
/// choice of `n` distinct informative motifs that fit in `length`.
pub fn choose_motifs(
    motifs: &[Motif],
    wanted: &[String],
    n: usize,
    length: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    let usage = |m: String| Error::Usage(m);
    let chosen: Vec<usize> = if wanted.is_empty() {
        let mut pool: Vec<usize> = (0..motifs.len())
            .filter(|&i| {
                let m = &motifs[i];
                (6..=20).contains(&m.width()) && m.width() <= length && m.information() >= 12.0
            })
            .collect();
        if pool.len() < n {
            return Err(usage(format!(
                "only {} informative motifs fit length {length}; asked for {n}",
                pool.len()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0000_0000_0071_F00D);
        pool.shuffle(&mut rng);
        pool.truncate(n);
        pool
    } else {
        let mut out = Vec::new();
        for w in wanted {
            let i = match w.parse::<usize>() {
                Ok(i) if i < motifs.len() => i,
                Ok(i) => {
                    return Err(usage(format!(
                        "motif index {i} out of range (0..{})",
                        motifs.len()
                    )))
                }
                Err(_) => motifs
                    .iter()
                    .position(|m| m.name == *w || m.name.split_whitespace().any(|p| p == w))
                    .ok_or_else(|| usage(format!("no motif named {w:?}")))?,
            };
            if out.contains(&i) {
                return Err(usage(format!("motif {w:?} given twice")));
            }
            if motifs[i].width() > length {
                return Err(usage(format!(
                    "motif {} has width {} > sequence length {length}",
                    motifs[i].name,
                    motifs[i].width()
                )));
            }
            out.push(i);
        }
        if out.len() != n {
            return Err(usage(format!(
                "--motifs lists {} motifs but {n} classes/labels were asked for",
                out.len()
            )));
        }
        out
    };
    Ok(chosen)
}

const BASES: [u8; 4] = *b"ACGT";

fn sample_motif(m: &Motif, rng: &mut ChaCha8Rng) -> Vec<u8> {
    m.probs
        .iter()
        .map(|p| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            for k in 0..4 {
                acc += p[k];
                if u < acc {
                    return BASES[k];
                }
            }
            BASES[3]
        })
        .collect()
}

/// The class/label name of a motif (its id).
pub fn motif_label(m: &Motif) -> String {
    m.name
        .split_whitespace()
        .next()
        .unwrap_or("motif")
        .to_string()
}

/// The most bases (`count · length`) one synthetic data set may hold: 2^30, the same cap as
/// seqgrad's tensors (the encoded set would be 4× that many numbers).
pub const MAX_SYNTH_BASES: usize = 1 << 30;

/// Checks `count`, `length` and `n` (at least 1; `count · length` at most [`MAX_SYNTH_BASES`])
/// before anything is allocated.
pub fn check_sizes(count: usize, length: usize, n: usize) -> Result<()> {
    if count == 0 || length == 0 || n == 0 {
        return Err(Error::Usage(
            "--count, --length and --classes/--labels must be at least 1".into(),
        ));
    }
    if count
        .checked_mul(length)
        .is_none_or(|b| b > MAX_SYNTH_BASES)
    {
        return Err(Error::Usage(format!(
            "--count {count} × --length {length} is more than the {MAX_SYNTH_BASES} bases (2^30) \
             seqgrad writes in one data set"
        )));
    }
    Ok(())
}

/// Generates the records (ids `seq1`, `seq2` …).
pub fn generate(motifs: &[Motif], chosen: &[usize], cfg: &SynthConfig) -> Result<Vec<Record>> {
    check_sizes(cfg.count, cfg.length, cfg.n)?;
    if !(0.0..=1.0).contains(&cfg.label_prob) {
        return Err(Error::Usage(format!(
            "--label-prob must be in [0, 1], got {}",
            cfg.label_prob
        )));
    }
    if chosen.len() < cfg.n {
        return Err(Error::Usage(format!(
            "{} motifs chosen for {} classes/labels",
            chosen.len(),
            cfg.n
        )));
    }
    if let Some(m) = chosen
        .iter()
        .map(|&i| &motifs[i])
        .find(|m| m.width() > cfg.length)
    {
        return Err(Error::Usage(format!(
            "motif {} has width {} > sequence length {}",
            m.name,
            m.width(),
            cfg.length
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let names: Vec<String> = chosen.iter().map(|&i| motif_label(&motifs[i])).collect();
    let mut out = Vec::with_capacity(cfg.count);
    for r in 0..cfg.count {
        let mut seq: Vec<u8> = (0..cfg.length)
            .map(|_| BASES[rng.random_range(0..4)])
            .collect();
        let present: Vec<usize> = if cfg.multi_label {
            (0..cfg.n)
                .filter(|_| rng.random::<f64>() < cfg.label_prob)
                .collect()
        } else {
            vec![r % cfg.n]
        };
        let mut used: Vec<(usize, usize)> = Vec::new();
        for &k in &present {
            let m = &motifs[chosen[k]];
            let w = m.width();
            let mut pos = rng.random_range(0..=cfg.length - w);
            for _ in 0..100 {
                if used.iter().all(|&(a, b)| pos + w <= a || pos >= b) {
                    break;
                }
                pos = rng.random_range(0..=cfg.length - w);
            }
            used.push((pos, pos + w));
            let site = sample_motif(m, &mut rng);
            seq[pos..pos + w].copy_from_slice(&site);
        }
        out.push(Record {
            id: format!("seq{}", r + 1),
            seq: String::from_utf8_lossy(&seq).into_owned(),
            labels: present.iter().map(|&k| names[k].clone()).collect(),
            line: r + 2,
        });
    }
    Ok(out)
}

/// Writes records as CSV (`id,label,sequence`, or `id,labels,sequence` with `;`-separated
/// labels) or, for `.fa`/`.fasta`/`.fna`, FASTA (`>id label=X` / `>id labels=A,B`).
/// The file is written atomically.
pub fn write(path: &Path, records: &[Record], multi_label: bool) -> Result<()> {
    use crate::data::reader::Format;
    let mut s = String::new();
    match Format::of(path) {
        Format::Fasta => {
            for r in records {
                let key = if multi_label { "labels" } else { "label" };
                s.push_str(&format!(
                    ">{} {key}={}\n{}\n",
                    r.id,
                    r.labels.join(","),
                    r.seq
                ));
            }
        }
        f => {
            let d = if f == Format::Tsv { '\t' } else { ',' };
            let key = if multi_label { "labels" } else { "label" };
            s.push_str(&format!("id{d}{key}{d}sequence\n"));
            for r in records {
                s.push_str(&format!("{}{d}{}{d}{}\n", r.id, r.labels.join(";"), r.seq));
            }
        }
    }
    crate::weights::write_atomic(path, s.as_bytes())
}

/// Records whose class is decided by a motif planted near the **start** of the sequence (the
/// task of `seqgrad gradflow`): record `r` belongs to class `r mod motifs.len()` and has that
/// class's motif (sampled base by base from its matrix, forward strand) planted at a uniform
/// position in `0..=max_offset` (clamped so it fits); the rest is uniform random background.
/// Labels are the motifs' ids ([`motif_label`]); ids `seq1`, `seq2` …
pub fn generate_start_planted(
    motifs: &[Motif],
    count: usize,
    length: usize,
    max_offset: usize,
    seed: u64,
) -> Result<Vec<Record>> {
    check_sizes(count, length, motifs.len())?;
    if let Some(m) = motifs.iter().find(|m| m.width() > length || m.width() == 0) {
        return Err(Error::Usage(format!(
            "motif {} has width {} but the sequences are {length} bp",
            m.name,
            m.width()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<String> = motifs.iter().map(motif_label).collect();
    let mut out = Vec::with_capacity(count);
    for r in 0..count {
        let k = r % motifs.len();
        let m = &motifs[k];
        let mut seq: Vec<u8> = (0..length).map(|_| BASES[rng.random_range(0..4)]).collect();
        let pos = rng.random_range(0..=max_offset.min(length - m.width()));
        let site = sample_motif(m, &mut rng);
        seq[pos..pos + m.width()].copy_from_slice(&site);
        out.push(Record {
            id: format!("seq{}", r + 1),
            seq: String::from_utf8_lossy(&seq).into_owned(),
            labels: vec![names[k].clone()],
            line: r + 2,
        });
    }
    Ok(out)
}

/// The motif [`generate_mixed_lengths`] plants in its positive records (a GATA-like site with
/// a fixed flank, 10 bp).
pub const MIXED_LENGTHS_MOTIF: &str = "AGATAAGGCA";

/// Records of **different lengths** for models of any length (`input_shape: [null, 4]`):
/// record `r` has a uniform random length in `min_len..=max_len` and uniform random bases;
/// even records are class `pos` and have [`MIXED_LENGTHS_MOTIF`] planted at a uniform position,
/// odd records are class `neg` (background only). Ids `seq1`, `seq2` …; the output depends
/// only on the arguments.
pub fn generate_mixed_lengths(
    count: usize,
    min_len: usize,
    max_len: usize,
    seed: u64,
) -> Result<Vec<Record>> {
    let w = MIXED_LENGTHS_MOTIF.len();
    if min_len < w || max_len < min_len {
        return Err(Error::Usage(format!(
            "lengths {min_len}..={max_len}: need {w} <= min <= max (the motif is {w} bp)"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for r in 0..count {
        let len = rng.random_range(min_len..=max_len);
        let mut seq: Vec<u8> = (0..len).map(|_| BASES[rng.random_range(0..4)]).collect();
        let positive = r % 2 == 0;
        if positive {
            let pos = rng.random_range(0..=len - w);
            seq[pos..pos + w].copy_from_slice(MIXED_LENGTHS_MOTIF.as_bytes());
        }
        out.push(Record {
            id: format!("seq{}", r + 1),
            seq: String::from_utf8_lossy(&seq).into_owned(),
            labels: vec![if positive { "pos" } else { "neg" }.into()],
            line: 2 * r + 1,
        });
    }
    Ok(out)
}
