//! One-hot / IUPAC encoding and reverse-complement properties.

use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqgrad::data::dna::{code, complement, one_hot, reverse_complement, reverse_complement_batch};

const CODES: &[u8] = b"ACGTRYSWKMBDHVNacgtryswkmbdhvn";

fn random_seq(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| CODES[rng.random_range(0..CODES.len())] as char)
        .collect()
}

#[test]
fn one_hot_is_channels_last_acgt_and_case_insensitive() {
    let a = one_hot::<f32>("AcGtN").unwrap();
    assert_eq!(a.shape(), &[5, 4]);
    assert_eq!(a.row(0).to_vec(), vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(a.row(1).to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    assert_eq!(a.row(2).to_vec(), vec![0.0, 0.0, 1.0, 0.0]);
    assert_eq!(a.row(3).to_vec(), vec![0.0, 0.0, 0.0, 1.0]);
    assert_eq!(a.row(4).to_vec(), vec![0.25; 4]);
    assert_eq!(
        one_hot::<f64>("acgt").unwrap(),
        one_hot::<f64>("ACGT").unwrap()
    );
    assert_eq!(one_hot::<f64>("U").unwrap(), one_hot::<f64>("T").unwrap());
    assert_eq!(
        one_hot::<f64>("R").unwrap().row(0).to_vec(),
        vec![0.5, 0.0, 0.5, 0.0]
    );
    assert_eq!(
        one_hot::<f64>("Y").unwrap().row(0).to_vec(),
        vec![0.0, 0.5, 0.0, 0.5]
    );
    let b = one_hot::<f64>("B").unwrap();
    assert_eq!(b[[0, 0]], 0.0);
    assert!((b[[0, 1]] - 1.0 / 3.0).abs() < 1e-15);
    assert_eq!(one_hot::<f32>("ACXT").unwrap_err(), (2, 'X'));
    assert_eq!(one_hot::<f32>("AC-T").unwrap_err(), (2, '-'));
}

#[test]
fn every_code_is_a_probability_vector() {
    for &c in CODES {
        let p = code(c).unwrap();
        assert!(p.iter().all(|&v| v >= 0.0));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn reverse_complement_is_an_involution_on_strings_and_arrays() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for len in [1, 2, 7, 60, 101] {
        let s = random_seq(&mut rng, len);
        assert_eq!(reverse_complement(&reverse_complement(&s)), s);
        // encoding commutes with the reverse complement
        let x = one_hot::<f64>(&s).unwrap();
        let rc_x = one_hot::<f64>(&reverse_complement(&s)).unwrap();
        let batch = x.clone().insert_axis(Axis(0));
        let rc_batch = reverse_complement_batch(batch.view());
        assert_eq!(rc_batch.index_axis(Axis(0), 0), rc_x);
        assert_eq!(reverse_complement_batch(rc_batch.view()), batch);
    }
    assert_eq!(reverse_complement("AACGTN"), "NACGTT");
    assert_eq!(reverse_complement("acgR"), "Ycgt");
    for &c in CODES {
        assert_eq!(complement(complement(c)), c);
    }
    // a random batch too
    let x = Array3::from_shape_fn((3, 11, 4), |_| rng.random::<f64>());
    assert_eq!(
        reverse_complement_batch(reverse_complement_batch(x.view()).view()),
        x
    );
}
