#!/usr/bin/env python3
"""Where a `seqgrad bench` run spends its time: a `perf record --call-graph dwarf` profile summed
by layer and pass × kind of work.

    perf record -F 1999 --call-graph dwarf,16384 -o w3t.data -- \\
        target/release/seqgrad bench --workload w3 --mode train --threads 2 --seconds 10
    python3 benches/peers/perf_summary.py w3t.data [--top 25]

Reads `perf script` output. Each sample is given:
- a **kind** from its leaf frame: the gemm crate's microkernel, gemm packing and driver, the
  recurrent cell kernels, ndarray element-wise loops, memmove/memcpy, memset, malloc/free, kernel
  page faults (any stack through `asm_exc_page_fault`/`clear_page`), other kernel time, rayon
  idle (a worker spinning or yielding for work: the other thread has nothing to do), other;
- a **place**: the layer and pass from the first seqgrad layer frame up its stack (`conv1d
  forward`, `recurrent backward`, `optimizer`, ...). Work a rayon worker stole carries no caller
  frames, so it takes the place of the nearest-in-time sample (≤ 20 ms) that has one.

Prints the share of all samples per place, per kind, the place × kind table, the top self
symbols (the first frame that is not inlined, as `perf report` names them) and leaf frames
(inlined ones included), and per thread. Only samples after the model is built (the first sample inside
`bench::measure`'s step loop) count, so model building is left out.
"""
import argparse
import bisect
import collections
import re
import subprocess
import sys

PLACES = [  # (pattern in a frame, name); first match from the leaf up wins
    (r"conv1d", "conv1d"),
    (r"rnn::|Recurrent|bidirectional", "recurrent"),
    (r"layers::pool", "maxpool"),
    (r"layers::dense", "dense"),
    (r"layers::dropout", "dropout"),
    (r"layers::flatten", "flatten"),
    (r"optim::", "optimizer"),
    (r"loss::", "loss"),
    (r"model::Sequential", "model (between layers)"),
]
KINDS = [  # (pattern on the leaf symbol, kind)
    (r"gemm_f\d+::microkernel", "GEMM microkernel"),
    (r"gemm_common|gemm_f\d+", "GEMM packing/driver"),
    (r"lstm::|simple_rnn::|gru::", "recurrent cell kernel"),
    (r"memmove|memcpy", "memmove/memcpy"),
    (r"memset", "memset"),
    (r"malloc|_int_free|cfree|^free$|realloc", "malloc/free"),
    (r"rayon_core|sched_yield|crossbeam", "rayon idle/steal"),
    (r"ndarray::", "ndarray element-wise/iter"),
    (r"rand_chacha|chacha", "random (ChaCha)"),
]


def samples(path):
    """(tid, time, [frames leaf first]) per sample."""
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "tid,time,ip,sym"],
                         stdout=subprocess.PIPE, text=True, errors="replace")
    head, frames = None, []
    for line in p.stdout:
        line = line.rstrip("\n")
        if not line.strip():
            if head:
                yield head[0], head[1], frames
            head, frames = None, []
            continue
        if head is None:
            m = re.match(r"\s*(\d+)\s+([\d.]+):", line)
            if m:
                head = (int(m.group(1)), float(m.group(2)))
            continue
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else "[unknown]")
    if head:
        yield head[0], head[1], frames


def physical(frames):
    """The leaf function as perf report names it: the first frame that is not inlined."""
    return next((f for f in frames if not f.endswith("(inlined)")), frames[0] if frames else "?")


def kind_of(frames):
    leaf = physical(frames)
    if any("asm_exc_page_fault" in f or "clear_page" in f for f in frames):
        return "kernel page faults/zeroing"
    if "rayon_core" in leaf or "sched_yield" in leaf:
        return "rayon idle/steal"
    for pat, k in KINDS:
        if re.search(pat, leaf):
            return k
    if leaf.startswith("[k]") or re.match(r"^(do_|__x64|entry_|syscall|finish_task|irq|"
                                          r"_raw_spin|schedule|asm_)", leaf):
        return "kernel other"
    return "other"


def place_of(frames):
    seen = [f for f in frames if "seqgrad::" in f]
    for f in seen:
        for pat, name in PLACES:
            if re.search(pat, f):
                if name in ("optimizer", "loss", "model (between layers)"):
                    return name
                back = any("backward" in g for g in seen)
                return f"{name} {'backward' if back else 'forward'}"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args(argv)

    rows = []
    started = None
    for tid, t, frames in samples(a.data):
        if started is None:
            if any("bench::measure" in f for f in frames) and any(
                    "forward" in f or "backward" in f for f in frames):
                started = t
            else:
                continue
        rows.append((tid, t, frames, kind_of(frames), place_of(frames)))
    if not rows:
        sys.exit("no samples inside the bench step loop")
    known = sorted((t, p) for _, t, _, _, p in rows if p)
    times = [t for t, _ in known]

    def nearest(t):
        i = bisect.bisect_left(times, t)
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(times) and abs(times[j] - t) <= 0.02:
                if best is None or abs(times[j] - t) < abs(times[best] - t):
                    best = j
        return known[best][1] if best is not None else "unattributed"

    n = len(rows)
    by_place, by_kind, cross, by_sym, by_inl, by_tid = (collections.Counter() for _ in range(6))
    for tid, t, frames, k, p in rows:
        p = p or nearest(t)
        by_place[p] += 1
        by_kind[k] += 1
        cross[(p, k)] += 1
        by_sym[physical(frames)] += 1
        by_inl[frames[0] if frames else "?"] += 1
        by_tid[tid] += 1

    def pct(c):
        return f"{100 * c / n:5.1f}%"

    print(f"{n} samples in the step loop ({a.data})\n")
    print("By place (layer and pass):")
    for p, c in by_place.most_common():
        print(f"  {pct(c)}  {p}")
    print("\nBy kind of work (leaf frame):")
    for k, c in by_kind.most_common():
        print(f"  {pct(c)}  {k}")
    kinds = [k for k, _ in by_kind.most_common()]
    print("\nPlace × kind (% of all samples; columns in the order above):")
    print("  " + " | ".join(["place"] + kinds))
    for p, _ in by_place.most_common():
        print("  " + " | ".join([p] + [f"{100 * cross[(p, k)] / n:.1f}" for k in kinds]))
    print(f"\nTop {a.top} self symbols (functions, as perf report shows them):")
    for s, c in by_sym.most_common(a.top):
        print(f"  {pct(c)}  {s[:110]}")
    print(f"\nTop {a.top} leaf frames, inlined ones included:")
    for s, c in by_inl.most_common(a.top):
        print(f"  {pct(c)}  {s[:110]}")
    print("\nBy thread:")
    for tid, c in by_tid.most_common():
        idle = sum(1 for r in rows if r[0] == tid and r[3] == "rayon idle/steal")
        print(f"  {pct(c)}  tid {tid} (of which rayon idle/steal {100 * idle / n:.1f}%)")


if __name__ == "__main__":
    main()
