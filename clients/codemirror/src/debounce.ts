// Adaptive debounce: wait about as long as this user's usual pause between keystrokes, so a fast
// typist is not kept waiting and a slow one does not trigger a request per key.
export interface DebounceOptions {
  minMs: number; // never wait less (default 100)
  maxMs: number; // never wait more (default 400)
  initialMs: number; // before enough keystrokes were seen (default 250)
  window: number; // intervals kept (default 20)
}
export const defaultDebounce: DebounceOptions = { minMs: 100, maxMs: 400, initialMs: 250, window: 20 };

export class AdaptiveDebounce {
  private readonly opts: DebounceOptions;
  private intervals: number[] = [];
  private last = -1;
  constructor(opts: Partial<DebounceOptions> = {}) {
    this.opts = { ...defaultDebounce, ...opts };
  }
  // A keystroke at time `now` (ms). Pauses of 1 s or more are thinking, not typing: not counted.
  keystroke(now: number): void {
    if (this.last >= 0) {
      const d = now - this.last;
      if (d >= 0 && d < 1000) {
        this.intervals.push(d);
        if (this.intervals.length > this.opts.window) this.intervals.shift();
      }
    }
    this.last = now;
  }
  // The delay before requesting: mean + 2 standard deviations of the recent intervals (a pause
  // clearly longer than the user's rhythm), clamped to [minMs, maxMs].
  delay(): number {
    const { minMs, maxMs, initialMs } = this.opts;
    const n = this.intervals.length;
    if (n < 3) return Math.min(maxMs, Math.max(minMs, initialMs));
    const mean = this.intervals.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(this.intervals.reduce((a, b) => a + (b - mean) * (b - mean), 0) / n);
    return Math.round(Math.min(maxMs, Math.max(minMs, mean + 2 * sd)));
  }
}
