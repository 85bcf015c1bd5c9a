//! Stratified, seeded train/validation/test splits.
//!
//! Records are grouped by stratum (class, or label set for multi-label data). Each group is
//! shuffled with a ChaCha8 generator seeded from the seed. The test set gets exactly
//! `round(N·test)` of the `N` records, allocated over the groups by largest remainder (each
//! group of `n` gets `⌊n·test⌋`, the remaining records go one each to the groups with the
//! largest fractional parts `n·test − ⌊n·test⌋`, ties in a seeded random order); the
//! validation set likewise gets exactly `round(N·valid)` of the rest. Each group's first
//! records go to the test set, the next to the validation set, the rest to training. (Rounding
//! each group alone would miss the requested fractions badly when there are many small groups,
//! as with multi-label label sets.) Each split keeps the file order (training shuffles itself), so
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
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    for idx in &mut groups {
        idx.shuffle(&mut rng);
    }
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let n = strata.len();
    let nt = allocate(&sizes, &sizes, test, n, &mut rng);
    let room: Vec<usize> = sizes.iter().zip(&nt).map(|(s, t)| s - t).collect();
    let nv = allocate(&sizes, &room, valid, n, &mut rng);
    let mut out = Split::default();
    for ((idx, &t), &v) in groups.iter().zip(&nt).zip(&nv) {
        out.test.extend_from_slice(&idx[..t]);
        out.valid.extend_from_slice(&idx[t..t + v]);
        out.train.extend_from_slice(&idx[t + v..]);
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

/// Largest-remainder allocation of `round(total·frac)` records over groups of `sizes`: each
/// group gets `⌊size·frac⌋`, and the records left over go one each to the groups with the
/// largest fractional parts (ties in a seeded random order), never more than a group's
/// `room`.
fn allocate(
    sizes: &[usize],
    room: &[usize],
    frac: f64,
    total: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let target = ((total as f64 * frac).round() as usize).min(room.iter().sum());
    let quota: Vec<f64> = sizes.iter().map(|&s| s as f64 * frac).collect();
    let mut got: Vec<usize> = quota
        .iter()
        .zip(room)
        .map(|(q, &r)| (q.floor() as usize).min(r))
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.shuffle(rng);
    // stable: equal remainders keep the seeded order
    order.sort_by(|&a, &b| {
        let fa = quota[a] - quota[a].floor();
        let fb = quota[b] - quota[b].floor();
        fb.total_cmp(&fa)
    });
    let mut left = target.saturating_sub(got.iter().sum());
    while left > 0 {
        let before = left;
        for &g in &order {
            if left == 0 {
                break;
            }
            if got[g] < room[g] {
                got[g] += 1;
                left -= 1;
            }
        }
        if left == before {
            break; // ok: every group is full (target is capped by the total room)
        }
    }
    got
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

    fn count(s: &Split, strata: &[String], key: &str) -> [usize; 3] {
        let c = |v: &[usize]| v.iter().filter(|&&i| strata[i] == key).count();
        [c(&s.train), c(&s.valid), c(&s.test)]
    }

    #[test]
    fn exact_totals_by_largest_remainder_multi_class() {
        // the splice classes: 767 EI, 768 IE, 1655 N. Quotas at 0.1: 76.7, 76.8, 165.5;
        // floors 317, round(319) = 319 → the two extra go to IE (.8) and EI (.7).
        let mut strata: Vec<String> = Vec::new();
        for (k, n) in [("EI", 767), ("IE", 768), ("N", 1655)] {
            strata.extend(std::iter::repeat_n(k.to_string(), n));
        }
        let s = stratified(&strata, 0.1, 0.1, 42).unwrap();
        assert_eq!(
            (s.test.len(), s.valid.len(), s.train.len()),
            (319, 319, 2552)
        );
        assert_eq!(count(&s, &strata, "EI"), [613, 77, 77]);
        assert_eq!(count(&s, &strata, "IE"), [614, 77, 77]);
        assert_eq!(count(&s, &strata, "N"), [1325, 165, 165]);
        // a small class at 0.1 no longer gets 20%: 5 records → 0.5 each, 95 → 9.5 each;
        // round(10) = 10 in all: 9 + 1 by remainder (a tie, broken by the seed)
        let mut strata: Vec<String> = vec!["small".into(); 5];
        strata.extend(std::iter::repeat_n("big".to_string(), 95));
        for seed in 0..20 {
            let s = stratified(&strata, 0.1, 0.1, seed).unwrap();
            assert_eq!((s.test.len(), s.valid.len()), (10, 10), "seed {seed}");
            let [_, v, t] = count(&s, &strata, "small");
            assert!(v <= 1 && t <= 1, "seed {seed}: {v} {t}");
        }
    }

    #[test]
    fn exact_totals_multi_label() {
        // 2000 records over 2^10 label sets (many groups of 1–5 records): each split gets
        // exactly 200 (rounding each group alone gave 145)
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let strata: Vec<String> = (0..2000)
            .map(|_| {
                (0..10)
                    .map(|_| if rng.random::<f64>() < 0.3 { '1' } else { '0' })
                    .collect()
            })
            .collect();
        let s = stratified(&strata, 0.1, 0.1, 42).unwrap();
        assert_eq!(
            (s.train.len(), s.valid.len(), s.test.len()),
            (1600, 200, 200)
        );
        assert_eq!(s, stratified(&strata, 0.1, 0.1, 42).unwrap());
        // still a partition
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..2000).collect::<Vec<_>>());
        // odd fractions: round(2000·0.237) = 474, round(2000·0.3) = 600
        let s = stratified(&strata, 0.3, 0.237, 3).unwrap();
        assert_eq!((s.valid.len(), s.test.len()), (600, 474));
        // no group gives more than its quota rounded up
        let mut groups: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
        for (i, k) in strata.iter().enumerate() {
            let e = groups.entry(k).or_default();
            e[0] += 1;
            e[1] += s.valid.contains(&i) as usize;
            e[2] += s.test.contains(&i) as usize;
        }
        for (k, [n, v, t]) in groups {
            assert!(t <= (n as f64 * 0.237).ceil() as usize, "{k}");
            assert!(v <= (n as f64 * 0.3).ceil() as usize, "{k}");
        }
    }

    #[test]
    fn tiny_groups_with_little_room() {
        // one record per group: every quota is below 1, so the global totals (round(0.9) = 1
        // each) come from the remainders alone
        // 0.4 + 0.5 of 3: round(1.5) = 2 test, round(1.2) = 1 validation, 0 train → an error
        let strata: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let s = stratified(&strata, 0.3, 0.3, 1).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (1, 1, 1));
        assert!(stratified(&strata, 0.4, 0.5, 1).is_err());
    }
}
