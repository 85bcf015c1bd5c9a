//! A small reader for the plain CSV/TSV files seqgrad writes (no quoting: names never hold the
//! separator). Every problem is a one-line [`Error::Data`] naming the file and the line.

use std::path::Path;

use crate::error::{Error, Result};

/// A delimited file: its header and its rows, each with its 1-based line number.
pub(crate) struct Table {
    pub path: String,
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    /// Reads `path`, split on `sep`. Blank lines are skipped; every row must have as many
    /// fields as the header.
    pub fn read(path: &Path, sep: char) -> Result<Table> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => Error::Data {
                path: shown.clone(),
                msg: "not a text file (invalid UTF-8)".into(),
            },
            _ => Error::io(path, e),
        })?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, head) = lines.next().ok_or_else(|| Error::Data {
            path: shown.clone(),
            msg: "empty file (expected a header line)".into(),
        })?;
        let header: Vec<String> = head.split(sep).map(|s| s.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (n, line) in lines {
            let fields: Vec<String> = line.split(sep).map(|s| s.trim().to_string()).collect();
            if fields.len() != header.len() {
                return Err(Error::Data {
                    path: shown,
                    msg: format!(
                        "line {n}: expected {} fields ({}) but found {}",
                        header.len(),
                        header.join(if sep == '\t' { "\\t" } else { "," }),
                        fields.len()
                    ),
                });
            }
            rows.push((n, fields));
        }
        Ok(Table {
            path: shown,
            header,
            rows,
        })
    }

    /// Index of a required column.
    pub fn col(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::Data {
                path: self.path.clone(),
                msg: format!(
                    "line 1: missing column '{name}' (header is '{}')",
                    self.header.join(",")
                ),
            })
    }

    /// Parses field `col` of the row on line `line` as a number (`NaN`, `inf` allowed).
    pub fn num(&self, line: usize, fields: &[String], col: usize) -> Result<f64> {
        let s = fields[col].as_str();
        s.parse::<f64>().map_err(|_| Error::Data {
            path: self.path.clone(),
            msg: format!(
                "line {line}: column '{}' is '{s}', not a number",
                self.header[col]
            ),
        })
    }

    /// Parses field `col` as a non-negative integer.
    pub fn int(&self, line: usize, fields: &[String], col: usize) -> Result<u64> {
        let s = fields[col].as_str();
        s.parse::<u64>().map_err(|_| Error::Data {
            path: self.path.clone(),
            msg: format!(
                "line {line}: column '{}' is '{s}', not a whole number",
                self.header[col]
            ),
        })
    }

    /// An error about the row on `line`.
    pub fn err(&self, line: usize, msg: impl std::fmt::Display) -> Error {
        Error::Data {
            path: self.path.clone(),
            msg: format!("line {line}: {msg}"),
        }
    }
}
