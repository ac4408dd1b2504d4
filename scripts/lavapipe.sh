#!/usr/bin/env bash
# Runs one program against the private lavapipe sysroot (scripts/setup_lavapipe.sh): through the
# sysroot's own ld-linux with --library-path, so only this process sees trixie's glibc and the Vulkan
# loader, and with the loader pointed at lavapipe's ICD. Never exports LD_LIBRARY_PATH (bookworm
# programs it starts would load trixie's libc).
#
#   scripts/lavapipe.sh PROGRAM ARGS...    e.g. scripts/lavapipe.sh build/bin/tessera devices
#
# PROGRAM is an ELF executable, or a name in the sysroot's usr/bin (glslang, spirv-val, vulkaninfo).
# Exit 77 (skip) when the sysroot is not installed.
set -euo pipefail
SYSROOT="${TESSERA_LAVAPIPE_SYSROOT:-$(bash "$(dirname "$0")/setup_lavapipe.sh" --print)}"
LIB="$SYSROOT/usr/lib/x86_64-linux-gnu"
if [ ! -x "$LIB/ld-linux-x86-64.so.2" ] || [ ! -f "$SYSROOT/icd/lvp_icd.json" ]; then
  echo "lavapipe.sh: no lavapipe sysroot at $SYSROOT (run scripts/setup_lavapipe.sh)" >&2
  exit 77
fi
[ $# -ge 1 ] || { echo "usage: scripts/lavapipe.sh PROGRAM ARGS..." >&2; exit 2; }
prog="$1"; shift
if [[ "$prog" != */* ]]; then
  if [ -x "$SYSROOT/usr/bin/$prog" ]; then prog="$SYSROOT/usr/bin/$prog"; else prog="$(command -v "$prog")"; fi
fi
export VK_DRIVER_FILES="$SYSROOT/icd/lvp_icd.json" VK_ICD_FILENAMES="$SYSROOT/icd/lvp_icd.json"
export TESSERA_LAVAPIPE_SYSROOT="$SYSROOT"
exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB:$SYSROOT/lib/x86_64-linux-gnu" "$prog" "$@"
