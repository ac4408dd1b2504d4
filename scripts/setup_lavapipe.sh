#!/usr/bin/env bash
# Installs the private Vulkan sysroot the Vulkan backend's tests run on: Mesa 26.1.6 lavapipe from
# trixie-backports (it exposes VK_KHR_cooperative_matrix; it needs glibc 2.38, so it cannot be installed
# into bookworm), the Vulkan loader, headers, vulkaninfo, glslang 15 and spirv-tools from trixie, each
# unpacked with `dpkg -x` into SYSROOT. Nothing is installed into the system; apt runs with a private
# configuration (sources, state, cache under SYSROOT/../apt). Idempotent: a stamp with the package list
# makes a second run a no-op. Called by scripts/setup.sh; a user with a real GPU needs none of it.
#
#   scripts/setup_lavapipe.sh            install when missing
#   scripts/setup_lavapipe.sh --print    print the sysroot path (what scripts/lavapipe.sh and cmake use)
#   scripts/setup_lavapipe.sh --force    reinstall
#
# TESSERA_LAVAPIPE moves the folder (default ~/.cache/tessera/lavapipe, shared by every clone).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT="${TESSERA_LAVAPIPE:-${TESSERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}/lavapipe}"
SYSROOT="$ROOT/sysroot"
APTDIR="$ROOT/apt"
MESA_VERSION=26.1.6
# Packages and the suite each comes from; their dependencies are resolved against trixie by apt.
PACKAGES=(mesa-vulkan-drivers/trixie-backports libvulkan1 libvulkan-dev vulkan-tools glslang-tools spirv-tools)
STAMP="$ROOT/.installed"
WANT="mesa=$MESA_VERSION ${PACKAGES[*]}"

if [ "${1:-}" = "--print" ]; then echo "$SYSROOT"; exit 0; fi
if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -f "$SYSROOT/icd/lvp_icd.json" ]; then
  exit 0
fi

start=$(date +%s)
echo "setup_lavapipe: installing Mesa $MESA_VERSION lavapipe, glslang and spirv-tools into $SYSROOT"
uri=$(grep -h -m1 -E '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null \
      | grep -v security | head -n1 | awk '{print $2}' || true)
uri=${uri:-http://deb.debian.org/debian}

rm -rf "$APTDIR" "$SYSROOT.new"
mkdir -p "$APTDIR"/{etc/apt.conf.d,etc/sources.list.d,etc/preferences.d,state/lists/partial,cache/archives/partial}
touch "$APTDIR/state/status"  # empty: apt downloads the whole dependency closure (glibc 2.38 included)
printf 'Types: deb\nURIs: %s\nSuites: trixie trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$uri" > "$APTDIR/etc/sources.list.d/trixie.sources"
cat > "$APTDIR/apt.conf" <<EOF
Dir::Etc "$APTDIR/etc";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$APTDIR/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$APTDIR/etc/preferences.d";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Get::Download-Only "true";
Debug::NoLocking "true";
APT::Sandbox::User "root";
EOF
export APT_CONFIG="$APTDIR/apt.conf"
apt-get -qq update
apt-get -qq -y install "${PACKAGES[@]}" >/dev/null

mkdir -p "$SYSROOT.new"
debs=("$APTDIR"/cache/archives/*.deb)
for d in "${debs[@]}"; do dpkg -x "$d" "$SYSROOT.new"; done
mb=$(du -cm "${debs[@]}" | tail -n1 | cut -f1)
rm -rf "$APTDIR/cache/archives"/*.deb

LIB="$SYSROOT/usr/lib/x86_64-linux-gnu"
[ -f "$SYSROOT.new/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ] || { echo "setup_lavapipe: no libvulkan_lvp.so" >&2; exit 1; }
# dpkg -x leaves an absolute-symlink or usrmerge layout; the loader lives in usr/lib either way.
got=$(ls "$SYSROOT.new"/usr/share/doc/mesa-vulkan-drivers/changelog.Debian.gz >/dev/null 2>&1 &&
      zcat "$SYSROOT.new"/usr/share/doc/mesa-vulkan-drivers/changelog.Debian.gz | head -n1 || true)
case "$got" in *"$MESA_VERSION"*) ;; *) echo "setup_lavapipe: expected Mesa $MESA_VERSION, got: $got" >&2; exit 1 ;; esac
mkdir -p "$SYSROOT.new/icd"
printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s/libvulkan_lvp.so", "api_version": "1.4.0"}}\n' \
  "$LIB" > "$SYSROOT.new/icd/lvp_icd.json"
rm -rf "$SYSROOT"
mv "$SYSROOT.new" "$SYSROOT"
# The extension and its properties, checked by a probe (lavapipe without it fails silently).
cc -O1 -I"$SYSROOT/usr/include" scripts/lavapipe_probe.c -o "$ROOT/probe" -ldl
if ! out=$(bash scripts/lavapipe.sh "$ROOT/probe" 2>&1); then
  echo "$out" >&2; echo "setup_lavapipe: the sysroot's lavapipe lacks VK_KHR_cooperative_matrix" >&2; exit 1
fi
echo "$WANT" > "$STAMP"
echo "$out" | sed "s/^/setup_lavapipe: /"
echo "setup_lavapipe: ok (${#debs[@]} packages, ${mb} MB downloaded, $(($(date +%s) - start)) s)"
