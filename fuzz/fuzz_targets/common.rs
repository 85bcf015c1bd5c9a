// Shared by the reader targets (included, not a target itself).

use std::io::Write;

use seqgrad::data::{self, reader::ReadOptions, Labels, LengthPolicy};

/// Writes `body` to a temporary file with extension `ext`, reads it with options chosen by the
/// bits of `sel`, and encodes what was read (padding/cropping to a small length).
pub fn read_and_encode(ext: &str, sel: u8, body: &[u8]) {
    let mut f = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .expect("temp file");
    f.write_all(body).expect("write temp file");
    f.flush().expect("flush temp file");
    let opts = ReadOptions {
        label_column: (sel & 2 != 0).then(|| "class".to_string()),
        sequence_column: (sel & 4 != 0).then(|| "seq".to_string()),
        multi_label: sel & 8 != 0,
        require_labels: sel & 16 != 0,
        format: None,
    };
    let Ok(raw) = data::reader::read(f.path(), &opts) else {
        return;
    };
    let Ok(labels) = Labels::from_data(&raw) else {
        return;
    };
    let policy = LengthPolicy {
        pad: (sel & 32 != 0).then_some(16),
        crop: (sel & 64 != 0).then_some(16),
        any_length: false,
    };
    let _ = data::encode::<f32>(&raw, &labels, policy, sel & 128 != 0);
}
