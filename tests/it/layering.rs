//! The crate's floors (docs/design.md): every top-level module of `src/` has a floor, and a
//! module may use (`crate::…` outside its test modules) only modules on lower floors. So the
//! modules form no cycle, and no library module uses `cli`. A new module fails this test until
//! it is given a floor here and in docs/design.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, lowest first. A module may use only modules of a lower floor.
const FLOORS: &[&[&str]] = &[
    &["error"],
    &["system", "bundled", "tensor"],
    &["targets", "activation"],
    &["layers"],
    &["spec"],
    &["weights"],
    &["keras"],
    &["model"],
    &["loss", "optim", "metrics", "data", "gradcheck"],
    &["batch", "train", "memory"],
    &["saliency", "motifs", "gradflow", "plot"],
    &["run"],
    &["cli"],
];

/// The crate root and the binary use everything; they are not floors.
const ROOTS: &[&str] = &["lib", "main"];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments and without `#[cfg(test)]` items (test modules may use
/// anything).
fn code_of(text: &str) -> String {
    let no_comments: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = no_comments.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "#[cfg(test)]".len()..];
        // Skip the item: up to its `;` (a `use`), or its balanced `{ … }` block.
        let semi = after.find(';');
        let brace = after.find('{');
        match (semi, brace) {
            (Some(s), Some(b)) if s < b => rest = &after[s + 1..],
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            (Some(s), None) => rest = &after[s + 1..],
            (None, None) => rest = "",
        }
    }
    out.push_str(rest);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The top-level modules a piece of code names through `crate::a…` or `crate::{a…, b…}`.
fn crate_uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before_ok = rest[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = &rest[i + "crate::".len()..];
        if before_ok {
            if let Some(group) = after.strip_prefix('{') {
                // Top-level names of a use group: the first segment of each comma-separated
                // path at brace depth 0.
                let mut depth = 0usize;
                let mut at_start = true;
                let mut name = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            if at_start && !name.is_empty() {
                                found.insert(std::mem::take(&mut name));
                            }
                            at_start = true;
                        }
                        c if is_ident(c) && at_start => name.push(c),
                        _ => {
                            if at_start && !name.is_empty() {
                                found.insert(std::mem::take(&mut name));
                                at_start = false;
                            }
                        }
                    }
                }
                if !name.is_empty() {
                    found.insert(name);
                }
            } else {
                let name: String = after.chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        rest = after;
    }
    found
}

/// Module → (used module → files that use it), from `src/`.
fn import_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let tops: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            p.file_stem().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        for used in crate_uses(&code) {
            if used != module && tops.contains(&used) {
                entry
                    .entry(used)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// Every use of a module on the same or a higher floor, and every module without a floor.
fn violations(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (module, uses) in graph {
        if ROOTS.contains(&module.as_str()) {
            continue;
        }
        let Some(floor) = floor_of(module) else {
            problems.push(format!(
                "src/{module} has no floor: add it to FLOORS in tests/it/layering.rs and to docs/design.md"
            ));
            continue;
        };
        for (used, files) in uses {
            let used_floor = floor_of(used);
            if used_floor.is_none_or(|u| u >= floor) {
                problems.push(format!(
                    "{module} (floor {floor}) uses {used} (floor {}) in {}",
                    used_floor.map_or("none".into(), |u| u.to_string()),
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_module_uses_only_lower_floors_so_there_is_no_cycle_and_no_library_module_uses_cli() {
    let problems = violations(&import_graph());
    assert!(
        problems.is_empty(),
        "the crate's floors are broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_uses_in_groups_paths_and_not_in_comments_or_tests() {
    let code = code_of(
        "use crate::{error::Error, tensor::{Float, Mode}};\n\
         use crate::{loss, optim::Optimizer};\n\
         // use crate::cli::x;\n\
         fn f() { crate::model::Sequential::<f32>::new(); }\n\
         #[cfg(test)]\nmod tests { use crate::cli::y; fn g() { if true { } } }\n\
         #[cfg(test)]\nuse crate::plot;\n\
         fn h() -> crate::data::Dataset { todo!() }\n",
    );
    let uses: Vec<String> = crate_uses(&code).into_iter().collect();
    assert_eq!(uses, ["data", "error", "loss", "model", "optim", "tensor"]);
}

#[test]
fn uses_of_higher_or_same_floors_and_unplaced_modules_are_caught() {
    let edge = |a: &str, b: &str| {
        let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        g.entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .insert(format!("{a}.rs"));
        violations(&g)
    };
    assert!(edge("model", "tensor").is_empty());
    assert_eq!(edge("tensor", "model").len(), 1, "a use of a higher floor");
    assert_eq!(edge("memory", "cli").len(), 1, "a library module using cli");
    assert_eq!(edge("loss", "optim").len(), 1, "a use on the same floor");
    assert_eq!(
        edge("newthing", "error").len(),
        1,
        "a module without a floor"
    );
    assert!(edge("main", "cli").is_empty());
}

/// The modules of `src/cli/` every subcommand may use: the command enum, the shared argument
/// groups and the shared output helpers.
const CLI_SHARED: &[&str] = &["mod", "args", "format"];

/// The most lines a file of `src/cli/` may have: a subcommand parses, calls the library and
/// formats; a longer file holds library logic (or wants to be a folder).
const CLI_MAX_LINES: usize = 250;

/// `src/cli/`'s files, each with its subcommand (the file's stem, or its folder's name).
fn cli_files() -> Vec<(String, PathBuf)> {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut files = Vec::new();
    rust_files(&cli, &mut files);
    files
        .into_iter()
        .map(|f| {
            let first = f.strip_prefix(&cli).unwrap().components().next().unwrap();
            let sub = first.as_os_str().to_string_lossy();
            (sub.trim_end_matches(".rs").to_string(), f)
        })
        .collect()
}

/// The `src/cli/` modules a piece of code of `src/cli/` names (`crate::cli::x`, `super::x`,
/// `cli::{x, y}`).
fn cli_uses(code: &str) -> BTreeSet<String> {
    // only paths into `cli` count: hide every other `crate::` path first
    let only_cli = code
        .replace("crate::", "CRATE::")
        .replace("CRATE::cli::", "crate::")
        .replace("super::", "crate::");
    crate_uses(&only_cli)
}

fn cli_problems(files: &[(String, PathBuf)]) -> Vec<String> {
    let subs: BTreeSet<&str> = files
        .iter()
        .map(|(s, _)| s.as_str())
        .filter(|s| !CLI_SHARED.contains(s))
        .collect();
    let mut problems = Vec::new();
    for (sub, f) in files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines = text.lines().count();
        if lines > CLI_MAX_LINES {
            problems.push(format!(
                "{} has {lines} lines (at most {CLI_MAX_LINES}): move its logic into the library",
                f.display()
            ));
        }
        if CLI_SHARED.contains(&sub.as_str()) {
            continue;
        }
        for used in cli_uses(&code_of(&text)) {
            if used != *sub && subs.contains(used.as_str()) {
                problems.push(format!(
                    "{} (subcommand {sub}) uses the subcommand file {used}: move what both need into the library, or into cli/args.rs or cli/format.rs",
                    f.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn no_cli_subcommand_uses_another_and_every_cli_file_is_short() {
    let files = cli_files();
    assert!(files.iter().any(|(s, _)| s == "predict"), "{files:?}");
    let problems = cli_problems(&files);
    assert!(
        problems.is_empty(),
        "src/cli/ is not a set of thin front ends:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_cli_check_sees_uses_of_other_subcommands_in_paths_and_groups() {
    let code = "use crate::cli::args::DataArgs;\nuse crate::cli::{format, train::Args};\nfn f() { super::evaluate::run(); crate::plot::x(); }\n";
    let uses: Vec<String> = cli_uses(code).into_iter().collect();
    assert_eq!(uses, ["args", "evaluate", "format", "train"]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("predict.rs");
    std::fs::write(&p, code).unwrap();
    let files = vec![
        ("predict".to_string(), p.clone()),
        ("train".to_string(), p.clone()),
        ("evaluate".to_string(), p.clone()),
        ("args".to_string(), p),
    ];
    let problems = cli_problems(&files);
    // predict uses train and evaluate; train uses evaluate; evaluate uses train
    assert_eq!(problems.len(), 4, "{problems:?}");
}
