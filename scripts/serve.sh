#!/usr/bin/env bash
# README command (1): install what is missing, build, and start Tessera on the embedded default model.
# Until the HTTP server lands, this runs the engine on the default model (a real generation).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
MODEL="${TESSERA_MODEL:-tests/golden/models/tiny-q8_0.gguf}"
exec build/bin/tessera run -m "$MODEL" -p "${TESSERA_PROMPT:-<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>}" -n 32 "$@"
