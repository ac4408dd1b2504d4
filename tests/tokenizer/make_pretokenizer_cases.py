# Writes pretokenizer_cases.json: the pieces Python's `regex` module gives for each pre-tokenizer's
# split regex (the definition our hand-written matchers follow). Needs `pip install regex`; the JSON
# is committed so the test itself needs no Python.
import json
import regex

PATTERNS = {
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    # Several regexes: each splits the pieces of the one before.
    "deepseek-v3": [r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+",
                    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    # SmolLM (llama.cpp's STARCODER group): every digit alone, then the GPT-2 split (llama.cpp's regex
    # there ends at \s+(?!\S); the text it leaves is a piece of its own, as \s+ would make it).
    "smollm": [r"\p{N}", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"],
}


def split(stages, text):
    """Regex split keeping matches and the text between them (HF "isolated", llama.cpp)."""
    pieces = [text]
    for rx in stages:
        out = []
        for piece in pieces:
            pos = 0
            for m in rx.finditer(piece):
                if m.start() > pos:
                    out.append(piece[pos:m.start()])
                out.append(m.group())
                pos = m.end()
            if pos < len(piece):
                out.append(piece[pos:])
        pieces = out
    return pieces

TEXTS = [
    "Hello world", "  leading and trailing  ", "I'm you're HE'LL we'VE they'd IT'S 'x", "x = 12345678901234567890;",
    "def f(a, b):\n    return a + b\n\n\n", "\r\n\r\n  \n\t\tindent", "日本語のテキスト 中文 한국어", "emoji 🚀🔥👍🏽 done",
    "\u00a0nbsp\u2028ls\u3000ideo\u0085nel", "Ⅻ roman ½ half ٣ arabic-indic ²", "e\u0301 combining \u200d zwj",
    "$$ @@ ## %% ^^ && || -> => :: ..", "  \n  \n  x", "a\n\n\nb", "tab\there", "   ", "\n", "'''doc'''",
    "camelCaseIdentifier snake_case_name", "https://example.com/path?q=1&r=2#frag", "ǅ titlecase ʰ modifier",
    "日本語のテキストとカタカナ123漢字", "x.foo(bar)->baz // ¿qué? «quoted» €100 ±5 👍", "\x00\x1f control \u200b zwsp",
]
out = []
for name, pat in PATTERNS.items():
    stages = [regex.compile(p) for p in (pat if isinstance(pat, list) else [pat])]
    for t in TEXTS:
        out.append({"pre": name, "text": t, "pieces": split(stages, t)})
with open("pretokenizer_cases.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
print(len(out))
