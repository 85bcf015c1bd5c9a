//! Typed errors. Every error a user can reach carries the actual values and prints as one line.

use std::path::PathBuf;

use thiserror::Error;

/// Why a single layer cannot accept an input shape (per sample, no batch axis). The model wraps
/// it in a [`BuildError`] that adds the layer's index and type and the fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ShapeIssue {
    /// The layer needs a sequence `(length, features)` but got something else.
    #[error("needs a sequence (length, features) but got {}", fmt_shape(.got))]
    NeedsSequence { got: Vec<usize> },
    /// The layer needs a given rank (e.g. dense needs `(features)` or `(length, features)`).
    #[error("needs input {expected} but got {}", fmt_shape(.got))]
    Rank { expected: String, got: Vec<usize> },
    /// A window (kernel, pool) is longer than the (padded) input.
    #[error("{what} {needed} is longer than the input length {got}")]
    TooShort {
        what: String,
        needed: usize,
        got: usize,
    },
    /// The layer's own options are invalid (zero filters, rate outside [0, 1) …).
    #[error("{0}")]
    Invalid(String),
    /// The layer needs a fixed sequence length but the model's input length is `null` (any
    /// length); the message says what to use instead.
    #[error("{0}")]
    NeedsFixedLength(String),
}

/// A model that cannot be built: which layer, what it got, and how to fix it.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("layer #{index} ({kind}): {issue}{}", .hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
pub struct BuildError {
    /// Index in the model's `layers` list.
    pub index: usize,
    /// Layer type as written in the model file (`conv1d`, `bidirectional(lstm)` …).
    pub kind: String,
    /// The per-sample input shape the layer was given.
    pub input: Vec<usize>,
    pub issue: ShapeIssue,
    /// What produced the bad input and how to fix it, when known.
    pub hint: Option<String>,
}

/// Every error seqgrad returns.
#[derive(Debug, Error)]
pub enum Error {
    /// Boxed: it is the largest payload, and every `Result` carries `Error`'s size.
    #[error("{0}")]
    Build(Box<BuildError>),
    /// The model file or a spec is malformed (unknown type or option, bad JSON).
    #[error("model {path}: {msg}")]
    Spec { path: String, msg: String },
    /// An array with the wrong shape was passed at run time.
    #[error("{what}: expected shape {expected} but got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// Per-record lengths that do not fit the batch (wrong count, a 0, or longer than the
    /// padded length), or a record too short for a layer (a `valid` window longer than it).
    #[error("lengths: {0}")]
    Lengths(String),
    /// `backward` was called on a layer that has no cached forward pass.
    #[error("layer {layer}: backward called without a forward pass in train/eval mode")]
    NoForward { layer: String },
    /// Weights file problems (missing / unexpected tensors, wrong shapes, dtype, corrupt file).
    #[error("weights {path}: {msg}")]
    Weights { path: String, msg: String },
    /// Data file problems: bad characters, mixed lengths, unknown labels …
    #[error("data {path}: {msg}")]
    Data { path: String, msg: String },
    /// Training problems (non-finite loss or gradient …).
    #[error("training: {0}")]
    Train(String),
    /// A check the user asked for ran and failed (`seqgrad gradcheck`): exit code 1, not 2.
    #[error("{0}")]
    ChecksFailed(String),
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// A run whose estimated peak memory exceeds what is available (`crate::memory`).
    #[error(
        "not enough memory: {what} needs about {} but {} is available ({origin}); {advice}",
        fmt_bytes(*.needed),
        fmt_bytes(*.available)
    )]
    Memory {
        what: String,
        needed: u64,
        available: u64,
        origin: String,
        advice: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        Error::Build(Box::new(e))
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a per-sample shape the way the summary and errors print it: `(75, 320)`, `(48000)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// `1.2 GiB`, `340 MiB`, `12 KiB`, `512 B`.
pub fn fmt_bytes(n: u64) -> String {
    let units = [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, size) in units {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v >= 100.0 {
                format!("{v:.0} {name}")
            } else {
                format!("{v:.1} {name}")
            };
        }
    }
    format!("{n} B")
}
