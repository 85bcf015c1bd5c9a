//! filters
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}
pub fn run(_a: &Args) -> crate::Result<()> {
    Ok(())
}
