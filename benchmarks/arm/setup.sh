#!/usr/bin/env bash
# Build an emulated aarch64 CPython 3.11 environment for the TensorFlow-free runtime.
#
#   benchmarks/arm/setup.sh            # then: benchmarks/arm/run.sh SCRIPT [ARGS...]
#
# What it does (from Debian packages and PyPI only, no manual steps):
#   1. apt-get installs qemu-user-static, debootstrap, gcc-aarch64-linux-gnu and
#      libc6-dev-arm64-cross if they are missing (needs root).
#   2. ROOT: `debootstrap --arch=arm64 --foreign --variant=minbase` of Debian bookworm, with
#      python3.11, its headers and libstdc++6 added to the download set (--include); the foreign stage
#      does not unpack those, so their arm64 debs are unpacked with `dpkg-deb -x`. Then the
#      ELF interpreter path /lib/ld-linux-aarch64.so.1 is checked and ROOT/proc (a symlink to
#      the host's /proc after the foreign stage) becomes a directory holding an aarch64-style
#      `cpuinfo`: qemu-user would otherwise serve the host's x86 /proc/cpuinfo and LiteRT's
#      FULLY_CONNECTED (XNNPACK) segfaults.
#   3. SITE: aarch64 cp311 wheels of ai-edge-litert, numpy, flatbuffers (and their
#      dependencies) installed from x86-64 with `pip install --platform ... --target SITE`.
#   4. The C hot path (tflstm/runtime/_hotpath.c) cross-compiled with aarch64-linux-gnu-gcc
#      against ROOT's Python headers, next to its source as `pip install -e .` on a board
#      would put it (git ignores it; x86-64 Pythons do not load it). Every run: it follows
#      the source.
#
# Idempotent: stamp files (ROOT/.tflstm-arm-root, SITE/.tflstm-arm-site) record finished
# steps and what they were built from; a re-run only checks them (under a second). A ROOT
# or SITE left half-built by an interrupted run is rebuilt; changing ARM_WHEELS rebuilds
# SITE only. Only directories carrying this script's marker (.tflstm-arm-owned) or empty
# ones are ever deleted.
#
# Environment (all optional):
#   ARM_ROOT     arm64 root        (default build/arm/root; relative paths are taken from the repo root)
#   ARM_SITE     aarch64 wheels    (default build/arm/site; same)
#   ARM_MIRROR   Debian mirror     (default http://deb.debian.org/debian)
#   ARM_WHEELS   pip requirements  (default "ai-edge-litert==2.3.0 numpy==2.4.6 flatbuffers==25.12.19 absl-py==2.5.1")
#   ARM_PIP      pip command       (default REPO/.venv/bin/pip, else "python3.11 -m pip")
set -euo pipefail

# shellcheck source=benchmarks/arm/paths.sh
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
SUITE=bookworm
MIRROR=${ARM_MIRROR:-http://deb.debian.org/debian}
WHEELS=${ARM_WHEELS:-ai-edge-litert==2.3.0 numpy==2.4.6 flatbuffers==25.12.19 absl-py==2.5.1}
PLATFORMS=(--platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64
           --platform manylinux2014_aarch64)
if [[ -n "${ARM_PIP:-}" ]]; then
    read -r -a PIP <<<"$ARM_PIP"
elif [[ -x "$REPO/.venv/bin/pip" ]]; then
    PIP=("$REPO/.venv/bin/pip")
else
    PIP=(python3.11 -m pip)
fi

# arm64 packages unpacked into ROOT: the interpreter, its stdlib and the shared libraries
# they (and the ai-edge-litert / numpy extension modules) link against. debootstrap resolves
# them from python3.11 + libstdc++6; the C runtime ones are also unpacked by the foreign
# stage already (unpacking them again is harmless).
DEBS=(
    python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
    media-types readline-common
    libc6 libgcc-s1 libstdc++6 libcrypt1 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0
    liblzma5 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1 libdb5.3
    libnsl2 libtirpc3 libtirpc-common libgssapi-krb5-2 libkrb5-3 libk5crypto3
    libkrb5support0 libkeyutils1 libcom-err2
    libpython3.11-dev
)
INCLUDE=python3.11,libstdc++6,libpython3.11-dev

ROOT_STAMP="$ROOT/.tflstm-arm-root"
SITE_STAMP="$SITE/.tflstm-arm-site"
ROOT_STAMP_TEXT="debootstrap arm64 $SUITE minbase +$INCLUDE; debs: ${DEBS[*]}; cpuinfo v1"
SITE_STAMP_TEXT="cp311 ${PLATFORMS[*]} $WHEELS"

LOG=$(mktemp /tmp/tflstm-arm-setup.XXXXXX.log)
say() { printf '[arm-setup] %s\n' "$*"; }
die() { printf '[arm-setup] error: %s\n' "$*" >&2; exit 1; }
on_exit() {
    local rc=$?
    if (( rc != 0 )) && [[ -s "$LOG" ]]; then
        printf '[arm-setup] failed (exit %d); last lines of %s:\n' "$rc" "$LOG" >&2
        tail -n 25 "$LOG" >&2
    else
        rm -f "$LOG"
    fi
}
trap on_exit EXIT
# Run a command with its output going to the log only.
quiet() { "$@" >>"$LOG" 2>&1; }

stamp_ok() { [[ -f "$1" ]] && [[ "$(cat "$1")" == "$2" ]]; }

# ROOT and SITE get an ownership marker as soon as they are created. A directory without
# a matching stamp is partial or outdated and is rebuilt, but only if it carries the
# marker (or is empty): never wipe an unrelated directory given through ARM_ROOT/ARM_SITE.
OWNED=.tflstm-arm-owned
fresh_dir() {
    local dir=$1
    if [[ -e "$dir" || -L "$dir" ]]; then
        if [[ -d "$dir" && ! -L "$dir" && ( -z "$(ls -A "$dir")" || -e "$dir/$OWNED" ) ]]; then
            rm -rf -- "$dir"
        else
            die "$dir exists and was not made by this script; remove it or set another path"
        fi
    fi
    mkdir -p "$dir"
    : >"$dir/$OWNED"
}

qemu_python() {
    PYTHONNOUSERSITE=1 PYTHONPATH="${1:-}" \
        qemu-aarch64-static -cpu cortex-a72 -L "$ROOT" "$ROOT/usr/bin/python3.11" "${@:2}"
}

# --- 1. host tools -------------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in qemu-user-static debootstrap gcc-aarch64-linux-gnu libc6-dev-arm64-cross; do have_pkg "$p" || missing+=("$p"); done
if (( ${#missing[@]} )); then
    (( EUID == 0 )) || die "need root to apt-get install ${missing[*]}"
    say "apt-get install ${missing[*]}"
    quiet apt-get update
    DEBIAN_FRONTEND=noninteractive quiet apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v qemu-aarch64-static >/dev/null || die "qemu-aarch64-static not found after install"

# --- 2. arm64 root --------------------------------------------------------------------
if stamp_ok "$ROOT_STAMP" "$ROOT_STAMP_TEXT"; then
    say "arm64 root ok: $ROOT"
else
    (( EUID == 0 )) || die "need root to debootstrap $ROOT"
    fresh_dir "$ROOT"
    say "debootstrap --foreign arm64 $SUITE into $ROOT (about 30 s)"
    quiet debootstrap --arch=arm64 --foreign --variant=minbase --include="$INCLUDE" \
        "$SUITE" "$ROOT" "$MIRROR"

    # Where the foreign stage put each package's .deb ("name path" lines).
    declare -A DEB_PATH=()
    while read -r name path; do
        DEB_PATH[$name]=$path
    done <"$ROOT/debootstrap/debpaths"
    need=()
    for p in "${DEBS[@]}"; do [[ -n "${DEB_PATH[$p]:-}" ]] || need+=("$p"); done
    if (( ${#need[@]} )); then
        # Not expected with --include above. Fallback: the host's apt for arm64 (this adds
        # arm64 as a foreign architecture of the host's dpkg, which stays added).
        say "apt-get download ${need[*]} (arm64)"
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            quiet dpkg --add-architecture arm64
        fi
        quiet apt-get update
        archives="$ROOT/var/cache/apt/archives"
        for p in "${need[@]}"; do
            (cd "$archives" && quiet apt-get download "$p:arm64")
            deb=$(ls -t "$archives/${p}_"*_{arm64,all}.deb 2>/dev/null | head -n 1 || true)
            [[ -n "$deb" ]] || die "apt-get download $p:arm64 gave no .deb"
            DEB_PATH[$p]=${deb#"$ROOT"}
        done
    fi

    say "unpacking ${#DEBS[@]} arm64 debs (python3.11 and its libraries)"
    for p in "${DEBS[@]}"; do
        quiet dpkg-deb -x "$ROOT${DEB_PATH[$p]}" "$ROOT"
    done

    # The ELF interpreter path of aarch64 binaries. bookworm is merged-/usr (ROOT/lib is a
    # relative symlink to usr/lib) and libc6 ships the link, but check and repair it: a
    # link like ../usr/lib/... placed through the lib -> usr/lib symlink would dangle.
    ld=lib/ld-linux-aarch64.so.1
    if [[ ! -e "$ROOT/$ld" ]]; then
        if [[ -L "$ROOT/lib" ]]; then
            ln -sfn aarch64-linux-gnu/ld-linux-aarch64.so.1 "$ROOT/usr/lib/ld-linux-aarch64.so.1"
        else
            ln -sfn ../usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 "$ROOT/$ld"
        fi
    fi
    [[ -e "$ROOT/$ld" ]] || die "$ROOT/$ld is missing"

    # ROOT/proc: a directory with an aarch64 cpuinfo (qemu's -L prefix serves it; every
    # other /proc path falls through to the host's). One block per possible host CPU so
    # the count agrees with /sys/devices/system/cpu. Cortex-A72 features, as qemu emulates.
    if [[ -L "$ROOT/proc" ]]; then rm -f -- "$ROOT/proc"; fi
    mkdir -p "$ROOT/proc"
    ncpu=$(nproc --all)
    {
        for ((i = 0; i < ncpu; i++)); do
            printf 'processor\t: %d\n' "$i"
            printf 'BogoMIPS\t: 100.00\n'
            printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n'
            printf 'CPU implementer\t: 0x41\n'
            printf 'CPU architecture: 8\n'
            printf 'CPU variant\t: 0x0\n'
            printf 'CPU part\t: 0xd08\n'
            printf 'CPU revision\t: 3\n\n'
        done
    } >"$ROOT/proc/cpuinfo"

    say "checking python3.11 under qemu-aarch64"
    got=$(qemu_python "" -c 'import platform, sys, ssl, sqlite3, ctypes, json, zlib, bz2, lzma
print(platform.machine(), sys.version.split()[0])') || die "python3.11 does not start under qemu"
    [[ "$got" == aarch64\ 3.11.* ]] || die "unexpected interpreter: $got"
    say "python $got"
    printf '%s\n' "$ROOT_STAMP_TEXT" >"$ROOT_STAMP"
fi

# --- 3. aarch64 wheels ----------------------------------------------------------------
if stamp_ok "$SITE_STAMP" "$SITE_STAMP_TEXT"; then
    say "aarch64 wheels ok: $SITE"
else
    fresh_dir "$SITE"
    say "pip install aarch64 cp311 wheels into $SITE: $WHEELS"
    # shellcheck disable=SC2086  # WHEELS is a space-separated requirement list
    quiet "${PIP[@]}" install --disable-pip-version-check --no-input \
        "${PLATFORMS[@]}" --python-version 3.11 --only-binary=:all: --target "$SITE" $WHEELS
    say "checking the wheels under qemu-aarch64"
    qemu_python "$SITE" -c 'import numpy, flatbuffers
from ai_edge_litert.interpreter import Interpreter' >>"$LOG" 2>&1 \
        || die "the aarch64 wheels do not import under qemu"
    installed=$(cd "$SITE" && ls -d ./*.dist-info | sed 's|^\./||; s|\.dist-info$||' | tr '\n' ' ')
    say "installed: $installed"
    printf '%s\n' "$SITE_STAMP_TEXT" >"$SITE_STAMP"
fi

# --- 4. the C hot path -----------------------------------------------------------------
EXT="$REPO/tflstm/runtime/_hotpath.cpython-311-aarch64-linux-gnu.so"
say "cross-compiling the C hot path into $EXT"
quiet aarch64-linux-gnu-gcc -shared -fPIC -O2 -Wall -Werror -idirafter "$ROOT/usr/include" \
    -I"$ROOT/usr/include/python3.11" "$REPO/tflstm/runtime/_hotpath.c" -o "$EXT"
qemu_python "$SITE:$REPO" -c 'from tflstm.runtime.executor import NATIVE
assert NATIVE is not None, "not loaded"' >>"$LOG" 2>&1 || die "the C hot path does not load under qemu"

say "done; run scripts with: $HERE/run.sh SCRIPT [ARGS...]"
