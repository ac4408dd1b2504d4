import { describe, expect, it } from "vitest";
import { LruCache } from "../src/cache";
import { AdaptiveDebounce } from "../src/debounce";

describe("LruCache", () => {
  it("evicts the least recently used entry", () => {
    const c = new LruCache<number>(2);
    c.set("a", 1);
    c.set("b", 2);
    expect(c.get("a")).toBe(1); // a is now the most recent
    c.set("c", 3);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")).toBe(1);
    expect(c.get("c")).toBe(3);
    expect(c.size).toBe(2);
  });
  it("overwrites without growing", () => {
    const c = new LruCache<string>(3);
    c.set("k", "x");
    c.set("k", "y");
    expect(c.size).toBe(1);
    expect(c.get("k")).toBe("y");
  });
  it("rejects a zero capacity", () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
  });
});

describe("AdaptiveDebounce", () => {
  const typeAt = (d: AdaptiveDebounce, times: number[]) => times.forEach((t) => d.keystroke(t));
  it("starts at the initial delay", () => {
    expect(new AdaptiveDebounce().delay()).toBe(250);
  });
  it("clamps a fast typist to the minimum", () => {
    const d = new AdaptiveDebounce();
    typeAt(d, [0, 30, 60, 90, 120, 150]);
    expect(d.delay()).toBe(100);
  });
  it("clamps a slow typist to the maximum", () => {
    const d = new AdaptiveDebounce();
    typeAt(d, [0, 450, 900, 1350, 1800]);
    expect(d.delay()).toBe(400);
  });
  it("follows the rhythm in between (mean + 2 sd)", () => {
    const d = new AdaptiveDebounce();
    typeAt(d, [0, 100, 300, 400, 600]); // intervals 100 200 100 200: mean 150, sd 50
    expect(d.delay()).toBe(250);
  });
  it("does not count pauses of 1 s or more as typing", () => {
    const d = new AdaptiveDebounce();
    typeAt(d, [0, 50, 100, 150, 1150, 1200]);
    expect(d.delay()).toBe(100);
  });
  it("keeps only the last `window` intervals", () => {
    const d = new AdaptiveDebounce({ window: 3 });
    typeAt(d, [0, 1000, 2000, 2040, 2080, 2120]);
    expect(d.delay()).toBe(100);
  });
});
