/**
 * A virtual clock for the simulator: the engines' Clock interface over an event queue ordered
 * by due time, then by insertion order, so events due at the same virtual millisecond always
 * run in the order they were scheduled. Nothing here reads real time: a run is a pure
 * function of what was scheduled.
 *
 * Two kinds of event share that order:
 * - timers: objects with a run() method (the event is its own TimerHandle, so a timer costs
 *   one allocation and no closure of the clock's own);
 * - frames (scheduleFrame): a body in flight from one endpoint to another. Most events are
 *   frames, and each lives for a link's latency (tens of virtual ms): long enough to outlive
 *   a young-generation collection or two and be promoted. So a frame is no object of its
 *   own: its numbers go in a typed array of its bucket, its body in the bucket's list. (Its
 *   bytes are not copied into a buffer per bucket: measured, the external memory of those
 *   buffers made V8 run more full collections than the objects it saved.) The typed arrays
 *   of buckets are reused once run.
 */
import type { Clock, TimerHandle } from '../clock.js';

/** One queued timer. Subclass and implement run(), or use setTimeout with a function. */
export abstract class SimEvent implements TimerHandle {
  /** Due time, virtual ms (set by the clock when scheduled). */
  at = 0;
  cancelled = false;

  abstract run(): void;

  cancel(): void {
    this.cancelled = true;
  }
}

/** Called for each frame when it is due, with what was given to scheduleFrame. */
export type FrameHandler = (from: number, to: number, type: number, body: Buffer) => void;

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

/** Numbers kept per frame in Bucket.frames: sender, receiver, type. */
const FRAME_FIELDS = 3;

/**
 * The events due at one virtual millisecond, in insertion order. `order[i] >= 0` is frame
 * number order[i] (its sender, receiver and type at frames[3k..3k+2], its body at bodies[k]);
 * `order[i] < 0` is timer ~order[i]. Its first frame takes typed arrays from `spare` (those of
 * buckets already run): a bucket of timers alone (most are made by heartbeats a second ahead)
 * keeps small ones, and only the buckets with frames in flight hold large ones.
 */
class Bucket {
  order: Int32Array = new Int32Array(8);
  length = 0;
  /** The position of the next event to run. */
  cursor = 0;
  readonly timers: Array<SimEvent | undefined> = [];
  frames: Int32Array | undefined;
  frameCount = 0;
  readonly bodies: Array<Buffer | undefined> = [];

  constructor(private readonly spare: Int32Array[]) {}

  push(entry: number): void {
    if (this.length === this.order.length) this.order = grow(this.order, this.length);
    this.order[this.length++] = entry;
  }

  addTimer(ev: SimEvent): void {
    this.push(~this.timers.length);
    this.timers.push(ev);
  }

  addFrame(from: number, to: number, type: number, body: Buffer): void {
    const k = this.frameCount++;
    let f = this.frames;
    if (f === undefined) {
      f = this.frames = this.spare.pop() ?? new Int32Array(FIRST_FRAMES * FRAME_FIELDS);
      const order = this.spare.pop();
      if (order !== undefined && order.length > this.order.length) {
        order.set(this.order.subarray(0, this.length));
        this.order = order;
      }
    } else if (k * FRAME_FIELDS >= f.length - FRAME_FIELDS) {
      f = this.frames = grow(f, k * FRAME_FIELDS);
    }
    const o = k * FRAME_FIELDS;
    f[o] = from;
    f[o + 1] = to;
    f[o + 2] = type;
    this.bodies.push(body);
    this.push(k);
  }

  /** Run: give its large arrays back to `spare` (up to SPARE_ARRAYS). */
  release(): void {
    if (this.frames !== undefined && this.spare.length < SPARE_ARRAYS) this.spare.push(this.frames);
    if (this.order.length > 8 && this.spare.length < SPARE_ARRAYS) this.spare.push(this.order);
    this.frames = undefined;
  }
}

/** Frames a bucket's first frame array holds. */
const FIRST_FRAMES = 64;

/** Typed arrays of run buckets kept for reuse: two per bucket with frames in flight (a link latency's worth of milliseconds). */
const SPARE_ARRAYS = 256;

function grow(a: Int32Array, used: number): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a.subarray(0, used));
  return b;
}

export class VirtualClock implements Clock {
  private time = 0;
  /** Buckets by due time: most events fall on a few hundred distinct milliseconds, so a push is a map lookup and an append. */
  private readonly buckets = new Map<number, Bucket>();
  /** Min-heap of the due times that have a bucket. */
  private readonly times: number[] = [];
  /** The bucket being run (due at `time`). */
  private current: Bucket | undefined;
  /** Typed arrays of buckets already run, for the next buckets' frames (Bucket). */
  private readonly spare: Int32Array[] = [];
  private queued = 0;
  /** Events run so far. */
  executed = 0;
  /** Receives frames when they are due (scheduleFrame); set by their transport. */
  onFrame: FrameHandler | undefined;

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
    if (this.current !== undefined && this.current.cursor < this.current.length) return this.time;
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
    this.bucketAt(due).addTimer(ev);
    return ev;
  }

  /**
   * Queue a frame for absolute virtual time `at` (not before now): `onFrame` gets (from, to,
   * type, body) then, in order with every other event. No object is made for it.
   */
  scheduleFrame(at: number, from: number, to: number, type: number, body: Buffer): void {
    this.bucketAt(at > this.time ? at : this.time).addFrame(from, to, type, body);
  }

  private bucketAt(due: number): Bucket {
    this.queued++;
    let b = this.buckets.get(due);
    if (b === undefined) {
      b = new Bucket(this.spare);
      this.buckets.set(due, b);
      heapPush(this.times, due);
    }
    return b;
  }

  /**
   * Run the next event if it is due at or before `until`; returns false when there is none.
   * Time jumps to the event's due time.
   */
  step(until = Infinity): boolean {
    for (;;) {
      let b = this.current;
      if (b === undefined || b.cursor >= b.length) {
        if (b !== undefined) this.retire(b);
        const t = this.times[0];
        if (t === undefined || t > until) return false;
        heapPop(this.times);
        b = this.buckets.get(t)!;
        this.current = b;
        this.time = t;
      } else if (this.time > until) {
        return false;
      }
      const entry = b.order[b.cursor++]!;
      this.queued--;
      if (entry >= 0) {
        const o = entry * FRAME_FIELDS;
        const f = b.frames!;
        const body = b.bodies[entry]!;
        b.bodies[entry] = undefined; // not pinned while the bucket runs
        this.executed++;
        this.onFrame!(f[o]!, f[o + 1]!, f[o + 2]!, body);
        return true;
      }
      const ev = b.timers[~entry]!;
      b.timers[~entry] = undefined; // not pinned while the bucket runs
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
      if (this.current.cursor < this.current.length) return; // events due now must run first
      this.retire(this.current);
    }
    this.time = t;
  }

  /** The current bucket has run: forget it, and keep its arrays for reuse. */
  private retire(b: Bucket): void {
    this.buckets.delete(this.time);
    this.current = undefined;
    b.release();
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
