#!/usr/bin/env bash
# Parquet export benchmark, everything measured in one run against the same local server:
#   hdfstream export (Rust, streaming)           time and peak RSS
#   Python hdfstream client -> numpy -> pyarrow  time and peak RSS (the baseline)
# plus the bounded-memory check: the Rust export of 1/4 of the rows and of all rows with the
# same batch size must have about the same peak RSS.
# Table: ROWS rows (default 10^7) x 5 columns (Coordinates f8[3], Velocities f4[3], Masses f4,
# ParticleIDs u8, HaloID i8) split over 2 files, exported through a glob.
# Usage: scripts/bench_export.sh [ROWS]   (needs scripts/setup.sh run once: h5py, pyarrow)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
BATCH=131072
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
PY="$VENV/bin/python"

cargo build --release -q -p hdfstream-cli
BIN="$CARGO_TARGET_DIR/release/hdfstream"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$PY" - "$WORK" "$ROWS" <<'EOF'
import sys, h5py, numpy as np
work, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(3)
half = rows // 2
for i, (start, n) in enumerate([(0, half), (half, rows - half)]):
    with h5py.File(f"{work}/snap_0000.{i}.hdf5", "w") as f:
        g = f.create_group("PartType1")
        d = g.create_dataset("Coordinates", data=rng.random((n, 3)) * 25.0)
        d.attrs["CGSConversionFactor"] = 3.085678e24
        g.create_dataset("Velocities", data=rng.standard_normal((n, 3)).astype("f4"))
        g.create_dataset("Masses", data=rng.random(n).astype("f4"))
        g.create_dataset("ParticleIDs", data=np.arange(start, start + n, dtype="u8"))
        g.create_dataset("HaloID", data=rng.integers(-1, 1000, n, dtype="i8"))
EOF

"$BIN" serve "$WORK" --bind 127.0.0.1:0 > "$WORK/url" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
URL="$(head -n1 "$WORK/url")"
COLS=Coordinates,Velocities,Masses,ParticleIDs,HaloID
cat "$WORK"/snap_0000.*.hdf5 > /dev/null   # warm the page cache

# Runs a command under /usr/bin/time; prints "seconds peak_rss_kib".
measure() {
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/cmd.err" \
        || { cat "$WORK/cmd.err" >&2; exit 1; }
    cat "$WORK/time"
}

read -r rust_s rust_kib < <(measure "$BIN" export "$URL" 'snap_0000.*.hdf5' /PartType1 \
    -o "$WORK/rust.parquet" --columns "$COLS" --batch-size "$BATCH" --no-progress)
read -r quarter_s quarter_kib < <(measure "$BIN" export "$URL" 'snap_0000.*.hdf5' /PartType1 \
    -o "$WORK/quarter.parquet" --columns "$COLS" --rows "0:$((ROWS / 4))" --batch-size "$BATCH" --no-progress)
# The same pair with glibc's dynamic mmap threshold and per-thread arenas switched off, which
# separates what the pipeline holds from heap fragmentation (and 256k-row row groups).
read -r _ fq_kib < <(measure env MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072 "$BIN" export "$URL" 'snap_0000.*.hdf5' /PartType1 \
    -o "$WORK/q2.parquet" --columns "$COLS" --rows "0:$((ROWS / 4))" --batch-size "$BATCH" \
    --row-group-size 262144 --no-progress)
read -r _ ff_kib < <(measure env MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072 "$BIN" export "$URL" 'snap_0000.*.hdf5' /PartType1 \
    -o "$WORK/f2.parquet" --columns "$COLS" --batch-size "$BATCH" --row-group-size 262144 --no-progress)

cat > "$WORK/py_export.py" <<'EOF'
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
import hdfstream
hdfstream.disable_progress(True)
url, out = sys.argv[1], sys.argv[2]
cols = ["Coordinates", "Velocities", "Masses", "ParticleIDs", "HaloID"]
parts = {c: [] for c in cols}
for i in range(2):
    f = hdfstream.open(url, f"snap_0000.{i}.hdf5", data_size_limit=0)
    for c in cols:
        parts[c].append(f["PartType1"][c][...])
arrays = []
for c in cols:
    a = np.concatenate(parts[c])
    if a.ndim == 2:
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1]))
    else:
        arrays.append(pa.array(a))
pq.write_table(pa.table(arrays, names=cols), out, compression="zstd")
EOF
read -r py_s py_kib < <(measure "$PY" "$WORK/py_export.py" "$URL" "$WORK/py.parquet")

# Both files must hold the same rows.
"$PY" - "$WORK/rust.parquet" "$WORK/py.parquet" "$ROWS" <<'EOF'
import sys, pyarrow as pa, pyarrow.parquet as pq
r, p, rows = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2]), int(sys.argv[3])
assert r.num_rows == p.num_rows == rows, (r.num_rows, p.num_rows, rows)
def flat(col):
    a = col.combine_chunks()
    return a.flatten() if pa.types.is_fixed_size_list(a.type) else a
for c in p.column_names:
    assert flat(r.column(c)).equals(flat(p.column(c))), c
assert r.schema.field("Coordinates").metadata[b"CGSConversionFactor"] == b"3.085678e24"
EOF

size() { stat -c %s "$1"; }
awk -v rows="$ROWS" -v rs="$rust_s" -v rk="$rust_kib" -v qs="$quarter_s" -v qk="$quarter_kib" \
    -v ps="$py_s" -v pk="$py_kib" -v rb="$(size "$WORK/rust.parquet")" -v pb="$(size "$WORK/py.parquet")" \
    -v batch="$BATCH" -v fq="$fq_kib" -v ff="$ff_kib" 'BEGIN {
    printf "export of %d rows x 5 columns (2 files, glob), batch %d rows, zstd\n", rows, batch
    printf "  %-34s %8.2f s  peak RSS %7.1f MiB  file %7.1f MiB\n", "hdfstream export (Rust)", rs, rk/1024, rb/1048576
    printf "  %-34s %8.2f s  peak RSS %7.1f MiB  file %7.1f MiB\n", "Python client + numpy + pyarrow", ps, pk/1024, pb/1048576
    printf "  ratios Python/Rust: time %.2fx, peak RSS %.2fx\n", ps/rs, pk/rk
    printf "bounded memory: peak RSS %.1f MiB for %d rows vs %.1f MiB for %d rows (ratio %.2f)\n", qk/1024, rows/4, rk/1024, rows, rk/qk
    printf "  same, fixed malloc + 256k-row row groups: %.1f MiB vs %.1f MiB (ratio %.2f)\n", fq/1024, ff/1024, ff/fq
}'
