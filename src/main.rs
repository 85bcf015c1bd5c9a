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
    if cli.command.is_none() {
        eprintln!(
            "seqgrad: no command given, so running the demo (the main job): training the built-in splice model (models/splice.json) on the built-in splice data (data/splice.csv) into runs/splice. See the commands with `seqgrad --help`."
        );
    }
    let result = cli::run(cli);
    // Test hook: the process's own peak resident set (VmHWM), which a parent cannot read
    // reliably (a vfork-spawned child's rusage inherits the parent's high-water mark).
    if let Some(path) = std::env::var_os("SEQGRAD_PEAK_RSS_FILE") {
        if let Some(mb) = cli::bench::peak_rss_mb() {
            let _ = std::fs::write(path, format!("{}\n", (mb * 1024.0).round() as u64));
        }
    }
    match result {
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
