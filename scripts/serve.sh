#!/usr/bin/env bash
# README command (1): install what is missing (apt, venv, the real models), build, and start
# `tessera serve` on the embedded default model, Qwen2.5-Coder-0.5B-Instruct (a real coding model,
# fetched by setup). TESSERA_MODEL=path.gguf serves another model; TESSERA_PORT moves the port
# (default 8083); extra arguments go to `tessera serve` (e.g. --host 0.0.0.0 --api-key KEY).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
MODEL="${TESSERA_MODEL:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
PORT="${TESSERA_PORT:-8083}"
if [ ! -f "$MODEL" ]; then
  echo "serve: $MODEL is missing; run 'bash scripts/setup.sh' (it fetches the default model) or set TESSERA_MODEL" >&2
  exit 1
fi
cat >&2 <<MSG
serve: starting Tessera on $MODEL at http://127.0.0.1:$PORT (Ctrl-C stops it). Try:
  curl -s http://localhost:$PORT/v1/completions -H "Content-Type: application/json" -d '{"language": "python", "segments": {"prefix": "def fibonacci(n):\\n    ", "suffix": ""}}'
MSG
exec build/bin/tessera serve -m "$MODEL" --port "$PORT" "$@"
