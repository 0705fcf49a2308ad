/**
 * Adversary models for byzantine simulated nodes. They run the honest engines (so they
 * receive, advertise and answer like anyone) and corrupt what leaves them:
 * - drop:     silent for gossip: nothing of GOSSIP, IHAVE or IWANT leaves (no forwarding);
 * - withhold: no GOSSIP leaves (no forwarding, IWANTs go unanswered), yet IHAVE adverts still
 *             go out, so honest nodes spend their requests on it;
 * - tamper: every GOSSIP that leaves is altered, in turn: payload changed under the original
 *           id (id mismatch), payload changed with a matching new id (signature no longer
 *           matches), or the signature replaced by random bytes;
 * - flood:  every GOSSIP is sent FLOOD_COPIES times to its target and once to every other
 *           peer.
 * Honest messages are only ever originated by honest nodes.
 */
import { gossipMessageId } from '../gossip/message-id.js';
import { decodeMessage, encodeMessage } from '../wire/codec.js';
import { MessageType } from '../wire/messages.js';
import type { Gossip } from '../wire/messages.js';
import type { SimNode } from './node.js';
import type { SimTransport } from './transport.js';

/** Copies of each GOSSIP a flooding node sends its target. */
export const FLOOD_COPIES = 3;

export class Adversary {
  /** Corrupted GOSSIP copies sent, by kind. */
  readonly counts = { dropped: 0, idMismatch: 0, reSigned: 0, forgedSignature: 0, floodCopies: 0 };
  private turn = 0;

  constructor(private readonly transport: SimTransport, private readonly random: () => number) {}

  /** What a byzantine `node` actually sends when its engine sends `body` to `to`. */
  send(node: SimNode, to: SimNode, type: number, body: Buffer): boolean {
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
        const signature = Buffer.alloc(64);
        for (let i = 0; i < 64; i++) signature[i] = Math.floor(this.random() * 256);
        out = { ...msg, signature };
      }
    }
    return encodeMessage(out);
  }
}
