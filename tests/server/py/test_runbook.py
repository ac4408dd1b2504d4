#!/usr/bin/env python3
"""The four curl commands of the users' runbook (issue 11, Acceptance), run with curl itself against
`tessera serve` on port 8083 (another free port, substituted into the commands, when 8083 is taken).
On the real default model when models/ has it, else on the tiny random-weight fixture (structure only)."""
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RUNBOOK = [
    """curl -s http://localhost:8083/v1/completions -H "Content-Type: application/json" -d '{"language": "python", "segments": {"prefix": "def fibonacci(n):\\n    ", "suffix": ""}}'""",
    """curl -s http://localhost:8083/v1/health""",
    """curl -s http://localhost:8083/completion -H "Content-Type: application/json" -d '{"prompt": "def fibonacci(n):", "n_predict": 50}'""",
    """curl -s http://localhost:8083/health""",
]
SERVER = None
REAL = False


def port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def setup_suite():
    global SERVER, REAL
    if shutil.which("curl") is None:
        h.skip("curl is not installed (scripts/setup.sh installs it)")
    REAL = h.have_real_model()
    model = h.real_model() if REAL else h.tiny_model()
    if not REAL:
        print(f"note: {h.real_model_path()} not found; the runbook runs on the tiny random-weight model")
    port = 8083 if port_free(8083) else 0
    if port == 0:
        print("note: port 8083 is taken; the commands run against a free port instead")
    SERVER = h.Server(model, name="runbook", port=port).start()


def teardown_suite():
    if SERVER is not None and SERVER.alive():
        SERVER.stop()


def curl(i):
    cmd = RUNBOOK[i].replace("localhost:8083", f"localhost:{SERVER.port}")
    argv = shlex.split(cmd)
    # -s as written; add -w to learn the status code without changing what the command prints.
    p = subprocess.run(argv + ["-w", "\n%{http_code}"], capture_output=True, timeout=300)
    assert p.returncode == 0, f"{cmd}: curl exit {p.returncode} {p.stderr!r}"
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body.decode("utf-8")


def test_tabby_completion():
    code, body = curl(0)
    assert code == 200, (code, body)
    obj = json.loads(body)
    assert obj["id"].startswith("cmpl-"), obj
    assert isinstance(obj["choices"], list) and len(obj["choices"]) == 1, obj
    ch = obj["choices"][0]
    assert ch["index"] == 0 and isinstance(ch["text"], str), obj
    if REAL:  # Tabby's default temperature (0.1) samples: test_real_fim.py checks greedy output with ast
        assert ch["text"].strip(), f"empty completion from the real model: {obj}"
    print(f"    text: {ch['text']!r}")


def test_tabby_health():
    code, body = curl(1)
    assert code == 200, (code, body)
    obj = json.loads(body)
    assert isinstance(obj, dict) and obj.get("model"), obj
    for key in ("device", "arch", "cpu_info", "cpu_count", "version"):
        assert key in obj, f"Tabby health lacks {key}: {obj}"


def test_llama_completion():
    code, body = curl(2)
    assert code == 200, (code, body)
    obj = json.loads(body)
    assert isinstance(obj["content"], str), obj
    assert obj.get("stop_type") in ("eos", "limit", "word", "none"), obj
    assert isinstance(obj.get("tokens_cached"), int), obj
    t = obj["timings"]
    for key in ("prompt_n", "cache_n", "prompt_ms", "predicted_n", "predicted_ms"):
        assert key in t, f"timings lacks {key}: {obj}"
    assert 0 < t["predicted_n"] <= 50, t
    if t["predicted_n"] < 50:
        assert obj["stop_type"] in ("eos", "word"), obj
    else:
        assert obj["stop_type"] == "limit", obj
    assert t["prompt_n"] + t["cache_n"] >= 4, t  # "def fibonacci(n):" is 5 tokens for Qwen
    if REAL:
        assert obj["content"].strip(), obj
    print(f"    content: {obj['content'][:120]!r}")


def test_llama_health_exact():
    code, body = curl(3)
    assert code == 200, (code, body)
    assert json.loads(body) == {"status": "ok"}, body
    assert body.strip() == '{"status":"ok"}', f"not byte-exact: {body!r}"


def test_replica_header():
    r = SERVER.get("/health")
    assert r.header("X-Tessera-Replica") == "runbook", r.headers


if __name__ == "__main__":
    sys.exit(h.main(globals(), __doc__))
