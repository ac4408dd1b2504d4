// inlineCompletion(): ghost-text completions for CodeMirror 6 from a Tabby-compatible server.
// Every keystroke aborts the request in flight and (re)starts an adaptive debounce; when it fires,
// the text around the cursor goes to /v1/completions (or comes from a small LRU cache) and the answer
// is shown as a widget decoration at the cursor. Tab accepts, Ctrl/Cmd-Right accepts a word, Escape
// dismisses; typing the ghost's next characters keeps the rest. view / select / dismiss events go to
// /v1/events.
import { Annotation, type EditorState, type Extension, Facet, Prec, StateEffect, StateField, type Transaction } from "@codemirror/state";
import {
  Decoration,
  type DecorationSet,
  EditorView,
  keymap,
  ViewPlugin,
  type ViewUpdate,
  WidgetType,
} from "@codemirror/view";
import { LruCache } from "./cache";
import { buildSegments, type CompletionRequest, type LogEvent, TabbyClient } from "./client";
import { AdaptiveDebounce, type DebounceOptions } from "./debounce";

type Value<T> = T | (() => T);
const read = <T>(v: Value<T>): T => (typeof v === "function" ? (v as () => T)() : v);

export interface CompletionInfo {
  id: string;
  text: string;
  cached: boolean;
  latencyMs: number; // last keystroke -> ghost text dispatched
  requestMs: number; // the HTTP request alone (0 when cached)
}

export interface InlineCompletionOptions {
  url?: string; // server base URL; "" (default) = this page's origin
  token?: Value<string | undefined>; // Bearer token
  language?: Value<string>; // Tabby language id ("python", "javascript", ...); default "plaintext"
  filepath?: Value<string | undefined>;
  gitUrl?: Value<string | undefined>;
  maxTokens?: number; // sent as max_tokens when set (Tessera honours it; Tabby ignores it)
  maxPrefixLines?: number; // default 20, as Tabby's clients
  maxSuffixLines?: number; // default 20
  debounce?: Partial<DebounceOptions>;
  cacheSize?: number; // default 64 entries
  events?: boolean; // post view/select/dismiss to /v1/events (default true)
  fetch?: typeof fetch;
  now?: () => number; // clock (ms), for tests
  onCompletion?: (info: CompletionInfo) => void;
  onError?: (err: unknown) => void;
}

export interface Ghost {
  text: string;
  pos: number;
  id: string;
  choiceIndex: number;
  viewId: string;
  shownAt: number;
}

export const setGhost = StateEffect.define<Ghost | null>();
const acceptAnnotation = Annotation.define<"full" | "word">();

function typedThrough(g: Ghost, tr: Transaction): Ghost | null {
  let inserted: string | null = null;
  let ok = true;
  tr.changes.iterChanges((fromA, toA, _fromB, _toB, text) => {
    if (inserted !== null || fromA !== g.pos || toA !== fromA) ok = false;
    inserted = text.toString();
  });
  if (!ok || !inserted) return null;
  const s: string = inserted;
  if (!g.text.startsWith(s) || s.length >= g.text.length) return null;
  const pos = g.pos + s.length;
  const sel = tr.state.selection.main;
  if (!sel.empty || sel.head !== pos) return null;
  return { ...g, text: g.text.slice(s.length), pos };
}

export const ghostField = StateField.define<Ghost | null>({
  create: () => null,
  update(g, tr) {
    for (const e of tr.effects) if (e.is(setGhost)) g = e.value === null ? null : { ...e.value };
    if (tr.effects.some((e) => e.is(setGhost))) return g;
    if (!g) return null;
    if (tr.docChanged) return typedThrough(g, tr);
    if (tr.selection) {
      const sel = tr.state.selection.main;
      if (!sel.empty || sel.head !== g.pos) return null;
    }
    return g;
  },
});

class GhostWidget extends WidgetType {
  constructor(readonly text: string) {
    super();
  }
  eq(o: GhostWidget) {
    return o.text === this.text;
  }
  toDOM() {
    const span = document.createElement("span");
    span.className = "cm-ghostText";
    span.setAttribute("aria-hidden", "true");
    span.textContent = this.text;
    return span;
  }
  ignoreEvent() {
    return false;
  }
}

const ghostDecorations = EditorView.decorations.compute([ghostField], (state): DecorationSet => {
  const g = state.field(ghostField);
  if (!g || !g.text) return Decoration.none;
  return Decoration.set([Decoration.widget({ widget: new GhostWidget(g.text), side: 1 }).range(g.pos)]);
});

// Tab: insert the whole ghost text.
export function acceptGhost(view: EditorView): boolean {
  const g = view.state.field(ghostField, false);
  if (!g || !g.text) return false;
  view.dispatch({
    changes: { from: g.pos, insert: g.text },
    selection: { anchor: g.pos + g.text.length },
    effects: setGhost.of(null),
    annotations: acceptAnnotation.of("full"),
    userEvent: "input.complete",
    scrollIntoView: true,
  });
  return true;
}

// The next word of a ghost text: leading spaces plus a run of word characters, or of other
// non-space characters, or (at a line end) the newline and the next line's indentation.
export function nextWord(text: string): string {
  const m = /^[ \t]*(?:[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]+)|^[ \t]*\r?\n[ \t]*/u.exec(text);
  return m && m[0] ? m[0] : text;
}

// Ctrl/Cmd-Right: insert the ghost's next word, keep the rest as ghost text.
export function acceptGhostWord(view: EditorView): boolean {
  const g = view.state.field(ghostField, false);
  if (!g || !g.text) return false;
  const w = nextWord(g.text);
  const rest = g.text.slice(w.length);
  const pos = g.pos + w.length;
  view.dispatch({
    changes: { from: g.pos, insert: w },
    selection: { anchor: pos },
    effects: setGhost.of(rest ? { ...g, text: rest, pos } : null),
    annotations: acceptAnnotation.of("word"),
    userEvent: "input.complete",
    scrollIntoView: true,
  });
  return true;
}

// Escape: drop the ghost text (false when there is none, so Escape keeps its other meanings).
export function dismissGhost(view: EditorView): boolean {
  if (!view.state.field(ghostField, false)) return false;
  view.dispatch({ effects: setGhost.of(null) });
  return true;
}

interface CacheEntry {
  id: string;
  choiceIndex: number;
  text: string;
}

export class CompletionController {
  readonly client: TabbyClient;
  readonly debounce: AdaptiveDebounce;
  readonly cache: LruCache<CacheEntry>;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inflight: AbortController | null = null;
  private docVersion = 0;
  private keyAt = 0;
  private selected = new Set<string>();
  stats = { requests: 0, aborted: 0, cacheHits: 0, shown: 0, errors: 0 };

  constructor(
    private readonly view: EditorView,
    private readonly opts: InlineCompletionOptions,
  ) {
    this.client = new TabbyClient({
      baseUrl: opts.url ?? "",
      get token() {
        return opts.token === undefined ? undefined : read(opts.token);
      },
      fetch: opts.fetch,
    });
    this.debounce = new AdaptiveDebounce(opts.debounce);
    this.cache = new LruCache<CacheEntry>(opts.cacheSize ?? 64);
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : performance.now();
  }

  private event(ev: LogEvent) {
    if (this.opts.events !== false) void this.client.postEvent(ev);
  }

  update(u: ViewUpdate) {
    const prev = u.startState.field(ghostField, false) ?? null;
    const next = u.state.field(ghostField, false) ?? null;
    const accepted = u.transactions.map((t) => t.annotation(acceptAnnotation)).find((a) => a !== undefined);
    if (prev && prev !== next && (!next || next.id !== prev.id || accepted)) {
      const elapsed = Math.max(0, Math.round(this.now() - prev.shownAt));
      const base = { completion_id: prev.id, choice_index: prev.choiceIndex, view_id: prev.viewId, elapsed };
      if (accepted) {
        if (!this.selected.has(prev.viewId)) this.event({ type: "select", ...base });
        if (this.selected.size > 256) this.selected.clear(); // only the latest views matter
        this.selected.add(prev.viewId);
      } else if (!this.selected.has(prev.viewId)) {
        this.event({ type: "dismiss", ...base });
      }
    }

    if (u.docChanged) {
      this.docVersion++;
      this.cancel();
      const typed = u.transactions.some(
        (t) => t.docChanged && (t.isUserEvent("input") || t.isUserEvent("delete")) && t.annotation(acceptAnnotation) !== "word",
      );
      if (typed) {
        const now = this.now();
        if (!accepted) this.debounce.keystroke(now);
        this.keyAt = now;
        if (!next) this.schedule();
      }
    } else if (u.selectionSet && !next) {
      this.cancel();
    }
  }

  // Stops the pending timer and aborts the request in flight (the server cancels its generation).
  cancel() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight) {
      this.inflight.abort();
      this.inflight = null;
      this.stats.aborted++;
    }
  }

  private schedule() {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.request();
    }, this.debounce.delay());
  }

  // Builds the Tabby request for the current cursor (null with a selection).
  buildRequest(state: EditorState): { req: CompletionRequest; key: string; pos: number } | null {
    const sel = state.selection.main;
    if (!sel.empty) return null;
    const o = this.opts;
    const segments = buildSegments(state.doc.toString(), sel.head, {
      maxPrefixLines: o.maxPrefixLines ?? 20,
      maxSuffixLines: o.maxSuffixLines ?? 20,
      filepath: o.filepath === undefined ? undefined : read(o.filepath),
      gitUrl: o.gitUrl === undefined ? undefined : read(o.gitUrl),
    });
    const language = o.language === undefined ? "plaintext" : read(o.language);
    const req: CompletionRequest = { language, segments };
    if (o.maxTokens !== undefined) req.max_tokens = o.maxTokens;
    const key = JSON.stringify([language, segments.filepath ?? "", segments.prefix, segments.suffix]);
    return { req, key, pos: sel.head };
  }

  async request(): Promise<void> {
    const built = this.buildRequest(this.view.state);
    if (!built) return;
    const { req, key, pos } = built;
    const version = this.docVersion;
    const hit = this.cache.get(key);
    if (hit) {
      this.stats.cacheHits++;
      this.show(hit, pos, true, 0);
      return;
    }
    const ctrl = new AbortController();
    this.inflight = ctrl;
    this.stats.requests++;
    const t0 = this.now();
    let entry: CacheEntry;
    try {
      const res = await this.client.complete(req, ctrl.signal);
      const c = res.choices[0];
      // The editor's document uses "\n" only (CodeMirror splits "\r\n" and "\r" into lines): a
      // ghost with "\r" would be longer than what Tab inserts, and its end past the document's.
      entry = { id: res.id, choiceIndex: c?.index ?? 0, text: (c?.text ?? "").replace(/\r\n?/g, "\n") };
    } catch (e) {
      if (!ctrl.signal.aborted) {
        this.stats.errors++;
        this.opts.onError?.(e);
      }
      return;
    } finally {
      if (this.inflight === ctrl) this.inflight = null;
    }
    this.cache.set(key, entry);
    if (ctrl.signal.aborted || version !== this.docVersion || this.view.state.selection.main.head !== pos) return;
    this.show(entry, pos, false, this.now() - t0);
  }

  private show(c: CacheEntry, pos: number, cached: boolean, requestMs: number) {
    const now = this.now();
    const info: CompletionInfo = { id: c.id, text: c.text, cached, latencyMs: now - this.keyAt, requestMs };
    if (c.text) {
      const viewId = `view-${c.id}-at-${Date.now()}`;
      this.view.dispatch({ effects: setGhost.of({ text: c.text, pos, id: c.id, choiceIndex: c.choiceIndex, viewId, shownAt: now }) });
      this.stats.shown++;
      this.event({ type: "view", completion_id: c.id, choice_index: c.choiceIndex, view_id: viewId });
    }
    this.opts.onCompletion?.(info);
  }

  destroy() {
    this.cancel();
  }
}

const optionsFacet = Facet.define<InlineCompletionOptions, InlineCompletionOptions>({
  combine: (values) => values[0] ?? {},
});

export const completionPlugin = ViewPlugin.define<CompletionController>((view) => {
  const opts = view.state.facet(optionsFacet);
  return new CompletionController(view, opts);
});



const ghostTheme = EditorView.baseTheme({
  ".cm-ghostText": { opacity: "0.55", color: "#6a737d", fontStyle: "italic", whiteSpace: "pre", pointerEvents: "none" },
});

export function inlineCompletion(options: InlineCompletionOptions = {}): Extension {
  return [
    optionsFacet.of(options),
    ghostField,
    ghostDecorations,
    completionPlugin,
    ghostTheme,
    Prec.highest(
      keymap.of([
        { key: "Tab", run: acceptGhost },
        { key: "Mod-ArrowRight", run: acceptGhostWord },
        { key: "Escape", run: dismissGhost },
      ]),
    ),
  ];
}

// The controller of a view (stats, cancel), or null without the extension.
export function completionController(view: EditorView): CompletionController | null {
  return view.plugin(completionPlugin);
}
