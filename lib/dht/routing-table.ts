/**
 * Kademlia routing table (Maymounkov & Mazières 2002), pure: no sockets, no timers. Time is
 * passed in as `now` numbers (ms); when a bucket is full the table answers "ping this one"
 * and the caller pings and reports back through resolveFull().
 *
 * Ids are 32 bytes (SHA-256 of a public key) and distance is their XOR read as a big-endian
 * 256-bit integer. Bucket i holds the contacts whose distance d from the local id satisfies
 * 2^i <= d < 2^(i+1) (paper §2.2, there with 160-bit ids), so bucket 255 is the far half of
 * the id space and bucket 0 holds at most one possible id. Every byte comparison here is a
 * plain loop: no bigint on the hot paths.
 */
import { InvalidOptionError, P2PError } from '../errors.js';

/** Length of a node id, bytes: a SHA-256 digest. */
export const ID_BYTES = 32;

/** Bits in an id, and so the number of buckets. */
const ID_BITS = ID_BYTES * 8;

/** Contacts per bucket. The paper's system-wide k = 20 (§2.2). */
export const DEFAULT_K = 20;

/**
 * Per-bucket cap on newcomers waiting for a place in a full bucket. The paper keeps such a
 * replacement cache (§4.1) so a failed contact can be replaced without a fresh lookup; we cap
 * it so a flood of new ids cannot grow memory.
 */
export const DEFAULT_REPLACEMENT_CACHE = 8;

/** One known node: its id and where to reach it. */
export interface Contact {
  /** 32-byte node id. */
  id: Buffer;
  /** Host to dial. */
  host: string;
  /** TCP port to dial. */
  port: number;
  /** When we last heard from it, ms on the caller's clock. */
  lastSeen: number;
}

/** RoutingTable options. Defaults are applied with `??`, so an explicit 0 stays 0. */
export interface RoutingTableOptions {
  /** Bucket size, contacts, integer 1..256. Default 20 (DEFAULT_K). */
  k?: number;
  /** Waiting newcomers kept per bucket, integer 0..256; 0 keeps none. Default 8. */
  replacementCacheSize?: number;
  /** Initial lastChanged of every bucket, ms on the caller's clock (see staleBuckets). Default 0. */
  createdAt?: number;
}

/** Outcome of RoutingTable.add(). */
export type AddResult =
  /** Was not present and its bucket had room: inserted at the tail. */
  | { status: 'added' }
  /** Already present: address and lastSeen refreshed, moved to the tail (most recently seen). */
  | { status: 'updated' }
  /**
   * Bucket full: the caller should ping `oldest` (the least-recently seen contact) and then
   * call resolveFull(). Meanwhile the newcomer waits in the bucket's replacement cache.
   */
  | { status: 'full'; oldest: Contact }
  /** The id is our own; ignored. */
  | { status: 'self' };

/** XOR of two equal-length ids: the Kademlia distance (§2.1), as a new Buffer. */
export function xorDistance(a: Uint8Array, b: Uint8Array): Buffer {
  sameLength(a, b);
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/**
 * -1 when a is nearer to target than b, 1 when farther, 0 when a and b are the same id.
 * Compares XOR distances byte by byte from the most significant, allocating nothing.
 */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  sameLength(target, a);
  sameLength(target, b);
  for (let i = 0; i < target.length; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da < db ? -1 : 1;
  }
  return 0;
}

/**
 * The bucket `id` falls in relative to `localId`: the position (0 = least significant) of the
 * highest set bit of their XOR distance. -1 when the ids are equal.
 */
export function bucketIndexOf(localId: Uint8Array, id: Uint8Array): number {
  sameLength(localId, id);
  for (let i = 0; i < localId.length; i++) {
    const x = localId[i]! ^ id[i]!;
    if (x !== 0) return (localId.length - 1 - i) * 8 + (31 - Math.clz32(x));
  }
  return -1;
}

interface Bucket {
  /** Ordered least-recently seen first (paper §2.2). */
  contacts: Contact[];
  /** Newcomers waiting for a place, oldest-waiting first. */
  replacements: Contact[];
  /** Last time (caller's ms) a contact was added, updated or touched, or the bucket refreshed. */
  lastChanged: number;
}

/**
 * A Kademlia routing table of 256 k-buckets. It applies the paper's insert rule (§2.2): a
 * known contact moves to the tail; a new one is appended while there is room; when the bucket
 * is full the least-recently seen contact is pinged and evicted only if it does not answer.
 * Live long-lived contacts are therefore never pushed out by newcomers: the paper observes
 * that the longer a node has been up, the likelier it is to stay up.
 *
 * Contacts handed in are copied (id included) and contacts handed out are snapshots, so no
 * caller can corrupt the table by mutating a Buffer or object.
 */
export class RoutingTable {
  /** Bucket size. */
  readonly k: number;
  /** Cap on waiting newcomers per bucket. */
  readonly replacementCacheSize: number;
  private readonly localId: Buffer;
  private readonly buckets: Bucket[];
  private count = 0;

  /**
   * @throws InvalidOptionError naming `k`, `replacementCacheSize` or `createdAt`.
   * @throws P2PError INVALID_ARGUMENT when localId is not 32 bytes.
   */
  constructor(localId: Uint8Array, options: RoutingTableOptions = {}) {
    checkId(localId, 'localId');
    const k = options.k ?? DEFAULT_K;
    const cache = options.replacementCacheSize ?? DEFAULT_REPLACEMENT_CACHE;
    const createdAt = options.createdAt ?? 0;
    if (!Number.isInteger(k) || k < 1 || k > 256) {
      throw new InvalidOptionError('k', `must be an integer 1..256, got ${String(k)}`);
    }
    if (!Number.isInteger(cache) || cache < 0 || cache > 256) {
      throw new InvalidOptionError('replacementCacheSize', `must be an integer 0..256, got ${String(cache)}`);
    }
    if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) {
      throw new InvalidOptionError('createdAt', `must be a finite number, got ${String(createdAt)}`);
    }
    this.k = k;
    this.replacementCacheSize = cache;
    this.localId = Buffer.from(localId);
    this.buckets = Array.from({ length: ID_BITS }, () => ({ contacts: [], replacements: [], lastChanged: createdAt }));
  }

  /** Contacts in buckets (waiting replacements not counted). */
  get size(): number {
    return this.count;
  }

  /**
   * Record that we heard from `contact` (paper §2.2 insert rule). `contact.lastSeen` is taken
   * as the current time for the bucket's lastChanged.
   */
  add(contact: Contact): AddResult {
    checkId(contact.id, 'contact.id');
    const index = bucketIndexOf(this.localId, contact.id);
    if (index < 0) return { status: 'self' };
    const bucket = this.buckets[index]!;
    const at = findIndex(bucket.contacts, contact.id);
    if (at >= 0) {
      const existing = bucket.contacts[at]!;
      existing.host = contact.host;
      existing.port = contact.port;
      existing.lastSeen = contact.lastSeen;
      moveToTail(bucket.contacts, at);
      bucket.lastChanged = contact.lastSeen;
      return { status: 'updated' };
    }
    if (bucket.contacts.length < this.k) {
      dropById(bucket.replacements, contact.id);
      bucket.contacts.push(copyContact(contact));
      this.count++;
      bucket.lastChanged = contact.lastSeen;
      return { status: 'added' };
    }
    this.remember(bucket, contact);
    return { status: 'full', oldest: copyContact(bucket.contacts[0]!) };
  }

  /**
   * Finish a 'full' add once the caller has pinged `oldestId`. Alive: the old contact moves to
   * the tail with lastSeen = now and the newcomer keeps waiting in the replacement cache. Dead:
   * the old contact is evicted and the newcomer (found in the replacement cache by id; the most
   * recent waiting replacement if it has since been dropped) takes its place at the tail. If the
   * old contact is already gone, the newcomer is inserted when there is room. Returns true if
   * the table changed.
   *
   * @throws P2PError INVALID_ARGUMENT when an id is not 32 bytes or the two ids do not share a bucket.
   */
  resolveFull(oldestId: Uint8Array, alive: boolean, newcomerId: Uint8Array, now: number): boolean {
    checkId(oldestId, 'oldestId');
    checkId(newcomerId, 'newcomerId');
    const index = bucketIndexOf(this.localId, oldestId);
    if (index < 0) return false;
    if (bucketIndexOf(this.localId, newcomerId) !== index) {
      throw P2PError.invalidArgument('oldestId and newcomerId must fall in the same bucket');
    }
    const bucket = this.buckets[index]!;
    const at = findIndex(bucket.contacts, oldestId);
    if (at >= 0 && alive) {
      bucket.contacts[at]!.lastSeen = now;
      moveToTail(bucket.contacts, at);
      bucket.lastChanged = now;
      return true;
    }
    if (at >= 0) {
      bucket.contacts.splice(at, 1);
      this.count--;
    }
    if (bucket.contacts.length >= this.k) return at >= 0;
    const waiting = findIndex(bucket.replacements, newcomerId);
    const promoted = waiting >= 0 ? bucket.replacements.splice(waiting, 1)[0] : bucket.replacements.pop();
    if (promoted !== undefined) {
      bucket.contacts.push(promoted);
      this.count++;
    }
    if (at < 0 && promoted === undefined) return false;
    bucket.lastChanged = now;
    return true;
  }

  /**
   * Forget a contact (it failed, or said GOODBYE). The most recently seen waiting replacement
   * for its bucket, if any, is promoted to the tail. The id is also dropped from the
   * replacement cache so a dead peer is never promoted later. Returns true if the contact was
   * in a bucket (not merely waiting). Does not change the bucket's lastChanged.
   */
  remove(id: Uint8Array): boolean {
    checkId(id, 'id');
    const index = bucketIndexOf(this.localId, id);
    if (index < 0) return false;
    const bucket = this.buckets[index]!;
    dropById(bucket.replacements, id);
    const at = findIndex(bucket.contacts, id);
    if (at < 0) return false;
    bucket.contacts.splice(at, 1);
    const promoted = bucket.replacements.pop();
    if (promoted === undefined) this.count--;
    else bucket.contacts.push(promoted);
    return true;
  }

  /** A snapshot of the contact with this id, if it is in a bucket. */
  get(id: Uint8Array): Contact | undefined {
    const found = this.find(id);
    return found === undefined ? undefined : copyContact(found);
  }

  /** Whether a contact with this id is in a bucket (waiting replacements excluded). */
  has(id: Uint8Array): boolean {
    return this.find(id) !== undefined;
  }

  /** Mark a contact seen at `now`: lastSeen updated, moved to the tail. No-op if absent. */
  touch(id: Uint8Array, now: number): void {
    checkId(id, 'id');
    const index = bucketIndexOf(this.localId, id);
    if (index < 0) return;
    const bucket = this.buckets[index]!;
    const at = findIndex(bucket.contacts, id);
    if (at < 0) return;
    bucket.contacts[at]!.lastSeen = now;
    moveToTail(bucket.contacts, at);
    bucket.lastChanged = now;
  }

  /**
   * The `n` contacts nearest to `target` by XOR distance, nearest first, leaving out any id in
   * `exclude`. Sorts every contact (at most 256·k): simple and exact, and cheap next to the
   * network round trip of the lookup step it feeds.
   */
  closest(target: Uint8Array, n: number, exclude?: Iterable<Uint8Array>): Contact[] {
    checkId(target, 'target');
    if (!Number.isInteger(n) || n < 0) throw P2PError.invalidArgument(`n must be a non-negative integer, got ${n}`);
    if (n === 0) return [];
    const skip = new Set<string>();
    if (exclude !== undefined) for (const id of exclude) skip.add(Buffer.from(id).toString('hex'));
    const candidates: Contact[] = [];
    for (const bucket of this.buckets) {
      for (const c of bucket.contacts) {
        if (skip.size === 0 || !skip.has(c.id.toString('hex'))) candidates.push(c);
      }
    }
    candidates.sort((a, b) => compareDistance(target, a.id, b.id));
    return candidates.slice(0, n).map(copyContact);
  }

  /** Snapshots of all contacts, by bucket index ascending, each bucket least-recently seen first. */
  all(): Contact[] {
    const out: Contact[] = [];
    for (const bucket of this.buckets) for (const c of bucket.contacts) out.push(copyContact(c));
    return out;
  }

  /**
   * Buckets due a refresh lookup: every index i from the bucket of our nearest contact (the
   * lowest non-empty bucket) up to 255 whose lastChanged < now - maxAgeMs. This follows the
   * paper (§2.3): a node refreshes every bucket it has not looked up in the past hour, and on
   * joining refreshes all buckets further away than its closest neighbour. Buckets below the
   * nearest contact are skipped: a lookup of our own id already covers them, and they are
   * almost surely empty (bucket i holds a 2^(i-256) share of the id space). Empty table: [].
   *
   * lastChanged starts at `createdAt` and is set by add (added/updated: contact.lastSeen),
   * touch, resolveFull and markRefreshed; a 'full' add and remove() leave it alone.
   */
  staleBuckets(now: number, maxAgeMs: number): number[] {
    if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
      throw P2PError.invalidArgument(`maxAgeMs must be a finite number >= 0, got ${maxAgeMs}`);
    }
    const lowest = this.buckets.findIndex((b) => b.contacts.length > 0);
    if (lowest < 0) return [];
    const cutoff = now - maxAgeMs;
    const stale: number[] = [];
    for (let i = lowest; i < ID_BITS; i++) if (this.buckets[i]!.lastChanged < cutoff) stale.push(i);
    return stale;
  }

  /**
   * Record that a refresh lookup for bucket i ran at `now`, even if it found nobody new there
   * (otherwise an empty range would be reported stale on every pass).
   */
  markRefreshed(i: number, now: number): void {
    checkBucketIndex(i);
    this.buckets[i]!.lastChanged = now;
  }

  /**
   * A uniformly random id in bucket i, the target of a refresh lookup (§2.3): its distance from
   * localId has bit i set, every higher bit clear and every lower bit random. `random(n)` must
   * return n random bytes: crypto.randomBytes in production, a seeded source in tests.
   */
  randomIdInBucket(i: number, random: (n: number) => Buffer): Buffer {
    checkBucketIndex(i);
    const bytes = random(ID_BYTES);
    if (bytes.length < ID_BYTES) throw P2PError.invalidArgument(`random(${ID_BYTES}) returned ${bytes.length} bytes`);
    const byteAt = ID_BYTES - 1 - (i >> 3);
    const bit = 1 << (i & 7);
    const id = Buffer.from(this.localId);
    // Distance bytes: zero above byteAt, the top bit i (plus random bits below it) at byteAt,
    // fully random below. XOR with localId turns the distance into an id.
    id[byteAt] = id[byteAt]! ^ (bit | (bytes[byteAt]! & (bit - 1)));
    for (let j = byteAt + 1; j < ID_BYTES; j++) id[j] = id[j]! ^ bytes[j]!;
    return id;
  }

  private remember(bucket: Bucket, contact: Contact): void {
    if (this.replacementCacheSize === 0) return;
    dropById(bucket.replacements, contact.id);
    bucket.replacements.push(copyContact(contact));
    if (bucket.replacements.length > this.replacementCacheSize) bucket.replacements.shift();
  }

  private find(id: Uint8Array): Contact | undefined {
    checkId(id, 'id');
    const index = bucketIndexOf(this.localId, id);
    if (index < 0) return undefined;
    const bucket = this.buckets[index]!;
    return bucket.contacts[findIndex(bucket.contacts, id)];
  }
}

function checkId(id: unknown, what: string): asserts id is Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== ID_BYTES) {
    throw P2PError.invalidArgument(`${what} must be a ${ID_BYTES}-byte id`);
  }
}

function checkBucketIndex(i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ID_BITS) {
    throw P2PError.invalidArgument(`bucket index must be an integer 0..${ID_BITS - 1}, got ${i}`);
  }
}

function sameLength(a: Uint8Array, b: Uint8Array): void {
  if (a.length !== b.length) throw P2PError.invalidArgument(`ids differ in length: ${a.length} vs ${b.length}`);
}

function findIndex(list: Contact[], id: Uint8Array): number {
  for (let i = 0; i < list.length; i++) if (list[i]!.id.equals(id)) return i;
  return -1;
}

function dropById(list: Contact[], id: Uint8Array): void {
  const at = findIndex(list, id);
  if (at >= 0) list.splice(at, 1);
}

function moveToTail(list: Contact[], at: number): void {
  const [c] = list.splice(at, 1);
  if (c !== undefined) list.push(c);
}

function copyContact(c: Contact): Contact {
  return { id: Buffer.from(c.id), host: c.host, port: c.port, lastSeen: c.lastSeen };
}
