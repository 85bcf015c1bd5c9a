#!/usr/bin/env python3
"""seqgrad against its peers (PyTorch eager and torch.compile, Keras 3 on JAX) on issue 9's
workloads, measured alternately on this machine, with the machine's f32 GEMM ceiling.

    python benches/peers/run.py [--seqgrad target/release/seqgrad] [--threads 2] [--seconds 6]
        [--passes 3] [--workloads w1,w2,w3] [--modes train,infer]
        [--peers pytorch,pytorch-compile,keras-jax,keras-fit]
        [--torch-passive] [--scaling] [--out target/peers/table.md] [--json FILE]

(`benches/peers/run.sh` checks the venv, builds seqgrad and calls this.) Every measurement is
its own process with the same thread count, batch size and time budget, printing one JSON line
(`seqgrad bench`, `torch_bench.py`, `keras_bench.py`). For every pass, workload and mode all
sides run one after another, and the order rotates from pass to pass (so no side always runs
first or last). The peers: PyTorch eager and, for inference, `torch.compile` (`torch_bench.py`);
Keras 3 on JAX with the train step and predict as one `jax.jit` over `stateless_call`
(`keras_bench.py --style jit`) and through `compile(jit_compile=True)` + `train_on_batch` /
`predict_on_batch` (`--style fit`). The best peer of a row is the fastest of them. The table
shows medians over passes:
- samples/s of every side, the best peer, and seqgrad's ratio to the best peer (higher is
  better for seqgrad);
- peak resident memory (VmHWM) of the training runs;
- seqgrad's achieved GFLOP/s (`seqgrad bench`'s `gflops`) against the f32 GEMM ceiling measured
  in the same run: the better of numpy's 4096³ `matmul` and the `gemm` crate's 4096³
  (`examples/gemm_peak.rs`), each on `--threads` threads, median of 5 timed products, once per
  pass.
- the load average while it ran (the machine may be shared).

PyTorch runs at its defaults (its OpenMP threads spin-wait between parallel regions, as a user
gets it). `--torch-passive` adds one more column, PyTorch eager with OMP_WAIT_POLICY=PASSIVE,
which is *not* counted as a peer: it only helps on an oversubscribed machine, where spinning
threads compete with other processes, and on a quiet machine it roughly halves PyTorch. It is
there to show how much of a PyTorch figure taken on a busy machine is that contention.

`--scaling` adds seqgrad alone at 1 thread against `--threads` threads (alternating, medians).
The markdown table goes to stdout and to `--out`; `--json` writes every raw measurement, and
`--replot` makes the table again from such a file. Ctrl-C stops measuring and prints the table
of the passes so far.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

PASSIVE_REASON = ("The column \"PyTorch eager, PASSIVE\" (--torch-passive) sets "
                  "OMP_WAIT_POLICY=PASSIVE: PyTorch's OpenMP threads sleep instead of spin-waiting. "
                  "That helps only when other processes compete for the cores; it is not PyTorch's "
                  "default, on a quiet machine it roughly halves PyTorch, and it is not counted as "
                  "a peer (best peer and ratio ignore it). It shows how much of PyTorch's figure "
                  "on a busy machine is spin-waiting threads fighting other processes.")
PEER_NAMES = {"pytorch": "PyTorch eager", "pytorch-compile": "PyTorch torch.compile",
              "keras-jax": "Keras 3 / JAX, jitted step", "keras-fit": "Keras 3 / JAX, jit_compile",
              "pytorch-passive": "PyTorch eager, PASSIVE"}
# Issue 18's targets: seqgrad / best peer.
TARGETS = {"train": 1.5, "infer": 1.2}
# Spell out numpy's BLAS and use its best kernel: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on
# some machines for old OpenBLAS builds) slow a current one, so they are unset for this product.
NUMPY_GEMM = r"""
import json, statistics, sys, time
import numpy as np
n = int(sys.argv[1])
rng = np.random.default_rng(0)
a = rng.random((n, n), dtype=np.float32) - 0.5
b = rng.random((n, n), dtype=np.float32) - 0.5
a @ b
runs = []
for _ in range(5):
    t = time.perf_counter(); a @ b; runs.append(2 * n ** 3 / (time.perf_counter() - t) / 1e9)
try:
    from threadpoolctl import threadpool_info
    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"{i.get('num_threads')} threads" for i in threadpool_info()
                     if i.get("user_api") == "blas")
except ImportError:
    blas = "threadpoolctl not installed"
print(json.dumps({"gflops": round(statistics.median(runs), 1),
                  "gflops_runs": [round(r, 1) for r in runs], "blas": blas,
                  "numpy": np.__version__}))
"""


def run_json(cmd, env=None):
    """The command's last stdout line as JSON, or {"error": ...} when it failed."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {out.returncode}: {err[:300]}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"not JSON: {lines[-1][:300]}"}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def med(values):
    return statistics.median(values) if values else None


def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is None:
        digits = 1 if v < 1000 else 0
    return f"{v:,.{digits}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqgrad", default=os.path.join(ROOT, "target", "release", "seqgrad"))
    ap.add_argument("--gemm-peak", default=os.path.join(ROOT, "target", "release", "examples",
                                                        "gemm_peak"))
    ap.add_argument("--python", default=sys.executable,
                    help="python with torch, jax, keras and numpy for the peers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0,
                    help="weights and batch of every side (seqgrad, PyTorch, Keras)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--workloads", default="w1,w2,w3")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--peers", default="pytorch,pytorch-compile,keras-jax,keras-fit",
                    help="any of pytorch, pytorch-compile (inference only), keras-jax "
                         "(stateless_call under jax.jit), keras-fit (compile(jit_compile=True) "
                         "+ train_on_batch / predict_on_batch)")
    ap.add_argument("--torch-passive", action="store_true",
                    help="add PyTorch eager with OMP_WAIT_POLICY=PASSIVE as an extra column, not "
                         "counted as a peer (not PyTorch's default; see the table)")
    ap.add_argument("--scaling", action="store_true",
                    help="also seqgrad at 1 thread against --threads threads")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the GEMM ceiling products")
    ap.add_argument("--gemm-n", type=int, default=4096)
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "peers", "table.md"),
                    help="also write the markdown table here")
    ap.add_argument("--json", help="write every raw measurement to this file")
    ap.add_argument("--replot", metavar="RAW.json",
                    help="measure nothing: make the table from a --json file of an earlier run "
                         "(give the same --workloads/--modes/--peers/--threads)")
    a = ap.parse_args(argv)

    workloads = a.workloads.split(",")
    modes = a.modes.split(",")
    if a.seed < 0:
        ap.error(f"--seed must be 0 or more, got {a.seed}")
    peers = [p for p in a.peers.split(",") if p]
    for p in peers:
        if p not in PEER_NAMES or p == "pytorch-passive":
            ap.error(f"unknown peer {p!r} (pytorch, pytorch-compile, keras-jax, keras-fit)")
    shown = peers + (["pytorch-passive"] if a.torch_passive else [])
    t = str(a.threads)
    common = ["--threads", t, "--seconds", str(a.seconds), "--seed", str(a.seed)]
    env = dict(os.environ, OMP_NUM_THREADS=t, RAYON_NUM_THREADS=t, MKL_NUM_THREADS=t,
               OPENBLAS_NUM_THREADS=t)
    env.pop("OMP_WAIT_POLICY", None)
    torch_env = dict(env)
    passive_env = dict(env, OMP_WAIT_POLICY="PASSIVE")
    keras_env = dict(env, KERAS_BACKEND="jax")
    numpy_env = {k: v for k, v in env.items()
                 if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}

    def commands(w, m):
        sides = [("seqgrad", [a.seqgrad, "bench", "--workload", w, "--mode", m] + common, env)]
        base = ["--workload", w, "--mode", m] + common
        if "pytorch" in peers:
            sides.append(("pytorch", [a.python, os.path.join(HERE, "torch_bench.py")] + base,
                          torch_env))
        if "pytorch-compile" in peers and m == "infer":
            sides.append(("pytorch-compile",
                          [a.python, os.path.join(HERE, "torch_bench.py")] + base + ["--compile"],
                          torch_env))
        if a.torch_passive:
            sides.append(("pytorch-passive",
                          [a.python, os.path.join(HERE, "torch_bench.py")] + base, passive_env))
        for peer, style in (("keras-jax", "jit"), ("keras-fit", "fit")):
            if peer in peers:
                sides.append((peer, [a.python, os.path.join(HERE, "keras_bench.py")] + base
                              + ["--style", style], keras_env))
        return sides

    raw, ceilings, loads = [], [], []
    started = datetime.datetime.now(datetime.timezone.utc)

    def record(r, side, p, w, m, extra=None):
        r.update(side=side, threads_asked=int(extra or a.threads), workload=w, mode=m, **{"pass": p})
        raw.append(r)
        got = (f"{r['samples_per_sec']:>10.1f} samples/s  {r.get('peak_rss_mb') or 0:>7.1f} MiB"
               if "error" not in r else r["error"])
        print(f"pass {p + 1}/{a.passes} {w} {m:5} {side:16} {got}  (load {loads[-1]:.2f})",
              file=sys.stderr, flush=True)

    if a.replot:
        with open(a.replot) as f:
            saved = json.load(f)
        raw, ceilings, loads = saved["measurements"], saved["gemm_ceiling"], saved["loadavg"]
        for k, v in saved.get("settings", {}).items():
            setattr(a, k, v)
        started = datetime.datetime.fromisoformat(saved.get("started", started.isoformat()))
        report(a, peers, shown, workloads, modes, raw, ceilings, loads, started)
        return
    try:
        measure_passes(a, workloads, modes, commands, env, numpy_env, t, raw, ceilings, loads,
                       record)
    except KeyboardInterrupt:
        print("interrupted: the table below has the measurements made so far", file=sys.stderr)
    loads.append(loadavg())
    if a.json:
        with open(a.json, "w") as f:
            settings = {k: getattr(a, k) for k in ("threads", "seconds", "seed", "gemm_n",
                                                     "torch_passive")}
            json.dump({"started": started.isoformat(), "settings": settings, "measurements": raw,
                       "gemm_ceiling": ceilings, "loadavg": loads}, f, indent=1)
    report(a, peers, shown, workloads, modes, raw, ceilings, loads, started)


def measure_passes(a, workloads, modes, commands, env, numpy_env, t, raw, ceilings, loads,
                   record):
    """Every pass: the GEMM ceiling, then every workload and mode with all sides, rotated."""
    for p in range(a.passes):
        if not a.no_ceiling:
            loads.append(loadavg())
            nr = run_json([a.python, "-c", NUMPY_GEMM, str(a.gemm_n)], numpy_env)
            gr = run_json([a.gemm_peak, str(a.gemm_n), t], env)
            ceilings.append({"pass": p, "numpy": nr, "gemm": gr})
            print(f"pass {p + 1}/{a.passes} GEMM {a.gemm_n}³: numpy {nr.get('gflops', nr)} , "
                  f"gemm crate {gr.get('gflops', gr)} GFLOP/s", file=sys.stderr, flush=True)
        for w in workloads:
            for m in modes:
                sides = commands(w, m)
                k = p % len(sides)
                for side, cmd, side_env in sides[k:] + sides[:k]:
                    loads.append(loadavg())
                    record(run_json(cmd, side_env), side, p, w, m)
                if a.scaling:
                    order = [1, a.threads] if p % 2 == 0 else [a.threads, 1]
                    for th in order:
                        cmd = [a.seqgrad, "bench", "--workload", w, "--mode", m, "--threads",
                               str(th), "--seconds", str(a.seconds), "--seed", str(a.seed)]
                        loads.append(loadavg())
                        record(run_json(cmd, dict(env, RAYON_NUM_THREADS=str(th))),
                               f"seqgrad@{th}", p, w, m, th)


def report(a, peers, shown, workloads, modes, raw, ceilings, loads, started):
    """Prints the markdown tables (and writes them to `a.out`)."""

    def vals(side, w, m, key="samples_per_sec"):
        return [r[key] for r in raw if r["side"] == side and r["workload"] == w
                and r["mode"] == m and "error" not in r and r.get(key) is not None]

    def errors(side):
        return sorted({r["error"] for r in raw if r["side"] == side and "error" in r})

    out = []
    versions = sorted({r["versions"] for r in raw if "versions" in r})
    out.append(f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}, "
               f"{os.cpu_count()} cores; {a.threads} threads, {a.seconds:g} s per measurement, "
               f"median of {len({r['pass'] for r in raw})} passes (order rotated each pass), "
               f"seed {getattr(a, 'seed', 0)} for every side's weights and batch; "
               f"load average "
               f"{min(loads):.2f}–{max(loads):.2f} during the run. {', '.join(versions)}.")
    out.append("")
    out.append("PyTorch runs at its defaults (OMP_WAIT_POLICY unset: its OpenMP threads "
               "spin-wait between parallel regions)." + (" " + PASSIVE_REASON if a.torch_passive
                                                         else ""))
    out.append("")

    # GEMM ceiling
    ceiling = None
    if ceilings:
        npv = med([c["numpy"]["gflops"] for c in ceilings if "gflops" in c["numpy"]])
        gmv = med([c["gemm"]["gflops"] for c in ceilings if "gflops" in c["gemm"]])
        ceiling = max(v for v in (npv, gmv, 0.0) if v is not None) or None
        blas = next((c["numpy"].get("blas") for c in ceilings if "blas" in c["numpy"]), "?")
        out.append(f"f32 GEMM ceiling, {a.gemm_n}³ on {a.threads} threads (median over passes "
                   f"of each pass's median of 5): numpy {fmt(npv)} GFLOP/s ({blas}), "
                   f"gemm crate {fmt(gmv)} GFLOP/s → **ceiling {fmt(ceiling)} GFLOP/s**.")
        out.append("")

    head = ["workload", "seqgrad"] + [PEER_NAMES[p] for p in shown] + [
        "best peer", "seqgrad / best", "target", "seqgrad GFLOP/s", "% of GEMM ceiling"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for w in workloads:
        for m in modes:
            s = med(vals("seqgrad", w, m))
            cells = [f"{w.upper()} {m}", fmt(s)]
            best, best_name = None, None
            for p in shown:
                v = med(vals(p, w, m))
                cells.append(fmt(v))
                if p in peers and v is not None and (best is None or v > best):
                    best, best_name = v, PEER_NAMES[p]
            ratio = s / best if s and best else None
            g = med(vals("seqgrad", w, m, "gflops"))
            cells += [f"{best_name} {fmt(best)}" if best else "–",
                      f"{ratio:.2f}×" if ratio else "–",
                      f"≥ {TARGETS[m]}×" + ("" if ratio is None else
                                             (" met" if ratio >= TARGETS[m] else " **missed**")),
                      fmt(g), f"{100 * g / ceiling:.0f}%" if g and ceiling else "–"]
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Samples/s, higher is better. Per pass (samples/s, in pass order):")
    out.append("")
    for w in workloads:
        for m in modes:
            parts = []
            for side in ["seqgrad"] + shown:
                v = vals(side, w, m)
                if v:
                    parts.append(f"{side} " + " / ".join(fmt(x) for x in v))
            out.append(f"- {w.upper()} {m}: " + "; ".join(parts))
    out.append("")

    if "train" in modes:
        head = ["peak RSS, training (MiB)", "seqgrad"] + [PEER_NAMES[p] for p in shown
                                                           if p != "pytorch-compile"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for w in workloads:
            cells = [w.upper()] + [fmt(med(vals(side, w, "train", "peak_rss_mb")), 0)
                                   for side in ["seqgrad"] + shown if side != "pytorch-compile"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        out.append("Peak RSS is VmHWM of each process: the Python peers' include the interpreter, "
                   "the framework's import and (JAX) XLA compilation. Issue 18's target: W3 "
                   "training ≤ 1,229 MiB (1.2 GiB).")
        out.append("")

    if a.scaling:
        out.append(f"| seqgrad 1 → {a.threads} threads | 1 thread | {a.threads} threads | × |")
        out.append("|---|---|---|---|")
        for w in workloads:
            for m in modes:
                one, many = med(vals("seqgrad@1", w, m)), med(vals(f"seqgrad@{a.threads}", w, m))
                out.append(f"| {w.upper()} {m} | {fmt(one)} | {fmt(many)} | "
                           + (f"{many / one:.2f}× |" if one and many else "– |"))
        out.append("")

    for side in ["seqgrad"] + shown:
        for e in errors(side):
            out.append(f"- {side} failed: {e}")
    text = "\n".join(out).rstrip() + "\n"
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
        print(f"(table written to {a.out})", file=sys.stderr)


if __name__ == "__main__":
    main()
