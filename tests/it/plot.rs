//! The drawers of `seqgrad::plot`: each writes non-empty PNG and SVG files from small sample
//! inputs (made here, in the formats `train --record-grads`, `gradflow` and `saliency` write),
//! and a missing or garbled file gives a one-line error naming the file and the line.
//!
//! Set `SEQGRAD_PLOT_KEEP=DIR` to keep the pictures in DIR for looking at them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use seqgrad::plot;

use crate::common::{fails_with, seqgrad};

/// A deterministic pseudo-random number in [0, 1) (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where the pictures go: a kept folder if asked for, else a temporary one.
fn out_dir(tmp: &Path, name: &str) -> PathBuf {
    match std::env::var_os("SEQGRAD_PLOT_KEEP") {
        Some(d) => PathBuf::from(d).join(name),
        None => tmp.join(name),
    }
}

/// A DanQ-like run: history (with validation and a NaN epoch), grads.csv with every
/// statistic (plus an unknown one, infinite bias ratios at step 0), steps.csv for a
/// bidirectional LSTM (with a zero norm).
pub fn sample_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut h =
        String::from("epoch,loss,accuracy,val_loss,val_accuracy,grad_norm,grad_norm_max,seconds\n");
    for e in 1..=8 {
        let l = 1.1 * (-0.25 * e as f64).exp() + 0.3;
        let vl = if e == 6 {
            f64::NAN
        } else {
            l + 0.02 * (e as f64 - 4.0).powi(2) / 4.0 + 0.05
        };
        writeln!(
            h,
            "{e},{l},{},{vl},{},{},{},{}",
            1.0 - l / 2.0,
            1.0 - vl / 2.1,
            2.0 / e as f64,
            4.0 / e as f64,
            3.5
        )
        .unwrap();
    }
    std::fs::write(dir.join("history.csv"), h).unwrap();

    let tensors: &[(&str, &[&str])] = &[
        ("layers.0", &["weight", "bias"]),
        (
            "layers.3",
            &[
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_ih_l0_reverse",
                "weight_hh_l0_reverse",
                "bias_ih_l0_reverse",
                "bias_hh_l0_reverse",
            ],
        ),
        ("layers.5", &["weight", "bias"]),
        ("layers.7", &["weight", "bias"]),
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut g = String::from("step,layer,tensor,statistic,value\n");
    let mut s = String::from("step,layer,direction,t,norm\n");
    for step in (0..=300).step_by(20) {
        let decay = (-(step as f64) / 150.0).exp();
        for (li, (prefix, names)) in tensors.iter().enumerate() {
            // The layer column holds the layer index, as `train --record-grads` writes it.
            let layer = prefix.trim_start_matches("layers.");
            for name in names.iter() {
                let scale = 10f64.powi(-(li as i32)) * (0.3 + decay) * (0.8 + 0.4 * rng.next());
                let t = format!("{prefix}.{name}");
                writeln!(g, "{step},{layer},{t},l2_norm,{}", scale * 5.0).unwrap();
                writeln!(g, "{step},{layer},{t},mean_abs,{}", scale * 0.01).unwrap();
                writeln!(g, "{step},{layer},{t},max_abs,{}", scale * 0.2).unwrap();
                let ratio = if name.starts_with("bias") && step == 0 {
                    f64::INFINITY
                } else {
                    1e-3 * (0.2 + decay) * 10f64.powf(li as f64 * 0.3 - 0.5)
                };
                writeln!(g, "{step},{layer},{t},update_ratio,{ratio}").unwrap();
                writeln!(g, "{step},{layer},{t},some_future_statistic,1").unwrap();
            }
            writeln!(g, "{step},{layer},,activation_mean,{}", 0.1 * li as f64).unwrap();
            writeln!(
                g,
                "{step},{layer},,activation_std,{}",
                0.5 + 0.1 * li as f64
            )
            .unwrap();
            if li == 0 {
                writeln!(
                    g,
                    "{step},{layer},,dead_relu_fraction,{}",
                    0.05 + 0.2 * (1.0 - decay)
                )
                .unwrap();
            }
            if li == 1 {
                for d in ["forward", "reverse"] {
                    writeln!(
                        g,
                        "{step},{layer},,saturated_gates_{d},{}",
                        0.02 + 0.3 * (1.0 - decay) + if d == "reverse" { 0.05 } else { 0.0 }
                    )
                    .unwrap();
                }
            }
        }
        for dir_name in ["forward", "reverse"] {
            for t in 0..75 {
                let dist = if dir_name == "forward" { 74 - t } else { t } as f64;
                let rate = 0.75 + 0.2 * (1.0 - decay);
                let norm = if step == 0 && t == 0 && dir_name == "forward" {
                    0.0
                } else {
                    1e-2 * rate.powf(dist) * (0.9 + 0.2 * rng.next())
                };
                writeln!(s, "{step},3,{dir_name},{t},{norm}").unwrap();
            }
        }
    }
    std::fs::write(dir.join("grads.csv"), g).unwrap();
    std::fs::write(dir.join("steps.csv"), s).unwrap();
}

/// A gradflow.csv: three cells, uni- and bidirectional, two lengths, init and trained, with
/// an underflow to 0 in the GRU.
pub fn sample_gradflow(path: &Path) {
    let mut s = String::from("cell,bidirectional,length,stage,direction,t,norm\n");
    for (cell, init_rate, trained_rate) in [
        ("simple_rnn", 0.87, 0.9),
        ("lstm", 0.73, 0.97),
        ("gru", 0.64, 0.99),
    ] {
        for bi in [false, true] {
            for length in [25u32, 50, 100, 200] {
                for (stage, rate) in [("init", init_rate), ("trained", trained_rate)] {
                    let dirs: &[&str] = if bi {
                        &["forward", "reverse"]
                    } else {
                        &["forward"]
                    };
                    for d in dirs {
                        for t in 1..=length {
                            let dist = if *d == "forward" { length - t } else { t - 1 } as f64;
                            let mut norm = 0.05 * f64::powf(rate, dist);
                            if norm < 1e-38 {
                                norm = 0.0;
                            }
                            writeln!(s, "{cell},{bi},{length},{stage},{d},{t},{norm}").unwrap();
                        }
                    }
                }
            }
        }
    }
    std::fs::write(path, s).unwrap();
}

fn assert_pictures(files: &[PathBuf], stems: &[&str]) {
    for stem in stems {
        for ext in ["png", "svg"] {
            let f = files
                .iter()
                .find(|f| {
                    f.file_stem().is_some_and(|s| s == *stem)
                        && f.extension().is_some_and(|e| e == ext)
                })
                .unwrap_or_else(|| panic!("{stem}.{ext} not in {files:?}"));
            let bytes = std::fs::read(f).unwrap();
            assert!(
                bytes.len() > 1000,
                "{} is only {} bytes",
                f.display(),
                bytes.len()
            );
            if ext == "png" {
                assert_eq!(&bytes[1..4], b"PNG", "{}", f.display());
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(
                    text.contains("<svg") && text.contains("<text"),
                    "{}",
                    f.display()
                );
            }
        }
    }
    // No temporary files left behind.
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        for e in std::fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.contains(".tmp-"), "stray temporary file {n}");
        }
    }
}

#[test]
fn plot_run_draws_every_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    sample_run(&run);
    let out = out_dir(tmp.path(), "run_plots");
    let files = plot::plot_run(&run, &out).unwrap();
    assert_pictures(
        &files,
        &[
            "training_curves",
            "grad_norm",
            "update_ratio",
            "grad_bars",
            "activations",
            "steps_3",
        ],
    );
    assert_eq!(files.len(), 12, "{files:?}");
}

#[test]
fn plot_run_without_recorded_gradients_draws_the_training_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    sample_run(&run);
    std::fs::remove_file(run.join("grads.csv")).unwrap();
    std::fs::remove_file(run.join("steps.csv")).unwrap();
    // Without validation and without metrics: loss only, best = min loss.
    std::fs::write(
        run.join("history.csv"),
        "epoch,loss,grad_norm,grad_norm_max,seconds\n1,0.9,1,2,1\n2,0.7,1,2,1\n3,0.75,1,2,1\n",
    )
    .unwrap();
    let out = out_dir(tmp.path(), "loss_only");
    let files = plot::plot_run(&run, &out).unwrap();
    assert_pictures(&files, &["training_curves"]);
    assert_eq!(files.len(), 2);
}

#[test]
fn plot_gradflow_draws_uni_and_bidirectional() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("gradflow.csv");
    sample_gradflow(&csv);
    let out = out_dir(tmp.path(), "gradflow");
    let files = plot::plot_gradflow(&csv, &out).unwrap();
    assert_pictures(
        &files,
        &["gradflow_unidirectional", "gradflow_bidirectional"],
    );
}

#[test]
fn saliency_logos_from_scores_and_tsv() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path(), "saliency");
    // A planted motif (TATA) scored high, noise elsewhere, one negative base per position.
    let mut rng = Rng(7);
    let scores: Vec<[f64; 4]> = (0..60)
        .map(|i| {
            let mut s = [0.0; 4];
            for v in &mut s {
                *v = 0.05 * (rng.next() - 0.5);
            }
            if (20..24).contains(&i) {
                s[if i % 2 == 0 { 3 } else { 0 }] = 0.8 + 0.2 * rng.next();
            }
            if i == 30 {
                s[2] = -0.6;
                s[1] = -0.3;
            }
            s
        })
        .collect();
    let files = plot::saliency_logo("rec/1 planted", &scores, &out.join("rec1.png")).unwrap();
    assert_pictures(&files, &["rec1"]);

    let mut tsv = String::from("id\tposition\tA\tC\tG\tT\n");
    for id in ["seq_a", "seq:b"] {
        for (p, s) in scores.iter().enumerate().take(40) {
            writeln!(
                tsv,
                "{id}\t{}\t{}\t{}\t{}\t{}",
                p + 1,
                s[0],
                s[1],
                s[2],
                s[3]
            )
            .unwrap();
        }
    }
    let path = tmp.path().join("scores.tsv");
    std::fs::write(&path, tsv).unwrap();
    let files = plot::saliency_logos_from_tsv(&path, &out).unwrap();
    assert_pictures(&files, &["saliency_seq_a", "saliency_seq_b"]);
}

fn one_line_err(e: seqgrad::Error, parts: &[&str]) {
    let msg = e.to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in {msg}");
    }
}

#[test]
fn garbled_files_give_one_line_errors_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    sample_run(&run);
    let out = tmp.path().join("out");
    // A short row in grads.csv.
    let mut g = std::fs::read_to_string(run.join("grads.csv")).unwrap();
    g.push_str("300,layers.0,layers.0.weight,l2_norm\n");
    let line = g.lines().count().to_string();
    std::fs::write(run.join("grads.csv"), &g).unwrap();
    let e = plot::plot_run(&run, &out).unwrap_err();
    one_line_err(
        e,
        &["grads.csv", &format!("line {line}"), "expected 5 fields"],
    );

    // A word where a number belongs in steps.csv.
    sample_run(&run);
    std::fs::write(
        run.join("steps.csv"),
        "step,layer,direction,t,norm\n0,layers.3,forward,0,0.5\n0,layers.3,forward,1,lots\n",
    )
    .unwrap();
    let e = plot::plot_run(&run, &out).unwrap_err();
    one_line_err(e, &["steps.csv", "line 3", "'lots'", "norm"]);

    // A missing column in history.csv.
    std::fs::write(run.join("history.csv"), "epoch,accuracy\n1,0.5\n").unwrap();
    let e = plot::plot_run(&run, &out).unwrap_err();
    one_line_err(e, &["history.csv", "line 1", "'loss'"]);

    // gradflow: bad boolean; missing file.
    let gf = tmp.path().join("gradflow.csv");
    std::fs::write(
        &gf,
        "cell,bidirectional,length,stage,direction,t,norm\nlstm,maybe,25,init,forward,1,0.1\n",
    )
    .unwrap();
    let e = plot::plot_gradflow(&gf, &out).unwrap_err();
    one_line_err(e, &["gradflow.csv", "line 2", "maybe"]);
    let e = plot::plot_gradflow(&tmp.path().join("nope.csv"), &out).unwrap_err();
    one_line_err(e, &["nope.csv"]);

    // saliency TSV: repeated position; empty file.
    let tsv = tmp.path().join("s.tsv");
    std::fs::write(
        &tsv,
        "id\tposition\tA\tC\tG\tT\nr\t1\t0\t0\t0\t1\nr\t1\t0\t1\t0\t0\n",
    )
    .unwrap();
    let e = plot::saliency_logos_from_tsv(&tsv, &out).unwrap_err();
    one_line_err(e, &["s.tsv", "line 3", "position 1 twice"]);
    std::fs::write(&tsv, "").unwrap();
    let e = plot::saliency_logos_from_tsv(&tsv, &out).unwrap_err();
    one_line_err(e, &["s.tsv", "empty"]);
}

#[test]
fn cli_plot_prints_the_files_and_rejects_a_non_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    sample_run(&run);
    std::fs::remove_file(run.join("grads.csv")).unwrap();
    let o = seqgrad(&["plot", "run"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("training_curves.png"), "{stdout}");
    assert!(stdout.contains("steps_3.svg"), "{stdout}");
    assert!(run.join("plots").join("training_curves.png").exists());

    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let o = seqgrad(&["plot", "empty"], tmp.path());
    fails_with(&o, &["empty", "nothing to draw"]);
    let o = seqgrad(&["plot", "absent"], tmp.path());
    fails_with(&o, &["absent", "does not exist"]);
}

#[test]
fn degenerate_inputs_draw_without_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("tiny");
    std::fs::create_dir_all(&run).unwrap();
    // One epoch, validation all NaN, a stale best epoch in history.json.
    std::fs::write(
        run.join("history.csv"),
        "epoch,loss,roc_auc,pr_auc,val_loss,val_roc_auc,val_pr_auc,grad_norm,grad_norm_max,seconds\n\
         1,0.69,0.5,0.4,NaN,NaN,NaN,1,1,1\n",
    )
    .unwrap();
    std::fs::write(run.join("history.json"), r#"{"best_epoch": 7}"#).unwrap();
    // One recorded step, all-zero gradients, an unknown statistic only for one tensor.
    std::fs::write(
        run.join("grads.csv"),
        "step,layer,tensor,statistic,value\n\
         0,0,layers.0.weight,l2_norm,0\n0,0,layers.0.weight,mean_abs,0\n\
         0,0,layers.0.weight,max_abs,0\n0,0,layers.0.weight,update_ratio,NaN\n\
         0,1,layers.1.weight,brand_new,3\n",
    )
    .unwrap();
    // One row, norm 0.
    std::fs::write(
        run.join("steps.csv"),
        "step,layer,direction,t,norm\n0,1,forward,0,0\n",
    )
    .unwrap();
    let out = out_dir(tmp.path(), "tiny_plots");
    let files = plot::plot_run(&run, &out).unwrap();
    assert_pictures(
        &files,
        &[
            "training_curves",
            "grad_norm",
            "update_ratio",
            "grad_bars",
            "steps_1",
        ],
    );

    // Gradflow with one stage, one length; a logo of zeros and one of a single position.
    let gf = tmp.path().join("gradflow.csv");
    std::fs::write(
        &gf,
        "cell,bidirectional,length,stage,direction,t,norm\n\
         lstm,false,3,init,forward,1,0\nlstm,false,3,init,forward,2,1e-300\nlstm,false,3,init,forward,3,inf\n",
    )
    .unwrap();
    let files = plot::plot_gradflow(&gf, &out).unwrap();
    assert_pictures(&files, &["gradflow_unidirectional"]);
    let files = plot::saliency_logo("zeros", &[[0.0; 4]; 5], &out.join("zeros.png")).unwrap();
    assert_pictures(&files, &["zeros"]);
    let files =
        plot::saliency_logo("one", &[[f64::NAN, -1.0, 2.0, 0.5]], &out.join("one.png")).unwrap();
    assert_pictures(&files, &["one"]);
}
