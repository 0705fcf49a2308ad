/**
 * Kademlia iterative node lookup (Maymounkov & Mazières 2002, §2.3): keep a shortlist of the
 * contacts nearest to the target, query `alpha` of the nearest not yet asked each round,
 * merge what they return, and stop when a round brings nothing nearer than the nearest
 * already known; then ask the remaining unasked among the k nearest. A contact that times
 * out or answers garbage is dropped from the lookup, never retried within it.
 *
 * No I/O here: queries go through the `query` function the caller supplies.
 */
import { compareDistance } from './routing-table.js';

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
}

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
    const cand: Candidate = { contact: c, state: 'new' };
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

  for (;;) {
    const window = shortlist.slice(0, opts.k);
    const unasked = window.filter((c) => c.state === 'new');
    if (unasked.length === 0) break;
    const batch = finalSweep ? unasked : unasked.slice(0, opts.alpha);
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
  const closest = shortlist.filter((c) => c.state === 'answered').slice(0, opts.k).map((c) => c.contact);
  return { closest, rounds, queried, failed };
}
