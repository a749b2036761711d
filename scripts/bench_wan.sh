#!/usr/bin/env bash
# Our Rust client against the Python `hdfstream` client over an emulated wide-area link.
#
# usage: scripts/bench_wan.sh [--profiles campus,national,intercontinental] [--runs N] [--quick]
#                             [--keep DIR] [--link netem|tun] [--no-build] [--compress]
#                             [--only schema,ls,column,slices,slices1,rows,region,scan16,lookups,lookups_cli]
#                             [--show-requests] [--bin-dir DIR]
#
# The script makes two network namespaces of its own, runs the release server
# (`hdfstream serve`) in one and the clients in the other, and shapes the link between them:
#   campus            1 Gbit/s,  RTT   2 ms
#   national        200 Mbit/s,  RTT  20 ms
#   intercontinental 50 Mbit/s,  RTT 150 ms
# (rate limits each direction; each direction gets half the RTT as delay). The addresses,
# 169.254.77.1 (server) and 169.254.77.2 (clients), are link-local and exist only inside
# the two namespaces, which have no other interface and no route: nothing leaves them.
#
# --link netem (default): a veth pair with `tc qdisc netem delay RTT/2 rate R` on both ends.
#   Needs root, iproute2 and the kernel's sch_netem; without them the script says so and
#   exits non-zero before touching anything.
# --link tun: for kernels without sch_netem. A TUN device in each namespace and a user-space
#   forwarder between them (`reliability/src/bin/wan_link.rs`, MTU 9000) that applies the
#   same model: serialisation at the rate, then the one-way delay, tail drop beyond one
#   bandwidth-delay product of queue.
#
# Data (in /tmp, removed at the end unless --keep DIR, reused from DIR when present):
# `hdfstream sample` with 10^7 gas particles in one file (10^6 with --quick), a 16-file
# snapshot (2*10^6 particles; 1.6*10^5 with --quick), a directory of 1000 small files (hard
# links of one) and 78 halo catalogues (hard links of one of 2^18 halos, 20 MB, whose
# datasets exceed the clients' 1 MiB inline limit).
#
# For each profile the operations of scripts/bench_wan_client.py run with both clients,
# interleaved, --runs times (default 3); it prints one table per profile: median time,
# requests (the server's request log), sequential round trips (longest chain of requests
# each starting at least half an RTT after the previous one ended, from the same log) and
# bytes on the wire (rx + tx of the client's interface), with the ratios Rust/Python.
# The 78-file lookups run on our side as one table (`wan_lookups --table`: the Arrow table
# core, 8 files' metadata and 8 one-row reads in flight) and as the plain per-file loop
# ("Rust loop"), whose values the tool checks against the table's once per profile. The
# 16-file scan runs as the CLI's Parquet export ("Rust") and as an in-memory read through the
# Arrow table core (`wan_scan`, "Rust scan"), whose column sums are checked against the Python
# client's once per profile.
# --only KEYS runs only these operations (keys as in the usage line; --quick makes the data
# smaller: 10^6 rows in the one-file column). --show-requests prints the server's log of
# each operation's first run (start, duration, request).
#
# --bin-dir DIR takes hdfstream, wan_lookups, wan_scan and wan_link from DIR instead of building them.
# Beware: when worktrees share one CARGO_TARGET_DIR, release/hdfstream is whatever checkout
# built last, and cargo may judge another checkout's newer build fresh for this one (it
# compares mtimes); `touch` this checkout's sources before building, or use --bin-dir.
#
# --compress: if the server has a `--compress` option, both clients' operations run a second
# time against a server started with `--compress zstd,gzip`: our client gets zstd (rows
# "Rust+zstd"), the Python client, which asks for gzip, gets gzip (rows "Python+gzip", and a
# last column with each Rust row's speed-up over them); otherwise it says so.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

PROFILES="campus,national,intercontinental"
RUNS=3
QUICK=0
KEEP=""
LINK="netem"
BUILD=1
COMPRESS=0
BIN_DIR=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --profiles) PROFILES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --keep) KEEP="$2"; shift 2 ;;
        --link) LINK="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin-dir) BIN_DIR="$2"; BUILD=0; shift 2 ;;
        --compress) COMPRESS=1; shift ;;
        --only) EXTRA+=(--only "$2"); shift 2 ;;
        --show-requests) EXTRA+=(--show-requests); shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench_wan: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench_wan: --runs takes a positive number" >&2; exit 2 ;; esac
for p in ${PROFILES//,/ }; do
    case "$p" in campus|national|intercontinental) ;;
        *) echo "bench_wan: unknown profile $p (campus, national, intercontinental)" >&2; exit 2 ;;
    esac
done

die() { echo "bench_wan: $*" >&2; exit 3; }

# --- What the machine must offer; nothing is changed before these pass. ---------------------
[ "$(id -u)" = 0 ] || die "needs root (network namespaces and tc); nothing was changed"
command -v ip >/dev/null && command -v tc >/dev/null \
    || die "needs iproute2 (ip, tc): apt-get install iproute2; nothing was changed"
ip netns list >/dev/null 2>&1 || die "\`ip netns\` does not work here (no network namespaces?); nothing was changed"
case "$LINK" in
    netem)
        if [ -r /proc/config.gz ] && ! zgrep -qE '^CONFIG_NET_SCH_NETEM=(y|m)' /proc/config.gz; then
            die "this kernel ($(uname -r)) has no sch_netem (CONFIG_NET_SCH_NETEM is not set), so tc netem cannot delay packets; nothing was changed. --link tun emulates the same link in user space."
        fi
        if [ ! -r /proc/config.gz ] && [ ! -d /sys/module/sch_netem ] && ! modinfo sch_netem >/dev/null 2>&1; then
            die "sch_netem is neither loaded nor available as a module (modprobe sch_netem); nothing was changed. --link tun emulates the same link in user space."
        fi
        ;;
    tun)
        [ -c /dev/net/tun ] || die "--link tun needs /dev/net/tun; nothing was changed"
        ;;
    *) echo "bench_wan: --link is netem or tun" >&2; exit 2 ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || die "no Python venv at $VENV (scripts/setup.sh makes it)"
"$PY" -c "import hdfstream, numpy" 2>/dev/null || die "the venv at $VENV lacks the hdfstream client (scripts/setup.sh)"
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p hdfstream-cli --no-default-features
    cargo build --release -q -p hdfstream-reliability --bin wan_lookups --bin wan_scan --bin wan_link
fi
BIN_DIR="${BIN_DIR:-$CARGO_TARGET_DIR/release}"
BIN="$BIN_DIR/hdfstream"
LOOKUPS="$BIN_DIR/wan_lookups"
SCAN="$BIN_DIR/wan_scan"
WANLINK="$BIN_DIR/wan_link"
for b in "$BIN" "$LOOKUPS" "$SCAN" "$WANLINK"; do [ -x "$b" ] || die "$b is missing (run without --no-build)"; done

# --- Data --------------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then BIG=1000000; MULTI=160000; else BIG=10000000; MULTI=2000000; fi
if [ -n "$KEEP" ]; then DATA="$KEEP"; mkdir -p "$DATA"; else DATA="$(mktemp -d /tmp/bench_wan.XXXXXX)"; fi
DATA="$(cd "$DATA" && pwd)"
SUFFIX="$$"
NS_S="hsw-srv-$SUFFIX"
NS_C="hsw-cli-$SUFFIX"
DEV="hswan0"
SRV_IP=169.254.77.1
CLI_IP=169.254.77.2
SERVER_PIDS=()
LINK_PID=""
WORK="$(mktemp -d /tmp/bench_wan_run.XXXXXX)"

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    SERVER_PIDS=()
}
stop_link() {
    if [ -n "$LINK_PID" ]; then kill "$LINK_PID" 2>/dev/null || true; wait "$LINK_PID" 2>/dev/null || true; fi
    LINK_PID=""
}
cleanup() {
    stop_servers
    stop_link
    ip netns del "$NS_S" 2>/dev/null || true
    ip netns del "$NS_C" 2>/dev/null || true
    rm -rf "$WORK"
    if [ -z "$KEEP" ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The target directory may be shared: keep copies of the binaries measured, so a build
# elsewhere during the run cannot swap them.
mkdir -p "$WORK/bin"
cp "$BIN" "$LOOKUPS" "$SCAN" "$WANLINK" "$WORK/bin/"
BIN="$WORK/bin/hdfstream"; LOOKUPS="$WORK/bin/wan_lookups"; SCAN="$WORK/bin/wan_scan"; WANLINK="$WORK/bin/wan_link"

stamp="big=$BIG multi=$MULTI v3"
if [ "$(cat "$DATA/.bench_wan" 2>/dev/null)" != "$stamp" ]; then
    need=$(( BIG / 1000000 * 170 + MULTI / 1000000 * 170 + 200 ))
    avail=$(df -Pm "$DATA" | awk 'NR == 2 { print $4 }')
    [ "$avail" -gt $(( need + 2000 )) ] || die "about $need MB of data needed, $avail MB free in $DATA"
    echo "bench_wan: writing the data into $DATA (about $need MB)" >&2
    rm -rf "$DATA/big" "$DATA/multi" "$DATA/dir1000" "$DATA/cat78"
    "$BIN" sample "$DATA/big" --particles "$BIG" --seed 1 >/dev/null 2>&1
    "$BIN" sample "$DATA/multi" --particles "$MULTI" --files 16 --seed 2 >/dev/null 2>&1
    # The Python client cannot decode compound or array types (the sample keeps them in
    # Extra/Structured), and it would meet them opening a file with its default depth.
    "$PY" - "$DATA"/big/snap_0000.hdf5 "$DATA"/multi/snap_0000.*.hdf5 <<'PYEOF'
import sys, h5py
for path in sys.argv[1:]:
    with h5py.File(path, "a") as f:
        if "Extra/Structured" in f:
            del f["Extra/Structured"]
PYEOF
    mkdir -p "$DATA/dir1000" "$DATA/cat78"
    for i in $(seq -w 0 999); do ln "$DATA/multi/halos_0000.hdf5" "$DATA/dir1000/halos_$i.hdf5"; done
    # A catalogue like a halo finder's: datasets over the clients' 1 MiB inline limit, so
    # opening a file brings its metadata and a lookup reads one row.
    "$PY" - "$DATA/cat78/halos_00.hdf5" <<'PYEOF'
import sys, h5py, numpy as np
n, rng = 1 << 18, np.random.default_rng(3)
with h5py.File(sys.argv[1], "w") as f:
    f.create_group("Header").attrs["NumHalos"] = n
    g = f.create_group("Halos")
    g["ID"] = np.arange(n, dtype=np.int64)
    g["Mass"] = rng.lognormal(25.0, 2.0, n)
    g["Centre"] = rng.random((n, 3)) * 25.0
    g["Velocity"] = rng.normal(0.0, 200.0, (n, 3)).astype(np.float32)
    g["Radius"] = rng.random(n)
    g["NumParticles"] = rng.integers(20, 10**6, n)
    for name in g:
        g[name].attrs["Description"] = f"halo {name}"
PYEOF
    for i in $(seq -w 1 77); do ln "$DATA/cat78/halos_00.hdf5" "$DATA/cat78/halos_$i.hdf5"; done
    echo "$stamp" > "$DATA/.bench_wan"
fi

# --- The namespaces and the link ---------------------------------------------------------------
ip netns add "$NS_S"
ip netns add "$NS_C"
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
if [ "$LINK" = netem ]; then
    ip link add "$DEV" netns "$NS_S" type veth peer name "$DEV" netns "$NS_C"
    ip -n "$NS_S" addr add "$SRV_IP/30" dev "$DEV"
    ip -n "$NS_C" addr add "$CLI_IP/30" dev "$DEV"
    ip -n "$NS_S" link set "$DEV" up
    ip -n "$NS_C" link set "$DEV" up
fi

# shape PROFILE: set the link to the profile (netem: qdiscs on both ends; tun: a new forwarder).
shape() {
    local rate delay
    case "$1" in
        campus) rate=1000; delay=1 ;;
        national) rate=200; delay=10 ;;
        intercontinental) rate=50; delay=75 ;;
    esac
    if [ "$LINK" = netem ]; then
        # Queue of about one bandwidth-delay product (at least 100 packets).
        local limit=$(( rate * 1000000 / 8 * delay * 2 / 1000 / 1500 ))
        [ "$limit" -ge 100 ] || limit=100
        for ns in "$NS_S" "$NS_C"; do
            ip netns exec "$ns" tc qdisc replace dev "$DEV" root netem delay "${delay}ms" rate "${rate}mbit" limit "$limit" \
                || die "tc netem failed in namespace $ns"
        done
    else
        stop_link
        "$WANLINK" "$NS_S" "$NS_C" "$DEV" "$delay" "$rate" 9000 > "$WORK/link.out" 2> "$WORK/link.err" &
        LINK_PID=$!
        for _ in $(seq 100); do grep -q ready "$WORK/link.out" 2>/dev/null && break; sleep 0.05; done
        grep -q ready "$WORK/link.out" || die "wan_link did not start: $(cat "$WORK/link.err")"
        ip -n "$NS_S" link set "$DEV" mtu 9000 up
        ip -n "$NS_C" link set "$DEV" mtu 9000 up
        ip -n "$NS_S" addr add "$SRV_IP" peer "$CLI_IP" dev "$DEV"
        ip -n "$NS_C" addr add "$CLI_IP" peer "$SRV_IP" dev "$DEV"
    fi
    RATE_MBIT=$rate
    RTT_MS=$(( delay * 2 ))
}

# start_server PORT [EXTRA...]: a release server in the server namespace, its request log
# appended to $WORK/server.log; sets URL.
start_server() {
    local port="$1"; shift
    : > "$WORK/url"
    NO_COLOR=1 HDFSTREAM_LOG="warn,hdfstream_server=info" ip netns exec "$NS_S" \
        "$BIN" serve "$DATA" --bind "$SRV_IP:$port" "$@" > "$WORK/url" 2>> "$WORK/server.log" &
    SERVER_PIDS+=($!)
    for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
    [ -s "$WORK/url" ] || die "the server did not start: $(tail -n 5 "$WORK/server.log")"
    URL="$(head -n1 "$WORK/url")"
}

COMPRESS_ARGS=()
if [ "$COMPRESS" = 1 ]; then
    if "$BIN" serve --help | grep -q -- '--compress'; then
        COMPRESS_ARGS=(--compress zstd,gzip)
    else
        echo "bench_wan: this server has no --compress option yet; the compressed variant is left out" >&2
        COMPRESS=0
    fi
fi

echo "bench_wan: link $LINK ($( [ "$LINK" = netem ] && echo "tc netem on a veth pair" || echo "user-space TUN forwarder, MTU 9000")), $RUNS runs per operation, data $( [ "$QUICK" = 1 ] && echo quick || echo full ): $BIG-row file, 16 files of $MULTI rows in all"
for profile in ${PROFILES//,/ }; do
    shape "$profile"
    : > "$WORK/server.log"
    start_server 8080
    variants=(--variant "plain=$URL")
    if [ "$COMPRESS" = 1 ]; then
        start_server 8081 "${COMPRESS_ARGS[@]}"
        variants+=(--variant "zstd=$URL" --py-variant "gzip=$URL")
    fi
    ip netns exec "$NS_C" "$PY" "$REPO/scripts/bench_wan_client.py" \
        --profile "$profile" --rtt-ms "$RTT_MS" --rate-mbit "$RATE_MBIT" --link "$LINK" \
        --runs "$RUNS" --data "$DATA" --iface "$DEV" --server-log "$WORK/server.log" \
        --bin "$BIN" --lookups-bin "$LOOKUPS" --scan-bin "$SCAN" --work "$WORK" "${variants[@]}" "${EXTRA[@]}"
    stop_servers
done
