//! The human summary `grad --data` prints.

use crate::data::Labels;
use crate::loss::Loss;
use crate::run::grad::{self, Grads, Objective};
use crate::tensor::{fmt_shape, l2_norm, Float};

/// The human summary of `grad --data`.
pub fn summary<T: Float>(
    g: &Grads<T>,
    model: &crate::model::Sequential<T>,
    labels: &Labels,
    records: &str,
    model_text: &str,
) -> String {
    let n = g.input.shape()[0];
    let value = g.value.unwrap_or(f64::NAN);
    let (kind, what) = match &g.objective {
        Objective::Logit(c) => (
            "target",
            format!(
                "L = sum over records of the logit of class {c} ({})",
                grad::class_name(labels, *c)
            ),
        ),
        Objective::Loss(l) => {
            let name = match l {
                Loss::CrossEntropy => "cross-entropy",
                Loss::BinaryCrossEntropy => "binary cross-entropy",
                Loss::MeanSquaredError => "mean squared error",
            };
            (
                "loss",
                format!("L = mean {name} loss against the records' labels"),
            )
        }
        Objective::OutputGrad => ("output_grad", String::new()),
    };
    let mut s = format!(
        "{kind}: {n} records of {records}, model {model_text} in {}\n{what}\n",
        T::DTYPE
    );
    if kind == "target" {
        s.push_str(&format!("mean target logit {value:.6}\n"));
    } else {
        s.push_str(&format!("loss {value:.6}\n"));
    }
    s.push_str(&format!(
        "‖∂L/∂input‖ {:.3e} (all records; per record mean {:.3e})\n",
        l2_norm(&g.input_grad.view()),
        g.input_grad.outer_iter().map(|r| l2_norm(&r)).sum::<f64>() / n as f64
    ));
    s.push_str("per layer (‖∂L/∂output‖ of the layer, then ‖∂L/∂θ‖ of each parameter tensor):\n");
    for (i, layer) in model.layers().iter().enumerate() {
        s.push_str(&format!(
            "  {i:>2}  {:<28} ‖∂L/∂out‖ {:.3e}\n",
            layer.kind(),
            g.layer_norms.get(i).copied().unwrap_or(0.0)
        ));
        for p in layer.params() {
            s.push_str(&format!(
                "        {:<30} {:<14} ‖∂L/∂θ‖ {:.3e}\n",
                format!("layers.{i}.{}", p.name),
                fmt_shape(p.value.shape()),
                l2_norm(&p.grad.view())
            ));
        }
    }
    let mut any = false;
    for st in g.step_norms.iter().filter(|st| st.norms.shape()[1] > 0) {
        if !any {
            s.push_str(
                "per-step ‖∂L/∂h_t‖ (mean over records; t 0-based in sequence order) at the first, \
                 middle and last step; first/last: the step farthest from the output over \
                 the nearest, in processing order:\n",
            );
            any = true;
        }
        let len = st.norms.shape()[1];
        let mean = crate::layers::rnn::step_means(&st.norms);
        let cells: Vec<String> = [0, (len - 1) / 2, len - 1]
            .iter()
            .map(|&t| format!("t={t} {:.3e}", mean[t]))
            .collect();
        let ratio = crate::layers::rnn::first_last_ratio(&mean, st.direction == "reverse");
        s.push_str(&format!(
            "  layers.{} {:<8} {}   (first/last {ratio:.2e})\n",
            st.layer,
            st.direction,
            cells.join("  "),
        ));
    }
    s
}

/// `seq1 … seq64` style description of the records used.
pub fn ids(ids: &[String]) -> String {
    match ids {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a}, {b}"),
        [a, b, c] => format!("{a}, {b}, {c}"),
        [a, .., z] => format!("{a} … {z}"),
    }
}
