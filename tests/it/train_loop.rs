//! The training loop: a fixed-seed run learns, training is bit-identical across thread counts,
//! a non-finite loss names the layer, and checkpoints/history are written.

use seqgrad::model::Sequential;
use seqgrad::spec::ModelSpec;
use seqgrad::train::fit;

use crate::common::{motif_data, motif_model, quick_config};

#[test]
fn fixed_seed_run_learns_planted_motifs() {
    let (ds, _) = motif_data(200, 11);
    let (valid, _) = motif_data(100, 12);
    let mut m = motif_model(3);
    let h = fit(&mut m, &ds, Some(&valid), false, &quick_config(15)).unwrap();
    let loss = h.column("loss").unwrap();
    let val_acc = h.column("val_accuracy").unwrap();
    assert!(loss[0] > 0.5, "first epoch loss {}", loss[0]);
    let best = h.best_epoch - 1;
    assert!(
        h.column("val_loss").unwrap()[best] < 0.3,
        "{:?}",
        h.column("val_loss")
    );
    assert!(val_acc[best] > 0.9, "{val_acc:?}");
    assert!(h.to_csv().starts_with(
        "epoch,loss,accuracy,val_loss,val_accuracy,grad_norm,grad_norm_max,seconds\n"
    ));
}

fn train_in_pool(threads: usize, seed: u64) -> (Vec<Vec<u32>>, Vec<Vec<u64>>) {
    let (ds, _) = motif_data(120, 21);
    let (valid, _) = motif_data(40, 22);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| {
            let spec = ModelSpec::from_json(
                r#"{"input_shape": [40, 4], "layers": [
              {"type": "conv1d", "filters": 8, "kernel_size": 9, "activation": "relu"},
              {"type": "maxpool1d", "pool_size": 4},
              {"type": "dropout", "rate": 0.2},
              {"type": "bidirectional", "layer": {"type": "lstm", "units": 6}},
              {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
                "bilstm",
            )
            .unwrap();
            let mut m = Sequential::<f32>::from_spec(&spec, 9).unwrap();
            let mut cfg = quick_config(3);
            cfg.seed = seed;
            cfg.rc_augment = true;
            cfg.optimizer = seqgrad::optim::OptimizerConfig::named("rmsprop").unwrap();
            cfg.clip_norm = Some(1.0);
            let h = fit(&mut m, &ds, Some(&valid), false, &cfg).unwrap();
            let w = m
                .named_params()
                .iter()
                .map(|(_, p)| p.value.iter().map(|v| v.to_bits()).collect())
                .collect();
            // history without the wall-clock column
            let hist = h
                .rows
                .iter()
                .map(|r| r[..r.len() - 1].iter().map(|v| v.to_bits()).collect())
                .collect();
            (w, hist)
        })
}

#[test]
fn bit_identical_across_thread_counts() {
    let one = train_in_pool(1, 5);
    let two = train_in_pool(2, 5);
    assert_eq!(one.0, two.0, "weights differ between 1 and 2 threads");
    assert_eq!(one.1, two.1, "history differs between 1 and 2 threads");
    // and the run depends on the seed (so the comparison above means something)
    assert_ne!(one.0, train_in_pool(2, 6).0);
}

#[test]
fn non_finite_loss_names_the_layer_and_keeps_the_checkpoint() {
    let (ds, _) = motif_data(64, 31);
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("w.safetensors");
    let mut m = motif_model(4);
    let mut cfg = quick_config(2);
    cfg.checkpoint = Some(ckpt.clone());
    fit(&mut m, &ds, None, false, &cfg).unwrap();
    let saved = std::fs::read(&ckpt).unwrap();
    // poison the last dense layer's bias
    for (name, p) in m.named_params_mut() {
        if name == "layers.3.bias" {
            p.value.fill(f32::NAN);
        }
    }
    let err = fit(&mut m, &ds, None, false, &cfg).unwrap_err().to_string();
    assert!(
        err.contains("non-finite loss")
            && err.contains("step 1")
            && err.contains("layer #3 (dense)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        saved,
        "checkpoint must stay the last good one"
    );
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let (ds, _) = motif_data(64, 41);
    let (valid, _) = motif_data(32, 42);
    let mut m = motif_model(4);
    let mut cfg = quick_config(40);
    cfg.optimizer.lr = 0.05;
    cfg.patience = Some(2);
    let h = fit(&mut m, &ds, Some(&valid), false, &cfg).unwrap();
    let vl = h.column("val_loss").unwrap();
    assert!(h.stopped_early, "{vl:?}");
    assert_eq!(h.rows.len(), h.best_epoch + 2);
    let best = vl.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(vl[h.best_epoch - 1], best);
    let e = seqgrad::train::evaluate(&mut m, &valid, 7, false).unwrap();
    assert!(
        (e.loss - best).abs() < 1e-5,
        "restored loss {} vs best {best}",
        e.loss
    );
}

#[test]
fn flat_input_model_trains_on_flattened_sequences() {
    let (ds, _) = motif_data(200, 51);
    let spec = ModelSpec::from_json(
        r#"{"input_shape": [160], "layers": [
          {"type": "dense", "units": 16, "activation": "relu"},
          {"type": "dense", "units": 2, "activation": "softmax"}]}"#,
        "flat",
    )
    .unwrap();
    let mut m = Sequential::<f32>::from_spec(&spec, 1).unwrap();
    let mut cfg = quick_config(10);
    cfg.optimizer = seqgrad::optim::OptimizerConfig::named("sgd").unwrap();
    cfg.optimizer.kind = seqgrad::optim::OptimizerKind::Sgd {
        momentum: 0.9,
        nesterov: true,
    };
    cfg.optimizer.lr = 0.05;
    let h = fit(&mut m, &ds, None, false, &cfg).unwrap();
    let loss = h.column("loss").unwrap();
    assert!(loss[loss.len() - 1] < 0.5 * loss[0], "{loss:?}");
    // a model whose input does not match the data is refused with both shapes
    let bad = ModelSpec::from_json(r#"{"input_shape": [50, 4], "layers": [{"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]}"#, "b").unwrap();
    let mut b = Sequential::<f32>::from_spec(&bad, 1).unwrap();
    let e = fit(&mut b, &ds, None, false, &cfg).unwrap_err().to_string();
    assert!(e.contains("(50, 4)") && e.contains("(40, 4)"), "{e}");
}
