"""The rows of the SWIFT cells a region touches, computed from `Cells/` with h5py.

An independent implementation of swiftsimio 12.4's selection (the rule
`scripts/swift_mask.py` documents): a cell's extent per axis is the nominal cell widened to
`Cells/MinPositions` / `MaxPositions`; a box axis `lo > hi` wraps (shifted by one box side);
an axis longer than the box is unconstrained; a cell is kept when on every axis one of the
three periodic copies of its extent overlaps the box with strict comparisons. The kept cells'
rows are `[OffsetsInFile, OffsetsInFile + Counts)` in the file `Cells/Files` names.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def _window(lo: float, hi: float, side: float) -> tuple[float, float] | None:
    if abs(hi - lo) > side:
        return None
    if hi < lo:
        if lo > side / 2:
            lo -= side
        else:
            hi += side
    return lo, hi


def kept_cells(first_file: Path, ptype: str, boxes: list[list[tuple[float, float] | None]]) -> np.ndarray:
    """Boolean mask over the cells of the index of `first_file`."""
    with h5py.File(first_file, "r") as h:
        side = np.broadcast_to(np.asarray(h["Header"].attrs["BoxSize"], dtype=float), (3,))
        size = np.broadcast_to(np.asarray(h["Cells/Meta-data"].attrs["size"], dtype=float), (3,))
        centres = h["Cells/Centres"][()]
        lo = centres - size / 2
        hi = centres + size / 2
        if f"Cells/MinPositions/{ptype}" in h:
            lo = np.minimum(lo, h[f"Cells/MinPositions/{ptype}"][()])
            hi = np.maximum(hi, h[f"Cells/MaxPositions/{ptype}"][()])
    keep = np.zeros(len(centres), dtype=bool)
    for box in boxes:
        inside = np.ones(len(centres), dtype=bool)
        for axis, bounds in enumerate(box):
            if bounds is None:
                continue
            w = _window(bounds[0], bounds[1], side[axis])
            if w is None:
                continue
            a = np.zeros(len(centres), dtype=bool)
            for shift in (-side[axis], 0.0, side[axis]):
                a |= (hi[:, axis] + shift > w[0]) & (lo[:, axis] + shift < w[1])
            inside &= a
        keep |= inside
    return keep


def region_rows(files: list[Path], ptype: str, boxes: list[list[tuple[float, float] | None]]) -> np.ndarray:
    """Sorted global row numbers (over `files` concatenated) of the cells `boxes` touch."""
    keep = kept_cells(files[0], ptype, boxes)
    with h5py.File(files[0], "r") as h:
        counts = h[f"Cells/Counts/{ptype}"][()]
        offsets = h[f"Cells/OffsetsInFile/{ptype}"][()]
        owner = h[f"Cells/Files/{ptype}"][()]
    rows_per_file = []
    for f in files:
        with h5py.File(f, "r") as h:
            rows_per_file.append(h[f"{ptype}/Coordinates"].shape[0])
    starts = np.concatenate([[0], np.cumsum(rows_per_file)[:-1]])
    out = [
        np.arange(offsets[c], offsets[c] + counts[c], dtype=np.int64) + starts[owner[c]]
        for c in np.flatnonzero(keep)
        if counts[c] > 0
    ]
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)
