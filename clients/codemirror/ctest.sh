#!/usr/bin/env bash
# ctest entry for clients/codemirror:
#   ctest.sh unit                                      type check + vitest unit tests
#   ctest.sh e2e NAME TESSERA MODEL OUTDIR [args...]   the playground in headless chromium (e2e/playground.e2e.mjs)
# Exit 77 (ctest: skipped) with the reason when node or the npm packages (scripts/setup.sh) are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=$1
shift
name=codemirror_$mode
if [ "$mode" = e2e ]; then name=codemirror_e2e_$1; fi
command -v node >/dev/null || { echo "SKIP $name: node is not installed (scripts/setup.sh installs it)"; exit 77; }
[ -d "$here/node_modules" ] || { echo "SKIP $name: clients/codemirror/node_modules is missing (scripts/setup.sh runs npm ci)"; exit 77; }
case $mode in
  unit) cd "$here" && npx --no-install tsc --noEmit -p . && exec npx --no-install vitest run ;;
  e2e) exec node "$here/e2e/playground.e2e.mjs" --name "$1" --tessera "$2" --model "$3" --out "$4" "${@:5}" ;;
  *) echo "ctest.sh: unknown mode $mode" >&2; exit 2 ;;
esac
