//! Streaming reading: the records of a CSV/TSV/FASTA file in chunks, so a file of any size is
//! read with memory for one chunk (what `seqgrad predict` and `evaluate` use).
//!
//! Each record is parsed by the same code as [`crate::data::read`] (the header's columns, the
//! per-line checks, the errors naming file, line and column); only the whole-file checks differ
//! in when they fire: a record of another length (without `--crop`/`--pad`) is found when its
//! chunk is read, after earlier chunks were already processed.
//!
//! ```no_run
//! use seqgrad::data::{stream::RecordStream, ReadOptions};
//! let mut s = RecordStream::open("big.fa".as_ref(), &ReadOptions::default(), None)?;
//! while let Some(chunk) = s.next_chunk(1024)? {
//!     // chunk: a RawData of at most 1024 records, in file order
//!     println!("{} records, {} of {:?} bytes read", chunk.records.len(), s.bytes_read(), s.total_bytes());
//! }
//! # Ok::<(), seqgrad::Error>(())
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::data::reader::{self, FastaLine, Format, RawData, ReadOptions, Record, TableHeader};
use crate::error::{Error, Result};

enum Kind {
    Table(TableHeader),
    Fasta,
}

/// An iterator-like reader of record chunks ([`RecordStream::next_chunk`]).
pub struct RecordStream {
    src: Box<dyn BufRead>,
    path: String,
    opts: ReadOptions,
    kind: Kind,
    /// Lines read so far (the 1-based number of the last line read).
    lineno: usize,
    /// Records started so far.
    records: usize,
    bytes: u64,
    total: Option<u64>,
    buf: Vec<u8>,
    /// The FASTA record whose sequence lines are being read.
    pending: Option<Record>,
    has_labels: bool,
    multi_label: bool,
}

fn derr(path: &str, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_string(),
        msg: msg.into(),
    }
}

impl RecordStream {
    /// Opens a file (format from `opts.format`, else the extension; `bundled:…` paths read the
    /// built-in files) and reads a table's header. `id_column` names a CSV/TSV id column
    /// (default `id` or `name`; FASTA ids are the headers' first words).
    pub fn open(path: &Path, opts: &ReadOptions, id_column: Option<&str>) -> Result<RecordStream> {
        let name = path.display().to_string();
        let (src, total): (Box<dyn BufRead>, Option<u64>) = match crate::bundled::get(path) {
            Some(b) => {
                let b = b?;
                (Box::new(std::io::Cursor::new(b)), Some(b.len() as u64))
            }
            None => {
                let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(BufReader::with_capacity(1 << 16, f)), len)
            }
        };
        let format = opts.format.unwrap_or_else(|| Format::of(path));
        let mut s = RecordStream {
            src,
            path: name,
            opts: opts.clone(),
            kind: Kind::Fasta,
            lineno: 0,
            records: 0,
            bytes: 0,
            total,
            buf: Vec::new(),
            pending: None,
            has_labels: true,
            multi_label: opts.multi_label,
        };
        match format {
            Format::Fasta => {
                reader::check_fasta_options(&s.path, opts)?;
                if id_column.is_some() {
                    return Err(Error::Usage(format!(
                        "--id-column applies to CSV/TSV files; {} is FASTA (a record's id is the first word of its `>` header)",
                        s.path
                    )));
                }
            }
            Format::Csv | Format::Tsv => {
                let delim = if format == Format::Csv { b',' } else { b'\t' };
                let header = loop {
                    match s.next_line()? {
                        None => {
                            return Err(derr(
                                &s.path,
                                "the file is empty (expected a header row and records)",
                            ))
                        }
                        Some(l) if l.trim().is_empty() => continue,
                        Some(l) => break l,
                    }
                };
                let h = TableHeader::parse(&header, s.lineno, delim, &s.path, opts, id_column)?;
                s.has_labels = h.has_labels();
                s.multi_label = h.multi_label();
                s.kind = Kind::Table(h);
            }
        }
        Ok(s)
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The file's size in bytes, if known.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total
    }

    /// The file's name as errors show it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next line without its line ending (`None` at the end of the file); bytes that are not
    /// UTF-8 are an error naming the line and column.
    fn next_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n = self
            .src
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(Path::new(&self.path), e))?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.lineno += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        let bytes = std::mem::take(&mut self.buf);
        let line = String::from_utf8(bytes).map_err(|e| {
            let b = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let col = String::from_utf8_lossy(&b[..at]).chars().count() + 1;
            derr(
                &self.path,
                format!(
                    "line {}, column {col}: not UTF-8 text (byte 0x{:02x}); save the file as UTF-8",
                    self.lineno, b[at]
                ),
            )
        })?;
        Ok(Some(if self.lineno == 1 {
            line.trim_start_matches('\u{feff}').to_string()
        } else {
            line
        }))
    }

    /// The next at most `max` (at least 1) records, in file order; `None` after the last one.
    /// A file without any record is an error, as for [`crate::data::read`].
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<RawData>> {
        let max = max.max(1);
        let mut out = Vec::new();
        match &self.kind {
            Kind::Table(h) => {
                let h = h.clone();
                while out.len() < max {
                    let Some(line) = self.next_line()? else { break };
                    if line.trim().is_empty() {
                        continue;
                    }
                    out.push(h.record(&line, self.lineno, self.records, &self.path)?);
                    self.records += 1;
                }
                if out.is_empty() && self.records == 0 {
                    return Err(derr(&self.path, "no records after the header"));
                }
            }
            Kind::Fasta => loop {
                let Some(line) = self.next_line()? else {
                    if let Some(r) = self.pending.take() {
                        out.push(self.finished(r)?);
                    }
                    if self.records == 0 {
                        return Err(derr(&self.path, "the file is empty (no `>` records)"));
                    }
                    break;
                };
                let parsed =
                    reader::fasta_line(&line, self.lineno, self.records, &self.path, &self.opts)?;
                match parsed {
                    FastaLine::Skip => {}
                    FastaLine::Header {
                        rec,
                        multi,
                        labelled,
                    } => {
                        self.multi_label |= multi;
                        self.has_labels &= labelled;
                        self.records += 1;
                        if let Some(r) = self.pending.replace(rec) {
                            out.push(self.finished(r)?);
                            if out.len() >= max {
                                break;
                            }
                        }
                    }
                    FastaLine::Seq(s) => match self.pending.as_mut() {
                        Some(r) => r.seq.push_str(s),
                        // fasta_line refuses a sequence line before the first header
                        None => return Err(reader::seq_before_header(&self.path, s, self.lineno)),
                    },
                }
            },
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(RawData {
            path: self.path.clone(),
            records: out,
            has_labels: self.has_labels,
            multi_label: self.multi_label,
        }))
    }

    fn finished(&self, r: Record) -> Result<Record> {
        if r.seq.is_empty() {
            return Err(reader::empty_fasta_record(&self.path, &r));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_chunks(path: &Path, opts: &ReadOptions, max: usize) -> Result<Vec<RawData>> {
        let mut s = RecordStream::open(path, opts, None)?;
        let mut v = Vec::new();
        while let Some(c) = s.next_chunk(max)? {
            assert!(c.records.len() <= max);
            v.push(c);
        }
        assert_eq!(s.bytes_read(), s.total_bytes().unwrap_or(0));
        Ok(v)
    }

    fn same_as_read(name: &str, text: &str, opts: ReadOptions) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let whole = crate::data::read(&p, &opts);
        for max in [1, 2, 3, 100] {
            let chunks = all_chunks(&p, &opts, max);
            match (&whole, chunks) {
                (Ok(w), Ok(c)) => {
                    let recs: Vec<Record> = c.iter().flat_map(|c| c.records.clone()).collect();
                    assert_eq!(recs, w.records, "{name} max {max}");
                    let last = c.last().unwrap();
                    assert_eq!(last.has_labels, w.has_labels);
                    assert_eq!(last.multi_label, w.multi_label);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
                (a, b) => panic!("{name} max {max}: read {a:?} but stream {b:?}"),
            }
        }
    }

    #[test]
    fn chunks_equal_whole_file_reads() {
        let lab = || ReadOptions {
            require_labels: true,
            ..Default::default()
        };
        same_as_read(
            "a.csv",
            "\u{feff}Class, Id,Sequence\r\nEI, x1, ACGT\n\nN,x2,acgt\nIE,\"x,3\",ACGN\n",
            lab(),
        );
        same_as_read("b.tsv", "label\tseq\nA\tACGT\nB\tTTTT\nA\tGGGG\n", lab());
        same_as_read(
            "c.fa",
            ">r1 label=A\nAC\nGT\n; comment\n\n>r2 label=B\nTTTT\n>r3 label=A\nG\nG\nGG\n",
            lab(),
        );
        same_as_read(
            "d.fa",
            ">r1 labels=A,B\nACGT\n>r2 labels=\nTTTT\n",
            ReadOptions::default(),
        );
        same_as_read("e.fa", ">r1\nACGT\n>r2\nTT\n", ReadOptions::default());
        // errors: the same one-line message
        same_as_read("f.csv", "label,seq\nA,ACGT\nB,ACXT\n", lab());
        same_as_read("g.csv", "label,seq\n\n", lab());
        same_as_read("h.csv", "", lab());
        same_as_read("i.fa", "ACGT\n>r1 label=A\nACGT\n", lab());
        same_as_read("j.fa", ">r1 label=A\nACGT\n>r2 label=B\n", lab());
        same_as_read("k.fa", "\n\n", lab());
        same_as_read("l.csv", "seq,x\nACGT,1\n", lab());
        same_as_read("m.fa", ">r1\nACGT\n", lab());
    }

    #[test]
    fn not_utf8_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.csv");
        std::fs::write(&p, b"label,seq\nA,AC\xffGT\n").unwrap();
        let e = all_chunks(&p, &ReadOptions::default(), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 5") && e.contains("0xff"), "{e}");
    }

    #[test]
    fn id_column_by_name_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.csv");
        std::fs::write(&p, "seq,acc,name\nACGT,P1,n1\nTTTT,P2,n2\n").unwrap();
        let mut s = RecordStream::open(&p, &ReadOptions::default(), Some("ACC")).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        let ids: Vec<&str> = c.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["P1", "P2"]);
        let mut s = RecordStream::open(&p, &ReadOptions::default(), None).unwrap();
        assert_eq!(s.next_chunk(10).unwrap().unwrap().records[0].id, "n1");
        let e = RecordStream::open(&p, &ReadOptions::default(), Some("gene"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no id column \"gene\"") && e.contains("seq, acc, name"),
            "{e}"
        );
    }
}
