/**
 * Conformance checks for the handshake, framing, encoding and request/reply messages. Each
 * cites the docs/PROTOCOL.md section whose MUST it tests. Negative checks write raw bytes.
 */
import { randomBytes } from 'node:crypto';
import { encodeMessage, packValue } from '../wire/codec.js';
import { frameHeader, encodeFrame } from '../wire/frame.js';
import { AckStatus, GoodbyeCode, LIMITS, MessageType, PROTOCOL_VERSION } from '../wire/messages.js';
import type { CheckContext } from './context.js';
import { CheckFailure } from './wire-client.js';

/** One named item of the checklist. */
export interface Check {
  /** Stable kebab-case name, used by --only and in JSON output. */
  name: string;
  /** The docs/PROTOCOL.md section(s) it tests, e.g. "§4.1". */
  section: string;
  /** What a passing target does, as a sentence. */
  title: string;
  /** Resolves with a short detail on pass; throws CheckFailure with the reason on fail. */
  run(ctx: CheckContext): Promise<string>;
}

const u32 = (): number => randomBytes(4).readUInt32BE(0);

export const SESSION_CHECKS: readonly Check[] = [
  {
    name: 'handshake',
    section: '§4.1',
    title: 'Noise XX handshake succeeds: version 2 chosen, the identity signs the Noise static key, a fresh ephemeral key per connection',
    async run(ctx) {
      const a = await ctx.session();
      const b = await ctx.session();
      if (a.client.noise!.remoteEphemeral!.equals(b.client.noise!.remoteEphemeral!)) throw new CheckFailure('target reused its ephemeral key on two connections');
      if (!a.target.id.equals(b.target.id)) throw new CheckFailure('target presented two different identities on two connections');
      const p = a.target.payload;
      return `target id ${a.target.id.toString('hex').slice(0, 16)}…, version ${p.version}, listens on ${JSON.stringify(p.listenHost)}:${p.listenPort}`;
    },
  },
  {
    name: 'encrypted-session',
    section: '§4.2',
    title: 'after the handshake the target speaks in records: a PING sealed in a record is answered by a sealed PONG',
    async run(ctx) {
      const { client } = await ctx.session();
      const seq = u32();
      client.send({ type: MessageType.PING, seq });
      await client.expect((m) => m.type === MessageType.PONG && m.seq === seq, ctx.opts.replyTimeoutMs, `PONG with seq ${seq} in a record`);
      return 'PONG in a record';
    },
  },
  {
    name: 'bad-record',
    section: '§4.2',
    title: 'a record whose ciphertext was altered is refused: the connection is closed and nothing in it is acted on',
    async run(ctx) {
      const { client } = await ctx.session();
      const seq = u32();
      const frame = encodeFrame(encodeMessage({ type: MessageType.PING, seq }));
      const sealed = client.sealRecords(frame);
      sealed[sealed.length - 1]![2]! ^= 0x01; // one flipped bit in the ciphertext (bytes 0-1 are the length L)
      for (const r of sealed) client.writeRaw(r);
      if (!(await client.waitClosed(ctx.opts.replyTimeoutMs))) throw new CheckFailure(`connection still open ${ctx.opts.replyTimeoutMs} ms after a forged record`);
      if (client.received.some((m) => m.type === MessageType.PONG && m.seq === seq)) throw new CheckFailure('target answered the PING inside a forged record');
      return 'closed, PING not answered';
    },
  },
  {
    name: 'plaintext-refused',
    section: '§4.1',
    title: 'a handshake asking for plaintext is refused with GOODBYE ENCRYPTION_MISMATCH (targets that require encryption)',
    async run(ctx) {
      const c = await ctx.client();
      c.startHandshake(ctx.opts.networkId, { encrypted: false });
      return ctx.expectGoodbye(c, GoodbyeCode.ENCRYPTION_MISMATCH);
    },
  },
  {
    name: 'message-before-handshake',
    section: '§4.1, §4.12',
    title: 'a PING before the handshake is refused with GOODBYE UNEXPECTED_MESSAGE',
    async run(ctx) {
      const c = await ctx.client();
      c.send({ type: MessageType.PING, seq: 1 });
      return ctx.expectGoodbye(c, GoodbyeCode.UNEXPECTED_MESSAGE);
    },
  },
  {
    name: 'preopen-frame-cap',
    section: '§1, §6',
    title: 'before the handshake, a header declaring more than 1024 bytes is refused with GOODBYE PROTOCOL_ERROR at once',
    async run(ctx) {
      const c = await ctx.client();
      c.writeRaw(frameHeader(LIMITS.preOpenFrameBytes + 1));
      return ctx.expectGoodbye(c, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'wrong-version',
    section: '§4.1, §7',
    title: 'a handshake offering only versions the target does not speak is refused with GOODBYE VERSION_MISMATCH',
    async run(ctx) {
      const c = await ctx.client();
      c.startHandshake(ctx.opts.networkId, { minVersion: PROTOCOL_VERSION + 1, maxVersion: PROTOCOL_VERSION + 5 });
      return ctx.expectGoodbye(c, GoodbyeCode.VERSION_MISMATCH);
    },
  },
  {
    name: 'version-range',
    section: '§4.1, §7',
    title: 'a handshake offering a range that includes this version gets the highest common one',
    async run(ctx) {
      const c = await ctx.client();
      c.startHandshake(ctx.opts.networkId, { minVersion: 1, maxVersion: PROTOCOL_VERSION + 3 });
      const t = await c.readTargetIdentity(ctx.opts.replyTimeoutMs, { minVersion: 1, maxVersion: PROTOCOL_VERSION + 3 });
      if (t.payload.version !== PROTOCOL_VERSION) throw new CheckFailure(`target chose ${t.payload.version}, expected ${PROTOCOL_VERSION}`);
      return `version ${t.payload.version} chosen from 1..${PROTOCOL_VERSION + 3}`;
    },
  },
  {
    name: 'wrong-network',
    section: '§4.1',
    title: 'a handshake naming another networkId is refused with GOODBYE NETWORK_MISMATCH',
    async run(ctx) {
      const c = await ctx.client();
      const other = `${ctx.opts.networkId}-x`.slice(-LIMITS.networkIdBytes);
      c.startHandshake(ctx.opts.networkId === other ? 'conformance-other' : other);
      return ctx.expectGoodbye(c, GoodbyeCode.NETWORK_MISMATCH);
    },
  },
  {
    name: 'bad-signature',
    section: '§4.1',
    title: 'an identity signature over the Noise static key that does not verify is refused with GOODBYE BAD_SIGNATURE',
    async run(ctx) {
      const c = await ctx.client();
      // A genuine signature by our identity, over bytes that are not our static key.
      await c.handshake(ctx.opts.networkId, ctx.opts.replyTimeoutMs, { staticSignature: c.identity.sign(randomBytes(32)) });
      return ctx.expectGoodbye(c, GoodbyeCode.BAD_SIGNATURE);
    },
  },
  {
    name: 'handshake-timeout',
    section: '§4.1',
    title: 'a peer that never sends the third handshake message is closed with GOODBYE HANDSHAKE_TIMEOUT',
    async run(ctx) {
      const c = await ctx.client();
      c.startHandshake(ctx.opts.networkId);
      await c.readTargetIdentity(ctx.opts.replyTimeoutMs);
      return ctx.expectGoodbye(c, GoodbyeCode.HANDSHAKE_TIMEOUT, ctx.opts.handshakeTimeoutMs + ctx.opts.replyTimeoutMs);
    },
  },
  {
    name: 'ping',
    section: '§4.3',
    title: 'PING is answered with PONG carrying the same seq',
    async run(ctx) {
      const { client } = await ctx.session();
      const seq = u32();
      client.send({ type: MessageType.PING, seq });
      await client.expect((m) => m.type === MessageType.PONG && m.seq === seq, ctx.opts.replyTimeoutMs, `PONG with seq ${seq}`);
      return `PONG seq ${seq}`;
    },
  },
  {
    name: 'frame-length-zero',
    section: '§1',
    title: 'a frame header declaring length 0 is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(Buffer.alloc(4));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'frame-too-large',
    section: '§1, §6',
    title: 'a header declaring maxFrameBytes + 1 is refused with GOODBYE PROTOCOL_ERROR before any body byte is sent',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(frameHeader(ctx.opts.maxFrameBytes + 1)); // the header only: no body follows
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'malformed-msgpack',
    section: '§2',
    title: 'a body that is not one complete MessagePack value (truncated array) is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(Buffer.from([0x92, 0x03]))); // array of 2, one element present
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'trailing-bytes',
    section: '§2',
    title: 'a body with bytes after its MessagePack value is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(Buffer.concat([packValue([MessageType.PING, 1]), Buffer.from([0x00])])));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'schema-violation',
    section: '§2, §4',
    title: 'a PING whose seq is a string is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(packValue([MessageType.PING, 'one'])));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'unknown-type',
    section: '§2, §4',
    title: 'a message with an unknown type code (99) is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(packValue([99, 1])));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'float-for-int',
    section: '§2',
    title: 'an integer field sent as a float, even a whole one (PING seq 7.0 as float 64), is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(Buffer.from('9203cb401c000000000000', 'hex')));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'reserved-byte',
    section: '§2',
    title: 'the never-used byte 0xc1 (as a PING seq) is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const { client } = await ctx.session();
      client.writeSession(encodeFrame(Buffer.from('9203c1', 'hex')));
      return ctx.expectGoodbye(client, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'handshake-after-open',
    section: '§4.1',
    title: 'a HANDSHAKE after the connection is open is refused with GOODBYE UNEXPECTED_MESSAGE',
    async run(ctx) {
      const { client } = await ctx.session();
      client.send({ type: MessageType.HANDSHAKE, noise: randomBytes(48) });
      return ctx.expectGoodbye(client, GoodbyeCode.UNEXPECTED_MESSAGE);
    },
  },
  {
    name: 'bad-listen-host',
    section: '§4.1',
    title: 'a listen address that is neither an IP literal nor a host name ("not a host!":5) is refused with GOODBYE PROTOCOL_ERROR',
    async run(ctx) {
      const c = await ctx.client();
      await c.handshake(ctx.opts.networkId, ctx.opts.replyTimeoutMs, { listenHost: 'not a host!', listenPort: 5 });
      return ctx.expectGoodbye(c, GoodbyeCode.PROTOCOL_ERROR);
    },
  },
  {
    name: 'goodbye-not-answered',
    section: '§4.12',
    title: 'a GOODBYE is not answered: the target closes without sending anything back',
    async run(ctx) {
      const { client } = await ctx.session();
      const from = client.received.length;
      client.send({ type: MessageType.GOODBYE, code: GoodbyeCode.NORMAL, reason: 'conformance' });
      if (!(await client.waitClosed(ctx.opts.replyTimeoutMs))) throw new CheckFailure(`still open ${ctx.opts.replyTimeoutMs} ms after our GOODBYE`);
      const answer = client.received.slice(from).find((m) => m.type === MessageType.GOODBYE);
      if (answer) throw new CheckFailure('the target answered our GOODBYE with a GOODBYE');
      return 'closed without an answer';
    },
  },
  {
    name: 'direct-no-subscriber',
    section: '§4.8, §4.9',
    title: 'a DIRECT on a topic the target does not subscribe to is answered with ACK status NO_SUBSCRIBER (1)',
    async run(ctx) {
      const { client } = await ctx.session();
      const ref = randomBytes(LIMITS.refBytes);
      const topic = `aethel-conformance-nobody-${randomBytes(4).toString('hex')}`;
      client.send({ type: MessageType.DIRECT, ref, topic, payload: packValue(1), wantReply: false });
      const m = await client.expect((x) => x.type === MessageType.ACK && x.ref.equals(ref), ctx.opts.replyTimeoutMs, 'ACK');
      if (m.type !== MessageType.ACK) throw new CheckFailure('unreachable');
      if (m.status !== AckStatus.NO_SUBSCRIBER) throw new CheckFailure(`ACK status ${m.status}, expected ${AckStatus.NO_SUBSCRIBER} (NO_SUBSCRIBER)`);
      return 'ACK NO_SUBSCRIBER';
    },
  },
  {
    name: 'find-node',
    section: '§4.10, §4.11',
    title: 'FIND_NODE is answered with NODES: same reqId, nearest first, a known peer included, never the asker',
    async run(ctx) {
      // The asker advertises a listener, so the target holds it as a contact it could hand out.
      const listen = await ctx.listener();
      const asker = await ctx.session(listen);
      const other = await ctx.session();
      const target = asker.client.identity.id;
      const ask = async (s: typeof asker) => {
        const reqId = u32();
        s.client.send({ type: MessageType.FIND_NODE, reqId, target });
        const m = await s.client.expect((x) => x.type === MessageType.NODES && x.reqId === reqId, ctx.opts.replyTimeoutMs, `NODES with reqId ${reqId}`);
        if (m.type !== MessageType.NODES) throw new CheckFailure('unreachable');
        const d = m.contacts.map((c) => xorDistance(c.id, target));
        for (let i = 1; i < d.length; i++) {
          if (Buffer.compare(d[i - 1]!, d[i]!) > 0) throw new CheckFailure(`NODES contacts are not nearest first (entry ${i} is nearer than entry ${i - 1})`);
        }
        return m.contacts;
      };
      const toAsker = await ask(asker);
      if (toAsker.some((c) => c.id.equals(asker.client.identity.id))) throw new CheckFailure('NODES handed the asker its own contact');
      const toOther = await ask(other);
      const hit = toOther.find((c) => c.id.equals(target));
      if (!hit) throw new CheckFailure(`NODES for the id of a connected peer that advertised a listener omits that peer (${toOther.length} contacts)`);
      if (hit.port !== listen.port) throw new CheckFailure(`NODES gives port ${hit.port} for the peer that advertised ${listen.port}`);
      return `${toAsker.length} contact(s) to the asker, ${toOther.length} to another peer, advertised address handed out`;
    },
  },
  {
    name: 'direct-ack',
    section: '§4.8, §4.9',
    title: 'DIRECT is answered with ACK carrying the same ref, and a retry with the same ref is acknowledged again',
    async run(ctx) {
      const { client } = await ctx.session();
      const ref = randomBytes(LIMITS.refBytes);
      const direct = { type: MessageType.DIRECT, ref, topic: 'aethel-conformance', payload: packValue('conformance'), wantReply: false } as const;
      const acks = () => client.received.filter((m) => m.type === MessageType.ACK && m.ref.equals(ref)).length;
      client.send(direct);
      await client.expect((m) => m.type === MessageType.ACK && m.ref.equals(ref), ctx.opts.replyTimeoutMs, 'ACK');
      const from = client.received.length;
      client.send(direct);
      const again = await client.next((m) => m.type === MessageType.ACK && m.ref.equals(ref), ctx.opts.replyTimeoutMs, from);
      if (!again) throw new CheckFailure(`a retried DIRECT (same ref) got no second ACK within ${ctx.opts.replyTimeoutMs} ms (${acks()} ACK in all)`);
      return `ACK ${ref.toString('hex').slice(0, 8)}… twice`;
    },
  },
];

function xorDistance(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ (b[i] ?? 0);
  return out;
}
