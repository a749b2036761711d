#!/usr/bin/env bash
# A newcomer's first hour on a fresh Debian 12: a minimal root made by debootstrap, with empty
# apt, cargo, pip and target caches, where only README's commands are run, each timed.
#
#   sudo scripts/fresh_machine.sh [ROOT] [STEP...]
#
# ROOT defaults to /work/fresh-debian. STEPs (default all): setup, quickstart, test. The
# clone is taken from this repository's HEAD. Times go to ROOT/root/walkthrough.log.
#
# The root gets the machine's network setup (resolv.conf, extra CA certificates and the TLS
# variables that point at them), as a fresh machine on the same network has it. Everything
# else (Debian packages, rustup and the toolchain, crates, the Python venv) is downloaded
# inside the root. Only where static.rust-lang.org cannot be reached is the host's stable
# toolchain bound read-only into the root instead (scripts/setup.sh then finds a cargo >= its
# minimum and skips rustup).
set -euo pipefail
ROOT=${1:-/work/fresh-debian}
shift || true
STEPS=${*:-setup quickstart test}
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh_machine: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

if [ ! -x "$ROOT/bin/bash" ]; then
    echo "fresh_machine: debootstrap bookworm into $ROOT"
    # git and ca-certificates: what anyone who clones a repository has; sudo for setup.sh's
    # non-root branch. Nothing else: setup.sh must install the rest.
    debootstrap --variant=minbase --include=ca-certificates,git,sudo,procps,curl \
        bookworm "$ROOT" http://deb.debian.org/debian
fi

mounted=()
bind() { # SRC DST [ro]
    mkdir -p "$2"
    mountpoint -q "$2" || { mount --bind "$1" "$2"; mounted+=("$2"); }
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || { mount -t proc proc "$ROOT/proc"; mounted+=("$ROOT/proc"); }
bind /dev "$ROOT/dev"
bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The machine's own network setup, as a fresh machine of this kind has it: its extra CA
# certificates (an egress proxy's, say) and the variables that point TLS clients at them.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
fi
TLS_ENV=()
for v in SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE; do
    if [ -n "${!v:-}" ]; then TLS_ENV+=("$v=${!v}"); fi
done

TOOLCHAIN_PATH=""
if ! curl -sSf -m 10 -o /dev/null https://static.rust-lang.org/rustup/release-stable.toml 2>/dev/null; then
    host_tc=$(dirname "$(dirname "$(rustup which cargo --toolchain stable)")")
    bind "$host_tc" "$ROOT/opt/rust" ro
    TOOLCHAIN_PATH=/opt/rust/bin:
    echo "fresh_machine: no rustup downloads here; the host's $(rustc +stable --version) is bound at /opt/rust"
fi

# The shared fixtures beside the clone, as beside CI's clone (tests that need them skip without).
if [ -d "$REPO/../shared" ]; then bind "$REPO/../shared" "$ROOT/root/shared" ro; fi
bind "$REPO" "$ROOT/mnt/repo" ro
if [ ! -d "$ROOT/root/hdfstream/.git" ]; then
    chroot "$ROOT" git clone -q /mnt/repo /root/hdfstream
else
    chroot "$ROOT" git -C /root/hdfstream pull -q --ff-only
fi
echo "fresh_machine: at $(chroot "$ROOT" git -C /root/hdfstream log --oneline -1)"

run() { # NAME COMMAND: runs in the root as a login shell of root, timed into the log
    local name=$1
    shift
    echo "fresh_machine: $name: $*" | tee -a "$ROOT/root/walkthrough.log"
    local t0=$SECONDS
    chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${TLS_ENV[@]}" \
        PATH="$TOOLCHAIN_PATH/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        bash -c "cd /root/hdfstream && $*" 2>&1 | tee "$ROOT/root/$name.out" | tail -n 25
    local rc=${PIPESTATUS[0]}
    echo "fresh_machine: $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$ROOT/root/walkthrough.log"
    return "$rc"
}

# The commands are taken from README.md itself, so the walkthrough follows what it says.
readme_cmd() { # the first line after "```sh" that follows the heading $1
    awk -v h="$1" '$0 == h {f = 1} f && /^```sh/ {getline; print; exit}' "$REPO/README.md"
}
for step in $STEPS; do
    case $step in
    setup) run setup "$(readme_cmd '## Prerequisites')" ;;
    quickstart)
        run fetch "cargo fetch -q"
        run quickstart "$(readme_cmd '## Quickstart')"
        ;;
    test) run test "$(readme_cmd '## Tests')" ;;
    *) echo "fresh_machine: unknown step $step" >&2; exit 2 ;;
    esac
done
cat "$ROOT/root/walkthrough.log"
