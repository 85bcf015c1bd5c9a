//! Training targets as the loss takes them: one-hot or multi-label rows, or class indices
//! ([`Targets`]), and [`one_hot_targets`] to turn indices into rows.

use ndarray::{Array1, Array2, Array3, ArrayD, ArrayView2, ArrayViewD};

use crate::error::{Error, Result};
use crate::tensor::Float;

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
