#!/usr/bin/env python3
"""Medians over several runs of the peer script (other seeds, other times), from their raw files.

    python3 benches/peers/combine.py RAW.json [RAW.json ...]

Each RAW.json is what `benches/peers/run.sh ... --json RAW.json` wrote (one seed each, with
`--seed`). For every workload and mode, prints seqgrad's median over all (run, pass)
measurements, each peer's, the best peer's, their ratio against issue 18's target, and the
ratio run by run (seqgrad against the best peer of the same pass), as a markdown table.
"""

import json
import statistics
import sys

PEERS = ["pytorch", "pytorch-compile", "keras-jax", "keras-fit"]
TARGET = {"train": 1.5, "infer": 1.2}


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    runs = []
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        runs.append((p, d["settings"].get("seed", 0), d["measurements"]))
        same = {k: d["settings"].get(k) for k in ("threads", "seconds")}
        if p == paths[0]:
            first = same
        elif same != first:
            print(f"warning: {p} was run with {same}, {paths[0]} with {first}",
                  file=sys.stderr)
    seeds = ", ".join(str(s) for _, s, _ in runs)
    print(f"Runs: {len(runs)} ({', '.join(p for p, _, _ in runs)}); seeds {seeds}.\n")
    print("| workload | seqgrad | best peer | seqgrad / best | target | "
          "per pass: min / median / max | passes that meet it |")
    print("|---|---|---|---|---|---|---|")
    for w in ("w1", "w2", "w3"):
        for m in ("train", "infer"):
            side = {}
            ratios = []
            for _, _, ms in runs:
                # (the --scaling rows are sides "seqgrad@1", "seqgrad@N": not counted)
                ok = [r for r in ms if r["workload"] == w and r["mode"] == m
                      and "error" not in r]
                for r in ok:
                    if r["side"] == "seqgrad" or r["side"] in PEERS:
                        side.setdefault(r["side"], []).append(r["samples_per_sec"])
                for p in sorted({r["pass"] for r in ok}):
                    s = [r["samples_per_sec"] for r in ok if r["pass"] == p
                         and r["side"] == "seqgrad"]
                    b = [r["samples_per_sec"] for r in ok if r["pass"] == p
                         and r["side"] in PEERS]
                    if s and b:
                        ratios.append(s[0] / max(b))
            if "seqgrad" not in side or len(side) == 1 or not ratios:
                print(f"| {w.upper()} {m} | no measurements of seqgrad and a peer | | | | | |")
                continue
            med = {k: statistics.median(v) for k, v in side.items()}
            peers = {k: v for k, v in med.items() if k != "seqgrad"}
            best = max(peers, key=peers.get)
            r = med["seqgrad"] / peers[best]
            t = TARGET[m]
            print(f"| {w.upper()} {m} | {med['seqgrad']:,.1f} ({len(side['seqgrad'])}) | "
                  f"{best} {peers[best]:,.1f} | {r:.2f}× | ≥ {t}× "
                  f"{'met' if r >= t else '**missed**'} | {min(ratios):.2f} / "
                  f"{statistics.median(ratios):.2f} / {max(ratios):.2f} | "
                  f"{sum(x >= t for x in ratios)} of {len(ratios)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
