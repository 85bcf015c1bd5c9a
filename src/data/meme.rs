//! The MEME motif text format (as JASPAR exports it): `MOTIF id [alt name]` lines, each
//! followed by `letter-probability matrix: alength= 4 w= N …` and N rows of four
//! probabilities in A, C, G, T order. Other lines (version, alphabet, background, URL) are
//! skipped.

use std::path::Path;

use crate::error::{Error, Result};

/// A position probability matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Motif {
    /// `id` or `id alt-name` as written after `MOTIF`.
    pub name: String,
    /// One row per position: P(A), P(C), P(G), P(T).
    pub probs: Vec<[f64; 4]>,
}

impl Motif {
    pub fn width(&self) -> usize {
        self.probs.len()
    }

    /// Information content in bits (sum over positions of 2 − entropy).
    pub fn information(&self) -> f64 {
        self.probs
            .iter()
            .map(|r| {
                2.0 + r
                    .iter()
                    .filter(|&&p| p > 0.0)
                    .map(|&p| p * p.log2())
                    .sum::<f64>()
            })
            .sum()
    }
}

/// Reads a MEME file (or a built-in `bundled:` one, see [`crate::bundled`]).
pub fn read(path: &Path) -> Result<Vec<Motif>> {
    let text = crate::bundled::read_to_string(path)?;
    parse(&text, &path.display().to_string())
}

/// Parses MEME text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Motif>> {
    let err = |line: usize, msg: String| Error::Data {
        path: origin.to_string(),
        msg: format!("line {line}: {msg}"),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut motifs = Vec::new();
    let mut i = 0;
    let mut current: Option<String> = None;
    while i < lines.len() {
        let l = lines[i].trim();
        if let Some(rest) = l.strip_prefix("MOTIF") {
            current = Some(rest.split_whitespace().collect::<Vec<_>>().join(" "));
        } else if l.starts_with("letter-probability matrix") {
            let name = current
                .take()
                .ok_or_else(|| err(i + 1, "matrix without a MOTIF line".into()))?;
            let field = |key: &str| -> Option<usize> {
                let pos = l.find(key)? + key.len();
                l[pos..].split_whitespace().next()?.parse().ok()
            };
            let w = field("w=").ok_or_else(|| err(i + 1, "no `w=` width".into()))?;
            if let Some(a) = field("alength=") {
                if a != 4 {
                    return Err(err(
                        i + 1,
                        format!("alength= {a}; only DNA (4 letters) is supported"),
                    ));
                }
            }
            // Not preallocated from `w`: it is untrusted; missing rows are an error below.
            let mut probs = Vec::new();
            for r in 0..w {
                let j = i + 1 + r;
                let row = lines.get(j).ok_or_else(|| {
                    err(j + 1, format!("motif {name} ends after {r} of {w} rows"))
                })?;
                let vals: Vec<f64> = row
                    .split_whitespace()
                    .map(|v| v.parse::<f64>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| err(j + 1, format!("motif {name}: not four numbers: {row:?}")))?;
                if vals.len() != 4 || vals.iter().any(|v| !(0.0..=1.0).contains(v)) {
                    return Err(err(
                        j + 1,
                        format!("motif {name}: expected four probabilities, got {row:?}"),
                    ));
                }
                let s: f64 = vals.iter().sum();
                if s <= 0.0 {
                    return Err(err(j + 1, format!("motif {name}: row sums to 0")));
                }
                probs.push([vals[0] / s, vals[1] / s, vals[2] / s, vals[3] / s]);
            }
            motifs.push(Motif { name, probs });
            i += w;
        }
        i += 1;
    }
    if motifs.is_empty() {
        return Err(Error::Data {
            path: origin.to_string(),
            msg: "no motifs (expected MEME text format)".into(),
        });
    }
    Ok(motifs)
}

/// MEME text (minimal MEME version 4, DNA, uniform background) for `motifs`; `nsites[i]`,
/// when given, is written as motif i's `nsites=`. Probabilities have 6 decimals; [`parse`]
/// reads the text back.
pub fn to_text(motifs: &[Motif], nsites: Option<&[usize]>) -> String {
    let mut s = String::from(
        "MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n\
         Background letter frequencies\nA 0.25 C 0.25 G 0.25 T 0.25\n",
    );
    for (i, m) in motifs.iter().enumerate() {
        s.push_str(&format!(
            "\nMOTIF {}\nletter-probability matrix: alength= 4 w= {}",
            m.name,
            m.width()
        ));
        if let Some(n) = nsites.and_then(|n| n.get(i)) {
            s.push_str(&format!(" nsites= {n}"));
        }
        s.push_str(" E= 0\n");
        for r in &m.probs {
            s.push_str(&format!(
                "{:.6}\t{:.6}\t{:.6}\t{:.6}\n",
                r[0], r[1], r[2], r[3]
            ));
        }
    }
    s
}

/// Writes [`to_text`] to `path` atomically.
pub fn write(path: &Path, motifs: &[Motif], nsites: Option<&[usize]>) -> Result<()> {
    crate::weights::write_atomic(path, to_text(motifs, nsites).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_motifs() {
        let t = "MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 foo\nletter-probability matrix: alength= 4 w= 2 nsites= 20\n1 0 0 0\n0.25 0.25 0.25 0.25\n\nMOTIF M2\nletter-probability matrix: alength= 4 w= 1\n0 0 0 1\n";
        let m = parse(t, "t").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "M1 foo");
        assert_eq!(m[0].width(), 2);
        assert!((m[0].information() - 2.0).abs() < 1e-12);
        assert_eq!(m[1].probs, vec![[0.0, 0.0, 0.0, 1.0]]);
        assert!(parse(
            "MOTIF X\nletter-probability matrix: alength= 4 w= 2\n1 0 0 0\n",
            "t"
        )
        .is_err());
    }

    #[test]
    fn written_text_reads_back() {
        let m = vec![
            Motif {
                name: "filter0".into(),
                probs: vec![[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]],
            },
            Motif {
                name: "filter1 alt".into(),
                probs: vec![[0.25; 4]],
            },
        ];
        let text = to_text(&m, Some(&[12, 0]));
        assert!(text.contains("w= 2 nsites= 12"), "{text}");
        let back = parse(&text, "t").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].name, "filter1 alt");
        for (a, b) in m.iter().zip(&back) {
            for (ra, rb) in a.probs.iter().zip(&b.probs) {
                for k in 0..4 {
                    assert!((ra[k] - rb[k]).abs() < 1e-6);
                }
            }
        }
    }
}
