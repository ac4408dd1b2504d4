#!/usr/bin/env python3
"""Tessera vs llama.cpp on the same GGUF files, interleaved, on this machine.

Runs `tessera bench` and llama.cpp's `llama-bench` with the same parameters, alternating one
repetition of each (`-r 1` per process, one warm-up each, as both tools do), for N rounds, and
prints a markdown table: model, test, Tessera t/s (median and [min-max] over the rounds),
llama.cpp t/s (same), and the ratio of the medians. Both tools are run with `-o jsonl`
(`tessera bench` writes llama-bench's JSON fields); a test a tool did not finish shows its error.
Standard library only: any python3 runs it.

Noise: on a shared 2-core machine other processes' load distorts both tools, llama.cpp's decode
(OpenMP barriers between ops) far more than Tessera's (tg128 can drop 5-10x). The header and the
footer print the load average; use --rounds 3 or more, and rerun when a range is wide.

Usage:
  TESSERA=build/bin/tessera LLAMA_BENCH=/path/native/llama-bench \\
  LLAMA_BENCH_AVX2=/path/avx2-only/llama-bench \\
    bench/peer_bench.py --level avx2 [--rounds 2] [-t 2] [--depth] MODEL.gguf [MODEL.gguf ...]

  --tessera / $TESSERA                 the tessera binary (default build/bin/tessera)
  --llama-bench / $LLAMA_BENCH         llama-bench built with -DGGML_NATIVE=ON (for --level native)
  --llama-bench-avx2 / $LLAMA_BENCH_AVX2
                                       llama-bench built AVX2-only (-DGGML_NATIVE=OFF -DGGML_AVX2=ON
                                       -DGGML_AVX512=OFF ...), used with --level avx2
  --level native|avx2                  avx2: TESSERA_CPU_LEVEL=avx2 for tessera and the AVX2-only
                                       llama-bench; native: both use everything the CPU has
  -p N -n N -d N -t N                  test parameters (defaults: -p 512 -n 128 -d 0 -t 2)
  --depth                              shorthand for -d 4096 -p 512 -n 64
  --rounds N                           interleaved rounds (default 3); each round runs every model
                                       once per tool, the tool that goes first alternating by round
  --timeout S                          seconds per process (default 1800); a run over it is reported
                                       as a timeout in the table
  --raw-dir DIR                        keep every run's JSON and stderr there
  --llama-args "..."                   extra arguments for llama-bench (e.g. "-fa off")
  --tessera-args "..."                 extra arguments for tessera bench

How to build the peer (outside this repository; never commit llama.cpp code):
  pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/peer
  tar xzf /tmp/peer/llama_cpp_python-0.3.36.tar.gz -C /tmp/peer   # source: vendor/llama.cpp
  cmake -S .../vendor/llama.cpp -B build-native -G Ninja -DCMAKE_BUILD_TYPE=Release \\
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \\
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \\
    -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=ON
  ninja -C build-native llama-bench llama-server
  (AVX2-only: -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON
   -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_VBMI=OFF
   -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF)
  gcc, because llama.cpp's default GGML_OPENMP=ON needs an OpenMP runtime: gcc has libgomp; clang
  without libomp-dev only warns and builds without OpenMP (ggml's own thread pool instead).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_line() -> str:
    name = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    isa = "avx2" if "avx2" in flags else "no avx2"
    isa += (", " + " ".join(avx512)) if avx512 else ", no avx512"
    return f"{name} ({os.cpu_count()} logical CPUs; {isa})"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def test_name(row: dict) -> str:
    p, n, d = int(row.get("n_prompt", 0)), int(row.get("n_gen", 0)), int(row.get("n_depth", 0))
    s = f"pp{p}" if p and not n else f"tg{n}" if n and not p else f"pp{p}+tg{n}"
    return s + (f" @ d{d}" if d else "")


BUILDS: dict[str, str] = {}  # tool -> build_commit seen in its JSON


def parse_rows(text: str, tool: str = "") -> dict[str, list[float]]:
    """JSON lines (one llama-bench row each) -> {test: [t/s samples]}; incomplete lines are skipped."""
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            BUILDS.setdefault(tool, f"{row.get('build_commit', '?')} ({row.get('build_number', '?')})")
            out.setdefault(test_name(row), []).extend(float(x) for x in row.get("samples_ts", [row.get("avg_ts", 0.0)]))
    return out


def _text(x) -> str:
    return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")


def run_one(tool: str, cmd: list[str], env: dict, timeout: float, raw: Path | None, tag: str):
    """Runs one benchmark process (-o jsonl); returns ({test: [t/s samples]}, error or None, seconds).
    On a timeout the rows already written (e.g. pp before a slow tg) are kept."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, err = proc.stdout, proc.stderr, None
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["?"])[-1]
            err = f"exit {proc.returncode}: {last[:120]}"
    except subprocess.TimeoutExpired as e:
        stdout, stderr, err = _text(e.stdout), _text(e.stderr), f"timeout > {timeout:.0f} s"
    secs = time.monotonic() - t0
    if raw:
        (raw / f"{tag}.jsonl").write_text(stdout)
        (raw / f"{tag}.stderr").write_text(stderr)
    return parse_rows(stdout, tool), err, secs


def fmt_stat(xs: list[float], err: str | None) -> str:
    if err and len(err) > 40:
        err = err[:40] + "..."
    if not xs:
        return err or "-"
    med = statistics.median(xs)
    s = f"{med:.2f}"
    if len(xs) > 1:
        s += f" [{min(xs):.2f}-{max(xs):.2f}]"
    return s + (f" ({err})" if err else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--tessera", default=os.environ.get("TESSERA", str(REPO / "build/bin/tessera")))
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH"))
    ap.add_argument("--llama-bench-avx2", default=os.environ.get("LLAMA_BENCH_AVX2"))
    ap.add_argument("--level", choices=["native", "avx2"], default="native")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-d", type=int, default=0)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--depth", action="store_true", help="-d 4096 -p 512 -n 64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--raw-dir")
    ap.add_argument("--llama-args", default="")
    ap.add_argument("--tessera-args", default="")
    a = ap.parse_args()
    if a.depth:
        a.d, a.p, a.n = 4096, 512, 64

    llama = a.llama_bench_avx2 if a.level == "avx2" else a.llama_bench
    if not llama:
        ap.error(f"--level {a.level} needs " + ("--llama-bench-avx2 / $LLAMA_BENCH_AVX2" if a.level == "avx2"
                                                   else "--llama-bench / $LLAMA_BENCH"))
    for b in (a.tessera, llama):
        if not os.access(b, os.X_OK):
            ap.error(f"not an executable: {b}")
    for m in a.models:
        if not Path(m).is_file():
            ap.error(f"no such model: {m}")
    raw = Path(a.raw_dir) if a.raw_dir else None
    if raw:
        raw.mkdir(parents=True, exist_ok=True)

    common = ["-p", str(a.p), "-n", str(a.n), "-t", str(a.t), "-r", "1", "-o", "jsonl"]
    if a.d:
        common += ["-d", str(a.d)]
    t_env = dict(os.environ)
    t_env.pop("TESSERA_CPU_LEVEL", None)
    if a.level == "avx2":
        t_env["TESSERA_CPU_LEVEL"] = "avx2"
    l_env = dict(os.environ)

    print(f"CPU: {cpu_line()}; level {a.level}; threads {a.t}; {a.rounds} interleaved rounds; "
          f"load average at start {load_average()}")
    print(f"tessera: {a.tessera}{' (TESSERA_CPU_LEVEL=avx2)' if a.level == 'avx2' else ''}; llama-bench: {llama}")
    sys.stdout.flush()

    # results[model][tool][test] = samples; errors[model][tool] = last error
    results: dict[str, dict[str, dict[str, list[float]]]] = {m: {"tessera": {}, "llama": {}} for m in a.models}
    errors: dict[str, dict[str, str | None]] = {m: {"tessera": None, "llama": None} for m in a.models}
    loads = [load_average()]
    for rnd in range(a.rounds):
        for m in a.models:
            order = ["tessera", "llama"] if rnd % 2 == 0 else ["llama", "tessera"]
            for tool in order:
                if tool == "tessera":
                    cmd = [a.tessera, "bench", "-m", m, *common, *shlex.split(a.tessera_args)]
                    env = t_env
                else:
                    cmd = [llama, "-m", m, *common, *shlex.split(a.llama_args)]
                    env = l_env
                tag = f"r{rnd + 1}-{Path(m).stem}-{tool}"
                got, err, secs = run_one(tool, cmd, env, a.timeout, raw, tag)
                for k, v in got.items():
                    results[m][tool].setdefault(k, []).extend(v)
                if err:
                    errors[m][tool] = err
                summary = ", ".join(f"{k} {v[0]:.2f}" for k, v in got.items())
                summary = "; ".join(x for x in (summary, err) if x)
                print(f"  round {rnd + 1} {Path(m).name} {tool}: {summary} ({secs:.0f} s, load {load_average()})",
                      file=sys.stderr, flush=True)
        loads.append(load_average())

    print(f"\nbuilds (commit, number): tessera {BUILDS.get('tessera', '?')}, llama.cpp {BUILDS.get('llama', '?')}")
    print(f"load average (1/5/15 min) after each round: {' | '.join(loads)}\n")
    print("| model | test | Tessera t/s | llama.cpp t/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for m in a.models:
        tests = list(dict.fromkeys([*results[m]["tessera"], *results[m]["llama"]]))
        if not tests:
            tests = ["(all)"]
        for t in tests:
            ts, ls = results[m]["tessera"].get(t, []), results[m]["llama"].get(t, [])
            ratio = f"{statistics.median(ts) / statistics.median(ls):.2f}x" if ts and ls else "-"
            print(f"| {Path(m).name} | {t} | {fmt_stat(ts, errors[m]['tessera'] if not ts else None)} | "
                  f"{fmt_stat(ls, errors[m]['llama'] if not ls else None)} | {ratio} |")
    for m in a.models:
        for tool in ("tessera", "llama"):
            if errors[m][tool]:
                print(f"\n{Path(m).name}: {tool}: {errors[m][tool]} (in at least one round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
