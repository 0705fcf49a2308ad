/**
 * A GossipPeer for engine specs: a fresh identity that records every message the engine
 * sends it (sendEncoded bodies decoded), and can refuse sends as a full outbound queue does.
 */
import { generateIdentity } from '../../lib/identity.js';
import type { GossipPeer } from '../../lib/gossip/engine.js';
import { decodeMessage } from '../../lib/wire/codec.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';

export class RecordingPeer implements GossipPeer {
  readonly identity = generateIdentity();
  readonly idHex = this.identity.idHex;
  readonly prefixKey = this.identity.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1');
  readonly sent: Message[] = [];
  /** False: the outbound queue is full, every send is refused. */
  accepting = true;

  /** `rttMs`: the link's measured round trip, if the spec wants one. */
  constructor(readonly rttMs?: number) {}

  send(msg: Message): boolean {
    if (this.accepting) this.sent.push(msg);
    return this.accepting;
  }

  sendEncoded(_type: number, body: Buffer): boolean {
    return this.send(decodeMessage(body));
  }

  /** What was sent of one type, in order. */
  of<T extends Message['type']>(type: T): Array<Extract<Message, { type: T }>> {
    return this.sent.filter((m): m is Extract<Message, { type: T }> => m.type === type);
  }

  /** The GOSSIP messages sent, in order. */
  gossip(): Gossip[] {
    return this.of(MessageType.GOSSIP);
  }
}
