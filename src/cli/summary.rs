//! `seqgrad summary --model MODEL.json`: the Keras-like table and the estimated peak memory of
//! training and inference, or the build error. Computed from the model file alone
//! ([`crate::memory::plan`]): no weight is allocated, so a model of any size is summarised at
//! once.

use std::path::PathBuf;

use crate::error::Result;
use crate::memory::{self, Workload};
use crate::spec::ModelSpec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file (JSON).
    #[arg(long)]
    pub model: PathBuf,
    /// Batch size for the training and gradient memory estimates (as `train --batch-size`).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Batch size for the inference estimate (as `evaluate`/`predict --batch-size`).
    #[arg(long, default_value_t = 256)]
    pub eval_batch_size: usize,
    /// Record length for the memory estimates of a model whose input length is `null` (any
    /// length): the longest record you expect; ignored for fixed-length models.
    #[arg(long, default_value_t = 1000)]
    pub length: usize,
}

pub fn run(args: &Args) -> Result<()> {
    let spec = ModelSpec::from_file(&args.model)?;
    let plan = memory::plan(&spec)?;
    let mut out = memory::summary_table(&plan);
    let (plan, note) = if spec.is_variable_length() {
        if args.length == 0 {
            return Err(crate::error::Error::Usage(
                "--length must be at least 1".into(),
            ));
        }
        (
            memory::plan_for_length(&spec, args.length)?,
            format!(
                " for records of length {} (the input length is null; set --length to your longest record)",
                args.length
            ),
        )
    } else {
        (plan, String::new())
    };
    out.push_str(&format!(
        "Estimated peak memory (f32; the data set comes on top){note}:\n"
    ));
    for (workload, batch, cmd) in [
        (Workload::Train, args.batch_size, "train"),
        (
            Workload::Inference,
            args.eval_batch_size,
            "evaluate/predict",
        ),
    ] {
        let e = memory::estimate(&plan, batch, workload, 4);
        out.push_str(&format!("  {cmd:<16} {}\n", e.describe()));
    }
    if let Ok(Some(a)) = memory::available() {
        out.push_str(&format!(
            "  available        {} ({})\n",
            memory::fmt_bytes(a.bytes),
            a.source
        ));
    }
    crate::cli::format::print_stdout(&out)
}
