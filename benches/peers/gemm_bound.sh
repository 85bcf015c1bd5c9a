#!/usr/bin/env bash
# A workload's products alone, timed with the gemm crate and with numpy/OpenBLAS: the fastest a
# step could run with these libraries (see gemm_bound.py).
#
#   benches/peers/gemm_bound.sh w3 [--threads 2] [--peer-infer X] [--peer-train Y] [--passes 3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PEERS_VENV:-/work/venv}"
if ! "$venv/bin/python" -c "import numpy" 2>/dev/null; then
    echo "no python with numpy in $venv; make it with" >&2
    echo "  python3 -m venv $venv && $venv/bin/pip install -r $here/requirements.txt" >&2
    exit 2
fi
(cd "$root" && cargo build --release --quiet --bin seqgrad --example gemm_shapes --example gemm_peak)
exec "$venv/bin/python" "$here/gemm_bound.py" --seqgrad "$root/target/release/seqgrad" \
    --gemm-shapes "$root/target/release/examples/gemm_shapes" \
    --gemm-peak "$root/target/release/examples/gemm_peak" "$@"
