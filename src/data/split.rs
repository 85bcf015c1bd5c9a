//! Stratified, seeded train/validation/test splits.
//!
//! Records are grouped by stratum (class, or label set for multi-label data). Each group is
//! shuffled with a ChaCha8 generator seeded from the seed, then its first
//! `round(n·test)` records go to the test set, the next `round(n·valid)` to the validation
//! set and the rest to training. Each split keeps the file order (training shuffles itself), so
//! a split depends only on the strata, the fractions and the seed.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Indices of the three splits, each in increasing order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits records by their stratum keys (see the module docs).
pub fn stratified(strata: &[String], valid: f64, test: f64, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&valid) || !(0.0..1.0).contains(&test) || valid + test >= 1.0 {
        return Err(Error::Usage(format!(
            "split fractions must be in [0, 1) with validation + test < 1, got validation {valid} and test {test}"
        )));
    }
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in strata.iter().enumerate() {
        groups.entry(s.as_str()).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5B11_7000_0001);
    let mut out = Split::default();
    for (_, mut idx) in groups {
        idx.shuffle(&mut rng);
        let n = idx.len() as f64;
        let nt = (n * test).round() as usize;
        let nv = ((n * valid).round() as usize).min(idx.len() - nt.min(idx.len()));
        let nt = nt.min(idx.len());
        out.test.extend_from_slice(&idx[..nt]);
        out.valid.extend_from_slice(&idx[nt..nt + nv]);
        out.train.extend_from_slice(&idx[nt + nv..]);
    }
    out.train.sort_unstable();
    out.valid.sort_unstable();
    out.test.sort_unstable();
    if out.train.is_empty() {
        return Err(Error::Usage(format!(
            "the split leaves no training records ({} records)",
            strata.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_proportions_and_determinism() {
        let strata: Vec<String> = (0..1000)
            .map(|i| if i % 4 == 0 { "a".into() } else { "b".into() })
            .collect();
        let s = stratified(&strata, 0.1, 0.1, 7).unwrap();
        assert_eq!(s.test.len(), 100);
        assert_eq!(s.valid.len(), 100);
        assert_eq!(s.train.len(), 800);
        assert_eq!(s.test.iter().filter(|&&i| i % 4 == 0).count(), 25);
        assert_eq!(s, stratified(&strata, 0.1, 0.1, 7).unwrap());
        assert_ne!(s, stratified(&strata, 0.1, 0.1, 8).unwrap());
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }
}
