//! Conveniences for calling seqgrad as a library: DNA strings to an input batch, class indices
//! as targets ([`Targets`], [`one_hot_targets`]), and running a model on any `ndarray` array (`Array3`, `ArrayView3`,
//! `ArrayD` …) without converting it first.
//!
//! ```
//! use seqgrad::{batch::{dna_batch, one_hot_targets, Predict}, loss::Loss, Mode, Sequential};
//! # fn main() -> seqgrad::Result<()> {
//! let mut model = Sequential::<f32>::from_file(
//!     concat!(env!("CARGO_MANIFEST_DIR"), "/models/seed.json"), 42)?;
//! let x = dna_batch::<f32>(&["ACGT".repeat(10), "TTGA".repeat(10)])?; // (2, 40, 4)
//! let probs = model.predict(&x)?;                                      // any ndarray array
//! assert_eq!(probs.shape(), &[2, 2]);
//! let y = one_hot_targets::<f32>(&[1, 0], 2)?;                         // class indices → one-hot
//! let logits = model.forward_logits(x.view().into_dyn(), Mode::Train)?;
//! let (loss, grad) = Loss::for_head(model.head()).compute(logits.view(), y.view())?;
//! assert!(loss > 0.0);
//! model.zero_grad();
//! let dx = model.backward_logits(grad.view())?;
//! assert_eq!(dx.shape(), x.shape());
//! # Ok(())
//! # }
//! ```

use ndarray::{Array3, ArrayD};

use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::{Float, Mode};

// Targets and `AsBatch` live on the lower floors (`targets`, `tensor`) where the loss, the data
// readers and the model use them; re-exported here with the rest of the conveniences.
pub use crate::targets::{one_hot_targets, Targets};
pub use crate::tensor::AsBatch;

/// One-hot DNA batch `(batch, length, 4)` (A, C, G, T; IUPAC codes as fractions) from strings
/// of one length.
///
/// # Shapes
/// - returns `(sequences.len(), length, 4)`.
pub fn dna_batch<T: Float>(sequences: &[impl AsRef<str>]) -> Result<Array3<T>> {
    let len = sequences.first().map(|s| s.as_ref().len()).unwrap_or(0);
    let mut x = Array3::<T>::zeros((sequences.len(), len, 4));
    for (i, s) in sequences.iter().enumerate() {
        let s = s.as_ref();
        if s.len() != len {
            return Err(Error::Usage(format!(
                "sequence #{i} has length {} but sequence #0 has {len}; a batch needs one length",
                s.len()
            )));
        }
        let one = crate::data::dna::one_hot::<T>(s).map_err(|(pos, ch)| {
            Error::Usage(format!(
                "sequence #{i}: {ch:?} at position {} is not a DNA letter",
                pos + 1
            ))
        })?;
        x.index_axis_mut(ndarray::Axis(0), i).assign(&one);
    }
    Ok(x)
}

/// Runs a model on any [`AsBatch`] input.
pub trait Predict<T: Float> {
    /// The model's output (probabilities for a softmax/sigmoid head) in eval mode.
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    fn predict(&mut self, x: &impl AsBatch<T>) -> Result<ArrayD<T>>;
}

impl<T: Float> Predict<T> for Sequential<T> {
    fn predict(&mut self, x: &impl AsBatch<T>) -> Result<ArrayD<T>> {
        self.forward(x, Mode::Eval)
    }
}
