#!/usr/bin/env bash
# Builds the `hdfstream` command with libhdf5 compiled from source (feature `hdf5-static`),
# checks that the binary links no libhdf5 shared library, that it writes a sample, serves it
# and reads back what h5py (over the system libhdf5) reads from the same file, and runs the
# server's HDF5-layer tests against the bundled libhdf5.
#
#   scripts/check_hdf5_static.sh            # debug build, without the `sql` feature
#   HDFSTREAM_STATIC_PROFILE=release scripts/check_hdf5_static.sh
#
# Needs a C compiler and CMake >= 3.26 (HDF5 2.2's minimum). Debian 12 ships 3.25, so when the
# `cmake` on PATH is older the script installs one from PyPI into ~/.cache/hdfstream-cmake.
# Prints the build time. `cargo install --path cli --features hdf5-static` is the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
profile="${HDFSTREAM_STATIC_PROFILE:-dev}"
venv="$HOME/.cache/hdfstream-venv"

cmake_ok() {
    command -v cmake >/dev/null &&
        cmake --version | awk 'NR == 1 { split($3, v, "."); exit !(v[1] > 3 || (v[1] == 3 && v[2] >= 26)) }'
}
if ! cmake_ok; then
    echo "== CMake >= 3.26 not on PATH: installing it from PyPI into ~/.cache/hdfstream-cmake"
    python3 -m venv "$HOME/.cache/hdfstream-cmake"
    "$HOME/.cache/hdfstream-cmake/bin/pip" install --quiet 'cmake>=3.26,<5'
    export PATH="$HOME/.cache/hdfstream-cmake/bin:$PATH"
fi
cmake --version | head -1

echo "== cargo build --profile $profile -p hdfstream-cli --no-default-features --features hdf5-static"
start=$(date +%s)
cargo build --profile "$profile" -p hdfstream-cli --no-default-features --features hdf5-static
echo "build: $(($(date +%s) - start)) s"
dir=debug
[ "$profile" = dev ] || dir="$profile"
bin="$CARGO_TARGET_DIR/$dir/hdfstream"

echo "== linked libraries of $bin"
if ldd "$bin" | grep -i hdf5; then
    echo "FAIL: the binary links a shared libhdf5" >&2
    exit 1
fi
echo "no shared libhdf5"

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" sample "$work/data" --particles 20000 --files 2 >/dev/null
"$bin" serve "$work/data" --bind 127.0.0.1:0 >"$work/url" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    [ -s "$work/url" ] && break
    sleep 0.1
done
url=$(head -1 "$work/url")
[ -n "$url" ] || { cat "$work/serve.log" >&2; echo "FAIL: the server did not start" >&2; exit 1; }
echo "serving at $url"

# gzip-chunked (Temperatures), plain (Masses) and 2-D (Coordinates) datasets against h5py.
for obj in /PartType0/Temperatures /PartType0/Masses /PartType0/Coordinates; do
    "$bin" get "$url" snap_0000.0.hdf5 "$obj" --json --no-progress >"$work/got.json"
    "$venv/bin/python" - "$work/data/snap_0000.0.hdf5" "$obj" "$work/got.json" <<'EOF'
import json, sys
import h5py, numpy as np
path, obj, got = sys.argv[1:]
want = h5py.File(path, "r")[obj][...]
got = json.load(open(got))
values = np.array(got["values"], dtype=want.dtype).reshape(got["shape"])
assert list(want.shape) == got["shape"], (want.shape, got["shape"])
assert np.array_equal(values, want), obj
print(f"{obj}: {want.size} values equal h5py's")
EOF
done

# The HDF5 layer's tests (chunk decoding outside libhdf5, user blocks, every filter
# combination) against the bundled libhdf5 itself.
echo "== cargo test -p hdfstream-server --features hdf5-static (HDF5 layer tests)"
cargo test --profile "$profile" -p hdfstream-server --features hdf5-static \
    --test hdf5_chunked --test hdf5_layer
echo "OK: the hdf5-static build needs no libhdf5 package and reads what h5py reads"
