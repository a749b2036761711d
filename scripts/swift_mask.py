#!/usr/bin/env python3
"""Independent truth for spatial region queries: the rows swiftsimio selects for a box.

Usage:
  swift_mask.py SNAPSHOT --ptype N --box=x0:x1,y0:y1,z0:z1 [--box=...]
                [--url BASE_URL --path VPATH] [--exact] [--safe-padding F]

Example (a 20 000-particle sample, seed 3, 25 Mpc box; a box wrapping in y):
  swift_mask.py snap_0000.hdf5 --ptype 0 --box=5:9,23:2,:
  {"file": "snap_0000.hdf5", "ranges": [[1479, 1678], [2893, 3261], [4257, 4426],
   [4674, 4691], [4712, 4730], [6506, 6555]], "rows": 820, "cells": [64, 65, ...]}

Prints one JSON object on stdout:

  {"ranges": [[start, end], ...], "rows": N, "cells": [kept cell indices],
   "file": "snap_0000.hdf5", ...}

`ranges` are half-open, sorted and merged rows of `PartTypeN` of SNAPSHOT (file-local
rows; see "Multi-file snapshots" below), exactly the rows swiftsimio 12.4's
`mask(...).constrain_spatial(...)` keeps: the script reads the mask's own per-type range
array (`getattr(mask, group_name)`, one `[offset, offset + count]` per kept cell) and its
`cell_mask` / `cell_sort`; it only sorts and merges them. `rows` is swiftsimio's own
`<group>_size`. `cells` are the kept top-level cell indices (SWIFT numbering, `Cells/Centres`
order), sorted.

Boxes. `--box=x0:x1,y0:y1,z0:z1` in the snapshot's internal length units (comoving), handed
to swiftsimio as `[[x0, x1], [y0, y1], [z0, z1]]` unchanged (write `--box=...` with `=` when
a bound starts with '-'). An axis written `:` is `None`, which swiftsimio replaces with
[0, BoxSize] (every cell passes). Several `--box` flags are a union (the first
`constrain_spatial` call, then `constrain_spatial(..., union=True)` for the others).
Conventions, from swiftsimio 12.4's `SWIFTMask._generate_cell_mask` (masks.py):
  * every bound must lie in [-BoxSize/2, 3*BoxSize/2], else swiftsimio raises ValueError
    (the script exits 2 with that message);
  * if |hi - lo| > BoxSize the axis is not constrained at all (every cell passes);
  * lo > hi denotes a box wrapping the periodic boundary: swiftsimio makes it an ordinary
    interval, `lo -= BoxSize` when lo > BoxSize/2, else `hi += BoxSize` (e.g. 20:2 in a 25
    box becomes [-5, 2], 10:5 becomes [10, 30]);
  * bounds outside [0, BoxSize) (e.g. -2:4 or 23:27 in a 25 box) are the same thing written
    without inversion: taken as they are and tested against the periodic copies.

swiftsimio's cell selection rule (what region pruning must match):
  1. Cell extents. With `Cells/MinPositions` and `Cells/MaxPositions` present (as SWIFT
     writes them, and as this project's sample writes them), a cell's extent for a particle
     type along each axis is
        lo = min(Centre - size/2, MinPositions),  hi = max(Centre + size/2, MaxPositions),
     i.e. the nominal cell widened to the bounding box of that type's particles in the cell
     (per type: each type has its own extents and its own cell mask). Empty cells, whose
     Min/MaxPositions SWIFT writes as +DBL_MAX / -DBL_MAX, therefore keep the nominal extent.
     `size` is the `Cells/Meta-data` attribute (per axis). The bounds are not wrapped: an
     extent may reach below 0 or above BoxSize.
  2. Without Min/MaxPositions (older SWIFT), every type uses the nominal extent padded by
     `safe_padding` cells on each side: Centre -/+ (safe_padding + 0.5) * size, with
     safe_padding = 0.1 when `mask(filename)` is called with the default `safe_padding=True`
     (0.0 with False, or the given fraction; `mask()`'s docstring says "one cell", the code
     uses 0.1). swiftsimio warns in that case. `--safe-padding F` passes F.
  3. Test per axis, independently, with strict inequalities, against the three periodic
     copies of the extent (shift = -1, 0, +1 times BoxSize):
        keep along the axis  <=>  any(hi + shift*L > lo_box  and  lo + shift*L < hi_box)
     A cell is kept when it passes on all three axes (an axis not constrained passes).
     Strict: a cell whose extent only touches the box boundary is not kept.
  4. A union of boxes ORs the per-type cell masks. The selected rows of a type are the
     cells kept, each as [OffsetsInFile, OffsetsInFile + Counts) (cells ordered by a stable
     argsort of the offsets of the first present type; empty ranges included in swiftsimio's
     array, dropped here by the merge).

Multi-file snapshots. swiftsimio refuses masks on a file of a distributed snapshot
(`NumFilesPerSnapshot` > 1 -> InvalidSnapshot "use the virtual file"): it only masks the
virtual file SWIFT writes next to them (`snap_0000.hdf5`, NumFilesPerSnapshot 1, whose
`Cells/OffsetsInFile` are rows of its virtual datasets). So:
  * SNAPSHOT = the virtual file: `ranges` are rows of the virtual datasets; the output also
    has `"files": [{"file": "snap_0000.0.hdf5", "ranges": [...], "rows": n}, ...]`, the same
    selection cut at each source file's rows and made file-local, using the virtual
    dataset's own mapping (h5py `virtual_sources()` of PartTypeN/Coordinates).
  * SNAPSHOT = one file of the distributed snapshot (`snap_0000.K.hdf5`): the script masks the
    virtual file next to it (`snap_0000.hdf5`, which must exist) and prints that file's part:
    file-local `ranges`/`rows`, `"virtual": "snap_0000.hdf5"`, `cells` (all kept cells) and
    `file_cells` (the kept cells whose `Cells/Files` entry is this file).

--url BASE_URL --path VPATH: open the file through the real Python hdfstream client on the
server (`hdfstream.open(BASE_URL, VPATH)`) and hand the RemoteFile to swiftsimio
(`sw.mask(remote)`); swiftsimio 12.4 accepts it (its HandleProvider takes any handle; it
recognises `hdfstream.RemoteDataset` and reads ranges with `request_slices`). SNAPSHOT is
then used only for --exact and the per-file mapping. VPATH must name the virtual file for a
multi-file snapshot, like SNAPSHOT.

--exact: also print `"exact": {"ranges": [...], "rows": N}`, the rows of SNAPSHOT whose
Coordinates (h5py, all rows) lie inside any box, periodically and half-open: along an axis
with |hi - lo| > BoxSize, or `:`, every x is inside; otherwise x is inside when
(x - lo) mod L < (hi - lo) mod L, i.e. x in [lo, hi) on the circle (lo > hi wraps). These
rows are always within `ranges` when Min/MaxPositions are right.
"""

import argparse
import json
import os
import re
import sys
import warnings

import h5py
import numpy as np


def parse_box(text):
    """`x0:x1,y0:y1,z0:z1` -> [[x0, x1] or None, ...]."""
    axes = text.split(",")
    if len(axes) != 3:
        raise ValueError(f"box {text!r}: need three comma-separated axes")
    out = []
    for axis in axes:
        axis = axis.strip()
        if axis in (":", ""):
            out.append(None)
            continue
        lo, sep, hi = axis.partition(":")
        if not sep:
            raise ValueError(f"box {text!r}: axis {axis!r} is not lo:hi")
        out.append([float(lo), float(hi)])
    return out


def merge_ranges(ranges):
    """Sorted, merged, non-empty half-open ranges."""
    rs = sorted((int(a), int(b)) for a, b in ranges if int(b) > int(a))
    out = []
    for a, b in rs:
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def ranges_from_bool(mask):
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks] + 1, [idx[-1] + 1]))
    return [[int(a), int(b)] for a, b in zip(starts, ends)]


def virtual_path_of(path):
    """`.../snap_0000.3.hdf5` -> `.../snap_0000.hdf5` (None if the name has no `.K`)."""
    m = re.match(r"^(.*)\.(\d+)\.hdf5$", path)
    return f"{m.group(1)}.hdf5" if m else None


def group_name_of(mask, ptype):
    md = mask.metadata
    for group, name in zip(md.present_groups, md.present_group_names):
        if group == f"PartType{ptype}":
            return name
    raise KeyError(f"PartType{ptype} not present in the snapshot")


def constrained_mask(source, boxes, safe_padding=True):
    """`sw.mask(source)` constrained to the union of `boxes` (in internal length units)."""
    import swiftsimio as sw
    from swiftsimio.objects import cosmo_array

    mask = sw.mask(source, safe_padding=safe_padding)
    boxsize = mask.metadata.boxsize
    for i, box in enumerate(boxes):
        region = [
            None
            if axis is None
            else cosmo_array(
                axis,
                units=boxsize.units,
                comoving=True,
                scale_factor=mask.metadata.scale_factor,
                scale_exponent=1,
            )
            for axis in box
        ]
        mask.constrain_spatial(region, union=i > 0)
    return mask


def selection_of(mask, ptype):
    """(merged ranges, rows, kept cells) of PartType`ptype`, read from swiftsimio's mask."""
    name = group_name_of(mask, ptype)
    raw = np.asarray(getattr(mask, name)).reshape(-1, 2)
    rows = int(getattr(mask, f"{name}_size"))
    ranges = merge_ranges(raw.tolist())
    if sum(b - a for a, b in ranges) != rows:
        raise RuntimeError("swiftsimio's ranges and size disagree")
    cells = sorted(int(c) for c in np.asarray(mask.cell_sort)[mask.cell_mask[name]])
    return ranges, rows, cells


def clip_ranges(ranges, start, end):
    """The parts of `ranges` inside [start, end), shifted by -start."""
    out = []
    for a, b in ranges:
        a2, b2 = max(a, start), min(b, end)
        if b2 > a2:
            out.append([a2 - start, b2 - start])
    return out


def per_file(virtual_file, ptype, ranges):
    """Splits virtual-dataset ranges by source file, via the VDS mapping of Coordinates."""
    out = []
    with h5py.File(virtual_file, "r") as f:
        ds = f[f"PartType{ptype}/Coordinates"]
        if not ds.is_virtual:
            raise RuntimeError(f"{virtual_file}: PartType{ptype}/Coordinates is not virtual")
        for src in ds.virtual_sources():
            start, end = src.vspace.get_select_bounds()
            start, end = start[0], end[0] + 1
            local = clip_ranges(ranges, start, end)
            out.append({
                "file": src.file_name,
                "start": int(start),
                "ranges": local,
                "rows": sum(b - a for a, b in local),
            })
    return out


def exact_rows(path, ptype, boxes):
    """Rows of `path` whose coordinates lie in any box (periodic, half-open)."""
    with h5py.File(path, "r") as f:
        pos = f[f"PartType{ptype}/Coordinates"][...]
        box_size = np.asarray(f["Header"].attrs["BoxSize"], dtype=np.float64).reshape(-1)
    if box_size.size == 1:
        box_size = np.repeat(box_size, 3)
    inside = np.zeros(len(pos), dtype=bool)
    for box in boxes:
        keep = np.ones(len(pos), dtype=bool)
        for k, axis in enumerate(box):
            if axis is None:
                continue
            lo, hi = axis
            length = box_size[k]
            if abs(hi - lo) > length:
                continue
            width = (hi - lo) % length
            if width == 0 and hi != lo:
                continue
            keep &= np.mod(pos[:, k] - lo, length) < width
        inside |= keep
    ranges = ranges_from_bool(inside)
    return {"ranges": ranges, "rows": int(inside.sum())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshot")
    ap.add_argument("--ptype", type=int, required=True)
    ap.add_argument("--box", action="append", required=True)
    ap.add_argument("--url")
    ap.add_argument("--path")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--safe-padding", type=float, default=None,
                    help="safe_padding for snapshots without Min/MaxPositions (default: "
                         "swiftsimio's, 0.1 cell)")
    args = ap.parse_args(argv)
    try:
        boxes = [parse_box(b) for b in args.box]
    except ValueError as e:
        print(f"swift_mask: {e}", file=sys.stderr)
        return 2
    if (args.url is None) != (args.path is None):
        print("swift_mask: --url and --path go together", file=sys.stderr)
        return 2
    padding = True if args.safe_padding is None else args.safe_padding

    snapshot = os.path.abspath(args.snapshot)
    with h5py.File(snapshot, "r") as f:
        nfiles = int(np.asarray(f["Header"].attrs["NumFilesPerSnapshot"]).reshape(-1)[0])
        this_file = int(np.asarray(f["Header"].attrs.get("ThisFile", [0])).reshape(-1)[0])
        file_cells_of = (f[f"Cells/Files/PartType{args.ptype}"][...]
                         if f"Cells/Files/PartType{args.ptype}" in f else None)
        is_virtual = int(np.asarray(f["Header"].attrs.get("Virtual", [0])).reshape(-1)[0]) == 1
    masked = snapshot
    partial = nfiles > 1
    if partial:
        masked = virtual_path_of(snapshot)
        if masked is None or not os.path.exists(masked):
            print(f"swift_mask: {snapshot} is one file of a distributed snapshot and "
                  "swiftsimio masks only the virtual file; none found next to it",
                  file=sys.stderr)
            return 2

    remote = None
    if args.url is not None:
        import hdfstream
        # Shallow metadata requests: the Python client cannot expand groups holding compound
        # datasets (the sample's Extra/Structured), and swiftsimio only needs the groups
        # it opens, which the client loads lazily.
        remote = hdfstream.open(args.url, args.path, max_depth=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mask = constrained_mask(remote if remote is not None else masked, boxes, padding)
            ranges, rows, cells = selection_of(mask, args.ptype)
        except ValueError as e:
            print(f"swift_mask: swiftsimio rejected the box: {e}", file=sys.stderr)
            return 2

    out = {"file": os.path.basename(snapshot)}
    if partial:
        parts = per_file(masked, args.ptype, ranges)
        mine = [p for p in parts if os.path.basename(p["file"]) == os.path.basename(snapshot)]
        if len(mine) != 1:
            print(f"swift_mask: {snapshot} is not a source of {masked}", file=sys.stderr)
            return 2
        out.update({
            "virtual": os.path.basename(masked),
            "ranges": mine[0]["ranges"],
            "rows": mine[0]["rows"],
            "cells": cells,
            "file_cells": [c for c in cells
                           if file_cells_of is not None and int(file_cells_of[c]) == this_file],
        })
    else:
        out.update({"ranges": ranges, "rows": rows, "cells": cells})
        if is_virtual:
            out["files"] = per_file(snapshot, args.ptype, ranges)
    if args.exact:
        out["exact"] = exact_rows(snapshot, args.ptype, boxes)
    print(json.dumps(out))
    return 0


def batch(path):
    """Runs every argument list of the JSON file `path` (a list of lists) in this one
    process (swiftsimio is imported once) and prints a JSON list of their outputs; a query
    that fails gives `{"error": <exit code>}`."""
    import contextlib
    import io

    with open(path) as f:
        queries = json.load(f)
    results = []
    for argv in queries:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main([str(a) for a in argv])
        results.append(json.loads(buf.getvalue()) if rc == 0 else {"error": rc})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        sys.exit(batch(sys.argv[2]))
    sys.exit(main())
