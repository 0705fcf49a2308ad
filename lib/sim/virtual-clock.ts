/**
 * A virtual clock for the simulator: the engines' Clock interface over an event queue (a
 * binary min-heap ordered by due time, then by insertion order, so events due at the same
 * virtual millisecond always run in the order they were scheduled). Nothing here reads real
 * time: a run is a pure function of what was scheduled.
 */
import type { Clock, TimerHandle } from '../clock.js';

interface SimEvent {
  /** Due time, virtual ms. */
  at: number;
  /** Insertion counter: the tie-breaker that makes equal-time order deterministic. */
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private time = 0;
  private nextSeq = 0;
  private readonly heap: SimEvent[] = [];
  /** Events run so far. */
  executed = 0;

  /** Current virtual time, ms. */
  now(): number {
    return this.time;
  }

  /** Events waiting (cancelled ones not yet discarded included). */
  get pending(): number {
    return this.heap.length;
  }

  /** Due time of the next event, or undefined when the queue is empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.at;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const ev = this.push(this.time + Math.max(0, delayMs), fn);
    return { cancel: () => { ev.cancelled = true; } };
  }

  setInterval(fn: () => void, intervalMs: number): TimerHandle {
    const period = Math.max(1, intervalMs);
    let current: SimEvent;
    let stopped = false;
    const tick = () => {
      if (stopped) return;
      current = this.push(this.time + period, tick);
      fn();
    };
    current = this.push(this.time + period, tick);
    return {
      cancel: () => {
        stopped = true;
        current.cancelled = true;
      },
    };
  }

  /** Run `fn` at absolute virtual time `at` (not before now). */
  at(at: number, fn: () => void): TimerHandle {
    const ev = this.push(Math.max(this.time, at), fn);
    return { cancel: () => { ev.cancelled = true; } };
  }

  /**
   * Run the next event if it is due at or before `until`; returns false when there is none.
   * Time jumps to the event's due time.
   */
  step(until = Infinity): boolean {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > until) return false;
      this.pop();
      if (top.cancelled) continue;
      this.time = top.at;
      this.executed++;
      top.fn();
      return true;
    }
  }

  /** Move time forward to `t` without running anything (used when the queue is drained early). */
  advanceTo(t: number): void {
    if (t > this.time) this.time = t;
  }

  private push(at: number, fn: () => void): SimEvent {
    const ev: SimEvent = { at, seq: this.nextSeq++, fn, cancelled: false };
    const h = this.heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!before(ev, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = ev;
    return ev;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
