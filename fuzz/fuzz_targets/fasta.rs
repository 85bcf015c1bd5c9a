//! The FASTA reader, through the public path-based API (`data::read` on a `.fa` file): the
//! first byte picks the reader options; the rest is the file. Any bytes read to records or give
//! an error, never a panic; records that read are then encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common {
    include!("common.rs");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    common::read_and_encode("fa", sel, body);
});
