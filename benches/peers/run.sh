#!/usr/bin/env bash
# One command: seqgrad vs PyTorch (eager) on issue 9's workloads, side by side.
#
#   benches/peers/run.sh [run.py options: --threads 2 --seconds 8 --passes 3 ...]
#
# Uses $PEERS_VENV (default benches/peers/.venv); creates it with torch and numpy when it has
# no python with torch. Builds the seqgrad release binary, then runs benches/peers/run.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PEERS_VENV:-$here/.venv}"
if ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
    echo "making $venv with torch and numpy" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
fi
(cd "$root" && cargo build --release --quiet)
exec "$venv/bin/python" "$here/run.py" --seqgrad "$root/target/release/seqgrad" \
    --python "$venv/bin/python" "$@"
