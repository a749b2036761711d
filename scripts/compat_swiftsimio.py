#!/usr/bin/env python3
"""swiftsimio on a remote file (real Python hdfstream client, our server) vs on the local file.

For each snapshot given as `--case LOCAL_PATH=VPATH` (a single-file snapshot, or the virtual
file of a multi-file one) and each particle type, and for several boxes (inside, across the
periodic boundary, wrapping with lo > hi, a union, an empty void box, everything, a slab):

  * `sw.mask(remote)` + `constrain_spatial` gives the same per-type ranges and sizes as
    `sw.mask(local)` (and as scripts/swift_mask.py run on the local file);
  * `sw.load(remote, mask=...)` reads the same values (coordinates, masses, ids, and for gas
    densities and a named column) and units as `sw.load(local, mask=...)`;
  * those values are the rows h5py reads from the local file at the mask's ranges;
  * every particle inside the box (h5py, periodic) is in the selected rows.

Unmasked `sw.load(remote)` is compared with `sw.load(local)` too. Prints
`compat-swiftsimio: N passed, M failed` and exits 1 on any failure.

Usage: compat_swiftsimio.py --server http://127.0.0.1:PORT/hdfstream --case PATH=VPATH ...
"""

import argparse
import os
import sys
import traceback
import warnings

import h5py
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swift_mask  # noqa: E402

import hdfstream  # noqa: E402
import swiftsimio as sw  # noqa: E402


class Checker:
    """Collects pass/fail counts and the first failure messages."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.messages = []

    def ok(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            if len(self.messages) < 50:
                self.messages.append(what)
        return condition


def boxes_for(box_size):
    """Named lists of boxes (each a union) in internal units, for a cubic box of side L."""
    L = float(box_size)
    c = L / 8.0  # the sample's cell width
    return {
        "inside": [[[0.2 * L, 0.36 * L], [0.2 * L, 0.36 * L], [0.6 * L, 0.7 * L]]],
        "across-boundary": [[[-0.08 * L, 0.12 * L], [0.4 * L, 0.56 * L], [0.8 * L, 1.08 * L]]],
        "wrapping": [[[0.92 * L, 0.08 * L], [0.9 * L, 0.1 * L], None]],
        "union": [[[0.2 * L, 0.36 * L], [0.2 * L, 0.36 * L], [0.6 * L, 0.7 * L]],
                  [[0.92 * L, 0.08 * L], [0.9 * L, 0.1 * L], [0.0, 0.5 * L]]],
        # The sample's void: cells 2..3 along every axis have no particles; this box is
        # more than the largest drift away from any other cell.
        "empty-void": [[[2.6 * c, 3.4 * c]] * 3],
        "everything": [[[0.0, L], [0.0, L], [0.0, L]]],
        "slab": [[None, None, [0.48 * L, 0.5 * L]]],
    }


def fields_of(group_name):
    base = ["coordinates", "masses", "particle_ids", "velocities"]
    if group_name == "gas":
        base += ["densities", "temperatures"]
    return base


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def rows_at(path, dataset, ranges):
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        parts = [ds[a:b] for a, b in ranges]
        if not parts:
            return np.empty((0,) + ds.shape[1:], dtype=ds.dtype)
        return np.concatenate(parts)


def check_case(chk, server, local, vpath):
    # max_depth=1: the Python client cannot expand groups with compound datasets (the sample's
    # Extra/Structured, absent from SWIFT's files); deeper groups load lazily.
    remote = hdfstream.open(server, vpath, max_depth=1)
    with h5py.File(local, "r") as f:
        box_size = np.asarray(f["Header"].attrs["BoxSize"]).reshape(-1)[0]
        present = [t for t in range(7) if f"PartType{t}" in f]
    # Unmasked loads.
    d_local, d_remote = sw.load(local), sw.load(remote)
    for group in d_local.metadata.present_group_names:
        for field in ("coordinates", "masses"):
            a = getattr(getattr(d_local, group), field)
            b = getattr(getattr(d_remote, group), field)
            chk.ok(same(a, b) and a.units == b.units,
                   f"{vpath} unmasked {group}.{field} differs")
    for name, boxes in boxes_for(box_size).items():
        # swift_mask.py's own code path (the truth the Rust tests use) builds the masks.
        m_local = swift_mask.constrained_mask(local, boxes)
        m_remote = swift_mask.constrained_mask(remote, boxes)
        l_local = sw.load(local, mask=m_local)
        l_remote = sw.load(remote, mask=m_remote)
        for ptype in present:
            what = f"{vpath} PartType{ptype} box {name}"
            group = swift_mask.group_name_of(m_local, ptype)
            r_local = np.asarray(getattr(m_local, group)).reshape(-1, 2)
            r_remote = np.asarray(getattr(m_remote, group)).reshape(-1, 2)
            chk.ok(np.array_equal(r_local, r_remote), f"{what}: mask ranges differ")
            chk.ok(getattr(m_local, f"{group}_size") == getattr(m_remote, f"{group}_size"),
                   f"{what}: mask sizes differ")
            ranges, rows, cells = swift_mask.selection_of(m_local, ptype)
            r_ranges, r_rows, r_cells = swift_mask.selection_of(m_remote, ptype)
            chk.ok(r_ranges == ranges and r_rows == rows and r_cells == cells,
                   f"{what}: selection through the client differs")
            # Every particle inside the boxes is selected.
            exact = swift_mask.exact_rows(local, ptype, boxes)
            covered = all(any(a <= s and e <= b for a, b in ranges) for s, e in exact["ranges"])
            chk.ok(covered, f"{what}: a particle inside the box is not selected")
            if name == "empty-void":
                chk.ok(rows == 0 and exact["rows"] == 0, f"{what}: void box not empty")
            if name == "everything":
                with h5py.File(local, "r") as f:
                    n = f[f"PartType{ptype}/Coordinates"].shape[0]
                chk.ok(rows == n, f"{what}: everything selects {rows} of {n}")
            if rows == 0:
                continue
            for field in fields_of(group):
                a = getattr(getattr(l_local, group), field)
                b = getattr(getattr(l_remote, group), field)
                chk.ok(same(a, b) and a.units == b.units, f"{what}: {group}.{field} differs")
                chk.ok(len(a) == rows, f"{what}: {group}.{field} has {len(a)} rows, not {rows}")
            path = f"PartType{ptype}/Coordinates"
            truth = rows_at(local, path, ranges)
            got = getattr(getattr(l_remote, group), "coordinates")
            chk.ok(np.array_equal(np.asarray(got.to_value(got.units)), truth),
                   f"{what}: coordinates are not the h5py rows")
            if group == "gas":
                a = l_local.gas.element_mass_fractions.hydrogen
                b = l_remote.gas.element_mass_fractions.hydrogen
                truth = rows_at(local, "PartType0/ElementMassFractions", ranges)[:, 0]
                chk.ok(same(a, b) and np.array_equal(np.asarray(b), truth),
                       f"{what}: named column hydrogen differs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--case", action="append", required=True, help="LOCAL_PATH=VPATH")
    args = ap.parse_args()
    chk = Checker()
    warnings.simplefilter("ignore")
    for case in args.case:
        local, _, vpath = case.partition("=")
        try:
            check_case(chk, args.server, local, vpath)
        except Exception:
            chk.ok(False, f"{case}: {traceback.format_exc()}")
    for m in chk.messages:
        print(f"FAIL: {m}")
    print(f"compat-swiftsimio: {chk.passed} passed, {chk.failed} failed")
    return 1 if chk.failed else 0


if __name__ == "__main__":
    sys.exit(main())
