//! Element types and small array helpers.
//!
//! seqgrad is channels-last everywhere: a batch of sequences is `(batch, length, channels)`,
//! a batch of flat vectors is `(batch, features)`. Per-sample shapes (used by
//! [`crate::layers::Layer::output_shape`]) leave the batch axis out: `[length, channels]` or
//! `[features]`.

use std::fmt::{Debug, Display};
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, LinalgScalar, ScalarOperand};

/// The element types a model can run in: `f32` (training speed) or `f64` (gradient checks,
/// references).
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + std::iter::Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// safetensors dtype name (`"F32"` or `"F64"`).
    const DTYPE: &'static str;
    /// Converts an `f64` constant (exact for f64, rounded for f32).
    fn lit(x: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64c(self) -> f64;
    /// `σ(x)` for gates and activations: exact (libm) in f64; in f32 the branch-free
    /// [`sigmoid_f32`] (relative error ≤ 4e−7), which vectorises.
    fn gate_sigmoid(self) -> Self;
    /// `tanh x` for gates and activations: exact (libm) in f64; in f32 the branch-free
    /// [`tanh_f32`] (relative error ≤ 4e−7), which vectorises.
    fn gate_tanh(self) -> Self;
}

impl Float for f32 {
    const DTYPE: &'static str = "F32";
    #[inline]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64c(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn gate_sigmoid(self) -> Self {
        sigmoid_f32(self)
    }
    #[inline(always)]
    fn gate_tanh(self) -> Self {
        tanh_f32(self)
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "F64";
    #[inline]
    fn lit(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64c(self) -> f64 {
        self
    }
    #[inline]
    fn gate_sigmoid(self) -> Self {
        sigmoid(self)
    }
    #[inline]
    fn gate_tanh(self) -> Self {
        self.tanh()
    }
}

/// Forward-pass mode: `Train` enables dropout; `Eval` makes it the identity. Both keep the
/// caches backward needs (gradients of an eval-mode model: `seqgrad grad`, gradient checks).
/// `Infer` computes what `Eval` does but keeps no caches (a following backward returns
/// [`crate::Error::NoForward`]) and reuses its working buffers from one batch to the next:
/// prediction, evaluation and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
    Infer,
}

impl Mode {
    /// True when the forward pass must keep what backward needs (`Train`, `Eval`).
    #[inline]
    pub fn caches(self) -> bool {
        self != Mode::Infer
    }
}

pub use crate::error::fmt_shape;

/// L2 norm of an array, accumulated in f64.
pub fn l2_norm<T: Float>(a: &ArrayViewD<'_, T>) -> f64 {
    a.iter()
        .map(|v| {
            let x = v.to_f64c();
            x * x
        })
        .sum::<f64>()
        .sqrt()
}

/// Converts an array between element types.
pub fn cast<A: Float, B: Float>(a: &ArrayD<A>) -> ArrayD<B> {
    a.mapv(|v| B::lit(v.to_f64c()))
}

/// Views a dynamic-rank array as 1-D. For parameters whose rank is fixed when the layer is built
/// (loads check shapes), so a mismatch is a bug, not user input.
pub fn view1<T>(a: &ArrayD<T>) -> ndarray::ArrayView1<'_, T> {
    a.view().into_dimensionality().expect("array is 1-D") // ok: rank fixed at build time
}

/// Views a dynamic-rank array as 2-D (see [`view1`]).
pub fn view2<T>(a: &ArrayD<T>) -> ndarray::ArrayView2<'_, T> {
    a.view().into_dimensionality().expect("array is 2-D") // ok: rank fixed at build time
}

/// Views a dynamic-rank array as 3-D (see [`view1`]).
pub fn view3<T>(a: &ArrayD<T>) -> ndarray::ArrayView3<'_, T> {
    a.view().into_dimensionality().expect("array is 3-D") // ok: rank fixed at build time
}

/// Mutable 1-D view (see [`view1`]).
pub fn view1_mut<T>(a: &mut ArrayD<T>) -> ndarray::ArrayViewMut1<'_, T> {
    a.view_mut().into_dimensionality().expect("array is 1-D") // ok: rank fixed at build time
}

/// Mutable 2-D view (see [`view1`]).
pub fn view2_mut<T>(a: &mut ArrayD<T>) -> ndarray::ArrayViewMut2<'_, T> {
    a.view_mut().into_dimensionality().expect("array is 2-D") // ok: rank fixed at build time
}

/// Mutable 3-D view (see [`view1`]).
pub fn view3_mut<T>(a: &mut ArrayD<T>) -> ndarray::ArrayViewMut3<'_, T> {
    a.view_mut().into_dimensionality().expect("array is 3-D") // ok: rank fixed at build time
}

/// Reshapes an owned array whose element count is known to match (a layer's own buffers):
/// without copying when it is already in standard (row-major) layout, else with one copy.
pub fn reshape<T: Clone, D: ndarray::Dimension>(
    a: ndarray::Array<T, D>,
    shape: &[usize],
) -> ArrayD<T> {
    let a = if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    };
    a.into_shape_with_order(ndarray::IxDyn(shape))
        .expect("element count matches") // ok: sizes derived from the same shapes
}

/// An owned array of `shape` from a row-major vector, without copying.
pub fn from_vec<T>(v: Vec<T>, shape: &[usize]) -> crate::error::Result<ArrayD<T>> {
    let n = v.len();
    ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).map_err(|_| crate::error::Error::Shape {
        what: "layer buffer".into(),
        expected: fmt_shape(shape),
        got: format!("{n} elements"),
    })
}

/// A row-major owned copy of `x` (one copy) with the same number of elements in `shape`.
pub fn owned_as<T: Clone>(
    x: &ArrayViewD<'_, T>,
    shape: &[usize],
) -> crate::error::Result<ArrayD<T>> {
    let v: Vec<T> = match x.as_slice() {
        Some(s) => s.to_vec(),
        None => x.iter().cloned().collect(),
    };
    from_vec(v, shape)
}

/// [`owned_as`] into `buf`'s memory when it has exactly the elements needed (a recycled output:
/// no fresh zeroed pages), else into new memory.
///
/// # Shapes
/// - `x`: any layout; `shape`: same element count; returns `shape`, row-major.
pub fn owned_as_in<T: Clone>(
    x: &ArrayViewD<'_, T>,
    shape: &[usize],
    mut buf: Vec<T>,
) -> crate::error::Result<ArrayD<T>> {
    if buf.len() != x.len() {
        return owned_as(x, shape);
    }
    match x.as_slice() {
        Some(s) => buf.clone_from_slice(s),
        None => buf
            .iter_mut()
            .zip(x.iter())
            .for_each(|(o, v)| *o = v.clone()),
    }
    from_vec(buf, shape)
}

/// A batched shape as errors print it: `(batch, 60, 4)` for the per-sample shape `[60, 4]`.
///
/// A per-sample `[0, C]` is a sequence of any length (a `null`-length model) and shows as
/// `(batch, length, C)`.
pub fn fmt_batched(per_sample: &[usize]) -> String {
    let mut parts = vec!["batch".to_string()];
    match per_sample {
        [0, c] => parts.extend(["length".to_string(), c.to_string()]),
        _ => parts.extend(per_sample.iter().map(|d| d.to_string())),
    }
    format!("({})", parts.join(", "))
}

/// True when `shape` is `(batch, …per_sample)`. A per-sample `[0, C]` (the shape seqgrad
/// reports for a `null`-length model) matches `(batch, L, C)` for any length `L ≥ 1`.
pub fn is_batched(per_sample: &[usize], shape: &[usize]) -> bool {
    match (per_sample, shape) {
        ([0, c], [_, l, sc]) => *l > 0 && c == sc,
        _ => shape.len() == per_sample.len() + 1 && shape[1..] == per_sample[..],
    }
}

/// Checks that an array is `(batch, …per_sample)`; `what` names it in the error.
pub fn check_batched(
    what: &str,
    per_sample: &[usize],
    shape: &[usize],
) -> crate::error::Result<()> {
    if is_batched(per_sample, shape) {
        Ok(())
    } else {
        Err(crate::error::Error::Shape {
            what: what.into(),
            expected: fmt_batched(per_sample),
            got: fmt_shape(shape),
        })
    }
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

// Scalar kernels: the f32 fast paths of the `Float` gates (and of `activation`).

/// `e^x` in f32 without libm, branch-free so loops over slices vectorise (Cephes' `expf`:
/// `x = n·ln 2 + r` with `n = round(x / ln 2)` by the 1.5·2²³ trick, `|r| ≤ ln 2 / 2`, a
/// degree-6 polynomial for `e^r`, then `2^n` put in the exponent bits). Inputs are clamped to
/// `[−87.3, 88.3]` (results `≈ 1.2e−38 … 2.2e38`; NaN stays NaN). Relative error ≤ 2.5e−7
/// against the exact value over `[−87, 88]` (test `fast_f32_functions_error_bounds`).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
pub fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
                                     // Comparisons are false for NaN, so NaN passes through unclamped.
    let x = if x > 88.3 { 88.3 } else { x };
    let x = if x < -87.3 { -87.3 } else { x };
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let ni = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let y = p * z + r + 1.0;
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// `σ(x) = 1 / (1 + e^{−x})` in f32 through [`exp_f32`], branch-free. Relative error ≤ 4e−7
/// for `σ(x) ≥ 1e−30`; absolute error below 1e−38 beyond (where `σ` underflows anyway).
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `tanh x` in f32, branch-free: Cephes' odd polynomial for `|x| < 0.625` (no cancellation near
/// 0), `sign(x)·(1 − 2 / (e^{2|x|} + 1))` beyond. Relative error ≤ 4e−7 everywhere (test
/// `fast_f32_functions_error_bounds`); `±1` for `|x| > 9`, NaN stays NaN.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let big = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 {
        small
    } else {
        big
    }
}

/// Defines an element-wise kernel that runs compiled for AVX2 when the CPU has it (checked at
/// run time), else for the crate's baseline target (x86-64: SSE2, 4 lanes of f32).
///
/// `wide_kernel! { fn name / body<T>(a: &mut [T], b: &[T]) { … } }` defines `body`, an
/// `#[inline(always)]` function with that block, and `name`, which calls `body` from a copy
/// compiled with `#[target_feature(enable = "avx2")]` when the CPU runs it, and from the
/// baseline copy otherwise. The loops then vectorise 8 lanes wide. Only the vector width
/// changes: no FMA is enabled and Rust never contracts `a * b + c` or reorders a sum on its
/// own, so every element gets the same operations in the same order, and every result is
/// bit-identical on every CPU and either path (`wide_kernels_give_the_baseline_bits` compares
/// `name` with `body` called directly). The one freedom left is a NaN's sign and payload,
/// which IEEE 754 leaves open: an operation on two NaNs may return either one's. A NaN stays
/// a NaN. Arguments are plain names (destructure inside the block).
macro_rules! wide_kernel {
    (
        $(#[$m:meta])*
        $vis:vis fn $name:ident / $body:ident <$T:ident>($($arg:ident: $ty:ty),* $(,)?) $block:block
    ) => {
        $(#[$m])*
        #[inline(never)]
        $vis fn $name<$T: $crate::tensor::Float>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn wide<$T: $crate::tensor::Float>($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if $crate::tensor::wide_enabled() {
                    // SAFETY: `wide_enabled` checked that this CPU runs AVX2 instructions.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }

        #[doc = concat!("The loop of [`", stringify!($name), "`], inlined into both of its copies.")]
        #[inline(always)]
        $vis fn $body<$T: $crate::tensor::Float>($($arg: $ty),*) $block
    };
}
pub(crate) use wide_kernel;

/// Whether the AVX2 copies of [`wide_kernel!`]s run: the CPU has AVX2 and `SEQGRAD_NO_AVX2` is
/// unset (that variable forces the baseline copies, to compare the two).
#[inline]
pub fn wide_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::env::var_os("SEQGRAD_NO_AVX2").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Logistic sigmoid, stable for large |x|.
#[inline]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn reshape_moves_a_standard_layout_array_without_copying() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
        let ptr = a.as_ptr();
        let b = reshape(a, &[2, 6]);
        assert_eq!(b.as_ptr(), ptr, "standard layout must not be copied");
        assert_eq!(b.shape(), &[2, 6]);
        assert_eq!(b[[1, 0]], 6.0);
        // A transposed (non-standard) array is copied once into row-major order.
        let t = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64).reversed_axes();
        let c = reshape(t, &[12]);
        assert_eq!(c[[1]], 4.0);
        assert_eq!(c[[3]], 1.0);
    }

    #[test]
    fn owned_as_copies_any_layout_in_row_major_order() {
        let t = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64).reversed_axes();
        let o = owned_as(&t.view().into_dyn(), &[6]).unwrap();
        assert_eq!(
            o.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert!(from_vec(vec![1.0f32; 5], &[2, 3]).is_err());
        // The same into a recycled buffer (stale contents), and into a wrong-sized one.
        let o2 = owned_as_in(&t.view().into_dyn(), &[6], vec![9.0; 6]).unwrap();
        assert_eq!(o2, o);
        let o3 = owned_as_in(&t.view().into_dyn(), &[6], vec![9.0; 4]).unwrap();
        assert_eq!(o3, o);
    }
}
