"""Fixtures: a multi-file SWIFT-like sample written by `hdfstream sample`, served by
`hdfstream serve` on a free loopback port, and the truth read from the same files by h5py.

The `hdfstream` binary is found through `HDFSTREAM_CLI`, else in `$CARGO_TARGET_DIR/debug`,
`~/.cache/hdfstream-target/debug` or the repository's `target/debug` (`cargo build -p
hdfstream-cli`, or the workspace test command, builds it). Without it the tests fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = 3
PARTICLES = 20_000
SEED = 7
USER = "alice"
PASSWORD = "correct horse"


def _cli() -> Path:
    candidates = []
    if os.environ.get("HDFSTREAM_CLI"):
        candidates.append(Path(os.environ["HDFSTREAM_CLI"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "hdfstream")
    candidates += [
        Path.home() / ".cache" / "hdfstream-target" / "debug" / "hdfstream",
        REPO / "target" / "debug" / "hdfstream",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    pytest.fail(
        "no hdfstream binary: build it (cargo build -p hdfstream-cli) or set HDFSTREAM_CLI; "
        f"looked at {', '.join(str(c) for c in candidates)}"
    )


@pytest.fixture(scope="session")
def cli() -> Path:
    return _cli()


@pytest.fixture(scope="session")
def sample_dir(cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [str(cli), "sample", str(d), "--files", str(FILES), "--particles", str(PARTICLES), "--seed", str(SEED)],
        check=True,
        capture_output=True,
    )
    return d


class Server:
    """A running `hdfstream serve`; `base` is its base URL."""

    def __init__(self, cli: Path, directory: Path, extra: list[str]) -> None:
        self.proc = subprocess.Popen(
            [str(cli), "serve", str(directory), "--bind", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            pytest.fail(f"hdfstream serve did not start (printed {line!r})")
        self.base = line

    def url(self, path: str) -> str:
        return f"{self.base}/msgpack/{path}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def server(cli: Path, sample_dir: Path):
    s = Server(cli, sample_dir, [])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def auth_server(cli: Path, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    hashed = subprocess.run(
        [str(cli), "serve", "--hash-password"],
        input=PASSWORD + "\n",
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    users = tmp_path_factory.mktemp("auth") / "users"
    users.write_text(f"{USER}:{hashed}\n")
    s = Server(cli, sample_dir, ["--users", str(users)])
    yield s
    s.stop()


@dataclass
class Truth:
    """Datasets of one group over all files of the sample, read with h5py."""

    files: list[Path]
    rows: list[int]
    columns: dict[str, np.ndarray]

    @property
    def total(self) -> int:
        return sum(self.rows)

    @property
    def offsets(self) -> list[int]:
        return [sum(self.rows[:i]) for i in range(len(self.rows))]


def read_truth(files: list[Path], group: str) -> Truth:
    cols: dict[str, list[np.ndarray]] = {}
    rows = []
    for f in files:
        with h5py.File(f, "r") as h:
            g = h[group]
            n = None
            for name, ds in g.items():
                if isinstance(ds, h5py.Dataset):
                    cols.setdefault(name, []).append(ds[()])
                    if name == "Coordinates" or name == "ID":
                        n = ds.shape[0]
            rows.append(n if n is not None else 0)
    return Truth(files, rows, {k: np.concatenate(v) for k, v in cols.items()})


@pytest.fixture(scope="session")
def snap_files(sample_dir: Path) -> list[Path]:
    files = [sample_dir / f"snap_0000.{i}.hdf5" for i in range(FILES)]
    assert all(f.is_file() for f in files), sorted(p.name for p in sample_dir.iterdir())
    return files


@pytest.fixture(scope="session")
def gas(snap_files: list[Path]) -> Truth:
    return read_truth(snap_files, "PartType0")


@pytest.fixture(scope="session")
def halos(sample_dir: Path) -> Truth:
    return read_truth([sample_dir / "halos_0000.hdf5"], "Halos")


@pytest.fixture(scope="session")
def glob_url(server: Server) -> str:
    return server.url("snap_0000.*.hdf5")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([str(Path(__file__).parent)]))
