/**
 * Time as the engines see it. Production uses the system clock; tests use sinon fake timers
 * over it, and the simulator supplies a virtual clock. No engine calls global timers.
 */
export interface TimerHandle {
  /** Cancel the timer; safe to call more than once. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary epoch; monotonic within a run. */
  now(): number;
  /** Run `fn` once after `delayMs`. */
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  /** Run `fn` every `intervalMs` until cancelled. */
  setInterval(fn: () => void, intervalMs: number): TimerHandle;
}

/**
 * The real clock. Timers are unref'd: a process whose only remaining work is this library's
 * housekeeping exits. Reads the globals at call time so that sinon fake timers installed
 * after import still take effect.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, intervalMs) {
    const t = setInterval(fn, intervalMs);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
};
