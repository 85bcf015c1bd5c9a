//! Output shared by the subcommands: standard output that tolerates a closed pipe, tables
//! (TSV/CSV rows, a file written atomically or standard output), a progress bar, and the text
//! of an evaluation report.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::Report;

/// Writes `text` to standard output. A closed pipe (`seqgrad predict … | head -1`) is not an
/// error: the reader has what it wanted, so the output stops quietly (exit status 0).
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Loss and metrics, then the per-label AUCs (multi-label) or the confusion matrix.
pub fn report(r: &Report) -> String {
    let mut s = format!("{}: {} records  loss {:.4}", r.name, r.records(), r.loss);
    for (k, v) in &r.metrics {
        s.push_str(&format!("  {k} {v:.4}"));
    }
    s.push('\n');
    if r.labels.multi_label {
        let (roc, pr) = r.per_label_auc();
        s.push_str("label  roc_auc  pr_auc\n");
        let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
        for (i, c) in r.labels.classes.iter().enumerate() {
            s.push_str(&format!("{c}  {}  {}\n", f(roc[i]), f(pr[i])));
        }
    } else {
        s.push_str(&format!(
            "confusion matrix (rows: true class, columns: predicted{}):\n",
            match r.labels.positive() {
                Some(p) => format!("; {p} when its probability > 0.5"),
                None => String::new(),
            }
        ));
        s.push_str(&crate::metrics::format_confusion(
            &r.confusion(),
            &r.labels.classes,
        ));
    }
    s
}

/// True when `p` has the extension `ext` (any case).
pub fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext))
}

/// One output line: cells joined by `delim`; in CSV a cell with a comma, quote or line break is
/// quoted (quotes doubled), in TSV tabs and line breaks in a cell become spaces.
pub fn row(cells: &[String], delim: u8) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            s.push(delim as char);
        }
        if delim == b',' {
            if c.contains([',', '"', '\n', '\r']) {
                s.push('"');
                s.push_str(&c.replace('"', "\"\""));
                s.push('"');
            } else {
                s.push_str(c);
            }
        } else {
            s.push_str(&c.replace(['\t', '\n', '\r'], " "));
        }
    }
    s.push('\n');
    s
}

/// A progress bar over the bytes of the input, drawn only when standard error is a terminal.
pub fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total.unwrap_or(0));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    pb
}

/// Where the table goes: standard output, or a temporary file renamed to `--out` by
/// [`Sink::finish`] (removed if the run fails before).
pub enum Sink {
    Stdout {
        out: std::io::BufWriter<std::io::Stdout>,
        closed: bool,
    },
    File {
        path: PathBuf,
        tmp: PathBuf,
        out: Option<std::io::BufWriter<std::fs::File>>,
    },
}

impl Sink {
    pub fn create(path: Option<&Path>) -> Result<Sink> {
        let Some(path) = path else {
            return Ok(Sink::Stdout {
                out: std::io::BufWriter::new(std::io::stdout()),
                closed: false,
            });
        };
        let tmp = crate::weights::temp_path_for(path);
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        Ok(Sink::File {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
        })
    }

    /// Writes text; `false` when standard output has been closed by its reader.
    pub fn write(&mut self, s: &str) -> Result<bool> {
        match self {
            Sink::Stdout { out, closed } => {
                if *closed {
                    return Ok(false);
                }
                match out.write_all(s.as_bytes()) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        *closed = true;
                        Ok(false)
                    }
                    Err(e) => Err(Error::io("<stdout>", e)),
                }
            }
            Sink::File { path, out, .. } => match out.as_mut() {
                Some(o) => o
                    .write_all(s.as_bytes())
                    .map(|_| true)
                    .map_err(|e| Error::io(path.as_path(), e)),
                None => Ok(false),
            },
        }
    }

    pub fn finish(mut self) -> Result<()> {
        match &mut self {
            Sink::Stdout { out, closed } => match out.flush() {
                Err(e) if !*closed && e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Error::io("<stdout>", e))
                }
                _ => Ok(()),
            },
            Sink::File { path, tmp, out } => {
                let result = match out.take() {
                    Some(o) => o
                        .into_inner()
                        .map_err(|e| e.into_error())
                        .and_then(|f| f.sync_all())
                        .and_then(|_| std::fs::rename(&*tmp, &*path)),
                    None => Ok(()),
                };
                result.map_err(|e| Error::io(path.as_path(), e))
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Sink::File { tmp, .. } = self {
            // after a successful rename the temporary file no longer exists
            let _ = std::fs::remove_file(&*tmp);
        }
    }
}

/// Rows as left-aligned columns two spaces apart (trailing spaces trimmed), one line each.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let w: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = w[c]))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}
