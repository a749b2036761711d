#!/usr/bin/env python3
"""Benchmark of the Python package: the polars-hdfstream IO source against the Python
`hdfstream` client + numpy, and against h5py reading the same file locally.

usage: scripts/bench_python.py [--particles N] [--repeats R] [--no-build] [--keep DIR]

One run writes a SWIFT-like sample (`hdfstream sample`, one file: gzip-chunked Densities,
chunked Masses, contiguous ParticleIDs), serves it with the release `hdfstream serve` on
loopback, and times three queries over PartType0, each ending in a `polars.DataFrame` of the
same columns (Masses, Densities, ParticleIDs):

  full       every row;
  filter     the rows with Densities above its 99th percentile (1% of the rows);
  region     the rows of the SWIFT cells a box touches (swiftsimio's rule, as the scan's
             `region=` applies it), a box of a fifth of the box size on each axis.

Contenders: `source` = `polars_hdfstream.scan_hdfstream(...)...collect()`; `client` = the
Python hdfstream client (`hdfstream.open`, one request per dataset; the filter reads
Densities and then the selected rows of the others with one multi-slice request each; the
region reads the Cells/ metadata and then one multi-slice request per dataset), numpy, then
`pl.DataFrame`; `h5py` = h5py on the local file, the same steps. Every contender's answer is
checked against h5py's before timing. It prints the median of R runs of each (interleaved),
and the ratios client/source and source/h5py. The issue's targets: client/source >= 2 on
every query, and source/h5py <= 1.5 on the full read.

Without --no-build it first builds what it measures in release: `cargo build --release -p
hdfstream-cli --no-default-features` and `maturin develop --release -m python/Cargo.toml`
into the running venv (scripts/test.sh puts the dev build back).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
COLS = ["Masses", "Densities", "ParticleIDs"]
GROUP = "PartType0"


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "hdfstream-target"))


def build() -> None:
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir()))
    subprocess.run(
        ["cargo", "build", "--release", "-p", "hdfstream-cli", "--no-default-features"],
        cwd=REPO, env=env, check=True,
    )
    venv = Path(sys.prefix)
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{env['PATH']}")
    subprocess.run(
        [str(venv / "bin" / "maturin"), "develop", "--release", "-q", "-m", "python/Cargo.toml"],
        cwd=REPO, env=env, check=True,
    )


def cell_ranges(centres, size, minpos, maxpos, offsets, counts, box, boxsize) -> list[tuple[int, int]]:
    """The merged row ranges of the cells whose extent overlaps `box` (swiftsimio 12.4's
    rule: the nominal cell widened to its particles' bounds, strict overlap, periodic copies)."""
    empty = minpos[:, 0] > maxpos[:, 0]
    lo = np.where(empty[:, None], centres - size / 2, np.minimum(centres - size / 2, minpos))
    hi = np.where(empty[:, None], centres + size / 2, np.maximum(centres + size / 2, maxpos))
    keep = np.ones(len(centres), dtype=bool)
    for axis, (b0, b1) in enumerate(box):
        along = np.zeros(len(centres), dtype=bool)
        for shift in (-1, 0, 1):
            s = shift * boxsize[axis]
            along |= (hi[:, axis] + s > b0) & (lo[:, axis] + s < b1)
        keep &= along
    cells = sorted((int(offsets[i]), int(offsets[i] + counts[i])) for i in np.nonzero(keep)[0] if counts[i])
    merged: list[tuple[int, int]] = []
    for a, b in cells:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def cells_of(f, box) -> list[tuple[int, int]]:
    """Reads the Cells/ metadata through `f` (an h5py or hdfstream file) and applies the rule."""
    size = np.asarray(f["Cells/Meta-data"].attrs["size"], dtype=np.float64)
    boxsize = np.asarray(f["Header"].attrs["BoxSize"], dtype=np.float64)
    return cell_ranges(
        np.asarray(f["Cells/Centres"][...]),
        size,
        np.asarray(f[f"Cells/MinPositions/{GROUP}"][...]),
        np.asarray(f[f"Cells/MaxPositions/{GROUP}"][...]),
        np.asarray(f[f"Cells/OffsetsInFile/{GROUP}"][...]),
        np.asarray(f[f"Cells/Counts/{GROUP}"][...]),
        box,
        boxsize,
    )


def index_runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted row indices -> the [start, stop) runs of consecutive rows."""
    if len(idx) == 0:
        return []
    breaks = np.nonzero(np.diff(idx) != 1)[0]
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    stops = np.concatenate((idx[breaks] + 1, [idx[-1] + 1]))
    return list(zip(starts.tolist(), stops.tolist()))


class Source:
    name = "source"

    def __init__(self, url: str, box):
        import polars_hdfstream as ph

        self.ph, self.url, self.box = ph, url, box

    def full(self) -> pl.DataFrame:
        return self.ph.scan_hdfstream(self.url, GROUP, row_index=None).select(COLS).collect()

    def filter(self, cut: float) -> pl.DataFrame:
        lf = self.ph.scan_hdfstream(self.url, GROUP, row_index=None)
        return lf.filter(pl.col("Densities") > cut).select(COLS).collect()

    def region(self) -> pl.DataFrame:
        lf = self.ph.scan_hdfstream(self.url, GROUP, row_index=None, region=self.box)
        return lf.select(COLS).collect()


class Client:
    name = "client"

    def __init__(self, base: str, path: str, box):
        import hdfstream

        self.open = lambda: hdfstream.open(base, path, max_depth=0, data_size_limit=0)
        self.box = box

    def full(self) -> pl.DataFrame:
        g = self.open()[GROUP]
        return pl.DataFrame({c: g[c][...] for c in COLS})

    def filter(self, cut: float) -> pl.DataFrame:
        g = self.open()[GROUP]
        dens = g["Densities"][...]
        idx = np.nonzero(dens > cut)[0]
        sl = [np.s_[a:b] for a, b in index_runs(idx)]
        cols = {c: (dens[idx] if c == "Densities" else g[c].request_slices(sl)) for c in COLS}
        return pl.DataFrame(cols)

    def region(self) -> pl.DataFrame:
        f = self.open()
        sl = [np.s_[a:b] for a, b in cells_of(f, self.box)]
        g = f[GROUP]
        return pl.DataFrame({c: g[c].request_slices(sl) for c in COLS})


class H5py:
    name = "h5py"

    def __init__(self, path: Path, box):
        self.path, self.box = path, box

    def full(self) -> pl.DataFrame:
        with h5py.File(self.path, "r") as f:
            return pl.DataFrame({c: f[GROUP][c][...] for c in COLS})

    def filter(self, cut: float) -> pl.DataFrame:
        with h5py.File(self.path, "r") as f:
            dens = f[GROUP]["Densities"][...]
            mask = dens > cut
            # Whole columns, then the mask: faster in h5py than point selections of 1%.
            return pl.DataFrame({c: (dens if c == "Densities" else f[GROUP][c][...])[mask] for c in COLS})

    def region(self) -> pl.DataFrame:
        with h5py.File(self.path, "r") as f:
            ranges = cells_of(f, self.box)
            g = f[GROUP]
            return pl.DataFrame({c: np.concatenate([g[c][a:b] for a, b in ranges]) for c in COLS})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", type=Path, help="write the sample here and keep it (reused when present)")
    args = ap.parse_args()
    if not args.no_build:
        build()
    cli = Path(os.environ.get("HDFSTREAM_CLI", target_dir() / "release" / "hdfstream"))
    tmp = None
    if args.keep is not None:
        data = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_python")
        data = Path(tmp.name)
    snap = data / "snap_0000.hdf5"
    if not snap.exists():
        subprocess.run(
            [str(cli), "sample", str(data), "--particles", str(args.particles), "--seed", "11"],
            check=True, capture_output=True,
        )
    server = subprocess.Popen(
        [str(cli), "serve", str(data), "--bind", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        if not base.startswith("http"):
            sys.exit(f"hdfstream serve did not start: {base!r}")
        with h5py.File(snap, "r") as f:
            rows = f[GROUP]["Masses"].shape[0]
            cut = float(np.percentile(f[GROUP]["Densities"][...], 99.0))
            boxsize = np.asarray(f["Header"].attrs["BoxSize"], dtype=np.float64)
        box = [(0.4 * L, 0.6 * L) for L in boxsize.tolist()]
        contenders = [Source(f"{base}/msgpack/{snap.name}", box), Client(base, snap.name, box), H5py(snap, box)]
        queries = {"full": (), "filter": (cut,), "region": ()}
        # Every answer must equal h5py's before anything is timed.
        for q, a in queries.items():
            want = getattr(contenders[2], q)(*a)
            for c in contenders[:2]:
                got = getattr(c, q)(*a)
                if not got.equals(want):
                    sys.exit(f"{c.name} {q}: answer differs from h5py's ({got.shape} vs {want.shape})")
            queries[q] = (a, want.height)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for q, (a, _) in queries.items():
                for c in contenders:
                    t = time.perf_counter()
                    getattr(c, q)(*a)
                    times.setdefault((q, c.name), []).append(time.perf_counter() - t)
        print(f"PartType0 of {rows:,} rows, columns {', '.join(COLS)}; median of {args.repeats} runs")
        print(f"{'query':8} {'rows':>10} {'source':>9} {'client':>9} {'h5py':>9} {'client/source':>14} {'source/h5py':>12}")
        report = {}
        for q, (_, n) in queries.items():
            m = {c.name: statistics.median(times[(q, c.name)]) for c in contenders}
            report[q] = {"rows": n, **m}
            print(
                f"{q:8} {n:>10,} {m['source']:>8.3f}s {m['client']:>8.3f}s {m['h5py']:>8.3f}s "
                f"{m['client'] / m['source']:>14.2f} {m['source'] / m['h5py']:>12.2f}"
            )
        print(json.dumps(report))
    finally:
        server.terminate()
        server.wait()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
