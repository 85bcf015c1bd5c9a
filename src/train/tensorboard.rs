//! TensorBoard event files (`seqgrad train --tensorboard DIR`): [`TensorBoard`], a training
//! callback, and [`TensorBoardLog`], the event file it writes, shared with
//! [`GradRecorder`](super::record::GradRecorder).
//!
//! A file `DIR/events.out.tfevents.<unix time>.<host>.<pid>.<n>` is a sequence of TFRecords
//! (`u64` length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes; all
//! little-endian), each an `Event` protobuf (tensorflow/core/util/event.proto): the first holds
//! `file_version = "brain.Event:2"`, the others a `Summary` of one value:
//!
//! - after every epoch, every column of `history.json` but `epoch` (`loss`, `accuracy`,
//!   `val_loss`, `val_accuracy`, …, `grad_norm`, `seconds`) as the scalar `epoch/<column>` at
//!   step = the epoch (1-based), as Keras' TensorBoard callback steps them;
//! - with `--record-grads N`, every row of `grads.csv` as the scalar `<statistic>/<tensor>`
//!   (`l2_norm/layers.0.weight`, `update_ratio/layers.0.weight`; per-layer rows:
//!   `activation_mean/layers.3`) and a histogram `grad/<tensor>` of every parameter tensor's
//!   gradient, at step = the recorded step (the optimizer updates before it, as in `grads.csv`);
//! - at the end, every PNG picture of `RUN/plots/` as the image `plots/<file stem>`, at the last
//!   epoch.
//!
//! Scalars are `simple_value`s (float32, as TensorBoard, PyTorch and Keras write them). A
//! resumed run appends a new file to the same folder and goes on with the same epochs and steps;
//! what the interrupted run logged past its checkpoint is logged again by the resumed one, at
//! the same steps, and TensorBoard keeps the later file's values (it drops a tag's events at or
//! after a step it sees again).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost::Message;

use super::callbacks::{Callback, Context, EpochLogs};
use crate::error::{Error, Result};
use crate::tensor::Float;

/// `Event` (tensorflow/core/util/event.proto), the fields seqgrad writes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

pub mod event {
    /// `Event.what`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// `Summary` (tensorflow/core/framework/summary.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

pub mod summary {
    /// `Summary.Image`: an encoded (PNG) picture.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// `Summary.Value`: a tag and one of a scalar, an image or a histogram.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(oneof = "value::Kind", tags = "2, 4, 5")]
        pub kind: Option<value::Kind>,
    }

    pub mod value {
        /// `Summary.Value.value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            #[prost(message, tag = "4")]
            Image(super::Image),
            #[prost(message, tag = "5")]
            Histo(super::super::HistogramProto),
        }
    }
}

/// `HistogramProto`: bucket `i` counts the values in (`bucket_limit[i-1]`, `bucket_limit[i]`]
/// (the first from `min`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// Buckets of a gradient histogram: equal widths between the smallest and largest value.
pub const HISTOGRAM_BUCKETS: usize = 30;

/// The histogram of `values` (non-finite values are left out).
pub fn histogram(values: impl Iterator<Item = f64>) -> HistogramProto {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if v.is_empty() {
        return HistogramProto::default();
    }
    let n = if max > min { HISTOGRAM_BUCKETS } else { 1 };
    let width = (max - min) / n as f64;
    let mut bucket = vec![0.0; n];
    for &x in &v {
        let i = if width > 0.0 {
            (((x - min) / width).ceil() as usize).clamp(1, n) - 1
        } else {
            0
        };
        bucket[i] += 1.0;
    }
    let mut bucket_limit: Vec<f64> = (1..=n).map(|i| min + width * i as f64).collect();
    bucket_limit[n - 1] = max;
    HistogramProto {
        min,
        max,
        num: v.len() as f64,
        sum: v.iter().sum(),
        sum_squares: v.iter().map(|x| x * x).sum(),
        bucket_limit,
        bucket,
    }
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The records of a TFRecord file, every CRC checked. A truncated last record (a writer
/// stopped mid-record) ends the list; any other damage is an error saying where.
pub fn read_records(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 12) else {
            break;
        };
        let (len, len_crc) = head.split_at(8);
        let want = u32::from_le_bytes([len_crc[0], len_crc[1], len_crc[2], len_crc[3]]);
        if masked_crc(len) != want {
            return Err(format!("record at byte {at}: length CRC mismatch"));
        }
        let n = u64::from_le_bytes(len.try_into().unwrap_or([0; 8]));
        let Some(end) = usize::try_from(n)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
        else {
            return Err(format!("record at byte {at}: length {n} too large"));
        };
        let Some(data) = bytes.get(at + 12..end) else {
            break;
        };
        let Some(crc) = bytes.get(end..end + 4) else {
            break;
        };
        if masked_crc(data) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(format!("record at byte {at}: data CRC mismatch"));
        }
        out.push(data.to_vec());
        at = end + 4;
    }
    Ok(out)
}

/// The events of a TensorBoard event file (framing and CRCs checked).
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |msg: String| Error::Usage(format!("{}: {msg}", path.display()));
    read_records(&bytes)
        .map_err(bad)?
        .iter()
        .enumerate()
        .map(|(i, r)| Event::decode(r.as_slice()).map_err(|e| bad(format!("event {i}: {e}"))))
        .collect()
}

/// The event files of a folder, oldest first (as TensorBoard reads them: by name).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events.out.tfevents."))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Width, height and colour space of a PNG (from its IHDR chunk).
fn png_header(png: &[u8]) -> Option<(i32, i32, i32)> {
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |r: std::ops::Range<usize>| -> Option<i32> {
        let b = png.get(r)?;
        i32::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let colorspace = match png.get(25)? {
        0 | 3 => 3, // grey or palette: TensorBoard shows both decoded as RGB
        4 => 2,
        2 => 3,
        6 => 4,
        _ => return None,
    };
    Some((be(16..20)?, be(20..24)?, colorspace))
}

/// An open event file.
struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    fn create(dir: &Path) -> Result<EventFile> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let secs = now() as u64;
        let (host, pid) = (host_name(), std::process::id());
        let mut n = 0;
        let (path, file) = loop {
            let p = dir.join(format!("events.out.tfevents.{secs:010}.{host}.{pid}.{n}"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
            {
                Ok(f) => break (p, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::io(&p, e)),
            }
        };
        let mut f = EventFile {
            path,
            out: BufWriter::new(file),
        };
        f.write(&Event {
            wall_time: now(),
            step: 0,
            what: Some(event::What::FileVersion("brain.Event:2".into())),
        })?;
        f.flush()?;
        Ok(f)
    }

    fn write(&mut self, e: &Event) -> Result<()> {
        self.out
            .write_all(&frame(&e.encode_to_vec()))
            .map_err(|err| Error::io(&self.path, err))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// A TensorBoard log folder: its event file is created at the first write; clones share it.
#[derive(Clone)]
pub struct TensorBoardLog {
    dir: PathBuf,
    file: Arc<Mutex<Option<EventFile>>>,
}

impl TensorBoardLog {
    pub fn new(dir: impl Into<PathBuf>) -> TensorBoardLog {
        TensorBoardLog {
            dir: dir.into(),
            file: Arc::new(Mutex::new(None)),
        }
    }

    /// The log folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The event file written so far, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.file
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(|f| f.path.clone()))
    }

    fn with_file(&self, f: impl FnOnce(&mut EventFile) -> Result<()>) -> Result<()> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| Error::Train("the TensorBoard writer failed earlier".into()))?;
        if guard.is_none() {
            *guard = Some(EventFile::create(&self.dir)?);
        }
        match guard.as_mut() {
            Some(file) => f(file),
            None => Ok(()),
        }
    }

    fn value(&self, step: u64, tag: &str, kind: summary::value::Kind) -> Result<()> {
        let e = Event {
            wall_time: now(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(event::What::Summary(Summary {
                value: vec![summary::Value {
                    tag: tag.to_string(),
                    kind: Some(kind),
                }],
            })),
        };
        self.with_file(|f| f.write(&e))
    }

    /// A scalar (stored as float32).
    pub fn scalar(&self, tag: &str, step: u64, value: f64) -> Result<()> {
        self.value(step, tag, summary::value::Kind::SimpleValue(value as f32))
    }

    /// A histogram of `values` ([`histogram`]).
    pub fn histogram(&self, tag: &str, step: u64, values: impl Iterator<Item = f64>) -> Result<()> {
        self.value(step, tag, summary::value::Kind::Histo(histogram(values)))
    }

    /// A PNG picture; anything that is not a PNG is an error naming `origin`.
    pub fn png(&self, tag: &str, step: u64, png: Vec<u8>, origin: &Path) -> Result<()> {
        let (width, height, colorspace) = png_header(&png).ok_or_else(|| {
            Error::Usage(format!(
                "{}: not a PNG picture TensorBoard can show",
                origin.display()
            ))
        })?;
        let image = summary::Image {
            height,
            width,
            colorspace,
            encoded_image_string: png,
        };
        self.value(step, tag, summary::value::Kind::Image(image))
    }

    /// Every `.png` of `pictures` as the image `plots/<file stem>` at `step`.
    pub fn pictures(&self, pictures: &[PathBuf], step: u64) -> Result<()> {
        for p in pictures
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
        {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
            self.png(
                &format!("plots/{}", stem.unwrap_or_default()),
                step,
                bytes,
                p,
            )?;
        }
        self.flush()
    }

    /// Writes out what is buffered.
    pub fn flush(&self) -> Result<()> {
        match self.file.lock() {
            Ok(mut g) => g.as_mut().map_or(Ok(()), EventFile::flush),
            Err(_) => Ok(()),
        }
    }
}

/// The training callback: the epoch's history row as scalars after every epoch (see the
/// module docs), flushed then.
pub struct TensorBoard {
    log: TensorBoardLog,
}

impl TensorBoard {
    pub fn new(log: TensorBoardLog) -> TensorBoard {
        TensorBoard { log }
    }
}

impl<T: Float> Callback<T> for TensorBoard {
    fn name(&self) -> String {
        "tensorboard".into()
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        // The file exists from the start, also for a run that fails in its first epoch.
        self.log.with_file(|_| Ok(()))
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_, T>, logs: &EpochLogs) -> Result<()> {
        let h = &*ctx.history;
        if let Some(row) = h.rows.last() {
            for (c, v) in h.columns.iter().zip(row) {
                if c != "epoch" {
                    self.log
                        .scalar(&format!("epoch/{c}"), logs.epoch as u64, *v)?;
                }
            }
        }
        self.log.flush()
    }

    fn on_train_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<()> {
        self.log.flush()
    }

    fn on_exception(&mut self, _ctx: &mut Context<'_, T>, _err: &Error) -> Result<()> {
        self.log.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_of_known_values() {
        // CRC-32C("123456789") = 0xe3069283 (RFC 3720); the mask rotates right by 15 and adds
        // 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn frames_read_back_and_damage_is_caught() {
        let mut file = frame(b"first");
        file.extend(frame(b""));
        file.extend(frame(&[7u8; 300]));
        let recs = read_records(&file).unwrap();
        assert_eq!(recs, vec![b"first".to_vec(), vec![], vec![7u8; 300]]);
        // A record cut short at the end is dropped, not an error.
        assert_eq!(read_records(&file[..file.len() - 3]).unwrap().len(), 2);
        let mut bad = file.clone();
        bad[14] ^= 1; // inside "first"
        assert!(read_records(&bad).unwrap_err().contains("data CRC"));
        let mut bad = file;
        bad[0] ^= 1;
        assert!(read_records(&bad).unwrap_err().contains("length CRC"));
    }

    #[test]
    fn event_encoding_matches_protobuf_wire_format() {
        // Hand-checked bytes: field 1 (double) wall_time, field 2 (varint) step, field 3
        // (length-delimited) file_version.
        let e = Event {
            wall_time: 1.5,
            step: 3,
            what: Some(event::What::FileVersion("v".into())),
        };
        let mut want = vec![0x09];
        want.extend(1.5f64.to_le_bytes());
        want.extend([0x10, 3, 0x1a, 1, b'v']);
        assert_eq!(e.encode_to_vec(), want);
        // A scalar: Event.summary (5) > Summary.value (1) > tag (1), simple_value (2, float).
        let s = Event {
            wall_time: 0.0,
            step: 0,
            what: Some(event::What::Summary(Summary {
                value: vec![summary::Value {
                    tag: "a".into(),
                    kind: Some(summary::value::Kind::SimpleValue(2.0)),
                }],
            })),
        };
        let mut inner = vec![0x0a, 1, b'a', 0x15];
        inner.extend(2.0f32.to_le_bytes());
        let mut want = vec![0x2a, inner.len() as u8 + 2, 0x0a, inner.len() as u8];
        want.extend(inner);
        assert_eq!(s.encode_to_vec(), want);
    }

    #[test]
    fn histogram_counts_every_finite_value_once() {
        let vals = [-1.0, -0.5, 0.0, 0.25, 0.25, 2.0, f64::NAN];
        let h = histogram(vals.iter().copied());
        assert_eq!(h.num, 6.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 6.0);
        assert_eq!((h.min, h.max), (-1.0, 2.0));
        assert_eq!(h.bucket_limit.len(), HISTOGRAM_BUCKETS);
        assert_eq!(*h.bucket_limit.last().unwrap(), 2.0);
        assert_eq!(h.bucket[0], 1.0); // the minimum sits in the first bucket
        assert_eq!(*h.bucket.last().unwrap(), 1.0);
        assert_eq!(h.sum, 1.0);
        let one = histogram([3.0, 3.0].into_iter());
        assert_eq!(
            (one.bucket.clone(), one.bucket_limit.clone()),
            (vec![2.0], vec![3.0])
        );
        assert_eq!(histogram(std::iter::empty()).num, 0.0);
    }

    #[test]
    fn png_header_reads_size_and_colour() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(640u32.to_be_bytes());
        png.extend(480u32.to_be_bytes());
        png.extend([8, 2, 0, 0, 0]);
        assert_eq!(png_header(&png), Some((640, 480, 3)));
        png[25] = 6;
        assert_eq!(png_header(&png), Some((640, 480, 4)));
        assert_eq!(png_header(b"GIF89a"), None);
    }
}
