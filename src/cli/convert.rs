//! `seqgrad convert --from MODEL.keras --out DIR`: a Keras model (a `.keras` archive, its
//! HDF5 weights read in pure Rust, or Keras' model JSON) to seqgrad's `model.json` and
//! `weights.safetensors` (PyTorch names),
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
    /// Keras weights from another file, instead of the archive's own `model.weights.h5`: a
    /// `.weights.h5` file (`model.save_weights`), or safetensors named by the HDF5 paths (as
    /// `python/keras_to_seqgrad.py` dumps them). Needed with model JSON, which has no weights.
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
