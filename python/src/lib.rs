//! `seqgrad._seqgrad`: the Rust half of the Python package `seqgrad` (see `seqgrad/__init__.py`
//! for the API). It wraps the library's front door (`seqgrad::run` and the modules below it),
//! never the command line; every library error becomes a Python exception carrying the CLI's
//! one-line message: `OSError` for files, `MemoryError` for memory refusals, `ValueError` for
//! the rest (bad input, shapes, options).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use numpy::{PyArray, PyReadonlyArray2};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use seqgrad::gradflow::{self, Cell, GradflowConfig, Init};
use seqgrad::run::evaluate::SplitName;
use seqgrad::run::train::{Fitted, TrainOptions, Training};
use seqgrad::run::{self, DataOptions, Run};
use seqgrad::Error;

mod model;

/// The Python exception of a library error, with the CLI's message.
pub fn err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::Memory { .. } => PyMemoryError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// `?` for library results in binding code.
pub trait OrPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for seqgrad::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(err)
    }
}

/// One-hot DNA `(N, L, 4)` float32, the CLI's encoding (IUPAC codes as fractions).
#[pyfunction]
fn one_hot<'py>(py: Python<'py>, sequences: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
    let x = seqgrad::dna_batch::<f32>(&sequences).py()?;
    Ok(PyArray::from_owned_array(py, x).into_any())
}

/// How often the calling thread looks for Ctrl-C while training runs on its own thread.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Trains as `seqgrad train` does, with options by name (JSON object; see
/// `TrainOptions::from_keywords`); returns the run folder. Training runs on a Rust thread;
/// this thread waits with the GIL released and looks for signals every 50 ms. Ctrl-C sets the
/// stop flag: training ends after the current step and writes its checkpoint, as the CLI's
/// does, and then `KeyboardInterrupt` is raised.
#[pyfunction]
fn train(py: Python<'_>, keywords: &str) -> PyResult<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(keywords)
        .map_err(|e| PyValueError::new_err(format!("train options: {e}")))?;
    let options = TrainOptions::from_keywords(&map).py()?;
    let threads = options.resolved().py()?.threads;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let worker = std::thread::Builder::new()
        .name("seqgrad-train".into())
        .spawn(move || {
            run::with_threads(threads, || {
                Training::prepare(&options)?.fit(Some(flag), |_, _| Ok(()))
            })
        })
        .map_err(|e| PyOSError::new_err(format!("cannot start the training thread: {e}")))?;
    let mut interrupt: Option<PyErr> = None;
    while !worker.is_finished() {
        py.detach(|| {
            let t0 = std::time::Instant::now();
            while !worker.is_finished() && t0.elapsed() < SIGNAL_POLL {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        if let Err(e) = py.check_signals() {
            stop.store(true, Ordering::SeqCst);
            interrupt.get_or_insert(e);
        }
    }
    let fitted = worker
        .join()
        .map_err(|_| PyValueError::new_err("training: the training thread panicked"))?;
    let fitted = fitted.py()?;
    if let Some((what, run)) = fitted.interruption() {
        return Err(PyKeyboardInterrupt::new_err(format!(
            "{what}; continue with: seqgrad.train(resume={:?})",
            run.display().to_string()
        )));
    }
    match (fitted, interrupt) {
        (_, Some(e)) => Err(e),
        (Fitted::Finished(t), None) => Ok(t.run.dir.unwrap_or_default().display().to_string()),
        (Fitted::Interrupted { .. }, None) => {
            Err(PyKeyboardInterrupt::new_err("training was interrupted"))
        }
    }
}

/// The run's config.json as JSON text (`None` without one).
#[pyfunction]
fn run_config(dir: PathBuf) -> PyResult<Option<String>> {
    let cfg = run::config::load(&dir).py()?;
    cfg.map(|c| {
        serde_json::to_string(&c).map_err(|e| PyValueError::new_err(format!("config: {e}")))
    })
    .transpose()
}

/// The run's history.json as columns (`None` without one).
#[pyfunction]
fn run_history<'py>(py: Python<'py>, dir: PathBuf) -> PyResult<Option<Bound<'py, PyDict>>> {
    let run = Run::<f32>::open(&dir).py()?;
    let Some(h) = run.history().py()? else {
        return Ok(None);
    };
    let d = PyDict::new(py);
    for (k, v) in h {
        d.set_item(k, v)?;
    }
    Ok(Some(d))
}

/// The metrics of a saved split of the run (`train`, `valid` or `test`), or of a data file, as
/// the JSON of `evaluate --metrics-out`.
#[pyfunction]
#[pyo3(signature = (dir, split, data=None, batch_size=256))]
fn run_evaluate(
    py: Python<'_>,
    dir: PathBuf,
    split: Option<String>,
    data: Option<PathBuf>,
    batch_size: usize,
) -> PyResult<String> {
    let mut run = Run::<f32>::open(&dir).py()?;
    let report = match (split.as_deref(), data) {
        (Some(s), data) => {
            let split = match s {
                "train" => SplitName::Train,
                "valid" => SplitName::Valid,
                "test" => SplitName::Test,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "split {other:?}: use train, valid or test"
                    )))
                }
            };
            py.detach(|| run.evaluate_split(split, data.as_deref(), batch_size))
                .py()?
        }
        (None, Some(data)) => py
            .detach(|| {
                let o = DataOptions::default();
                run.evaluate_file(&data, &o, batch_size, |_, _| {})
            })
            .py()?,
        (None, None) => return Err(PyValueError::new_err("give split= or data=")),
    };
    Ok(report.metrics_json())
}

/// Draws a run folder's pictures into `out_dir`; returns the files.
#[pyfunction]
fn plot_run(py: Python<'_>, dir: PathBuf, out_dir: PathBuf) -> PyResult<Vec<String>> {
    let files = py.detach(|| seqgrad::plot::plot_run(&dir, &out_dir)).py()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// Draws the pictures of a gradflow.csv into `out_dir`; returns the files.
#[pyfunction]
fn plot_gradflow(py: Python<'_>, csv: PathBuf, out_dir: PathBuf) -> PyResult<Vec<String>> {
    let files = py
        .detach(|| seqgrad::plot::plot_gradflow(&csv, &out_dir))
        .py()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// Draws one record's saliency logo (`scores` `(L, 4)`) as `out` .png and .svg; the title
/// names the record `id` and, when given, what the scores are of (`about`).
#[pyfunction]
#[pyo3(signature = (id, scores, out, about = String::new()))]
fn saliency_logo(
    id: &str,
    scores: PyReadonlyArray2<'_, f64>,
    out: PathBuf,
    about: String,
) -> PyResult<Vec<String>> {
    let s = scores.as_array();
    if s.ncols() != 4 {
        return Err(PyValueError::new_err(format!(
            "saliency logo: expected scores (length, 4) but got {}",
            seqgrad::error::fmt_shape(s.shape())
        )));
    }
    let rows: Vec<[f64; 4]> = s
        .rows()
        .into_iter()
        .map(|r| [r[0], r[1], r[2], r[3]])
        .collect();
    let files = seqgrad::plot::saliency_logo_about(id, &about, &rows, &out).py()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// The vanishing-gradient experiment (`seqgrad gradflow`): writes gradflow.csv and
/// gradflow_summary.csv into `out` and returns gradflow.csv's text.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn gradflow_csv(
    py: Python<'_>,
    cells: Vec<String>,
    lengths: Vec<usize>,
    directions: Vec<String>,
    inits: Vec<String>,
    seeds: Vec<u64>,
    steps: usize,
    batch_size: usize,
    lr: f64,
    test_count: usize,
    record_count: usize,
    kernel_size: usize,
    curriculum: bool,
    threads: Option<usize>,
    out: PathBuf,
) -> PyResult<String> {
    let cells = cells
        .iter()
        .map(|c| Cell::parse(c))
        .collect::<seqgrad::Result<Vec<_>>>()
        .py()?;
    let inits = inits
        .iter()
        .map(|c| Init::parse(c))
        .collect::<seqgrad::Result<Vec<_>>>()
        .py()?;
    let bidirectional = directions
        .iter()
        .map(|d| model::choice("direction", d, &[("uni", false), ("bi", true)]))
        .collect::<PyResult<Vec<bool>>>()?;
    let cfg = GradflowConfig {
        cells,
        lengths,
        bidirectional,
        inits,
        seeds,
        steps,
        batch_size,
        lr,
        test_count,
        record_count,
        kernel_size,
        curriculum,
        verbose: false,
        ..GradflowConfig::default()
    };
    gradflow::check(&cfg).py()?;
    let results = py
        .detach(|| run::with_threads(threads, || gradflow::run(&cfg)))
        .py()?;
    gradflow::write_csvs(&out, &results).py()?;
    Ok(gradflow::to_csv(&results))
}

/// Writes a synthetic data set with planted JASPAR motifs (`seqgrad synth`); returns the
/// planted motifs, one per class or label.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn synth(
    out: PathBuf,
    count: usize,
    length: usize,
    classes: Option<usize>,
    labels: Option<usize>,
    label_prob: f64,
    motifs: Vec<String>,
    meme: Option<PathBuf>,
    seed: u64,
) -> PyResult<Vec<String>> {
    let s = run::synth::synth(&run::synth::SynthOptions {
        count,
        length,
        classes,
        labels,
        label_prob,
        motifs,
        meme,
        seed,
        out,
    })
    .py()?;
    Ok(s.motifs)
}

#[pymodule]
fn _seqgrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(run_config, m)?)?;
    m.add_function(wrap_pyfunction!(run_history, m)?)?;
    m.add_function(wrap_pyfunction!(run_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(plot_run, m)?)?;
    m.add_function(wrap_pyfunction!(plot_gradflow, m)?)?;
    m.add_function(wrap_pyfunction!(saliency_logo, m)?)?;
    m.add_function(wrap_pyfunction!(gradflow_csv, m)?)?;
    m.add_function(wrap_pyfunction!(synth, m)?)?;
    Ok(())
}
