"""`sink_parquet` through Polars' streaming engine holds a bounded amount of memory.

Two files of 2.5 million and 10 million rows x 5 columns (52 bytes a row: 130 MB and 520 MB)
are written with h5py and served. Each is sunk to Parquet in a fresh Python process, which
reports its peak RSS during the sink (the smaller of two runs). With 4x the rows, the peak may grow at most 1.3x; a scan that held the
table, or a growing part of it, would at least double it. The Parquet files are read back and
checked against the values written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest

from conftest import Server

SMALL = 2_500_000
LARGE = 10_000_000
CHUNK = 1_000_000

SINK = """
import json, sys
import polars as pl
import polars_hdfstream as ph

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(key)

url, out = sys.argv[1], sys.argv[2]
lf = ph.scan_hdfstream(url, "PartType0", row_index=None)
before = status("VmRSS")
# Resets the peak (VmHWM) to the current RSS, so that the peak below is the sink's alone and
# not the imports' (Linux >= 4.0).
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
lf.sink_parquet(out)
print(json.dumps({"before_kib": before, "peak_kib": status("VmHWM")}))
"""

def _write(path: Path, rows: int, seed: int) -> dict[str, object]:
    """Writes the group and returns what the Parquet file must hold."""
    rng = np.random.default_rng(seed)
    want: dict[str, object] = {"rows": rows, "ids_sum": 0, "mass_max": -np.inf, "coord_min": np.inf}
    with h5py.File(path, "w") as f:
        g = f.create_group("PartType0")
        coords = g.create_dataset("Coordinates", (rows, 3), dtype="f8")
        vels = g.create_dataset("Velocities", (rows, 3), dtype="f4")
        ids = g.create_dataset("ParticleIDs", (rows,), dtype="u8")
        masses = g.create_dataset("Masses", (rows,), dtype="f4")
        temps = g.create_dataset("Temperatures", (rows,), dtype="f4")
        for a in range(0, rows, CHUNK):
            b = min(a + CHUNK, rows)
            c = rng.random((b - a, 3)) * 100.0
            coords[a:b] = c
            vels[a:b] = rng.standard_normal((b - a, 3), dtype=np.float32)
            i = rng.permutation(np.arange(a, b, dtype=np.uint64)) * np.uint64(7919)
            ids[a:b] = i
            m = rng.random(b - a, dtype=np.float32)
            masses[a:b] = m
            temps[a:b] = rng.random(b - a, dtype=np.float32) * 1e6
            want["ids_sum"] = int(want["ids_sum"]) + int(i.sum(dtype=np.uint64))
            want["mass_max"] = max(float(want["mass_max"]), float(m.max()))
            want["coord_min"] = min(float(want["coord_min"]), float(c.min()))
            if a == 0:
                want["first_coord"] = c[0].tolist()
                want["first_vel"] = vels[0].tolist()
        want["last_id"] = int(ids[rows - 1])
        want["last_temp"] = float(temps[rows - 1])
    return want


def _sink(url: str, out: Path) -> dict[str, int]:
    r = subprocess.run(
        [sys.executable, "-c", SINK, url, str(out)], check=True, capture_output=True, text=True, timeout=900
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check(out: Path, want: dict[str, object]) -> None:
    got = (
        pl.scan_parquet(out)
        .select(
            pl.len().alias("rows"),
            pl.col("ParticleIDs").sum().alias("ids_sum"),
            pl.col("Masses").max().alias("mass_max"),
            pl.col("Coordinates").arr.min().min().alias("coord_min"),
            pl.col("ParticleIDs").last().alias("last_id"),
            pl.col("Temperatures").last().alias("last_temp"),
            pl.col("Coordinates").first().alias("first_coord"),
            pl.col("Velocities").first().alias("first_vel"),
        )
        .collect()
        .row(0, named=True)
    )
    assert got["rows"] == want["rows"]
    assert got["ids_sum"] == want["ids_sum"]
    assert got["mass_max"] == want["mass_max"]
    assert got["coord_min"] == want["coord_min"]
    assert got["last_id"] == want["last_id"]
    assert got["last_temp"] == want["last_temp"]
    assert list(got["first_coord"]) == want["first_coord"]
    assert list(got["first_vel"]) == want["first_vel"]


def test_sink_parquet_peak_rss_grows_at_most_1_3x_for_4x_rows(cli: Path, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    small = _write(data / "small.hdf5", SMALL, 1)
    large = _write(data / "large.hdf5", LARGE, 2)
    server = Server(cli, data, [])
    try:
        rss = {}
        for name, want in (("small", small), ("large", large)):
            out = tmp_path / f"{name}.parquet"
            # The smaller peak of two runs: a single peak varies by tens of MiB from run to
            # run (allocator and thread timing), which is noise, not growth.
            runs = []
            for _ in range(2):
                runs.append(_sink(server.url(f"{name}.hdf5"), out))
                _check(out, want)
                out.unlink()
            rss[name] = min(runs, key=lambda r: r["peak_kib"])
    finally:
        server.stop()
    ratio = rss["large"]["peak_kib"] / rss["small"]["peak_kib"]
    print(
        f"sink_parquet peak RSS: {SMALL} rows {rss['small']['peak_kib'] / 1024:.0f} MiB, "
        f"{LARGE} rows {rss['large']['peak_kib'] / 1024:.0f} MiB (ratio {ratio:.2f}; "
        f"before the sink {rss['small']['before_kib'] / 1024:.0f} and "
        f"{rss['large']['before_kib'] / 1024:.0f} MiB; data {LARGE * 52 / 2**20:.0f} MiB)"
    )
    assert ratio <= 1.3, rss
