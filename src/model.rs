//! [`Sequential`]: a stack of layers whose shapes are validated when it is built.
//!
//! Building first plans the model ([`crate::spec::plan`], the one shape planner: every layer
//! kind's rule gives its output shape or a [`ShapeIssue`], which becomes a [`BuildError`] naming
//! the layer index and type, the shape it needs, the shape it got, which layer produced that
//! shape, and the fix), then builds each layer for the input the plan found.
//!
//! A `null` input length (`input_shape: [null, C]`) builds a model for any length (see
//! [`crate::spec::plan`] for how the shapes are checked). [`Sequential::forward_logits_masked`] runs a batch of
//! records padded to the batch's length with per-record lengths (PyTorch's
//! `pack_padded_sequence` semantics; `docs/variable-length.md`).
//!
//! A final `softmax`/`sigmoid` is detached from the last layer into the model's *head*: `forward`
//! still returns probabilities, while `forward_logits`/`backward_logits` let a loss work on
//! logits (numerically stable cross-entropy).

use ndarray::{ArrayD, ArrayViewD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::activation::Activation;
use crate::error::{BuildError, Error, Result, ShapeIssue};
use crate::layers::{Layer, Param};
use crate::spec::{LayerSpec, ModelSpec, Plan};

pub use crate::spec::plan::{fmt_dims, group};
use crate::tensor::AsBatch;
use crate::tensor::{check_batched, fmt_shape, l2_norm, Float, Mode};

/// A sequential model.
pub struct Sequential<T: Float> {
    spec: ModelSpec,
    layers: Vec<Box<dyn Layer<T>>>,
    /// Per-sample output shape of every layer (an unknown length written as 0).
    shapes: Vec<Vec<usize>>,
    /// Per-sample output shape of every layer, `None` for an unknown (`null`) length.
    dims: Vec<Vec<Option<usize>>>,
    /// The input shape with an unknown length written as 0.
    input0: Vec<usize>,
    /// The shapes and parameters the model was built from.
    plan: Plan,
    /// Per-record lengths of the last masked forward pass: the input's, then every layer's
    /// output's (`None` for a layer whose output has no time axis). `None` after an unmasked
    /// forward.
    masks: Option<Masks>,
    /// Lengths the [`Layer`] impl's `forward` uses (set with [`Layer::set_lengths`]), so a
    /// model can be checked as a layer (gradient checks) on a masked batch.
    layer_lengths: Option<Vec<usize>>,
    head: Option<Activation>,
    /// Cached head output `(batch, …output)`, for backward through the head.
    head_out: Option<ArrayD<T>>,
    /// ‖∂L/∂output‖ of every layer from the last backward pass (gradient-flow studies).
    grad_norms: Vec<f64>,
    /// Whether backward computes ∂L/∂input of the first layer (the data). See
    /// [`Sequential::set_need_input_grad`].
    need_input_grad: bool,
}

/// Per-record lengths of a masked forward pass: the input's, then every layer's output's
/// (`None` where the output has no time axis).
type Masks = (Vec<usize>, Vec<Option<Vec<usize>>>);

/// A per-layer output observer (`forward_logits_observed`).
type Observer<'a, T> = &'a mut dyn FnMut(usize, &ArrayD<T>);

/// Builds one layer from its spec for a per-sample input shape (the registry's
/// [`LayerSpec::build`]).
pub fn build_layer<T: Float>(
    spec: &LayerSpec,
    input: &[usize],
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Box<dyn Layer<T>>, ShapeIssue> {
    spec.build(input, seed, rng)
}

impl<T: Float> Sequential<T> {
    /// Builds and validates a model; `seed` drives weight initialisation and dropout masks.
    ///
    /// With a `null` input length every layer is validated with the length unknown: a layer
    /// whose flat output would depend on the length (`flatten`) is a [`BuildError`] with
    /// [`ShapeIssue::NeedsFixedLength`] saying what to use instead.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Self> {
        // The shapes, and any error, come from the one planner; the layers are then built for
        // the inputs it found.
        let plan = crate::spec::plan(spec)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers: Vec<Box<dyn Layer<T>>> = Vec::with_capacity(spec.layers.len());
        for (index, lp) in plan.layers.iter().enumerate() {
            let layer_seed =
                seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index as u64 + 1));
            let input = plan.build_input(index);
            let layer = lp
                .spec
                .build::<T>(&input, layer_seed, &mut rng)
                .map_err(|issue| BuildError {
                    index,
                    kind: lp.spec.kind(),
                    input: lp.input.clone(),
                    issue,
                    hint: None,
                })?;
            layers.push(layer);
        }
        let head = layers.last_mut().and_then(|l| l.take_output_activation());
        let dims: Vec<Vec<Option<usize>>> =
            plan.layers.iter().map(|l| l.output_dims.clone()).collect();
        Ok(Sequential {
            spec: spec.clone(),
            layers,
            shapes: plan.layers.iter().map(|l| l.output.clone()).collect(),
            dims,
            input0: plan.input_shape.clone(),
            plan,
            masks: None,
            layer_lengths: None,
            head,
            head_out: None,
            grad_norms: Vec::new(),
            need_input_grad: true,
        })
    }

    /// Parses and builds a model file.
    pub fn from_file(path: impl AsRef<std::path::Path>, seed: u64) -> Result<Self> {
        Self::from_spec(&ModelSpec::from_file(path)?, seed)
    }

    /// Starts a model in Rust: `Sequential::builder(&[60, 4]).add(...).build(seed)`.
    pub fn builder(input_shape: &[usize]) -> Builder {
        Builder {
            spec: ModelSpec::fixed(input_shape),
        }
    }

    /// Starts a model for sequences of any length with `channels` channels (the model file's
    /// `"input_shape": [null, channels]`):
    /// `Sequential::builder_any_length(4).add(...).build(seed)`.
    pub fn builder_any_length(channels: usize) -> Builder {
        Builder {
            spec: ModelSpec::any_length(channels),
        }
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The per-sample input shape. For a model of any length (`[null, C]`) the length is
    /// written as 0, `[0, C]` (never a valid fixed length); see [`Sequential::input_len`] and
    /// [`Sequential::input_dims`].
    pub fn input_shape(&self) -> &[usize] {
        &self.input0
    }

    /// The per-sample input shape with `None` for an unknown (`null`) length.
    pub fn input_dims(&self) -> &[Option<usize>] {
        &self.spec.input_shape
    }

    /// The fixed input length of a sequence model, or `None` when the model accepts any length
    /// (`input_shape: [null, C]`) — and for a flat `[features]` model, which has no length
    /// (tell them apart with [`Sequential::is_variable_length`]).
    pub fn input_len(&self) -> Option<usize> {
        match self.spec.input_shape.as_slice() {
            [l, _] => *l,
            _ => None,
        }
    }

    /// Whether the model accepts sequences of any length (`input_shape: [null, C]`).
    pub fn is_variable_length(&self) -> bool {
        self.spec.is_variable_length()
    }

    /// Per-sample output shape of the model (an unknown length written as 0).
    pub fn output_shape(&self) -> &[usize] {
        self.shapes
            .last()
            .map(|s| s.as_slice())
            .unwrap_or(&self.input0)
    }

    /// Per-sample output shape of every layer (an unknown length written as 0).
    pub fn layer_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Per-sample output shape of every layer, `None` for an unknown length.
    pub fn layer_dims(&self) -> &[Vec<Option<usize>>] {
        &self.dims
    }

    pub fn layers(&self) -> &[Box<dyn Layer<T>>] {
        &self.layers
    }

    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<T>>] {
        &mut self.layers
    }

    /// The softmax/sigmoid detached from the last layer, if any.
    pub fn head(&self) -> Option<Activation> {
        self.head
    }

    /// Every parameter with its full PyTorch-style name `layers.{i}.{name}`, in layer order.
    pub fn named_params(&self) -> Vec<(String, &Param<T>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.params()
                    .into_iter()
                    .map(move |p| (format!("layers.{i}.{}", p.name), p))
            })
            .collect()
    }

    /// Mutable parameters with their full names.
    pub fn named_params_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        self.layers
            .iter_mut()
            .enumerate()
            .flat_map(|(i, l)| {
                l.params_mut()
                    .into_iter()
                    .map(move |p| (format!("layers.{i}.{}", p.name), p))
            })
            .collect()
    }

    /// Mutable parameters in the model's order (that of [`Sequential::named_params`]), without
    /// building their names: what the optimizer steps over every batch.
    pub fn params_in_order_mut(&mut self) -> Vec<&mut Param<T>> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    /// Names and shapes of the parameters, in the model's order.
    pub fn param_names_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.named_params()
            .into_iter()
            .map(|(n, p)| (n, p.value.shape().to_vec()))
            .collect()
    }

    /// Total number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self) {
        for l in &mut self.layers {
            l.zero_grad();
        }
    }

    /// Tells dropout layers the training step (their masks are a function of seed and step).
    pub fn set_step(&mut self, step: u64) {
        for l in &mut self.layers {
            l.set_step(step);
        }
    }

    /// Turns on per-time-step gradient-norm recording in every recurrent layer.
    pub fn set_record_step_grads(&mut self, on: bool) {
        for l in &mut self.layers {
            l.set_record_step_grads(on);
        }
    }

    /// Whether `backward`/`backward_logits` compute the gradient with respect to the model input
    /// (the data). On by default (`seqgrad grad`, saliency and gradient checks need it);
    /// training turns it off, which saves the first layer's input-gradient GEMM. When off,
    /// backward returns an all-zero array of the input's shape instead.
    pub fn set_need_input_grad(&mut self, on: bool) {
        self.need_input_grad = on;
        if let Some(first) = self.layers.first_mut() {
            first.set_need_input_grad(on);
        }
    }

    /// See [`Sequential::set_need_input_grad`].
    pub fn need_input_grad(&self) -> bool {
        self.need_input_grad
    }

    /// ‖∂L/∂output_i‖ for every layer i, from the last backward pass.
    pub fn output_grad_norms(&self) -> &[f64] {
        &self.grad_norms
    }

    fn check_input(&self, x: &ArrayViewD<'_, T>) -> Result<()> {
        match self.spec.input_shape.as_slice() {
            [None, Some(c)] => match x.shape() {
                &[_, l, xc] if l > 0 && xc == *c => Ok(()),
                other => Err(Error::Shape {
                    what: "model input".into(),
                    expected: format!("(batch, length ≥ 1, {c})"),
                    got: fmt_shape(other),
                }),
            },
            _ => check_batched("model input", &self.input0, x.shape()),
        }
    }

    /// Checks per-record lengths against a batch `(B, L, C)`.
    fn check_lengths(&self, x: &ArrayViewD<'_, T>, lengths: &[usize]) -> Result<()> {
        let &[b, l, _] = x.shape() else {
            return Err(Error::Lengths(format!(
                "per-record lengths need a batch of sequences (batch, length, channels) but the \
                 input is {}",
                fmt_shape(x.shape())
            )));
        };
        if lengths.len() != b {
            return Err(Error::Lengths(format!(
                "{} lengths for a batch of {b} records",
                lengths.len()
            )));
        }
        if let Some((r, &n)) = lengths.iter().enumerate().find(|(_, &n)| n == 0 || n > l) {
            return Err(Error::Lengths(format!(
                "record {r} has length {n}, outside 1..={l} (the batch's padded length)"
            )));
        }
        Ok(())
    }

    /// Runs every layer but the head: logits when the model ends in softmax/sigmoid.
    /// Every record is taken as full length (the `None` case of
    /// [`Sequential::forward_logits_masked`]).
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward_logits(&mut self, x: impl AsBatch<T>, mode: Mode) -> Result<ArrayD<T>> {
        self.run(x.as_batch(), None, mode, None)
    }

    /// Runs every layer but the head on a batch of records padded to the batch's length,
    /// record `b` having `lengths[b]` real positions (1 ..= padded length; `None` = all full
    /// length). PyTorch's `pack_padded_sequence` semantics: for every real position a record's
    /// outputs (and, after [`Sequential::backward_logits`], its input gradient and its share of
    /// the parameter gradients) are those of the record run alone at its own length. Padded
    /// positions of the input are ignored (read as zeros), sequence outputs are zero past each
    /// record's output length, and the input gradient is zero there. A model of any length
    /// (`[null, C]`) takes any padded length; a fixed-length model still checks its length.
    ///
    /// Errors: [`Error::Lengths`] for lengths of the wrong count, a 0 or a length past the
    /// padded length, or a record too short for a layer (naming the record and the minimal
    /// length).
    ///
    /// # Shapes
    /// - `x`: `(batch, length, channels)`; `lengths`: `(batch)`; returns
    ///   `(batch, …output_shape)` with the padded length where the output has one.
    pub fn forward_logits_masked(
        &mut self,
        x: impl AsBatch<T>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<ArrayD<T>> {
        self.run(x.as_batch(), lengths, mode, None)
    }

    /// Like [`Sequential::forward_logits`], calling `observe(i, output)` with every layer's
    /// output (training-time recorders: activation statistics).
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward_logits_observed(
        &mut self,
        x: impl AsBatch<T>,
        mode: Mode,
        observe: &mut dyn FnMut(usize, &ArrayD<T>),
    ) -> Result<ArrayD<T>> {
        self.run(x.as_batch(), None, mode, Some(observe))
    }

    /// [`Sequential::forward_logits_observed`] with per-record lengths (see
    /// [`Sequential::forward_logits_masked`]).
    ///
    /// # Shapes
    /// - `x`: `(batch, length, channels)`; `lengths`: `(batch)`.
    pub fn forward_logits_observed_masked(
        &mut self,
        x: impl AsBatch<T>,
        lengths: Option<&[usize]>,
        mode: Mode,
        observe: &mut dyn FnMut(usize, &ArrayD<T>),
    ) -> Result<ArrayD<T>> {
        self.run(x.as_batch(), lengths, mode, Some(observe))
    }

    /// The smallest input length for which every layer up to `upto` keeps at least one
    /// position (for the too-short error): output lengths grow with the input length, so
    /// doubling then bisection finds it.
    fn min_input_len(&self, upto: usize, padded: usize) -> usize {
        let fits = |n: usize| {
            let mut cur = vec![n];
            self.layers[..=upto]
                .iter()
                .all(|l| match l.output_lengths(&cur) {
                    Ok(o) if o.iter().all(|&v| v > 0) => {
                        cur = o;
                        true
                    }
                    _ => false,
                })
        };
        let mut hi = padded.max(1);
        while !fits(hi) {
            match hi.checked_mul(2) {
                Some(h) if h <= 1 << 40 => hi = h,
                _ => return hi,
            }
        }
        let mut lo = 0; // !fits(lo) (a length of 0 never fits)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    fn run(
        &mut self,
        x: ArrayViewD<'_, T>,
        lengths: Option<&[usize]>,
        mode: Mode,
        mut observe: Option<Observer<'_, T>>,
    ) -> Result<ArrayD<T>> {
        // A head output from an earlier `forward` no longer matches the layers' caches.
        self.head_out = None;
        self.masks = None;
        self.check_input(&x)?;
        let Some(lens) = lengths else {
            for l in &mut self.layers {
                l.set_lengths(None);
            }
            let mut h: Option<ArrayD<T>> = None;
            for i in 0..self.layers.len() {
                let out = match &h {
                    Some(h) => self.layers[i].forward(h.view(), mode)?,
                    None => self.layers[i].forward(x.view(), mode)?,
                };
                if let Some(obs) = observe.as_mut() {
                    obs(i, &out);
                }
                let spent = h.replace(out);
                // Inference: the layer before may reuse its output's memory next pass.
                if let (Mode::Infer, Some(spent), Some(prev)) = (mode, spent, i.checked_sub(1)) {
                    self.layers[prev].recycle(spent);
                }
            }
            return Ok(h.unwrap_or_else(|| x.to_owned()));
        };
        self.check_lengths(&x, lens)?;
        let padded = x.shape()[1];
        let mut h = x.to_owned();
        zero_past(&mut h, lens);
        let mut cur = lens.to_vec();
        let mut outs: Vec<Option<Vec<usize>>> = Vec::with_capacity(self.layers.len());
        for i in 0..self.layers.len() {
            let next = match self.layers[i].output_lengths(&cur) {
                Ok(o) => o,
                Err((r, _)) => return Err(self.too_short(i, r, lens[r], padded)),
            };
            if let Some(r) = next.iter().position(|&n| n == 0) {
                return Err(self.too_short(i, r, lens[r], padded));
            }
            let l = &mut self.layers[i];
            l.set_lengths(Some(&cur));
            h = l.forward(h.view(), mode)?;
            if h.ndim() == 3 {
                zero_past(&mut h, &next);
                if let Some(obs) = observe.as_mut() {
                    obs(i, &h);
                }
                outs.push(Some(next.clone()));
                cur = next;
            } else {
                if let Some(obs) = observe.as_mut() {
                    obs(i, &h);
                }
                outs.push(None);
            }
        }
        self.masks = Some((lens.to_vec(), outs));
        Ok(h)
    }

    fn too_short(&self, layer: usize, record: usize, len: usize, padded: usize) -> Error {
        Error::Lengths(format!(
            "record {record} (length {len}) is too short for layer #{layer} ({}): records must \
             have at least {} positions",
            self.layers[layer].kind(),
            self.min_input_len(layer, padded)
        ))
    }

    /// Runs the whole model, head included (probabilities for a softmax/sigmoid model).
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward(&mut self, x: impl AsBatch<T>, mode: Mode) -> Result<ArrayD<T>> {
        self.forward_masked(x, None, mode)
    }

    /// [`Sequential::forward_logits_masked`] plus the head (probabilities for a
    /// softmax/sigmoid model).
    ///
    /// # Shapes
    /// - `x`: `(batch, length, channels)`; `lengths`: `(batch)`; returns
    ///   `(batch, …output_shape)`.
    pub fn forward_masked(
        &mut self,
        x: impl AsBatch<T>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<ArrayD<T>> {
        let mut y = self.forward_logits_masked(x, lengths, mode)?;
        if let Some(h) = self.head {
            h.forward_inplace(y.view_mut());
            if let (Some((_, outs)), Some(n)) = (&self.masks, self.layers.len().checked_sub(1)) {
                if let Some(Some(lens)) = outs.get(n) {
                    // softmax over channels of a padded position is not zero: keep zeros there.
                    zero_past(&mut y, lens);
                }
            }
            self.head_out = Some(y.clone());
        }
        Ok(y)
    }

    /// The per-record lengths of the last masked forward pass (`None` after an unmasked one).
    pub fn last_lengths(&self) -> Option<&[usize]> {
        self.masks.as_ref().map(|(l, _)| l.as_slice())
    }

    /// Back-propagates ∂L/∂logits through every layer; returns ∂L/∂input and adds into the
    /// parameter gradients.
    ///
    /// After a masked forward pass ([`Sequential::forward_logits_masked`]) it uses that pass's
    /// lengths: the gradient at padded positions of every sequence output is ignored, and the
    /// returned ∂L/∂input is zero at padded positions.
    pub fn backward_logits(&mut self, grad: impl AsBatch<T>) -> Result<ArrayD<T>> {
        let grad = grad.as_batch();
        let n = self.layers.len();
        self.grad_norms = vec![0.0; n];
        let mut g = grad.to_owned();
        for (i, l) in self.layers.iter_mut().enumerate().rev() {
            if let Some((_, outs)) = &self.masks {
                if let (Some(Some(lens)), 3) = (outs.get(i), g.ndim()) {
                    zero_past(&mut g, lens);
                }
            }
            self.grad_norms[i] = l2_norm(&g.view());
            g = l.backward_owned(g)?;
        }
        if let (Some((lens, _)), 3) = (&self.masks, g.ndim()) {
            zero_past(&mut g, lens);
        }
        Ok(g)
    }

    /// Back-propagates ∂L/∂output (after the head) through the head and every layer.
    pub fn backward(&mut self, grad: impl AsBatch<T>) -> Result<ArrayD<T>> {
        let grad = grad.as_batch();
        match self.head {
            Some(h) => {
                let y = self.head_out.as_ref().ok_or_else(|| Error::NoForward {
                    layer: "model head".into(),
                })?;
                if grad.shape() != y.shape() {
                    return Err(Error::Shape {
                        what: "model output gradient".into(),
                        expected: fmt_shape(y.shape()),
                        got: fmt_shape(grad.shape()),
                    });
                }
                let mut g = grad.to_owned();
                h.backward_inplace(&y.view(), g.view_mut());
                self.backward_logits(g.view())
            }
            None => self.backward_logits(grad),
        }
    }

    /// A Keras-like table: index, layer (type), output shape, parameters, share of all.
    pub fn summary(&self) -> String {
        crate::spec::plan::summary_table(&self.plan)
    }

    /// The shapes and parameters the model was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Zeroes positions `t ≥ lengths[b]` of a `(B, L, C)` array (anything else is left alone).
///
/// # Shapes
/// - `a`: `(batch, length, channels)`; `lengths`: `(batch)`.
pub fn zero_past<T: Float>(a: &mut ArrayD<T>, lengths: &[usize]) {
    if a.ndim() != 3 {
        return;
    }
    for (mut item, &n) in a.outer_iter_mut().zip(lengths) {
        if n < item.shape()[0] {
            item.slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(n..))
                .fill(T::zero());
        }
    }
}

/// Builds a model in Rust, layer by layer, with the same validation as a model file.
pub struct Builder {
    spec: ModelSpec,
}

impl Builder {
    /// Appends a layer.
    #[allow(clippy::should_implement_trait)] // a builder step, not arithmetic
    pub fn add(mut self, layer: LayerSpec) -> Self {
        self.spec.layers.push(layer);
        self
    }

    /// Validates the shapes and initialises the weights from `seed`.
    pub fn build<T: Float>(self, seed: u64) -> Result<Sequential<T>> {
        Sequential::from_spec(&self.spec, seed)
    }

    /// The spec built so far (to save as a model file).
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}

impl<T: Float> Layer<T> for Sequential<T> {
    fn kind(&self) -> String {
        "sequential".into()
    }

    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        if input == self.input0.as_slice() {
            Ok(Sequential::output_shape(self).to_vec())
        } else {
            Err(ShapeIssue::Rank {
                expected: fmt_dims(&self.spec.input_shape),
                got: input.to_vec(),
            })
        }
    }

    /// [`Sequential::forward_masked`] with the lengths given to [`Layer::set_lengths`].
    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        let lengths = self.layer_lengths.clone();
        Sequential::forward_masked(self, x, lengths.as_deref(), mode)
    }

    /// Lengths for the following `Layer::forward` calls (not for the inherent
    /// [`Sequential::forward`], which is always unmasked).
    fn set_lengths(&mut self, lengths: Option<&[usize]>) {
        self.layer_lengths = lengths.map(<[usize]>::to_vec);
    }

    fn backward(&mut self, grad_out: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        Sequential::backward(self, grad_out)
    }

    fn params(&self) -> Vec<&Param<T>> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    fn set_step(&mut self, step: u64) {
        Sequential::set_step(self, step)
    }

    fn set_need_input_grad(&mut self, on: bool) {
        Sequential::set_need_input_grad(self, on)
    }
}

impl<T: Float> crate::layers::NamedParams<T> for Sequential<T> {
    fn named_params(&self) -> Vec<(String, &Param<T>)> {
        Sequential::named_params(self)
    }
    fn named_params_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        Sequential::named_params_mut(self)
    }
}
