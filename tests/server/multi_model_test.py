#!/usr/bin/env python3
"""Several models in one `tessera serve` (issue 15), driven through the official openai client.

One server on CPU with three models from a --config file: the real Qwen2.5-Coder-0.5B (default),
the real SmolLM2-135M (llama) and a random-weight qwen3moe made by `tessera mkmodel`, each with its
own context, KV budget (kv-mem), parallel sequences and output cap. Checks:
  - routing: each answer's `model` is the one asked for; an unknown name is 404 not_found_error
    listing the names; llama.cpp's /completion without `model` runs on the default;
  - caps: max_tokens beyond a model's cap (and an absent one) is clipped to it (ignore_eos);
  - per-model metrics: generation and token counters labelled {model="NAME"} match the answers;
  - /v1/models lists all three, /props shows the memory plan;
  - an over-budget plan (--mem-limit 64M) is refused at start-up with the table, exit code 1;
  - isolation: one model's queue saturated by long streams (more than its parallel slots) leaves
    another model's time to first token within a generous bound of its idle figure (printed), and
    closing those streams frees the saturated model.

usage: multi_model_test.py --tessera BIN --source-dir DIR
Exit 77 (skipped, saying why) without the real models or the openai package.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
QWEN = "models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SMOL = "models/smollm2-135m-instruct-q4_1.gguf"
CAPS = {"coder": 48, "smol": 16, "tiny": 400}


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def http(base, method, path, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(base):
    status, text = http(base, "GET", "/metrics")
    assert status == 200, text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class Server:
    def __init__(self, tessera, args, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([tessera, "serve", "--port", "0", "-t", "1", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.base = None

    def wait_listening(self, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = open(self.log_path).read()
            m = re.search(r"tessera: listening on (http://[^\s]+) ", text)
            if m:
                self.base = m.group(1)
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"not listening within {timeout}s:\n{open(self.log_path).read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def check_refused(tessera, src, tiny, tmp):
    """An over-budget plan: exit 1 before listening, with the table."""
    args = ["serve", "--port", "0", "--model", f"coder={src}/{QWEN},kv-mem=64M",
            "--model", f"smol={src}/{SMOL}", "--model", f"tiny={tiny}", "--mem-limit", "64M"]
    r = subprocess.run([tessera, *args], capture_output=True, text=True, timeout=120)
    print(r.stderr.strip())
    assert r.returncode == 1, f"exit {r.returncode}: {r.stderr}"
    for word in ("model", "weights", "KV", "scratch", "total", "coder", "smol", "tiny", "DOES NOT FIT", "--mem-limit"):
        assert word in r.stderr, f"'{word}' missing from:\n{r.stderr}"
    assert "listening" not in r.stderr
    print("ok: over-budget plan refused with the table (exit 1)")


def ttft_stream(client, model, prompt="def fibonacci(n):", max_tokens=4):
    """Seconds from the request to the first streamed text chunk."""
    t0 = time.perf_counter()
    first = None
    stream = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True,
                                       extra_body={"ignore_eos": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].text:
            first = time.perf_counter() - t0
    assert first is not None, f"{model}: no text streamed"
    return first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--source-dir", required=True)
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    for m in (QWEN, SMOL):
        if not os.path.exists(os.path.join(src, m)):
            skip(f"{m} is not there (scripts/fetch_models.sh)")
    try:
        import openai
    except ImportError:
        skip("the openai package is not installed (scripts/setup.sh puts it in .venv)")

    tmp = tempfile.mkdtemp(prefix="tessera-multi-")
    tiny = os.path.join(tmp, "tiny-moe.gguf")
    subprocess.run([a.tessera, "mkmodel", "--preset", "tiny", "--layers", "2", "--type", "Q4_K_M", "--tokenizer-from",
                    os.path.join(src, "tests/golden/models/vocab-qwen3.gguf"), "--out", tiny, "--seed", "1", "--quiet"],
                   check=True)

    check_refused(a.tessera, src, tiny, tmp)

    config = os.path.join(tmp, "models.json")
    with open(config, "w") as f:
        json.dump({"models": [
            {"name": "coder", "path": os.path.join(src, QWEN), "ctx": 1024, "kv_mem": "64M", "parallel": 2,
             "max_tokens": CAPS["coder"]},
            {"name": "smol", "path": os.path.join(src, SMOL), "ctx": 512, "kv_mem": "48M", "parallel": 2,
             "max_tokens": CAPS["smol"]},
            {"name": "tiny", "path": tiny, "ctx": 512, "parallel": 2, "max_tokens": CAPS["tiny"]}],
            "default": "coder"}, f)
    server = Server(a.tessera, ["--config", config, "--queue", "64"], os.path.join(tmp, "server.log"))
    try:
        log = server.wait_listening()
        assert "memory plan" in log and "fits" in log, log
        print(log[log.index("tessera: memory plan"):].split("tessera: loading")[0].rstrip())
        run(server.base, openai)
        print(f"PASS (server log: {server.log_path})")
    except BaseException:
        print(open(server.log_path).read()[-6000:])
        raise
    finally:
        server.stop()


def run(base, openai):
    client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=300)

    ids = [m.id for m in client.models.list().data]
    assert ids == ["coder", "smol", "tiny"], ids
    status, props = http(base, "GET", "/props")
    props = json.loads(props)
    plan = props["memory_plan"]
    assert [m["name"] for m in plan["models"]] == ids and plan["fits"], plan
    assert props["default_model"] == "coder" and props["model_alias"] == "coder", props
    kv = {m["name"]: m["kv_tokens"] for m in plan["models"]}
    assert kv["coder"] >= 1024 and kv["smol"] >= 512 and kv["tiny"] == 1024, kv  # kv-mem budgets; tiny: ctx x parallel
    print("ok: /v1/models lists the three, /props shows the plan", kv)

    # Routing and caps: ask for far more than each cap; the answer stops at the cap.
    generated = {}
    for name in ids:
        r = client.completions.create(model=name, prompt="def quicksort(xs):", max_tokens=5000, temperature=0,
                                      extra_body={"ignore_eos": True})
        assert r.model == name, (name, r.model)
        assert r.usage.completion_tokens <= CAPS[name], (name, r.usage)
        assert r.usage.completion_tokens == CAPS[name], (name, r.usage)  # ignore_eos: runs to the cap
        generated[name] = generated.get(name, 0) + r.usage.completion_tokens
    # Chat without max_tokens: the cap applies too.
    c = client.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Say hello."}],
                                       temperature=0, extra_body={"ignore_eos": True})
    assert c.model == "smol" and c.usage.completion_tokens == CAPS["smol"], c
    generated["smol"] += c.usage.completion_tokens
    # Below the cap: untouched.
    r = client.completions.create(model="coder", prompt="x = ", max_tokens=3, temperature=0, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 3, r.usage
    generated["coder"] += 3
    print("ok: routing by `model` and max-tokens caps", generated)

    try:
        client.completions.create(model="gpt-4o", prompt="hi", max_tokens=2)
        raise AssertionError("an unknown model was served")
    except openai.NotFoundError as e:
        err = e.body if isinstance(e.body, dict) else {}
        err = err.get("error", err)
        assert e.status_code == 404 and err.get("type") == "not_found_error" and err.get("code") == 404, e.body
        assert all(n in err.get("message", "") for n in ids), err
    print("ok: unknown model -> 404 not_found_error listing", ids)

    # llama.cpp's /completion without `model`: the default (coder).
    status, body = http(base, "POST", "/completion", {"prompt": "int main(", "n_predict": 2, "ignore_eos": True})
    assert status == 200 and json.loads(body)["model"] == "coder", body
    generated["coder"] += json.loads(body)["tokens_predicted"]
    status, body = http(base, "POST", "/completion", {"prompt": "int main(", "n_predict": 99, "model": "smol",
                                                      "ignore_eos": True})
    assert status == 200 and json.loads(body)["model"] == "smol" and json.loads(body)["tokens_predicted"] == CAPS["smol"], body
    generated["smol"] += CAPS["smol"]
    print("ok: llama.cpp /completion uses the default, or `model` when known")

    m = metrics(base)
    for name in ids:
        assert m[f'tessera_generated_tokens_total{{model="{name}"}}'] == generated[name], (name, generated, m)
        assert m[f'tessera_generations_total{{model="{name}"}}'] >= 1, m
        assert f'tessera_requests_running{{model="{name}"}}' in m and f'tessera_kv_blocks_total{{model="{name}"}}' in m
        assert m[f'tessera_ttft_seconds_count{{model="{name}"}}'] >= 1, m
    assert m["tessera_requests_total"] >= 8 and m["tessera_requests_errors_total"] >= 1, m
    print("ok: per-model metrics", {n: m[f'tessera_generated_tokens_total{{model="{n}"}}'] for n in ids})

    isolation(base, client, "tiny", 12)   # a light model flooded: many fast steps
    isolation(base, client, "coder", 8)   # the heaviest model flooded: most of the CPU


def isolation(base, client, flood_model, n_streams, probe="smol"):
    """Saturate flood_model (2 slots, n_streams long streams at its cap) and time probe's first token
    against its idle figure; then close the streams: flood_model frees its sequences, probe is untouched."""
    for _ in range(2):
        ttft_stream(client, probe)  # warm
    idle = [ttft_stream(client, probe) for _ in range(5)]
    before = metrics(base)

    stop = threading.Event()

    def flood():
        try:
            s = client.completions.create(model=flood_model, prompt="Once upon a time", max_tokens=CAPS[flood_model],
                                          temperature=0.8, stream=True, extra_body={"ignore_eos": True})
            for _ in s:
                if stop.is_set():
                    s.close()  # the server cancels the job
                    return
        except Exception as e:  # closed under us
            if not stop.is_set():
                print("flood stream error:", e)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(n_streams)]
    for t in threads:
        t.start()
    running, waiting = f'tessera_requests_running{{model="{flood_model}"}}', f'tessera_requests_waiting{{model="{flood_model}"}}'
    deadline = time.time() + 60
    while time.time() < deadline:
        mm = metrics(base)
        if mm.get(running, 0) == 2 and mm.get(waiting, 0) >= n_streams // 2:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{flood_model} never saturated: {mm}")
    busy, queued = [], []
    for _ in range(5):
        busy.append(ttft_stream(client, probe))
        mm = metrics(base)
        queued.append(int(mm.get(waiting, 0)))
    saturated = mm.get(running, 0) == 2
    stop.set()
    for t in threads:
        t.join(timeout=60)
    idle_med, busy_med = statistics.median(idle), statistics.median(busy)
    print(f"isolation: {probe} time to first token idle median {idle_med * 1e3:.0f} ms (min {min(idle) * 1e3:.0f}, "
          f"max {max(idle) * 1e3:.0f}); with {flood_model} saturated ({n_streams} streams: 2 running, waiting "
          f"{queued} after each sample) median {busy_med * 1e3:.0f} ms (min {min(busy) * 1e3:.0f}, "
          f"max {max(busy) * 1e3:.0f}); ratio {busy_med / idle_med:.2f}"
          f"{'' if saturated else f' ({flood_model} no longer full at the last sample)'}")
    assert busy_med < 5 * idle_med + 1.0, (idle, busy)

    # Closing the streams frees the flooded model: nothing running or waiting soon after.
    deadline = time.time() + 30
    while time.time() < deadline:
        mm = metrics(base)
        if mm[running] == 0 and mm[waiting] == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"{flood_model} still busy 30 s after its streams closed: {mm}")
    cancelled = lambda m, n: m[f'tessera_requests_cancelled_total{{model="{n}"}}']
    assert cancelled(mm, flood_model) > cancelled(before, flood_model), mm
    assert cancelled(mm, probe) == cancelled(before, probe), mm
    print(f"ok: isolation from {flood_model}; its closed streams were cancelled, none of {probe}'s")


if __name__ == "__main__":
    main()
