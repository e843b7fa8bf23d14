#!/usr/bin/env bash
# Run a Python script under user-mode emulated aarch64 (qemu-user, Cortex-A72) with the
# arm64 CPython 3.11 root and aarch64 wheels made by setup.sh:
#
#   benchmarks/arm/run.sh SCRIPT [ARGS...]
#
# PYTHONPATH is SITE (ai-edge-litert, numpy, flatbuffers) plus the repo root, so
# `import tflstm.runtime` uses the working tree, with the C hot path setup.sh cross-compiled.
# Host site-packages, user site and any host PYTHONPATH are not visible.
#
# Paths: qemu's -L prefix makes an absolute path that exists under ROOT (/usr/..., /etc/...,
# /proc/cpuinfo) resolve inside ROOT; all other paths (the repo, /tmp, ...) are the host's.
# Scripts cannot start further Python processes (no binfmt_misc for aarch64 here).
#
# Environment: ARM_ROOT, ARM_SITE as for setup.sh; ARM_CPU (default cortex-a72).
set -euo pipefail

# shellcheck source=benchmarks/arm/paths.sh
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"
CPU=${ARM_CPU:-cortex-a72}

die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

if (( $# < 1 )); then
    printf 'usage: %s SCRIPT [ARGS...]\n' "$0" >&2
    exit 2
fi
command -v qemu-aarch64-static >/dev/null \
    || die "qemu-aarch64-static not found: run benchmarks/arm/setup.sh first"
[[ -f "$ROOT/.tflstm-arm-root" && -x "$ROOT/usr/bin/python3.11" ]] \
    || die "no arm64 root at $ROOT: run benchmarks/arm/setup.sh first"
[[ -f "$SITE/.tflstm-arm-site" ]] \
    || die "no aarch64 wheels at $SITE: run benchmarks/arm/setup.sh first"

unset PYTHONHOME PYTHONSTARTUP
export PYTHONPATH="$SITE:$REPO"
export PYTHONNOUSERSITE=1
exec qemu-aarch64-static -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" "$@"
