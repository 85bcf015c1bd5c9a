//! `seqgrad plot RUN [--out DIR]`: draws every picture a run folder allows (training curves,
//! gradient norms, update ratios, per-tensor gradient bars, activation statistics, per-step
//! gradient heat maps) as PNG and SVG, and prints the files written. See `docs/plots.md`.

use std::path::PathBuf;

use crate::error::Result;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The run folder (written by `seqgrad train`): history.csv, and grads.csv / steps.csv when
    /// trained with --record-grads.
    pub run: PathBuf,
    /// Folder for the pictures (default: RUN/plots).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: &Args) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.run.join("plots"));
    let files = crate::plot::plot_run(&a.run, &out)?;
    for f in &files {
        println!("{}", f.display());
    }
    Ok(())
}
