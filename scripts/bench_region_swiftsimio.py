#!/usr/bin/env python3
"""Region benchmark, swiftsimio side: time swiftsimio reading the gas particles of the cells
a box touches through the real Python hdfstream client on our server.

Usage: bench_region_swiftsimio.py BASE_URL VPATH x0:x1,y0:y1,z0:z1 REPEATS

Prints one JSON line: {"seconds": [...], "rows": N}. Each repeat opens the remote file
afresh, masks it (`sw.mask(remote)` + `constrain_spatial`) and reads Coordinates,
Velocities and Masses of PartType0 (`sw.load(remote, mask=...)`), which sends one
multi-slice request per dataset for the kept cells' rows.
"""

import json
import sys
import time
import warnings


def main():
    url, vpath, box, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    import hdfstream
    import swiftsimio as sw
    from swiftsimio.objects import cosmo_array

    bounds = [[float(v) for v in axis.split(":")] for axis in box.split(",")]
    times, rows = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # max_depth=1: the sample's compound group cannot be described by the client.
            remote = hdfstream.open(url, vpath, max_depth=1)
            mask = sw.mask(remote)
            size = mask.metadata.boxsize
            region = [
                cosmo_array(b, units=size.units, comoving=True,
                            scale_factor=mask.metadata.scale_factor, scale_exponent=1)
                for b in bounds
            ]
            mask.constrain_spatial(region)
            data = sw.load(remote, mask=mask)
            gas = data.gas
            arrays = [gas.coordinates, gas.velocities, gas.masses]
            rows = int(len(arrays[0]))
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": times, "rows": rows}))


if __name__ == "__main__":
    main()
