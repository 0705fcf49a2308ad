/**
 * Kademlia iterative node lookup (Maymounkov & Mazières 2002, §2.3): keep a shortlist of the
 * contacts nearest to the target, query `alpha` of the nearest not yet asked each round,
 * merge what they return, and stop when a round brings nothing nearer than the nearest
 * already known; then ask the remaining unasked among the k nearest. A contact that times
 * out or answers garbage is dropped from the lookup, never retried within it.
 *
 * Diversity across address groups (when the caller gives `groupOf`), so that many identities
 * behind one network cannot steer a lookup by being near the target:
 * - choosing the alpha contacts to ask: among the unasked in the window, contacts of the
 *   nearest log-distance class (same highest differing bit from the target, the same
 *   "equally near" a bucket means) come first; within a class, contacts whose group has been
 *   asked fewer times in this lookup (this batch included) come first; then the nearer;
 * - the window (the "k nearest" the lookup must ask before it ends) and the result: the k
 *   nearest, taking at most `maxPerGroup` of any one group first, then filling the places
 *   left, nearest first, from those passed over (so a network with a single group, a loopback
 *   testbed, still gets k), nearest first. Farther contacts of other groups are therefore
 *   asked, and kept, instead of a group's surplus.
 *

 * No I/O here: queries go through the `query` function the caller supplies.
 */
import { bucketIndexOf, compareDistance } from './routing-table.js';

export interface LookupContact {
  id: Buffer;
  host: string;
  port: number;
}

export interface LookupOptions {
  /** Result size and shortlist width (Kademlia's k). */
  k: number;
  /** Queries in flight per round (Kademlia's alpha). */
  alpha: number;
  /** This node's id: never added to the shortlist. */
  selfId: Buffer;
  /** A contact's address group, or undefined when it is exempt. Default: no diversity rules. */
  groupOf?: (contact: LookupContact) => string | undefined;
  /** Places of the result one group takes before others are considered. Default 2. */
  maxPerGroup?: number;
}

/** Default of LookupOptions.maxPerGroup: the routing table's per-bucket group limit. */
export const DEFAULT_LOOKUP_MAX_PER_GROUP = 2;

export interface LookupResult {
  /** The k nearest contacts that answered, nearest first. */
  closest: LookupContact[];
  /** Rounds of queries made. */
  rounds: number;
  /** Contacts asked. */
  queried: number;
  /** Contacts that failed to answer (timeout, error, invalid reply). */
  failed: number;
}

/** Bound on contacts asked per lookup, in units of k: hostile replies cannot keep it going forever. */
export const MAX_QUERIES_PER_K = 8;

type State = 'new' | 'asked' | 'answered' | 'failed';

interface Candidate {
  contact: LookupContact;
  state: State;
  /** Address group, undefined when exempt or when no groupOf was given. */
  group: string | undefined;
}

/**
 * Find the k nodes nearest to `target`, starting from `seeds`. `query(contact)` asks one
 * contact for its nearest contacts to the target and rejects if it cannot.
 */
export async function iterativeLookup(
  target: Buffer,
  seeds: LookupContact[],
  query: (contact: LookupContact) => Promise<LookupContact[]>,
  opts: LookupOptions,
): Promise<LookupResult> {
  const byKey = new Map<string, Candidate>();
  let shortlist: Candidate[] = [];
  const consider = (c: LookupContact) => {
    if (c.id.equals(opts.selfId)) return;
    const key = c.id.toString('latin1');
    if (byKey.has(key)) return;
    const cand: Candidate = { contact: c, state: 'new', group: opts.groupOf?.(c) };
    byKey.set(key, cand);
    shortlist.push(cand);
  };
  const sortShortlist = () => {
    shortlist = shortlist.filter((c) => c.state !== 'failed');
    shortlist.sort((a, b) => compareDistance(target, a.contact.id, b.contact.id));
  };
  for (const s of seeds) consider(s);
  sortShortlist();

  let rounds = 0;
  let queried = 0;
  let failed = 0;
  let nearest: Buffer | undefined = shortlist[0]?.contact.id;
  let finalSweep = false;
  const askedPerGroup = new Map<string, number>();
  const maxPerGroup = opts.maxPerGroup ?? DEFAULT_LOOKUP_MAX_PER_GROUP;

  for (;;) {
    const window = opts.groupOf ? diverseResult(shortlist, opts.k, maxPerGroup) : shortlist.slice(0, opts.k);
    const unasked = window.filter((c) => c.state === 'new');
    if (unasked.length === 0) break;
    const batch = finalSweep ? unasked : opts.groupOf ? pickDiverse(unasked, opts.alpha, target, askedPerGroup) : unasked.slice(0, opts.alpha);
    for (const c of batch) if (c.group !== undefined) askedPerGroup.set(c.group, (askedPerGroup.get(c.group) ?? 0) + 1);
    rounds++;
    queried += batch.length;
    for (const c of batch) c.state = 'asked';
    const replies = await Promise.allSettled(batch.map((c) => query(c.contact)));
    replies.forEach((r, i) => {
      const cand = batch[i]!;
      if (r.status === 'fulfilled') {
        cand.state = 'answered';
        for (const c of r.value) consider(c);
      } else {
        cand.state = 'failed';
        failed++;
      }
    });
    sortShortlist();
    const best = shortlist[0]?.contact.id;
    const improved = best !== undefined && (nearest === undefined || compareDistance(target, best, nearest) < 0);
    if (improved) nearest = best;
    // No progress this round: from now on ask every unasked contact among the k nearest
    // at once; the lookup ends when all of them have been asked.
    if (!improved) finalSweep = true;
    if (queried >= MAX_QUERIES_PER_K * opts.k) break;
  }
  const answered = shortlist.filter((c) => c.state === 'answered');
  const chosen = opts.groupOf ? diverseResult(answered, opts.k, maxPerGroup) : answered.slice(0, opts.k);
  return { closest: chosen.map((c) => c.contact), rounds, queried, failed };
}

/**
 * Up to n of `unasked` (sorted nearest first) to ask next: nearest log-distance class first,
 * then the group asked least so far (counting this batch's picks), then the nearest.
 */
function pickDiverse(unasked: Candidate[], n: number, target: Buffer, askedPerGroup: ReadonlyMap<string, number>): Candidate[] {
  const picked: Candidate[] = [];
  const inBatch = new Map<string, number>();
  const classOf = unasked.map((c) => bucketIndexOf(target, c.contact.id));
  const used = new Uint8Array(unasked.length);
  const times = (g: string | undefined) => (g === undefined ? 0 : (askedPerGroup.get(g) ?? 0) + (inBatch.get(g) ?? 0));
  while (picked.length < n && picked.length < unasked.length) {
    let best = -1;
    for (let i = 0; i < unasked.length; i++) {
      if (used[i]) continue;
      // Candidates are nearest first, so on a tie the earlier (nearer) one stays best.
      if (best < 0 || classOf[i]! < classOf[best]! || (classOf[i] === classOf[best] && times(unasked[i]!.group) < times(unasked[best]!.group))) best = i;
    }
    used[best] = 1;
    const c = unasked[best]!;
    picked.push(c);
    if (c.group !== undefined) inBatch.set(c.group, (inBatch.get(c.group) ?? 0) + 1);
  }
  return picked;
}

/** k of `answered` (nearest first) with at most maxPerGroup per group, topped up nearest first; nearest first. */
function diverseResult(answered: Candidate[], k: number, maxPerGroup: number): Candidate[] {
  const taken = new Set<Candidate>();
  const perGroup = new Map<string, number>();
  for (const c of answered) {
    if (taken.size >= k) break;
    if (c.group !== undefined) {
      const n = perGroup.get(c.group) ?? 0;
      if (n >= maxPerGroup) continue;
      perGroup.set(c.group, n + 1);
    }
    taken.add(c);
  }
  for (const c of answered) {
    if (taken.size >= k) break;
    taken.add(c);
  }
  // `answered` is nearest first: filtering it keeps that order.
  return answered.filter((c) => taken.has(c));
}
