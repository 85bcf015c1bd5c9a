"""What the peer sides of `seqgrad bench` share: the workloads, peak RSS and the timing loop."""
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name -> (model file, batch size), as `seqgrad bench`'s w1 / w2 / w3.
WORKLOADS = {
    "w1": (os.path.join(HERE, "w1.json"), 50),
    "w2": (os.path.join(HERE, "w2.json"), 64),
    "w3": (os.path.join(ROOT, "models", "danq.json"), 100),
}


def peak_rss_mb():
    """VmHWM of this process in MiB (ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_steps(step, batch, seconds):
    """Warm-up (at least two steps and 10% of `seconds`), then steps for `seconds`: the JSON
    fields `steps`, `samples_per_sec`, `ms_per_step`, `warmup_s` and `peak_rss_mb`."""
    t0 = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - t0 < seconds / 10:
        step()
        n += 1
    warm = time.perf_counter() - t0
    steps = 0
    t0 = time.perf_counter()
    while steps < 1 or time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    secs = time.perf_counter() - t0
    return {"steps": steps, "samples_per_sec": round(steps * batch / secs, 2),
            "ms_per_step": round(1000 * secs / steps, 3), "warmup_s": round(warm, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1)}
