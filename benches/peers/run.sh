#!/usr/bin/env bash
# One command: seqgrad against PyTorch (eager and torch.compile) and Keras 3 on JAX on issue 9's
# workloads, alternating, medians of passes, with the machine's f32 GEMM ceiling.
#
#   benches/peers/run.sh [run.py options: --threads 2 --seconds 6 --passes 3 --scaling ...]
#
# The peers come from the venv $PEERS_VENV (default /work/venv). To make one:
#   python3 -m venv /work/venv && /work/venv/bin/pip install -r benches/peers/requirements.txt
# Builds the seqgrad release binary and examples/gemm_peak.rs, then runs benches/peers/run.py,
# which prints the markdown table and writes it to target/peers/table.md (--out to change).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PEERS_VENV:-/work/venv}"
if ! KERAS_BACKEND=jax "$venv/bin/python" -c "import torch, jax, keras, numpy" 2>/dev/null; then
    echo "no python with torch, jax, keras and numpy in $venv; make it with" >&2
    echo "  python3 -m venv $venv && $venv/bin/pip install -r $here/requirements.txt" >&2
    echo "or point PEERS_VENV at one" >&2
    exit 2
fi
(cd "$root" && cargo build --release --quiet --bin seqgrad --example gemm_peak)
mkdir -p "$root/target/peers"
exec "$venv/bin/python" "$here/run.py" --seqgrad "$root/target/release/seqgrad" \
    --gemm-peak "$root/target/release/examples/gemm_peak" --python "$venv/bin/python" \
    --json "$root/target/peers/raw.json" "$@"
