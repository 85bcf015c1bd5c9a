//! `Model`: a seqgrad model in f32 or f64 with its weights, and what runs on it (forward,
//! gradients, saliency, gradient check). Arrays come in as numpy views (no copy; the Python
//! side makes them C-contiguous of the model's dtype once) and go out as numpy arrays that own
//! the Rust buffers (no copy). The GIL is released while the model computes.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::{ArrayD, Ix3};
use numpy::{Element, PyArray, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use seqgrad::data::Dataset;
use seqgrad::run::{self, grad, gradcheck::GradcheckOptions};
use seqgrad::saliency::{Baseline, Method, Options, Quadrature};
use seqgrad::{Float, Mode, ModelSpec, Sequential};

use crate::{err, OrPy};

/// The model in its element type.
pub enum Net {
    F32(Sequential<f32>),
    F64(Sequential<f64>),
}

/// Runs `$e` with `$m` bound to the model, whatever its element type.
macro_rules! each {
    ($net:expr, $m:ident => $e:expr) => {
        match $net {
            Net::F32($m) => $e,
            Net::F64($m) => $e,
        }
    };
}

/// `float32` or `float64` (also `f32`/`f64`).
fn is_f64(dtype: &str) -> PyResult<bool> {
    match dtype {
        "float32" | "f32" => Ok(false),
        "float64" | "f64" => Ok(true),
        other => Err(PyValueError::new_err(format!(
            "dtype must be \"float32\" or \"float64\", got {other:?}"
        ))),
    }
}

fn build(spec: &ModelSpec, seed: u64, dtype: &str) -> PyResult<Net> {
    Ok(if is_f64(dtype)? {
        Net::F64(Sequential::from_spec(spec, seed).py()?)
    } else {
        Net::F32(Sequential::from_spec(spec, seed).py()?)
    })
}

/// A numpy array of `T` (the Python side converts anything else once, before the call).
fn array_of<'py, T: Element>(
    x: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    x.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "{what}: expected a numpy array of {}",
            std::any::type_name::<T>()
        ))
    })
}

/// A batch of records `(N, L, C)` as an owned array, or a ValueError naming the shape given.
fn records3<T: Element + Clone>(x: &PyReadonlyArrayDyn<'_, T>) -> PyResult<ndarray::Array3<T>> {
    x.as_array()
        .to_owned()
        .into_dimensionality::<Ix3>()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "x: expected shape (records, length, channels) but got {}",
                seqgrad::error::fmt_shape(x.as_array().shape())
            ))
        })
}

fn to_numpy<T: Element>(py: Python<'_>, a: ArrayD<T>) -> Bound<'_, PyAny> {
    PyArray::from_owned_array(py, a).into_any()
}

/// The value named `given` among `choices`, or a `ValueError` listing them.
pub fn choice<T: Copy>(what: &str, given: &str, choices: &[(&str, T)]) -> PyResult<T> {
    match choices.iter().find(|(name, _)| *name == given) {
        Some((_, v)) => Ok(*v),
        None => {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            Err(PyValueError::new_err(format!(
                "{what} {given:?}: use {}",
                names.join(", ")
            )))
        }
    }
}

/// The f64 copy of a model (the same weights), for what runs in f64 only.
fn to_f64<T: Float>(m: &Sequential<T>) -> PyResult<Sequential<f64>> {
    let mut m64 = Sequential::<f64>::from_spec(m.spec(), 0).py()?;
    seqgrad::gradflow::copy_params(m, &mut m64);
    Ok(m64)
}

/// A batch `(N, L, 4)` as a data set with targets (class indices or an `(N, outputs)` array).
fn dataset<T: Float + Element>(
    m: &Sequential<T>,
    x: &Bound<'_, PyAny>,
    classes: Option<Vec<usize>>,
    y: Option<&Bound<'_, PyAny>>,
) -> PyResult<Dataset<T>> {
    let outputs = match m.output_shape() {
        [k] => *k,
        other => {
            return Err(PyValueError::new_err(format!(
            "grad(target=...) needs a model with a flat output (classes), but this one outputs {}",
            seqgrad::error::fmt_shape(other)
        )))
        }
    };
    let x = array_of::<T>(x, "x")?;
    let x3 = records3(&x)?;
    match (classes, y) {
        (Some(c), _) => Dataset::new(x3, &c[..], outputs).py(),
        (None, Some(y)) => {
            let y = array_of::<T>(y, "target")?;
            Dataset::new(x3, y.as_array(), outputs).py()
        }
        (None, None) => Err(PyValueError::new_err("grad needs target= or output_grad=")),
    }
}

/// The gradients as the Python `Grads` fields (a dict).
fn grads_dict<'py, T: Float + Element>(
    py: Python<'py>,
    g: grad::Grads<T>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("output", to_numpy(py, g.output))?;
    d.set_item(
        "loss",
        g.value
            .filter(|_| g.objective != grad::Objective::OutputGrad),
    )?;
    d.set_item("input", to_numpy(py, g.input_grad))?;
    let params = PyDict::new(py);
    for (n, a) in g.params {
        params.set_item(n, to_numpy(py, a))?;
    }
    d.set_item("params", params)?;
    let layers = PyDict::new(py);
    for (i, v) in g.layer_norms.iter().enumerate() {
        layers.set_item(format!("layers.{i}"), v)?;
    }
    d.set_item("layer_norms", layers)?;
    let steps = PyDict::new(py);
    for s in &g.step_norms {
        let key = PyTuple::new(py, [format!("layers.{}", s.layer), s.direction.clone()])?;
        let mean = ndarray::Array1::from(seqgrad::layers::rnn::step_means(&s.norms));
        steps.set_item(key, PyArray::from_owned_array(py, mean))?;
    }
    d.set_item("step_norms", steps)?;
    Ok(d)
}

/// A seqgrad model with its weights (f32 or f64).
#[pyclass(module = "seqgrad._seqgrad", name = "Model")]
pub struct Model {
    pub net: Net,
}

impl Model {
    /// Runs `f` on the model in f64: the model itself, or an f64 copy of an f32 one (saliency
    /// and gradient checks are taken in f64; the copy leaves the model untouched).
    fn in_f64<R>(&mut self, f: impl FnOnce(&mut Sequential<f64>) -> PyResult<R>) -> PyResult<R> {
        match &mut self.net {
            Net::F64(m) => f(m),
            Net::F32(m) => f(&mut to_f64(m)?),
        }
    }

    fn grad_records<'py, T: Float + Element>(
        py: Python<'py>,
        m: &mut Sequential<T>,
        x: &Bound<'py, PyAny>,
        classes: Option<Vec<usize>>,
        y: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ds = dataset(m, x, classes, y)?;
        seqgrad::train::check_fit(m, ds.seq_len(), ds.y.ncols()).py()?;
        let objective = grad::objective_for(m, None);
        let g = py.detach(|| grad::of_records(m, &ds, objective)).py()?;
        grads_dict(py, g)
    }

    fn grad_dy<'py, T: Float + Element>(
        py: Python<'py>,
        m: &mut Sequential<T>,
        x: &Bound<'py, PyAny>,
        dy: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let x = array_of::<T>(x, "x")?.as_array().to_owned();
        let dy = array_of::<T>(dy, "output_grad")?.as_array().to_owned();
        let mut want = vec![x.shape().first().copied().unwrap_or(0)];
        want.extend_from_slice(m.output_shape());
        if !m.is_variable_length() && dy.shape() != want.as_slice() {
            return Err(err(seqgrad::Error::Shape {
                what: "output_grad".into(),
                expected: seqgrad::error::fmt_shape(&want),
                got: seqgrad::error::fmt_shape(dy.shape()),
            }));
        }
        let g = py.detach(|| grad::of_output_grad(m, x, dy, true)).py()?;
        grads_dict(py, g)
    }
}

#[pymethods]
impl Model {
    /// A model file (JSON) with seeded initial weights.
    #[staticmethod]
    fn from_json(path: PathBuf, seed: u64, dtype: &str) -> PyResult<Model> {
        let spec = ModelSpec::from_file(&path).py()?;
        Ok(Model {
            net: build(&spec, seed, dtype)?,
        })
    }

    /// A model from the text of a model file.
    #[staticmethod]
    fn from_spec_json(text: &str, seed: u64, dtype: &str) -> PyResult<Model> {
        let spec = ModelSpec::from_json(text, "spec").py()?;
        Ok(Model {
            net: build(&spec, seed, dtype)?,
        })
    }

    /// A Keras model (`.keras` archive or model JSON), with its weights: from `weights` (Keras
    /// variables as safetensors, as `convert --keras-weights`) or the archive's own.
    #[staticmethod]
    #[pyo3(signature = (path, seed, dtype, weights=None))]
    fn from_keras(
        path: PathBuf,
        seed: u64,
        dtype: &str,
        weights: Option<PathBuf>,
    ) -> PyResult<Model> {
        let w = weights.as_deref();
        let net = if is_f64(dtype)? {
            Net::F64(run::convert::load_keras(&path, w, seed).py()?)
        } else {
            Net::F32(run::convert::load_keras(&path, w, seed).py()?)
        };
        Ok(Model { net })
    }

    /// The model of a run folder with its weights (as `seqgrad evaluate --run`).
    #[staticmethod]
    fn open_run(dir: PathBuf, dtype: &str) -> PyResult<Model> {
        let net = if is_f64(dtype)? {
            Net::F64(run::Run::<f64>::open(&dir).py()?.model)
        } else {
            Net::F32(run::Run::<f32>::open(&dir).py()?.model)
        };
        Ok(Model { net })
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        match self.net {
            Net::F32(_) => "float32",
            Net::F64(_) => "float64",
        }
    }

    fn summary(&self) -> String {
        each!(&self.net, m => m.summary())
    }

    /// Per-sample input shape; `None` for a length of any size.
    #[getter]
    fn input_dims(&self) -> Vec<Option<usize>> {
        each!(&self.net, m => m.input_dims().to_vec())
    }

    #[getter]
    fn output_shape(&self) -> Vec<usize> {
        each!(&self.net, m => m.output_shape().to_vec())
    }

    #[getter]
    fn param_count(&self) -> usize {
        each!(&self.net, m => m.param_count())
    }

    /// The model file's JSON.
    fn spec_json(&self) -> String {
        each!(&self.net, m => m.spec().to_json())
    }

    /// Loads a safetensors weights file (any dtype, converted to the model's).
    fn load_weights(&mut self, path: PathBuf) -> PyResult<()> {
        each!(&mut self.net, m => run::source::load_weights(m, &path).py())
    }

    /// Writes the weights as safetensors (atomically), in the model's dtype.
    fn save_weights(&self, path: PathBuf) -> PyResult<()> {
        each!(&self.net, m => seqgrad::weights::save(m, &path).py())
    }

    /// Parameter name -> a copy of its value.
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        each!(&self.net, m => {
            for (n, p) in m.named_params() {
                d.set_item(n, to_numpy(py, p.value.clone()))?;
            }
        });
        Ok(d)
    }

    /// Sets parameters by name (values of the model's dtype). Every name must be the model's,
    /// every shape its shape; with `strict` every parameter must be given. Nothing changes
    /// unless all do.
    fn set_parameters(
        &mut self,
        values: HashMap<String, Bound<'_, PyAny>>,
        strict: bool,
    ) -> PyResult<()> {
        fn set<T: Float + Element>(
            m: &mut Sequential<T>,
            values: &HashMap<String, Bound<'_, PyAny>>,
            strict: bool,
        ) -> PyResult<()> {
            let names: Vec<(String, Vec<usize>)> = m.param_names_shapes();
            let mut unknown: Vec<&String> = values
                .keys()
                .filter(|k| !names.iter().any(|(n, _)| n == *k))
                .collect();
            unknown.sort();
            if !unknown.is_empty() {
                let known: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                return Err(PyValueError::new_err(format!(
                    "unknown parameter(s) {}; the model has: {}",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    known.join(", ")
                )));
            }
            let missing: Vec<&str> = names
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !values.contains_key(*n))
                .collect();
            if strict && !missing.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "missing parameter(s) {} (pass strict=False to set only some)",
                    missing.join(", ")
                )));
            }
            let mut arrays = Vec::new();
            for (n, shape) in &names {
                let Some(v) = values.get(n) else { continue };
                let a = array_of::<T>(v, n)?;
                if a.as_array().shape() != shape.as_slice() {
                    return Err(err(seqgrad::Error::Shape {
                        what: format!("parameter {n}"),
                        expected: seqgrad::error::fmt_shape(shape),
                        got: seqgrad::error::fmt_shape(a.as_array().shape()),
                    }));
                }
                arrays.push((n.clone(), a.as_array().to_owned()));
            }
            for (n, p) in m.named_params_mut() {
                if let Some((_, a)) = arrays.iter().find(|(k, _)| *k == n) {
                    p.value.assign(a);
                }
            }
            Ok(())
        }
        each!(&mut self.net, m => set(m, &values, strict))
    }

    /// The model's output in evaluation mode (dropout off): probabilities, or the logits
    /// (before the final softmax/sigmoid).
    fn forward<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        logits: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        each!(&mut self.net, m => {
            let x = array_of(x, "x")?;
            let v = x.as_array();
            let out = py
                .detach(|| {
                    if logits {
                        m.forward_logits(v, Mode::Eval)
                    } else {
                        m.forward(v, Mode::Eval)
                    }
                })
                .py()?;
            Ok(to_numpy(py, out))
        })
    }

    /// Gradients of the training loss against targets (class indices or an array), as
    /// `seqgrad grad --data` computes them.
    #[pyo3(signature = (x, classes=None, y=None))]
    fn grad_target<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        classes: Option<Vec<usize>>,
        y: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        each!(&mut self.net, m => Model::grad_records(py, m, x, classes, y.as_ref()))
    }

    /// ∂(Σ output·dy)/∂…, as `seqgrad grad --input` computes it.
    fn grad_output<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        dy: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        each!(&mut self.net, m => Model::grad_dy(py, m, x, dy))
    }

    /// Per-base saliency `(N, L, 4)` in f64, and the class each record's scores explain.
    #[allow(clippy::too_many_arguments)]
    fn saliency<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f64>,
        method: &str,
        target: Option<usize>,
        baseline: &str,
        steps: usize,
        quadrature: &str,
        batch_size: usize,
    ) -> PyResult<(Bound<'py, PyAny>, Vec<usize>)> {
        let opts = Options {
            method: choice(
                "method",
                method,
                &[
                    ("grad", Method::Grad),
                    ("grad_x_input", Method::GradXInput),
                    ("integrated_gradients", Method::IntegratedGradients),
                    ("ism", Method::Ism),
                ],
            )?,
            baseline: choice(
                "baseline",
                baseline,
                &[("zeros", Baseline::Zeros), ("uniform", Baseline::Uniform)],
            )?,
            quadrature: choice(
                "quadrature",
                quadrature,
                &[
                    ("gauss_legendre", Quadrature::GaussLegendre),
                    ("trapezoid", Quadrature::Trapezoid),
                ],
            )?,
            steps,
            batch_size,
            ..Options::default()
        };
        let x3 = records3(&x)?;
        let n = x3.shape()[0];
        let outputs: usize = each!(&self.net, m => m.output_shape().iter().product());
        if let Some(t) = target.filter(|&t| t >= outputs) {
            return Err(PyValueError::new_err(format!(
                "target {t}: the model has {outputs} outputs (0–{})",
                outputs.saturating_sub(1)
            )));
        }
        let ds = Dataset {
            ids: (0..n).map(|i| i.to_string()).collect(),
            x: x3,
            y: ndarray::Array2::zeros((n, outputs)),
            lengths: None,
        };
        let r = self.in_f64(|m64| {
            py.detach(|| run::saliency::of_records(m64, &ds, target, &opts))
                .py()
        })?;
        Ok((to_numpy(py, r.saliency.scores.into_dyn()), r.targets))
    }

    /// The finite-difference check of every layer and the whole model, in f64.
    #[allow(clippy::too_many_arguments)]
    fn gradcheck<'py>(
        &mut self,
        py: Python<'py>,
        layers: Option<Vec<usize>>,
        whole_model: bool,
        batch: usize,
        samples: usize,
        tolerance: f64,
        mode: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let mode = choice(
            "mode",
            mode,
            &[("train", Mode::Train), ("eval", Mode::Eval)],
        )?;
        let o = GradcheckOptions {
            layers,
            whole_model,
            batch,
            samples,
            tolerance,
            mode,
            seed,
        };
        let rows = self.in_f64(|m64| py.detach(|| run::gradcheck::check(m64, &o)).py())?;
        let out = PyList::empty(py);
        for r in rows {
            let d = PyDict::new(py);
            d.set_item("layer", r.layer.as_ref().map(|(i, _)| *i))?;
            d.set_item("kind", r.layer.as_ref().map(|(_, k)| k.clone()))?;
            d.set_item("tensor", &r.tensor)?;
            d.set_item("checked", r.checked)?;
            d.set_item("total", r.total)?;
            d.set_item("worst_rel_err", r.worst_rel_err)?;
            d.set_item("ok", r.ok())?;
            d.set_item(
                "all_zero",
                r.verdict == run::gradcheck::Verdict::PassAllZero,
            )?;
            out.append(d)?;
        }
        Ok(out)
    }
}
