//! Train the bundled splice model on (part of) the bundled splice data from Rust, then
//! evaluate it: the library equivalent of `seqgrad train`, in a few lines.
//!
//! `cargo run --release --example train_splice` (the whole data set, 30 epochs with early
//! stopping); `cargo test --example train_splice` runs a 2-epoch version on 640 records.

use seqgrad::data::{self, split, LengthPolicy, ReadOptions};
use seqgrad::train::{self, Progress, TrainConfig};
use seqgrad::Sequential;

/// Trains on `records` records (all when `None`) for `epochs`; returns the test accuracy.
fn run(records: Option<usize>, epochs: usize, progress: Progress) -> seqgrad::Result<f64> {
    let root = env!("CARGO_MANIFEST_DIR");
    let (mut ds, labels) = data::load_labelled::<f32>(
        format!("{root}/data/splice.csv").as_ref(),
        &ReadOptions::default(),
        LengthPolicy::default(),
        None,
    )?;
    if let Some(n) = records {
        // Every 5th record: all three classes, a smaller set.
        let idx: Vec<usize> = (0..ds.len()).step_by(5).take(n).collect();
        ds = ds.subset(&idx);
    }
    let parts = split::stratified(&ds.strata(), 0.1, 0.1, 42)?;
    let (tr, va, te) = (
        ds.subset(&parts.train),
        ds.subset(&parts.valid),
        ds.subset(&parts.test),
    );
    let mut model = Sequential::<f32>::from_file(format!("{root}/models/splice.json"), 42)?;
    let cfg = TrainConfig {
        epochs,
        progress,
        ..Default::default()
    };
    let history = train::fit(&mut model, &tr, Some(&va), false, &cfg)?;
    let test = train::evaluate(&mut model, &te, 256, false)?;
    println!(
        "classes {:?}; {} epochs; test loss {:.4}, metrics {:?}",
        labels.classes,
        history.column("epoch").map(|e| e.len()).unwrap_or(0),
        test.loss,
        test.metrics
    );
    let acc = test
        .metrics
        .iter()
        .find(|(k, _)| k == "accuracy")
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN);
    Ok(acc)
}

fn main() -> seqgrad::Result<()> {
    let acc = run(None, 30, Progress::Auto)?;
    println!("test accuracy {acc:.4}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn trains_a_little_and_beats_chance() {
        let acc = super::run(Some(640), 2, seqgrad::train::Progress::Quiet).unwrap();
        // Three classes: chance is about 0.33 (N is about half the data).
        assert!(acc > 0.4, "test accuracy {acc}");
    }
}
