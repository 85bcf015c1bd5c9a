//! Command-line usage errors are one line on stderr with exit code 2; help and version exit 0.

use std::process::Command;

fn seqgrad(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqgrad"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_required_flag_is_one_line() {
    let (code, _, err) = seqgrad(&["train", "--data", "x.csv"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--model") && err.contains("seqgrad train --help"),
        "{err}"
    );
}

#[test]
fn misspelt_flag_names_the_likely_one() {
    let (code, _, err) = seqgrad(&[
        "train", "--model", "m.json", "--data", "d.csv", "--epoch", "3",
    ]);
    assert_eq!(code, 2);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("'--epoch'") && err.contains("'--epochs'"),
        "{err}"
    );
}

#[test]
fn unknown_subcommand_points_to_top_level_help() {
    let (code, _, err) = seqgrad(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("frobnicate") && err.contains("'seqgrad --help'"),
        "{err}"
    );
}

#[test]
fn help_and_version_exit_zero() {
    let (code, out, _) = seqgrad(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["summary", "train", "evaluate", "predict", "synth", "grad"] {
        assert!(out.contains(sub), "{sub} missing from help: {out}");
    }
    let (code, out, _) = seqgrad(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
}
