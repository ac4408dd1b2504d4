#!/usr/bin/env python3
"""The official `openai` Python client (PyPI, scripts/setup.sh pins it) against `tessera serve`:
models, completions, FIM through `suffix`, chat, streaming (both), stream_options.include_usage, tool
calls (also streamed). On the random-weight tiny model only the structure is checked (its text is
noise); on the real Qwen2.5-Coder-0.5B-Instruct (skipped by name when models/ lacks it) greedy
content is checked too."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

try:
    import openai
except ImportError:
    openai = None

TINY = None   # Server on the tiny fixture
REAL = None   # Server on the real model, or None
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
WEATHER_Q = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def setup_suite():
    global TINY, REAL
    if openai is None:
        h.skip(f"the openai package is not installed in {sys.executable} (scripts/setup.sh installs it)")
    TINY = h.Server(h.tiny_model(), "--parallel", 4, "--ctx-size", 2048, name="tiny").start()
    if h.have_real_model():
        REAL = h.Server(h.real_model(), "--parallel", 2, "--ctx-size", 4096, name="real").start()


def teardown_suite():
    for s in (TINY, REAL):
        if s is not None and s.alive():
            s.stop()


def client(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="sk-unused", max_retries=0, timeout=300)


def real():
    if REAL is None:
        h.skip(f"real model {h.real_model_path()} not found (scripts/fetch_models.sh)")
    return REAL


def model_id(c):
    models = c.models.list()
    assert len(models.data) >= 1, models
    mid = models.data[0].id
    assert isinstance(mid, str) and mid, models
    return mid


# --- structure, on the tiny model ---------------------------------------------------------------

def test_models_list():
    c = client(TINY)
    models = c.models.list()
    assert models.data and models.data[0].id, models
    assert models.data[0].object == "model", models.data[0]


def test_completion_tiny():
    c = client(TINY)
    r = c.completions.create(model=model_id(c), prompt="def add(a, b):", max_tokens=8, temperature=0)
    assert r.object == "text_completion", r
    assert r.id, r
    assert len(r.choices) == 1 and r.choices[0].index == 0, r
    assert isinstance(r.choices[0].text, str), r
    assert r.choices[0].finish_reason in ("stop", "length"), r
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 8, r.usage
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage


def test_completion_max_tokens_is_respected():
    c = client(TINY)
    r = c.completions.create(model=model_id(c), prompt="x = ", max_tokens=3, temperature=0)
    assert r.usage.completion_tokens <= 3, r.usage
    if r.usage.completion_tokens == 3:
        assert r.choices[0].finish_reason == "length", r


def test_completion_seed_is_reproducible():
    c = client(TINY)
    kw = dict(model=model_id(c), prompt="import os\n", max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
    a = c.completions.create(**kw).choices[0].text
    b = c.completions.create(**kw).choices[0].text
    assert a == b, (a, b)


def test_completion_fim_suffix_tiny():
    c = client(TINY)
    r = c.completions.create(model=model_id(c), prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n",
                             max_tokens=8, temperature=0)
    assert isinstance(r.choices[0].text, str) and r.choices[0].finish_reason in ("stop", "length"), r


def test_completion_unknown_fields_ignored():
    c = client(TINY)
    r = c.completions.create(model=model_id(c), prompt="hello", max_tokens=2,
                             extra_body={"cache_prompt": True, "some_future_field": {"x": [1, 2]}})
    assert len(r.choices) == 1, r


def test_completion_logprobs():
    c = client(TINY)
    r = c.completions.create(model=model_id(c), prompt="a b c", max_tokens=3, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    if lp is None:
        h.skip("logprobs requested, none returned (optional in issue 11)")
    assert lp.tokens and len(lp.tokens) == r.usage.completion_tokens, lp
    assert len(lp.token_logprobs) == len(lp.tokens), lp
    assert all(isinstance(x, float) and x <= 1e-6 for x in lp.token_logprobs), lp
    if lp.top_logprobs is not None:
        assert all(len(t) <= 2 for t in lp.top_logprobs), lp


def test_completion_stream_matches_non_stream():
    c = client(TINY)
    kw = dict(model=model_id(c), prompt="for i in range(10):", max_tokens=16, temperature=0)
    full = c.completions.create(**kw)
    chunks = list(c.completions.create(stream=True, **kw))
    assert chunks, "no chunks"
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == full.choices[0].text, (text, full.choices[0].text)
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason], finals


def test_completion_stream_include_usage():
    c = client(TINY)
    chunks = list(c.completions.create(model=model_id(c), prompt="x", max_tokens=5, temperature=0, stream=True,
                                       stream_options={"include_usage": True}))
    usage = [ch.usage for ch in chunks if ch.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens <= 5 and usage[0].prompt_tokens > 0, chunks[-2:]
    assert chunks[-1].usage is not None, chunks[-1]


def test_chat_tiny():
    c = client(TINY)
    r = c.chat.completions.create(model=model_id(c), max_tokens=8, temperature=0,
                                  messages=[{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": "Say hi."}])
    assert r.object == "chat.completion", r
    m = r.choices[0].message
    assert m.role == "assistant", m
    assert isinstance(m.content, str) or m.tool_calls, m
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls"), r
    assert r.usage.prompt_tokens > 5 and r.usage.completion_tokens <= 8, r.usage


def test_chat_stream_matches_non_stream_and_usage():
    c = client(TINY)
    kw = dict(model=model_id(c), max_tokens=12, temperature=0,
              messages=[{"role": "user", "content": "Count to five."}])
    full = c.chat.completions.create(**kw)
    chunks = list(c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    assert chunks[0].object == "chat.completion.chunk", chunks[0]
    roles = [ch.choices[0].delta.role for ch in chunks if ch.choices and ch.choices[0].delta.role]
    assert roles and roles[0] == "assistant", roles
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    if not full.choices[0].message.tool_calls:
        assert text == (full.choices[0].message.content or ""), (text, full.choices[0].message.content)
    usage = [ch for ch in chunks if ch.usage is not None]
    assert len(usage) == 1 and usage[0] is chunks[-1], [ch.usage for ch in chunks]
    assert chunks[-1].choices == [], chunks[-1]
    assert usage[0].usage.completion_tokens == full.usage.completion_tokens, (usage[0].usage, full.usage)
    assert usage[0].usage.prompt_tokens == full.usage.prompt_tokens, (usage[0].usage, full.usage)


def test_chat_tools_accepted_tiny():
    c = client(TINY)
    r = c.chat.completions.create(model=model_id(c), max_tokens=8, temperature=0, messages=WEATHER_Q,
                                  tools=[WEATHER_TOOL], tool_choice="auto")
    m = r.choices[0].message
    assert m.role == "assistant", m
    for tc in m.tool_calls or []:
        assert tc.type == "function" and tc.id, tc


def test_bad_request_raises_bad_request_error():
    c = client(TINY)
    try:
        c.completions.create(model=model_id(c), prompt="x", max_tokens=4, n=2)
    except openai.BadRequestError as e:
        assert e.status_code == 400
        return
    except openai.APIStatusError as e:
        raise AssertionError(f"n=2 -> {e.status_code}, want 400")
    raise AssertionError("n=2 accepted (the server supports n=1 only)")


# --- content, on the real model -----------------------------------------------------------------

def test_real_completion_stop():
    s = real()
    c = client(s)
    r = c.completions.create(model=model_id(c), prompt="# Python\ndef add(a, b):\n", max_tokens=32, temperature=0,
                             stop=["\n\n"])
    text = r.choices[0].text
    assert "return" in text and "\n\n" not in text, repr(text)


def test_real_fim_suffix():
    s = real()
    c = client(s)
    prefix = "def add(a, b):\n    "
    suffix = "\n\n\nprint(add(1, 2))\n"
    # Like editor plugins that speak OpenAI FIM (Continue), stop at a blank line.
    r = c.completions.create(model=model_id(c), prompt=prefix, suffix=suffix, max_tokens=48, temperature=0,
                             stop=["\n\n"])
    text = r.choices[0].text
    assert "return" in text and "a + b" in text.replace("b + a", "a + b"), repr(text)
    import ast
    try:
        ast.parse(prefix + text + suffix)
    except SyntaxError as e:
        raise AssertionError(f"spliced file does not parse ({e}): completion {text!r}")


def test_real_chat():
    s = real()
    c = client(s)
    r = c.chat.completions.create(model=model_id(c), max_tokens=48, temperature=0, messages=[
        {"role": "user", "content": "What is the capital of France? Answer in one word."}])
    assert "Paris" in (r.choices[0].message.content or ""), r.choices[0].message
    assert r.choices[0].finish_reason == "stop", r


def test_real_chat_stream():
    s = real()
    c = client(s)
    chunks = list(c.chat.completions.create(
        model=model_id(c), max_tokens=48, temperature=0, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}]))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "Paris" in text, text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]


def _check_weather_call(name, arguments):
    assert name == "get_weather", name
    args = json.loads(arguments)
    assert isinstance(args, dict) and "paris" in str(args.get("location", "")).lower(), args
    return args


def test_real_tool_call():
    s = real()
    c = client(s)
    r = c.chat.completions.create(model=model_id(c), max_tokens=128, temperature=0, messages=WEATHER_Q,
                                  tools=[WEATHER_TOOL])
    ch = r.choices[0]
    assert ch.message.tool_calls, f"no tool_calls; content={ch.message.content!r}"
    assert ch.finish_reason == "tool_calls", ch.finish_reason
    tc = ch.message.tool_calls[0]
    assert tc.type == "function" and tc.id, tc
    _check_weather_call(tc.function.name, tc.function.arguments)
    # The raw markup must not leak into content.
    assert "<tool_call>" not in (ch.message.content or ""), ch.message.content

    # Second turn: the tool's answer goes back, the model answers in text.
    msgs = WEATHER_Q + [
        {"role": "assistant", "content": ch.message.content or "", "tool_calls": [
            {"id": tc.id, "type": "function",
             "function": {"name": tc.function.name, "arguments": tc.function.arguments}}]},
        {"role": "tool", "tool_call_id": tc.id, "content": json.dumps({"temperature_c": 21, "sky": "sunny"})},
    ]
    r2 = c.chat.completions.create(model=model_id(c), max_tokens=64, temperature=0, messages=msgs,
                                   tools=[WEATHER_TOOL])
    m2 = r2.choices[0].message
    assert (m2.content or "").strip() or m2.tool_calls, m2
    print(f"    second turn: {m2.content!r}")


def test_real_tool_call_stream():
    s = real()
    c = client(s)
    chunks = list(c.chat.completions.create(model=model_id(c), max_tokens=128, temperature=0, stream=True,
                                            messages=WEATHER_Q, tools=[WEATHER_TOOL]))
    calls = {}
    content = ""
    finish = None
    for ch in chunks:
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        content += d.content or ""
        for tc in d.tool_calls or []:
            cur = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                cur["id"] = tc.id
            if tc.function and tc.function.name:
                cur["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                cur["arguments"] += tc.function.arguments
        finish = ch.choices[0].finish_reason or finish
    assert calls, f"no streamed tool_calls; content={content!r}"
    assert finish == "tool_calls", finish
    first = calls[min(calls)]
    assert first["id"], first
    _check_weather_call(first["name"], first["arguments"])
    assert "<tool_call>" not in content, content


if __name__ == "__main__":
    sys.exit(h.main(globals(), __doc__))
