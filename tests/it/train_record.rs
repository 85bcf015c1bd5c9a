//! `GradRecorder` (`train --record-grads`): a recorded step's numbers are exactly what the
//! library's backward pass gives for the same batch and weights, and the CSVs have the
//! documented layout.

use std::collections::BTreeMap;

use ndarray::{Array2, Array3, Axis};
use seqgrad::data::Dataset;
use seqgrad::loss::Loss;
use seqgrad::model::Sequential;
use seqgrad::optim::Optimizer;
use seqgrad::spec::ModelSpec;
use seqgrad::tensor::Mode;
use seqgrad::train::{epoch_order, GradRecorder, Progress, TrainConfig, Trainer};

const SPEC: &str = r#"{"input_shape": [12, 4], "layers": [
  {"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
  {"type": "dropout", "rate": 0.3},
  {"type": "bidirectional", "layer": {"type": "lstm", "units": 3, "return_sequences": true}},
  {"type": "flatten"},
  {"type": "dense", "units": 2, "activation": "softmax"}]}"#;

fn model(seed: u64) -> Sequential<f64> {
    Sequential::from_spec(&ModelSpec::from_json(SPEC, "t").unwrap(), seed).unwrap()
}

fn data() -> Dataset<f64> {
    let n = 20;
    let x = Array3::from_shape_fn((n, 12, 4), |(i, j, k)| {
        ((i * 7 + j * 3) % 4 == k) as u8 as f64
    });
    let y = Array2::from_shape_fn((n, 2), |(i, k)| ((i % 3 == 0) as usize == k) as u8 as f64);
    Dataset {
        ids: (0..n).map(|i| format!("r{i}")).collect(),
        x,
        y,
        lengths: None,
    }
}

/// `(step, layer, tensor, statistic) -> value` from grads.csv.
fn read_grads(p: &std::path::Path) -> BTreeMap<(u64, String, String, String), f64> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,layer,tensor,statistic,value"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            (
                (f[0].parse().unwrap(), f[1].into(), f[2].into(), f[3].into()),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    if a.is_infinite() && a == b {
        return; // update ratio of a zero-initialised bias at step 0
    }
    assert!(
        (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) + 1e-300,
        "{what}: recorded {a} vs recomputed {b}"
    );
}

#[test]
fn step_zero_matches_the_libraries_backward_on_the_same_batch_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        seed: 9,
        patience: None,
        progress: Progress::Quiet,
        ..Default::default()
    };
    let mut m = model(3);
    let mut t = Trainer::<f64>::new(cfg.clone(), false);
    t.add_callback(GradRecorder::<f64>::new(dir.path(), 2));
    t.fit(&mut m, &data, None).unwrap();
    let grads = read_grads(&dir.path().join("grads.csv"));
    // 3 steps per epoch, 6 in all: updates-before 0, 2, 4 are recorded
    let steps: std::collections::BTreeSet<u64> = grads.keys().map(|k| k.0).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), vec![0, 2, 4]);

    // The same batch and weights by hand: seeded initial weights, the first shuffled batch,
    // dropout step 1.
    let mut r = model(3);
    let order = epoch_order(9, 1, data.len());
    let chunk = &order[..8];
    let xb = seqgrad::train::eval::model_input(&r, data.x.select(Axis(0), chunk));
    let yb = data.y.select(Axis(0), chunk).into_dyn();
    r.set_step(1);
    r.set_record_step_grads(true);
    r.zero_grad();
    // layer outputs, as the recorder saw them
    let mut acts = Vec::new();
    let logits = r
        .forward_logits_observed(xb.view(), Mode::Train, &mut |_, o| acts.push(o.clone()))
        .unwrap();
    let (_, g) = Loss::for_head(r.head())
        .compute(logits.view(), yb.view())
        .unwrap();
    r.backward_logits(g.view()).unwrap();
    let key = |l: &str, t: &str, s: &str| (0u64, l.to_string(), t.to_string(), s.to_string());
    let mut checked = 0;
    for (name, p) in r.named_params() {
        let layer = name.split('.').nth(1).unwrap().to_string();
        let l2 = p.grad.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mean_abs = p.grad.iter().map(|v| v.abs()).sum::<f64>() / p.grad.len() as f64;
        let max_abs = p.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        close(grads[&key(&layer, &name, "l2_norm")], l2, &name);
        close(grads[&key(&layer, &name, "mean_abs")], mean_abs, &name);
        close(grads[&key(&layer, &name, "max_abs")], max_abs, &name);
        assert!(l2 > 0.0, "{name} has a gradient");
        checked += 1;
    }
    assert_eq!(checked, 2 + 8 + 2);
    for (i, a) in acts.iter().enumerate() {
        let mean = a.sum() / a.len() as f64;
        close(
            grads[&key(&i.to_string(), "", "activation_mean")],
            mean,
            "activation_mean",
        );
    }
    // relu fractions on the conv layer only; gate saturation on the LSTM only
    assert!(grads.contains_key(&key("0", "", "dead_relu_fraction")));
    assert!(!grads.contains_key(&key("4", "", "dead_relu_fraction")));
    for gate in ["i", "f", "o"] {
        for d in ["forward", "reverse"] {
            let s = format!("saturated_gate_{gate}_{d}");
            let v = grads[&key("2", "", &s)];
            assert!((0.0..=1.0).contains(&v), "{s} = {v}");
        }
    }
    let pooled = grads[&key("2", "", "saturated_gate_fraction")];
    assert!((0.0..=1.0).contains(&pooled));
    // steps.csv: batch-mean ‖∂L/∂h_t‖ per direction and t
    let text = std::fs::read_to_string(dir.path().join("steps.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,layer,direction,t,norm"));
    let mut recorded: BTreeMap<(String, usize), f64> = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f[0] == "0" {
            assert_eq!(f[1], "2");
            recorded.insert(
                (f[2].to_string(), f[3].parse().unwrap()),
                f[4].parse().unwrap(),
            );
        }
    }
    let by_dir = r.layers()[2].step_grad_norms();
    assert_eq!(by_dir.len(), 2);
    assert_eq!(recorded.len(), 2 * 10);
    for (dir_name, norms) in by_dir {
        for (t, col) in norms.axis_iter(Axis(1)).enumerate() {
            let want = col.sum() / 8.0;
            close(
                recorded[&(dir_name.clone(), t)],
                want,
                &format!("{dir_name} t={t}"),
            );
        }
    }
    // update ratio of the first update: Adam from the same gradients
    let before: Vec<_> = r
        .named_params()
        .iter()
        .map(|(_, p)| p.value.clone())
        .collect();
    let mut opt = Optimizer::<f64>::new(cfg.optimizer);
    opt.step(r.named_params_mut());
    for ((name, p), w0) in r.named_params().into_iter().zip(&before) {
        let layer = name.split('.').nth(1).unwrap().to_string();
        let dw = (&p.value - w0).iter().map(|v| v * v).sum::<f64>().sqrt();
        let w = w0.iter().map(|v| v * v).sum::<f64>().sqrt();
        close(grads[&key(&layer, &name, "update_ratio")], dw / w, &name);
    }
}

#[test]
fn recording_does_not_change_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 8,
        seed: 4,
        progress: Progress::Quiet,
        ..Default::default()
    };
    let mut a = model(1);
    seqgrad::train::fit(&mut a, &data, None, false, &cfg).unwrap();
    let mut b = model(1);
    let mut t = Trainer::<f64>::new(cfg, false);
    t.add_callback(GradRecorder::<f64>::new(dir.path(), 1));
    t.fit(&mut b, &data, None).unwrap();
    for ((n, p), (_, q)) in a.named_params().into_iter().zip(b.named_params()) {
        assert_eq!(p.value, q.value, "{n}");
    }
}
