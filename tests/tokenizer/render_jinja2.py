"""Renders chat templates with Python jinja2 the way Hugging Face transformers does (the oracle
for tests/tokenizer/test_chat_template.cpp).

Usage: render_jinja2.py IN.json OUT.json
IN:  {"cases": [{"template": "...", "context": {...}}, ...]}
OUT: [{"ok": true, "text": "..."} | {"ok": false, "error": "..."}, ...]

Environment as in transformers' _compile_jinja_template: ImmutableSandboxedEnvironment with
trim_blocks=True, lstrip_blocks=True, the loopcontrols extension, tojson = json.dumps with
ensure_ascii=False and sort_keys=False, and the raise_exception / strftime_now globals.
"""
import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    out = []
    compiled = {}
    for case in cases:
        try:
            if case["template"] not in compiled:
                compiled[case["template"]] = env.from_string(case["template"])
            text = compiled[case["template"]].render(**case["context"])
            out.append({"ok": True, "text": text})
        except Exception as e:  # the C++ side must fail too
            out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
