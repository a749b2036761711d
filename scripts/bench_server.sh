#!/usr/bin/env bash
# Server + client throughput on one large contiguous dataset, measured in one run:
#   curl   fetching the slice response (raw msgpack) to /dev/null   (baseline: server only)
#   curl   fetching it into memory (a file in /dev/shm, tmpfs)      (baseline for reads into memory)
#   hdfstream get --format npy -o /dev/null                          (server + Rust client decode)
#   read_column: Dataset::read::<f64>() into a fresh array           (the same, into memory)
# Into memory, the kernel must hand over 1 GiB of fresh zeroed pages, which /dev/null does not
# need: on a VM that costs as much as the transfer, so the read into memory is compared with
# curl into memory.
#   Python hdfstream client dset[...] into numpy                     (for comparison)
# Usage: scripts/bench_server.sh [GiB] [RUNS]   (default 1 GiB, 5 runs: medians; needs
# scripts/setup.sh run once). `get` streams the payload to the output as it arrives.
set -euo pipefail
cd "$(dirname "$0")/.."
GIB="${1:-1}"
RUNS="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
PY="$VENV/bin/python"

cargo build --release -q -p hdfstream-cli --no-default-features
cargo build --release -q -p hdfstream-reliability --bin read_column
BIN="$CARGO_TARGET_DIR/release/hdfstream"
READ="$CARGO_TARGET_DIR/release/read_column"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

N=$(( GIB * 1024 * 1024 * 1024 / 8 ))
"$PY" - "$WORK/big.hdf5" "$N" <<'EOF'
import sys, h5py, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "w") as f:
    d = f.create_dataset("data", shape=(n,), dtype="<f8")  # contiguous layout
    step = 1 << 24
    rng = np.random.default_rng(1)
    for i in range(0, n, step):
        d[i:i + step] = rng.random(min(step, n - i))
EOF
"$PY" -c "import msgpack,sys; sys.stdout.buffer.write(msgpack.packb({'object': '/data', 'slice': [[0, $N]]}))" > "$WORK/body"

"$BIN" serve "$WORK" --bind 127.0.0.1:0 > "$WORK/url" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
URL="$(head -n1 "$WORK/url")"
BYTES=$(( N * 8 ))
# Warm the page cache and the server's file cache once.
curl -s -o /dev/null -X POST -H 'Content-Type: application/x-msgpack' --data-binary @"$WORK/body" "$URL/msgpack/big.hdf5"

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$WORK/curl.t"; : > "$WORK/shm.t"; : > "$WORK/rust.t"; : > "$WORK/mem.t"; : > "$WORK/py.t"
SHM="$(mktemp -d /dev/shm/bench_server.XXXXXX)"
trap 'cleanup; rm -rf "$SHM"' EXIT
for _ in $(seq "$RUNS"); do
    # Interleaved, so that a noisy moment hits every contender alike.
    t0=$(now)
    curl -s -o /dev/null -X POST -H 'Content-Type: application/x-msgpack' --data-binary @"$WORK/body" "$URL/msgpack/big.hdf5"
    t1=$(now); elapsed "$t0" "$t1" >> "$WORK/curl.t"; echo >> "$WORK/curl.t"

    t0=$(now)
    curl -s -o "$SHM/body" -X POST -H 'Content-Type: application/x-msgpack' --data-binary @"$WORK/body" "$URL/msgpack/big.hdf5"
    t1=$(now); elapsed "$t0" "$t1" >> "$WORK/shm.t"; echo >> "$WORK/shm.t"
    rm -f "$SHM/body"

    t0=$(now)
    "$BIN" get "$URL" big.hdf5 /data --format npy -o /dev/null --no-progress
    t1=$(now); elapsed "$t0" "$t1" >> "$WORK/rust.t"; echo >> "$WORK/rust.t"

    t0=$(now)
    count=$("$READ" "$URL" big.hdf5 /data | cut -d' ' -f1)
    t1=$(now); elapsed "$t0" "$t1" >> "$WORK/mem.t"; echo >> "$WORK/mem.t"
    [ "$count" = "$N" ] || { echo "read_column read $count elements, not $N" >&2; exit 1; }

    t0=$(now)
    "$PY" -c "
import hdfstream; hdfstream.disable_progress(True)
f = hdfstream.open('$URL', 'big.hdf5', data_size_limit=0)
a = f['data'][...]
assert a.size == $N
"
    t1=$(now); elapsed "$t0" "$t1" >> "$WORK/py.t"; echo >> "$WORK/py.t"
done
curl_s=$(grep . "$WORK/curl.t" | median)
shm_s=$(grep . "$WORK/shm.t" | median)
rust_s=$(grep . "$WORK/rust.t" | median)
mem_s=$(grep . "$WORK/mem.t" | median)
py_s=$(grep . "$WORK/py.t" | median)

echo "medians of $RUNS runs"
echo "dataset: $BYTES bytes of <f8 (contiguous)"
printf "%-28s %8s s %8s MB/s\n" "curl (raw response)" "$curl_s" "$(mbps "$BYTES" "$curl_s")"
printf "%-28s %8s s %8s MB/s\n" "curl into memory (tmpfs)" "$shm_s" "$(mbps "$BYTES" "$shm_s")"
printf "%-28s %8s s %8s MB/s\n" "hdfstream get (Rust client)" "$rust_s" "$(mbps "$BYTES" "$rust_s")"
printf "%-28s %8s s %8s MB/s\n" "Rust read into memory" "$mem_s" "$(mbps "$BYTES" "$mem_s")"
printf "%-28s %8s s %8s MB/s\n" "Python hdfstream client" "$py_s" "$(mbps "$BYTES" "$py_s")"
# Ratios per round (each contender against its baseline of the same round), then their median:
# a noisy moment then moves both sides of a ratio alike.
ratio() { paste "$1" "$2" | awk 'NF == 2 && $2 > 0 { printf "%.4f\n", $1 / $2 }' | median; }
get_r=$(ratio <(grep . "$WORK/curl.t") <(grep . "$WORK/rust.t"))
mem_r=$(ratio <(grep . "$WORK/shm.t") <(grep . "$WORK/mem.t"))
pyget_r=$(ratio <(grep . "$WORK/py.t") <(grep . "$WORK/rust.t"))
pymem_r=$(ratio <(grep . "$WORK/py.t") <(grep . "$WORK/mem.t"))
printf "rate Rust/curl (median of per-round ratios): get %.2f (both to /dev/null), into memory %.2f (against curl into memory)\n" "$get_r" "$mem_r"
printf "speed-up over the Python client: get %.2f, into memory %.2f\n" "$pyget_r" "$pymem_r"
