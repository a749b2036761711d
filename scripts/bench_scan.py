#!/usr/bin/env python3
"""Python-client side of `cargo bench --bench scan --features polars`.

Does the same three reads as the Rust connector with the Python `hdfstream` client, into
numpy arrays and then a Polars DataFrame (when Python polars is installed), and prints one
JSON object of best-of-N wall times in seconds.

usage: bench_scan.py BASE_URL FILE GROUP CUT SEED REPEATS
"""
import json
import sys
import time

import numpy as np
import hdfstream

try:
    import polars as pl
except ImportError:  # numpy-only timings
    pl = None

COLS = ["Masses", "Densities", "ParticleIDs"]


def to_frame(cols):
    return pl.DataFrame(cols) if pl is not None else cols


def best(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    base, path, group, cut, seed, repeats = sys.argv[1:7]
    cut, seed, repeats = float(cut), int(seed), int(repeats)
    f = hdfstream.open(base, path, max_depth=0, data_size_limit=0)
    g = f[group]
    n = g[COLS[0]].shape[0]
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=10_000, replace=False))

    def full():
        return to_frame({c: g[c][...] for c in COLS})

    def random_rows():
        return to_frame({c: g[c][picks] for c in COLS})

    def selective():
        dens = g["Densities"][...]
        idx = np.nonzero(dens > cut)[0]
        cols = {"Densities": dens[idx]}
        for c in COLS:
            if c != "Densities":
                cols[c] = g[c][idx]
        return to_frame(cols)

    res = {"polars": pl is not None, "rows": int(n)}
    for name, fn in [("full", full), ("random", random_rows), ("selective", selective)]:
        t, out = best(fn, repeats)
        height = out.height if pl is not None else len(next(iter(out.values())))
        res[name] = {"seconds": t, "rows": int(height)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
