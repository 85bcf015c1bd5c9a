//! Files built into the binary, so the demo (`seqgrad` with no arguments) runs from any folder
//! and after `cargo install`: a path `bundled:models/splice.json` or `bundled:data/splice.csv`
//! names the embedded copy of that file of the source tree. Every reader of model and data
//! files goes through [`read`], so these paths work wherever a file path does (`--model`,
//! `--data`, and the data path recorded in a run's `config.json`).

use std::borrow::Cow;
use std::path::Path;

use crate::error::{Error, Result};

/// The prefix that marks an embedded file.
pub const PREFIX: &str = "bundled:";

/// The embedded files, by their path in the source tree.
pub const FILES: &[(&str, &[u8])] = &[
    (
        "models/splice.json",
        include_bytes!("../models/splice.json"),
    ),
    ("data/splice.csv", include_bytes!("../data/splice.csv")),
    // The motifs `synth` plants by default.
    (
        "data/jaspar2016_vertebrates.meme",
        include_bytes!("../data/jaspar2016_vertebrates.meme"),
    ),
];

/// The embedded file a `bundled:…` path names (`None` for an ordinary path).
pub fn get(path: &Path) -> Option<Result<&'static [u8]>> {
    let name = path.to_str()?.strip_prefix(PREFIX)?;
    Some(
        FILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let known: Vec<String> =
                    FILES.iter().map(|(n, _)| format!("{PREFIX}{n}")).collect();
                Error::Usage(format!(
                    "{}: no such built-in file (built in: {})",
                    path.display(),
                    known.join(", ")
                ))
            }),
    )
}

/// The bytes of a file, or of the embedded file a `bundled:…` path names.
pub fn read(path: &Path) -> Result<Cow<'static, [u8]>> {
    match get(path) {
        Some(b) => b.map(Cow::Borrowed),
        None => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| Error::io(path, e)),
    }
}

/// [`read`] as UTF-8 text (an error naming the path if it is not).
pub fn read_to_string(path: &Path) -> Result<String> {
    let bytes = read(path)?.into_owned();
    String::from_utf8(bytes).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        )
    })
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_paths_resolve_and_unknown_ones_are_errors() {
        let m = read(Path::new("bundled:models/splice.json")).unwrap();
        assert!(std::str::from_utf8(&m).unwrap().contains("input_shape"));
        let e = read(Path::new("bundled:nope.csv")).unwrap_err().to_string();
        assert!(
            e.contains("no such built-in file") && e.contains("bundled:data/splice.csv"),
            "{e}"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
