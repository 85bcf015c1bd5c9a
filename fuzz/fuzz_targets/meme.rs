//! The MEME motif reader: any text parses to motifs or gives an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(motifs) = seqgrad::data::meme::parse(text, "fuzz.meme") {
            for m in &motifs {
                let _ = m.width();
                let _ = m.information();
            }
        }
    }
});
