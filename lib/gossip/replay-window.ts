/**
 * Anti-replay for gossip, per origin, whatever the seen-cache still holds. An origin's `seq`
 * is its clock in microseconds at publish time (strictly increasing: max(previous + 1, now
 * in µs); engine.ts publish), so a receiver can refuse three things without remembering
 * message ids (docs/drafts/protocol-scoring.md states the rule):
 *
 * - too_old by time: `seq < (now − horizonMs) × 1000`. The engine sets horizonMs to
 *   seenTtlMs, so a message is either still in the seen-cache or refused here, and a flood
 *   that evicts the seen-cache (or a wait past seenTtlMs) cannot make it deliverable again.
 * - replay: the origin is tracked and `seq` is one of the last `windowSize` seqs accepted
 *   from it (an RFC 4303 style window, counted in messages since seqs are sparse).
 * - too_old by window: `seq` is at or below the origin's floor: the newest seq that fell
 *   out of its window. A message arriving more than windowSize places behind its origin's
 *   newest is refused (honest reordering is far shallower: paths differ by milliseconds).
 *
 * Call check() before hashing and verifying (cheap rejection) and commit() only after the
 * id and signature are verified: a forged copy can never move a window.
 *
 * Bounded: at most maxOrigins origins, least recently committed evicted first. An evicted
 * origin is not forgotten: its newest seq (clamped to now, so a far-future seq cannot be
 * planted) is folded, by max, into a fixed table of `evictedSlots` floors indexed by a
 * salted hash of the origin. An untracked origin's seq at or below its slot's floor is
 * too_old, and an origin tracked again starts from that floor. A collision can only refuse
 * an honest origin's messages older than another evicted origin's last message, i.e.
 * delayed ones, and the salt (random per node) keeps collisions from being aimed.
 *
 * Memory: 8 bytes per remembered seq, at most windowSize per origin, and only seqs younger
 * than horizonMs (older ones are pruned at commit): commits follow verification, so the
 * total is bounded by the verification rate times horizonMs as well as by maxOrigins ×
 * windowSize; plus 8 bytes per evicted slot.
 */
import type { Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';

export type ReplayVerdict = 'new' | 'replay' | 'too_old';

export interface ReplayWindowOptions {
  /** Seqs younger than this, ms, are judged by the windows; older ones are too_old. The engine passes seenTtlMs. */
  horizonMs: number;
  /** Accepted seqs remembered per origin (reordering tolerated, in messages). Default 1024. */
  windowSize?: number;
  /** Origins tracked at once; least recently committed evicted first. Default 10000. */
  maxOrigins?: number;
  /** Slots of the table of evicted origins' floors (8 bytes each). Default 65536. */
  evictedSlots?: number;
}

export const REPLAY_WINDOW_DEFAULTS = Object.freeze({ windowSize: 1024, maxOrigins: 10_000, evictedSlots: 65_536 });

/**
 * One origin's window, as one array (an object holding an array and a boxed floor was 56
 * bytes more per origin per node): [0] is the floor (everything at or below it is too_old),
 * then the accepted seqs above it, ascending, at most windowSize.
 */
type OriginWindow = number[];

export class ReplayWindow {
  readonly horizonMs: number;
  readonly windowSize: number;
  readonly maxOrigins: number;
  private readonly origins = new Map<string, OriginWindow>();
  private readonly evictedSlots: number;
  /** Floors of evicted origins by slot; allocated at the first eviction (most nodes never evict). */
  private evicted: Float64Array | undefined;
  private readonly salt: number;
  /** Origins evicted to stay within maxOrigins (folded into the slot table). */
  evictions = 0;

  constructor(
    private readonly clock: Clock,
    options: ReplayWindowOptions,
    random: () => number = Math.random,
  ) {
    this.horizonMs = int('horizonMs', options.horizonMs, 1);
    this.windowSize = int('windowSize', options.windowSize ?? REPLAY_WINDOW_DEFAULTS.windowSize, 1);
    this.maxOrigins = int('maxOrigins', options.maxOrigins ?? REPLAY_WINDOW_DEFAULTS.maxOrigins, 1);
    this.evictedSlots = int('evictedSlots', options.evictedSlots ?? REPLAY_WINDOW_DEFAULTS.evictedSlots, 1);
    this.salt = Math.floor(random() * 0x100000000) >>> 0;
  }

  /** Origins tracked now. */
  get size(): number {
    return this.origins.size;
  }

  /** Judge (origin, seq) without changing anything. `origin` is the origin's public key. */
  check(origin: Uint8Array, seq: number): ReplayVerdict {
    return this.checkKey(keyOf(origin), seq);
  }

  /**
   * check() for an origin already turned into its key (its 32 bytes as a latin1 string): the
   * engine makes that string once per message, for check, commit and its origin memo.
   */
  checkKey(key: string, seq: number): ReplayVerdict {
    if (seq < this.timeFloorUs()) return 'too_old';
    const w = this.origins.get(key);
    if (!w) return seq <= this.evictedFloor(key) ? 'too_old' : 'new';
    if (seq <= w[0]!) return 'too_old';
    return indexOf(w, seq) >= 0 ? 'replay' : 'new';
  }

  /** Record an accepted (verified) message. A no-op for a seq already recorded or too old. */
  commit(origin: Uint8Array, seq: number): void {
    this.commitKey(keyOf(origin), seq);
  }

  /** commit() for an origin already turned into its key (see checkKey). */
  commitKey(key: string, seq: number): void {
    let w = this.origins.get(key);
    if (w) this.origins.delete(key); // re-inserted below: Map order is least recently committed first
    const timeFloor = this.timeFloorUs();
    const floor = w ? w[0]! : this.evictedFloor(key);
    // A new window is made with its elements: pushed onto a shorter array, V8 reserves 17 slots.
    if (seq > floor && seq >= timeFloor) w = w ? insert(w, seq, this.windowSize) : [floor, seq];
    else w ??= [floor];
    // Seqs past the horizon are refused by time anyway: let them go.
    while (w.length > 1 && w[1]! < timeFloor) w[0] = Math.max(w[0]!, w.splice(1, 1)[0]!);
    this.origins.set(key, w);
    if (this.origins.size > this.maxOrigins) this.evictOldest();
  }

  clear(): void {
    this.origins.clear();
    this.evicted = undefined;
  }

  private evictOldest(): void {
    const first = this.origins.entries().next();
    if (first.done) return;
    const [key, w] = first.value;
    this.origins.delete(key);
    this.evictions++;
    const top = w[w.length - 1]!; // the newest seq, or the floor when there is none
    this.evicted ??= new Float64Array(this.evictedSlots).fill(-Infinity);
    const s = this.slot(key);
    this.evicted[s] = Math.max(this.evicted[s]!, Math.min(top, this.clock.now() * 1000));
  }

  private evictedFloor(key: string): number {
    return this.evicted ? this.evicted[this.slot(key)]! : -Infinity;
  }

  private timeFloorUs(): number {
    return (this.clock.now() - this.horizonMs) * 1000;
  }

  /** Salted FNV-1a over the key's bytes. */
  private slot(key: string): number {
    let h = (0x811c9dc5 ^ this.salt) >>> 0;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return (h >>> 0) % this.evictedSlots;
  }
}

/** The Map key for an origin's public key: its bytes as latin1 (a Buffer without a new view first). */
function keyOf(origin: Uint8Array): string {
  if (Buffer.isBuffer(origin)) return origin.toString('latin1');
  return Buffer.from(origin.buffer, origin.byteOffset, origin.length).toString('latin1');
}

/** Index of `seq` among a window's seqs (w[1..], ascending), or -1. */
function indexOf(w: OriginWindow, seq: number): number {
  let lo = 1;
  let hi = w.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = w[mid]!;
    if (v === seq) return mid;
    if (v < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Insert in order (usually at the end: messages mostly arrive in order); keep the newest windowSize. Returns `w`. */
function insert(w: OriginWindow, seq: number, windowSize: number): OriginWindow {
  let i = w.length;
  while (i > 1 && w[i - 1]! > seq) i--;
  if (i > 1 && w[i - 1] === seq) return w;
  if (i === w.length) w.push(seq);
  else w.splice(i, 0, seq);
  if (w.length - 1 > windowSize) w[0] = Math.max(w[0]!, w.splice(1, 1)[0]!);
  return w;
}

function int(field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidOptionError(field, `expected an integer >= ${min}, got ${String(v)}`);
  return v;
}
