//! [`Sequential`]: a stack of layers whose shapes are validated when it is built.
//!
//! Building walks the layers with the per-sample shape: each layer either gives its output
//! shape or a [`ShapeIssue`], which becomes a [`BuildError`] naming the layer index and type,
//! the shape it needs, the shape it got, which layer produced that shape, and the fix.
//!
//! A final `softmax`/`sigmoid` is detached from the last layer into the model's *head*: `forward`
//! still returns probabilities, while `forward_logits`/`backward_logits` let a loss work on
//! logits (numerically stable cross-entropy).

use ndarray::{ArrayD, ArrayViewD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::activation::Activation;
use crate::error::{BuildError, Error, Result, ShapeIssue};
use crate::layers::rnn::{Direction, Recurrent};
use crate::layers::{self, Layer, Param};
use crate::spec::{LayerSpec, ModelSpec, RecurrentSpec};
use crate::tensor::{check_batched, fmt_shape, l2_norm, Float, Mode};

/// A sequential model.
pub struct Sequential<T: Float> {
    spec: ModelSpec,
    layers: Vec<Box<dyn Layer<T>>>,
    /// Per-sample output shape of every layer.
    shapes: Vec<Vec<usize>>,
    head: Option<Activation>,
    /// Cached head output `(batch, …output)`, for backward through the head.
    head_out: Option<ArrayD<T>>,
    /// ‖∂L/∂output‖ of every layer from the last backward pass (gradient-flow studies).
    grad_norms: Vec<f64>,
    /// Whether backward computes ∂L/∂input of the first layer (the data). See
    /// [`Sequential::set_need_input_grad`].
    need_input_grad: bool,
}

/// Builds one layer from its spec for a per-sample input shape.
pub fn build_layer<T: Float>(
    spec: &LayerSpec,
    input: &[usize],
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Box<dyn Layer<T>>, ShapeIssue> {
    use layers::pool::{Pool1d, PoolOp};
    Ok(match spec {
        LayerSpec::Dense(s) => Box::new(layers::dense::Dense::new(s, input, rng)?),
        LayerSpec::Conv1d(s) => Box::new(layers::conv1d::Conv1d::new(s, input, rng)?),
        LayerSpec::Maxpool1d(s) => Box::new(Pool1d::new(PoolOp::Max, s, input)?),
        LayerSpec::Avgpool1d(s) => Box::new(Pool1d::new(PoolOp::Avg, s, input)?),
        LayerSpec::GlobalMaxpool1d(_) => {
            Box::new(layers::global_pool::GlobalPool1d::new(PoolOp::Max, input)?)
        }
        LayerSpec::GlobalAvgpool1d(_) => {
            Box::new(layers::global_pool::GlobalPool1d::new(PoolOp::Avg, input)?)
        }
        LayerSpec::Flatten(_) => Box::new(layers::flatten::Flatten::new(input)?),
        LayerSpec::Dropout(s) => Box::new(layers::dropout::Dropout::new(s, seed)?.for_input(input)),
        LayerSpec::Activation(s) => {
            Box::new(layers::activation_layer::ActivationLayer::new(s, input)?)
        }
        LayerSpec::SimpleRnn(s) => Box::new(Recurrent::new(
            &RecurrentSpec::SimpleRnn(s.clone()),
            input,
            Direction::Forward,
            rng,
        )?),
        LayerSpec::Lstm(s) => Box::new(Recurrent::new(
            &RecurrentSpec::Lstm(s.clone()),
            input,
            Direction::Forward,
            rng,
        )?),
        LayerSpec::Gru(s) => Box::new(Recurrent::new(
            &RecurrentSpec::Gru(s.clone()),
            input,
            Direction::Forward,
            rng,
        )?),
        LayerSpec::Bidirectional(s) => Box::new(layers::rnn::Bidirectional::new(s, input, rng)?),
    })
}

impl<T: Float> Sequential<T> {
    /// Builds and validates a model; `seed` drives weight initialisation and dropout masks.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Self> {
        if spec.input_shape.is_empty()
            || spec.input_shape.len() > 2
            || spec.input_shape.contains(&0)
        {
            return Err(Error::Spec {
                path: "input_shape".into(),
                msg: format!(
                    "input_shape must be [length, channels] or [features] with no zero, got {:?}",
                    spec.input_shape
                ),
            });
        }
        if let Err(issue) = layers::checked_elems("input_shape", &spec.input_shape) {
            return Err(Error::Spec {
                path: "input_shape".into(),
                msg: issue.to_string(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers: Vec<Box<dyn Layer<T>>> = Vec::with_capacity(spec.layers.len());
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(spec.layers.len());
        for (index, ls) in spec.layers.iter().enumerate() {
            let input = shapes.last().unwrap_or(&spec.input_shape).clone();
            let layer_seed =
                seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index as u64 + 1));
            let built = build_layer::<T>(ls, &input, layer_seed, &mut rng).and_then(|l| {
                let out = l.output_shape(&input)?;
                layers::checked_elems("output", &out)?;
                Ok((l, out))
            });
            match built {
                Ok((layer, out)) => {
                    layers.push(layer);
                    shapes.push(out);
                }
                Err(issue) => {
                    let hint = hint_for(spec, &shapes, ls, &issue);
                    return Err(BuildError {
                        index,
                        kind: ls.kind(),
                        input,
                        issue,
                        hint,
                    }
                    .into());
                }
            }
        }
        let head = layers.last_mut().and_then(|l| l.take_output_activation());
        Ok(Sequential {
            spec: spec.clone(),
            layers,
            shapes,
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
            spec: ModelSpec {
                input_shape: input_shape.to_vec(),
                layers: Vec::new(),
            },
        }
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.spec.input_shape
    }

    /// Per-sample output shape of the model.
    pub fn output_shape(&self) -> &[usize] {
        self.shapes
            .last()
            .map(|s| s.as_slice())
            .unwrap_or(&self.spec.input_shape)
    }

    /// Per-sample output shape of every layer.
    pub fn layer_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
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
        check_batched("model input", &self.spec.input_shape, x.shape())
    }

    /// Runs every layer but the head: logits when the model ends in softmax/sigmoid.
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward_logits(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        // A head output from an earlier `forward` no longer matches the layers' caches.
        self.head_out = None;
        self.check_input(&x)?;
        let mut layers = self.layers.iter_mut();
        let mut h = match layers.next() {
            Some(first) => first.forward(x, mode)?,
            None => x.to_owned(),
        };
        for l in layers {
            h = l.forward(h.view(), mode)?;
        }
        Ok(h)
    }

    /// Like [`Sequential::forward_logits`], calling `observe(i, output)` with every layer's
    /// output (training-time recorders: activation statistics).
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward_logits_observed(
        &mut self,
        x: ArrayViewD<'_, T>,
        mode: Mode,
        observe: &mut dyn FnMut(usize, &ArrayD<T>),
    ) -> Result<ArrayD<T>> {
        self.head_out = None;
        self.check_input(&x)?;
        let mut h = x.to_owned();
        for (i, l) in self.layers.iter_mut().enumerate() {
            h = l.forward(h.view(), mode)?;
            observe(i, &h);
        }
        Ok(h)
    }

    /// Runs the whole model, head included (probabilities for a softmax/sigmoid model).
    ///
    /// # Shapes
    /// - `x`: `(batch, …input_shape)`; returns `(batch, …output_shape)`.
    pub fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        let mut y = self.forward_logits(x, mode)?;
        if let Some(h) = self.head {
            h.forward_inplace(y.view_mut());
            self.head_out = Some(y.clone());
        }
        Ok(y)
    }

    /// Back-propagates ∂L/∂logits through every layer; returns ∂L/∂input and adds into the
    /// parameter gradients.
    pub fn backward_logits(&mut self, grad: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        let n = self.layers.len();
        self.grad_norms = vec![0.0; n];
        let mut g = grad.to_owned();
        for (i, l) in self.layers.iter_mut().enumerate().rev() {
            self.grad_norms[i] = l2_norm(&g.view());
            g = l.backward_owned(g)?;
        }
        Ok(g)
    }

    /// Back-propagates ∂L/∂output (after the head) through the head and every layer.
    pub fn backward(&mut self, grad: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
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
        summary_table(
            &self.spec.input_shape,
            self.spec
                .layers
                .iter()
                .zip(&self.shapes)
                .zip(&self.layers)
                .map(|((spec, shape), l)| (spec, shape.as_slice(), l.param_count())),
        )
    }
}

/// The summary table from each layer's spec, per-sample output shape and parameter count
/// (shared by [`Sequential::summary`] and `memory::summary_table`, which plans without
/// allocating): index, layer (type, with its activation), output shape, parameters, share.
pub(crate) fn summary_table<'a>(
    input_shape: &[usize],
    layers: impl Iterator<Item = (&'a LayerSpec, &'a [usize], usize)> + Clone,
) -> String {
    let total: usize = layers.clone().map(|(_, _, p)| p).sum();
    let mut rows: Vec<[String; 5]> = vec![[
        "#".into(),
        "Layer (type)".into(),
        "Output shape".into(),
        "Param #".into(),
        "Share".into(),
    ]];
    rows.push([
        "".into(),
        "input".into(),
        fmt_shape(input_shape),
        "0".into(),
        "".into(),
    ]);
    for (i, (spec, shape, p)) in layers.enumerate() {
        let share = if total > 0 {
            format!("{:.1}%", 100.0 * p as f64 / total as f64)
        } else {
            "-".into()
        };
        let mut kind = spec.kind();
        let activation = match spec {
            LayerSpec::Dense(d) => {
                if shape.len() == 2 {
                    kind = "dense (per time step)".into();
                }
                d.activation
            }
            LayerSpec::Conv1d(c) => c.activation,
            _ => Activation::Linear,
        };
        if activation != Activation::Linear {
            kind = format!("{kind}, {}", activation.name());
        }
        rows.push([i.to_string(), kind, fmt_shape(shape), group(p), share]);
    }
    let w: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let rule = "─".repeat(w.iter().sum::<usize>() + 8);
    let mut out = format!("{rule}\n");
    for (k, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        ));
        if k == 0 {
            out.push_str(&format!("{rule}\n"));
        }
    }
    out.push_str(&format!("{rule}\nTotal params: {}\n", group(total)));
    out
}

/// Thousands separators: 46929039 → "46,929,039".
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Explains where a wrong shape came from and how to fix it.
pub(crate) fn hint_for(
    spec: &ModelSpec,
    shapes: &[Vec<usize>],
    layer: &LayerSpec,
    issue: &ShapeIssue,
) -> Option<String> {
    let ShapeIssue::NeedsSequence { got } = issue else {
        return None;
    };
    if got.len() != 1 {
        return None;
    }
    let needs = if layer.is_recurrent() {
        "a recurrent layer"
    } else {
        "this layer"
    };
    // The last layer that turned a (length, features) input into a flat one.
    let culprit = (0..shapes.len()).rev().find(|&j| {
        let before = if j == 0 {
            &spec.input_shape
        } else {
            &shapes[j - 1]
        };
        before.len() == 2 && shapes[j].len() == 1
    });
    let Some(j) = culprit else {
        return Some(format!(
            "the model input {} has no time axis; {needs} needs (length, features): \
             set input_shape to [length, channels]",
            fmt_shape(&spec.input_shape)
        ));
    };
    let what = &spec.layers[j];
    let kind = what.kind();
    let before = fmt_shape(if j == 0 {
        &spec.input_shape
    } else {
        &shapes[j - 1]
    });
    let after = fmt_shape(&shapes[j]);
    let this = if layer.is_recurrent() {
        "the recurrent layer"
    } else {
        "this layer"
    };
    let removed = format!("{kind} (#{j}) removed the time axis, turning {before} into {after}");
    let removed_rs = format!(
        "{kind} (#{j}) with return_sequences=false removed the time axis, turning {before} into \
         {after}"
    );
    Some(match what {
        LayerSpec::Flatten(_) => format!(
            "Flatten (#{j}) removed the time axis, turning {before} into {after}: remove the \
             Flatten so {this} gets {before} as (length, features){}",
            if layer.is_recurrent() {
                "; to classify the whole sequence, set return_sequences=false on the last \
                 recurrent layer"
            } else {
                ""
            }
        ),
        LayerSpec::GlobalMaxpool1d(_) | LayerSpec::GlobalAvgpool1d(_) => {
            format!("{removed}: remove the {kind} or move it after {needs}")
        }
        LayerSpec::Bidirectional(_) => format!(
            "{removed_rs}: set return_sequences=true in the wrapped layer of layer #{j} so it \
             outputs (length, units)"
        ),
        LayerSpec::SimpleRnn(_) | LayerSpec::Lstm(_) | LayerSpec::Gru(_) => {
            format!(
                "{removed_rs}: set return_sequences=true on layer #{j} so it outputs \
                 (length, units)"
            )
        }
        _ => format!("{removed}: remove layer #{j} or reorder the layers"),
    })
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
        if input == self.spec.input_shape.as_slice() {
            Ok(Sequential::output_shape(self).to_vec())
        } else {
            Err(ShapeIssue::Rank {
                expected: fmt_shape(&self.spec.input_shape),
                got: input.to_vec(),
            })
        }
    }

    fn forward(&mut self, x: ArrayViewD<'_, T>, mode: Mode) -> Result<ArrayD<T>> {
        Sequential::forward(self, x, mode)
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
