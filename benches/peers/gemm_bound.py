#!/usr/bin/env python3
"""How fast could a workload run if it did nothing but its matrix products?

Logs the products of one `seqgrad bench` step (`SEQGRAD_LOG_GEMM=1`), then times each distinct
product, at its shape, operand layout, β and count per step, with

- the `gemm` crate as seqgrad calls it (`examples/gemm_shapes.rs`): alone on the pool, and, for
  products with an even count per step, also as two halves side by side with their own operands
  (which is how a bidirectional layer's two directions run them; for W1–W3 every even count
  comes from the two directions);
- numpy on OpenBLAS (the peers' kind of BLAS) on `--threads` threads. numpy has no β, so it
  always overwrites `C`: for the accumulating products it does a little less work than seqgrad.

The sum over products is an estimate of the fastest a step could run with these libraries if
it did nothing else: the products are timed warm (the operands stay in cache between repeats,
medians of 5), which a model's products are not. Each pass also measures seqgrad's own step
and the f32 GEMM ceiling, so the ratios within a pass are from one time; the script prints
medians over passes. Prints a markdown table per mode.

    PEERS_VENV=/work/venv benches/peers/gemm_bound.sh w3 [--passes 3] [--peer-infer X] [--peer-train Y]

(`gemm_bound.sh` builds the binaries; this script needs numpy.)
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import NUMPY_GEMM, run_json  # noqa: E402  (the peer table's ceiling, measured the same way)

np = None  # numpy, imported in main() once OPENBLAS_NUM_THREADS is set


def logged_products(seqgrad, workload, mode, threads):
    """The products of the last step of a short bench run, as
    {(m, k, n, a_t, b_t, accumulate): count}."""
    env = dict(os.environ, SEQGRAD_LOG_GEMM="1")
    cmd = [seqgrad, "bench", "--workload", workload, "--mode", mode,
           "--threads", str(threads), "--seconds", "0.001"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    lines = out.stderr.splitlines()
    marks = [i for i, l in enumerate(lines) if l == "GEMM-NOTE step"]
    if not marks:
        sys.exit(f"{seqgrad} logged no products: is it a build with SEQGRAD_LOG_GEMM "
                 f"(rebuild with benches/peers/gemm_bound.sh)?")
    last = marks[-1]
    counts = collections.Counter()
    for l in lines[last + 1:]:
        if not l.startswith("GEMM "):
            continue
        f = l.split()
        m, k, n = int(f[1]), int(f[2]), int(f[3])
        a_t, b_t, acc = f[4] == "a_t=true", f[5] == "b_t=true", f[6] == "accumulate=true"
        counts[(m, k, n, a_t, b_t, acc)] += 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return counts, result


def crate_times(gemm_shapes, threads, counts):
    def spec(key, reps):
        m, k, n, a_t, b_t, acc = key
        return f"{m},{k},{n},{int(a_t)},{int(b_t)},{int(acc)},{reps}"

    specs = []
    for key, c in counts.items():
        specs.append(spec(key, c))
        if c % 2 == 0:
            specs.append(spec(key, c // 2))
    out = subprocess.run([gemm_shapes, str(threads)] + specs, capture_output=True,
                         text=True, check=True)
    rows = {json.loads(l)["spec"]: json.loads(l) for l in out.stdout.splitlines()}
    times = {}
    for key, c in counts.items():
        alone = rows[spec(key, c)]["alone_s"]
        pair = rows[spec(key, c // 2)]["pair_s"] if c % 2 == 0 else float("inf")
        times[key] = (alone, pair)
    return times


def numpy_time(key, count, runs=5):
    m, k, n, a_t, b_t, _ = key
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32) - 0.5
    b = rng.random((k, n), dtype=np.float32) - 0.5
    a = np.asfortranarray(a) if a_t else a
    b = np.asfortranarray(b) if b_t else b
    c = np.empty((m, n), np.float32)
    np.matmul(a, b, out=c)
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        for _ in range(count):
            np.matmul(a, b, out=c)  # β = 0: a little less work than seqgrad's accumulating calls
        t.append(time.perf_counter() - s)
    return statistics.median(t)


def seqgrad_rate(seqgrad, workload, mode, threads, seconds):
    cmd = [seqgrad, "bench", "--workload", workload, "--mode", mode,
           "--threads", str(threads), "--seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_sec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", help="w1, w2, w3 or a model file")
    ap.add_argument("--seqgrad", default="target/release/seqgrad")
    ap.add_argument("--gemm-shapes", default="target/release/examples/gemm_shapes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="infer,train")
    ap.add_argument("--passes", type=int, default=3,
                    help="passes over (seqgrad, the products); medians are reported")
    ap.add_argument("--seconds", type=float, default=6,
                    help="seconds of timed seqgrad steps per pass")
    ap.add_argument("--peer-infer", type=float, help="best peer's inference samples/s")
    ap.add_argument("--peer-train", type=float, help="best peer's training samples/s")
    ap.add_argument("--gemm-peak", default="target/release/examples/gemm_peak")
    ap.add_argument("--gemm-n", type=int, default=4096, help="size of the ceiling's product")
    args = ap.parse_args()
    # As run.py runs numpy: on --threads threads, without this machine's OpenBLAS overrides.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    global np
    import numpy
    np = numpy

    for mode in args.modes.split(","):
        counts, res = logged_products(args.seqgrad, args.workload, mode, args.threads)
        batch = res["batch_size"]
        step_flops = res["gflops"] * 1e9 / res["samples_per_sec"] * batch
        logged_flops = sum(2 * m * k * n * c for (m, k, n, *_), c in counts.items())
        keys = sorted(counts, key=lambda q: -q[0] * q[1] * q[2] * counts[q])
        # per pass: seqgrad's rate, then every product with both libraries
        rates, per, ceil = [], collections.defaultdict(list), []
        for p in range(args.passes):
            # the ceiling as the peer table measures it: the better of numpy's and the crate's
            nr = run_json([sys.executable, "-c", NUMPY_GEMM, str(args.gemm_n)])
            gr = run_json([args.gemm_peak, str(args.gemm_n), str(args.threads)])
            ceil.append(max(nr.get("gflops", 0), gr.get("gflops", 0)))
            rates.append(seqgrad_rate(args.seqgrad, args.workload, mode, args.threads,
                                      args.seconds))
            crate = crate_times(args.gemm_shapes, args.threads, counts)
            for key in keys:
                alone, pair = crate[key]
                per[key].append((alone, pair, numpy_time(key, counts[key])))
            print(f"pass {p + 1} {mode}: seqgrad {rates[-1]:.1f} samples/s, ceiling {ceil[-1]}",
                  file=sys.stderr)
        med = lambda xs: statistics.median(xs)
        ceiling = med(ceil)
        print(f"\n## {args.workload} {mode}: the products of one step (batch {batch}, "
              f"{args.threads} threads; medians of {args.passes} passes)\n")
        print(f"logged products: {logged_flops / 1e9:.2f} GFLOP a step; "
              f"`seqgrad bench` counts {step_flops / 1e9:.2f}. f32 GEMM ceiling ({args.gemm_n}³, "
              f"the better of numpy and the crate): {ceiling:.1f} GFLOP/s (passes "
              f"{', '.join(f'{c:.1f}' for c in ceil)})\n")
        print("GFLOP/s of each kind of product at its count per step (medians over passes; the "
              "totals below are medians of each pass's sum):\n")
        print("| m × k × n (A, B stored; β) | per step | GFLOP | gemm crate alone | "
              "two at once | numpy/OpenBLAS |")
        print("|---|---|---|---|---|---|")
        for key in keys:
            m, k, n, a_t, b_t, acc = key
            c = counts[key]
            fl = 2 * m * k * n * c
            rate = lambda s: f"{fl / s / 1e9:.0f}" if s != float("inf") else "–"
            lay = ("Aᵀ" if a_t else "A") + ", " + ("Bᵀ" if b_t else "B") + ("; β=1" if acc
                                                                          else "; β=0")
            cols = [rate(med([t[i] for t in per[key]])) for i in range(3)]
            print(f"| {m} × {k} × {n} ({lay}) | {c} | {fl / 1e9:.2f} | " + " | ".join(cols)
                  + " |")
        totals = {
            "gemm crate": [sum(min(per[q][p][0], per[q][p][1]) for q in keys)
                           for p in range(args.passes)],
            "numpy": [sum(per[q][p][2] for q in keys) for p in range(args.passes)],
            "faster of the two": [sum(min(per[q][p]) for q in keys)
                                  for p in range(args.passes)],
        }
        peer = args.peer_infer if mode == "infer" else args.peer_train
        print()
        for what, ts in totals.items():
            s = med(ts)
            share = med([t / (batch / r) for t, r in zip(ts, rates)])
            line = (f"- products only, {what}: {s * 1000:.1f} ms a step, {share:.0%} of "
                    f"seqgrad's step in the same pass → about {batch / s:.1f} samples/s, "
                    f"{step_flops / s / 1e9:.1f} GFLOP/s")
            line += f" ({step_flops / s / 1e9 / ceiling:.0%} of the ceiling)"
            if peer:
                line += f"; {batch / s / peer:.2f}× the best peer's {peer:g}"
            print(line)
        r = med(rates)
        line = (f"- seqgrad itself: {r:.1f} samples/s, {r * step_flops / batch / 1e9:.1f} "
                f"GFLOP/s = {r * step_flops / batch / 1e9 / ceiling:.0%} of the ceiling "
                f"({batch / r * 1000:.1f} ms a step; passes "
                f"{', '.join(f'{x:.1f}' for x in rates)})")
        if peer:
            line += f"; {r / peer:.2f}× the best peer"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
