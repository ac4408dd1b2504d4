#!/usr/bin/env python3
"""Load benchmark for `tessera serve` (a benchmark, not a test): editor-like FIM requests.

Each simulated client edits its own Python file: it types into the file one to four characters at a
time, and after every keystroke sends a streaming FIM request (llama.cpp's POST /infill, which both
Tessera and llama-server speak, `input_prefix` = the file up to the cursor, `input_suffix` = the rest,
n_predict 16, greedy). So every request shares its prefix with the previous one, as an editor's do,
and the server's prefix cache decides the time to first token. Clients do not share prefixes. Rows:
1, 4 and 16 concurrent clients on each model, for Tessera and, when one is found (on the PATH or
--llama-server PATH), llama-server with the same slots and context per slot. Each row runs
--seconds of load after one unmeasured warm-up request per client (which fills its cache), and
prints as soon as it is measured:

  requests/s    completed requests / wall time of the row
  TTFT p50/p99  send -> first streamed token (ms); p99 over fewer than 100 requests is the maximum
  lat p50       send -> last byte (ms)
  cached        share of prompt tokens the server reports as reused (timings.cache_n /
                (cache_n + prompt_n)), when it reports them

Usage (from the repository root, after scripts/build.sh):
  bench/server_load.py                                  # tiny fixture + real default model, Tessera
                                                        # and llama-server if on the PATH
  bench/server_load.py --models tiny --clients 1,4 --seconds 10
  bench/server_load.py --llama-server /work/peer/build-native/bin/llama-server --threads 2
  bench/server_load.py --models /path/other.gguf --no-llama
Options: --tessera BIN (build/bin/tessera), --models tiny,real or GGUF paths, --clients 1,4,16,
--seconds 15, --n-predict 16, --prefix-chars 6000 (about 1,500 tokens of code before the cursor),
--threads 2, --json FILE (rows as JSON lines). Run it on a quiet machine: the 2-core VMs this project
uses are shared, so repeat rows whose numbers look off.
"""
import argparse
import glob
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODELS = {
    "tiny": os.path.join(ROOT, "tests", "golden", "models", "tiny-q8_0.gguf"),
    "real": os.path.join(ROOT, "models", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    """A server process: Tessera (port parsed from its listening line) or llama-server (port given)."""

    def __init__(self, kind, binary, model, slots, ctx, threads):
        self.kind = kind
        self.log = []
        if kind == "tessera":
            cmd = [binary, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", "--parallel", str(slots),
                   "--ctx-size", str(ctx), "--threads", str(threads), "--queue", "256"]
            self.port = None
        else:
            self.port = free_port()
            cmd = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port), "-np", str(slots),
                   "-c", str(ctx * slots), "-t", str(threads), "--no-webui"]
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace")
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 300
        while not self.ready.wait(0.1):
            if self.p.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(cmd)} did not start:\n" + "\n".join(self.log[-20:]))
        if kind != "tessera":  # llama-server: wait for /health 200
            while time.time() < deadline:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.2)

    def _read(self):
        for line in self.p.stderr:
            self.log.append(line.rstrip())
            if self.kind == "tessera" and "tessera: listening on http://" in line:
                self.port = int(line.split("tessera: listening on http://")[1].split()[0].rsplit(":", 1)[1])
                self.ready.set()
            elif self.kind != "tessera" and "listening on http" in line:
                self.ready.set()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def source_texts(min_chars):
    """Python sources of this repository, each long enough for a prefix + typing + suffix."""
    files = sorted(glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True))
    files = [f for f in files if "/.venv/" not in f and "/build" not in f]
    texts = []
    for f in files:
        t = open(f, encoding="utf-8", errors="replace").read()
        while len(t) < min_chars:
            t += "\n\n" + t
        texts.append(t)
    if not texts:
        raise SystemExit("no Python sources found for the workload")
    return texts


class Client:
    """One editor: a file, a cursor, a stream of keystrokes."""

    def __init__(self, idx, texts, prefix_chars, rng):
        t = texts[idx % len(texts)]
        head = f"# client {idx}: editing {idx % len(texts)}\n"  # no prefix shared across clients
        self.before = head + t[:prefix_chars]
        self.typed = t[prefix_chars:prefix_chars + 4000]  # what the user types, one keystroke at a time
        self.after = t[prefix_chars + 4000:prefix_chars + 4000 + 1500] or "\n"
        self.pos = 0
        self.rng = rng

    def next_request(self, n_predict):
        self.pos = min(len(self.typed), self.pos + self.rng.randint(1, 4))
        if self.pos >= len(self.typed):
            self.pos = 1
        return {"input_prefix": self.before + self.typed[:self.pos], "input_suffix": self.after,
                "n_predict": n_predict, "temperature": 0, "top_k": 1, "stream": True, "cache_prompt": True}


def one_request(port, body, timeout=600):
    """Streams one /infill; returns (ttft_s, total_s, cache_n, prompt_n) or raises."""
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/infill", body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"/infill -> {r.status} {r.read()[:200]!r}")
        ttft = None
        last = None
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            ev = json.loads(payload)
            if ttft is None and (ev.get("content") or ev.get("tokens")):
                ttft = time.perf_counter() - t0
            last = ev
            if ev.get("stop"):
                break
        total = time.perf_counter() - t0
        if ttft is None:  # nothing generated (immediate stop): first event time is the best we have
            ttft = total
        timings = (last or {}).get("timings") or {}
        return ttft, total, timings.get("cache_n"), timings.get("prompt_n")
    finally:
        conn.close()


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_row(port, n_clients, seconds, args, texts):
    rng = random.Random(1234 + n_clients)
    clients = [Client(i, texts, args.prefix_chars, random.Random(rng.random())) for i in range(n_clients)]
    # Warm-up: one request per client (its cold prefill), not measured.
    ws = [threading.Thread(target=one_request, args=(port, c.next_request(args.n_predict))) for c in clients]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    results, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def loop(c):
        while time.perf_counter() < stop_at:
            try:
                res = one_request(port, c.next_request(args.n_predict))
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))
    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ttfts = [r[0] * 1000 for r in results]
    lats = [r[1] * 1000 for r in results]
    cache_n = sum(r[2] or 0 for r in results if r[2] is not None)
    prompt_n = sum(r[3] or 0 for r in results if r[3] is not None)
    reported = any(r[2] is not None for r in results)
    return {
        "clients": n_clients, "requests": len(results), "errors": len(errors), "seconds": round(wall, 2),
        "req_per_s": len(results) / wall if wall else 0.0,
        "ttft_p50_ms": pct(ttfts, 0.50), "ttft_p99_ms": pct(ttfts, 0.99), "lat_p50_ms": pct(lats, 0.50),
        "cached_share": (cache_n / (cache_n + prompt_n)) if reported and cache_n + prompt_n else None,
        "first_error": errors[0] if errors else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default=os.path.join(ROOT, "build", "bin", "tessera"))
    ap.add_argument("--llama-server", default=shutil.which("llama-server"))
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--no-tessera", action="store_true")
    ap.add_argument("--models", default="tiny,real")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--n-predict", type=int, default=16)
    ap.add_argument("--prefix-chars", type=int, default=6000)
    ap.add_argument("--ctx", type=int, default=4096, help="context per slot / sequence")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    clients = [int(x) for x in args.clients.split(",")]
    slots = max(clients)
    texts = source_texts(args.prefix_chars + 6000)
    servers = []
    if not args.no_tessera:
        servers.append(("tessera", args.tessera))
    if not args.no_llama:
        if args.llama_server and os.access(args.llama_server, os.X_OK):
            servers.append(("llama-server", args.llama_server))
        else:
            print("note: no llama-server on the PATH (--llama-server PATH): Tessera rows only", file=sys.stderr)
    out = open(args.json, "w") if args.json else None
    print(f"# editor-like FIM load: /infill streaming, n_predict {args.n_predict}, prefix ~{args.prefix_chars} chars + "
          f"typing 1-4 chars per request, suffix 1500 chars; {args.seconds:.0f} s per row, {slots} slots x "
          f"{args.ctx} ctx, {args.threads} threads; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| server | model | clients | requests | req/s | TTFT p50 ms | TTFT p99 ms | latency p50 ms | cached |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for m in args.models.split(","):
        path = MODELS.get(m, m)
        if not os.path.exists(path):
            print(f"note: model {m} ({path}) not found, skipped", file=sys.stderr)
            continue
        for kind, binary in servers:
            try:
                proc = Proc(kind, binary, path, slots, args.ctx, args.threads)
            except RuntimeError as e:
                print(f"note: {kind} on {m}: {e}", file=sys.stderr)
                continue
            try:
                for n in clients:
                    row = run_row(proc.port, n, args.seconds, args, texts)
                    row.update(server=kind, model=os.path.basename(path))
                    cached = "-" if row["cached_share"] is None else f"{100 * row['cached_share']:.1f}%"
                    err = f" ({row['errors']} errors: {row['first_error'][:80]})" if row["errors"] else ""
                    print(f"| {kind} | {os.path.basename(path)} | {n} | {row['requests']} | {row['req_per_s']:.2f} | "
                          f"{row['ttft_p50_ms']:.0f} | {row['ttft_p99_ms']:.0f} | {row['lat_p50_ms']:.0f} | "
                          f"{cached} |{err}", flush=True)
                    if out:
                        out.write(json.dumps(row) + "\n")
                        out.flush()
            finally:
                proc.stop()
    if out:
        out.close()


if __name__ == "__main__":
    main()
