/**
 * Adversary models for byzantine simulated nodes. They run the honest engines (so they
 * receive, advertise and answer like anyone) and corrupt what leaves them, or add traffic of
 * their own:
 * - drop:     silent for gossip: nothing of GOSSIP, IHAVE or IWANT leaves (no forwarding);
 * - withhold: no GOSSIP leaves (no forwarding, IWANTs go unanswered), yet IHAVE adverts still
 *             go out, so honest nodes spend their requests on it;
 * - tamper: every GOSSIP that leaves is altered, in turn: payload changed under the original
 *           id (id mismatch), payload changed with a matching new id (signature no longer
 *           matches), or the signature replaced by random bytes;
 * - flood:  every GOSSIP is sent FLOOD_COPIES times to its target and once to every other
 *           peer.
 * The attacks of issue 13 (the defences they face are per-peer limits and scores):
 * - iwant-drain:    silent as `drop`, and for every message id it learns (pushed to it, or
 *                   advertised to it) it asks every peer for it DRAIN_REPEATS times in IWANTs,
 *                   to use up what each honest node will serve of that message;
 * - findnode-flood: sends `rate` FIND_NODE per second of random targets, round robin over its
 *                   peers, each answered with a NODES of up to k contacts; gossips honestly;
 * - forged-flood:   sends `rate` GOSSIP per second, each unique, with a correct id over a
 *                   random node's public key and a random signature (each costs the receiver a
 *                   verification), round robin over its peers; gossips honestly;
 * - unique-flood:   publishes `rate` validly signed, unique messages per second on
 *                   ATTACK_TOPIC to every peer, with the network's TTL, so honest nodes verify,
 *                   cache and forward them; gossips honestly.
 * The floods run from the first publication for the scenario's attack time, in ticks of
 * ATTACK_TICK_MS. Honest messages are only ever originated by honest nodes. Every random
 * choice comes from the seeded stream given to the constructor: the same seed, the same run.
 */
import { gossipMessageId } from '../gossip/message-id.js';
import { decodeMessage, encodeMessage, packValue } from '../wire/codec.js';
import { LIMITS, MessageType } from '../wire/messages.js';
import type { Gossip } from '../wire/messages.js';
import type { SimNode } from './node.js';
import type { SimTransport } from './transport.js';

/** Every adversary model, as `--behaviour` names it. */
export const ADVERSARY_BEHAVIOURS = ['drop', 'withhold', 'tamper', 'flood', 'iwant-drain', 'findnode-flood', 'forged-flood', 'unique-flood'] as const;
export type AdversaryBehaviour = (typeof ADVERSARY_BEHAVIOURS)[number];

/** The models that send traffic of their own on a timer, and their default rate, per node per second. */
export const ATTACK_RATES: Readonly<Partial<Record<AdversaryBehaviour, number>>> = Object.freeze({
  'findnode-flood': 100,
  'forged-flood': 100,
  'unique-flood': 1,
});

/** Copies of each GOSSIP a flooding node sends its target. */
export const FLOOD_COPIES = 3;

/** Times an iwant-drain node asks each peer for each id it learns (the engine serves a message at most 32 times). */
export const DRAIN_REPEATS = 32;

/** Topic of the unique-flood's messages: the simulator does not count their deliveries as honest ones. */
export const ATTACK_TOPIC = 'sim/attack';

/** Period of the flood timers, virtual ms. */
export const ATTACK_TICK_MS = 100;

/** Topic forgeries claim: the honest one, so a forgery delivered would count as forgedDelivered. */
const FORGED_TOPIC = 'sim';

interface FloodState {
  /** Ticks run so far. */
  ticks: number;
  /** Sends made so far. */
  sent: number;
  /** Round-robin position over the node's peers. */
  next: number;
  /** Sequence numbers of this node's own attack messages. */
  seq: number;
}

export class Adversary {
  /** Frames the adversaries corrupted, withheld or added, by kind. */
  readonly counts = {
    dropped: 0, idMismatch: 0, reSigned: 0, forgedSignature: 0, floodCopies: 0,
    drainIwants: 0, drainIdsAsked: 0, findNodes: 0, forgedFlood: 0, uniqueFlood: 0,
  };
  private turn = 0;
  /** Ids each draining node has already asked for (by node index; latin1 keys). */
  private readonly drained = new Map<number, Set<string>>();
  private readonly floods = new Map<number, FloodState>();

  constructor(private readonly transport: SimTransport, private readonly random: () => number) {}

  /** What a byzantine `node` actually sends when its engine sends `body` to `to`. */
  send(node: SimNode, to: SimNode, type: number, body: Buffer): boolean {
    if (node.behaviour === 'iwant-drain') {
      this.drain(node, type, body);
      this.counts.dropped++;
      return true;
    }
    if (node.behaviour === 'drop') {
      this.counts.dropped++;
      return true;
    }
    if (type !== MessageType.GOSSIP) return this.transport.send(node, to, type, body);
    switch (node.behaviour) {
      case 'withhold':
        this.counts.dropped++;
        return true;
      case 'tamper':
        return this.transport.send(node, to, type, this.tamper(body));
      case 'flood': {
        for (let i = 0; i < FLOOD_COPIES; i++) this.transport.send(node, to, type, body);
        for (const link of node.peers()) if (link.peer !== to) this.transport.send(node, link.peer, type, body);
        this.counts.floodCopies += FLOOD_COPIES - 1 + Math.max(0, node.peers().length - 1);
        return true;
      }
      default:
        return this.transport.send(node, to, type, body);
    }
  }

  /**
   * One flood tick of `node` (every ATTACK_TICK_MS while the attack runs): send what its rate
   * allows for the tick. `nodes` is the whole network (forgeries claim a random node as origin),
   * `ttl` the TTL of the messages it makes.
   */
  tick(node: SimNode, nodes: readonly SimNode[], ratePerSec: number, ttl: number): void {
    if (!node.up) return;
    const peers = node.peers();
    if (peers.length === 0) return;
    const st = this.floods.get(node.index) ?? { ticks: 0, sent: 0, next: 0, seq: 0 };
    this.floods.set(node.index, st);
    // Integer bookkeeping (rate x elapsed, less what was sent): no drift from adding 0.1s.
    st.ticks++;
    const n = Math.floor((ratePerSec * st.ticks * ATTACK_TICK_MS) / 1000 + 1e-9) - st.sent;
    st.sent += n;
    for (let i = 0; i < n; i++) {
      switch (node.behaviour) {
        case 'findnode-flood': {
          const to = peers[st.next++ % peers.length]!.peer;
          const target = this.bytes(32);
          this.transport.send(node, to, MessageType.FIND_NODE, encodeMessage({ type: MessageType.FIND_NODE, reqId: (st.seq++ % 0xffffffff) + 1, target }));
          this.counts.findNodes++;
          break;
        }
        case 'forged-flood': {
          const to = peers[st.next++ % peers.length]!.peer;
          const origin = nodes[Math.floor(this.random() * nodes.length)]!.identity.publicKey;
          const seq = st.seq++;
          const payload = packValue({ forged: node.index, seq });
          const msg: Gossip = {
            type: MessageType.GOSSIP, id: gossipMessageId(origin, seq, FORGED_TOPIC, payload), origin, seq, topic: FORGED_TOPIC,
            ttl, hops: 1, seenBy: [], payload, signature: this.bytes(64),
          };
          this.transport.send(node, to, MessageType.GOSSIP, encodeMessage(msg));
          this.counts.forgedFlood++;
          break;
        }
        case 'unique-flood': {
          const origin = node.identity.publicKey;
          const seq = st.seq++;
          const payload = packValue({ flood: node.index, seq });
          const id = gossipMessageId(origin, seq, ATTACK_TOPIC, payload);
          const body = encodeMessage({
            type: MessageType.GOSSIP, id, origin, seq, topic: ATTACK_TOPIC, ttl, hops: 1, seenBy: [], payload, signature: node.identity.sign(id),
          });
          for (const link of peers) this.transport.send(node, link.peer, MessageType.GOSSIP, body);
          this.counts.uniqueFlood++;
          break;
        }
        default:
          return;
      }
    }
  }

  /** iwant-drain: learn the ids in what the node's engine tried to send; ask every peer for each new one DRAIN_REPEATS times. */
  private drain(node: SimNode, type: number, body: Buffer): void {
    let ids: Buffer[];
    if (type === MessageType.GOSSIP) ids = [(decodeMessage(body) as Gossip).id];
    else if (type === MessageType.IHAVE || type === MessageType.IWANT) ids = (decodeMessage(body) as { ids: Buffer[] }).ids;
    else return;
    let known = this.drained.get(node.index);
    if (!known) this.drained.set(node.index, (known = new Set()));
    const fresh: Buffer[] = [];
    for (const id of ids) {
      const key = id.toString('latin1');
      if (known.has(key)) continue;
      known.add(key);
      fresh.push(id);
    }
    if (fresh.length === 0) return;
    const asks: Buffer[] = [];
    for (const id of fresh) for (let r = 0; r < DRAIN_REPEATS; r++) asks.push(id);
    const frames: Buffer[] = [];
    for (let i = 0; i < asks.length; i += LIMITS.idsPerAdvert) {
      frames.push(encodeMessage({ type: MessageType.IWANT, ids: asks.slice(i, i + LIMITS.idsPerAdvert) }));
    }
    for (const link of node.peers()) {
      for (const f of frames) this.transport.send(node, link.peer, MessageType.IWANT, f);
      this.counts.drainIwants += frames.length;
      this.counts.drainIdsAsked += asks.length;
    }
  }

  private bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.random() * 256);
    return b;
  }

  private tamper(body: Buffer): Buffer {
    const msg = decodeMessage(body) as Gossip;
    const payload = Buffer.from(msg.payload);
    const at = Math.floor(this.random() * payload.length);
    payload[at] = payload[at]! ^ 0xff;
    let out: Gossip;
    switch (this.turn++ % 3) {
      case 0:
        this.counts.idMismatch++;
        out = { ...msg, payload };
        break;
      case 1:
        this.counts.reSigned++;
        out = { ...msg, payload, id: gossipMessageId(msg.origin, msg.seq, msg.topic, payload) };
        break;
      default: {
        this.counts.forgedSignature++;
        const signature = this.bytes(64);
        out = { ...msg, signature };
      }
    }
    return encodeMessage(out);
  }
}
