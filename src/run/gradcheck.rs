//! A model's hand-written gradients against central finite differences in f64, layer by layer
//! and for the whole model ([`check`]), as typed rows: one per checked tensor.
//!
//! Every layer is checked on a seeded batch of its input shape drawn from U(0, 1) (continuous
//! values keep max-pool ties and ReLU kinks away from the finite-difference steps), with a
//! seeded U(−1, 1) upstream gradient, then the whole model (head included) on the first of
//! those batches. At most `samples` elements per tensor are checked (a seeded sample without
//! replacement; see [`crate::gradcheck`]).

use crate::error::{Error, Result};
use crate::gradcheck::{self, GradReport};
use crate::model::Sequential;
use crate::tensor::Mode;

/// What to check.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckOptions {
    /// Only these layers (0-based); `None`: every layer.
    pub layers: Option<Vec<usize>>,
    /// Also check the whole model.
    pub whole_model: bool,
    /// Records in the random input batch.
    pub batch: usize,
    /// Most elements checked per tensor (0: every element).
    pub samples: usize,
    /// A tensor passes when its worst relative error is below this.
    pub tolerance: f64,
    pub mode: Mode,
    /// Seed of the input, the upstream gradients and the samples.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            layers: None,
            whole_model: true,
            batch: 2,
            samples: 32,
            tolerance: 1e-4,
            mode: Mode::Train,
            seed: 0,
        }
    }
}

impl GradcheckOptions {
    /// Checks the batch size and the tolerance.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Usage("--batch must be at least 1".into()));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(Error::Usage(format!(
                "--tolerance must be a positive number, got {}",
                self.tolerance
            )));
        }
        Ok(())
    }
}

/// The verdict on one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Passes, but its analytic and numeric gradients are all zero: nothing was exercised.
    PassAllZero,
    Fail,
}

/// One checked tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckRow {
    /// The layer's index and kind; `None` for the whole model.
    pub layer: Option<(usize, String)>,
    /// `input` or the parameter's name.
    pub tensor: String,
    pub checked: usize,
    pub total: usize,
    pub worst_rel_err: f64,
    pub verdict: Verdict,
}

impl GradcheckRow {
    pub fn ok(&self) -> bool {
        self.verdict != Verdict::Fail
    }
}

fn rows(r: &GradReport, layer: Option<(usize, String)>, tol: f64, out: &mut Vec<GradcheckRow>) {
    let errs = std::iter::once(("input".to_string(), r.input)).chain(r.params.iter().cloned());
    for ((tensor, err), (_, checked, total)) in errs.zip(&r.checked) {
        let verdict = if err >= tol || !err.is_finite() {
            Verdict::Fail
        } else if r.zero_tensors.contains(&tensor) {
            Verdict::PassAllZero
        } else {
            Verdict::Pass
        };
        out.push(GradcheckRow {
            layer: layer.clone(),
            tensor,
            checked: *checked,
            total: *total,
            worst_rel_err: err,
            verdict,
        });
    }
}

/// Checks a model's gradients (see the module docs).
pub fn check(model: &mut Sequential<f64>, o: &GradcheckOptions) -> Result<Vec<GradcheckRow>> {
    o.validate()?;
    let samples = if o.samples == 0 {
        usize::MAX
    } else {
        o.samples
    };
    let mut shape = vec![o.batch];
    shape.extend_from_slice(model.input_shape());
    let x = gradcheck::random_array(&shape, 0.0, 1.0, o.seed);
    let checks =
        gradcheck::check_model_layers(model, &x, o.layers.as_deref(), o.mode, samples, o.seed)?;
    let mut out = Vec::new();
    for c in &checks {
        rows(
            &c.report,
            Some((c.index, c.kind.clone())),
            o.tolerance,
            &mut out,
        );
    }
    if o.whole_model {
        let mut oshape = vec![o.batch];
        oshape.extend_from_slice(model.output_shape());
        let dy = gradcheck::random_array(&oshape, -1.0, 1.0, o.seed.wrapping_add(999));
        let report = gradcheck::check_model_sampled(model, &x, &dy, o.mode, samples, o.seed)?;
        rows(&report, None, o.tolerance, &mut out);
    }
    Ok(out)
}
