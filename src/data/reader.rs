//! Readers for labelled DNA sequence files: CSV, TSV and FASTA.
//!
//! The format comes from the extension unless `--format csv|tsv|fasta` ([`ReadOptions::format`])
//! says otherwise. When a table's header has no sequence or label column and looks like another
//! format (tabs in a comma-separated read, commas in a tab-separated one, a `>` FASTA header),
//! the error says so and names the `--format` to use.
//!
//! **CSV / TSV** (`.tsv`/`.tab` → tab-separated, anything else → comma-separated; fields may be
//! double-quoted): a header row, then one record per line. Columns are found by name,
//! case-insensitively, after trimming whitespace:
//! - label: `label`, `class` or `labels` (or `--label-column NAME`); a `labels` column means
//!   multi-label data;
//! - sequence: `sequence` or `seq` (or `--sequence-column NAME`);
//! - id (optional): `id` or `name`; without it the record id is its 1-based row number.
//!
//! Other columns are ignored; every field is trimmed of surrounding whitespace (the bundled
//! splice file is `Class, Donor, Sequence` with padded fields). Blank lines are skipped.
//!
//! **FASTA** (`.fa`, `.fasta`, `.fna`, `.fas`): `>id label=EI` for one label,
//! `>id labels=A,B` for several (`labels=` with nothing after it: no label); the sequence may
//! span several lines.
//!
//! **Multi-label**: several labels in one field are separated by `;` or `,` (in a CSV use `;`,
//! or quote the field). An empty field is a record with no label (multi-label only).
//!
//! Every sequence character is validated while reading, so errors name the file, the line and
//! the column (1-based, counted in characters of the line).

use std::path::Path;

use crate::data::dna;
use crate::error::{Error, Result};

/// One record as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The `id` column / FASTA id, or the 1-based row number.
    pub id: String,
    /// The sequence, as written (validated).
    pub seq: String,
    /// Labels (one for multi-class, any number for multi-label; empty if the file has none).
    pub labels: Vec<String>,
    /// 1-based line where the record starts (its header line in FASTA).
    pub line: usize,
}

/// What was read from one file.
#[derive(Debug, Clone)]
pub struct RawData {
    pub path: String,
    pub records: Vec<Record>,
    /// True if the file carries labels.
    pub has_labels: bool,
    /// True if the file says it is multi-label (`labels` column or `labels=` headers).
    pub multi_label: bool,
}

/// Reader options (column names override the defaults).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub label_column: Option<String>,
    pub sequence_column: Option<String>,
    /// Split label fields on `;`/`,` even if the column is not called `labels`.
    pub multi_label: bool,
    /// Labels are required (training, evaluation); predict reads without them.
    pub require_labels: bool,
    /// The file format (default: from the extension, see [`Format::of`]).
    pub format: Option<Format>,
}

fn derr(path: &str, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// A data file format (`--format`); by default the extension selects it ([`Format::of`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Fasta,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Fasta => "fasta",
        }
    }

    /// The format a path's extension selects.
    pub fn of(path: &Path) -> Format {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "tsv" | "tab" => Format::Tsv,
            "fa" | "fasta" | "fna" | "fas" => Format::Fasta,
            _ => Format::Csv,
        }
    }
}

/// Reads a data file (format from `opts.format`, else by extension). A `bundled:…` path reads
/// a file built into the binary ([`crate::bundled`]).
pub fn read(path: &Path, opts: &ReadOptions) -> Result<RawData> {
    let name = path.display().to_string();
    let bytes = crate::bundled::read(path)?.into_owned();
    let text = utf8(bytes, &name)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match opts.format.unwrap_or_else(|| Format::of(path)) {
        Format::Csv => parse_table(text, b',', &name, opts),
        Format::Tsv => parse_table(text, b'\t', &name, opts),
        Format::Fasta => parse_fasta(text, &name, opts),
    }
}

/// The file's text, or an error naming the line and column of the first byte that is not UTF-8.
fn utf8(bytes: Vec<u8>, path: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // valid UTF-8 up to `at`, so this counts characters
        let col = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        derr(
            path,
            format!(
                "line {line}, column {col}: not UTF-8 text (byte 0x{:02x}); save the file as UTF-8",
                bytes[at]
            ),
        )
    })
}

/// Splits label text into labels (`;` or `,` separated, trimmed, empties dropped).
pub fn split_labels(s: &str) -> Vec<String> {
    s.split([';', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// One field of a delimited line: its text (unquoted, untrimmed) and the character column
/// (1-based) where that text starts. A quoted field must be closed on its line and be followed
/// only by blanks up to the delimiter; otherwise the error is `(column, message)`.
fn split_fields(
    line: &str,
    delim: u8,
) -> std::result::Result<Vec<(String, usize)>, (usize, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let d = delim as char;
    let mut i = 0;
    loop {
        // skip leading spaces to see whether the field is quoted
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '"' {
            let start = j + 1;
            let mut s = String::new();
            let mut k = start;
            let mut closed = false;
            while k < chars.len() {
                if chars[k] == '"' {
                    if k + 1 < chars.len() && chars[k + 1] == '"' {
                        s.push('"');
                        k += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                s.push(chars[k]);
                k += 1;
            }
            if !closed {
                return Err((
                    j + 1,
                    "unterminated quote (no closing `\"` on this line)".into(),
                ));
            }
            out.push((s, start + 1));
            // only blanks may follow the closing quote before the next delimiter
            k += 1;
            while k < chars.len() && chars[k] != d {
                if !chars[k].is_whitespace() {
                    return Err((
                        k + 1,
                        format!("unexpected {:?} after a closing quote", chars[k]),
                    ));
                }
                k += 1;
            }
            if k >= chars.len() {
                break;
            }
            i = k + 1;
        } else {
            let mut k = i;
            while k < chars.len() && chars[k] != d {
                k += 1;
            }
            out.push((chars[i..k].iter().collect(), i + 1));
            if k >= chars.len() {
                break;
            }
            i = k + 1;
        }
    }
    Ok(out)
}

/// [`split_fields`] with errors naming the file and line.
fn fields_of(line: &str, delim: u8, path: &str, lineno: usize) -> Result<Vec<(String, usize)>> {
    split_fields(line, delim)
        .map_err(|(col, msg)| derr(path, format!("line {lineno}, column {col}: {msg}")))
}

/// Trims a field and returns it with the column of its first non-blank character.
fn trimmed(field: &(String, usize)) -> (String, usize) {
    let lead = field.0.chars().take_while(|c| c.is_whitespace()).count();
    (field.0.trim().to_string(), field.1 + lead)
}

fn check_seq(seq: &str, path: &str, line: usize, col: usize) -> Result<()> {
    if let Some((i, c)) = dna::first_invalid(seq) {
        let offset = seq[..i].chars().count();
        return Err(derr(
            path,
            format!(
                "line {line}, column {}: invalid character {c:?} in sequence (valid: {})",
                col + offset,
                dna::VALID
            ),
        ));
    }
    Ok(())
}

/// A hint, for a header without the expected columns, that the file is in another format than
/// the one it was read as (empty when nothing suggests that).
fn format_hint(header: &str, delim: u8) -> String {
    let h = header.trim_start();
    if h.starts_with('>') {
        return "; the first line is a FASTA header: is this a FASTA file? name it .fa or pass --format fasta".into();
    }
    if delim == b',' && h.contains('\t') {
        return "; the header contains tabs: is this a tab-separated file? name it .tsv or pass --format tsv".into();
    }
    if delim == b'\t' && !h.contains('\t') && h.contains(',') {
        return "; the header contains commas but no tabs: is this a comma-separated file? name it .csv or pass --format csv".into();
    }
    String::new()
}

/// The columns of a CSV/TSV table, found in its header: what [`parse_table`] and the streaming
/// reader ([`crate::data::stream`]) use to parse each record line.
#[derive(Debug, Clone)]
pub(crate) struct TableHeader {
    delim: u8,
    seq_col: usize,
    label_col: Option<usize>,
    id_col: Option<usize>,
    multi: bool,
}

impl TableHeader {
    /// Parses the header line (1-based `lineno`). `id_column` names the id column (default:
    /// `id` or `name`, if present); a named one that is missing is an error.
    pub(crate) fn parse(
        header: &str,
        lineno: usize,
        delim: u8,
        path: &str,
        opts: &ReadOptions,
        id_column: Option<&str>,
    ) -> Result<TableHeader> {
        let header = header.trim_start_matches('\u{feff}');
        let cols: Vec<String> = fields_of(header, delim, path, lineno)?
            .iter()
            .map(|f| trimmed(f).0)
            .collect();
        let find = |wanted: &Option<String>, defaults: &[&str]| -> Option<usize> {
            match wanted {
                Some(w) => cols.iter().position(|c| c.eq_ignore_ascii_case(w.trim())),
                None => defaults
                    .iter()
                    .find_map(|d| cols.iter().position(|c| c.eq_ignore_ascii_case(d))),
            }
        };
        let listed = cols.join(", ");
        let hint = format_hint(header, delim);
        let seq_col = find(&opts.sequence_column, &["sequence", "seq"]).ok_or_else(|| {
            derr(
                path,
                match &opts.sequence_column {
                    Some(w) => format!("no sequence column {w:?} in the header (columns: {listed})"),
                    None => format!(
                        "no sequence column in the header (columns: {listed}); name it `sequence` or `seq`, or pass --sequence-column{hint}"
                    ),
                },
            )
        })?;
        let label_col = find(&opts.label_column, &["label", "class", "labels"]);
        if label_col.is_none() && (opts.require_labels || opts.label_column.is_some()) {
            return Err(derr(
                path,
                match &opts.label_column {
                    Some(w) => format!("no label column {w:?} in the header (columns: {listed})"),
                    None => format!(
                        "no label column in the header (columns: {listed}); name it `label`, `class` or `labels`, or pass --label-column{hint}"
                    ),
                },
            ));
        }
        let id_col = find(&id_column.map(String::from), &["id", "name"]);
        if let (Some(w), None) = (id_column, id_col) {
            return Err(derr(
                path,
                format!("no id column {w:?} in the header (columns: {listed})"),
            ));
        }
        let multi =
            opts.multi_label || label_col.is_some_and(|i| cols[i].eq_ignore_ascii_case("labels"));
        Ok(TableHeader {
            delim,
            seq_col,
            label_col,
            id_col,
            multi,
        })
    }

    pub(crate) fn has_labels(&self) -> bool {
        self.label_col.is_some()
    }

    pub(crate) fn multi_label(&self) -> bool {
        self.multi
    }

    /// Parses one record line (1-based `lineno`); `index` is the number of records before it
    /// (the id when the table has no id column is `index + 1`).
    pub(crate) fn record(
        &self,
        line: &str,
        lineno: usize,
        index: usize,
        path: &str,
    ) -> Result<Record> {
        let fields = fields_of(line, self.delim, path, lineno)?;
        let get = |c: usize, what: &str| -> Result<(String, usize)> {
            fields.get(c).map(trimmed).ok_or_else(|| {
                derr(
                    path,
                    format!(
                        "line {lineno}: has {} field(s), no {what} column {}",
                        fields.len(),
                        c + 1
                    ),
                )
            })
        };
        let (seq, col) = get(self.seq_col, "sequence")?;
        check_seq(&seq, path, lineno, col)?;
        if seq.is_empty() {
            let id = match self.id_col {
                Some(c) => get(c, "id")?.0,
                None => (index + 1).to_string(),
            };
            return Err(derr(
                path,
                format!("line {lineno}: record {id} has an empty sequence"),
            ));
        }
        let labels = match self.label_col {
            Some(c) => {
                let (l, _) = get(c, "label")?;
                let labels = if self.multi {
                    split_labels(&l)
                } else {
                    vec![l.clone()]
                };
                if !self.multi && l.is_empty() {
                    return Err(derr(path, format!("line {lineno}: empty label")));
                }
                labels
            }
            None => Vec::new(),
        };
        let id = match self.id_col {
            Some(c) => get(c, "id")?.0,
            None => (index + 1).to_string(),
        };
        Ok(Record {
            id,
            seq,
            labels,
            line: lineno,
        })
    }
}

fn parse_table(text: &str, delim: u8, path: &str, opts: &ReadOptions) -> Result<RawData> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_idx, header)) = lines.next() else {
        return Err(derr(
            path,
            "the file is empty (expected a header row and records)",
        ));
    };
    let h = TableHeader::parse(header, header_idx + 1, delim, path, opts, None)?;
    let mut records = Vec::new();
    for (idx, line) in lines {
        records.push(h.record(line, idx + 1, records.len(), path)?);
    }
    if records.is_empty() {
        return Err(derr(path, "no records after the header"));
    }
    Ok(RawData {
        path: path.to_string(),
        records,
        has_labels: h.has_labels(),
        multi_label: h.multi_label(),
    })
}

/// FASTA options that only apply to tables are refused.
pub(crate) fn check_fasta_options(path: &str, opts: &ReadOptions) -> Result<()> {
    if opts.label_column.is_some() || opts.sequence_column.is_some() {
        return Err(Error::Usage(format!(
            "--label-column/--sequence-column apply to CSV/TSV files; {path} is FASTA (labels are in the headers: `>id label=CLASS`)"
        )));
    }
    Ok(())
}

/// What one FASTA line is: skipped (blank or `;` comment), a header (a new record with an empty
/// sequence; `multi` is set when it says `labels=`, `labelled` false when it has no label), or a
/// validated, trimmed sequence piece.
pub(crate) enum FastaLine<'a> {
    Skip,
    Header {
        rec: Record,
        multi: bool,
        labelled: bool,
    },
    Seq(&'a str),
}

/// Parses one FASTA line (1-based `lineno`); `index` counts the records before it (a sequence
/// line with `index == 0` is an error: before the first header).
pub(crate) fn fasta_line<'a>(
    line: &'a str,
    lineno: usize,
    index: usize,
    path: &str,
    opts: &ReadOptions,
) -> Result<FastaLine<'a>> {
    let t = line.trim_end();
    if t.trim().is_empty() || t.starts_with(';') {
        return Ok(FastaLine::Skip);
    }
    if let Some(h) = t.strip_prefix('>') {
        let mut parts = h.split_whitespace();
        let id = parts
            .next()
            .map(String::from)
            .unwrap_or_else(|| (index + 1).to_string());
        let mut labels = None;
        let mut multi = false;
        for p in parts {
            if let Some(v) = p.strip_prefix("labels=") {
                multi = true;
                labels = Some(split_labels(v));
            } else if let Some(v) = p.strip_prefix("label=") {
                if v.is_empty() && !opts.multi_label {
                    return Err(derr(
                        path,
                        format!("line {lineno}: record {id} has an empty label (`label=` with no class)"),
                    ));
                }
                labels = Some(if opts.multi_label {
                    split_labels(v)
                } else {
                    vec![v.to_string()]
                });
            }
        }
        let labelled = labels.is_some();
        if !labelled && opts.require_labels {
            return Err(derr(
                path,
                format!("line {lineno}: FASTA header has no label (write `>{id} label=CLASS` or `labels=A,B`)"),
            ));
        }
        return Ok(FastaLine::Header {
            rec: Record {
                id,
                seq: String::new(),
                labels: labels.unwrap_or_default(),
                line: lineno,
            },
            multi,
            labelled,
        });
    }
    if index == 0 {
        return Err(seq_before_header(path, t, lineno));
    }
    let lead = t.chars().take_while(|c| c.is_whitespace()).count();
    let s = t.trim();
    check_seq(s, path, lineno, lead + 1)?;
    Ok(FastaLine::Seq(s))
}

/// The error for a sequence line before any `>` header.
pub(crate) fn seq_before_header(path: &str, line: &str, lineno: usize) -> Error {
    let hint = if line.contains(',') || line.contains('\t') {
        " (this looks like a table: pass --format csv or --format tsv)"
    } else {
        ""
    };
    derr(
        path,
        format!("line {lineno}: sequence before the first `>` header{hint}"),
    )
}

/// The error for a FASTA record with no sequence.
pub(crate) fn empty_fasta_record(path: &str, r: &Record) -> Error {
    derr(
        path,
        format!("line {}: record {} has an empty sequence", r.line, r.id),
    )
}

fn parse_fasta(text: &str, path: &str, opts: &ReadOptions) -> Result<RawData> {
    check_fasta_options(path, opts)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<Record> = Vec::new();
    let mut multi = opts.multi_label;
    let mut has_labels = true;
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        match fasta_line(line, lineno, records.len(), path, opts)? {
            FastaLine::Skip => {}
            FastaLine::Header {
                rec,
                multi: m,
                labelled,
            } => {
                multi |= m;
                has_labels &= labelled;
                records.push(rec);
            }
            FastaLine::Seq(s) => match records.last_mut() {
                Some(rec) => rec.seq.push_str(s),
                None => return Err(seq_before_header(path, line.trim_end(), lineno)),
            },
        }
    }
    if records.is_empty() {
        return Err(derr(path, "the file is empty (no `>` records)"));
    }
    if let Some(r) = records.iter().find(|r| r.seq.is_empty()) {
        return Err(empty_fasta_record(path, r));
    }
    Ok(RawData {
        path: path.to_string(),
        records,
        has_labels,
        multi_label: multi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReadOptions {
        ReadOptions {
            require_labels: true,
            ..Default::default()
        }
    }

    #[test]
    fn padded_csv_like_splice() {
        let t = "Class, Donor,   Sequence\nEI,    X-1,     ACGTN\n\nN ,  X-2 ,  acgtr \n";
        let d = parse_table(t, b',', "f.csv", &opts()).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[1].labels, vec!["N"]);
        assert_eq!(d.records[1].seq, "acgtr");
        assert_eq!(d.records[1].line, 4);
        assert_eq!(d.records[0].id, "1");
    }

    #[test]
    fn bad_character_names_line_and_column() {
        let t = "label,seq\nA,ACGT\nB,  ACXT\n";
        let e = parse_table(t, b',', "f.csv", &opts())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.csv") && e.contains("line 3, column 7") && e.contains("'X'"),
            "{e}"
        );
    }

    #[test]
    fn quoted_multi_label_and_fasta() {
        let t = "id,labels,sequence\nr1,\"a,b\",ACGT\nr2,,ACGT\nr3,c;a,ACGT\n";
        let d = parse_table(t, b',', "f.csv", &opts()).unwrap();
        assert!(d.multi_label);
        assert_eq!(d.records[0].labels, vec!["a", "b"]);
        assert!(d.records[1].labels.is_empty());
        assert_eq!(d.records[2].labels, vec!["c", "a"]);
        assert_eq!(d.records[2].id, "r3");
        let f = ">s1 labels=x,y\nACG\nTT\n>s2 labels=\nAAAAA\n";
        let d = parse_fasta(f, "f.fa", &opts()).unwrap();
        assert!(d.multi_label);
        assert_eq!(d.records[0].seq, "ACGTT");
        assert_eq!(d.records[0].labels, vec!["x", "y"]);
        let f = ">s1 label=EI\nACG\nTXT\n";
        let e = parse_fasta(f, "f.fa", &opts()).unwrap_err().to_string();
        assert!(e.contains("line 3, column 2"), "{e}");
    }

    fn err_table(t: &str) -> String {
        parse_table(t, b',', "f.csv", &opts())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn quoting_errors_name_line_and_column() {
        let e = err_table("label,seq\nA,ACGT\nA,\"ACGT\"junk\n");
        assert!(
            e.contains("f.csv") && e.contains("line 3, column 9") && e.contains("'j'"),
            "{e}"
        );
        let e = err_table("label,seq\nA,\"ACGT\n");
        assert!(e.contains("line 2, column 3: unterminated quote"), "{e}");
        let e = err_table("\"label,seq\nA,ACGT\n");
        assert!(e.contains("line 1, column 1: unterminated quote"), "{e}");
        // blanks after a closing quote are fine, and "" is an escaped quote
        let d = parse_table(
            "id,label,seq\n\"r\"\"1\"  ,A,\"ACGT\" \n",
            b',',
            "f.csv",
            &opts(),
        )
        .unwrap();
        assert_eq!(d.records[0].id, "r\"1");
        assert_eq!(d.records[0].seq, "ACGT");
    }

    #[test]
    fn empty_sequences_and_labels_are_errors_naming_the_record() {
        let e = err_table("id,label,seq\nr1,A,ACGT\nr2,A,  \n");
        assert!(e.contains("line 3: record r2 has an empty sequence"), "{e}");
        let e = err_table("label,seq\nA,\"\"\n");
        assert!(e.contains("line 2: record 1 has an empty sequence"), "{e}");
        let e = parse_fasta(">s1 label=A\nACGT\n>s2 label=\nACGT\n", "f.fa", &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3: record s2 has an empty label"), "{e}");
        // multi-label: an empty `label=` is a record with no label
        let m = ReadOptions {
            multi_label: true,
            ..opts()
        };
        let d = parse_fasta(">s1 label=\nACGT\n", "f.fa", &m).unwrap();
        assert!(d.records[0].labels.is_empty());
    }

    #[test]
    fn bom_non_utf8_and_column_flags_with_fasta() {
        let dir = tempfile::tempdir().unwrap();
        let fa = dir.path().join("b.fa");
        std::fs::write(&fa, "\u{feff}>s1 label=A\nACGT\n").unwrap();
        let d = read(&fa, &opts()).unwrap();
        assert_eq!(d.records[0].id, "s1");
        let csv = dir.path().join("b.csv");
        std::fs::write(&csv, "\u{feff}label,seq\nA,ACGT\n").unwrap();
        assert_eq!(read(&csv, &opts()).unwrap().records[0].seq, "ACGT");
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, b"label,seq\nA,ACGT\nB,AC\xe9GT\n").unwrap();
        let e = read(&bad, &opts()).unwrap_err().to_string();
        assert!(
            e.contains("bad.csv")
                && e.contains("line 3, column 5: not UTF-8")
                && e.contains("0xe9"),
            "{e}"
        );
        for o in [
            ReadOptions {
                label_column: Some("x".into()),
                ..opts()
            },
            ReadOptions {
                sequence_column: Some("x".into()),
                ..opts()
            },
        ] {
            let e = read(&fa, &o).unwrap_err().to_string();
            assert!(
                e.contains("--label-column/--sequence-column") && e.contains("FASTA"),
                "{e}"
            );
        }
    }

    #[test]
    fn format_option_overrides_the_extension_and_hints_name_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("d.txt");
        std::fs::write(&txt, "id\tlabel\tseq\nr1\tA\tACGT\n").unwrap();
        let e = read(&txt, &opts()).unwrap_err().to_string();
        assert!(
            e.contains("tab-separated") && e.contains("--format tsv"),
            "{e}"
        );
        let o = ReadOptions {
            format: Some(Format::Tsv),
            ..opts()
        };
        assert_eq!(read(&txt, &o).unwrap().records[0].seq, "ACGT");
        assert_eq!(format_hint(">s1 label=A", b','), "; the first line is a FASTA header: is this a FASTA file? name it .fa or pass --format fasta");
        assert!(format_hint("id,label,seq", b'\t').contains("--format csv"));
        assert!(format_hint("id,label,seq", b',').is_empty());
    }
}
