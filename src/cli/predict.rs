//! `seqgrad predict`: a table of model outputs per record: an `id` column (the record's id —
//! the FASTA header's first word, the `--id-column`/`id`/`name` column of a CSV/TSV — or its
//! 1-based row number), then one probability column per class named after the class (`class0`,
//! `class1` … when no labels.json is known). A binary head (dense of 1 unit with sigmoid on
//! two classes) writes one probability column named after the positive (second sorted) class
//! and a `predicted` column with the class its probability gives at threshold 0.5. The table is tab-separated, or comma-separated
//! (fields quoted as needed) when `--out` ends in `.csv`.
//!
//! The file is streamed: records are read, encoded, predicted and written `--batch-size` at a
//! time, so memory does not grow with the file; a progress bar (bytes read) is shown when
//! standard error is a terminal. `--out FILE` is written to a temporary file renamed at the
//! end, so an error part-way leaves no partial FILE.
//!
//! `--rc-average` averages the outputs for each sequence and its reverse complement; on a run
//! not trained with `--rc-augment` (per its `config.json`) it warns on stderr that the model
//! has not seen reverse complements, since on strand-specific data (splice sites) averaging in
//! the other strand's prediction lowers accuracy.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::evaluate::ModelArgs;
use crate::cli::train::{with_threads, DataArgs};
use crate::data::stream::RecordStream;
use crate::data::{self, Labels, LengthPolicy, RawData, ReadOptions};
use crate::error::{Error, Result};
use crate::train;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences (CSV, TSV or FASTA); labels, if present, are ignored.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// The CSV/TSV column holding record ids (default: `id` or `name`, else the row number).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Average forward and reverse-complement predictions.
    #[arg(long)]
    pub rc_average: bool,
    /// Output table: comma-separated if it ends in .csv, else tab-separated (default: TSV on
    /// standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Records per forward pass (affects memory use and speed).
    #[arg(long, default_value_t = 256, value_parser = crate::cli::config::at_least_one)]
    pub batch_size: usize,
    /// Number of threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<()> {
    with_threads(a.threads, || {
        crate::cli::evaluate::check_fits_args(
            &a.model,
            a.batch_size,
            crate::memory::Workload::Inference,
        )?;
        let (mut model, labels, policy) = a.model.load_for(&a.data_args)?;
        if a.rc_average {
            // a config.json that cannot be read counts as no config.json (the warning says so)
            let cfg = a.model.run_config().ok().flatten();
            if let Some(w) = rc_average_warning(cfg.map(|c| c.rc_augment)) {
                eprintln!("seqgrad: warning: {w}");
            }
        }
        let opts = ReadOptions {
            require_labels: false,
            ..a.data_args.read_options()
        };
        let k = model.output_shape().iter().product::<usize>();
        let labels = labels.unwrap_or_else(|| Labels {
            classes: (0..k).map(|i| format!("class{i}")).collect(),
            multi_label: false,
            binary: false,
        });
        let mut stream = RecordStream::open(&a.data, &opts, a.id_column.as_deref())?;
        let delim = match &a.out {
            Some(p) if has_ext(p, "csv") => b',',
            _ => b'\t',
        };
        let mut sink = Sink::create(a.out.as_deref())?;
        let mut header = vec!["id".to_string()];
        match labels.positive() {
            // a binary head: the positive class's probability, then the predicted class
            Some(p) => header.extend([p.to_string(), "predicted".to_string()]),
            None => header.extend(labels.classes.iter().cloned()),
        }
        sink.write(&row(&header, delim))?;
        let progress = progress_bar(stream.total_bytes());
        let mut lengths = SameLength::new(policy);
        while let Some(raw) = stream.next_chunk(a.batch_size)? {
            lengths.check(&raw)?;
            let ds = data::encode::<f32>(&raw, &labels, policy, false)?;
            train::check_fit(&model, ds.seq_len(), labels.outputs())?;
            check_fits_chunk(&model, &ds, a.batch_size)?;
            let lens = ds.lengths.as_deref();
            let mut probs = train::predict_masked(&mut model, &ds.x, lens, a.batch_size, false)?;
            if a.rc_average {
                let rc = train::predict_masked(&mut model, &ds.x, lens, a.batch_size, true)?;
                probs = (probs + rc) * 0.5f32;
            }
            let mut s = String::new();
            for (id, p) in ds.ids.iter().zip(probs.outer_iter()) {
                let mut cells = vec![id.clone()];
                cells.extend(p.iter().map(|v| format!("{v:.6}")));
                if labels.binary {
                    let pos = p.first().is_some_and(|&v| v > 0.5);
                    cells.push(
                        labels
                            .classes
                            .get(usize::from(pos))
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
                s.push_str(&row(&cells, delim));
            }
            if !sink.write(&s)? {
                break; // standard output was closed (`| head`): stop quietly
            }
            progress.set_position(stream.bytes_read());
        }
        progress.finish_and_clear();
        sink.finish()
    })
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext))
}

/// One output line: cells joined by `delim`; in CSV a cell with a comma, quote or line break is
/// quoted (quotes doubled), in TSV tabs and line breaks in a cell become spaces.
pub(crate) fn row(cells: &[String], delim: u8) -> String {
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
pub(crate) fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
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

/// The memory check of a model of any length for a chunk of records, at the chunk's longest
/// record (a fixed-length model was checked before reading).
pub(crate) fn check_fits_chunk(
    model: &crate::model::Sequential<f32>,
    ds: &data::Dataset<f32>,
    batch_size: usize,
) -> Result<()> {
    if !model.is_variable_length() {
        return Ok(());
    }
    crate::memory::check_fits_length(
        model.spec(),
        batch_size.min(ds.len().max(1)),
        crate::memory::Workload::Inference,
        ds.max_len(),
    )
}

/// Without `--crop`/`--pad` every record must have the first record's length; chunks are
/// encoded one at a time, so this checks each chunk against the file's first record (the same
/// error as reading the whole file).
pub(crate) struct SameLength {
    policy: LengthPolicy,
    first: Option<(usize, usize)>,
}

impl SameLength {
    pub(crate) fn new(policy: LengthPolicy) -> SameLength {
        SameLength {
            policy,
            first: None,
        }
    }

    pub(crate) fn check(&mut self, raw: &RawData) -> Result<()> {
        if self.policy.crop.is_some() || self.policy.pad.is_some() || self.policy.any_length {
            return Ok(());
        }
        let Some(f) = raw.records.first() else {
            return Ok(());
        };
        let (len, line) = *self.first.get_or_insert((f.seq.len(), f.line));
        if let Some(r) = raw.records.iter().find(|r| r.seq.len() != len) {
            return Err(Error::Data {
                path: raw.path.clone(),
                msg: format!(
                    "line {}: record {} has length {}, which differs from the first record's length {len} (line {line}); {}",
                    r.line,
                    r.id,
                    r.seq.len(),
                    data::MIXED_LENGTHS_FIX
                ),
            });
        }
        Ok(())
    }
}

/// Where the table goes: standard output, or a temporary file renamed to `--out` by
/// [`Sink::finish`] (removed if the run fails before).
enum Sink {
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
    fn create(path: Option<&Path>) -> Result<Sink> {
        let Some(path) = path else {
            return Ok(Sink::Stdout {
                out: std::io::BufWriter::new(std::io::stdout()),
                closed: false,
            });
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        Ok(Sink::File {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
        })
    }

    /// Writes text; `false` when standard output has been closed by its reader.
    fn write(&mut self, s: &str) -> Result<bool> {
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

    fn finish(mut self) -> Result<()> {
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

/// The warning for `--rc-average`, given whether the run was trained with `--rc-augment`
/// (`None`: not known, no `config.json`).
pub fn rc_average_warning(rc_augment: Option<bool>) -> Option<&'static str> {
    match rc_augment {
        Some(true) => None,
        Some(false) => Some(
            "--rc-average: this model was trained without --rc-augment, so it has not seen reverse complements; on strand-specific data (e.g. splice sites) averaging with them can lower accuracy a lot",
        ),
        None => Some(
            "--rc-average: no config.json beside these weights, so seqgrad cannot tell whether the model was trained with --rc-augment; without it the model has not seen reverse complements and averaging with them can lower accuracy",
        ),
    }
}
