//! `seqgrad gradflow`: the CSV formats, the table, one-line errors, and that a bidirectional
//! layer learns a start-planted motif in a tiny run (library).

use seqgrad::gradflow::{self, Cell, GradflowConfig};

use crate::common::{fails_with, seqgrad};

#[test]
fn gradflow_writes_long_and_summary_csvs_and_prints_the_table() {
    let d = tempfile::tempdir().unwrap();
    let o = seqgrad(
        &[
            "gradflow",
            "--quiet",
            "--cells",
            "simple_rnn,gru",
            "--lengths",
            "12,20",
            "--init",
            "keras,chrono",
            "--seeds",
            "1,2",
            "--steps",
            "5",
            "--test-count",
            "40",
            "--record-count",
            "8",
            "--out",
            "gf",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let long = std::fs::read_to_string(d.path().join("gf/gradflow.csv")).unwrap();
    let mut lines = long.lines();
    assert_eq!(
        lines.next().unwrap(),
        "cell,bidirectional,length,init,seed,stage,direction,t,norm"
    );
    // The conv front end (width 9) leaves L − 8 recurrent steps. Per seed and stage: uni (1
    // direction) + bi (2 directions); simple_rnn has no gates, so it runs with keras only.
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let inits = 1 + 2;
    assert_eq!(rows.len(), inits * 2 * 2 * 3 * (4 + 12));
    for r in &rows {
        assert_eq!(r.len(), 9, "{r:?}");
        assert!(["simple_rnn", "gru"].contains(&r[0].as_str()));
        assert!(["true", "false"].contains(&r[1].as_str()));
        let len: usize = r[2].parse().unwrap();
        assert!(
            r[3] == "keras" || (r[3] == "chrono" && r[0] == "gru"),
            "{r:?}"
        );
        assert!(["1", "2"].contains(&r[4].as_str()));
        assert!(["init", "trained"].contains(&r[5].as_str()));
        assert!(["forward", "reverse"].contains(&r[6].as_str()));
        assert!(
            r[6] == "forward" || r[1] == "true",
            "reverse only for bidirectional"
        );
        let t: usize = r[7].parse().unwrap();
        assert!(t < len - 8);
        let n: f64 = r[8].parse().unwrap();
        assert!(n.is_finite() && n > 0.0, "{r:?}");
    }
    // t runs 0..L-9 in order within one curve
    let first: Vec<usize> = rows
        .iter()
        .filter(|r| {
            r[0] == "gru"
                && r[1] == "true"
                && r[2] == "12"
                && r[3] == "chrono"
                && r[4] == "2"
                && r[5] == "trained"
                && r[6] == "reverse"
        })
        .map(|r| r[7].parse().unwrap())
        .collect();
    assert_eq!(first, (0..4).collect::<Vec<_>>());

    let summary = std::fs::read_to_string(d.path().join("gf/gradflow_summary.csv")).unwrap();
    let mut sl = summary.lines();
    assert_eq!(
        sl.next().unwrap(),
        "cell,bidirectional,length,init,seed,direction,init_ratio,init_decay,trained_ratio,trained_decay,accuracy"
    );
    let srows: Vec<&str> = sl.collect();
    assert_eq!(srows.len(), inits * 2 * 3 * 2);
    let mut acc_of = Vec::new();
    for r in &srows {
        let f: Vec<&str> = r.split(',').collect();
        assert_eq!(f.len(), 11);
        let ratio: f64 = f[6].parse().unwrap();
        let decay: f64 = f[7].parse().unwrap();
        let steps: f64 = f[2].parse::<f64>().unwrap() - 8.0;
        // decay is the geometric mean per step of the ratio
        assert!((decay.powf(steps - 1.0) / ratio - 1.0).abs() < 1e-6, "{r}");
        let acc: f64 = f[10].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        if f[0] == "gru" && f[1] == "false" && f[2] == "20" && f[3] == "chrono" {
            acc_of.push(acc);
        }
    }
    // the table: a header, a rule, one row per variant and direction over the seeds
    let table: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    assert!(table[0].starts_with("cell") && table[0].contains("init first/last"));
    assert!(table[0].contains("trained decay/step") && table[0].ends_with("accuracy [range]"));
    assert!(table[1].chars().all(|c| c == '-'));
    assert_eq!(table.len(), 2 + inits * 3 * 2);
    assert!(
        table[2].starts_with("simple_rnn")
            && table[2].contains("uni")
            && table[2].contains("keras")
            && table[2].contains("forward")
    );
    // the mean and range over the two seeds, as the summary has them
    assert_eq!(acc_of.len(), 2);
    let row = table
        .iter()
        .find(|l| {
            l.starts_with("gru")
                && l.contains(" uni ")
                && l.contains("chrono")
                && l.contains(" 20 ")
        })
        .unwrap();
    let (lo, hi) = (acc_of[0].min(acc_of[1]), acc_of[0].max(acc_of[1]));
    assert!(
        row.ends_with(&format!(
            "{:.3} [{lo:.3}, {hi:.3}]",
            (acc_of[0] + acc_of[1]) / 2.0
        )),
        "{row}"
    );
    assert!(out.contains("simple_rnn has no gates"));
    assert!(out.contains("memoryless shortcut"));
    assert!(out.contains("gradflow.csv"));
    // the pictures, drawn from gradflow.csv: one per layer kind and init
    for kind in ["unidirectional", "bidirectional"] {
        for init in ["keras", "chrono"] {
            for ext in ["png", "svg"] {
                let p = d.path().join(format!("gf/gradflow_{kind}_{init}.{ext}"));
                assert!(
                    std::fs::metadata(&p).unwrap().len() > 1000,
                    "{}",
                    p.display()
                );
            }
        }
    }
    // and again from the CSVs alone
    std::fs::remove_file(d.path().join("gf/gradflow_bidirectional_chrono.png")).unwrap();
    let o = seqgrad(&["gradflow", "--plot-only", "--out", "gf"], d.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(d
        .path()
        .join("gf/gradflow_bidirectional_chrono.png")
        .exists());
}

#[test]
fn gradflow_bad_flags_are_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    fails_with(
        &seqgrad(&["gradflow", "--lengths", "5", "--out", "x"], d.path()),
        &["--lengths", "5", "at least 9"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--lengths", "9", "--out", "x"], d.path()),
        &["--lengths", "9", "--kernel-size 9"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--init", "glorot", "--out", "x"], d.path()),
        &["--init", "glorot", "keras or chrono"],
    );
    std::fs::write(
        d.path().join("dense.json"),
        r#"{"input_shape": [null, 4], "layers": [{"type": "global_maxpool1d"},
            {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
    )
    .unwrap();
    fails_with(
        &seqgrad(
            &["gradflow", "--model", "dense.json", "--out", "x"],
            d.path(),
        ),
        &["--model", "no recurrent layer"],
    );
    std::fs::write(
        d.path().join("fixed.json"),
        r#"{"input_shape": [40, 4], "layers": [{"type": "gru", "units": 2},
            {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
    )
    .unwrap();
    fails_with(
        &seqgrad(
            &[
                "gradflow",
                "--model",
                "fixed.json",
                "--lengths",
                "50",
                "--out",
                "x",
            ],
            d.path(),
        ),
        &["--model", "40", "--lengths"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--cells", "lstm,tcn", "--out", "x"], d.path()),
        &["tcn", "simple_rnn, lstm, gru"],
    );
    fails_with(
        &seqgrad(&["gradflow", "--layers", "both2", "--out", "x"], d.path()),
        &["--layers", "uni, bi or both"],
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn bidirectional_layers_learn_a_start_planted_motif() {
    let cfg = GradflowConfig {
        cells: Cell::ALL.to_vec(),
        lengths: vec![20],
        bidirectional: vec![true],
        inits: vec![gradflow::Init::Keras],
        seeds: vec![42],
        steps: 150,
        test_count: 200,
        record_count: 16,
        ..Default::default()
    };
    let results = gradflow::run(&cfg).unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(
            r.accuracy >= 0.9,
            "{} bi at length 20: accuracy {}",
            r.variant.cell.name(),
            r.accuracy
        );
        assert_eq!(r.init.len(), 2);
        assert_eq!(r.trained.len(), 2);
        // at initialisation the gradient shrinks going back through time, in both directions
        for c in &r.init {
            assert_eq!(c.norms.len(), 20 - 8);
            assert!(
                c.ratio() < 1.0,
                "{} {}: {}",
                r.variant.cell.name(),
                c.direction,
                c.ratio()
            );
        }
    }
}

/// `seqgrad grad --data --record-steps` and `gradflow::record_curves` measure the same model
/// on the same batch: the same per-step batch means at every `t` (0-based, sequence order,
/// both directions) and the same first/last ratio (farthest over nearest step).
#[test]
fn grad_record_steps_and_gradflow_give_the_same_per_step_numbers() {
    use seqgrad::data::synth;
    use seqgrad::model::Sequential;
    use seqgrad::weights::{read_tensors, write_tensors};

    let d = tempfile::tempdir().unwrap();
    let v = gradflow::Variant {
        cell: Cell::Lstm,
        bidirectional: true,
        length: 20,
        init: gradflow::Init::Chrono,
        seed: 3,
    };
    let spec = gradflow::model_spec(v, 4, 5, 3);
    std::fs::write(d.path().join("m.json"), spec.to_json()).unwrap();
    let mut m = Sequential::<f64>::from_spec(&spec, 3).unwrap();
    assert!(gradflow::apply_chrono(&mut m, 1, 3));
    let named = m.named_params();
    let tensors: Vec<(String, ndarray::ArrayViewD<'_, f64>)> = named
        .iter()
        .map(|(n, p)| (n.clone(), p.value.view()))
        .collect();
    write_tensors::<f64>(&d.path().join("w.safetensors"), &tensors).unwrap();
    drop(named);
    let (n, seed) = (8, 5);
    let records =
        synth::generate_start_planted(&gradflow::task_motifs(), n, 20, gradflow::MAX_OFFSET, seed)
            .unwrap();
    let mut csv = String::from("id,label,sequence\n");
    for r in &records {
        csv.push_str(&format!("{},{},{}\n", r.id, r.labels[0], r.seq));
    }
    std::fs::write(d.path().join("d.csv"), csv).unwrap();
    let ds = gradflow::task_data::<f64>(n, 20, gradflow::MAX_OFFSET, seed).unwrap();
    let curves = gradflow::record_curves(&mut m, 1, &ds.x, &ds.y).unwrap();
    assert_eq!(curves.len(), 2);

    let o = seqgrad(
        &[
            "grad",
            "--model",
            "m.json",
            "--weights",
            "w.safetensors",
            "--data",
            "d.csv",
            "--records",
            "8",
            "--record-steps",
            "--out",
            "o.safetensors",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let t = read_tensors(&d.path().join("o.safetensors")).unwrap();
    for c in &curves {
        let norms = &t[&format!("step_grad_norm.layers.1.{}", c.direction)].array;
        assert_eq!(norms.shape(), &[n, 16]);
        for (tt, want) in c.norms.iter().enumerate() {
            let got = (0..n).map(|b| norms[[b, tt]]).sum::<f64>() / n as f64;
            assert!(
                (got / want - 1.0).abs() < 1e-12,
                "{} t={tt}: {got} vs {want}",
                c.direction
            );
        }
        // the printed line: t = 0, middle, L−1 and the first/last ratio, as gradflow has them
        let line = out
            .lines()
            .find(|l| l.contains(&format!("layers.1 {}", c.direction)))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains(&format!("t=0 {:.3e}", c.norms[0])), "{line}");
        assert!(
            line.contains(&format!("t=15 {:.3e}", c.norms[15])),
            "{line}"
        );
        assert!(
            line.ends_with(&format!("(first/last {:.2e})", c.ratio())),
            "{line} vs {}",
            c.ratio()
        );
    }
    // the two directions' ratios are different numbers (so the test tells them apart)
    assert!((curves[0].ratio() / curves[1].ratio() - 1.0).abs() > 1e-3);
}

/// In a variable-length batch a record's padded steps are no steps of it: the per-step record
/// is NaN there, batch means and the gate saturation count the real steps only.
#[test]
fn padded_steps_are_left_out_of_step_norms_and_gate_saturation() {
    use ndarray::{s, Array2, Array3};
    use seqgrad::layers::rnn::step_means;
    use seqgrad::model::Sequential;
    use seqgrad::spec::ModelSpec;
    use seqgrad::tensor::Mode;

    let spec = ModelSpec::from_json(
        r#"{"input_shape": [null, 4], "layers": [
            {"type": "bidirectional", "layer": {"type": "lstm", "units": 3}},
            {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "test",
    )
    .unwrap();
    let (l, short) = (9, 4);
    let mut x = Array3::<f64>::zeros((2, l, 4));
    for t in 0..l {
        x[[0, t, t % 4]] = 1.0;
    }
    for t in 0..short {
        x[[1, t, (t + 1) % 4]] = 1.0;
    }
    // garbage past the short record's end: it must change nothing
    x.slice_mut(s![1, short.., ..]).fill(40.0);
    let y = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let mut m = Sequential::<f64>::from_spec(&spec, 2).unwrap();
    m.set_record_step_grads(true);
    let logits = m
        .forward_logits_masked(x.view().into_dyn(), Some(&[l, short]), Mode::Eval)
        .unwrap();
    let (_, g) = seqgrad::loss::Loss::for_head(m.head())
        .compute(logits.view(), y.view().into_dyn())
        .unwrap();
    m.backward_logits(g.view()).unwrap();
    let sat = m.layers()[0].gate_saturation();
    let norms = m.layers()[0].step_grad_norms();
    for (dir, n) in &norms {
        for t in 0..l {
            assert!(n[[0, t]].is_finite() && n[[0, t]] > 0.0, "{dir} {t}");
            assert_eq!(n[[1, t]].is_nan(), t >= short, "{dir} t={t}: {}", n[[1, t]]);
        }
        let means = step_means(n);
        assert_eq!(means[l - 1], n[[0, l - 1]]);
        assert!((means[0] - (n[[0, 0]] + n[[1, 0]]) / 2.0).abs() < 1e-15);
    }
    // the saturation over the real steps: each record alone, weighted by its steps
    let mut alone = |xr: ndarray::ArrayView3<f64>| {
        m.forward_logits(xr.into_dyn(), Mode::Eval).unwrap();
        m.layers()[0].gate_saturation()
    };
    let a = alone(x.slice(s![0..1, .., ..]));
    let b = alone(x.slice(s![1..2, ..short, ..]));
    for (k, (dir, gate, frac)) in sat.iter().enumerate() {
        let want = (a[k].2 * l as f64 + b[k].2 * short as f64) / (l + short) as f64;
        assert!(
            (frac - want).abs() < 1e-12,
            "{dir} {gate}: {frac} vs {want}"
        );
    }
}

/// `--model`: the experiment runs on a user's own conv→RNN model, its cell and layer kind
/// read from the file, at each of the lengths (input length null).
#[test]
fn a_users_model_runs_at_every_length() {
    let spec = seqgrad::spec::ModelSpec::from_json(
        r#"{"input_shape": [null, 4], "layers": [
            {"type": "conv1d", "filters": 3, "kernel_size": 5, "activation": "relu"},
            {"type": "maxpool1d", "pool_size": 2},
            {"type": "bidirectional", "layer": {"type": "gru", "units": 3}},
            {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "test",
    )
    .unwrap();
    let cfg = GradflowConfig {
        lengths: vec![16, 24],
        seeds: vec![1],
        steps: 3,
        test_count: 10,
        record_count: 4,
        model: Some(spec),
        ..Default::default()
    };
    let results = gradflow::run(&cfg).unwrap();
    assert_eq!(results.len(), 2);
    for (r, l) in results.iter().zip([16, 24]) {
        assert_eq!(r.variant.cell, Cell::Gru);
        assert!(r.variant.bidirectional);
        assert_eq!(r.variant.init, gradflow::Init::Model);
        assert_eq!(r.variant.length, l);
        // (L − 4) / 2 pooled steps, two directions
        assert_eq!(r.trained.len(), 2);
        assert_eq!(r.trained[0].norms.len(), (l - 4) / 2);
    }
}

/// The model-file options `bias_init`, `chrono_t_max` and `recurrent_init` (docs/rnn.md).
#[test]
fn model_files_choose_the_recurrent_initialisation() {
    use seqgrad::model::Sequential;
    use seqgrad::spec::ModelSpec;

    let build = |len: &str, layer: &str| {
        let json = format!(
            r#"{{"input_shape": [{len}, 4], "layers": [{layer},
                {{"type": "dense", "units": 2, "activation": "softmax"}}]}}"#
        );
        ModelSpec::from_json(&json, "m.json").and_then(|s| Sequential::<f64>::from_spec(&s, 4))
    };
    let param = |m: &Sequential<f64>, name: &str| {
        m.named_params()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .value
            .clone()
    };
    let u = 50;
    // chrono, T = the input length 40: forget biases in [0, ln 39], input gate = −forget
    let m = build(
        "40",
        &format!(r#"{{"type": "lstm", "units": {u}, "bias_init": "chrono"}}"#),
    )
    .unwrap();
    let (b, h) = (
        param(&m, "layers.0.bias_ih_l0"),
        param(&m, "layers.0.bias_hh_l0"),
    );
    let f: Vec<f64> = (u..2 * u).map(|j| b[j]).collect();
    assert!(f.iter().all(|&v| v >= 0.0 && v <= 39f64.ln()), "{f:?}");
    assert!((0..u).all(|j| b[j] == -b[u + j]));
    assert!(h.iter().all(|&v| v == 0.0));
    assert!(f.iter().any(|&v| v > 39f64.ln() - 1.0) && f.iter().any(|&v| v < 1.0));
    // chrono_t_max sets T; at null length it is required
    let m = build(
        "null",
        &format!(
            r#"{{"type": "bidirectional", "layer": {{"type": "gru", "units": {u}, "bias_init": "chrono", "chrono_t_max": 5}}}}"#
        ),
    )
    .unwrap();
    let z = param(&m, "layers.0.bias_ih_l0_reverse");
    assert!((u..2 * u).all(|j| z[j] >= 0.0 && z[j] <= 4f64.ln()));
    let e = build(
        "null",
        r#"{"type": "gru", "units": 3, "bias_init": "chrono"}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("chrono_t_max") && e.contains("null"), "{e}");
    // what does not make sense is refused
    let e = build(
        "20",
        r#"{"type": "simple_rnn", "units": 3, "bias_init": "chrono"}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("no gates"), "{e}");
    let e = build(
        "20",
        r#"{"type": "lstm", "units": 3, "recurrent_init": "identity"}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("identity") && e.contains("simple_rnn"), "{e}");
    // zeros, identity, and keras' forget bias 1 by default
    let m = build(
        "20",
        r#"{"type": "simple_rnn", "units": 3, "bias_init": "zeros", "recurrent_init": "identity", "init": "pytorch"}"#,
    )
    .unwrap();
    assert!(param(&m, "layers.0.bias_ih_l0").iter().all(|&v| v == 0.0));
    assert_eq!(
        param(&m, "layers.0.weight_hh_l0"),
        ndarray::Array2::<f64>::eye(3).into_dyn()
    );
    let m = build("20", r#"{"type": "lstm", "units": 3}"#).unwrap();
    let b = param(&m, "layers.0.bias_ih_l0");
    assert!((0..12).all(|j| b[j] == if (3..6).contains(&j) { 1.0 } else { 0.0 }));
    let m = build(
        "20",
        r#"{"type": "lstm", "units": 3, "bias_init": "zeros"}"#,
    )
    .unwrap();
    assert!(param(&m, "layers.0.bias_ih_l0").iter().all(|&v| v == 0.0));
}

/// Keras import: an LSTM's `unit_forget_bias` true is `bias_init` keras (the default, forget
/// bias 1), false is `zeros`.
#[test]
fn keras_unit_forget_bias_maps_to_bias_init() {
    use seqgrad::spec::{BiasInit, LayerSpec};
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras/stacked_rnns.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let bias = |v: &serde_json::Value| {
        let s = seqgrad::keras::spec_from_keras_json(&v.to_string(), "k").unwrap();
        match s.layers.iter().find(|l| matches!(l, LayerSpec::Lstm(_))) {
            Some(LayerSpec::Lstm(r)) => r.bias_init,
            _ => panic!("no lstm in {s:?}"),
        }
    };
    assert_eq!(bias(&v), None);
    v["config"]["layers"][4]["config"]["unit_forget_bias"] = serde_json::Value::Bool(false);
    assert_eq!(bias(&v), Some(BiasInit::Zeros));
}
