#!/usr/bin/env bash
# Where negotiated response compression (`hdfstream serve --compress`) pays and where it
# costs, on loopback, in one run. For each column of a generated file
#   ParticleIDs  int64, ascending with gaps        (compressible)
#   Coordinates  float64, sorted along the column   (compressible)
#   Random       float64, uniform random            (incompressible)
# it measures
#   bytes on the wire for identity, zstd and gzip (curl with that Accept-Encoding);
#   `hdfstream get ... -o /dev/null` (release CLI) with zstd (default) and with
#   --no-compression, both against the same server started with --compress zstd,gzip;
#   the Python client (gzip: it asks for gzip, deflate) against that server and against one
#   without --compress (identity);
# medians of RUNS runs, with ratios against identity. The last columns estimate the transfer
# time of those bytes at 200 Mbit/s and 50 Mbit/s (bytes / bandwidth, no latency): compression
# pays where that saving exceeds the extra CPU time seen on loopback.
#
# Usage: scripts/bench_compression.sh [ROWS] [RUNS]   (default 10000000 rows, 5 runs; needs
# scripts/setup.sh run once for the Python venv). Other scripts may source the measurement:
# BENCH_COMPRESSION_URL=<base url of a --compress server> skips starting servers and the file
# (the file must then be served as compression.hdf5 under that URL).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
RUNS="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
PY="$VENV/bin/python"

cargo build --release -q -p hdfstream-cli --no-default-features
BIN="$CARGO_TARGET_DIR/release/hdfstream"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_server() { # $1: name, rest: extra options; prints the base URL
    local name="$1"; shift
    "$BIN" serve "$WORK/data" --bind 127.0.0.1:0 "$@" > "$WORK/$name.url" 2> "$WORK/$name.log" &
    PIDS+=($!)
    for _ in $(seq 200); do [ -s "$WORK/$name.url" ] && break; sleep 0.1; done
    head -n1 "$WORK/$name.url"
}

if [ -n "${BENCH_COMPRESSION_URL:-}" ]; then
    ZURL="$BENCH_COMPRESSION_URL"
    PURL=""
else
    mkdir -p "$WORK/data"
    "$PY" - "$WORK/data/compression.hdf5" "$ROWS" <<'EOF'
import sys, h5py, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
with h5py.File(path, "w") as f:
    # SWIFT-like IDs: ascending, with gaps.
    f["ParticleIDs"] = np.cumsum(rng.integers(1, 4, n, dtype=np.int64))
    f["Coordinates"] = np.sort(rng.random(n)) * 100.0
    f["Random"] = rng.random(n)
EOF
    ZURL="$(start_server compress --compress zstd,gzip)"
    PURL="$(start_server plain)"
fi

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
timed() { # runs "$@" RUNS times, prints the median wall time in seconds
    for _ in $(seq "$RUNS"); do
        local t0 t1
        t0=$(now); "$@" > /dev/null; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
    done | median
}
body() { "$PY" -c "import msgpack,sys; sys.stdout.buffer.write(msgpack.packb({'object': '/$1', 'slice': [[0, $ROWS]]}))"; }
wire() { # $1 column, $2 Accept-Encoding: bytes of the response body as sent
    curl -s -o /dev/null -w '%{size_download}' -X POST -H 'Content-Type: application/x-msgpack' \
        -H "Accept-Encoding: $2" --data-binary @"$WORK/$1.body" "$ZURL/msgpack/compression.hdf5"
}
rust_get() { "$BIN" get "$ZURL" compression.hdf5 "/$1" --format npy -o /dev/null --no-progress "${@:2}"; }
py_read() { # $1 URL, $2 column
    "$PY" -c "
import hdfstream; hdfstream.disable_progress(True)
f = hdfstream.open('$1', 'compression.hdf5', data_size_limit=0)
a = f['$2'][...]
assert a.size == $ROWS
"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
at_mbit() { awk -v b="$1" -v m="$2" 'BEGIN { printf "%.2f", b * 8 / (m * 1e6) }'; }

echo "rows: $ROWS per column, medians of $RUNS runs, loopback"
printf "%-12s %-26s %12s %6s %8s %6s %9s %9s\n" column client bytes ratio "time s" ratio "200Mb/s" "50Mb/s"
for col in ParticleIDs Coordinates Random; do
    body "$col" > "$WORK/$col.body"
    rust_get "$col" > /dev/null # warm the page cache and the server's file cache
    id_bytes=$(wire "$col" identity)
    z_bytes=$(wire "$col" zstd)
    g_bytes=$(wire "$col" gzip)
    t_id=$(timed rust_get "$col" --no-compression)
    t_z=$(timed rust_get "$col")
    row() { # label bytes time baseline-time (times are compared within one client)
        printf "%-12s %-26s %12s %6s %8s %6s %9s %9s\n" "$col" "$1" "$2" "$(ratio "$2" "$id_bytes")" \
            "$3" "$(ratio "$3" "$4")" "$(at_mbit "$2" 200)" "$(at_mbit "$2" 50)"
    }
    row "rust identity" "$id_bytes" "$t_id" "$t_id"
    row "rust zstd" "$z_bytes" "$t_z" "$t_id"
    if [ -n "$PURL" ]; then
        t_pid=$(timed py_read "$PURL" "$col")
        t_pg=$(timed py_read "$ZURL" "$col")
        row "python identity" "$id_bytes" "$t_pid" "$t_pid"
        row "python gzip" "$g_bytes" "$t_pg" "$t_pid"
        echo "RESULT compression column=$col identity_bytes=$id_bytes zstd_bytes=$z_bytes gzip_bytes=$g_bytes rust_identity_s=$t_id rust_zstd_s=$t_z python_identity_s=$t_pid python_gzip_s=$t_pg"
    else
        printf "%-12s %-26s %12s %6s\n" "$col" "gzip (bytes only)" "$g_bytes" "$(ratio "$g_bytes" "$id_bytes")"
        echo "RESULT compression column=$col identity_bytes=$id_bytes zstd_bytes=$z_bytes gzip_bytes=$g_bytes rust_identity_s=$t_id rust_zstd_s=$t_z"
    fi
done
