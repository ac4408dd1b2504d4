// The playground: a CodeMirror editor wired to the inline-completion extension against the
// server that serves this page (same origin), with a language selector and per-completion latency.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { cpp } from "@codemirror/lang-cpp";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { rust } from "@codemirror/lang-rust";
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting, defaultHighlightStyle } from "@codemirror/language";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import { drawSelection, EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { completionController, type CompletionInfo, inlineCompletion } from "../src/index";
import "./style.css";

interface Lang {
  file: string;
  ext: () => Extension;
  sample: string;
}
const LANGS: Record<string, Lang> = {
  python: { file: "playground.py", ext: () => python(), sample: "def fibonacci(n):\n    " },
  javascript: { file: "playground.js", ext: () => javascript(), sample: "function fibonacci(n) {\n  " },
  typescript: { file: "playground.ts", ext: () => javascript({ typescript: true }), sample: "function fibonacci(n: number): number {\n  " },
  cpp: { file: "playground.cpp", ext: () => cpp(), sample: "#include <cstdint>\n\nuint64_t fibonacci(int n) {\n  " },
  rust: { file: "playground.rs", ext: () => rust(), sample: "fn fibonacci(n: u64) -> u64 {\n    " },
  go: { file: "playground.go", ext: () => [], sample: "package main\n\nfunc fibonacci(n int) int {\n\t" },
};

const langSelect = document.getElementById("language") as HTMLSelectElement;
const tokenInput = document.getElementById("token") as HTMLInputElement;
const latencyEl = document.getElementById("latency") as HTMLElement;
const historyEl = document.getElementById("history") as HTMLOListElement;
const modelEl = document.getElementById("model") as HTMLElement;
const lang = () => LANGS[langSelect.value] ?? LANGS.python;

// ?max_tokens=N caps each completion (the end-to-end test uses it to keep requests in flight).
const params = new URLSearchParams(location.search);
const maxTokens = params.has("max_tokens") ? Number(params.get("max_tokens")) : undefined;

const completions: CompletionInfo[] = [];
function onCompletion(c: CompletionInfo) {
  completions.push(c);
  const ms = (x: number) => `${Math.round(x)} ms`;
  latencyEl.textContent = c.text ? ms(c.latencyMs) : "(empty)";
  const li = document.createElement("li");
  li.textContent = `${ms(c.latencyMs)}${c.cached ? " cached" : ` (${ms(c.requestMs)})`} · ${JSON.stringify(c.text.slice(0, 24))}`;
  historyEl.prepend(li);
  while (historyEl.children.length > 30) historyEl.lastElementChild?.remove();
}
const errors: string[] = [];

const language = new Compartment();
const view = new EditorView({
  parent: document.getElementById("editor")!,
  state: EditorState.create({
    doc: lang().sample,
    selection: { anchor: lang().sample.length },
    extensions: [
      lineNumbers(),
      history(),
      drawSelection(),
      highlightActiveLine(),
      EditorView.lineWrapping,
      indentOnInput(),
      bracketMatching(),
      indentUnit.of("    "),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      language.of(lang().ext()),
      inlineCompletion({
        url: "",
        token: () => tokenInput.value || undefined,
        language: () => langSelect.value,
        filepath: () => lang().file,
        maxTokens,
        onCompletion,
        onError: (e) => {
          errors.push(String(e));
          latencyEl.textContent = "error";
          modelEl.textContent = String(e).slice(0, 120);
        },
      }),
      keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
    ],
  }),
});

langSelect.addEventListener("change", () => {
  const l = lang();
  view.dispatch({
    changes: { from: 0, to: view.state.doc.length, insert: l.sample },
    selection: { anchor: l.sample.length },
    effects: language.reconfigure(l.ext()),
  });
  view.focus();
});

fetch("/v1/health", { method: "GET" })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then((h: { model?: string }) => (modelEl.textContent = `model: ${h.model ?? "?"}`))
  .catch((e) => (modelEl.textContent = `server: ${e}`));

view.focus();
// For tests and the curious: the editor, the completions so far and the controller's counters.
Object.assign(window, { tessera: { view, completions, errors, controller: () => completionController(view) } });
