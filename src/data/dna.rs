//! DNA encoding: one-hot A, C, G, T (channels-last, channel order A, C, G, T), IUPAC ambiguity
//! codes as probability vectors, and the reverse complement on strings and on encoded arrays.
//!
//! | code | meaning | A | C | G | T |
//! |------|---------|---|---|---|---|
//! | A, C, G, T | the base | one-hot | | | |
//! | U | uracil, read as T (RNA input) | 0 | 0 | 0 | 1 |
//! | R | A/G (purine) | ½ | 0 | ½ | 0 |
//! | Y | C/T (pyrimidine) | 0 | ½ | 0 | ½ |
//! | S | C/G | 0 | ½ | ½ | 0 |
//! | W | A/T | ½ | 0 | 0 | ½ |
//! | K | G/T | 0 | 0 | ½ | ½ |
//! | M | A/C | ½ | ½ | 0 | 0 |
//! | B | not A | 0 | ⅓ | ⅓ | ⅓ |
//! | D | not C | ⅓ | 0 | ⅓ | ⅓ |
//! | H | not G | ⅓ | ⅓ | 0 | ⅓ |
//! | V | not T | ⅓ | ⅓ | ⅓ | 0 |
//! | N | any | ¼ | ¼ | ¼ | ¼ |
//!
//! Letters are case-insensitive. Anything else (gaps `-`, `.`, digits, spaces) is an error the
//! readers report with file, line and column.
//!
//! Reverse complement: on strings, reverse and complement each code (A↔T, C↔G, R↔Y, K↔M,
//! B↔V, D↔H; S, W, N map to themselves; U becomes A). On a one-hot array `(length, 4)` in
//! A, C, G, T order it is reversing the time axis and reversing the channel axis (A↔T and C↔G
//! are exactly the channel reversal), which also maps every IUPAC probability vector onto its
//! complement's.

use ndarray::{ArrayView3, ArrayViewMut2, Axis};

use crate::tensor::Float;

/// The characters accepted in a sequence, for error messages.
pub const VALID: &str = "A C G T (any case), U, and IUPAC codes R Y S W K M B D H V N";

/// The probability vector (A, C, G, T) of one sequence character, or `None` if invalid.
pub fn code(c: u8) -> Option<[f64; 4]> {
    const H: f64 = 0.5;
    const T3: f64 = 1.0 / 3.0;
    Some(match c.to_ascii_uppercase() {
        b'A' => [1.0, 0.0, 0.0, 0.0],
        b'C' => [0.0, 1.0, 0.0, 0.0],
        b'G' => [0.0, 0.0, 1.0, 0.0],
        b'T' | b'U' => [0.0, 0.0, 0.0, 1.0],
        b'R' => [H, 0.0, H, 0.0],
        b'Y' => [0.0, H, 0.0, H],
        b'S' => [0.0, H, H, 0.0],
        b'W' => [H, 0.0, 0.0, H],
        b'K' => [0.0, 0.0, H, H],
        b'M' => [H, H, 0.0, 0.0],
        b'B' => [0.0, T3, T3, T3],
        b'D' => [T3, 0.0, T3, T3],
        b'H' => [T3, T3, 0.0, T3],
        b'V' => [T3, T3, T3, 0.0],
        b'N' => [0.25, 0.25, 0.25, 0.25],
        _ => return None,
    })
}

/// True if `c` is a valid sequence character.
pub fn is_valid(c: u8) -> bool {
    code(c).is_some()
}

/// The index (0-based, in bytes) and value of the first invalid character of `seq`.
pub fn first_invalid(seq: &str) -> Option<(usize, char)> {
    seq.char_indices()
        .find(|&(_, c)| !c.is_ascii() || !is_valid(c as u8))
}

/// Complement of one code (case preserved; U complements to A).
pub fn complement(c: u8) -> u8 {
    let up = match c.to_ascii_uppercase() {
        b'A' => b'T',
        b'T' | b'U' => b'A',
        b'C' => b'G',
        b'G' => b'C',
        b'R' => b'Y',
        b'Y' => b'R',
        b'K' => b'M',
        b'M' => b'K',
        b'B' => b'V',
        b'V' => b'B',
        b'D' => b'H',
        b'H' => b'D',
        other => other, // S, W, N and anything else map to themselves
    };
    if c.is_ascii_lowercase() {
        up.to_ascii_lowercase()
    } else {
        up
    }
}

/// Reverse complement of a sequence string.
pub fn reverse_complement(seq: &str) -> String {
    seq.bytes().rev().map(|c| complement(c) as char).collect()
}

/// Encodes a valid sequence into a `(length, 4)` view (rows past the sequence are left as they
/// are). Characters must have been validated (invalid ones encode as zeros).
///
/// # Shapes
/// - `out`: `(length ≥ seq.len(), 4)`.
pub fn encode_into<T: Float>(seq: &[u8], mut out: ArrayViewMut2<'_, T>) {
    for (i, &c) in seq.iter().enumerate() {
        let p = code(c).unwrap_or([0.0; 4]);
        for k in 0..4 {
            out[[i, k]] = T::lit(p[k]);
        }
    }
}

/// One-hot/IUPAC encoding of a sequence as a `(length, 4)` array; `Err((index, char))` names
/// the first invalid character.
pub fn one_hot<T: Float>(seq: &str) -> std::result::Result<ndarray::Array2<T>, (usize, char)> {
    if let Some(bad) = first_invalid(seq) {
        return Err(bad);
    }
    let mut a = ndarray::Array2::zeros((seq.len(), 4));
    encode_into(seq.as_bytes(), a.view_mut());
    Ok(a)
}

/// Reverse complement of a batch of encoded sequences: reverses the time axis and the channel
/// axis (A, C, G, T → T, G, C, A).
///
/// # Shapes
/// - `x`: `(batch, length, 4)`; returns the same shape.
pub fn reverse_complement_batch<T: Float>(x: ArrayView3<'_, T>) -> ndarray::Array3<T> {
    let mut v = x;
    v.invert_axis(Axis(1));
    v.invert_axis(Axis(2));
    v.to_owned()
}

/// Reverse complement of a padded batch: each record's first `lengths[b]` rows are reversed
/// and complemented, its padding (all-zero rows past its length) stays at the end.
///
/// # Shapes
/// - `x`: `(batch, length, 4)`, `lengths`: `(batch)`; returns `(batch, length, 4)`.
pub fn reverse_complement_padded<T: Float>(
    x: ArrayView3<'_, T>,
    lengths: &[usize],
) -> ndarray::Array3<T> {
    let mut out = ndarray::Array3::zeros(x.raw_dim());
    for (b, &n) in lengths.iter().enumerate().take(x.shape()[0]) {
        let n = n.min(x.shape()[1]);
        let mut v = x.slice(ndarray::s![b, ..n, ..]);
        v.invert_axis(Axis(0));
        v.invert_axis(Axis(1));
        out.slice_mut(ndarray::s![b, ..n, ..]).assign(&v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_reverse_complement_keeps_the_padding_at_the_end() {
        // "ACG" padded to 5 and "TTGCA" full length
        let mut x = ndarray::Array3::<f64>::zeros((2, 5, 4));
        encode_into(b"ACG", x.index_axis_mut(Axis(0), 0));
        encode_into(b"TTGCA", x.index_axis_mut(Axis(0), 1));
        let rc = reverse_complement_padded(x.view(), &[3, 5]);
        let mut want = ndarray::Array3::<f64>::zeros((2, 5, 4));
        encode_into(b"CGT", want.index_axis_mut(Axis(0), 0));
        encode_into(b"TGCAA", want.index_axis_mut(Axis(0), 1));
        assert_eq!(rc, want);
        // full lengths: the same as the unpadded batch version
        assert_eq!(
            reverse_complement_padded(want.view(), &[5, 5]).index_axis(Axis(0), 1),
            reverse_complement_batch(want.view()).index_axis(Axis(0), 1)
        );
    }

    #[test]
    fn probability_vectors_sum_to_one() {
        for c in b"ACGTURYSWKMBDHVNacgturyswkmbdhvn" {
            let p = code(*c).unwrap();
            assert!(
                (p.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "{}",
                *c as char
            );
        }
        assert!(code(b'-').is_none() && code(b'X').is_none() && code(b' ').is_none());
    }

    #[test]
    fn complement_matches_channel_reversal() {
        for c in b"ACGTRYSWKMBDHVN" {
            let mut p = code(*c).unwrap();
            p.reverse();
            assert_eq!(p, code(complement(*c)).unwrap(), "{}", *c as char);
        }
    }
}
