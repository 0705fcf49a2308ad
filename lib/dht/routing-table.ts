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
import { addressGroup } from '../peers/address-group.js';

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

/**
 * Contacts of one address group (lib/peers/address-group.ts: a /24 of IPv4, a /48 of IPv6)
 * allowed in one bucket. geth's discovery table uses 2 (p2p/discover/table.go,
 * bucketIPLimit): an attacker who owns one /24 holds at most 2 places of any bucket however
 * many identities it makes, so the honest contacts of other groups keep the rest.
 */
export const DEFAULT_MAX_PER_GROUP_IN_BUCKET = 2;

/** Contacts of one address group allowed in the whole table (geth: tableIPLimit, 10). */
export const DEFAULT_MAX_PER_GROUP_IN_TABLE = 10;

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
  /**
   * Contacts of one address group a bucket may hold, integer 1..256. A newcomer over it is
   * refused (counted in refusedByGroup). Default 2 (DEFAULT_MAX_PER_GROUP_IN_BUCKET).
   */
  maxPerGroupInBucket?: number;
  /**
   * Contacts of one address group the whole table may hold, integer 1..65536. A newcomer
   * over it is refused (counted). Default 10 (DEFAULT_MAX_PER_GROUP_IN_TABLE).
   */
  maxPerGroupInTable?: number;
  /**
   * Hosts exempt from both group limits and not counted in them: a local testbed where every
   * node is 127.0.0.1, or an operator's allowlist. The network builds it from its admission
   * allowlist. Default: none exempt.
   */
  groupExempt?: (host: string) => boolean;
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
  | { status: 'self' }
  /**
   * Its address group already holds maxPerGroupInBucket places of its bucket ('group_bucket')
   * or maxPerGroupInTable places of the table ('group_table'): not added, not waiting. For a
   * known contact whose address moved into such a group, the old address is kept.
   */
  | { status: 'refused'; reason: 'group_bucket' | 'group_table' };

/** Contacts refused by the group limits since the table was made. */
export interface GroupRefusals {
  /** Over maxPerGroupInBucket. */
  bucket: number;
  /** Over maxPerGroupInTable. */
  table: number;
}

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

/** A contact as stored: with its address group, or undefined when exempt from the limits. */
interface Stored extends Contact {
  group: string | undefined;
}

interface Bucket {
  /** Ordered least-recently seen first (paper §2.2). */
  contacts: Stored[];
  /** Newcomers waiting for a place, oldest-waiting first. */
  replacements: Stored[];
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
 * Diversity (as geth's discovery table): each contact belongs to the address group of its
 * host, and a group holds at most maxPerGroupInBucket places of a bucket and
 * maxPerGroupInTable of the table. The rule is checked whenever a contact would take a place:
 * a newcomer, a known contact's new address, a waiting replacement being promoted. Many
 * identities behind one /24 therefore cost the attacker places it cannot multiply.
 *
 * Contacts handed in are copied (id included) and contacts handed out are snapshots, so no
 * caller can corrupt the table by mutating a Buffer or object.
 */
export class RoutingTable {
  /** Bucket size. */
  readonly k: number;
  /** Cap on waiting newcomers per bucket. */
  readonly replacementCacheSize: number;
  /** Places of a bucket one address group may hold. */
  readonly maxPerGroupInBucket: number;
  /** Places of the table one address group may hold. */
  readonly maxPerGroupInTable: number;
  private readonly groupExempt: (host: string) => boolean;
  private readonly localId: Buffer;
  /** Bucket i, made on first use: most of the 256 stay empty, and a table costs ~2 KiB, not ~32. */
  private readonly buckets: Array<Bucket | undefined> = new Array<Bucket | undefined>(ID_BITS).fill(undefined);
  /** lastChanged of a bucket not made yet. */
  private readonly createdAt: number;
  private count = 0;
  /** Contacts in buckets per address group (exempt hosts not counted). */
  private readonly groupCounts = new Map<string, number>();
  private readonly refusals: GroupRefusals = { bucket: 0, table: 0 };

  /**
   * @throws InvalidOptionError naming `k`, `replacementCacheSize`, `createdAt`,
   *   `maxPerGroupInBucket`, `maxPerGroupInTable` or `groupExempt`.
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
    const perBucket = options.maxPerGroupInBucket ?? DEFAULT_MAX_PER_GROUP_IN_BUCKET;
    const perTable = options.maxPerGroupInTable ?? DEFAULT_MAX_PER_GROUP_IN_TABLE;
    if (!Number.isInteger(perBucket) || perBucket < 1 || perBucket > 256) {
      throw new InvalidOptionError('maxPerGroupInBucket', `must be an integer 1..256, got ${String(perBucket)}`);
    }
    if (!Number.isInteger(perTable) || perTable < 1 || perTable > 65536) {
      throw new InvalidOptionError('maxPerGroupInTable', `must be an integer 1..65536, got ${String(perTable)}`);
    }
    if (options.groupExempt !== undefined && typeof options.groupExempt !== 'function') {
      throw new InvalidOptionError('groupExempt', 'must be a function (host) => boolean');
    }
    this.k = k;
    this.replacementCacheSize = cache;
    this.maxPerGroupInBucket = perBucket;
    this.maxPerGroupInTable = perTable;
    this.groupExempt = options.groupExempt ?? (() => false);
    this.localId = Buffer.from(localId);
    this.createdAt = createdAt;
  }

  private bucketAt(i: number): Bucket {
    return (this.buckets[i] ??= { contacts: [], replacements: [], lastChanged: this.createdAt });
  }

  /** Contacts in buckets (waiting replacements not counted). */
  get size(): number {
    return this.count;
  }

  /** Contacts refused by the group limits so far (a snapshot). */
  get refusedByGroup(): GroupRefusals {
    return { ...this.refusals };
  }

  /** Contacts of `host`'s address group in the table now (0 for an exempt host). */
  groupCount(host: string): number {
    const g = this.groupOfHost(host);
    return g === undefined ? 0 : (this.groupCounts.get(g) ?? 0);
  }

  /**
   * Record that we heard from `contact` (paper §2.2 insert rule). `contact.lastSeen` is taken
   * as the current time for the bucket's lastChanged.
   */
  add(contact: Contact): AddResult {
    checkId(contact.id, 'contact.id');
    const index = bucketIndexOf(this.localId, contact.id);
    if (index < 0) return { status: 'self' };
    const bucket = this.bucketAt(index);
    const at = findIndex(bucket.contacts, contact.id);
    const group = this.groupOfHost(contact.host);
    if (at >= 0) {
      const existing = bucket.contacts[at]!;
      if (existing.group !== group) {
        // A new address in another group takes a place of that group: same rule as a newcomer.
        const over = this.overLimit(bucket, group, existing);
        if (over !== undefined) return this.refuse(over);
        this.uncount(existing.group);
        this.countIn(group);
        existing.group = group;
      }
      existing.host = contact.host;
      existing.port = contact.port;
      existing.lastSeen = contact.lastSeen;
      moveToTail(bucket.contacts, at);
      bucket.lastChanged = contact.lastSeen;
      return { status: 'updated' };
    }
    const over = this.overLimit(bucket, group);
    if (over !== undefined) {
      dropById(bucket.replacements, contact.id);
      return this.refuse(over);
    }
    if (bucket.contacts.length < this.k) {
      dropById(bucket.replacements, contact.id);
      this.insert(bucket, stored(contact, group));
      bucket.lastChanged = contact.lastSeen;
      return { status: 'added' };
    }
    this.remember(bucket, stored(contact, group));
    return { status: 'full', oldest: copyContact(bucket.contacts[0]!) };
  }

  /**
   * Finish a 'full' add once the caller has pinged `oldestId`. Alive: the old contact moves to
   * the tail with lastSeen = now and the newcomer keeps waiting in the replacement cache. Dead:
   * the old contact is evicted and the newcomer (found in the replacement cache by id; the most
   * recent waiting replacement if it has since been dropped) takes its place at the tail. If the
   * old contact is already gone, the newcomer is inserted when there is room. A waiting contact
   * whose group is now over a limit is passed over for the next most recent one. Returns true
   * if the table changed.
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
    const bucket = this.bucketAt(index);
    const at = findIndex(bucket.contacts, oldestId);
    if (at >= 0 && alive) {
      bucket.contacts[at]!.lastSeen = now;
      moveToTail(bucket.contacts, at);
      bucket.lastChanged = now;
      return true;
    }
    if (at >= 0) this.evict(bucket, at);
    if (bucket.contacts.length >= this.k) return at >= 0;
    const promoted = this.promote(bucket, newcomerId);
    if (at < 0 && promoted === undefined) return false;
    bucket.lastChanged = now;
    return true;
  }

  /**
   * Forget a contact (it failed, or said GOODBYE). The most recently seen waiting replacement
   * for its bucket that fits the group limits, if any, is promoted to the tail. The id is also dropped from the
   * replacement cache so a dead peer is never promoted later. Returns true if the contact was
   * in a bucket (not merely waiting). Does not change the bucket's lastChanged.
   */
  remove(id: Uint8Array): boolean {
    checkId(id, 'id');
    const index = bucketIndexOf(this.localId, id);
    const bucket = index < 0 ? undefined : this.buckets[index];
    if (!bucket) return false;
    dropById(bucket.replacements, id);
    const at = findIndex(bucket.contacts, id);
    if (at < 0) return false;
    this.evict(bucket, at);
    this.promote(bucket, undefined);
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
    const bucket = index < 0 ? undefined : this.buckets[index];
    if (!bucket) return;
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
    // Compared as bytes: a FIND_NODE answer excludes its asker, and a hex string per contact
    // per request was most of this method's cost under a FIND_NODE flood.
    const skip = exclude === undefined ? [] : [...exclude];
    const candidates: Contact[] = [];
    for (const bucket of this.buckets) {
      if (!bucket) continue;
      for (const c of bucket.contacts) {
        if (skip.length === 0 || !skip.some((id) => Buffer.compare(c.id, id) === 0)) candidates.push(c);
      }
    }
    candidates.sort((a, b) => compareDistance(target, a.id, b.id));
    return candidates.slice(0, n).map(copyContact);
  }

  /** Snapshots of all contacts, by bucket index ascending, each bucket least-recently seen first. */
  all(): Contact[] {
    const out: Contact[] = [];
    for (const bucket of this.buckets) if (bucket) for (const c of bucket.contacts) out.push(copyContact(c));
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
    const lowest = this.buckets.findIndex((b) => b !== undefined && b.contacts.length > 0);
    if (lowest < 0) return [];
    const cutoff = now - maxAgeMs;
    const stale: number[] = [];
    for (let i = lowest; i < ID_BITS; i++) if ((this.buckets[i]?.lastChanged ?? this.createdAt) < cutoff) stale.push(i);
    return stale;
  }

  /**
   * Record that a refresh lookup for bucket i ran at `now`, even if it found nobody new there
   * (otherwise an empty range would be reported stale on every pass).
   */
  markRefreshed(i: number, now: number): void {
    checkBucketIndex(i);
    this.bucketAt(i).lastChanged = now;
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

  private remember(bucket: Bucket, contact: Stored): void {
    if (this.replacementCacheSize === 0) return;
    dropById(bucket.replacements, contact.id);
    bucket.replacements.push(contact);
    if (bucket.replacements.length > this.replacementCacheSize) bucket.replacements.shift();
  }

  /**
   * Move a waiting replacement into the bucket's tail: the one with id `preferId` if it waits
   * and fits the group limits, else the most recent one that fits. Returns it, if any.
   */
  private promote(bucket: Bucket, preferId: Uint8Array | undefined): Stored | undefined {
    const list = bucket.replacements;
    let pick = preferId === undefined ? -1 : findIndex(list, preferId);
    if (pick >= 0 && this.overLimit(bucket, list[pick]!.group) !== undefined) pick = -1;
    for (let i = list.length - 1; pick < 0 && i >= 0; i--) {
      if (this.overLimit(bucket, list[i]!.group) === undefined) pick = i;
    }
    if (pick < 0) return undefined;
    const [c] = list.splice(pick, 1);
    this.insert(bucket, c!);
    return c;
  }

  private insert(bucket: Bucket, c: Stored): void {
    bucket.contacts.push(c);
    this.count++;
    this.countIn(c.group);
  }

  private evict(bucket: Bucket, at: number): void {
    const [c] = bucket.contacts.splice(at, 1);
    this.count--;
    this.uncount(c!.group);
  }

  /** Which limit a contact of `group` would break by taking a place in `bucket` (`self` not counted). */
  private overLimit(bucket: Bucket, group: string | undefined, self?: Stored): 'group_bucket' | 'group_table' | undefined {
    if (group === undefined) return undefined;
    let inBucket = 0;
    for (const c of bucket.contacts) if (c.group === group && c !== self) inBucket++;
    if (inBucket >= this.maxPerGroupInBucket) return 'group_bucket';
    const inTable = (this.groupCounts.get(group) ?? 0) - (self?.group === group ? 1 : 0);
    if (inTable >= this.maxPerGroupInTable) return 'group_table';
    return undefined;
  }

  private refuse(reason: 'group_bucket' | 'group_table'): AddResult {
    if (reason === 'group_bucket') this.refusals.bucket++;
    else this.refusals.table++;
    return { status: 'refused', reason };
  }

  private groupOfHost(host: string): string | undefined {
    return this.groupExempt(host) ? undefined : addressGroup(host);
  }

  private countIn(group: string | undefined): void {
    if (group !== undefined) this.groupCounts.set(group, (this.groupCounts.get(group) ?? 0) + 1);
  }

  private uncount(group: string | undefined): void {
    if (group === undefined) return;
    const n = (this.groupCounts.get(group) ?? 0) - 1;
    if (n > 0) this.groupCounts.set(group, n);
    else this.groupCounts.delete(group);
  }

  private find(id: Uint8Array): Contact | undefined {
    checkId(id, 'id');
    const index = bucketIndexOf(this.localId, id);
    const bucket = index < 0 ? undefined : this.buckets[index];
    return bucket?.contacts[findIndex(bucket.contacts, id)];
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

function findIndex(list: readonly Contact[], id: Uint8Array): number {
  for (let i = 0; i < list.length; i++) if (list[i]!.id.equals(id)) return i;
  return -1;
}

function dropById(list: Contact[], id: Uint8Array): void {
  const at = findIndex(list, id);
  if (at >= 0) list.splice(at, 1);
}

function moveToTail<T>(list: T[], at: number): void {
  const [c] = list.splice(at, 1);
  if (c !== undefined) list.push(c);
}

function copyContact(c: Contact): Contact {
  return { id: Buffer.from(c.id), host: c.host, port: c.port, lastSeen: c.lastSeen };
}

function stored(c: Contact, group: string | undefined): Stored {
  return { id: Buffer.from(c.id), host: c.host, port: c.port, lastSeen: c.lastSeen, group };
}
