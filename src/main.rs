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
        Err(e) => {
            eprintln!("seqgrad: error: {e}");
            ExitCode::from(2)
        }
    }
}
