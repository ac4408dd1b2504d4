#!/usr/bin/env bash
# README command (1): install what is missing, build, make the embedded demo model (once), and start
# Tessera on it. Until the HTTP server lands this runs the engine on the model: a real generation
# (tokenizer, MoE forward pass, sampling) with a FIM prompt. TESSERA_MODEL=path.gguf runs another model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
DEMO=models/demo-qwen3moe.gguf
if [ -z "${TESSERA_MODEL:-}" ] && [ ! -f "$DEMO" ]; then
  mkdir -p models
  echo "serve: making the random-weight demo model $DEMO (tessera mkmodel, a few seconds)"
  build/bin/tessera mkmodel --preset tiny --layers 4 --type Q4_K_M --seed 1 --quiet \
    --tokenizer-from tests/golden/models/vocab-qwen3.gguf --out "$DEMO"
fi
MODEL="${TESSERA_MODEL:-$DEMO}"
PROMPT="${TESSERA_PROMPT:-$(printf '<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>')}"
exec build/bin/tessera run -m "$MODEL" -p "$PROMPT" -n 32 "$@"
