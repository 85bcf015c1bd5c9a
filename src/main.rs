//! The `seqgrad` binary: see `seqgrad --help`.

use std::process::ExitCode;

use seqgrad::cli::{self, ParseOutcome};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseOutcome::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ParseOutcome::Error(line)) => {
            eprintln!("seqgrad: error: {line}");
            return ExitCode::from(2);
        }
    };
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A check that ran and failed (gradcheck) is exit 1; user errors stay exit 2.
        Err(e @ seqgrad::Error::ChecksFailed(_)) => {
            eprintln!("seqgrad: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("seqgrad: error: {e}");
            ExitCode::from(2)
        }
    }
}
