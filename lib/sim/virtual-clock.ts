/**
 * A virtual clock for the simulator: the engines' Clock interface over an event queue (a
 * binary min-heap ordered by due time, then by insertion order, so events due at the same
 * virtual millisecond always run in the order they were scheduled). Nothing here reads real
 * time: a run is a pure function of what was scheduled.
 *
 * Events are objects with a run() method; the event is its own TimerHandle, so a timer costs
 * one allocation and no closure of the clock's own. Hot callers (the transport's frames)
 * subclass SimEvent and hand it to schedule() instead of allocating a closure per event.
 */
import type { Clock, TimerHandle } from '../clock.js';

/** One queued event. Subclass and implement run(), or use setTimeout with a function. */
export abstract class SimEvent implements TimerHandle {
  /** Due time, virtual ms (set by the clock when scheduled). */
  at = 0;
  /** Insertion counter: the tie-breaker that makes equal-time order deterministic. */
  seq = 0;
  cancelled = false;

  abstract run(): void;

  cancel(): void {
    this.cancelled = true;
  }
}

class FnEvent extends SimEvent {
  constructor(private readonly fn: () => void) {
    super();
  }

  run(): void {
    this.fn();
  }
}

class IntervalEvent extends SimEvent {
  constructor(private readonly clock: VirtualClock, private readonly fn: () => void, private readonly period: number) {
    super();
  }

  run(): void {
    // Popped: queue itself again for the next tick before fn runs (fn may cancel it).
    this.clock.schedule(this, this.clock.now() + this.period);
    this.fn();
  }
}

export class VirtualClock implements Clock {
  private time = 0;
  private nextSeq = 0;
  /**
   * Events by due time, each list in insertion order (seq increases with insertion, so
   * appending keeps a list sorted): most events fall on a few hundred distinct milliseconds,
   * so a push is a map lookup and an append, and a pop an index step.
   */
  private readonly buckets = new Map<number, SimEvent[]>();
  /** Min-heap of the due times that have a bucket. */
  private readonly times: number[] = [];
  /** The bucket being run (due at `time`) and the position of its next event. */
  private current: SimEvent[] | undefined;
  private cursor = 0;
  private queued = 0;
  /** Events run so far. */
  executed = 0;

  /** Current virtual time, ms. */
  now(): number {
    return this.time;
  }

  /** Events waiting (cancelled ones not yet discarded included). */
  get pending(): number {
    return this.queued;
  }

  /** Due time of the next event, or undefined when the queue is empty. */
  peekTime(): number | undefined {
    if (this.current !== undefined && this.cursor < this.current.length) return this.time;
    return this.times[0];
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.schedule(new FnEvent(fn), this.time + Math.max(0, delayMs));
  }

  setInterval(fn: () => void, intervalMs: number): TimerHandle {
    const ev = new IntervalEvent(this, fn, Math.max(1, intervalMs));
    return this.schedule(ev, this.time + Math.max(1, intervalMs));
  }

  /** Run `fn` at absolute virtual time `at` (not before now). */
  at(at: number, fn: () => void): TimerHandle {
    return this.schedule(new FnEvent(fn), at);
  }

  /** Queue `ev` to run at absolute virtual time `at` (not before now). Returns it. */
  schedule<E extends SimEvent>(ev: E, at: number): E {
    const due = at > this.time ? at : this.time;
    ev.at = due;
    ev.seq = this.nextSeq++;
    this.queued++;
    const list = this.buckets.get(due);
    if (list !== undefined) {
      list.push(ev);
      return ev;
    }
    this.buckets.set(due, [ev]);
    heapPush(this.times, due);
    return ev;
  }

  /**
   * Run the next event if it is due at or before `until`; returns false when there is none.
   * Time jumps to the event's due time.
   */
  step(until = Infinity): boolean {
    for (;;) {
      let list = this.current;
      if (list === undefined || this.cursor >= list.length) {
        if (list !== undefined) {
          this.buckets.delete(this.time);
          this.current = undefined;
        }
        const t = this.times[0];
        if (t === undefined || t > until) return false;
        heapPop(this.times);
        list = this.buckets.get(t)!;
        this.current = list;
        this.cursor = 0;
        this.time = t;
      } else if (this.time > until) {
        return false;
      }
      const ev = list[this.cursor]!;
      list[this.cursor++] = undefined as unknown as SimEvent; // not pinned while the bucket runs
      this.queued--;
      if (ev.cancelled) continue;
      this.executed++;
      ev.run();
      return true;
    }
  }

  /** Move time forward to `t` without running anything (used when the queue is drained early). */
  advanceTo(t: number): void {
    if (t <= this.time) return;
    if (this.current !== undefined) {
      if (this.cursor < this.current.length) return; // events due now must run first
      this.buckets.delete(this.time);
      this.current = undefined;
    }
    this.time = t;
  }
}

function heapPush(h: number[], x: number): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = h[parent]!;
    if (p <= x) break;
    h[i] = p;
    i = parent;
  }
  h[i] = x;
}

function heapPop(h: number[]): void {
  const last = h.pop()!;
  const n = h.length;
  if (n === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r]! < h[l]! ? r : l;
    if (h[c]! >= last) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
}
