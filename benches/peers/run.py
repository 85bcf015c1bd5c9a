#!/usr/bin/env python3
"""seqgrad vs PyTorch (eager) on issue 9's workloads, measured alternately on this machine.

    python benches/peers/run.py [--seqgrad target/release/seqgrad] [--threads 2]
        [--seconds 8] [--passes 3] [--workloads w1,w2,w3] [--modes train,infer]

(`benches/peers/run.sh` makes the venv, builds seqgrad and calls this.) For every pass, workload
and mode it runs `seqgrad bench` and `torch_bench.py` one after the other, each in its own
process with the same thread count, batch size and time budget, alternating which goes first;
then prints the medians over passes and the seqgrad/PyTorch ratios: training samples/s,
inference samples/s (higher is better for seqgrad) and peak resident memory of the training
run (lower is better for seqgrad). `--json FILE` also writes every raw measurement.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqgrad", default=os.path.join(ROOT, "target", "release", "seqgrad"))
    ap.add_argument("--python", default=sys.executable, help="python with torch for the peer side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--workloads", default="w1,w2,w3")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--json", help="write every raw measurement to this file")
    ap.add_argument("--omp-active", action="store_true",
                    help="leave PyTorch's OpenMP threads spin-waiting (its default); by default "
                         "OMP_WAIT_POLICY=PASSIVE, without which PyTorch on 2 threads ran 20x "
                         "slower on this shared, oversubscribed machine")
    a = ap.parse_args(argv)

    workloads = a.workloads.split(",")
    modes = a.modes.split(",")
    common = ["--threads", str(a.threads), "--seconds", str(a.seconds)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), RAYON_NUM_THREADS=str(a.threads))
    if not a.omp_active:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    raw = []
    for p in range(a.passes):
        for w in workloads:
            for m in modes:
                sides = [
                    ("seqgrad", [a.seqgrad, "bench", "--workload", w, "--mode", m] + common),
                    ("pytorch", [a.python, os.path.join(HERE, "torch_bench.py"), "--workload", w,
                                 "--mode", m] + common),
                ]
                if p % 2 == 1:
                    sides.reverse()
                for side, cmd in sides:
                    r = run_json(cmd, env)
                    r["side"], r["pass"] = side, p
                    raw.append(r)
                    print(f"pass {p + 1}/{a.passes} {w} {m:5} {side:7} "
                          f"{r['samples_per_sec']:>10.1f} samples/s  {r['peak_rss_mb']:>7.1f} MB",
                          file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)

    def med(side, w, m, key):
        v = [r[key] for r in raw if r["side"] == side and r["workload"] == w and r["mode"] == m]
        return statistics.median(v) if v else float("nan")

    print(f"threads {a.threads}, {a.seconds:g} s per measurement, median of {a.passes} passes, "
          f"OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY', 'default')}")
    head = ("| workload | seqgrad train | PyTorch train | ratio | seqgrad infer | PyTorch infer "
            "| ratio | seqgrad RSS MB | PyTorch RSS MB | ratio |")
    print(head)
    print("|" + "---|" * 10)
    for w in workloads:
        cells = [w]
        for m in ("train", "infer"):
            if m in modes:
                s, t = med("seqgrad", w, m, "samples_per_sec"), med("pytorch", w, m, "samples_per_sec")
                cells += [f"{s:,.1f}", f"{t:,.1f}", f"{s / t:.2f}"]
            else:
                cells += ["-", "-", "-"]
        m = "train" if "train" in modes else modes[0]
        s, t = med("seqgrad", w, m, "peak_rss_mb"), med("pytorch", w, m, "peak_rss_mb")
        cells += [f"{s:,.0f}", f"{t:,.0f}", f"{s / t:.2f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
