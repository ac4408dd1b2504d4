"""Shared harness for the Python server tests: start `tessera serve` on a free port, talk HTTP, stop it.

Every suite is a script: `python test_X.py [--tessera BIN] [--source-dir DIR] [-k SUBSTRING] [-v]`.
It runs its `test_*` functions in file order and exits 0 (all passed), 1 (a failure) or 77 (skipped:
ctest's SKIP_RETURN_CODE), printing why on the last line. Defaults: $TESSERA_BINARY or
build/bin/tessera, the source tree this file lives in.

Server(model, *flags).start() runs `tessera serve -m MODEL --host 127.0.0.1 --port 0 ...`, waits for the
stderr line `tessera: listening on http://HOST:PORT`, and keeps all of stderr (server.log()). stop()
sends SIGTERM and asserts exit status 0 within a deadline.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
REAL_MODEL_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
ARGS = None  # parsed command line, set by main()


class Skip(Exception):
    pass


def skip(why):
    raise Skip(why)


def binary():
    return ARGS.tessera


def tiny_model(name="tiny-q8_0.gguf"):
    """A random-weight fixture with the real Qwen3 tokenizer and chat template (output is noise)."""
    path = os.path.join(ARGS.source_dir, "tests", "golden", "models", name)
    if not os.path.exists(path):
        skip(f"fixture {path} is missing")
    return path


def real_model_path():
    return os.environ.get("TESSERA_REAL_MODEL") or os.path.join(ARGS.source_dir, "models", REAL_MODEL_NAME)


def real_model():
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M, fetched by scripts/setup.sh (scripts/fetch_models.sh)."""
    path = real_model_path()
    if not os.path.exists(path):
        skip(f"real model {path} not found: scripts/fetch_models.sh assembles it "
             f"(or set TESSERA_REAL_MODEL)")
    return path


def have_real_model():
    return os.path.exists(real_model_path())


LISTEN_RE = re.compile(r"tessera: listening on http://([^\s:/]+|\[[^\]]+\]):(\d+)")


class Server:
    def __init__(self, model, *flags, name=None, ready_timeout=180, stop_timeout=30, env=None, port=0):
        self.model = model
        self.flags = [str(f) for f in flags]
        self.name = name
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = env
        self.port = port
        self.proc = None
        self.lines = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.host = "127.0.0.1"

    def command(self):
        # TESSERA_SERVE_LAUNCHER runs the server through a launcher (scripts/lavapipe.sh for the Vulkan
        # backend on lavapipe); TESSERA_SERVE_FLAGS adds flags to every server (e.g. --backend vulkan).
        launcher = os.environ.get("TESSERA_SERVE_LAUNCHER", "").split()
        extra = os.environ.get("TESSERA_SERVE_FLAGS", "").split()
        cmd = launcher + [binary(), "serve", "-m", self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.name:
            cmd += ["--replica-name", self.name]
        return cmd + extra + self.flags

    def start(self):
        cmd = self.command()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.time() + self.ready_timeout
        while time.time() < deadline:
            if self._ready.wait(0.05):
                return self
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader drain
                raise AssertionError(f"server exited with {self.proc.returncode} before listening: "
                                     f"{' '.join(cmd)}\n{self.log()}")
        self.kill()
        raise AssertionError(f"no 'tessera: listening on' line within {self.ready_timeout}s: "
                             f"{' '.join(cmd)}\n{self.log()}")

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if ARGS is not None and ARGS.verbose:
                print(f"  [server {self.name or ''}] {line}", file=sys.stderr)
            if not self._ready.is_set():
                m = LISTEN_RE.search(line)
                if m:
                    self.host = m.group(1).strip("[]")
                    self.port = int(m.group(2))
                    self._ready.set()

    def log(self, last=60):
        with self._lock:
            return "\n".join("    | " + line for line in self.lines[-last:])

    @property
    def base(self):
        return f"http://{self.host}:{self.port}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, expect_code=0):
        """SIGTERM; the server must exit with expect_code within stop_timeout seconds."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise AssertionError(f"server not running at stop (exit status {code})\n{self.log()}")
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server still running {self.stop_timeout}s after SIGTERM\n{self.log()}")
        if code != expect_code:
            raise AssertionError(f"server exited with {code} after SIGTERM (want {expect_code})\n{self.log()}")
        return time.time() - t0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.kill()
        return False

    # HTTP helpers -------------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=60):
        return http_request(self.host, self.port, method, path, body, headers, timeout)

    def post(self, path, obj, headers=None, timeout=120):
        return self.request("POST", path, obj, headers, timeout)

    def get(self, path, headers=None, timeout=30):
        return self.request("GET", path, None, headers, timeout)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, f"/metrics -> {r.status} {r.text[:300]}"
        return parse_metrics(r.text)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return f"<{self.status} {self.text[:200]!r}>"


def http_request(host, port, method, path, body=None, headers=None, timeout=60):
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def sse_events(resp_iter_lines):
    """Yields the payload of each `data:` line of an SSE stream (bytes lines without the newline)."""
    for line in resp_iter_lines:
        if line.startswith(b"data:"):
            yield line[5:].strip()


def stream_request(host, port, path, obj, headers=None, timeout=120):
    """POST with stream: true; returns (status, headers, list of decoded events, raw bytes).

    Checks SSE framing: every non-empty line is `data: ...` (or an SSE comment/field), events are
    separated by a blank line, every event but [DONE] is valid UTF-8 JSON."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=json.dumps(obj).encode(), headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        status, rh = r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    events = []
    if status == 200:
        events = parse_sse(raw)
    return status, rh, events, raw


def parse_sse(raw):
    text = raw.decode("utf-8")  # raises on invalid UTF-8: a failure
    assert text.endswith("\n\n"), f"SSE stream does not end with a blank line: {text[-80:]!r}"
    events = []
    for block in text.split("\n\n")[:-1]:
        datas = []
        for line in block.split("\n"):
            if line.startswith(":") or line.startswith("event:") or line.startswith("id:"):
                continue
            assert line.startswith("data:"), f"bad SSE line {line!r}"
            datas.append(line[5:].lstrip(" "))
        if not datas:
            continue
        payload = "\n".join(datas)
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text):
    """Prometheus text -> {name or name{labels}: float}; plain names sum over their label sets."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            raise AssertionError(f"bad metrics line {line!r}")
        name, labels, value = m.group(1), m.group(2), float(m.group(3))
        if labels:
            out[name + labels] = value
        out[name] = out.get(name, 0.0) + value if labels else value
    return out


def assert_error_shape(resp, where=""):
    """4xx bodies are {"error": {"message": str, "type": str, "code": ...}}."""
    try:
        obj = resp.json()
    except Exception:
        raise AssertionError(f"{where}: {resp.status} body is not JSON: {resp.body[:200]!r}")
    err = obj.get("error") if isinstance(obj, dict) else None
    assert isinstance(err, dict), f"{where}: no error object in {obj!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"{where}: error.message missing: {obj!r}"
    assert isinstance(err.get("type"), str), f"{where}: error.type missing: {obj!r}"
    assert "code" in err, f"{where}: error.code missing: {obj!r}"
    return err


def wait_until(pred, timeout, interval=0.1):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(namespace, description=""):
    """Runs the test_* functions of a suite module in file order."""
    global ARGS
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--tessera", default=os.environ.get("TESSERA_BINARY") or
                    os.path.join(SOURCE_DIR, "build", "bin", "tessera"))
    ap.add_argument("--source-dir", default=SOURCE_DIR)
    ap.add_argument("-k", dest="select", default=None, help="run only tests whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo the server's stderr")
    ARGS = ap.parse_args()
    suite = os.path.basename(namespace.get("__file__", "suite"))
    if not os.access(ARGS.tessera, os.X_OK):
        print(f"SKIP {suite}: tessera binary {ARGS.tessera} not found (build it first)")
        return SKIP
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    if ARGS.select:
        tests = [(n, f) for n, f in tests if ARGS.select in n]
    setup, teardown = namespace.get("setup_suite"), namespace.get("teardown_suite")
    failed, skipped, passed = [], [], []
    try:
        if setup:
            setup()
    except Skip as e:
        print(f"SKIP {suite}: {e}")
        return SKIP
    except Exception:
        traceback.print_exc()
        print(f"FAIL {suite}: setup failed")
        if teardown:
            try:
                teardown()
            except Exception:
                traceback.print_exc()
        return 1
    try:
        for name, fn in tests:
            t0 = time.time()
            try:
                fn()
                passed.append(name)
                print(f"PASS {name} ({time.time() - t0:.1f}s)", flush=True)
            except Skip as e:
                skipped.append(name)
                print(f"SKIP {name}: {e}", flush=True)
            except Exception:
                failed.append(name)
                print(f"FAIL {name} ({time.time() - t0:.1f}s)", flush=True)
                traceback.print_exc()
                sys.stdout.flush()
    finally:
        if teardown:
            try:
                teardown()
            except Exception:
                traceback.print_exc()
                failed.append("teardown_suite")
    print(f"{suite}: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped"
          + (f" (failed: {', '.join(failed)})" if failed else ""))
    if failed:
        return 1
    if skipped and not passed:
        return SKIP
    return 0
