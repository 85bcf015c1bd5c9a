//! Writes the mixed-length example `data/varlen.fa` (200 records of 30–80 bp; `pos` records
//! carry a planted 10 bp motif, `neg` records are background): see docs/variable-length.md.
//!
//! ```text
//! cargo run --example varlen_fasta -- data/varlen.fa
//! ```

fn main() -> seqgrad::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/varlen.fa".into());
    let records = seqgrad::data::synth::generate_mixed_lengths(200, 30, 80, 11)?;
    seqgrad::data::synth::write(std::path::Path::new(&out), &records, false)?;
    println!("{out}: {} records", records.len());
    Ok(())
}
