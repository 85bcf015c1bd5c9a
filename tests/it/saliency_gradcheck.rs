//! `seqgrad grad --data`, `seqgrad saliency` and `seqgrad gradcheck`: the saliency library
//! (integrated-gradients completeness, scores inside a planted motif, ISM reference base), the
//! TSV format, the gradient checker flagging a deliberately wrong layer, and the CLIs.

use ndarray::{Array3, ArrayD, ArrayViewD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use seqgrad::data::{self, Dataset, Labels, LengthPolicy, RawData, Record};
use seqgrad::error::{Result, ShapeIssue};
use seqgrad::gradcheck;
use seqgrad::saliency::{self, Baseline, Method, Options};
use seqgrad::spec::ModelSpec;
use seqgrad::{Layer, Mode, Param, Sequential};

use crate::common::{fails_with, motif_model, quick_config, seqgrad, setup, stderr};

/// The planted site (NF-κB consensus, 10 bp).
const SITE: &str = "GGGAATTTCC";

/// `count` random 40 bp records; odd ones (`pos`) carry [`SITE`] at a seeded position (returned),
/// even ones (`neg`) none.
fn planted(count: usize, seed: u64) -> (Dataset<f32>, Labels, Vec<Option<usize>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut records = Vec::new();
    let mut sites = Vec::new();
    for i in 0..count {
        let mut s: Vec<u8> = (0..40).map(|_| b"ACGT"[rng.random_range(0..4)]).collect();
        let label = if i % 2 == 1 {
            let p = rng.random_range(0..=40 - SITE.len());
            s[p..p + SITE.len()].copy_from_slice(SITE.as_bytes());
            sites.push(Some(p));
            "pos"
        } else {
            sites.push(None);
            "neg"
        };
        records.push(Record {
            id: format!("r{i}"),
            seq: String::from_utf8(s).unwrap(),
            labels: vec![label.into()],
            line: i + 2,
        });
    }
    let raw = RawData {
        path: "planted".into(),
        records,
        has_labels: true,
        multi_label: false,
    };
    let labels = Labels::from_data(&raw).unwrap();
    let ds = data::encode(&raw, &labels, LengthPolicy::default(), true).unwrap();
    (ds, labels, sites)
}

/// The f32 model trained on planted data, copied into f64.
fn trained_motif_model() -> Sequential<f64> {
    let (train, _, _) = planted(600, 1);
    let mut m = motif_model(3);
    seqgrad::train::fit(&mut m, &train, None, false, &quick_config(8)).unwrap();
    to_f64(&m)
}

fn to_f64(m: &Sequential<f32>) -> Sequential<f64> {
    let mut m64 = Sequential::<f64>::from_spec(m.spec(), 0).unwrap();
    let src: Vec<ArrayD<f64>> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.value.mapv(|v| v as f64))
        .collect();
    for ((_, p), v) in m64.named_params_mut().into_iter().zip(src) {
        p.value = v;
    }
    m64
}

fn x64(ds: &Dataset<f32>) -> Array3<f64> {
    ds.x.mapv(|v| v as f64)
}

#[test]
fn integrated_gradients_completeness_within_one_percent_at_default_steps() {
    // A trained conv → global max pool model (the max switches along the path) and a seeded
    // conv → maxpool → BiLSTM → dense relu model: the scores of every record sum to
    // f(x) − f(baseline) within 1% of |f(x) − f(baseline)|, for both baselines.
    let mut trained = trained_motif_model();
    let (test, _, _) = planted(40, 2);
    let x = x64(&test);
    let targets = vec![1; x.shape()[0]];
    let lstm = ModelSpec::from_json(
        r#"{"input_shape": [40, 4], "layers": [
          {"type": "conv1d", "filters": 8, "kernel_size": 5, "activation": "relu"},
          {"type": "maxpool1d", "pool_size": 3},
          {"type": "bidirectional", "layer": {"type": "lstm", "units": 6, "return_sequences": true}},
          {"type": "flatten"},
          {"type": "dense", "units": 8, "activation": "relu"},
          {"type": "dense", "units": 3, "activation": "softmax"}]}"#,
        "test",
    )
    .unwrap();
    let mut rnn = Sequential::<f64>::from_spec(&lstm, 4).unwrap();
    for (name, model) in [("trained conv", &mut trained), ("seeded lstm", &mut rnn)] {
        for baseline in [Baseline::Zeros, Baseline::Uniform] {
            let opts = Options {
                baseline,
                ..Options::default()
            };
            assert_eq!(opts.method, Method::IntegratedGradients);
            let s = saliency::saliency(model, x.view(), &targets, &opts).unwrap();
            let fb = s.f_baseline.as_ref().unwrap();
            let errs = s.completeness_error().unwrap();
            let worst = errs.iter().cloned().fold(0.0, f64::max);
            let refined = s.steps_used.iter().filter(|&&k| k > opts.steps).count();
            eprintln!(
                "{name} {baseline:?}: worst completeness error {worst:.2e}, {refined} of {} records refined (most steps {})",
                errs.len(),
                s.steps_used.iter().max().unwrap()
            );
            // A relative error of f(x) − f(x') ≈ 0 means nothing: such records (a seeded model
            // can map a record and the baseline to nearly the same logit) are left out, but
            // most records must count.
            let mut counted = 0;
            for (r, e) in errs.iter().enumerate() {
                let delta = s.fx[r] - fb[r];
                if delta.abs() < 1e-3 {
                    continue;
                }
                counted += 1;
                assert!(
                    *e < 0.01,
                    "{name} {baseline:?} record {r}: Σ = {}, f(x) − f(x') = {delta}",
                    s.scores.index_axis(ndarray::Axis(0), r).sum()
                );
            }
            assert!(
                counted >= 30,
                "{name} {baseline:?}: only {counted} records count"
            );
        }
    }
    // Far too few steps must break completeness on the trained model (the test can fail).
    let coarse = Options {
        steps: 2,
        max_steps: 2,
        ..Options::default()
    };
    let s = saliency::saliency(&mut trained, x.view(), &targets, &coarse).unwrap();
    let worst = s
        .completeness_error()
        .unwrap()
        .into_iter()
        .fold(0.0, f64::max);
    assert!(worst > 0.01, "2-step IG worst error {worst}");
}

#[test]
fn largest_scores_fall_inside_the_planted_motif() {
    let mut m = trained_motif_model();
    let (test, _, sites) = planted(60, 3);
    let x = x64(&test);
    // The model must have learnt the task.
    let pred = saliency::predicted(&mut m, x.view(), 64).unwrap();
    let correct = pred
        .iter()
        .zip(&sites)
        .filter(|(p, s)| **p == usize::from(s.is_some()))
        .count();
    assert!(correct >= 54, "held-out accuracy {correct}/60");
    for method in [Method::IntegratedGradients, Method::GradXInput, Method::Ism] {
        let opts = Options {
            method,
            ..Options::default()
        };
        let targets = vec![1; x.shape()[0]];
        let s = saliency::saliency(&mut m, x.view(), &targets, &opts).unwrap();
        let (mut inside, mut positives) = (0, 0);
        for (r, site) in sites.iter().enumerate() {
            let Some(p) = site else { continue };
            positives += 1;
            // The position whose reference base scores highest (ISM: the largest drop when it
            // is mutated, i.e. the most negative substitution summed over bases).
            let rec = s.scores.index_axis(ndarray::Axis(0), r);
            let score = |l: usize| -> f64 {
                let row = rec.index_axis(ndarray::Axis(0), l);
                match method {
                    Method::Ism => -row.sum(),
                    _ => row.sum(),
                }
            };
            let best = (0..40)
                .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                .unwrap();
            if (*p..p + SITE.len()).contains(&best) {
                inside += 1;
            }
        }
        eprintln!("{}: {inside} of {positives} inside", method.name());
        assert!(
            inside * 10 >= positives * 8,
            "{}: top position inside the motif for only {inside} of {positives}",
            method.name()
        );
    }
}

#[test]
fn ism_scores_zero_at_the_reference_base_and_exact_substitution_effects() {
    let mut m = trained_motif_model();
    let (test, _, _) = planted(6, 4);
    let x = x64(&test);
    let targets = vec![1, 0, 1, 1, 0, 1];
    let opts = Options {
        method: Method::Ism,
        ..Options::default()
    };
    let s = saliency::saliency(&mut m, x.view(), &targets, &opts).unwrap();
    let mut nonzero = 0;
    for r in 0..6 {
        for l in 0..40 {
            for b in 0..4 {
                let v = s.scores[[r, l, b]];
                if x[[r, l, b]] == 1.0 {
                    assert_eq!(v, 0.0, "reference base r{r} l{l}");
                } else if v != 0.0 {
                    nonzero += 1;
                }
            }
        }
    }
    assert!(nonzero > 100, "{nonzero} non-zero substitutions");
    // One substitution recomputed by hand.
    let (r, l, b) = (2, 17, (0..4).find(|&b| x[[2, 17, b]] == 0.0).unwrap());
    let mut xm = x.index_axis(ndarray::Axis(0), r).to_owned();
    xm.row_mut(l).fill(0.0);
    xm[[l, b]] = 1.0;
    let both = ndarray::stack![ndarray::Axis(0), x.index_axis(ndarray::Axis(0), r), xm];
    let z = saliency::logits(&mut m, both.view(), 8).unwrap();
    let want = z[[1, 1]] - z[[0, 1]];
    assert!((s.scores[[r, l, b]] - want).abs() < 1e-12);
}

#[test]
fn grad_and_grad_x_input_agree_with_finite_differences() {
    let mut m = trained_motif_model();
    let (test, _, _) = planted(3, 5);
    let x = x64(&test);
    let targets = vec![1, 1, 0];
    let g = saliency::saliency(
        &mut m,
        x.view(),
        &targets,
        &Options {
            method: Method::Grad,
            ..Options::default()
        },
    )
    .unwrap();
    let gx = saliency::saliency(
        &mut m,
        x.view(),
        &targets,
        &Options {
            method: Method::GradXInput,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(gx.scores, &g.scores * &x);
    let eps = 1e-6;
    for &(r, l, b) in &[(0, 3, 1), (1, 20, 2), (2, 35, 0)] {
        let mut p = x.clone();
        p[[r, l, b]] += eps;
        let mut q = x.clone();
        q[[r, l, b]] -= eps;
        let zp = saliency::logits(&mut m, p.view(), 8).unwrap();
        let zq = saliency::logits(&mut m, q.view(), 8).unwrap();
        let num = (zp[[r, targets[r]]] - zq[[r, targets[r]]]) / (2.0 * eps);
        assert!(
            (num - g.scores[[r, l, b]]).abs() < 1e-6,
            "{num} vs {}",
            g.scores[[r, l, b]]
        );
    }
}

/// y = w ⊙ x (per feature) with a deliberately wrong parameter gradient (missing the x factor)
/// or a wrong input gradient (sign flipped on odd features).
struct WrongScale {
    w: Param<f64>,
    x: Option<ArrayD<f64>>,
    wrong_input: bool,
}

impl Layer<f64> for WrongScale {
    fn kind(&self) -> String {
        "wrong_scale".into()
    }
    fn output_shape(&self, input: &[usize]) -> std::result::Result<Vec<usize>, ShapeIssue> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: ArrayViewD<'_, f64>, _mode: Mode) -> Result<ArrayD<f64>> {
        self.x = Some(x.to_owned());
        Ok(&x * &self.w.value)
    }
    fn backward(&mut self, dy: ArrayViewD<'_, f64>) -> Result<ArrayD<f64>> {
        let x = self.x.as_ref().unwrap();
        if self.wrong_input {
            self.w.grad += &(&dy * x).sum_axis(ndarray::Axis(0));
            let mut dx = &dy * &self.w.value;
            for (i, v) in dx.iter_mut().enumerate() {
                if i % 2 == 1 {
                    *v = -*v;
                }
            }
            Ok(dx)
        } else {
            // Wrong: ∂L/∂w = Σ_b dy ⊙ x, but this forgets x.
            self.w.grad += &dy.sum_axis(ndarray::Axis(0));
            Ok(&dy * &self.w.value)
        }
    }
    fn params(&self) -> Vec<&Param<f64>> {
        vec![&self.w]
    }
    fn params_mut(&mut self) -> Vec<&mut Param<f64>> {
        vec![&mut self.w]
    }
}

#[test]
fn gradcheck_flags_a_deliberately_wrong_layer() {
    let x = gradcheck::random_array(&[3, 5], 0.0, 1.0, 1);
    let dy = gradcheck::random_array(&[3, 5], -1.0, 1.0, 2);
    for wrong_input in [false, true] {
        let mut layer = WrongScale {
            w: Param::new("weight", gradcheck::random_array(&[5], 0.5, 1.5, 3)),
            x: None,
            wrong_input,
        };
        let r = gradcheck::check_layer_sampled(&mut layer, &x, &dy, Mode::Eval, 32, 0).unwrap();
        eprintln!("wrong_input={wrong_input}: {r}");
        assert!(!r.passes(1e-4), "{r}");
        if wrong_input {
            assert!(r.input > 0.1 && r.params[0].1 < 1e-6, "{r}");
        } else {
            assert!(r.params[0].1 > 0.1 && r.input < 1e-6, "{r}");
        }
        assert_eq!(r.checked[0], ("input".to_string(), 15, 15));
    }
}

#[test]
fn sampled_checks_of_every_layer_pass_on_a_real_model() {
    let spec =
        ModelSpec::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/models/splice.json")).unwrap();
    let mut m = Sequential::<f64>::from_spec(&spec, 1).unwrap();
    let x = gradcheck::random_array(&[2, 60, 4], 0.0, 1.0, 7);
    let checks = gradcheck::check_model_layers(&mut m, &x, None, Mode::Train, 8, 3).unwrap();
    assert_eq!(checks.len(), m.layers().len());
    for c in &checks {
        assert!(
            c.report.passes(1e-4),
            "layer {} {}: {}",
            c.index,
            c.kind,
            c.report
        );
        for (name, checked, total) in &c.report.checked {
            assert_eq!(*checked, (*total).min(8), "{name}");
        }
    }
    assert_eq!(checks[3].report.params[0].0, "layers.3.weight_ih_l0");
    assert!(gradcheck::check_model_layers(&mut m, &x, Some(&[8]), Mode::Train, 8, 3).is_err());
}

/// Trains the tiny CLI model into `run/` in the setup folder.
fn tiny_run(d: &tempfile::TempDir) {
    let o = seqgrad(
        &[
            "train",
            "--model",
            "m.json",
            "--data",
            "d.csv",
            "--epochs",
            "3",
            "--out",
            "run",
            "--progress",
            "quiet",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn saliency_cli_writes_the_tsv_format() {
    let d = setup();
    tiny_run(&d);
    for method in ["integrated_gradients", "grad", "grad_x_input", "ism"] {
        let o = seqgrad(
            &[
                "saliency",
                "--run",
                "run",
                "--data",
                "d.csv",
                "--records",
                "3",
                "--method",
                method,
                "--out",
                "s.tsv",
            ],
            d.path(),
        );
        assert!(o.status.success(), "{method}: {}", stderr(&o));
        let text = std::fs::read_to_string(d.path().join("s.tsv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "id\tposition\tA\tC\tG\tT");
        assert_eq!(lines.len(), 1 + 3 * 8, "{method}");
        for (k, line) in lines[1..].iter().enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6);
            assert_eq!(f[0], format!("r{}", k / 8));
            assert_eq!(f[1], (k % 8 + 1).to_string());
            let v: Vec<f64> = f[2..].iter().map(|s| s.parse().unwrap()).collect();
            if method == "ism" {
                // r0, r2 are ACGTACGT; r1 is TTTTGGGG: the reference base scores 0.
                let seq = if k / 8 == 1 { b"TTTTGGGG" } else { b"ACGTACGT" };
                let reference = b"ACGT".iter().position(|&c| c == seq[k % 8]).unwrap();
                assert_eq!(v[reference], 0.0, "{line}");
            }
        }
        let out = String::from_utf8_lossy(&o.stdout);
        if method == "integrated_gradients" {
            assert!(out.contains("completeness"), "{out}");
        }
    }
    // --ids in the given order, a class name as --target.
    let o = seqgrad(
        &[
            "saliency", "--run", "run", "--data", "d.csv", "--ids", "r5,r2", "--target", "yes",
            "--method", "grad", "--out", "t.tsv",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.path().join("t.tsv")).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("r5\t1\t"));
    assert!(text.lines().nth(9).unwrap().starts_with("r2\t1\t"));
    fails_with(
        &seqgrad(
            &[
                "saliency", "--run", "run", "--data", "d.csv", "--target", "maybe", "--out",
                "u.tsv",
            ],
            d.path(),
        ),
        &["--target \"maybe\"", "no, yes"],
    );
    fails_with(
        &seqgrad(
            &[
                "saliency", "--run", "run", "--data", "d.csv", "--ids", "r99", "--out", "u.tsv",
            ],
            d.path(),
        ),
        &["no record with id \"r99\""],
    );
    assert!(!d.path().join("u.tsv").exists());
}

#[test]
fn grad_data_cli_summarises_and_writes_the_tensors() {
    let d = setup();
    tiny_run(&d);
    let o = seqgrad(
        &[
            "grad",
            "--run",
            "run",
            "--data",
            "d.csv",
            "--records",
            "5",
            "--out",
            "g.safetensors",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for part in [
        "loss ",
        "‖∂L/∂input‖",
        "layers.0.weight",
        "layers.2.bias",
        "5 records",
    ] {
        assert!(out.contains(part), "{part:?} not in {out}");
    }
    let t = seqgrad::weights::read_tensors(&d.path().join("g.safetensors")).unwrap();
    assert_eq!(t["input_grad"].array.shape(), &[5, 8, 4]);
    assert_eq!(t["grad.layers.0.weight"].array.shape(), &[4, 4, 3]);
    assert_eq!(t["input"].array.shape(), &[5, 8, 4]);

    // The loss mode's gradients equal a hand-made --input run with output_grad = ∂L/∂output.
    let model = ModelSpec::from_file(d.path().join("run/model.json")).unwrap();
    let mut m = Sequential::<f32>::from_spec(&model, 0).unwrap();
    seqgrad::weights::load(&mut m, &d.path().join("run/weights.safetensors")).unwrap();
    let x: ArrayD<f32> = t["input"].array.mapv(|v| v as f32);
    let y = m.forward(x.view(), Mode::Eval).unwrap();
    // Labels: r0 yes, r1 no … ; classes sorted (no, yes); mean cross-entropy over 5 records:
    // ∂L/∂p = −t/p/5.
    let mut og = ArrayD::<f32>::zeros(IxDyn(&[5, 2]));
    for i in 0..5 {
        let c = if i % 2 == 0 { 1 } else { 0 };
        og[[i, c]] = -1.0 / y[[i, c]] / 5.0;
    }
    let dx = m.backward(og.view()).unwrap();
    for (a, b) in dx.iter().zip(t["input_grad"].array.iter()) {
        assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }

    // --target by name, --ids.
    let o = seqgrad(
        &[
            "grad", "--run", "run", "--data", "d.csv", "--ids", "r3,r4", "--target", "yes",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("logit of class 1 (yes)"));
    fails_with(
        &seqgrad(
            &["grad", "--model", "m.json", "--input", "x.safetensors"],
            d.path(),
        ),
        &["--input needs --out"],
    );
    fails_with(
        &seqgrad(
            &["grad", "--run", "run", "--data", "d.csv", "--records", "0"],
            d.path(),
        ),
        &["--records must be at least 1"],
    );
}

#[test]
fn gradcheck_cli_passes_on_a_small_model_and_refuses_bad_layers() {
    let d = setup();
    std::fs::write(
        d.path().join("small.json"),
        r#"{"input_shape": [20, 4], "layers": [
          {"type": "conv1d", "filters": 6, "kernel_size": 5, "activation": "relu"},
          {"type": "maxpool1d", "pool_size": 2},
          {"type": "dropout", "rate": 0.2},
          {"type": "bidirectional", "layer": {"type": "gru", "units": 5, "return_sequences": true}},
          {"type": "flatten"},
          {"type": "dense", "units": 8, "activation": "relu"},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
    )
    .unwrap();
    let o = seqgrad(&["gradcheck", "--model", "small.json"], d.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("all ") && out.contains("checks pass"), "{out}");
    assert!(out.contains("layers.3.weight_hh_l0_reverse"), "{out}");
    assert!(out.contains("whole model"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // A tolerance no finite difference can meet fails with exit code 1.
    let o = seqgrad(
        &[
            "gradcheck",
            "--model",
            "small.json",
            "--tolerance",
            "1e-300",
            "--layers",
            "5",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
    fails_with(
        &seqgrad(
            &["gradcheck", "--model", "small.json", "--layers", "9"],
            d.path(),
        ),
        &["layer 9 does not exist", "7 layers"],
    );
}
