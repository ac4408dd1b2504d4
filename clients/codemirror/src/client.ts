// The Tabby-compatible HTTP client: POST /v1/completions with `segments` the way Tabby's own
// clients send it, POST /v1/events for view / select / dismiss. Works against Tessera and Tabby.
export interface Segments {
  prefix: string;
  suffix?: string;
  filepath?: string;
  git_url?: string;
  declarations?: { filepath: string; body: string }[];
  relevant_snippets_from_changed_files?: { filepath: string; body: string }[];
  clipboard?: string;
}
export interface CompletionRequest {
  language: string;
  segments: Segments;
  mode?: "standard";
  temperature?: number;
  max_tokens?: number;
}
export interface CompletionResponse {
  id: string;
  choices: { index: number; text: string }[];
}
export interface LogEvent {
  type: "view" | "select" | "dismiss";
  completion_id: string;
  choice_index: number;
  view_id?: string;
  elapsed?: number; // ms since the completion was shown (select / dismiss)
  select_kind?: "line";
}
export interface ClientOptions {
  baseUrl: string; // e.g. "http://127.0.0.1:8080" ("" = this page's origin)
  token?: string; // Bearer token (Tessera's --api-key, Tabby's auth token)
  fetch?: typeof fetch; // for tests
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class TabbyClient {
  constructor(private readonly opts: ClientOptions) {}

  private headers(): Record<string, string> {
    const h: Record<string, string> = { "Content-Type": "application/json" };
    if (this.opts.token) h["Authorization"] = `Bearer ${this.opts.token}`;
    return h;
  }
  private url(path: string): string {
    return this.opts.baseUrl.replace(/\/+$/, "") + path;
  }
  private get fetchFn(): typeof fetch {
    return this.opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  // Rejects with an AbortError when `signal` aborts (the server then cancels the generation).
  async complete(req: CompletionRequest, signal?: AbortSignal): Promise<CompletionResponse> {
    const res = await this.fetchFn(this.url("/v1/completions"), {
      method: "POST",
      headers: this.headers(),
      body: JSON.stringify(req),
      signal,
    });
    if (!res.ok) throw new HttpError(res.status, `/v1/completions: HTTP ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as CompletionResponse;
    if (!body || !Array.isArray(body.choices)) throw new Error("/v1/completions: no 'choices' in the response");
    return body;
  }

  // Fire and forget: telemetry never disturbs editing.
  async postEvent(ev: LogEvent): Promise<void> {
    try {
      await this.fetchFn(this.url("/v1/events"), { method: "POST", headers: this.headers(), body: JSON.stringify(ev) });
    } catch {
      /* ignored */
    }
  }
}

// Tabby's clients send about 20 lines either side of the cursor.
export function buildSegments(
  doc: string,
  pos: number,
  opts: { maxPrefixLines: number; maxSuffixLines: number; filepath?: string; gitUrl?: string },
): Segments {
  const before = doc.slice(0, pos);
  const after = doc.slice(pos);
  const preLines = before.split("\n");
  const sufLines = after.split("\n");
  const seg: Segments = {
    prefix: preLines.slice(Math.max(0, preLines.length - opts.maxPrefixLines)).join("\n"),
    suffix: sufLines.slice(0, opts.maxSuffixLines).join("\n"),
  };
  if (opts.filepath) seg.filepath = opts.filepath;
  if (opts.gitUrl) seg.git_url = opts.gitUrl;
  return seg;
}
