//! Random byte strings never make a reader panic: CSV/TSV and FASTA (`data::reader::read`),
//! MEME (`data::meme::parse`), safetensors (`weights::parse_tensors`), model JSON
//! (`ModelSpec::from_json`, then `memory::plan`). Each gets both raw bytes and text made of the
//! characters its format cares about (so the parser gets past its first check).

use std::io::Write;

use proptest::prelude::*;
use seqgrad::data::{self, meme, reader::ReadOptions, Labels, LengthPolicy};
use seqgrad::spec::ModelSpec;

fn read_as(ext: &str, bytes: &[u8], flags: u8) {
    let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    let opts = ReadOptions {
        label_column: (flags & 1 != 0).then(|| "class".into()),
        sequence_column: (flags & 2 != 0).then(|| "seq".into()),
        multi_label: flags & 4 != 0,
        require_labels: flags & 8 != 0,
        format: None,
    };
    if let Ok(raw) = data::reader::read(f.path(), &opts) {
        if let Ok(labels) = Labels::from_data(&raw) {
            let n = (flags & 16 != 0).then_some(6);
            let policy = LengthPolicy {
                crop: n,
                pad: n,
                any_length: false,
            };
            let _ = data::encode::<f32>(&raw, &labels, policy, flags & 32 != 0);
        }
    }
}

fn table_text() -> impl Strategy<Value = String> {
    "(id|sequence|seq|label|labels|class|[ACGTNacgtn]{0,9}|[a-z;]{0,4}|\"|\"\"|,|\t| |\r|\n|\u{feff}|é){0,40}"
}

fn fasta_text() -> impl Strategy<Value = String> {
    "(>|[ACGTNacgtn]{0,9}|label=|labels=|[a-z;,]{0,4}| |\t|\r|\n|é){0,40}"
}

fn meme_text() -> impl Strategy<Value = String> {
    "(MEME version 4\n|ALPHABET= ACGT\n|MOTIF M[0-9]\n|letter-probability matrix: alength= [0-9] w= [0-9]( nsites= [0-9])?\n|(-?[0-9]{0,2}(\\.[0-9]{0,3})?|NaN|inf|e9) |\n){0,30}"
}

fn model_text() -> impl Strategy<Value = String> {
    "(\\{|\\}|\\[|\\]|,|:|\"input_shape\"|\"layers\"|\"type\"|\"conv1d\"|\"dense\"|\"lstm\"|\"bidirectional\"|\"layer\"|\"units\"|\"filters\"|\"kernel_size\"|\"rate\"|[0-9]{1,20}|-1|1e400|null|true){0,40}"
}

/// Safetensors-like bytes: a little-endian header length, a JSON-ish header, some data.
fn safetensors_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        0u64..200,
        "(\\{|\\}|\\[|\\]|,|:|\"dtype\"|\"F32\"|\"F64\"|\"I8\"|\"shape\"|\"data_offsets\"|\"x\"|\"__metadata__\"|[0-9]{1,20}| ){0,40}",
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(n, header, data)| {
            let mut b = n.to_le_bytes().to_vec();
            b.extend_from_slice(header.as_bytes());
            b.extend_from_slice(&data);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_any_reader(bytes in proptest::collection::vec(any::<u8>(), 0..300), flags in any::<u8>()) {
        read_as(".csv", &bytes, flags);
        read_as(".tsv", &bytes, flags);
        read_as(".fa", &bytes, flags);
        let text = String::from_utf8_lossy(&bytes);
        let _ = meme::parse(&text, "p.meme");
        let _ = seqgrad::weights::parse_tensors(&bytes);
        if let Ok(spec) = ModelSpec::from_json(&text, "p.json") {
            let _ = seqgrad::memory::plan(&spec);
        }
    }

    #[test]
    fn table_like_text_never_panics(text in table_text(), flags in any::<u8>()) {
        read_as(".csv", text.as_bytes(), flags);
        read_as(".tsv", text.as_bytes(), flags);
    }

    #[test]
    fn fasta_like_text_never_panics(text in fasta_text(), flags in any::<u8>()) {
        read_as(".fa", text.as_bytes(), flags);
    }

    #[test]
    fn meme_like_text_never_panics(text in meme_text()) {
        if let Ok(motifs) = meme::parse(&text, "p.meme") {
            for m in motifs {
                let _ = m.information();
            }
        }
    }

    #[test]
    fn safetensors_like_bytes_never_panic(bytes in safetensors_bytes()) {
        let _ = seqgrad::weights::parse_tensors(&bytes);
    }

    #[test]
    fn model_like_json_never_panics(text in model_text()) {
        if let Ok(spec) = ModelSpec::from_json(&text, "p.json") {
            let _ = seqgrad::memory::plan(&spec);
        }
    }
}
