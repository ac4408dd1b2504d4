# Writes pretokenizer_cases.json: the pieces Python's `regex` module gives for each pre-tokenizer's
# split regex (the definition our hand-written matchers follow). Needs `pip install regex`; the JSON
# is committed so the test itself needs no Python.
import json
import regex

PATTERNS = {
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
}
TEXTS = [
    "Hello world", "  leading and trailing  ", "I'm you're HE'LL we'VE they'd IT'S 'x", "x = 12345678901234567890;",
    "def f(a, b):\n    return a + b\n\n\n", "\r\n\r\n  \n\t\tindent", "日本語のテキスト 中文 한국어", "emoji 🚀🔥👍🏽 done",
    "\u00a0nbsp\u2028ls\u3000ideo\u0085nel", "Ⅻ roman ½ half ٣ arabic-indic ²", "e\u0301 combining \u200d zwj",
    "$$ @@ ## %% ^^ && || -> => :: ..", "  \n  \n  x", "a\n\n\nb", "tab\there", "   ", "\n", "'''doc'''",
    "camelCaseIdentifier snake_case_name", "https://example.com/path?q=1&r=2#frag", "ǅ titlecase ʰ modifier",
]
out = []
for name, pat in PATTERNS.items():
    rx = regex.compile(pat)
    for t in TEXTS:
        out.append({"pre": name, "text": t, "pieces": rx.findall(t)})
with open("pretokenizer_cases.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
print(len(out))
