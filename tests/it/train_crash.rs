//! Crash safety of `seqgrad train` (docs/reliability.md): SIGKILL at pseudo-random moments —
//! between steps, between an epoch's end and its checkpoint, and inside the checkpoint write —
//! then `--resume`, ending bit-identical to an uninterrupted run; a full disk (RLIMIT_FSIZE);
//! `evaluate`/`predict` on a killed run.
//!
//! The kills come from the test hook `SEQGRAD_TEST_KILL=POINT@N`: the process SIGKILLs itself
//! there, so the window inside a checkpoint write is hit every time.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};

use crate::common::{fails_with, seqgrad, stderr};
use crate::train_resume::write_data;

/// 320 training records of 40 bp in batches of 16: 20 steps an epoch.
const STEPS_PER_EPOCH: u64 = 20;
const EPOCHS: u64 = 8;

/// `seqgrad train` on the data of `write_data`; `extra` may set `--epochs` (default 8).
fn args(out: &str, extra: &[&str]) -> Vec<String> {
    let epochs = if extra.contains(&"--epochs") {
        None
    } else {
        Some("8")
    };
    let mut a: Vec<String> = [
        "train",
        "--model",
        "m.json",
        "--data",
        "d.csv",
        "--batch-size",
        "16",
        "--patience",
        "0",
        "--rc-augment",
        "--no-plots",
        "--progress",
        "plain",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    if let Some(e) = epochs {
        a.extend(["--epochs".to_string(), e.to_string()]);
    }
    a
}

fn resume_args(out: &str) -> Vec<String> {
    ["train", "--resume", out, "--progress", "plain"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Runs seqgrad with `SEQGRAD_TEST_KILL` set (when `kill` is given) and optional extra setup.
fn run(dir: &Path, args: &[String], kill: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqgrad"));
    c.args(args)
        .current_dir(dir)
        .env_remove("SEQGRAD_TEST_KILL");
    if let Some(k) = kill {
        c.env("SEQGRAD_TEST_KILL", k);
    }
    c.output().unwrap()
}

fn assert_killed(o: &Output, point: &str) {
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{point}: not killed (status {:?}); stderr: {}",
        o.status,
        stderr(o)
    );
}

/// The step a resumed run started from ("resuming RUN at epoch E, step S").
fn resumed_step(o: &Output) -> u64 {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("resuming "))
        .unwrap_or_else(|| panic!("no resuming line in {out}; stderr {}", stderr(o)));
    line.rsplit_once("step ").unwrap().1.trim().parse().unwrap()
}

fn tensors(p: &Path) -> Vec<(String, Vec<u64>)> {
    seqgrad::weights::read_tensors(p)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.array.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn history_without_seconds(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// The run folders `a` and `b` hold the same training result.
fn assert_same_run(a: &Path, b: &Path, what: &str) {
    assert!(
        std::fs::read(a.join("weights.safetensors")).unwrap()
            == std::fs::read(b.join("weights.safetensors")).unwrap(),
        "{what}: weights.safetensors differs from the uninterrupted run's"
    );
    assert!(!tensors(&a.join("weights.safetensors")).is_empty());
    assert_eq!(
        history_without_seconds(&a.join("history.csv")),
        history_without_seconds(&b.join("history.csv")),
        "{what}"
    );
    for f in ["grads.csv", "steps.csv", "test_metrics.json"] {
        if a.join(f).exists() {
            assert!(
                std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
                "{what}: {f} differs"
            );
        }
    }
    for d in [b.join("checkpoint"), b.join("checkpoint.prev")] {
        assert!(!d.exists(), "{what}: a finished run keeps {}", d.display());
    }
    let names: Vec<String> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp-")),
        "{what}: temporary files left: {names:?}"
    );
}

/// A folder with the data, the uninterrupted run `full` of `epochs` epochs, and `run`, the
/// same run killed at `hook`.
fn full_then_killed(epochs: u32, hook: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    let e = epochs.to_string();
    let o = run(d.path(), &args("full", &["--epochs", &e]), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &args("run", &["--epochs", &e]), Some(hook));
    assert_killed(&o, hook);
    d
}

/// A kill point, in the order the run reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    step: u64,
    /// 0: after the step; 1: after the epoch ended, before its checkpoint; 2..: inside the
    /// write of the checkpoint taken at `step` (see STAGES).
    phase: usize,
}

const STAGES: [&str; 5] = [
    "ckpt-torn",
    "ckpt-files",
    "ckpt-synced",
    "ckpt-aside",
    "ckpt-swapped",
];

impl Point {
    fn hook(&self) -> String {
        match self.phase {
            0 => format!("step@{}", self.step),
            1 => format!("epoch@{}", self.step / STEPS_PER_EPOCH),
            k => format!("{}@{}", STAGES[k - 2], self.step),
        }
    }

    /// The steps a resume after this kill may start from (checkpoints are at epoch ends;
    /// the one written in the background may not have landed yet when a step kill comes).
    fn resume_range(&self) -> (u64, u64) {
        let e = STEPS_PER_EPOCH;
        match self.phase {
            0 => {
                // the last epoch that ended before this step's end
                let hi = (self.step - 1) / e * e;
                (hi.saturating_sub(e), hi)
            }
            1 => ((self.step / e).saturating_sub(2) * e, self.step - e),
            // the new one is in place only after the swap
            6 => (self.step, self.step),
            _ => (self.step - e, self.step - e),
        }
    }
}

/// The run `o` resumed where a kill at `p` should have left it.
fn check_resumed(o: &Output, p: &Point) {
    let r = resumed_step(o);
    let (lo, hi) = p.resume_range();
    assert!(
        (lo..=hi).contains(&r),
        "after a kill at {}: resumed from step {r}, expected {lo}..={hi}",
        p.hook()
    );
}

/// 20 distinct kill points from a seeded generator: 8 inside checkpoint writes, 3 between an
/// epoch's end and its checkpoint, 9 after steps.
fn kill_points(seed: u64) -> Vec<Point> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut pts: Vec<Point> = Vec::new();
    let add = |p: Point, pts: &mut Vec<Point>| {
        if !pts.contains(&p) {
            pts.push(p);
            true
        } else {
            false
        }
    };
    let total = STEPS_PER_EPOCH * EPOCHS;
    let (mut c, mut e, mut s) = (0, 0, 0);
    while c < 8 {
        let epoch = rng.random_range(1..=EPOCHS);
        let phase = 2 + rng.random_range(0..STAGES.len());
        c += add(
            Point {
                step: epoch * STEPS_PER_EPOCH,
                phase,
            },
            &mut pts,
        ) as usize;
    }
    while e < 3 {
        let epoch = rng.random_range(1..=EPOCHS);
        e += add(
            Point {
                step: epoch * STEPS_PER_EPOCH,
                phase: 1,
            },
            &mut pts,
        ) as usize;
    }
    while s < 9 {
        let step = rng.random_range(1..=total);
        s += add(Point { step, phase: 0 }, &mut pts) as usize;
    }
    pts.sort();
    pts
}

#[test]
fn sigkill_at_20_moments_then_resume_is_bit_identical() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    let rec = ["--record-grads", "7"];
    let o = run(d.path(), &args("full", &rec), None);
    assert!(o.status.success(), "{}", stderr(&o));

    let points = kill_points(17);
    assert_eq!(points.len(), 20);
    assert!(points.iter().filter(|p| p.phase >= 2).count() == 8);
    let mut before: Option<Point> = None;
    for p in &points {
        let a = match before {
            None => args("run", &rec),
            Some(_) => resume_args("run"),
        };
        let o = run(d.path(), &a, Some(&p.hook()));
        assert_killed(&o, &p.hook());
        if let Some(b) = before {
            check_resumed(&o, &b);
        }
        before = Some(*p);
    }
    let o = run(d.path(), &resume_args("run"), None);
    assert!(o.status.success(), "{}", stderr(&o));
    check_resumed(&o, &before.unwrap());
    assert_same_run(&d.path().join("full"), &d.path().join("run"), "20 kills");
}

#[test]
fn checkpoints_every_n_steps_survive_kills_too() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    let o = run(d.path(), &args("full", &["--epochs", "3"]), None);
    assert!(o.status.success(), "{}", stderr(&o));
    // checkpoints at steps 0, 7, 14, …; each kill inside a write, and where the next resume
    // must start
    let kills = [
        ("ckpt-swapped@14", 14),
        ("ckpt-files@28", 21),
        ("ckpt-aside@42", 35),
        ("ckpt-torn@49", 42),
    ];
    let mut a = args("run", &["--epochs", "3", "--checkpoint-every", "7"]);
    let mut want: Option<u64> = None;
    for (hook, next) in kills {
        let o = run(d.path(), &a, Some(hook));
        assert_killed(&o, hook);
        if let Some(w) = want {
            assert_eq!(resumed_step(&o), w, "before {hook}");
        }
        want = Some(next);
        a = resume_args("run");
    }
    let o = run(d.path(), &a, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Some(resumed_step(&o)), want);
    assert_same_run(
        &d.path().join("full"),
        &d.path().join("run"),
        "every 7 steps",
    );
}

/// Review finding: the old replacement removed the checkpoint, then renamed the new one in; a
/// kill between the two left none. Now the old one is renamed aside first.
#[test]
fn a_kill_between_the_renames_of_a_checkpoint_swap_resumes_from_the_previous_one() {
    let d = full_then_killed(3, "ckpt-aside@40");
    let run_dir = d.path().join("run");
    assert!(!run_dir.join("checkpoint").exists());
    assert!(run_dir.join("checkpoint.prev/manifest.json").exists());
    let o = run(d.path(), &resume_args("run"), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(resumed_step(&o), 20);
    assert_same_run(&d.path().join("full"), &run_dir, "kill between the renames");
}

#[test]
fn a_damaged_checkpoint_falls_back_to_the_previous_one_or_is_a_one_line_error() {
    // killed right after the checkpoint of step 40 was renamed in: it and step 20's are there
    let d = full_then_killed(3, "ckpt-swapped@40");
    let ck = d.path().join("run/checkpoint");
    // torn: the weights cut short (as a disk that lost the end of a file would leave them)
    let w = std::fs::read(ck.join("weights.safetensors")).unwrap();
    std::fs::write(ck.join("weights.safetensors"), &w[..w.len() / 2]).unwrap();
    let o = run(d.path(), &resume_args("run"), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let warning: Vec<&str> = e.lines().filter(|l| l.contains("is damaged")).collect();
    assert_eq!(warning.len(), 1, "{e}");
    assert!(
        warning[0].contains("weights.safetensors has")
            && warning[0].contains("using the one before it"),
        "{}",
        warning[0]
    );
    assert_eq!(resumed_step(&o), 20);
    assert_same_run(&d.path().join("full"), &d.path().join("run"), "fallback");

    // both damaged: one line, exit 2, nothing loaded
    let o = run(
        d.path(),
        &args("run2", &["--epochs", "3"]),
        Some("ckpt-swapped@40"),
    );
    assert_killed(&o, "ckpt-swapped@40");
    let ck = d.path().join("run2/checkpoint");
    for c in [ck.clone(), seqgrad::train::checkpoint::prev_of(&ck)] {
        let p = c.join("state.json");
        let mut t = std::fs::read(&p).unwrap();
        t[5] ^= 1;
        std::fs::write(&p, t).unwrap();
    }
    let o = seqgrad(&["train", "--resume", "run2"], d.path());
    fails_with(
        &o,
        &["is damaged", "state.json is corrupt (CRC-32", "and so is"],
    );
}

fn with_file_size_limit(c: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            // a write past the limit then fails with EFBIG (as on a full disk) instead of
            // killing the process with SIGXFSZ
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn snapshot_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn disk_full_during_checkpoints_warns_once_keeps_the_previous_one_and_trains_on() {
    let d = full_then_killed(5, "ckpt-swapped@40");
    let ck = d.path().join("run/checkpoint");
    let prev = seqgrad::train::checkpoint::prev_of(&ck);
    let before = (snapshot_dir(&ck), snapshot_dir(&prev));
    let weights_size = std::fs::metadata(d.path().join("run/weights.safetensors"))
        .unwrap()
        .len();
    // files up to the weights' size can be written, a checkpoint's state (2 optimizer moments
    // per parameter) cannot
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqgrad"));
    c.args(resume_args("run"))
        .current_dir(d.path())
        .env("SEQGRAD_TEST_KILL", "epoch@5");
    with_file_size_limit(&mut c, weights_size + 64);
    let o = c.output().unwrap();
    assert_killed(&o, "epoch@5 with a full disk");
    assert_eq!(resumed_step(&o), 40);
    let e = stderr(&o);
    let warnings: Vec<&str> = e.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{e}");
    assert!(
        warnings[0].contains("could not write the checkpoint")
            && warnings[0].contains("the previous checkpoint is kept and training goes on"),
        "{}",
        warnings[0]
    );
    // it trained on (epochs 3, 4 and 5 ended; the checkpoints of 3 and 4 failed) …
    assert_eq!(
        e.lines().filter(|l| l.starts_with("epoch ")).count(),
        3,
        "{e}"
    );
    // … and the checkpoints it resumed from are untouched, with no half-written folder about
    assert!((snapshot_dir(&ck), snapshot_dir(&prev)) == before);
    let names: Vec<String> = std::fs::read_dir(d.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
    // with space again, the run ends as if nothing happened
    let o = run(d.path(), &resume_args("run"), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_run(&d.path().join("full"), &d.path().join("run"), "disk full");
}

#[test]
fn disk_full_for_the_weights_is_a_one_line_error_and_never_a_truncated_file() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    // killed in epoch 1: no weights yet
    let o = run(d.path(), &args("run", &["--epochs", "2"]), Some("step@5"));
    assert_killed(&o, "step@5");
    assert!(!d.path().join("run/weights.safetensors").exists());
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqgrad"));
    c.args(["train", "--resume", "run", "--progress", "quiet"])
        .current_dir(d.path());
    with_file_size_limit(&mut c, 1000);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    let errors: Vec<&str> = e.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert!(
        errors[0].starts_with("seqgrad: error: ") && errors[0].contains("weights.safetensors"),
        "{}",
        errors[0]
    );
    let names: Vec<String> = std::fs::read_dir(d.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("weights.safetensors") || n.contains(".tmp-")),
        "{names:?}"
    );
    // the checkpoint is still there: with space again the run can go on
    let o = run(d.path(), &resume_args("run"), None);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn evaluate_and_predict_on_a_killed_run_use_its_checkpoints_best_weights() {
    let d = tempfile::tempdir().unwrap();
    write_data(d.path());
    // killed in epoch 1: no epoch ended, so there are no weights to use
    let o = run(d.path(), &args("early", &[]), Some("step@5"));
    assert_killed(&o, "step@5");
    let o = seqgrad(&["evaluate", "--run", "early", "--data", "d.csv"], d.path());
    fails_with(
        &o,
        &[
            "is unfinished",
            "no weights.safetensors yet (no epoch finished)",
        ],
    );

    let o = run(d.path(), &args("run", &[]), Some("ckpt-swapped@60"));
    assert_killed(&o, "ckpt-swapped@60");
    let ck = d.path().join("run/checkpoint");
    let info = seqgrad::train::checkpoint::read_state_json(&ck).unwrap();
    let best = info
        .pointer("/history/best_epoch")
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(best >= 1);
    for cmd in [
        vec!["evaluate", "--run", "run", "--data", "d.csv"],
        vec!["predict", "--run", "run", "--data", "d.csv"],
    ] {
        let o = seqgrad(&cmd, d.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let e: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.contains("unfinished"))
            .map(String::from)
            .collect();
        assert_eq!(e.len(), 1, "{e:?}");
        let e = &e[0];
        assert!(
            e.contains("run run is unfinished (its last checkpoint was taken after step 60, 3 epoch(s) done)")
                && e.contains(&format!(
                    "using the best weights of that checkpoint (epoch {best})"
                ))
                && e.contains("seqgrad train --resume run"),
            "{e}"
        );
    }
    // the weights used are the checkpoint's best (RUN/weights.safetensors may be newer: the
    // run went on while its checkpoint was written)
    let mut m =
        seqgrad::model::Sequential::<f32>::from_file(d.path().join("run/model.json"), 0).unwrap();
    seqgrad::train::checkpoint::load_run_weights(&mut m, &d.path().join("run")).unwrap();
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    let want: Vec<Vec<u64>> = if info
        .pointer("/callbacks/best_weights/same_as_weights")
        .is_some()
    {
        let w = seqgrad::weights::read_tensors(&ck.join("weights.safetensors")).unwrap();
        names
            .iter()
            .map(|n| w[n].array.iter().map(|v| v.to_bits()).collect())
            .collect()
    } else {
        let st = seqgrad::weights::read_tensors(&ck.join("state.safetensors")).unwrap();
        (0..names.len())
            .map(|i| {
                st[&format!("callback.best_weights.{i}")]
                    .array
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            })
            .collect()
    };
    let got: Vec<Vec<u64>> = m
        .named_params()
        .into_iter()
        .map(|(_, p)| p.value.iter().map(|v| (*v as f64).to_bits()).collect())
        .collect();
    assert!(got == want, "not the checkpoint's best weights");
}
