#!/usr/bin/env bash
# One SQL query over a multi-file snapshot: in one process, and on a Ballista cluster of one
# executor, of two executors, and of two executors reading from two servers behind one address.
#
# usage: scripts/bench_cluster.sh [--rows N] [--files F] [--runs R] [--keep DIR] [--no-build]
#                                 [--bin PATH]
#
# Data: `hdfstream sample DIR --particles N --files F` (default 10^7 gas particles over 8
# files; about 170 MB per 10^6 particles), in a temporary directory removed at the end unless
# --keep DIR (reused from DIR when present).
#
# The query (a group-by over three columns of every gas particle):
#   SELECT "HaloID", count(*), sum(CAST("Masses" AS DOUBLE)), avg("Densities")
#   FROM read_hdfstream('<url>/snap_0000.*.hdf5', 'PartType0') GROUP BY "HaloID" ORDER BY "HaloID"
#
# Variants, each timed as the wall time of one `hdfstream sql` command (the client's start and
# planning included), interleaved, --runs times (default 3), median printed:
#   one process     `hdfstream sql URL QUERY`: DataFusion in the client's process, 2 partitions
#   1 executor      `hdfstream sql URL --cluster S1 QUERY`: scheduler + 1 executor (2 task slots)
#   2 executors     scheduler + 2 executors (1 task slot each: the same 2 slots, 2 processes)
#   2 exec, 2 srv   the 2 executors reading through nginx (round robin) from 2 `hdfstream serve`
#                   instances over the same directory (skipped, with a note, without nginx:
#                   `apt-get install nginx-light`)
# Bytes: what the server processes wrote (Δ wchar of /proc/PID/io: the responses), and what
# the executors wrote (shuffle files, Flight results, logs). Every variant's answer is checked
# equal to the one-process answer.
#
# This is a 2-core machine: every process shares the same 2 cores, so the point is the
# mechanism and its overhead, not a speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=10000000
FILES=8
RUNS=3
KEEP=""
BUILD=1
BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --files) FILES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --keep) KEEP="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin) BIN="$2"; BUILD=0; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench_cluster: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$ROWS" "$FILES" "$RUNS"; do
    case "$v" in ''|*[!0-9]*|0) echo "bench_cluster: --rows, --files and --runs take positive numbers" >&2; exit 2 ;; esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p hdfstream-cli
fi
BIN="${BIN:-$CARGO_TARGET_DIR/release/hdfstream}"
[ -x "$BIN" ] || { echo "bench_cluster: $BIN is missing (run without --no-build)" >&2; exit 3; }
"$BIN" cluster --help >/dev/null 2>&1 || { echo "bench_cluster: $BIN has no \`cluster\` command (build it with default features)" >&2; exit 3; }

WORK="$(mktemp -d /tmp/bench_cluster_run.XXXXXX)"
if [ -n "$KEEP" ]; then DATA="$KEEP"; mkdir -p "$DATA"; else DATA="$(mktemp -d /tmp/bench_cluster.XXXXXX)"; fi
DATA="$(cd "$DATA" && pwd)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
    if [ -z "$KEEP" ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Keep the binary measured, whatever is built elsewhere meanwhile.
cp "$BIN" "$WORK/hdfstream"
BIN="$WORK/hdfstream"

stamp="rows=$ROWS files=$FILES v1"
if [ "$(cat "$DATA/.bench_cluster" 2>/dev/null)" != "$stamp" ]; then
    echo "bench_cluster: writing $ROWS particles over $FILES files into $DATA" >&2
    rm -rf "$DATA"/snap_* "$DATA"/halos_*
    "$BIN" sample "$DATA" --particles "$ROWS" --files "$FILES" --seed 1 >/dev/null
    echo "$stamp" > "$DATA/.bench_cluster"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for i in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "bench_cluster: nothing listens on port $1" >&2; exit 3
}
start() { # start LOG ARGS...: a process of ours in the background; prints its pid
    local log="$1"; shift
    NO_COLOR=1 "$BIN" "$@" >"$log" 2>&1 &
    PIDS+=("$!")
    LAST_PID=$!
}

# --- Servers -----------------------------------------------------------------------------
PA=$(free_port); PB=$(free_port)
start "$WORK/serverA.log" serve "$DATA" --bind "127.0.0.1:$PA"; SA=$LAST_PID
start "$WORK/serverB.log" serve "$DATA" --bind "127.0.0.1:$PB"; SB=$LAST_PID
wait_port "$PA"; wait_port "$PB"
URL_A="http://127.0.0.1:$PA/hdfstream"
URL_LB=""
if command -v nginx >/dev/null 2>&1; then
    PN=$(free_port)
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    upstream hdfstream { server 127.0.0.1:$PA; server 127.0.0.1:$PB; keepalive 32; }
    server {
        listen 127.0.0.1:$PN;
        location / {
            proxy_pass http://hdfstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
    nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
    PIDS+=("$!")
    wait_port "$PN"
    URL_LB="http://127.0.0.1:$PN/hdfstream"
else
    echo "bench_cluster: no nginx: the two-server variant is skipped (apt-get install nginx-light)" >&2
fi

# --- Clusters ----------------------------------------------------------------------------
start_cluster() { # start_cluster NAME EXECUTORS VCORES: prints the scheduler's address
    local name="$1" n="$2" vcores="$3" port i
    port=$(free_port)
    start "$WORK/$name-scheduler.log" cluster scheduler --bind "127.0.0.1:$port"
    wait_port "$port"
    EXECUTOR_PIDS=()
    for i in $(seq 1 "$n"); do
        mkdir -p "$WORK/$name-work$i"
        start "$WORK/$name-executor$i.log" cluster executor --scheduler "127.0.0.1:$port" \
            --flight-port "$(free_port)" --grpc-port "$(free_port)" --vcores "$vcores" \
            --work-dir "$WORK/$name-work$i"
        EXECUTOR_PIDS+=("$LAST_PID")
    done
    for i in $(seq 1 300); do
        [ "$(grep -c 'Received register executor request' "$WORK/$name-scheduler.log" || true)" -ge "$n" ] && break
        sleep 0.1
    done
    CLUSTER_ADDR="127.0.0.1:$port"
}
start_cluster one 1 2; C1="$CLUSTER_ADDR"; E1=("${EXECUTOR_PIDS[@]}")
start_cluster two 2 1; C2="$CLUSTER_ADDR"; E2=("${EXECUTOR_PIDS[@]}")

QUERY="SELECT \"HaloID\", count(*) AS n, sum(CAST(\"Masses\" AS DOUBLE)) AS mass, avg(\"Densities\") AS density \
FROM read_hdfstream('snap_0000.*.hdf5', 'PartType0') GROUP BY \"HaloID\" ORDER BY \"HaloID\""

wchar() { local s=0 p; for p in "$@"; do s=$(( s + $(awk '/^wchar/ { print $2 }' "/proc/$p/io" 2>/dev/null || echo 0) )); done; echo "$s"; }

VARIANTS=("one process" "1 executor" "2 executors")
[ -n "$URL_LB" ] && VARIANTS+=("2 exec, 2 srv")
run_variant() { # run_variant NAME RUN: appends "name time server_bytes executor_bytes" to results
    local name="$1" run="$2" url args=() executors=() t0 t1 s0 s1 e0 e1 out
    case "$name" in
        "one process") url="$URL_A" ;;
        "1 executor") url="$URL_A"; args=(--cluster "$C1"); executors=("${E1[@]}") ;;
        "2 executors") url="$URL_A"; args=(--cluster "$C2"); executors=("${E2[@]}") ;;
        "2 exec, 2 srv") url="$URL_LB"; args=(--cluster "$C2"); executors=("${E2[@]}") ;;
    esac
    s0=$(wchar "$SA"); b0=$(wchar "$SB"); e0=$(wchar "${executors[@]}")
    t0=$(date +%s.%N)
    out=$("$BIN" sql "$url" "${args[@]}" --json "$QUERY")
    t1=$(date +%s.%N)
    s1=$(wchar "$SA"); b1=$(wchar "$SB"); e1=$(wchar "${executors[@]}")
    echo "$out" > "$WORK/answer-${name// /_}-$run.json"
    echo "$name|$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')|$(( s1 - s0 ))|$(( b1 - b0 ))|$(( e1 - e0 ))" >> "$WORK/results"
}
echo "bench_cluster: $ROWS rows over $FILES files; ${#VARIANTS[@]} variants x $RUNS runs" >&2
for run in $(seq 1 "$RUNS"); do
    for v in "${VARIANTS[@]}"; do run_variant "$v" "$run"; done
done

python3 - "$WORK" "$RUNS" "$ROWS" "$FILES" "${VARIANTS[@]}" <<'PYEOF'
import json, re, statistics, sys
from pathlib import Path
work, runs, rows, files, variants = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]

def scanned(log: Path) -> int:
    """Rows the executor's log says its scans read."""
    return sum(int(m.group(1)) for m in re.finditer(r"hdfstream distributed scan.* rows=(\d+)", log.read_text()))

def answer(name, run):
    data = json.loads((work / f"answer-{name.replace(' ', '_')}-{run}.json").read_text())
    return [(r["HaloID"], r["n"], r["mass"], r["density"]) for r in data]

base = answer(variants[0], 1)
for v in variants:
    for r in range(1, runs + 1):
        got = answer(v, r)
        ok = len(got) == len(base) and all(
            a[0] == b[0] and a[1] == b[1]
            and abs(a[2] - b[2]) <= 1e-9 * max(1.0, abs(b[2]))
            and abs(a[3] - b[3]) <= 1e-6 * max(1.0, abs(b[3]))
            for a, b in zip(got, base))
        if not ok:
            sys.exit(f"bench_cluster: the answer of {v!r} (run {r}) differs from the one-process answer")
res = {}
for line in (work / "results").read_text().splitlines():
    name, t, a, b, e = line.split("|")
    res.setdefault(name, []).append((float(t), int(a), int(b), int(e)))
med = {v: tuple(statistics.median(x[i] for x in res[v]) for i in range(4)) for v in variants}
t_local, t_one = med[variants[0]][0], med["1 executor"][0]
print(f"\n== {rows:,} rows over {files} files, {len(base)} groups; median of {runs} runs; every answer equal to the one-process answer")
print(f"{'variant':16} {'time s':>8} {'server A':>10} {'server B':>10} {'executors':>10} {'/ one process':>14} {'/ 1 executor':>13}")
for v in variants:
    t, a, b, e = med[v]
    print(f"{v:16} {t:>8.2f} {a / 1e6:>8.1f}MB {b / 1e6:>8.1f}MB {e / 1e6:>8.1f}MB {t / t_local:>14.2f} {t / t_one:>13.2f}")
print("time: wall time of the `hdfstream sql` command; server A/B: bytes the server processes wrote (responses); "
      "executors: bytes the executors wrote (shuffle, results, logs)")
two = [scanned(work / f"two-executor{i}.log") for i in (1, 2)]
n2 = sum(1 for v in variants if v.startswith("2 ")) * runs
print(f"rows scanned by the two executors of the 2-executor cluster over its {n2} queries: "
      f"{two[0]:,} and {two[1]:,} (together {sum(two):,} = {sum(two) / rows:g} x {rows:,})")
PYEOF
