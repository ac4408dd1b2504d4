#!/usr/bin/env python3
"""deploy/nginx.conf in front of two `tessera serve` replicas (tiny model): nginx runs as a normal
process (`nginx -p DIR -c CONF -e stderr`, no root paths) with the deployed file included unchanged
except for the upstream servers and the listen port. Checks: one client's requests (same
X-Tessera-Client) all reach one replica (X-Tessera-Replica) and its second request with a shared
prefix reports cached prompt tokens; without the header, the client address keeps one client on one
replica; different client keys spread over both replicas; Authorization passes through to the
replicas' --api-key check; streaming works through the proxy. Skipped by name without nginx."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KEY = "nginx-test-key"
AUTH = {"Authorization": "Bearer " + KEY}
A = B = None
NGINX = None
PORT = None
TMP = None
PREFIX = "".join(f"def helper_{i}(x):\n    return x * {i} + {i * 7}\n\n" for i in range(40))


def nginx_binary():
    for cand in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def render_config(tmp, ports, listen_port):
    src = open(os.path.join(h.ARGS.source_dir, "deploy", "nginx.conf")).read()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in ports)
    up = re.search(r"(upstream tessera \{\n(?:.*\n)*?)((?:\s*server 127\.0\.0\.1:\d+[^\n]*\n)+)", src)
    assert up, "deploy/nginx.conf: no upstream tessera block with server lines"
    site = src[:up.start(2)] + servers + src[up.end(2):]
    site, n = re.subn(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{listen_port};", site)
    assert n == 1, "deploy/nginx.conf: expected one `listen 127.0.0.1:PORT;`"
    with open(os.path.join(tmp, "tessera.conf"), "w") as f:
        f.write(site)
    main = f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/tessera.conf;
}}
"""
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


def setup_suite():
    global A, B, NGINX, PORT, TMP
    nginx = nginx_binary()
    if nginx is None:
        h.skip("nginx is not installed (scripts/setup.sh installs nginx-light)")
    model = h.tiny_model()
    A = h.Server(model, "--parallel", 2, "--ctx-size", 2048, "--api-key", KEY, name="replica-a").start()
    B = h.Server(model, "--parallel", 2, "--ctx-size", 2048, "--api-key", KEY, name="replica-b").start()
    TMP = tempfile.mkdtemp(prefix="tessera-nginx-")
    PORT = h.free_port()
    conf = render_config(TMP, [A.port, B.port], PORT)
    t = subprocess.run([nginx, "-t", "-p", TMP, "-e", "stderr", "-c", conf], capture_output=True, text=True)
    assert t.returncode == 0, f"nginx -t failed:\n{t.stderr}"
    NGINX = subprocess.Popen([nginx, "-p", TMP, "-e", "stderr", "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ok = h.wait_until(lambda: NGINX.poll() is not None or _up(), 15, 0.05)
    assert ok and NGINX.poll() is None, f"nginx did not start: {NGINX.stderr.read() if NGINX.poll() is not None else ''}"


def _up():
    try:
        return get("/health", timeout=1).status == 200
    except OSError:
        return False


def teardown_suite():
    if NGINX is not None and NGINX.poll() is None:
        NGINX.terminate()
        try:
            NGINX.wait(10)
        except subprocess.TimeoutExpired:
            NGINX.kill()
    for s in (A, B):
        if s is not None and s.alive():
            s.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def get(path, headers=None, timeout=30):
    return h.http_request("127.0.0.1", PORT, "GET", path, None, dict(AUTH, **(headers or {})), timeout)


def post(path, obj, headers=None, timeout=120):
    return h.http_request("127.0.0.1", PORT, "POST", path, obj, dict(AUTH, **(headers or {})), timeout)


def complete(client, tail, n=4):
    hdrs = {"X-Tessera-Client": client} if client else {}
    r = post("/completion", {"prompt": PREFIX + tail, "n_predict": n, "temperature": 0}, hdrs)
    assert r.status == 200, r
    return r.header("X-Tessera-Replica"), r.json()


def test_one_client_one_replica_and_cache_hits():
    replicas = []
    cached = []
    for i in range(6):
        rep, obj = complete("alice", f"def user_{i}(y):\n    return")
        replicas.append(rep)
        cached.append((obj.get("tokens_cached"), obj["timings"].get("cache_n")))
    assert replicas[0] in ("replica-a", "replica-b"), replicas
    assert len(set(replicas)) == 1, f"alice's requests went to several replicas: {replicas}"
    # timings.cache_n: prompt tokens reused (tokens_cached is llama.cpp's n_past, prompt + generated).
    for tc, cn in cached[1:]:
        assert cn is not None and cn > 100, f"shared prefix not reused: (tokens_cached, cache_n) = {cached}"
    print(f"    alice -> {replicas[0]}, (tokens_cached, cache_n) = {cached}")
    # A client on the other replica starts cold: the cache hit above is the affinity's doing.
    other = "replica-b" if replicas[0] == "replica-a" else "replica-a"
    for i in range(64):
        rep, obj = complete(f"bob-{i}", "def cold(z):\n    return", n=1)
        if rep == other:
            assert obj["timings"]["cache_n"] < 32, f"{other} had alice's prefix already: {obj['timings']}"
            break
    else:
        raise AssertionError(f"no client key among 64 reached {other}")


def test_client_keys_spread_over_replicas():
    seen = {}
    for i in range(64):
        r = get("/health", {"X-Tessera-Client": f"user-{i}"})
        assert r.status == 200, r
        seen.setdefault(r.header("X-Tessera-Replica"), []).append(i)
        if len(seen) == 2:
            break
    assert set(seen) == {"replica-a", "replica-b"}, f"64 client keys, replicas seen: {list(seen)}"
    # ... and each key is sticky.
    for rep, keys in seen.items():
        for _ in range(3):
            assert get("/health", {"X-Tessera-Client": f"user-{keys[0]}"}).header("X-Tessera-Replica") == rep


def test_no_header_falls_back_to_client_address():
    reps = {complete(None, f"x{i} = ", n=1)[0] for i in range(5)}
    assert len(reps) == 1, f"one address without X-Tessera-Client reached {reps}"


def test_authorization_passes_through():
    r = h.http_request("127.0.0.1", PORT, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 1}, {})
    assert r.status == 401, r
    h.assert_error_shape(r, "401 through nginx")
    r = post("/v1/completions", {"prompt": "x", "max_tokens": 1})
    assert r.status == 200, r


def test_streaming_through_nginx():
    status, headers, events, raw = h.stream_request("127.0.0.1", PORT, "/v1/chat/completions",
                                                    {"messages": [{"role": "user", "content": "hi"}],
                                                     "max_tokens": 24, "stream": True}, headers=AUTH)
    assert status == 200, raw[:300]
    assert events and events[-1] == "[DONE]", events[-3:]
    assert len(events) >= 3, events
    assert headers.get("x-tessera-replica") in ("replica-a", "replica-b"), headers


def test_replicas_still_healthy():
    for s in (A, B):
        assert s.alive(), s.log()
        assert s.get("/health").status == 200


if __name__ == "__main__":
    sys.exit(h.main(globals(), __doc__))
