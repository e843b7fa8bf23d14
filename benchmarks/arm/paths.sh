# Sourced by setup.sh and run.sh: where the arm64 root and the aarch64 wheels live.
# ARM_ROOT / ARM_SITE override them; relative paths are taken from the repo root.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$REPO/$1" ;; esac; }
ROOT=$(abspath "${ARM_ROOT:-build/arm/root}")
SITE=$(abspath "${ARM_SITE:-build/arm/site}")
