// The extension in a real EditorView (jsdom): debounce, abort on keystroke, ghost decoration,
// Tab / Ctrl-Right / Escape, type-through, cache, events.
import { EditorState } from "@codemirror/state";
import { EditorView, runScopeHandlers } from "@codemirror/view";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { completionController, ghostField, inlineCompletion, nextWord, type CompletionInfo, type InlineCompletionOptions } from "../src/index";

interface Call {
  url: string;
  body: any;
  headers: Record<string, string>;
  signal?: AbortSignal;
  reply: (text: string, id?: string) => void;
}

// A fake server: completion requests stay pending until the test replies; events resolve at once.
function fakeServer() {
  const completions: Call[] = [];
  const events: any[] = [];
  let n = 0;
  const fetch = vi.fn((url: string, init: RequestInit) => {
    const body = JSON.parse(init.body as string);
    if (url.endsWith("/v1/events")) {
      events.push(body);
      return Promise.resolve({ ok: true, status: 200, text: async () => "" } as unknown as Response);
    }
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      completions.push({
        url,
        body,
        headers: init.headers as Record<string, string>,
        signal,
        reply: (text, id = `cmpl-${++n}`) =>
          resolve({ ok: true, status: 200, json: async () => ({ id, choices: [{ index: 0, text }] }) } as unknown as Response),
      });
    });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, completions, events };
}

let view: EditorView;
let server: ReturnType<typeof fakeServer>;
let shown: CompletionInfo[];

function setup(doc = "def add(a, b):\n    ", opts: InlineCompletionOptions = {}) {
  server = fakeServer();
  shown = [];
  view = new EditorView({
    parent: document.body,
    state: EditorState.create({
      doc,
      selection: { anchor: doc.length },
      extensions: [
        inlineCompletion({
          url: "http://srv",
          language: "python",
          filepath: "src/add.py",
          fetch: server.fetch,
          now: () => Date.now(),
          onCompletion: (c) => shown.push(c),
          ...opts,
        }),
      ],
    }),
  });
}

function type(text: string) {
  for (const ch of text) {
    const pos = view.state.selection.main.head;
    view.dispatch({ changes: { from: pos, insert: ch }, selection: { anchor: pos + 1 }, userEvent: "input.type" });
  }
}
const key = (k: string, mods: KeyboardEventInit = {}) =>
  runScopeHandlers(view, new KeyboardEvent("keydown", { key: k, ...mods }), "editor");
const ghostText = () => view.contentDOM.querySelector(".cm-ghostText")?.textContent ?? null;
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  view.destroy();
  vi.useRealTimers();
});

describe("inlineCompletion", () => {
  it("debounces: one request after the pause, with the latest text", async () => {
    setup();
    type("re");
    await vi.advanceTimersByTimeAsync(100);
    type("t");
    await vi.advanceTimersByTimeAsync(249);
    expect(server.completions).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.completions).toHaveLength(1);
    expect(server.completions[0].body.segments.prefix).toBe("def add(a, b):\n    ret");
  });

  it("sends the request as Tabby does", async () => {
    setup("x = 1\n\nprint(x)", { token: () => "k1", gitUrl: "https://example.com/r.git", maxTokens: 32 });
    view.dispatch({ selection: { anchor: 6 } });
    type("y");
    await vi.advanceTimersByTimeAsync(400);
    const c = server.completions[0];
    expect(c.url).toBe("http://srv/v1/completions");
    expect(c.headers["Authorization"]).toBe("Bearer k1");
    expect(c.body).toEqual({
      language: "python",
      segments: { prefix: "x = 1\ny", suffix: "\nprint(x)", filepath: "src/add.py", git_url: "https://example.com/r.git" },
      max_tokens: 32,
    });
  });

  it("aborts the request in flight on every keystroke and ignores its answer", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    const first = server.completions[0];
    expect(first.signal?.aborted).toBe(false);
    type("e");
    expect(first.signal?.aborted).toBe(true);
    expect(completionController(view)!.stats.aborted).toBe(1);
    first.reply("turn a + b");
    await flush();
    expect(ghostText()).toBeNull();
    await vi.advanceTimersByTimeAsync(400);
    expect(server.completions).toHaveLength(2);
    expect(server.completions[1].signal?.aborted).toBe(false);
  });

  it("shows ghost text, Tab inserts it, and view / select events are posted", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b", "cmpl-x");
    await flush();
    expect(ghostText()).toBe("eturn a + b");
    expect(view.state.doc.toString()).toBe("def add(a, b):\n    r"); // not in the document
    expect(shown[0]).toMatchObject({ id: "cmpl-x", text: "eturn a + b", cached: false });
    expect(server.events).toEqual([
      expect.objectContaining({ type: "view", completion_id: "cmpl-x", choice_index: 0, view_id: expect.stringMatching(/^view-cmpl-x-at-/) }),
    ]);
    expect(key("Tab")).toBe(true);
    expect(view.state.doc.toString()).toBe("def add(a, b):\n    return a + b");
    expect(view.state.selection.main.head).toBe(view.state.doc.length);
    expect(ghostText()).toBeNull();
    await flush();
    expect(server.events[1]).toMatchObject({ type: "select", completion_id: "cmpl-x", choice_index: 0, view_id: server.events[0].view_id });
  });

  it("a ghost with Windows line ends is inserted whole by Tab", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a\r\n    pass\rx", "cmpl-crlf");
    await flush();
    expect(ghostText()).toBe("eturn a\n    pass\nx");
    expect(key("Tab")).toBe(true);
    expect(view.state.doc.toString()).toBe("def add(a, b):\n    return a\n    pass\nx");
    expect(view.state.selection.main.head).toBe(view.state.doc.length);
  });

  it("Tab without ghost text is left to other keymaps", () => {
    setup();
    expect(key("Tab")).toBe(false);
    expect(key("Escape")).toBe(false);
  });

  it("Ctrl-Right accepts one word and keeps the rest", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b");
    await flush();
    expect(key("ArrowRight", { ctrlKey: true })).toBe(true);
    expect(view.state.doc.toString()).toBe("def add(a, b):\n    return");
    expect(ghostText()).toBe(" a + b");
    key("ArrowRight", { ctrlKey: true });
    expect(ghostText()).toBe(" + b");
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.completions).toHaveLength(1); // accepting a word asks for nothing new
    expect(server.events.filter((e) => e.type === "select")).toHaveLength(1);
  });

  it("Escape dismisses and posts a dismiss event", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b", "cmpl-d");
    await flush();
    expect(key("Escape")).toBe(true);
    expect(ghostText()).toBeNull();
    expect(view.state.field(ghostField)).toBeNull();
    await flush();
    expect(server.events.map((e) => e.type)).toEqual(["view", "dismiss"]);
    expect(server.events[1]).toMatchObject({ completion_id: "cmpl-d", elapsed: expect.any(Number) });
  });

  it("typing the ghost's next characters keeps the rest without a new request", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b");
    await flush();
    type("etu");
    expect(ghostText()).toBe("rn a + b");
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.completions).toHaveLength(1);
    type("X"); // diverges: ghost gone, dismissed, new request after the pause
    expect(ghostText()).toBeNull();
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.completions).toHaveLength(2);
    expect(server.events.map((e) => e.type)).toEqual(["view", "dismiss"]);
  });

  it("answers a prefix and suffix seen before from the cache", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b");
    await flush();
    type("x");
    await vi.advanceTimersByTimeAsync(400);
    expect(server.completions).toHaveLength(2); // "rx" went to the server (pending) ...
    view.dispatch({ changes: { from: view.state.doc.length - 1, to: view.state.doc.length }, userEvent: "delete.backward" });
    expect(server.completions[1].signal?.aborted).toBe(true); // ... and was aborted by the backspace
    await vi.advanceTimersByTimeAsync(400);
    expect(server.completions).toHaveLength(2);
    expect(ghostText()).toBe("eturn a + b"); // "r" again: from the cache
    expect(shown.at(-1)).toMatchObject({ cached: true, requestMs: 0 });
    expect(completionController(view)!.stats.cacheHits).toBe(1);
  });

  it("moving the cursor away drops the ghost text", async () => {
    setup();
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b");
    await flush();
    view.dispatch({ selection: { anchor: 0 } });
    expect(ghostText()).toBeNull();
  });

  it("does not post events when they are turned off", async () => {
    setup(undefined, { events: false });
    type("r");
    await vi.advanceTimersByTimeAsync(400);
    server.completions[0].reply("eturn a + b");
    await flush();
    key("Tab");
    await flush();
    expect(server.events).toHaveLength(0);
  });
});

describe("nextWord", () => {
  it("takes spaces plus a word, or a run of punctuation, or a line break with indentation", () => {
    expect(nextWord("eturn a")).toBe("eturn");
    expect(nextWord(" a + b")).toBe(" a");
    expect(nextWord("(a, b)")).toBe("(");
    expect(nextWord("\n    return")).toBe("\n    ");
    expect(nextWord("   ")).toBe("   ");
  });
});
