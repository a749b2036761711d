#!/usr/bin/env python3
"""Check the real Python `hdfstream` client against our server.

Walks a directory tree that `hdfstream serve` is serving and reads every directory, file,
group, attribute, soft link and dataset through the Python client (whole, sliced,
multi-sliced, fancy-indexed and `read_direct`), comparing each value with h5py reading the
same file from disk. Exits non-zero on the first run with any mismatch and prints a summary
line `compat: N passed, M failed`.

Usage: compat_python.py --server http://127.0.0.1:PORT/hdfstream --root DIR [--skip FILE]...

Known limit of the Python client (not of the server): it calls `np.dtype()` on every
dataset type it sees, so groups holding compound or HDF5 array-type datasets cannot be
opened by it at all (PROTOCOL.md section 6). Such groups are reported as skipped, and only
their attributes-free listing is compared when possible.
"""

import argparse
import os
import sys

import h5py
import numpy as np

import hdfstream


class Checker:
    """Collects pass/fail counts and the first few failure messages."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.messages = []

    def ok(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            if len(self.messages) < 50:
                self.messages.append(what)
        return condition

    def skip(self, what):
        self.skipped += 1
        print(f"skip: {what}")


def as_text(value):
    """Normalise a string-like scalar (bytes, np.bytes_, str) to str without NUL padding."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).rstrip(b"\0").decode("utf-8", errors="replace")
    return str(value)


def is_string_array(arr):
    return arr.dtype.kind in ("S", "U", "O")


def same_values(remote, local):
    """Exact equality of a value read through the client and one read by h5py."""
    remote = np.asarray(remote)
    local = np.asarray(local)
    if remote.shape != local.shape:
        return False
    if any(isinstance(x, np.ndarray) for a in (remote, local) if a.dtype.kind == "O" for x in a.reshape(-1)):
        # VLEN sequences: object arrays of 1-d arrays.
        return all(np.array_equal(np.asarray(r), np.asarray(l))
                   for r, l in zip(remote.reshape(-1), local.reshape(-1)))
    if is_string_array(remote) or is_string_array(local):
        r = [as_text(x) for x in remote.reshape(-1)]
        l = [as_text(x) for x in local.reshape(-1)]
        return r == l
    if local.dtype.kind == "b":
        local = local.astype(np.int8)
    if remote.dtype.kind == "f" or local.dtype.kind == "f":
        return np.array_equal(remote, local, equal_nan=True)
    return np.array_equal(remote, local)


def has_unsupported_member(h5group):
    """True when the group holds a compound or array-type dataset (the Python client cannot describe them)."""
    for name in h5group:
        link = h5group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            continue
        obj = h5group.get(name)
        if isinstance(obj, h5py.Dataset):
            dt = obj.dtype
            if dt.names is not None or dt.subdtype is not None:
                return True
    return False


def compare_attrs(chk, remote_attrs, local_attrs, where):
    chk.ok(sorted(remote_attrs.keys()) == sorted(local_attrs.keys()),
           f"{where}: attribute names {sorted(remote_attrs.keys())} != {sorted(local_attrs.keys())}")
    for name in local_attrs.keys():
        if name not in remote_attrs:
            continue
        chk.ok(same_values(remote_attrs[name], local_attrs[name]),
               f"{where}: attribute {name!r}: {remote_attrs[name]!r} != {local_attrs[name]!r}")


def sample_indices(n, rng):
    """A few interesting row selections for a first dimension of length n."""
    picks = {}
    picks["sorted"] = np.unique(rng.integers(0, n, size=min(n, 50)))
    picks["unsorted_dups"] = rng.integers(0, n, size=min(n, 40))
    picks["negative"] = -1 - rng.integers(0, n, size=min(n, 5))
    picks["mask"] = rng.random(n) < 0.1
    return picks


def compare_dataset(chk, rdset, hdset, where, rng):
    chk.ok(tuple(rdset.shape) == tuple(hdset.shape), f"{where}: shape {rdset.shape} != {hdset.shape}")
    local_all = hdset[()]
    vlen = h5py.check_vlen_dtype(hdset.dtype) is not None or hdset.dtype.kind == "O"
    fixed = not vlen
    if fixed and hdset.dtype.kind not in ("b",) and h5py.check_enum_dtype(hdset.dtype) is None:
        chk.ok(rdset.dtype == hdset.dtype, f"{where}: dtype {rdset.dtype} != {hdset.dtype}")
    # Whole dataset.
    chk.ok(same_values(rdset[()], local_all), f"{where}: whole dataset differs")
    if len(hdset.shape) == 0:
        return
    n = hdset.shape[0]
    # Simple slices.
    for a, b in [(0, min(n, 7)), (n // 3, n // 2), (max(n - 5, 0), n), (n, n)]:
        chk.ok(same_values(rdset[a:b], local_all[a:b]), f"{where}: slice {a}:{b} differs")
    if n > 0:
        chk.ok(same_values(rdset[n - 1], local_all[n - 1]), f"{where}: index -1 differs")
        chk.ok(same_values(rdset[-1], local_all[-1]), f"{where}: negative index differs")
    if len(hdset.shape) == 2 and hdset.shape[1] > 1 and n > 0:
        chk.ok(same_values(rdset[: min(n, 20), 1], local_all[: min(n, 20), 1]), f"{where}: column slice differs")
        chk.ok(same_values(rdset[2:9, 1:], local_all[2:9, 1:]), f"{where}: 2-d hyperslab differs")
    if not fixed or n < 4:
        return
    # Multi-slice request.
    cuts = sorted(set(int(x) for x in rng.integers(0, n, size=4)))
    if len(cuts) >= 2:
        keys = [np.s_[cuts[i]:cuts[i + 1]] for i in range(0, len(cuts) - 1, 2)]
        expected = np.concatenate([local_all[k] for k in keys])
        chk.ok(same_values(rdset.request_slices(keys), expected), f"{where}: request_slices {keys} differs")
        dest = np.empty(expected.shape, dtype=rdset.dtype)
        rdset.request_slices(keys, dest=dest)
        chk.ok(same_values(dest, expected), f"{where}: request_slices into dest differs")
    # Fancy indexing in the first dimension.
    for label, index in sample_indices(n, rng).items():
        chk.ok(same_values(rdset[index], local_all[index]), f"{where}: fancy index ({label}) differs")
    # read_direct: same dtype (streamed into the buffer), sub-selections, widening conversion.
    out = np.empty(hdset.shape, dtype=rdset.dtype)
    rdset.read_direct(out)
    chk.ok(same_values(out, local_all), f"{where}: read_direct differs")
    part = np.zeros(hdset.shape, dtype=rdset.dtype)
    a, b = n // 4, n // 2
    rdset.read_direct(part, np.s_[a:b], np.s_[a:b])
    chk.ok(same_values(part[a:b], local_all[a:b]), f"{where}: read_direct with selections differs")
    if rdset.dtype.kind in ("i", "u", "f") and rdset.dtype.itemsize < 8:
        wide = np.empty(hdset.shape, dtype=np.float64)
        rdset.read_direct(wide)
        chk.ok(np.array_equal(wide, local_all.astype(np.float64)), f"{where}: read_direct into f8 differs")


def compare_group(chk, rgroup, hgroup, where, rng):
    compare_attrs(chk, rgroup.attrs, hgroup.attrs, where)
    local_names = list(hgroup.keys())
    remote_names = list(rgroup.keys())
    chk.ok(sorted(remote_names) == sorted(local_names), f"{where}: members {remote_names} != {local_names}")
    for name in local_names:
        path = (where.rstrip("/") + "/" + name)
        link = hgroup.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            rlink = rgroup.get(name, getlink=True)
            chk.ok(isinstance(rlink, hdfstream.SoftLink) and rlink.path == link.path,
                   f"{path}: soft link {rlink!r} != {link.path}")
            continue
        hobj = hgroup[name]
        if isinstance(hobj, h5py.Group):
            if has_unsupported_member(hobj):
                chk.skip(f"{path}: holds compound/array datasets the Python client cannot open")
                continue
            robj = rgroup[name]
            chk.ok(isinstance(robj, hdfstream.RemoteGroup), f"{path}: expected a group, got {type(robj)}")
            compare_group(chk, robj, hobj, path, rng)
        else:
            robj = rgroup[name]
            chk.ok(isinstance(robj, hdfstream.RemoteDataset), f"{path}: expected a dataset, got {type(robj)}")
            compare_attrs(chk, robj.attrs, hobj.attrs, path)
            compare_dataset(chk, robj, hobj, path, rng)


def file_has_unsupported(hfile):
    """True when any group of the file holds a type the Python client cannot describe."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and has_unsupported_member(obj):
            found.append(name)

    hfile.visititems(visit)
    return bool(found) or has_unsupported_member(hfile)


def compare_file(chk, server, vpath, local_path, rng):
    with h5py.File(local_path, "r") as hfile:
        if has_unsupported_member(hfile):
            chk.skip(f"{vpath}: root holds compound/array datasets the Python client cannot open")
            return
        # The Python client unpacks every dataset of a deep expansion eagerly, so files with
        # compound/array datasets are read group by group (max_depth 0) and those groups skipped.
        depths = (0,) if file_has_unsupported(hfile) else (0, 5)
        # Everything fetched by slice requests (limit 0), and small datasets inlined (1 MiB).
        for depth in depths:
            for limit in (0, 1 << 20):
                rfile = hdfstream.open(server, vpath, max_depth=depth, data_size_limit=limit)
                chk.ok(rfile.is_hdf5(), f"{vpath}: not reported as HDF5")
                chk.ok(rfile.size == os.path.getsize(local_path), f"{vpath}: size {rfile.size}")
                compare_group(chk, rfile["/"], hfile["/"], f"{vpath}:/", rng)


def compare_tree(chk, server, root, skip):
    rng = np.random.default_rng(12345)
    rootdir = hdfstream.open(server, "/")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        vdir = "" if rel == "." else rel.replace(os.sep, "/")
        rdir = rootdir if vdir == "" else rootdir[vdir]
        chk.ok(sorted(rdir.directories.keys()) == sorted(dirnames),
               f"/{vdir}: subdirectories {sorted(rdir.directories.keys())} != {sorted(dirnames)}")
        chk.ok(sorted(rdir.files.keys()) == sorted(filenames),
               f"/{vdir}: files {sorted(rdir.files.keys())} != {sorted(filenames)}")
        total = 0
        for sub, _, files in os.walk(dirpath):
            total += sum(os.path.getsize(os.path.join(sub, f)) for f in files)
        chk.ok(rdir.size == total, f"/{vdir}: size {rdir.size} != {total}")
        for name in sorted(filenames):
            local = os.path.join(dirpath, name)
            vpath = f"{vdir}/{name}" if vdir else name
            rfile = rdir.files[name]
            chk.ok(rfile.size == os.path.getsize(local), f"{vpath}: listed size {rfile.size}")
            chk.ok(rfile.last_modified == int(os.stat(local).st_mtime * 1000),
                   f"{vpath}: last_modified {rfile.last_modified}")
            if name in skip:
                chk.skip(f"{vpath}: skipped on request")
                continue
            if h5py.is_hdf5(local):
                chk.ok(rdir.is_hdf5(name), f"{vpath}: is_hdf5 false")
                compare_file(chk, server, vpath, local, rng)
            else:
                with rfile.open("rb") as stream:
                    data = stream.read()
                with open(local, "rb") as stream:
                    chk.ok(data == stream.read(), f"{vpath}: downloaded bytes differ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080/hdfstream")
    parser.add_argument("--root", required=True, help="the directory the server serves")
    parser.add_argument("--skip", action="append", default=[], help="file name to leave out")
    args = parser.parse_args()
    hdfstream.disable_progress(True)
    chk = Checker()
    try:
        compare_tree(chk, args.server, args.root, set(args.skip))
    except Exception as exc:  # a crash is a failure with its reason, not a traceback only
        import traceback
        traceback.print_exc()
        chk.ok(False, f"exception: {exc!r}")
    for message in chk.messages:
        print(f"FAIL: {message}")
    print(f"compat: {chk.passed} passed, {chk.failed} failed, {chk.skipped} skipped")
    return 0 if chk.failed == 0 and chk.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
