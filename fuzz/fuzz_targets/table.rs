//! The CSV/TSV reader, through the public path-based API (`data::read`): the first byte picks
//! the format (even: `.csv`, odd: `.tsv`) and the reader options; the rest is the file. Any
//! bytes read to records or give an error, never a panic; records that read are then encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common {
    include!("common.rs");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ext = if sel & 1 == 0 { "csv" } else { "tsv" };
    common::read_and_encode(ext, sel, body);
});
