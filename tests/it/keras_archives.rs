//! `.keras` archives saved by Keras 3 (`python/keras_fixtures.py`: `NAME.f32.keras`,
//! `NAME.f64.keras`, one per parity model, so every supported layer kind) read by seqgrad's
//! pure-Rust HDF5 reader: the variables equal the ones Keras reported at save time, bit for
//! bit, and `seqgrad convert` + the converted model give Keras' outputs and input gradients.
//! Malformed HDF5 is a one-line error, never a panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use seqgrad::weights::{self, StoredTensor};
use seqgrad::{keras, Float, Mode, Sequential};

use crate::common::{fails_with, seqgrad};
use crate::keras_parity::{dir, MODELS};

fn weights_h5(archive: &Path) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(archive).unwrap()).unwrap();
    let mut f = z.by_name("model.weights.h5").unwrap();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut buf).unwrap();
    buf
}

/// `seqgrad convert` on every archive, then the converted model on Keras' input batch: returns
/// (max |Δoutput|, max |Δinput gradient|) against Keras.
fn convert_and_run<T: Float>(name: &str, tag: &str) -> (f64, f64) {
    let d = tempfile::tempdir().unwrap();
    let archive = dir().join(format!("{name}.{tag}.keras"));
    let o = seqgrad(
        &[
            "convert",
            "--from",
            archive.to_str().unwrap(),
            "--out",
            "conv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{name}: {}", crate::common::stderr(&o));
    let want_dtype = if tag == "f64" { "F64" } else { "F32" };
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(want_dtype),
        "{name}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let spec = seqgrad::spec::ModelSpec::from_file(d.path().join("conv/model.json")).unwrap();
    let mut m = Sequential::<T>::from_spec(&spec, 0).unwrap();
    weights::load(&mut m, &d.path().join("conv/weights.safetensors")).unwrap();
    let all = weights::read_tensors(&dir().join(format!("{name}.{tag}.safetensors"))).unwrap();
    let y = m
        .forward(all["input"].array.mapv(T::lit).view(), Mode::Eval)
        .unwrap();
    let dx = m
        .backward(all["output_grad"].array.mapv(T::lit).view())
        .unwrap();
    let diff = |a: &ndarray::ArrayD<T>, b: &ndarray::ArrayD<f64>| {
        assert_eq!(a.shape(), b.shape());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x.to_f64c() - y).abs())
            .fold(0.0, f64::max)
    };
    (
        diff(&y, &all["output"].array),
        diff(&dx, &all["input_grad"].array),
    )
}

#[test]
fn every_keras_archive_converts_and_matches_keras() {
    let mut bad = Vec::new();
    for name in MODELS {
        let (o, g) = convert_and_run::<f32>(name, "f32");
        eprintln!("keras archive f32 {name:24} output {o:.2e} input grad {g:.2e}");
        if !(o <= 1e-5 && g <= 1e-5) {
            bad.push(format!("{name} f32: output {o:e}, input grad {g:e}"));
        }
        let (o, g) = convert_and_run::<f64>(name, "f64");
        eprintln!("keras archive f64 {name:24} output {o:.2e} input grad {g:.2e}");
        if !(o <= 1e-9 && g <= 1e-9) {
            bad.push(format!("{name} f64: output {o:e}, input grad {g:e}"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

/// The HDF5 reader gives exactly the variables Keras had when it saved the archive (recorded
/// next to it, under `keras/`, by the same fixture run): names, dtypes, shapes and every bit.
#[test]
fn hdf5_variables_equal_keras_variables_bit_for_bit() {
    for name in MODELS {
        for tag in ["f32", "f64"] {
            let archive = dir().join(format!("{name}.{tag}.keras"));
            let got = keras::archive::vars_from_h5(&weights_h5(&archive), name).unwrap();
            let all =
                weights::read_tensors(&dir().join(format!("{name}.{tag}.safetensors"))).unwrap();
            let want: BTreeMap<&str, &StoredTensor> = all
                .iter()
                .filter_map(|(k, t)| Some((k.strip_prefix("keras/")?, t)))
                .collect();
            assert_eq!(
                got.keys().map(String::as_str).collect::<Vec<_>>(),
                want.keys().copied().collect::<Vec<_>>(),
                "{name} {tag}"
            );
            for (k, t) in &got {
                assert_eq!(t.dtype, want[k.as_str()].dtype, "{name} {tag} {k}");
                assert_eq!(t.array, want[k.as_str()].array, "{name} {tag} {k}");
            }
        }
    }
}

/// `--keras-weights` also takes a bare `.weights.h5` (what `model.save_weights` writes).
#[test]
fn keras_weights_flag_takes_a_weights_h5_file() {
    let d = tempfile::tempdir().unwrap();
    let name = "bi_gru_sum";
    std::fs::write(
        d.path().join("m.weights.h5"),
        weights_h5(&dir().join(format!("{name}.f32.keras"))),
    )
    .unwrap();
    let json = dir().join(format!("{name}.json"));
    let o = seqgrad(
        &[
            "convert",
            "--from",
            json.to_str().unwrap(),
            "--keras-weights",
            "m.weights.h5",
            "--out",
            "conv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let got = weights::read_tensors(&d.path().join("conv/weights.safetensors")).unwrap();
    assert!(got.contains_key("layers.0.weight_ih_l0_reverse"));
    assert_eq!(got["layers.0.weight_ih_l0_reverse"].dtype, "F32");
}

/// A copy of `src` (a .keras zip) whose `model.weights.h5` is `h5`.
fn rezip(src: &Path, h5: &[u8], out: &Path) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut buf).unwrap();
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(if name == "model.weights.h5" { h5 } else { &buf })
            .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn truncated_or_corrupted_weights_h5_is_a_one_line_error_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let src = dir().join("bi_lstm_concat.f32.keras");
    let h5 = weights_h5(&src);
    // Past the superblock, inside the object headers: the root group's members cannot be read.
    let truncated = &h5[..h5.len() / 3];
    // No signature at all.
    let mut garbage = h5.clone();
    garbage[..8].copy_from_slice(b"NOTHDF5!");
    for (file, bytes) in [("trunc.keras", truncated), ("garbage.keras", &garbage[..])] {
        rezip(&src, bytes, &d.path().join(file));
        let o = seqgrad(&["convert", "--from", file, "--out", "conv"], d.path());
        fails_with(&o, &[file, "model.weights.h5"]);
        assert!(!d.path().join("conv").exists(), "{file}: nothing written");
    }
    let o = seqgrad(
        &["convert", "--from", "garbage.keras", "--out", "conv"],
        d.path(),
    );
    fails_with(&o, &["not an HDF5 file"]);
    let o = seqgrad(
        &["convert", "--from", "trunc.keras", "--out", "conv"],
        d.path(),
    );
    fails_with(&o, &["HDF5"]);
}

/// Every truncation (at a stride) and many random byte changes of a real `model.weights.h5`
/// either read or give an error; none panics. (What reads is then checked by `map_weights`.)
#[test]
fn malformed_hdf5_never_panics() {
    let h5 = weights_h5(&dir().join("stacked_rnns.f32.keras"));
    let mut cases: Vec<Vec<u8>> = (0..h5.len())
        .step_by(61)
        .map(|n| h5[..n].to_vec())
        .collect();
    let mut s: u64 = 0x5eed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    for _ in 0..1500 {
        let mut b = h5.clone();
        for _ in 0..3 {
            let i = next() as usize % b.len();
            b[i] = next() as u8;
        }
        cases.push(b);
    }
    let (mut errors, mut read) = (0, 0);
    for (i, c) in cases.iter().enumerate() {
        match std::panic::catch_unwind(|| keras::archive::vars_from_h5(c, "case")) {
            Ok(Ok(_)) => read += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert_eq!(msg.lines().count(), 1, "case {i}: {msg}");
                assert!(msg.contains("case"), "case {i}: {msg}");
                errors += 1;
            }
            Err(_) => panic!("case {i} panicked"),
        }
    }
    eprintln!(
        "malformed hdf5: {} cases, {errors} errors, {read} read",
        cases.len()
    );
    assert!(errors > 100, "{errors}");
}
