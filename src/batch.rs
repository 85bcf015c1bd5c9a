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

use ndarray::{Array1, Array2, Array3, ArrayBase, ArrayD, ArrayView2, ArrayViewD, Data, Dimension};

use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::tensor::{Float, Mode};

/// One-hot targets `(batch, classes)` from class indices.
///
/// # Shapes
/// - `classes`: `(batch)`, each `< n_classes`; returns `(batch, n_classes)`.
pub fn one_hot_targets<T: Float>(classes: &[usize], n_classes: usize) -> Result<ArrayD<T>> {
    let mut y = Array2::<T>::zeros((classes.len(), n_classes));
    for (i, &c) in classes.iter().enumerate() {
        if c >= n_classes {
            return Err(Error::Usage(format!(
                "target #{i} is class {c}, but there are only {n_classes} classes (0..{n_classes})"
            )));
        }
        y[[i, c]] = T::one();
    }
    Ok(y.into_dyn())
}

/// Targets for a loss: an array like the model output (one-hot, probabilities, multi-hot, 0/1
/// for a binary head, or regression values), or **class indices**, one per output row.
///
/// Class indices become one-hot rows over the last axis of the prediction; for a single-output
/// model (a binary head, `(batch, 1)`) they must be 0 or 1 and are the target itself.
/// Per-time-step outputs `(batch, length, classes)` take `batch·length` indices in row-major
/// order. Made with `From`: `&[usize]`, `&Vec<usize>`, `&Array1<usize>` give indices;
/// `&ArrayD<T>`, `&Array2<T>`, `&Array3<T>`, `ArrayViewD<T>`, `ArrayView2<T>` give an array.
///
/// ```
/// use seqgrad::{batch::Targets, ndarray::{array, Array1}, Loss};
/// # fn main() -> seqgrad::Result<()> {
/// let logits = array![[2.0f64, -1.0, 0.5], [0.1, 0.2, 3.0]].into_dyn();
/// let one_hot = array![[1.0f64, 0.0, 0.0], [0.0, 0.0, 1.0]];
/// let (a, ga) = Loss::CrossEntropy.compute_targets(logits.view(), &one_hot)?;
/// let (b, gb) = Loss::CrossEntropy.compute_targets(logits.view(), &[0usize, 2][..])?;
/// let (c, _) = Loss::CrossEntropy.compute_targets(logits.view(), &Array1::from(vec![0usize, 2]))?;
/// assert_eq!((a, &ga), (b, &gb));
/// assert_eq!(a, c);
/// // a binary head: one logit per record, classes 0/1
/// let z = array![[0.3f64], [-1.2]].into_dyn();
/// let (l, _) = Loss::BinaryCrossEntropy.compute_targets(z.view(), &vec![1usize, 0])?;
/// assert!(l > 0.0);
/// // an index out of range is an error, not a panic
/// assert!(Loss::CrossEntropy.compute_targets(logits.view(), &[0usize, 3][..]).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub enum Targets<'a, T> {
    /// An array of the prediction's shape.
    Array(ArrayViewD<'a, T>),
    /// One class index per output row.
    Classes(std::borrow::Cow<'a, [usize]>),
}

impl<T: Float> Targets<'_, T> {
    /// The targets as an array of `shape` (the prediction's shape): indices one-hot over the
    /// last axis (or as 0/1 values when the last axis has one unit); an array must have `shape`.
    ///
    /// # Shapes
    /// - `shape`: `(batch, …, outputs)`; returns `shape`.
    pub fn to_array(&self, shape: &[usize]) -> Result<ArrayD<T>> {
        match self {
            Targets::Array(a) => {
                if a.shape() != shape {
                    return Err(Error::Shape {
                        what: "loss target".into(),
                        expected: crate::tensor::fmt_shape(shape),
                        got: crate::tensor::fmt_shape(a.shape()),
                    });
                }
                Ok(a.to_owned())
            }
            Targets::Classes(c) => {
                let k = shape.last().copied().unwrap_or(0);
                let rows = shape.iter().product::<usize>() / k.max(1);
                if k == 0 || c.len() != rows {
                    return Err(Error::Usage(format!(
                        "{} class indices for a prediction of shape {}: give one index per row (of the last axis)",
                        c.len(),
                        crate::tensor::fmt_shape(shape)
                    )));
                }
                let mut y = ArrayD::<T>::zeros(ndarray::IxDyn(shape));
                let flat = y
                    .as_slice_mut()
                    .ok_or_else(|| Error::Usage("targets: a fresh array is contiguous".into()))?;
                for (i, &class) in c.iter().enumerate() {
                    match (k, class) {
                        (1, 0) => {}
                        (1, 1) => flat[i] = T::one(),
                        (1, _) => {
                            return Err(Error::Usage(format!(
                                "target #{i} is class {class}, but a single-output (binary) model takes classes 0 and 1"
                            )))
                        }
                        (_, c) if c < k => flat[i * k + c] = T::one(),
                        _ => {
                            return Err(Error::Usage(format!(
                                "target #{i} is class {class}, but there are only {k} classes (0..{k})"
                            )))
                        }
                    }
                }
                Ok(y)
            }
        }
    }
}

impl<'a, T> From<&'a [usize]> for Targets<'a, T> {
    fn from(c: &'a [usize]) -> Self {
        Targets::Classes(std::borrow::Cow::Borrowed(c))
    }
}

impl<'a, T> From<&'a Vec<usize>> for Targets<'a, T> {
    fn from(c: &'a Vec<usize>) -> Self {
        Targets::Classes(std::borrow::Cow::Borrowed(c.as_slice()))
    }
}

impl<'a, T> From<&'a Array1<usize>> for Targets<'a, T> {
    fn from(c: &'a Array1<usize>) -> Self {
        match c.as_slice() {
            Some(s) => Targets::Classes(std::borrow::Cow::Borrowed(s)),
            None => Targets::Classes(std::borrow::Cow::Owned(c.to_vec())),
        }
    }
}

impl<'a, T> From<ArrayViewD<'a, T>> for Targets<'a, T> {
    fn from(a: ArrayViewD<'a, T>) -> Self {
        Targets::Array(a)
    }
}

impl<'a, T> From<ArrayView2<'a, T>> for Targets<'a, T> {
    fn from(a: ArrayView2<'a, T>) -> Self {
        Targets::Array(a.into_dyn())
    }
}

impl<'a, T> From<&'a ArrayD<T>> for Targets<'a, T> {
    fn from(a: &'a ArrayD<T>) -> Self {
        Targets::Array(a.view())
    }
}

impl<'a, T> From<&'a Array2<T>> for Targets<'a, T> {
    fn from(a: &'a Array2<T>) -> Self {
        Targets::Array(a.view().into_dyn())
    }
}

impl<'a, T> From<&'a Array3<T>> for Targets<'a, T> {
    fn from(a: &'a Array3<T>) -> Self {
        Targets::Array(a.view().into_dyn())
    }
}

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

/// Anything that views as a batch: every owned array or view of any dimension, and a
/// reference to one. [`Sequential::forward`], [`Sequential::forward_logits`],
/// [`Sequential::backward`] and [`Sequential::backward_logits`] take it, so they are called
/// on an `Array3`, an `ArrayView3`, an `ArrayD`, `&Array3` … alike.
///
/// ```
/// use seqgrad::{dna_batch, ndarray::{s, Array3}, Mode, Sequential};
/// # fn main() -> seqgrad::Result<()> {
/// let mut model = Sequential::<f32>::from_file(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/models/seed.json"), 42)?;
/// let x: Array3<f32> = dna_batch(&["ACGT".repeat(10), "TTGA".repeat(10), "GATC".repeat(10)])?;
/// let a = model.forward(&x, Mode::Eval)?;                      // &Array3
/// let b = model.forward(x.slice(s![0..2, .., ..]), Mode::Eval)?; // an ArrayView3
/// let c = model.forward(x.clone().into_dyn(), Mode::Eval)?;      // an ArrayD
/// assert_eq!(a.shape(), &[3, 2]);
/// assert_eq!(b.shape(), &[2, 2]);
/// assert!(a.slice(s![0..2, ..]).iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
/// assert_eq!(a, c);
/// // backward takes any array too: ∂L/∂output of ones
/// let dx = model.backward(ndarray::Array2::<f32>::ones((3, 2)))?;
/// assert_eq!(dx.shape(), x.shape());
/// # Ok(())
/// # }
/// ```
pub trait AsBatch<T> {
    fn as_batch(&self) -> ArrayViewD<'_, T>;
}

impl<T, A: AsBatch<T> + ?Sized> AsBatch<T> for &A {
    fn as_batch(&self) -> ArrayViewD<'_, T> {
        (**self).as_batch()
    }
}

impl<T, S: Data<Elem = T>, D: Dimension> AsBatch<T> for ArrayBase<S, D> {
    fn as_batch(&self) -> ArrayViewD<'_, T> {
        self.view().into_dyn()
    }
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
