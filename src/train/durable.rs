//! Durable checkpoint folders: written whole to a temporary folder, every file and the folder
//! `fsync`ed, then swapped in by renames, with a manifest (size and CRC-32 of every file) that a
//! reader checks before trusting anything in the folder.
//!
//! A checkpoint folder `DIR` (e.g. `RUN/checkpoint`) has a sibling `DIR.prev`, the checkpoint
//! before it. Writing a new one:
//!
//! 1. the files go into `.DIR.tmp-<pid>-<n>` next to `DIR`, each written and `fsync`ed, the
//!    manifest `manifest.json` last, then the temporary folder is `fsync`ed;
//! 2. if `DIR` exists: `DIR.prev` is removed, then `DIR` is renamed to `DIR.prev`;
//! 3. the temporary folder is renamed to `DIR` and the parent folder is `fsync`ed.
//!
//! At every instant `DIR` or `DIR.prev` holds a complete checkpoint (once one was ever
//! written): a kill in step 1 leaves a stray temporary folder (ignored, removed by the next
//! write), between the renames of steps 2 and 3 only `DIR.prev` exists. [`find`] takes `DIR` if
//! its manifest checks out, else `DIR.prev`.
//!
//! Fault injection for tests: the environment variable `SEQGRAD_TEST_KILL=POINT@N` makes the
//! process SIGKILL itself at that point (see [`fault`]; docs/reliability.md lists the points).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name inside a checkpoint folder.
pub const MANIFEST: &str = "manifest.json";

/// Size and checksum of one file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    pub crc32: u32,
}

/// What a checkpoint folder holds: the global step it was taken at and every file's size and
/// CRC-32.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub step: u64,
    pub epoch: usize,
    pub files: BTreeMap<String, FileSum>,
}

/// Writes a streamed file's bytes.
pub type WriteFn<'a> = Box<dyn Fn(&mut dyn Write) -> std::io::Result<()> + Send + 'a>;

/// What goes into one file of a checkpoint: bytes, or `len` bytes written by a function (so a
/// large file is streamed from the data it encodes, not built in memory first).
pub enum Content<'a> {
    Bytes(Vec<u8>),
    Stream { len: u64, write: WriteFn<'a> },
}

impl Content<'_> {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Stream { len, .. } => *len,
        }
    }
}

/// A writer that keeps the CRC-32 and count of what passes through, and (for the torn-write
/// test hook) stops the process after `kill_after` bytes.
struct Summing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    count: u64,
    kill_after: Option<u64>,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let buf = match self.kill_after {
            Some(k) if self.count + buf.len() as u64 >= k => {
                let keep = (k - self.count) as usize;
                self.inner.write_all(&buf[..keep])?;
                self.inner.flush()?;
                kill_self();
            }
            _ => buf,
        };
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `DIR.prev`: the checkpoint kept before `dir`.
pub fn prev_of(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".prev");
    dir.with_file_name(name)
}

fn parent_of(dir: &Path) -> &Path {
    dir.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn tmp_prefix(dir: &Path) -> String {
    format!(
        ".{}.tmp-",
        dir.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// The test hook: `SEQGRAD_TEST_KILL=POINT@N` SIGKILLs the process when [`fault`] is reached
/// with that point and number. Read once.
fn armed() -> Option<&'static (String, u64)> {
    static ARMED: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("SEQGRAD_TEST_KILL").ok()?;
            let (point, n) = v.split_once('@')?;
            Some((point.to_string(), n.trim().parse().ok()?))
        })
        .as_ref()
}

/// True when `SEQGRAD_TEST_KILL` names this point and number.
pub(crate) fn armed_at(point: &str, n: u64) -> bool {
    armed().is_some_and(|(p, k)| p == point && *k == n)
}

/// Kills the process with SIGKILL (no destructors, no flushing: as the OOM killer or `kill -9`
/// would) when `SEQGRAD_TEST_KILL` names this point and number.
pub(crate) fn fault(point: &str, n: u64) {
    if armed_at(point, n) {
        kill_self();
    }
}

fn kill_self() -> ! {
    #[cfg(target_os = "linux")]
    // SAFETY: kill(2) on our own process id has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `content` to `path`, `fsync`ed; its size and CRC-32.
fn write_content(
    path: &Path,
    content: &Content<'_>,
    kill_after: Option<u64>,
) -> std::io::Result<FileSum> {
    let f = std::fs::File::create(path)?;
    let mut w = Summing {
        inner: std::io::BufWriter::with_capacity(1 << 20, f),
        crc: crc32fast::Hasher::new(),
        count: 0,
        kill_after,
    };
    match content {
        Content::Bytes(b) => w.write_all(b)?,
        Content::Stream { write, .. } => write(&mut w)?,
    }
    w.flush()?;
    if w.count != content.len() {
        return Err(std::io::Error::other(format!(
            "wrote {} bytes, expected {}",
            w.count,
            content.len()
        )));
    }
    let crc = w.crc.finalize();
    let f = w.inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(FileSum {
        bytes: content.len(),
        crc32: crc,
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes temporary folders of `dir` left by writes that were killed.
fn remove_stale_tmps(dir: &Path) {
    let prefix = tmp_prefix(dir);
    if let Ok(rd) = std::fs::read_dir(parent_of(dir)) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Writes `files` as the checkpoint folder `dir` (see the module documentation), with a
/// manifest for global step `step` of epoch `epoch`. On any failure `dir` and `DIR.prev` are as
/// they were and the temporary folder is removed.
pub fn write_dir(
    dir: &Path,
    files: &[(String, Content<'_>)],
    step: u64,
    epoch: usize,
) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    remove_stale_tmps(dir);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent_of(dir).join(format!("{}{}-{n}", tmp_prefix(dir), std::process::id()));
    let result = fill(&tmp, files, step, epoch);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    swap_in(&tmp, dir, step)
}

fn fill(tmp: &Path, files: &[(String, Content<'_>)], step: u64, epoch: usize) -> Result<()> {
    std::fs::create_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
    let mut sums = BTreeMap::new();
    for (i, (name, content)) in files.iter().enumerate() {
        let p = tmp.join(name);
        // the test hook: half of the first file on disk, then the kill
        let kill_after = (i == 0 && armed_at("ckpt-torn", step)).then(|| content.len() / 2);
        let sum = write_content(&p, content, kill_after).map_err(|e| Error::io(&p, e))?;
        sums.insert(name.clone(), sum);
    }
    fault("ckpt-files", step);
    let manifest = Manifest {
        format: 1,
        step,
        epoch,
        files: sums,
    };
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    let p = tmp.join(MANIFEST);
    write_synced(&p, text.as_bytes()).map_err(|e| Error::io(&p, e))?;
    sync_dir(tmp).map_err(|e| Error::io(tmp, e))
}

fn swap_in(tmp: &Path, dir: &Path, step: u64) -> Result<()> {
    let prev = prev_of(dir);
    let undo = |e: std::io::Error, p: &Path| {
        let _ = std::fs::remove_dir_all(tmp);
        Error::io(p, e)
    };
    fault("ckpt-synced", step);
    if dir.exists() {
        if prev.exists() {
            std::fs::remove_dir_all(&prev).map_err(|e| undo(e, &prev))?;
        }
        std::fs::rename(dir, &prev).map_err(|e| undo(e, dir))?;
        fault("ckpt-aside", step);
    }
    std::fs::rename(tmp, dir).map_err(|e| undo(e, dir))?;
    fault("ckpt-swapped", step);
    sync_dir(parent_of(dir)).map_err(|e| Error::io(parent_of(dir), e))
}

/// Checks a checkpoint folder against its manifest: every listed file present with its size
/// and CRC-32. The error says what is wrong, in a few words.
pub fn verify(dir: &Path) -> std::result::Result<Manifest, String> {
    let p = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("it has no {MANIFEST} (a torn or unfinished write)"))
        }
        Err(e) => return Err(format!("{MANIFEST}: {e}")),
    };
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} is not valid ({e})"))?;
    for (name, sum) in &m.files {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if bytes.len() as u64 != sum.bytes {
            return Err(format!(
                "{name} has {} bytes but the manifest says {}",
                bytes.len(),
                sum.bytes
            ));
        }
        let crc = crc32fast::hash(&bytes);
        if crc != sum.crc32 {
            return Err(format!(
                "{name} is corrupt (CRC-32 {crc:08x}, the manifest says {:08x})",
                sum.crc32
            ));
        }
    }
    Ok(m)
}

/// A checkpoint folder that checked out, and a warning when it is not the newest one.
#[derive(Debug, Clone)]
pub struct Found {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Set when `dir` is `DIR.prev` because `DIR` is damaged (not merely absent).
    pub warning: Option<String>,
}

/// The newest intact checkpoint of `dir`: `dir` itself, else `DIR.prev`. `Ok(None)` when
/// neither exists; an error (one line, saying what is wrong) when they exist but neither
/// checks out.
pub fn find(dir: &Path) -> Result<Option<Found>> {
    let prev = prev_of(dir);
    let first = dir.is_dir().then(|| verify(dir));
    let second = || prev.is_dir().then(|| verify(&prev));
    match first {
        Some(Ok(manifest)) => Ok(Some(Found {
            dir: dir.to_path_buf(),
            manifest,
            warning: None,
        })),
        Some(Err(why)) => match second() {
            Some(Ok(manifest)) => Ok(Some(Found {
                warning: Some(format!(
                    "checkpoint {} is damaged ({why}); using the one before it, {} (epoch {}, step {})",
                    dir.display(),
                    prev.display(),
                    manifest.epoch,
                    manifest.step
                )),
                dir: prev,
                manifest,
            })),
            Some(Err(why2)) => Err(Error::Train(format!(
                "checkpoint {} is damaged ({why}), and so is {} ({why2})",
                dir.display(),
                prev.display()
            ))),
            None => Err(Error::Train(format!(
                "checkpoint {} is damaged ({why}) and there is no earlier one to fall back on",
                dir.display()
            ))),
        },
        None => match second() {
            Some(Ok(manifest)) => Ok(Some(Found {
                dir: prev,
                manifest,
                warning: None,
            })),
            Some(Err(why)) => Err(Error::Train(format!(
                "checkpoint {} is damaged ({why})",
                prev.display()
            ))),
            None => Ok(None),
        },
    }
}

/// Removes the checkpoint `dir`, `DIR.prev` and any temporary folders of it.
pub fn remove(dir: &Path) -> Result<()> {
    remove_stale_tmps(dir);
    for d in [dir.to_path_buf(), prev_of(dir)] {
        if d.is_dir() {
            std::fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tag: &str) -> Vec<(String, Content<'static>)> {
        let tag = tag.to_string();
        vec![
            (
                "a.bin".into(),
                Content::Bytes(format!("first {tag}").into_bytes()),
            ),
            (
                "b.json".into(),
                Content::Stream {
                    len: 11 + tag.len() as u64,
                    write: Box::new(move |w| write!(w, "{{\"tag\": \"{tag}\"}}")),
                },
            ),
        ]
    }

    #[test]
    fn write_keeps_the_previous_and_find_takes_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("checkpoint");
        write_dir(&ck, &files("one"), 1, 1).unwrap();
        write_dir(&ck, &files("two"), 2, 2).unwrap();
        let f = find(&ck).unwrap().unwrap();
        assert_eq!((f.dir.clone(), f.manifest.step), (ck.clone(), 2));
        assert!(f.warning.is_none());
        assert_eq!(
            std::fs::read(prev_of(&ck).join("a.bin")).unwrap(),
            b"first one"
        );
        // no temporary folder is left behind
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_torn_or_corrupt_checkpoint_falls_back_to_the_previous_one() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("checkpoint");
        write_dir(&ck, &files("one"), 1, 1).unwrap();
        write_dir(&ck, &files("two"), 2, 2).unwrap();
        // truncated file
        std::fs::write(ck.join("a.bin"), b"firs").unwrap();
        let f = find(&ck).unwrap().unwrap();
        assert_eq!((f.dir.clone(), f.manifest.step), (prev_of(&ck), 1));
        let w = f.warning.unwrap();
        assert!(
            w.contains("a.bin has 4 bytes but the manifest says 9"),
            "{w}"
        );
        // same size, one bit flipped
        write_dir(&ck, &files("two"), 2, 2).unwrap();
        write_dir(&ck, &files("3re"), 3, 3).unwrap();
        std::fs::write(ck.join("a.bin"), b"first 3rf").unwrap();
        let f = find(&ck).unwrap().unwrap();
        assert_eq!(f.manifest.step, 2);
        assert!(f.warning.unwrap().contains("a.bin is corrupt (CRC-32"));
        // no manifest (a folder put there by hand, or a torn copy)
        std::fs::remove_file(ck.join(MANIFEST)).unwrap();
        assert_eq!(find(&ck).unwrap().unwrap().manifest.step, 2);
        // both damaged: one line naming both
        std::fs::write(prev_of(&ck).join(MANIFEST), b"{").unwrap();
        let e = find(&ck).unwrap_err().to_string();
        assert!(
            e.contains("has no manifest.json") && e.contains("manifest.json is not valid"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn only_the_previous_one_after_a_kill_between_the_renames() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("checkpoint");
        write_dir(&ck, &files("one"), 1, 1).unwrap();
        std::fs::rename(&ck, prev_of(&ck)).unwrap();
        std::fs::create_dir(d.path().join(".checkpoint.tmp-1-0")).unwrap();
        let f = find(&ck).unwrap().unwrap();
        assert_eq!((f.dir, f.warning), (prev_of(&ck), None));
        // the next write cleans up and ends with both
        write_dir(&ck, &files("two"), 2, 2).unwrap();
        assert!(!d.path().join(".checkpoint.tmp-1-0").exists());
        assert_eq!(find(&ck).unwrap().unwrap().manifest.step, 2);
        assert_eq!(verify(&prev_of(&ck)).unwrap().step, 1);
        remove(&ck).unwrap();
        assert!(find(&ck).unwrap().is_none());
    }
}
