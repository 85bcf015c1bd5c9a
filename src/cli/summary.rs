//! `seqgrad summary --model MODEL.json`: the Keras-like table, or the build error.

use std::path::PathBuf;

use crate::error::Result;
use crate::model::Sequential;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file (JSON).
    #[arg(long)]
    pub model: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    let model = Sequential::<f32>::from_file(&args.model, 0)?;
    print!("{}", model.summary());
    Ok(())
}
