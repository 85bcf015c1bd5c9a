//! Training guards: a parameter that becomes non-finite after an optimizer step, a non-finite
//! gradient, and a non-finite validation loss each stop training with an error naming the step
//! and where; the per-epoch history (with the pre-clipping gradient norm) is on disk after every
//! epoch; errors name a checkpoint only when one was saved.

use seqgrad::train::fit;

use crate::common::{motif_data, motif_model, quick_config};

#[test]
fn a_parameter_that_becomes_non_finite_after_a_step_stops_training() {
    let ds = motif_data(64, 1).0;
    let dir = tempfile::tempdir().unwrap();
    let mut m = motif_model(2);
    let mut cfg = quick_config(3);
    // 1e39 is beyond f32: the learning rate itself is infinite in f32, so step 1 breaks the
    // first parameter.
    cfg.optimizer.lr = 1e39;
    cfg.checkpoint = Some(dir.path().join("w.safetensors"));
    cfg.history_dir = Some(dir.path().to_path_buf());
    let e = fit(&mut m, &ds, None, false, &cfg).unwrap_err().to_string();
    for part in [
        "epoch 1, step 1 (global step 1)",
        "parameter layers.0.weight (layer #0, conv1d) became non-finite after the optimizer step",
        "lr 1e39",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    // nothing was saved, so no checkpoint is claimed
    assert!(!e.contains("checkpoint"), "{e}");
    assert!(!dir.path().join("w.safetensors").exists());
    assert!(!dir.path().join("history.csv").exists());
}

#[test]
fn no_validation_set_and_a_diverging_last_step_is_not_saved_as_best() {
    // The reviewer's case: no validation set, so the monitor is the training loss, computed
    // before the step. One step in all (64 records, batch 64): RMSprop moves each weight by
    // about lr·√10 = 6e38, beyond f32, while the loss of that step was finite. Before the
    // post-step check these weights were saved as the best.
    let ds = motif_data(64, 3).0;
    let dir = tempfile::tempdir().unwrap();
    let mut m = motif_model(2);
    let mut cfg = quick_config(1);
    cfg.batch_size = 64;
    cfg.optimizer = seqgrad::optim::OptimizerConfig::named("rmsprop").unwrap();
    cfg.optimizer.lr = 2e38;
    cfg.checkpoint = Some(dir.path().join("w.safetensors"));
    let e = fit(&mut m, &ds, None, false, &cfg).unwrap_err().to_string();
    for part in [
        "epoch 1, step 1 (global step 1): parameter layers.",
        "became non-finite after the optimizer step (lr 2e38",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    assert!(!dir.path().join("w.safetensors").exists());
}

#[test]
fn an_error_after_a_saved_checkpoint_names_it() {
    // One step per epoch; RMSprop with lr 1e38 moves weights to about ±3.2e38 (still finite
    // in f32) in epoch 1, which is saved as the best (training loss); epoch 2 then breaks.
    let ds = motif_data(64, 3).0;
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("w.safetensors");
    let mut m = motif_model(2);
    let mut cfg = quick_config(3);
    cfg.batch_size = 64;
    cfg.optimizer = seqgrad::optim::OptimizerConfig::named("rmsprop").unwrap();
    cfg.optimizer.lr = 1e38;
    cfg.checkpoint = Some(ckpt.clone());
    let e = fit(&mut m, &ds, None, false, &cfg).unwrap_err().to_string();
    assert!(e.contains("at epoch 2, step 1 (global step 2)"), "{e}");
    assert!(
        e.contains(&format!(
            "the last good checkpoint is {} (epoch 1)",
            ckpt.display()
        )),
        "{e}"
    );
    let mut m2 = motif_model(2);
    seqgrad::weights::load(&mut m2, &ckpt).unwrap();
    for (n, p) in m2.named_params() {
        assert!(p.value.iter().all(|v| v.is_finite()), "{n}");
    }
}

#[test]
fn a_non_finite_validation_loss_names_the_epoch_step_batch_and_layer() {
    let ds = motif_data(64, 5).0;
    let mut valid = motif_data(40, 6).0;
    // a NaN in record 30 of the validation set (records 1..40 are one evaluation batch)
    valid.x[[29, 3, 1]] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    let mut m = motif_model(2);
    let mut cfg = quick_config(3);
    cfg.checkpoint = Some(dir.path().join("w.safetensors"));
    cfg.history_dir = Some(dir.path().to_path_buf());
    let e = fit(&mut m, &ds, Some(&valid), false, &cfg)
        .unwrap_err()
        .to_string();
    for part in [
        "non-finite validation loss (NaN) at epoch 1, after global step 4",
        "validation records 1..40 (first seq1)",
        "first non-finite output at layer #0 (conv1d)",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    assert!(!e.contains("checkpoint"), "{e}");
    // the failed epoch's history is on disk (val_loss NaN is written as empty / null)
    let csv = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains("NaN"), "{csv}");
}

#[test]
fn a_non_finite_gradient_with_a_finite_loss_names_where_it_appeared() {
    // Dead conv (relu outputs 0), so the dense input is 0 and the logits are the (finite) bias;
    // the dense weights are near f32::MAX with opposite signs per class, so for a record of
    // class 1 (p0 ≈ 1) the input gradient W^T(p − y) ≈ 3e38 + 3e38 overflows in the backward
    // pass while the loss (≈ 20) is finite.
    let ds = motif_data(32, 7).0;
    let mut m = motif_model(2);
    for (n, p) in m.named_params_mut() {
        match n.as_str() {
            "layers.0.bias" => p.value.fill(-1e3),
            "layers.3.weight" => {
                p.value.index_axis_mut(ndarray::Axis(0), 0).fill(3e38);
                p.value.index_axis_mut(ndarray::Axis(0), 1).fill(-3e38);
            }
            "layers.3.bias" => {
                p.value[[0]] = 20.0;
                p.value[[1]] = 0.0;
            }
            _ => {}
        }
    }
    let mut cfg = quick_config(1);
    cfg.batch_size = 1;
    let e = fit(&mut m, &ds, None, false, &cfg).unwrap_err().to_string();
    for part in [
        "non-finite gradient at epoch 1, step",
        "first non-finite gradient at the output of layer #2 (dropout), coming from the backward pass of layer #3 (dense)",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
}

#[test]
fn history_is_written_after_every_epoch_with_the_gradient_norm() {
    let ds = motif_data(64, 9).0;
    let valid = motif_data(32, 10).0;
    let dir = tempfile::tempdir().unwrap();
    let mut m = motif_model(2);
    let mut cfg = quick_config(3);
    cfg.patience = None;
    cfg.clip_norm = Some(1e-3);
    cfg.history_dir = Some(dir.path().to_path_buf());
    let h = fit(&mut m, &ds, Some(&valid), false, &cfg).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    assert_eq!(csv, h.to_csv());
    let json = std::fs::read_to_string(dir.path().join("history.json")).unwrap();
    assert_eq!(json, h.to_json());
    assert!(csv.starts_with(
        "epoch,loss,accuracy,val_loss,val_accuracy,grad_norm,grad_norm_max,seconds\n"
    ));
    // the norm is the one before clipping: far above the clipping threshold
    let gn = h.column("grad_norm").unwrap();
    let gmax = h.column("grad_norm_max").unwrap();
    for (a, b) in gn.iter().zip(&gmax) {
        assert!(*a > 1e-2 && a <= b, "{gn:?} {gmax:?}");
    }
}
