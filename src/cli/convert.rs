//! `seqgrad convert --from MODEL.keras --out DIR`: a Keras model (a `.keras` archive, or
//! Keras' model JSON) to seqgrad's `model.json` and `weights.safetensors` (PyTorch names),
//! by [`crate::run::convert::convert`]. See `docs/keras.md`.

use std::path::PathBuf;

use crate::error::Result;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Keras model: a `.keras` archive, or Keras model JSON (`model.to_json()`,
    /// `config.json`).
    #[arg(long)]
    pub from: PathBuf,
    /// Output folder (created if needed): model.json, and weights.safetensors when the Keras
    /// weights are known.
    #[arg(long)]
    pub out: PathBuf,
    /// Keras variables dumped by `python/keras_to_seqgrad.py` (safetensors named by their
    /// `model.weights.h5` paths). Needed for a `.keras` archive's weights unless seqgrad was
    /// built with `--features hdf5`.
    #[arg(long)]
    pub keras_weights: Option<PathBuf>,
}

pub fn run(a: &Args) -> Result<()> {
    let c = crate::run::convert::convert(&a.from, &a.out, a.keras_weights.as_deref())?;
    let mut msg = format!("wrote {}", c.model_json.display());
    match &c.weights {
        Some((p, n, d)) => msg.push_str(&format!(" and {} ({n} parameters, {d})", p.display())),
        None => msg.push_str(" (no weights: the source is model JSON only)"),
    }
    crate::cli::format::print_stdout(&format!("{msg}\n"))
}
