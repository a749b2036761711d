#!/usr/bin/env python3
"""The client side of scripts/bench_wan.sh: runs each operation with our Rust client (the
release CLI, `wan_scan` and `wan_lookups`) and with the Python `hdfstream` client,
interleaved, and prints one table for the profile.

The 16-file scan runs two ways on our side: "Rust" is the CLI's `export` of the three columns
to a Parquet file, "Rust scan" reads them into memory through the Arrow table core
(`wan_scan`), as the Python client reads them into numpy arrays. Before the timed runs the
column sums of `wan_scan` are checked against the Python client's arrays. The environment
variable WAN_SCAN_ARGS adds flags to `wan_scan` (e.g. "--concurrency 8 --batch-size 1048576").

The 78-file lookups run two ways on our side: "Rust" opens the 78 files as one table with the
Arrow table core (metadata 8 files at a time, the 78 one-row reads 8 at a time:
`wan_lookups --table`), "Rust loop" is the plain per-file loop over one connection (open,
open dataset, read a row: three sequential requests per file, as the Python client does).
Before the timed runs `wan_lookups --check` reads both ways and compares the values.

Run by bench_wan.sh inside the client namespace; it reads the server's request log (the
server's `request` lines at info level) and the client interface's byte counters.

Per operation and client: the median of --runs runs of the wall time (the Rust CLI's
includes its process start; the Python client's starts after the import, with a fresh
connection, as a new session's first call), the requests the server logged, the sequential
round trips (the longest chain of logged requests in which each starts at least half an
RTT after the one before it ended: requests in flight together count once; connection
set-up is not in the log and not counted there; `conn` counts the TCP connections opened,
from the namespace's ActiveOpens), and the bytes on the wire (rx + tx of the client's
interface, both directions, headers included).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUP = "PartType0"
COLUMN = "Masses"
SCAN_COLUMNS = ["Masses", "Densities", "ParticleIDs"]
LOOKUP_OBJECT = "Halos/Mass"
LOOKUP_ROW = 17
LOOKUP_GLOB = "cat78/halos_*.hdf5"
N_SLICES = 1000
SLICE_LEN = 100
N_ROWS = 10_000

ANSI = re.compile(r"\x1b\[[0-9;]*m")
REQUEST = re.compile(r"^(\S+Z)\s+INFO\s.*\brequest\b.*\bms=([0-9.]+)")
DROP_FIELDS = re.compile(r' (user="[^"]*"|complete=true)')


def parse_time(stamp: str) -> float:
    """RFC 3339 UTC with up to nanoseconds -> seconds since the epoch."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    t = datetime.fromisoformat(head + "+00:00").timestamp()
    return t + (float("0." + frac) if frac else 0.0)


class ServerLog:
    """The requests the server logged since the last `mark()`."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def requests(self) -> list[tuple[float, float, str]]:
        """(start, end, description) of each request logged since the mark (seconds)."""
        time.sleep(0.05)  # the server logs a request when its body is sent
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        out = []
        for line in text.splitlines():
            line = ANSI.sub("", line)
            m = REQUEST.match(line)
            if m:
                end = parse_time(m.group(1))
                fields = line.split(" request ", 1)[-1]
                out.append((end - float(m.group(2)) / 1e3, end, DROP_FIELDS.sub("", fields)))
        return out


def sequential_round_trips(requests: list[tuple[float, float, str]], rtt: float) -> int:
    """Longest chain of requests each starting >= rtt/2 after the previous one ended."""
    gap = rtt / 2
    reqs = sorted(r[:2] for r in requests)
    depth: list[int] = []
    for i, (start, _) in enumerate(reqs):
        before = [depth[j] for j in range(i) if reqs[j][1] + gap <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


class Counters:
    """rx + tx bytes of one interface of this namespace."""

    def __init__(self, iface: str):
        self.base = Path("/sys/class/net") / iface / "statistics"
        if not self.base.exists():
            sys.exit(f"bench_wan_client: no interface {iface} in this namespace")

    def total(self) -> int:
        return sum(int((self.base / f"{d}_bytes").read_text()) for d in ("rx", "tx"))

    @staticmethod
    def connections() -> int:
        """TCP connections opened from this namespace so far (ActiveOpens of /proc/net/snmp)."""
        lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Tcp:")]
        return int(lines[1][lines[0].index("ActiveOpens")])


class Data:
    """Paths (relative to the served directory) and the selections of the operations."""

    def __init__(self, root: Path):
        import h5py

        self.root = root
        self.big = "big/snap_0000.hdf5"
        with h5py.File(root / self.big, "r") as f:
            self.rows = int(f[GROUP][COLUMN].shape[0])
            boxsize = np.asarray(f["Header"].attrs["BoxSize"], dtype=np.float64)
        self.box = [(0.4 * b, 0.6 * b) for b in boxsize.tolist()]
        step = self.rows // N_SLICES
        self.slices = [(i * step, i * step + min(SLICE_LEN, step)) for i in range(N_SLICES)]
        rng = np.random.default_rng(7)
        self.indices = np.sort(rng.choice(self.rows, size=min(N_ROWS, self.rows), replace=False))
        self.multi = sorted(p.name for p in (root / "multi").glob("snap_0000.*.hdf5"))
        if len(self.multi) != 16:
            sys.exit(f"bench_wan_client: expected 16 files in {root / 'multi'}, found {len(self.multi)}")
        self.cats = sorted(f"cat78/{p.name}" for p in (root / "cat78").glob("*.hdf5"))


class Rust:
    """Our client: the release CLI (and wan_scan, wan_lookups)."""

    name = "Rust"

    def __init__(self, url: str, data: Data, binary: str, lookups: str, scan: str, work: Path):
        self.url, self.d, self.bin, self.lookups, self.scan, self.work = url, data, binary, lookups, scan, work

    def run(self, *args: str) -> None:
        p = subprocess.run([self.bin, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError(f"hdfstream {' '.join(args[:4])}...: {p.stderr.decode()[-400:]}")

    def get(self, obj: str, *extra: str) -> None:
        self.run("get", self.url, self.d.big, obj, "--format", "npy", "-o", "/dev/null", "--no-progress", *extra)

    def schema(self):
        self.run("info", self.url, self.d.big, "/" + GROUP)

    def listing(self):
        self.run("ls", self.url, "dir1000")

    def column(self):
        self.get(f"/{GROUP}/{COLUMN}")

    def slices_multi(self):
        self.get(f"/{GROUP}/{COLUMN}", "--slice", ";".join(f"{a}:{b}" for a, b in self.d.slices))

    slices_loop = slices_multi  # the CLI's way to read many slices is one request

    def rows(self):
        self.get(f"/{GROUP}/{COLUMN}", "--slice", ";".join(str(i) for i in self.d.indices.tolist()))

    def region(self):
        box = ",".join(f"{a}:{b}" for a, b in self.d.box)
        self.get(f"/{GROUP}/Coordinates", "--region", box)

    def scan16(self):
        out = self.work / "scan16.parquet"
        self.run(
            "export", self.url, "multi/snap_0000.*.hdf5", GROUP, "--columns", ",".join(SCAN_COLUMNS),
            "--compression", "none", "--no-progress", "-o", str(out),
        )
        out.unlink()

    def scan16_sums(self) -> dict[str, float]:
        """The same table read into memory (`wan_scan`: the Arrow table core); the column sums it prints."""
        p = subprocess.run(
            [self.scan, *os.environ.get("WAN_SCAN_ARGS", "").split(), self.url, "multi/snap_0000.*.hdf5", GROUP, *SCAN_COLUMNS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        lines = p.stdout.decode().split("\n")
        if p.returncode != 0 or not lines[0].endswith(" rows"):
            raise RuntimeError(f"wan_scan: {p.stderr.decode()[-400:]}")
        return {name: float(v) for name, v in (line.split() for line in lines[1:] if line)}

    def scan16_mem(self):
        self.scan16_sums()

    def run_lookups(self, *mode: str) -> str:
        p = subprocess.run(
            [self.lookups, *mode, self.url, "/" + LOOKUP_OBJECT, str(LOOKUP_ROW), *self.d.cats],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out = p.stdout.decode()
        if p.returncode != 0 or not out.startswith(f"{len(self.d.cats)} files"):
            raise RuntimeError(f"wan_lookups {' '.join(mode)}: {p.stderr.decode()[-400:]}")
        return out

    def lookups78(self):
        """The 78 files as one table (Arrow table core, 8 requests in flight)."""
        self.run_lookups("--table", LOOKUP_GLOB)

    def lookups78_loop(self):
        """A plain loop over the 78 files, one connection."""
        self.run_lookups()

    def lookups78_check(self) -> str:
        """Both ways, values compared by wan_lookups (untimed)."""
        return self.run_lookups("--check", LOOKUP_GLOB).strip()

    def lookups78_cli(self):
        for path in self.d.cats:
            self.run("get", self.url, path, "/" + LOOKUP_OBJECT, "--slice", str(LOOKUP_ROW))


class Python:
    """The real Python `hdfstream` client, used as its documentation shows."""

    name = "Python"

    def __init__(self, url: str, data: Data):
        import hdfstream
        from hdfstream.connection import Connection

        hdfstream.disable_progress(True)
        self.h, self.conns, self.url, self.d = hdfstream, Connection._cache, url, data

    def open(self, path: str):
        return self.h.open(self.url, path)

    def fresh(self) -> None:
        """Forget the cached session: every run starts as a new program would."""
        for c in self.conns.values():
            c.session.close()
        self.conns.clear()

    def schema(self):
        g = self.open(self.d.big)[GROUP]
        with redirect_stdout(io.StringIO()):
            for name in g:
                obj = g[name]
                print(name, getattr(obj, "dtype", ""), getattr(obj, "shape", ""))

    def listing(self):
        names = list(self.open("dir1000"))
        assert len(names) == 1000, len(names)

    def dataset(self):
        return self.open(self.d.big)[f"{GROUP}/{COLUMN}"]

    def column(self):
        a = self.dataset()[...]
        assert a.shape == (self.d.rows,)

    def slices_loop(self):
        d = self.dataset()
        parts = [d[a:b] for a, b in self.d.slices]
        assert sum(len(p) for p in parts) == sum(b - a for a, b in self.d.slices)

    def slices_multi(self):
        d = self.dataset()
        a = d.request_slices([np.s_[a:b] for a, b in self.d.slices])
        assert len(a) == sum(b - a for a, b in self.d.slices)

    def rows(self):
        a = self.dataset()[self.d.indices]
        assert len(a) == len(self.d.indices)

    def region(self):
        from bench_python import cells_of

        f = self.open(self.d.big)
        ranges = cells_of(f, self.d.box)
        a = f[f"{GROUP}/Coordinates"].request_slices([np.s_[a:b] for a, b in ranges])
        assert len(a) == sum(b - a for a, b in ranges)

    def scan16(self) -> dict[str, np.ndarray]:
        directory = self.open("multi")
        cols = {c: [] for c in SCAN_COLUMNS}
        for name in self.d.multi:
            assert name in directory
            g = self.open(f"multi/{name}")[GROUP]
            for c in SCAN_COLUMNS:
                cols[c].append(g[c][...])
        out = {c: np.concatenate(v) for c, v in cols.items()}
        assert len(out[SCAN_COLUMNS[0]]) > 0
        return out

    def scan16_check(self, rust: Rust) -> str:
        """wan_scan's column sums against this client's arrays (untimed)."""
        want = {c: float(np.sum(v, dtype=np.float64)) for c, v in self.scan16().items()}
        got = rust.scan16_sums()
        for c, w in want.items():
            if c not in got or abs(got[c] - w) > 1e-9 * max(1.0, abs(w)):
                raise RuntimeError(f"wan_scan's sum of {c} is {got.get(c)}, the Python client's {w}")
        return "column sums match"

    def lookups78(self):
        values = [self.open(path)[LOOKUP_OBJECT][LOOKUP_ROW] for path in self.d.cats]
        assert len(values) == len(self.d.cats)

    lookups78_cli = lookups78


# (key, label, Rust method, Python method)
OPERATIONS = [
    ("schema", "open file + print schema", "schema", "schema"),
    ("ls", "list a 1000-file directory", "listing", "listing"),
    ("column", "full column", "column", "column"),
    ("slices", "1000 slices (Py: loop)", "slices_multi", "slices_loop"),
    ("slices1", "1000 slices (Py: multi)", "slices_multi", "slices_multi"),
    ("rows", "10^4 random rows", "rows", "rows"),
    ("region", "region box (Coordinates)", "region", "region"),
    ("scan16", "3 columns of 16 files", "scan16", "scan16"),
    ("lookups", "1 row of 78 files", "lookups78", "lookups78"),
    ("lookups_cli", "1 row of 78 files (78 CLI runs)", "lookups78_cli", "lookups78_cli"),
]
# Further rows of our client for some operations: (row suffix, Rust method), run with every
# Rust client (plain server and each variant).
EXTRA_ROWS = {
    "scan16": [("scan", "scan16_mem")],
    "lookups": [("loop", "lookups78_loop")],
}


def measure(fn, before, log: ServerLog, counters: Counters, rtt: float, show: str | None = None) -> dict:
    before()
    log.mark()
    b0, c0 = counters.total(), counters.connections()
    t0 = time.perf_counter()
    fn()
    t = time.perf_counter() - t0
    reqs = log.requests()
    if show:
        print(f"-- {show}: {len(reqs)} requests in {t:.3f} s (start ms after the first, duration ms, request)")
        t_first = min((r[0] for r in reqs), default=0.0)
        for start, end, text in sorted(reqs):
            print(f"   {(start - t_first) * 1e3:9.1f} {(end - start) * 1e3:8.1f}  {text}")
    return {
        "time": t,
        "requests": len(reqs),
        "rt": sequential_round_trips(reqs, rtt),
        "bytes": counters.total() - b0,
        "conns": counters.connections() - c0,
    }


def connect_rtt(url: str, n: int = 5) -> float:
    """Median time of a TCP connect to the server (one round trip), in seconds."""
    u = urlsplit(url)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with socket.create_connection((u.hostname, u.port or 80), timeout=10):
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f}MB" if n >= 1e5 else f"{n / 1e3:.1f}kB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--rate-mbit", type=float, required=True)
    ap.add_argument("--link", default="netem")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--server-log", type=Path, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--lookups-bin", required=True)
    ap.add_argument("--scan-bin", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME=URL: a server; the first is the plain one both clients use, "
                         "the others (e.g. compressing) only the Rust client")
    ap.add_argument("--py-variant", action="append", default=[],
                    help="NAME=URL: a further server the Python client also runs against "
                         "(rows 'Python+NAME', e.g. a server that offers gzip)")
    ap.add_argument("--only", help="comma-separated operation keys (default: all)")
    ap.add_argument("--show-requests", action="store_true",
                    help="print the server's log of each operation's first run")
    args = ap.parse_args()

    variants = [v.split("=", 1) for v in args.variant]
    data = Data(args.data)
    log = ServerLog(args.server_log)
    counters = Counters(args.iface)
    rtt = args.rtt_ms / 1e3
    plain_url = variants[0][1]
    py = Python(plain_url, data)
    def rust(url: str) -> Rust:
        return Rust(url, data, args.bin, args.lookups_bin, args.scan_bin, args.work)

    clients = [("Rust", rust(plain_url), lambda: None), ("Python", py, py.fresh)]
    for name, url in variants[1:]:
        clients.append((f"Rust+{name}", rust(url), lambda: None))
    py_variants = [v.split("=", 1) for v in args.py_variant]
    for name, url in py_variants:
        pyv = Python(url, data)
        clients.append((f"Python+{name}", pyv, pyv.fresh))
    ops = OPERATIONS
    if args.only:
        keep = set(args.only.split(","))
        ops = [o for o in OPERATIONS if o[0] in keep]

    if any(o[0] == "lookups" for o in ops):
        print(f"bench_wan_client: wan_lookups --check: {clients[0][1].lookups78_check()}", flush=True)
    if any(o[0] == "scan16" for o in ops):
        print(f"bench_wan_client: wan_scan: {py.scan16_check(clients[0][1])}", flush=True)
    measured_rtt = connect_rtt(plain_url)
    started = time.perf_counter()
    results: dict[tuple[str, str], list[dict]] = {}
    for run in range(args.runs):
        for key, label, rust_m, py_m in ops:
            for cname, client, before in clients:
                method = py_m if cname.startswith("Python") else rust_m
                show = f"{label}, {cname}" if args.show_requests and run == 0 else None
                r = measure(getattr(client, method), before, log, counters, rtt, show)
                results.setdefault((key, cname), []).append(r)
            for suffix, method in EXTRA_ROWS.get(key, []):
                for cname, client, _ in clients:
                    if cname.startswith("Python"):
                        continue
                    row = f"{cname} {suffix}"
                    show = f"{label}, {row}" if args.show_requests and run == 0 else None
                    r = measure(getattr(client, method), lambda: None, log, counters, rtt, show)
                    results.setdefault((key, row), []).append(r)

    print()
    print(f"== {args.profile}: {args.rate_mbit:g} Mbit/s, RTT {args.rtt_ms:g} ms ({args.link}); "
          f"{data.rows:,}-row column; median of {args.runs} runs; TCP connect {measured_rtt * 1e3:.1f} ms; "
          f"{time.perf_counter() - started:.0f} s in all")
    head = f"{'operation':32} {'client':15} {'time s':>8} {'req':>5} {'conn':>4} {'seq RT':>6} {'t/RTT':>7} {'RT%':>4} {'wire':>9}"
    py_alt = f"Python+{py_variants[0][0]}" if py_variants else None
    print(head + f" {'time R/Py':>9} {'speed-up':>8} {'req R/Py':>8} {'bytes R/Py':>10}"
          + (f" {'vs ' + py_alt:>17}" if py_alt else ""))
    print("-" * (len(head) + 40))
    legend = ("req: requests the server logged; conn: TCP connections the client opened; seq RT: the longest chain of them one after another; "
              "t/RTT: time in round trips; RT%: seq RT x measured RTT / time; wire: rx+tx bytes; "
              "R/Py: Rust / Python; speed-up: Python time / Rust time"
              + (f"; vs {py_alt}: {py_alt} time / Rust time" if py_alt else ""))
    for key, label, _, _ in ops:
        pyr = results[(key, "Python")]
        rows = [c[0] for c in clients] + [
            f"{c[0]} {suffix}" for suffix, _ in EXTRA_ROWS.get(key, []) for c in clients
            if not c[0].startswith("Python")
        ]
        for cname in rows:
            runs = results[(key, cname)]
            t, n, rt, b, c = (median(runs, k) for k in ("time", "requests", "rt", "bytes", "conns"))
            share = min(99, round(100 * rt * measured_rtt / t))
            line = (f"{label if cname == 'Rust' else '':32} {cname:15} {t:>8.3f} {n:>5.0f} {c:>4.0f} {rt:>6.0f} "
                    f"{t / rtt:>7.1f} {share:>4} {fmt_bytes(b):>9}")
            if cname != "Python":
                pt, pn, pb = (median(pyr, k) for k in ("time", "requests", "bytes"))
                line += f" {t / pt:>9.3f} {pt / t:>7.1f}x {n / pn if pn else float('nan'):>8.3f} {b / pb if pb else float('nan'):>10.3f}"
                if py_alt and not cname.startswith("Python"):
                    line += f" {median(results[(key, py_alt)], 'time') / t:>16.1f}x"
            print(line)
    print(legend)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
