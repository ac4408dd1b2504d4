import { describe, expect, it, vi } from "vitest";
import { buildSegments, TabbyClient } from "../src/client";

const okJson = (body: unknown) =>
  ({ ok: true, status: 200, json: async () => body, text: async () => JSON.stringify(body) }) as unknown as Response;

describe("TabbyClient", () => {
  it("posts a Tabby request with a Bearer token", async () => {
    const fetch = vi.fn(async (_url: string, _init: RequestInit) => okJson({ id: "cmpl-1", choices: [{ index: 0, text: "x" }] }));
    const c = new TabbyClient({ baseUrl: "http://h:1/", token: "sekrit", fetch: fetch as unknown as typeof globalThis.fetch });
    const r = await c.complete({ language: "python", segments: { prefix: "def f(", suffix: ")\n", filepath: "a.py" } });
    expect(r.choices[0].text).toBe("x");
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe("http://h:1/v1/completions");
    expect(init.method).toBe("POST");
    expect((init.headers as Record<string, string>)["Authorization"]).toBe("Bearer sekrit");
    expect((init.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
    expect(JSON.parse(init.body as string)).toEqual({
      language: "python",
      segments: { prefix: "def f(", suffix: ")\n", filepath: "a.py" },
    });
  });
  it("sends no Authorization header without a token", async () => {
    const fetch = vi.fn(async (_u: string, _i: RequestInit) => okJson({ id: "c", choices: [] }));
    await new TabbyClient({ baseUrl: "", fetch: fetch as unknown as typeof globalThis.fetch }).complete({ language: "go", segments: { prefix: "" } });
    expect(fetch.mock.calls[0][0]).toBe("/v1/completions");
    expect((fetch.mock.calls[0][1].headers as Record<string, string>)["Authorization"]).toBeUndefined();
  });
  it("reports HTTP errors with the status", async () => {
    const fetch = vi.fn(async () => ({ ok: false, status: 401, text: async () => "no key" }) as unknown as Response);
    const c = new TabbyClient({ baseUrl: "", fetch: fetch as unknown as typeof globalThis.fetch });
    await expect(c.complete({ language: "python", segments: { prefix: "" } })).rejects.toMatchObject({ status: 401 });
  });
  it("posts events and swallows their failures", async () => {
    const fetch = vi.fn(async (_u: string, _i: RequestInit) => {
      throw new Error("down");
    });
    const c = new TabbyClient({ baseUrl: "http://h", fetch: fetch as unknown as typeof globalThis.fetch });
    await c.postEvent({ type: "view", completion_id: "cmpl-1", choice_index: 0, view_id: "v" });
    expect(fetch.mock.calls[0][0]).toBe("http://h/v1/events");
    expect(JSON.parse(fetch.mock.calls[0][1].body as string)).toEqual({ type: "view", completion_id: "cmpl-1", choice_index: 0, view_id: "v" });
  });
});

describe("buildSegments", () => {
  it("keeps the last / first lines around the cursor like Tabby's clients", () => {
    const doc = ["l1", "l2", "l3", "l4"].join("\n");
    const pos = doc.indexOf("l3") + 1;
    const s = buildSegments(doc, pos, { maxPrefixLines: 2, maxSuffixLines: 1, filepath: "src/x.py", gitUrl: "https://g/x.git" });
    expect(s).toEqual({ prefix: "l2\nl", suffix: "3", filepath: "src/x.py", git_url: "https://g/x.git" });
  });
  it("leaves out filepath and git_url when not given", () => {
    expect(buildSegments("ab", 1, { maxPrefixLines: 20, maxSuffixLines: 20 })).toEqual({ prefix: "a", suffix: "b" });
  });
});
