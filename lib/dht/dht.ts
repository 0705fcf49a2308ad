/**
 * The DHT engine: keeps the routing table, answers FIND_NODE, runs iterative lookups over
 * FIND_NODE/NODES, refreshes stale buckets. Talks to the node through DhtHost (links to
 * contacts, liveness checks) and to time through the injected clock; no sockets here.
 *
 * Only authenticated peers enter the table (peerSeen is called after a handshake). Contacts
 * from NODES replies are lookup candidates only, until a lookup has reached them (the host's
 * linkTo dials them and the handshake shows the expected id; only then does the host call
 * peerSeen). So what onFindNode hands out was proved by a handshake, never taken on the word
 * of another node. The table limits each address group (routing-table.ts) and lookups prefer
 * diverse groups (lookup.ts).
 */
import { isIP } from 'node:net';
import type { Clock, TimerHandle } from '../clock.js';
import { P2PError } from '../errors.js';
import { LIMITS, MessageType } from '../wire/messages.js';
import type { FindNode, Message, Nodes, NodeContact } from '../wire/messages.js';
import { addressGroup } from '../peers/address-group.js';
import { iterativeLookup } from './lookup.js';
import type { LookupContact, LookupResult } from './lookup.js';
import { bucketIndexOf, ID_BYTES, RoutingTable } from './routing-table.js';
import type { Contact } from './routing-table.js';

export interface DhtLink {
  readonly idHex: string;
  send(msg: Message): boolean;
}

export interface DhtHost {
  /** An open, authenticated link to the contact (dialing if needed); rejects if it cannot, or if another node answers there. */
  linkTo(contact: LookupContact): Promise<DhtLink>;
  /** Whether the contact answers now: Kademlia pings the oldest entry before evicting it. */
  isAlive(contact: Contact): Promise<boolean>;
  /** Whether there is an open connection to this node id now. */
  isConnected(id: Buffer): boolean;
}

export interface DhtOptions {
  /** Bucket size and lookup width. Default 20. */
  k: number;
  /** Lookup queries in flight. Default 3. */
  alpha: number;
  /** How long a FIND_NODE may wait for its NODES, ms. Default 2000. */
  requestTimeoutMs: number;
  /** Buckets untouched this long are refreshed by a lookup, ms. Default 1 hour. */
  refreshIntervalMs: number;
  /**
   * Contacts of one address group (/24 IPv4, /48 IPv6) a bucket may hold; more are refused.
   * Also how many of one group a lookup result takes before others. Default 2 (as geth).
   */
  maxPerGroupInBucket?: number;
  /** Contacts of one address group the routing table may hold. Default 10 (as geth). */
  maxPerGroupInTable?: number;
  /**
   * Hosts exempt from the group limits and from lookup diversity (an allowlist, a loopback
   * testbed). The network passes one built from its admission allowlist. Default: none.
   */
  groupExempt?: (host: string) => boolean;
}

/** FIND_NODE requests awaiting a reply, at most. */
const MAX_PENDING_REQUESTS = 1024;

interface Pending {
  peer: string;
  resolve: (contacts: NodeContact[]) => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

/** Timed-out FIND_NODE requests remembered, so a late NODES is not taken for an unsolicited one. */
const MAX_EXPIRED_REQUESTS = 1024;

export class Dht {
  readonly table: RoutingTable;
  private readonly pending = new Map<number, Pending>();
  /** Requests that timed out (reqId -> peer asked), the newest MAX_EXPIRED_REQUESTS. */
  private readonly expired = new Map<number, string>();
  private nextReqId = 1;
  private refreshing = false;
  /** Rounds of the lookups run so far (the last 1000), for reporting. */
  readonly lookupRounds: number[] = [];
  /** Statistics of the most recent lookup. */
  lastLookup: { rounds: number; queried: number; failed: number } | undefined;
  /** Inbound peers not added because the address they claimed is not the one they came from. */
  refusedUnproven = 0;
  /** Contacts (hex ids) whose liveness check is in flight: one check at a time per contact. */
  private readonly checking = new Set<string>();
  private readonly groupOf: (c: LookupContact) => string | undefined;

  constructor(
    private readonly selfId: Buffer,
    private readonly clock: Clock,
    private readonly opts: DhtOptions,
    private readonly host: DhtHost,
    private readonly randomBytes: (n: number) => Buffer,
  ) {
    const exempt = opts.groupExempt ?? (() => false);
    this.table = new RoutingTable(selfId, {
      k: opts.k,
      createdAt: clock.now(),
      maxPerGroupInBucket: opts.maxPerGroupInBucket,
      maxPerGroupInTable: opts.maxPerGroupInTable,
      groupExempt: exempt,
    });
    this.groupOf = (c) => (exempt(c.host) ? undefined : addressGroup(c.host));
  }

  /** FIND_NODE requests awaiting their NODES now: while any is, the links they use must stay open. */
  get requestsInFlight(): number {
    return this.pending.size;
  }

  /**
   * An authenticated peer listens at host:port: add it by Kademlia's rule, within the group
   * limits. `remoteHost` is for an inbound connection, whose listen address is only claimed:
   * the address the connection came from, which the claimed host must match (an endpoint
   * proof on the IP, as discv4 takes the packet's source); otherwise the peer is not added.
   * Leave it out when we dialed host:port ourselves and the handshake showed `id`.
   *
   * A full bucket pings its least-recently seen contact and replaces it only if that check
   * fails; while a check is in flight, further newcomers only wait in the replacement cache.
   */
  peerSeen(id: Buffer, host: string, port: number, remoteHost?: string): void {
    if (port === 0 || !host) return;
    if (remoteHost !== undefined && unmapped(remoteHost) !== unmapped(host)) {
      this.refusedUnproven++;
      return;
    }
    const now = this.clock.now();
    const r = this.table.add({ id, host, port, lastSeen: now });
    if (r.status !== 'full') return;
    const { oldest } = r;
    const key = oldest.id.toString('hex');
    if (this.checking.has(key)) return;
    this.checking.add(key);
    const settle = (alive: boolean) => {
      this.checking.delete(key);
      this.table.resolveFull(oldest.id, alive, id, this.clock.now());
    };
    this.host.isAlive(oldest).then(settle, () => settle(false));
  }

  /** A contact failed a query: drop it unless it is still connected (a waiting replacement takes its place). */
  contactFailed(id: Buffer): void {
    if (!this.host.isConnected(id)) this.table.remove(id);
  }

  onFindNode(from: DhtLink, msg: FindNode): void {
    const asker = Buffer.from(from.idHex, 'hex');
    const contacts = this.table.closest(msg.target, Math.min(this.opts.k, LIMITS.contacts), [asker]);
    from.send({ type: MessageType.NODES, reqId: msg.reqId, contacts: contacts.map((c) => ({ id: c.id, host: c.host, port: c.port })) });
  }

  /**
   * A NODES reply arrived. Returns false when nobody asked that peer for it (an unknown
   * reqId, or one asked of another peer): the caller counts that against the sender. A reply
   * that comes after its request timed out is ignored without blame (a slow honest peer).
   */
  onNodes(from: DhtLink, msg: Nodes): boolean {
    const p = this.pending.get(msg.reqId);
    if (!p || p.peer !== from.idHex) return this.expired.get(msg.reqId) === from.idHex;
    this.pending.delete(msg.reqId);
    p.timer.cancel();
    p.resolve(msg.contacts);
    return true;
  }

  /** Ask one contact for its nearest contacts to target; validated, self excluded. */
  async findNode(contact: LookupContact, target: Buffer): Promise<LookupContact[]> {
    if (this.pending.size >= MAX_PENDING_REQUESTS) throw new P2PError('QUEUE_FULL', 'too many FIND_NODE requests in flight');
    const link = await this.host.linkTo(contact);
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId % 0xffffffff) + 1;
    const reply = new Promise<NodeContact[]>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(reqId);
        // Remember whom we asked, for a while: its late answer is not unsolicited.
        if (this.expired.size >= MAX_EXPIRED_REQUESTS) this.expired.delete(this.expired.keys().next().value!);
        this.expired.set(reqId, link.idHex);
        reject(new P2PError('TIMEOUT', `FIND_NODE to ${link.idHex.slice(0, 12)} timed out`));
      }, this.opts.requestTimeoutMs);
      this.pending.set(reqId, { peer: link.idHex, resolve, reject, timer });
    });
    if (!link.send({ type: MessageType.FIND_NODE, reqId, target })) {
      this.pending.get(reqId)?.timer.cancel();
      this.pending.delete(reqId);
      throw new P2PError('QUEUE_FULL', 'could not send FIND_NODE');
    }
    const contacts = await reply;
    if (contacts.length > this.opts.k) throw new P2PError('MALFORMED', `NODES with ${contacts.length} contacts, more than k`);
    const out: LookupContact[] = [];
    const seen = new Set<string>();
    for (const c of contacts) {
      const key = c.id.toString('latin1');
      if (c.id.equals(this.selfId) || seen.has(key) || !validAddress(c.host, c.port)) continue;
      seen.add(key);
      out.push({ id: Buffer.from(c.id), host: c.host, port: c.port });
    }
    return out;
  }

  /** Iterative lookup of target from the table's nearest contacts. */
  async lookup(target: Buffer): Promise<LookupResult> {
    const seeds = this.table.closest(target, this.opts.k);
    const result = await iterativeLookup(
      target,
      seeds,
      (c) => this.findNode(c, target).catch((err: unknown) => {
        this.contactFailed(c.id);
        throw err;
      }),
      {
        k: this.opts.k,
        alpha: this.opts.alpha,
        selfId: this.selfId,
        groupOf: this.groupOf,
        maxPerGroup: this.table.maxPerGroupInBucket,
      },
    );
    if (this.lookupRounds.length >= 1000) this.lookupRounds.shift();
    this.lookupRounds.push(result.rounds);
    this.lastLookup = { rounds: result.rounds, queried: result.queried, failed: result.failed };
    return result;
  }

  /**
   * Join the network (paper §2.3): look up our own id, which fills the buckets near us and
   * makes us known to our neighbours, then refresh every bucket further away than our
   * closest neighbour with a lookup of a random id in its range, so that the far buckets,
   * which the self-lookup never explores, hold contacts too. Without them a lookup of a
   * far target could start from, and converge among, nodes that all know only our half.
   * About log2(N) lookups.
   */
  async join(): Promise<void> {
    if (this.table.size === 0) return;
    await this.lookup(this.selfId).catch(() => undefined);
    const nearest = this.table.closest(this.selfId, 1)[0];
    if (!nearest) return;
    for (let i = bucketIndexOf(this.selfId, nearest.id) + 1; i < ID_BYTES * 8; i++) {
      await this.lookup(this.table.randomIdInBucket(i, this.randomBytes)).catch(() => undefined);
      this.table.markRefreshed(i, this.clock.now());
    }
  }

  /** Refresh buckets untouched for refreshIntervalMs, one lookup at a time. */
  async refresh(): Promise<void> {
    if (this.refreshing || this.table.size === 0) return;
    this.refreshing = true;
    try {
      const now = this.clock.now();
      for (const i of this.table.staleBuckets(now, this.opts.refreshIntervalMs)) {
        await this.lookup(this.table.randomIdInBucket(i, this.randomBytes)).catch(() => undefined);
        this.table.markRefreshed(i, this.clock.now());
      }
    } finally {
      this.refreshing = false;
    }
  }

  /** Reject every request in flight (on stop). */
  clear(): void {
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.reject(new P2PError('STOPPED', 'the network was stopped'));
    }
    this.pending.clear();
    this.expired.clear();
  }
}

/** An IPv4-mapped IPv6 address as its IPv4 form; anything else unchanged. */
function unmapped(host: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return m ? m[1]! : host.toLowerCase();
}

/** A contact address worth dialing: an IP literal or a plain host name, and a real port. */
export function validAddress(host: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  return isIP(host) !== 0 || /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253})$/.test(host);
}
