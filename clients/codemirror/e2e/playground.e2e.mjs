#!/usr/bin/env node
// End-to-end test of the playground in Debian's headless chromium (playwright-core, no browser
// download): starts `tessera serve --port 0` on a model, opens /playground, types, waits for ghost
// text, presses Tab and checks the insertion; then makes keystrokes abort requests in flight and
// checks /metrics (cancelled counter, no sequence or KV block left in use). With --latency N it
// measures keystroke-to-ghost-text latency over N completions (p50/p95). Saves screenshots in --out.
// Exit codes: 0 pass, 1 fail, 77 skipped (no chromium, no model), printed with the reason.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    tessera: { type: "string" },
    model: { type: "string" },
    out: { type: "string", default: "e2e-out" },
    name: { type: "string", default: "e2e" },
    latency: { type: "string", default: "0" },
    aborts: { type: "string", default: "5" },
    "max-tokens": { type: "string", default: "" },
    "abort-max-tokens": { type: "string", default: "256" },
    threads: { type: "string", default: "" },
  },
});
// Python prompts for the latency run: [text already there, characters then typed].
const LATENCY_PROMPTS = [
  ['import math\n\n\ndef is_prime(n):\n    """Return True if n is a prime number."""\n    ', "if n"],
  ['def factorial(n):\n    """Return n!."""\n    ', "if n"],
  ["def reverse_string(s):\n    ", "ret"],
  ["def fahrenheit_to_celsius(f):\n    ", "ret"],
  ['def mean(values):\n    """Arithmetic mean of a list of numbers."""\n    ', "ret"],
  ['def read_lines(path):\n    """Return the lines of a text file."""\n    ', "with"],
  ["def count_words(text):\n    ", "ret"],
  ["def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        ", "a, "],
  ["class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        ", "self"],
  ["def max_of(a, b):\n    ", "ret"],
  ["def is_palindrome(s):\n    ", "ret"],
  ['def flatten(lists):\n    """Flatten a list of lists."""\n    ', "ret"],
  ["def gcd(a, b):\n    while b:\n        ", "a, "],
  ["def square_all(xs):\n    ", "ret"],
  ["import json\n\n\ndef load_config(path):\n    ", "with"],
  ["def sum_of_squares(n):\n    ", "ret"],
  ['def unique(items):\n    """Items without duplicates, in order."""\n    ', "seen"],
  ["def celsius_to_kelvin(c):\n    ", "ret"],
  ['def vowels(s):\n    """Count the vowels in s."""\n    ', "ret"],
  ["def merge_dicts(a, b):\n    ", "ret"],
  ["def clamp(x, lo, hi):\n    ", "ret"],
  ["def last(xs):\n    ", "ret"],
  ["def average_length(words):\n    ", "ret"],
  ["def to_upper(words):\n    ", "ret"],
  ["def is_even(n):\n    ", "ret"],
  ["def word_lengths(words):\n    ", "ret"],
];

const NAME = `codemirror_e2e_${args.name}`;
const skip = (why) => {
  console.log(`SKIP ${NAME}: ${why}`);
  process.exit(77);
};
const fail = (why) => {
  console.error(`FAIL ${NAME}: ${why}`);
  process.exitCode = 1;
  throw new Error(why);
};
const check = (cond, why) => {
  if (!cond) fail(why);
  console.log(`  ok: ${why}`);
};

// CHROMIUM=path names the browser (and only that one); else Debian's.
const chromiumPath = (process.env.CHROMIUM ? [process.env.CHROMIUM] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"]).find((p) => existsSync(p));
if (!chromiumPath) skip("no chromium (apt-get install chromium; scripts/setup.sh does it)");
if (!args.tessera || !existsSync(args.tessera)) fail(`no tessera binary at ${args.tessera}`);
if (!args.model || !existsSync(args.model)) skip(`model ${args.model} is not there (scripts/setup.sh fetches the real models)`);
const { chromium } = await import("playwright-core");
const out = resolve(args.out);
mkdirSync(out, { recursive: true });

// --- the server ---------------------------------------------------------------------------------
function startServer() {
  const extra = args.threads ? ["--threads", args.threads] : [];
  const proc = spawn(args.tessera, ["serve", "-m", args.model, "--port", "0", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  const log = [];
  const url = new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error("server not listening after 180 s")), 180_000);
    proc.stderr.setEncoding("utf8");
    let buf = "";
    proc.stderr.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        log.push(line);
        const m = /listening on (http:\/\/[^\s]+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          res(m[1]);
        }
      }
    });
    proc.on("exit", (code) => rej(new Error(`server exited (${code}):\n${log.join("\n")}`)));
  });
  return { proc, url, log };
}

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { cancelled: get("tessera_requests_cancelled_total"), running: get("tessera_requests_running"),
           waiting: get("tessera_requests_waiting"), kvUsed: get("tessera_kv_blocks_used"), generations: get("tessera_generations_total") };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

const server = startServer();
let browser;
const results = { name: args.name, model: args.model };
try {
  const base = await server.url;
  console.log(`${NAME}: server ${base}, chromium ${chromiumPath}`);
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1100, height: 420 }, deviceScaleFactor: 1 });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
  const offline = []; // every request must go to the server itself: nothing fetched from elsewhere
  page.on("request", (r) => !r.url().startsWith(base) && offline.push(r.url()));

  const q = args["max-tokens"] ? `?max_tokens=${args["max-tokens"]}` : "";
  const resp = await page.goto(`${base}/playground${q}`);
  const status = resp.status();
  check(status === 200, `GET /playground answers 200${status === 200 ? "" : ` (got ${status}: ${(await resp.text()).slice(0, 300)})`}`);
  await page.waitForFunction(() => window.tessera?.view);
  await page.waitForFunction(() => /^model: /.test(document.getElementById("model").textContent));

  const doc = () => page.evaluate(() => window.tessera.view.state.doc.toString());
  const setDoc = (text) =>
    page.evaluate((t) => {
      const v = window.tessera.view;
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: t }, selection: { anchor: t.length } });
      v.focus();
    }, text);
  const ghost = page.locator(".cm-ghostText");

  // 1. Type, see ghost text, press Tab, see it inserted. A noise model may answer "" (nothing to
  //    show) for a prefix: type one more character then.
  await page.locator(".cm-content").click();
  await page.keyboard.press("Control+End");
  let shown = "";
  let typed = "";
  const doc0 = await doc();
  for (const ch of "return fib") {
    await page.keyboard.type(ch);
    typed += ch;
    try {
      await ghost.waitFor({ state: "visible", timeout: 8000 });
      shown = await ghost.textContent();
      if (shown) break;
    } catch {
      /* no ghost for this prefix yet */
    }
  }
  check(shown.length > 0, `ghost text appeared: ${JSON.stringify(shown.slice(0, 60))}`);
  const before = await doc();
  check(before === doc0 + typed, "the document holds what was typed; the ghost text is only a decoration");
  await page.screenshot({ path: join(out, `playground-${args.name}.png`) });
  results.screenshot = join(out, `playground-${args.name}.png`);
  await page.keyboard.press("Tab");
  const after = await doc();
  // The ghost widget's textContent loses line breaks and shows control characters differently
  // (a noise model writes both), so compare the inserted text without them.
  const visible = (s) => s.replace(/[\s\u0000-\u001f\u007f]/g, "");
  check(after.startsWith(before) && visible(after.slice(before.length)) === visible(shown),
        "Tab inserted the ghost text at the cursor" +
          (after.startsWith(before) ? ` (inserted ${JSON.stringify(after.slice(before.length).slice(0, 200))}, ghost ${JSON.stringify(shown.slice(0, 200))})`
                                    : ` (document ${JSON.stringify(after.slice(-200))})`));

  // 2. Keystrokes abort requests in flight; the server cancels them and frees their sequences.
  const nAborts = Number(args.aborts);
  if (nAborts > 0) {
    // Long completions keep requests in flight long enough to be interrupted (the tiny model's
    // noise still often hits a stop word early). The navigation aborts whatever the first part
    // left in flight: settle first, then count from there.
    await page.goto(`${base}/playground?max_tokens=${args["abort-max-tokens"] || 256}`);
    await page.waitForFunction(() => window.tessera?.view);
    const settle = async (until) => {
      let m = await metrics(base);
      for (let t = 0; t < 100 && !until(m); t++) {
        await new Promise((r) => setTimeout(r, 100));
        m = await metrics(base);
      }
      // A request is counted (cancelled or not) by its HTTP thread, which polls every 20 ms, just
      // after its sequence is freed: give it that time.
      await new Promise((r) => setTimeout(r, 100));
      return metrics(base);
    };
    const idle = (m) => m.running === 0 && m.waiting === 0 && m.kvUsed === 0;
    const m0 = await settle(idle);
    const stats = () => page.evaluate(() => ({ ...window.tessera.controller().stats }));
    // A request the server finishes just before the keystroke lands is aborted in the browser but
    // not cancelled by the server: go on until the server cancelled nAborts (at most 6 x nAborts tries).
    let tries = 0;
    for (let i = 0; i < 6 * nAborts; i++, tries++) {
      if ((await metrics(base)).cancelled - m0.cancelled >= nAborts) break;
      // A fresh prompt of about 500 tokens each time (no prefix-cache hit): prefill keeps it busy.
      const body = Array.from({ length: 18 }, (_, k) => `    v${k} = combine(v${k ? k - 1 : "x"}, weight_${i}_${k}, bias_${k}) * scale_${k} + offset_${i}\n`);
      await setDoc(`def f${i}(x):\n${body.join("")}    `);
      const r0 = (await stats()).requests;
      await page.keyboard.type("y");
      await page.waitForFunction((n) => window.tessera.controller().stats.requests > n, r0, { polling: 5 });
      await page.waitForTimeout(10); // the request reaches the server and starts
      await page.keyboard.type("z"); // aborts it
      await page.keyboard.press("Escape");
      await page.evaluate(() => window.tessera.controller().cancel());
      await settle(idle);
    }
    const aborted = (await stats()).aborted;
    const m1 = await settle(idle);
    results.aborts = { tries, aborted_by_client: aborted, cancelled_by_server: m1.cancelled - m0.cancelled, after: m1 };
    console.log(`${NAME}: aborts ${JSON.stringify(results.aborts)}`);
    const cancelled = m1.cancelled - m0.cancelled;
    check(cancelled >= nAborts, `/metrics: tessera_requests_cancelled_total rose by ${cancelled} (>= ${nAborts}) over ${tries} tries`);
    check(aborted >= cancelled, `every cancellation was a request the browser aborted on a keystroke (${aborted} aborted, ${cancelled} cancelled)`);
    check(m1.running === 0 && m1.waiting === 0, `/metrics: no sequence in use or waiting afterwards (running ${m1.running}, waiting ${m1.waiting})`);
    check(m1.kvUsed === 0, `/metrics: no KV block held by a sequence afterwards (tessera_kv_blocks_used ${m1.kvUsed})`);
  }

  // 3. Latency: keystroke -> ghost text visible, over N completions of distinct prompts.
  const nLat = Number(args.latency);
  if (nLat > 0) {
    await page.goto(`${base}/playground${q}`);
    await page.waitForFunction(() => window.tessera?.view);
    const prompts = LATENCY_PROMPTS;
    const lat = [], inPage = [], req = [], texts = [];
    let misses = 0;
    let cold = null;
    for (let i = -1; lat.length < nLat && i < prompts.length; i++) {
      // i = -1: one warm-up completion (the first request after start pays for cold caches), reported apart.
      const [head, typed] = i < 0 ? ["def add(a, b):\n    ", "ret"] : prompts[i];
      await setDoc(head);
      await page.keyboard.type(typed.slice(0, -1), { delay: 40 });
      const n0 = await page.evaluate(() => window.tessera.completions.length);
      const t0 = Date.now();
      await page.keyboard.type(typed.slice(-1));
      await page.waitForFunction((n) => window.tessera.completions.length > n, n0, { polling: "raf", timeout: 60_000 });
      const c = await page.evaluate(() => window.tessera.completions.at(-1));
      if (!c.text) {
        misses++;
        continue;
      }
      await ghost.waitFor({ state: "visible" });
      if (i < 0) {
        cold = Date.now() - t0;
        await page.keyboard.press("Escape");
        continue;
      }
      lat.push(Date.now() - t0);
      inPage.push(c.latencyMs);
      req.push(c.requestMs);
      texts.push(head + typed + "⟨" + c.text + "⟩");
      if (lat.length === 1) {
        await page.screenshot({ path: join(out, `playground-${args.name}-latency.png`) });
      }
      await page.keyboard.press("Escape");
    }
    results.latency = {
      n: lat.length, empty_answers: misses, first_cold_ms: cold,
      keystroke_to_ghost_ms: { p50: pct(lat, 50), p95: pct(lat, 95), all: lat },
      in_page_ms: { p50: Math.round(pct(inPage, 50)), p95: Math.round(pct(inPage, 95)) },
      request_ms: { p50: Math.round(pct(req, 50)), p95: Math.round(pct(req, 95)) },
      completions: texts,
    };
    console.log(`${NAME}: keystroke-to-ghost-text latency over ${lat.length} completions: p50 ${pct(lat, 50)} ms, p95 ${pct(lat, 95)} ms ` +
      `(request alone p50 ${results.latency.request_ms.p50} ms, p95 ${results.latency.request_ms.p95} ms; ${misses} empty answers; first request after start ${cold} ms, not counted)`);
    check(lat.length >= nLat, `${nLat} completions measured`);
  }

  check(pageErrors.length === 0, `no errors in the page${pageErrors.length ? ": " + pageErrors.join(" | ") : ""}`);
  check(offline.length === 0, `nothing fetched from anywhere but the server${offline.length ? ": " + offline.join(" ") : ""}`);
  console.log(`PASS ${NAME}: screenshot ${results.screenshot}`);
} catch (e) {
  if (!process.exitCode) {
    console.error(`FAIL ${NAME}: ${e.stack ?? e}`);
    process.exitCode = 1;
  }
  console.error("--- server log (last 30 lines but /metrics) ---\n" + server.log.filter((l) => !l.includes("GET /metrics")).slice(-30).join("\n"));
} finally {
  writeFileSync(join(out, `results-${args.name}.json`), JSON.stringify(results, null, 2));
  await browser?.close();
  server.proc.kill("SIGTERM");
  await new Promise((r) => (server.proc.exitCode !== null ? r() : server.proc.on("exit", r)));
}
