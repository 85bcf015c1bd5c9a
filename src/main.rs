//! The `seqgrad` binary: see `seqgrad --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = seqgrad::cli::Cli::parse();
    match seqgrad::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seqgrad: error: {e}");
            ExitCode::from(2)
        }
    }
}
