#!/bin/sh
# Runs every fuzz target for SECONDS (default 600) seconds, one at a time, single job, at the
# lowest priority, logging to /tmp/fuzz_<target>.log. Usage: fuzz/run_all.sh [SECONDS] [TARGET…]
# (from anywhere; needs cargo-fuzz: `cargo install cargo-fuzz`).
set -eu
cd "$(dirname "$0")"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"model_spec safetensors table fasta meme"}
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O "$t"
    echo "$t: start $(date -u +%FT%TZ)" >> /tmp/fuzz_times.log
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_funcs=0 -artifact_prefix="artifacts/$t/" \
        > "/tmp/fuzz_$t.log" 2>&1 || echo "$t: FAILED (see /tmp/fuzz_$t.log)" >> /tmp/fuzz_times.log
    echo "$t: end $(date -u +%FT%TZ)" >> /tmp/fuzz_times.log
done
