//! The training loop's callbacks: a user-defined callback sees every hook in order, can stop
//! training and read layer outputs, and adding a passive one changes nothing.

use seqgrad::train::{self, Callback, Context, EpochLogs, Outcome, Trainer};

use crate::common::{motif_data, motif_model, quick_config};

/// Records which hooks ran (compactly) and stops after `stop_at` epochs.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    stop_at: Option<usize>,
    layer_outputs: Vec<(u64, usize, Vec<usize>)>,
    losses: Vec<f64>,
}

impl Callback<f32> for Recorder {
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        self.events.push("train_begin".into());
        Ok(())
    }
    fn on_epoch_begin(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        self.events.push(format!("epoch_begin {}", ctx.epoch));
        Ok(())
    }
    fn on_step_begin(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        if ctx.step == 2 {
            ctx.request_layer_outputs();
        }
        Ok(())
    }
    fn on_layer_output(
        &mut self,
        ctx: &mut Context<'_, f32>,
        index: usize,
        output: ndarray::ArrayViewD<'_, f32>,
    ) -> seqgrad::Result<()> {
        self.layer_outputs
            .push((ctx.step, index, output.shape().to_vec()));
        Ok(())
    }
    fn on_after_backward(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        // gradients are there, before the update
        assert!(ctx.grad_norm > 0.0);
        assert_eq!(ctx.optimizer.t, ctx.step - 1);
        Ok(())
    }
    fn on_step_end(&mut self, ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        assert_eq!(ctx.optimizer.t, ctx.step);
        self.losses.push(ctx.batch_loss);
        self.events
            .push(format!("step {} ({})", ctx.step, ctx.batch));
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        ctx: &mut Context<'_, f32>,
        logs: &EpochLogs,
    ) -> seqgrad::Result<()> {
        self.events.push(format!("epoch_end {}", logs.epoch));
        assert_eq!(ctx.history.rows.len(), logs.epoch);
        if Some(logs.epoch) == self.stop_at {
            ctx.stop_training();
        }
        Ok(())
    }
    fn on_train_end(&mut self, _ctx: &mut Context<'_, f32>) -> seqgrad::Result<()> {
        self.events.push("train_end".into());
        Ok(())
    }
}

#[test]
fn a_user_callback_sees_every_hook_in_order_and_can_stop_training() {
    let (data, _) = motif_data(40, 3); // batch 16: 3 steps per epoch
    let mut model = motif_model(1);
    let mut rec = Recorder {
        stop_at: Some(2),
        ..Default::default()
    };
    let mut cfg = quick_config(10);
    cfg.patience = None;
    let mut t = Trainer::new(cfg, false);
    t.add_callback(&mut rec);
    let out = t.fit(&mut model, &data, None).unwrap();
    let Outcome::Finished(h) = out else {
        panic!("not finished: {out:?}")
    };
    assert_eq!(h.rows.len(), 2, "stopped after epoch 2");
    drop(t);
    let want = [
        "train_begin",
        "epoch_begin 1",
        "step 1 (1)",
        "step 2 (2)",
        "step 3 (3)",
        "epoch_end 1",
        "epoch_begin 2",
        "step 4 (1)",
        "step 5 (2)",
        "step 6 (3)",
        "epoch_end 2",
        "train_end",
    ];
    assert_eq!(rec.events, want);
    // layer outputs of step 2 only, one per layer, with the batch axis
    let shapes: Vec<_> = rec
        .layer_outputs
        .iter()
        .map(|(s, i, sh)| (*s, *i, sh.clone()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (2, 0, vec![16, 32, 8]),
            (2, 1, vec![16, 8]),
            (2, 2, vec![16, 8]),
            (2, 3, vec![16, 2]),
        ]
    );
    assert!(rec.losses.iter().all(|l| l.is_finite() && *l > 0.0));
}

#[test]
fn a_passive_callback_and_layer_outputs_change_nothing() {
    let (data, _) = motif_data(40, 3);
    let cfg = quick_config(3);
    let mut m1 = motif_model(1);
    let h1 = train::fit(&mut m1, &data, None, false, &cfg).unwrap();
    let mut m2 = motif_model(1);
    let mut rec = Recorder::default();
    let mut t = Trainer::new(cfg, false);
    t.add_callback(&mut rec);
    t.fit(&mut m2, &data, None).unwrap();
    let h2 = t.history().clone();
    let strip = |h: &train::History| -> Vec<Vec<f64>> {
        h.rows.iter().map(|r| r[..r.len() - 1].to_vec()).collect()
    };
    assert_eq!(strip(&h1), strip(&h2));
    for ((n, a), (_, b)) in m1.named_params().iter().zip(m2.named_params()) {
        assert_eq!(a.value, b.value, "{n}");
    }
}
