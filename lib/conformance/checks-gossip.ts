/**
 * Conformance checks for gossip relaying (docs/PROTOCOL.md §4.5, §4.6, §5). The kit holds two
 * connections to the target: it injects a message on one ("sender") and watches the other
 * ("watcher") for the relayed copy, pushed directly or fetched after an IHAVE (a target with
 * many peers may push elsewhere; repair still reaches the watcher within a heartbeat or two).
 * These checks assume a signed network (the default, §4.5 rule 4).
 */
import { randomBytes } from 'node:crypto';
import { generateIdentity } from '../identity.js';
import type { Identity } from '../identity.js';
import { gossipMessageId } from '../gossip/message-id.js';
import { packValue } from '../wire/codec.js';
import { LIMITS, MessageType } from '../wire/messages.js';
import type { Gossip, Message } from '../wire/messages.js';
import type { Check } from './checks-session.js';
import type { CheckContext, Session } from './context.js';
import { CheckFailure } from './wire-client.js';
import type { WireClient } from './wire-client.js';

const TOPIC = 'aethel-conformance';
/** TTL the kit injects with: the relayed copy must carry one less. */
const INJECT_TTL = 5;

type Forgery = 'bad_signature' | 'id_mismatch' | 'unsigned';

/** A GOSSIP from `origin` as the origin would send it, or forged in one way. */
function gossip(origin: Identity, forgery?: Forgery): Gossip {
  const seq = Date.now() * 1000 + randomBytes(2).readUInt16BE(0);
  const payload = packValue({ conformance: randomBytes(8).toString('hex') });
  let id = gossipMessageId(origin.publicKey, seq, TOPIC, payload);
  let signature: Buffer | null = origin.sign(id);
  if (forgery === 'bad_signature') signature = generateIdentity().sign(id); // signed by someone else
  if (forgery === 'unsigned') signature = null;
  if (forgery === 'id_mismatch') {
    id = gossipMessageId(origin.publicKey, seq, TOPIC, packValue('other payload'));
    signature = origin.sign(id); // a valid signature over an id that does not match the content
  }
  return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: TOPIC, ttl: INJECT_TTL, hops: 1, seenBy: [], payload, signature };
}

const isCopy = (id: Buffer) => (m: Message) => m.type === MessageType.GOSSIP && m.id.equals(id);
const mentions = (id: Buffer) => (m: Message) =>
  (m.type === MessageType.GOSSIP && m.id.equals(id)) || (m.type === MessageType.IHAVE && m.ids.some((x) => x.equals(id)));
const copies = (c: WireClient, id: Buffer) => c.received.filter(isCopy(id)).length;

/** Wait for the watcher to get `id`: pushed, or advertised in IHAVE and then fetched with IWANT. */
async function awaitRelay(ctx: CheckContext, watcher: WireClient, id: Buffer): Promise<{ msg: Gossip; via: string }> {
  const wait = 2 * ctx.opts.replyTimeoutMs;
  const first = await watcher.next(mentions(id), wait);
  if (!first) {
    if (watcher.closed) throw new CheckFailure('the target closed the watching connection');
    throw new CheckFailure(`the watching peer got neither the GOSSIP nor an IHAVE for it within ${wait} ms`);
  }
  if (first.type === MessageType.GOSSIP) return { msg: first, via: 'pushed' };
  watcher.send({ type: MessageType.IWANT, ids: [id] });
  const m = await watcher.expect(isCopy(id), ctx.opts.replyTimeoutMs, 'the GOSSIP asked for with IWANT after its IHAVE');
  if (m.type !== MessageType.GOSSIP) throw new CheckFailure('unreachable');
  return { msg: m, via: 'IHAVE then IWANT' };
}

async function pair(ctx: CheckContext): Promise<{ sender: Session; watcher: Session }> {
  const sender = await ctx.session();
  const watcher = await ctx.session();
  return { sender, watcher };
}

export const GOSSIP_CHECKS: readonly Check[] = [
  {
    name: 'gossip-forwarded',
    section: '§4.5, §5',
    title: 'an injected GOSSIP is relayed to another peer with ttl - 1, hops + 1, the same id, payload and signature, and the relay in seenBy',
    async run(ctx) {
      const { sender, watcher } = await pair(ctx);
      const m = gossip(generateIdentity());
      sender.client.send(m);
      const { msg, via } = await awaitRelay(ctx, watcher.client, m.id);
      if (msg.ttl !== m.ttl - 1) throw new CheckFailure(`relayed copy has ttl ${msg.ttl}, expected ${m.ttl - 1}`);
      if (msg.hops !== m.hops + 1) throw new CheckFailure(`relayed copy has hops ${msg.hops}, expected ${m.hops + 1}`);
      if (!msg.payload.equals(m.payload) || !msg.origin.equals(m.origin) || msg.seq !== m.seq || msg.topic !== m.topic) {
        throw new CheckFailure('relayed copy changed origin, seq, topic or payload');
      }
      if (!msg.signature || !msg.signature.equals(m.signature!)) throw new CheckFailure('relayed copy changed or dropped the signature');
      const relay = sender.target.id.subarray(0, LIMITS.seenByEntryBytes);
      if (!msg.seenBy.some((p) => p.equals(relay))) throw new CheckFailure('relayed copy does not carry the relay\'s id prefix in seenBy');
      return `${via}, ttl ${m.ttl} -> ${msg.ttl}, hops ${m.hops} -> ${msg.hops}`;
    },
  },
  {
    name: 'gossip-not-forwarded-twice',
    section: '§4.5 rule 3',
    title: 'a GOSSIP received again (from the sender and from the peer it was relayed to) is not relayed a second time, nor back to its sender',
    async run(ctx) {
      const { sender, watcher } = await pair(ctx);
      const m = gossip(generateIdentity());
      sender.client.send(m);
      const { msg } = await awaitRelay(ctx, watcher.client, m.id);
      sender.client.send(m);
      // The watcher relays it back as an honest peer might: also a duplicate for the target.
      watcher.client.send({ ...msg, ttl: msg.ttl - 1, hops: msg.hops + 1 });
      await watcher.client.idle(ctx.opts.quietMs);
      const atWatcher = copies(watcher.client, m.id);
      const atSender = copies(sender.client, m.id);
      if (atWatcher !== 1) throw new CheckFailure(`the watching peer received ${atWatcher} copies, expected 1`);
      if (atSender !== 0) throw new CheckFailure(`the sender received ${atSender} copies of its own message back`);
      return `1 copy relayed over ${ctx.opts.quietMs} ms after 2 duplicates`;
    },
  },
  {
    name: 'forged-gossip-not-forwarded',
    section: '§4.5 rules 1 and 4, §5',
    title: 'GOSSIP with a wrong signature, a nil signature or an id that does not match its content is neither relayed nor advertised',
    async run(ctx) {
      const { sender, watcher } = await pair(ctx);
      const origin = generateIdentity();
      const forged = (['bad_signature', 'unsigned', 'id_mismatch'] as const).map((f) => ({ f, m: gossip(origin, f) }));
      for (const { m } of forged) sender.client.send(m);
      // A genuine message sent after the forged ones shows the relay path works. It goes from
      // a new peer: the target may drop or ignore (graylist) a peer that sends forgeries. The
      // quiet period after it arrives catches any late relay of the forged ones.
      const control = gossip(origin);
      (await ctx.session()).client.send(control);
      await awaitRelay(ctx, watcher.client, control.id);
      await watcher.client.idle(ctx.opts.quietMs);
      for (const { f, m } of forged) {
        if (watcher.client.received.some(mentions(m.id))) throw new CheckFailure(`a GOSSIP forged with ${f} reached another peer (GOSSIP or IHAVE)`);
      }
      return 'bad_signature, unsigned and id_mismatch copies withheld; the genuine one relayed';
    },
  },
  {
    name: 'hops-saturate',
    section: '§4.5 rule 6',
    title: 'a GOSSIP arriving with hops 32 is relayed with hops 32 (hops saturate; 33 would break the schema)',
    async run(ctx) {
      const { sender, watcher } = await pair(ctx);
      const m = { ...gossip(generateIdentity()), hops: LIMITS.maxHops };
      sender.client.send(m);
      const { msg } = await awaitRelay(ctx, watcher.client, m.id);
      if (msg.hops !== LIMITS.maxHops) throw new CheckFailure(`relayed copy has hops ${msg.hops}, expected ${LIMITS.maxHops}`);
      return `hops ${m.hops} -> ${msg.hops}`;
    },
  },
  {
    name: 'seen-by-once',
    section: '§4.5 rule 6',
    title: 'a relay already listed in seenBy does not list itself again',
    async run(ctx) {
      const { sender, watcher } = await pair(ctx);
      const relay = sender.target.id.subarray(0, LIMITS.seenByEntryBytes);
      const m = { ...gossip(generateIdentity()), seenBy: [Buffer.from(relay)] };
      sender.client.send(m);
      const { msg } = await awaitRelay(ctx, watcher.client, m.id);
      const n = msg.seenBy.filter((p) => p.equals(relay)).length;
      if (n !== 1) throw new CheckFailure(`the relay's prefix appears ${n} times in seenBy`);
      return `relay listed once among ${msg.seenBy.length} entries`;
    },
  },
  {
    name: 'rejection-keeps-connection',
    section: '§4.5 (rejections)',
    title: 'a rejected GOSSIP (ttl 0) does not close the connection: a PING right after it is answered',
    async run(ctx) {
      const { client } = await ctx.session();
      client.send({ ...gossip(generateIdentity()), ttl: 0 });
      const seq = randomBytes(4).readUInt32BE(0);
      client.send({ type: MessageType.PING, seq });
      await client.expect((m) => m.type === MessageType.PONG && m.seq === seq, ctx.opts.replyTimeoutMs, 'PONG after a rejected GOSSIP');
      return 'still open after the rejection';
    },
  },
];
