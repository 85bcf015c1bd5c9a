#!/usr/bin/env python3
"""Two or more seqgrad builds (or settings) against each other on one workload, alternating,
with medians: the before/after figures of docs/performance.md.

    python3 benches/peers/ab.py W MODE PASSES SECONDS NAME=BINARY[;VAR=VALUE...] ...

e.g. `python3 benches/peers/ab.py w3 train 3 5 before=/tmp/seqgrad-old after=target/release/seqgrad`
or, one binary with and without its AVX2 kernels:
`python3 benches/peers/ab.py w2 infer 4 4 "sse=target/release/seqgrad;SEQGRAD_NO_AVX2=1"
avx2=target/release/seqgrad`.

Every measurement is `BINARY bench --workload W --mode MODE --threads 2 --seconds SECONDS` in
its own process (RAYON_NUM_THREADS=2); the order of the sides rotates every pass. Prints each
run with the load average, then per side the median samples/s, its ratio to the first side,
the largest peak RSS and the runs.
"""
import json
import os
import statistics
import subprocess
import sys


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    w, mode, passes, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sides = []
    for arg in sys.argv[5:]:
        name, rest = arg.split("=", 1)
        binary, *settings = rest.split(";")
        env = dict(os.environ, RAYON_NUM_THREADS="2")
        for kv in settings:
            k, v = kv.split("=", 1)
            env[k] = v
        sides.append((name, binary, env))
    runs = {n: [] for n, _, _ in sides}
    rss = {n: [] for n, _, _ in sides}
    for p in range(passes):
        k = p % len(sides)
        for name, binary, env in sides[k:] + sides[:k]:
            out = subprocess.run([binary, "bench", "--workload", w, "--mode", mode, "--threads",
                                  "2", "--seconds", secs], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                sys.exit(f"{name}: {binary} failed: {out.stderr.strip()[-300:]}")
            d = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(d["samples_per_sec"])
            rss[name].append(d.get("peak_rss_mb") or 0.0)
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            print(f"pass {p + 1} {w} {mode} {name:10} {d['samples_per_sec']:10.1f} samples/s "
                  f"{rss[name][-1]:8.1f} MiB  load {load}", flush=True)
    first = statistics.median(runs[sides[0][0]])
    for name, _, _ in sides:
        m = statistics.median(runs[name])
        print(f"{w} {mode} {name:10} median {m:10.1f}  ×{m / first:.3f} vs {sides[0][0]}  "
              f"peak RSS {max(rss[name]):.0f} MiB  runs {[round(x, 1) for x in runs[name]]}")


if __name__ == "__main__":
    main()
