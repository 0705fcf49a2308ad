import { expect } from 'chai';
import sinon from 'sinon';
import { once } from 'node:events';
import { systemClock } from '../../lib/clock.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { Connection } from '../../lib/transport/connection.js';
import type { CloseInfo, ConnectionConfig } from '../../lib/transport/connection.js';
import { generateX25519 } from '../../lib/noise/handshake.js';
import { encodeMessage } from '../../lib/wire/codec.js';
import { encodeFrame } from '../../lib/wire/frame.js';
import { TcpTransport } from '../../lib/transport/tcp.js';
import { GoodbyeCode, MessageType } from '../../lib/wire/messages.js';
import type { Goodbye, GossipFrame, InboundMessage } from '../../lib/wire/messages.js';
import { encodeGossip, readGossip } from '../../lib/wire/gossip-envelope.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { waitFor } from '../../lib/testnet.js';

interface Side {
  identity: Identity;
  metrics: Metrics;
  transport: TcpTransport;
  inbound: Connection[];
  port: number;
}

function config(identity: Identity, metrics: Metrics, over: Partial<ConnectionConfig> = {}): ConnectionConfig {
  return {
    identity,
    networkId: 'aethel',
    encrypted: true,
    staticKey: generateX25519(),
    advertiseHost: '127.0.0.1',
    advertisePort: 0,
    maxFrameBytes: 1 << 20,
    handshakeTimeoutMs: 2000,
    maxQueueBytes: 1 << 20,
    clock: systemClock,
    metrics,
    ...over,
  };
}

function waitClose(conn: Connection): Promise<CloseInfo> {
  return once(conn, 'close').then(([info]) => info as CloseInfo);
}

describe('Connection over loopback', () => {
  const sides: Side[] = [];
  const peers: RawPeer[] = [];

  async function side(over: Partial<ConnectionConfig> = {}): Promise<Side> {
    const identity = generateIdentity();
    const metrics = new Metrics();
    const inbound: Connection[] = [];
    const transport = new TcpTransport(config(identity, metrics, over), (c) => inbound.push(c));
    const { port } = await transport.listen('127.0.0.1', 0);
    const s = { identity, metrics, transport, inbound, port };
    sides.push(s);
    return s;
  }

  /** Two sides, b dialed a, both ends of the connection open. */
  async function openPair(): Promise<{ a: Side; b: Side; out: Connection; inbound: Connection }> {
    const a = await side();
    const b = await side();
    const out = await b.transport.dial('127.0.0.1', a.port, 2000);
    await once(out, 'open');
    const inbound = a.inbound[0]!;
    if (inbound.state !== 'open') await once(inbound, 'open');
    return { a, b, out, inbound };
  }

  async function raw(port: number, identity?: Identity): Promise<RawPeer> {
    const p = await RawPeer.connect(port, identity);
    peers.push(p);
    return p;
  }

  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    await Promise.all(sides.splice(0).map((s) => s.transport.close()));
  });

  it('completes the handshake in both directions and learns the peer id and listen address', async () => {
    const { a, b, out, inbound } = await openPair();
    expect(out.peerIdHex).to.equal(a.identity.idHex);
    expect(inbound.peerIdHex).to.equal(b.identity.idHex);
    expect(out.outbound).to.equal(true);
    expect(inbound.outbound).to.equal(false);
    expect(out.peerListenPort).to.equal(a.port);
  });

  it('keeps the peer\'s public key in 32 bytes of its own, not in a shared pool block it would keep alive for the connection\'s life', async () => {
    const { a, b, out, inbound } = await openPair();
    expect(out.peerPublicKey!.equals(a.identity.publicKey)).to.equal(true);
    expect(inbound.peerPublicKey!.equals(b.identity.publicKey)).to.equal(true);
    expect(out.peerPublicKey!.buffer.byteLength).to.equal(32);
    expect(inbound.peerPublicKey!.buffer.byteLength).to.equal(32);
  });

  it('measures the round trip of a PING and passes other messages up', async () => {
    const { a, b, out, inbound } = await openPair();
    out.ping();
    const got = once(inbound, 'message');
    out.send({ type: MessageType.ACK, ref: Buffer.alloc(16, 7), status: 0, reply: null });
    const [msg] = await got;
    expect(msg).to.deep.equal({ type: MessageType.ACK, ref: Buffer.alloc(16, 7), status: 0, reply: null });
    await waitFor(() => out.rttMs !== undefined, 2000, 'PONG');
    expect(out.rttMs).to.be.a('number').and.to.be.at.least(0);
  });

  it('keeps the smallest round trip of the last four PINGs as rttMs', async () => {
    const a = await side();
    const b = await side();
    const samples: number[] = [];
    const observe = sinon.stub(b.metrics, 'observeRtt').callsFake((ms: number) => void samples.push(ms));
    const out = await b.transport.dial('127.0.0.1', a.port, 2000);
    if (out.state !== 'open') await once(out, 'open');
    expect(out.rttMs).to.equal(undefined); // no PING of its own before the caller asks
    for (let n = 1; n <= 5; n++) {
      out.ping();
      await waitFor(() => samples.length === n, 2000, `round trip ${n}`);
      expect(out.rttMs).to.equal(Math.min(...samples.slice(-4)));
    }
    observe.restore();
  });

  it('hands a GOSSIP up undecoded (its body, as sent), and closes with the error a listener throws for a malformed one', async () => {
    const { a, b, out, inbound } = await openPair();
    const body = encodeGossip({
      type: MessageType.GOSSIP, id: Buffer.alloc(32, 1), origin: Buffer.alloc(32, 2), seq: 3, topic: 't', ttl: 4, hops: 1,
      seenBy: [Buffer.alloc(8, 5)], payload: Buffer.from([0xc0]), signature: null,
    });
    const got = once(inbound, 'message');
    out.sendEncoded(MessageType.GOSSIP, body);
    const [msg] = (await got) as [InboundMessage];
    expect(msg.type).to.equal(MessageType.GOSSIP);
    expect((msg as GossipFrame).body.equals(body)).to.equal(true);
    inbound.on('message', (m) => {
      if (m.type === MessageType.GOSSIP) readGossip(m.body);
    });
    const closed = waitClose(inbound);
    const bad = Buffer.from(body);
    bad[bad.length - 1] = 0xc1; // the signature: neither nil nor bin
    out.sendEncoded(MessageType.GOSSIP, bad);
    const info = await closed;
    expect(info.error?.code).to.equal('SCHEMA');
    expect(info.code).to.equal(GoodbyeCode.PROTOCOL_ERROR);
  });

  const refusals: Array<[string, (p: RawPeer) => void, number, string]> = [
    ['versions it does not speak', (p) => p.startHandshake({ minVersion: 3, maxVersion: 4 }), GoodbyeCode.VERSION_MISMATCH, 'VERSION_MISMATCH'],
    ['a wrong networkId', (p) => p.startHandshake({ networkId: 'other' }), GoodbyeCode.NETWORK_MISMATCH, 'NETWORK_MISMATCH'],
    ['a plaintext session', (p) => p.startHandshake({ encrypted: false }), GoodbyeCode.ENCRYPTION_MISMATCH, 'ENCRYPTION_MISMATCH'],
    ['a PING before the handshake', (p) => p.send({ type: MessageType.PING, seq: 1 }), GoodbyeCode.UNEXPECTED_MESSAGE, 'UNEXPECTED_MESSAGE'],
    ['a length prefix above maxFrameBytes', (p) => p.sendRaw(Buffer.from('ffffffff', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'FRAME_TOO_LARGE'],
    ['a length prefix above the 1 KiB pre-handshake cap', (p) => p.sendRaw(Buffer.from('00000401', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'FRAME_TOO_LARGE'],
    ['a zero length prefix', (p) => p.sendRaw(Buffer.from('00000000', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'FRAME_EMPTY'],
    ['a truncated MessagePack body', (p) => p.sendRaw(Buffer.from('0000000192', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'MALFORMED'],
    ['a body that is not a message array', (p) => p.sendRaw(Buffer.from('00000001c0', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'SCHEMA'],
    ['the never-used byte 0xc1 as the body', (p) => p.sendRaw(Buffer.from('00000001c1', 'hex')), GoodbyeCode.PROTOCOL_ERROR, 'MALFORMED'],
  ];
  for (const [what, act, goodbye, code] of refusals) {
    it(`refuses ${what} with GOODBYE ${goodbye} and closes only that socket`, async () => {
      const a = await side();
      const bad = await raw(a.port);
      act(bad);
      await bad.waitClosed();
      expect((bad.goodbye() as Goodbye | undefined)?.code).to.equal(goodbye);
      const info = await (a.inbound[0]!.state === 'closed' ? Promise.resolve(undefined) : waitClose(a.inbound[0]!));
      if (info) expect(info.error?.code).to.equal(code);
      expect(a.metrics.snapshot({ connectedPeers: 0, seenMessages: 0 }).invalidByReason[code]).to.equal(1);
    });
  }

  it('refuses an identity whose signature over the Noise static key does not verify', async () => {
    const a = await side();
    const p = await raw(a.port);
    await p.handshake({ staticSignature: p.identity.sign(Buffer.alloc(32)) });
    await p.waitClosed();
    // The responder had already split its keys: the refusal comes sealed, and the kit reads it.
    expect((p.goodbye() as Goodbye).code).to.equal(GoodbyeCode.BAD_SIGNATURE);
  });

  it('refuses a listen address that is neither an IP literal nor a host name (sealed GOODBYE PROTOCOL_ERROR)', async () => {
    const a = await side();
    const p = await raw(a.port);
    await p.handshake({ listenHost: 'not a host!', listenPort: 5 });
    await p.waitClosed();
    expect((p.goodbye() as Goodbye).code).to.equal(GoodbyeCode.PROTOCOL_ERROR);
    const ok = await raw(a.port);
    await ok.handshake({ listenHost: '', listenPort: 0 });
    ok.send({ type: MessageType.PING, seq: 3 });
    expect(await ok.waitFor((m) => m.type === MessageType.PONG)).to.deep.equal({ type: MessageType.PONG, seq: 3 });
  });

  it('refuses a connection to itself', async () => {
    const a = await side();
    const p = await raw(a.port, a.identity);
    await p.handshake().catch(() => {});
    await p.waitClosed();
    expect((p.goodbye() as Goodbye).code).to.equal(GoodbyeCode.SELF_CONNECTION);
  });

  it('negotiates the highest common version from overlapping ranges', async () => {
    const a = await side({ minVersion: 2, maxVersion: 5 });
    const b = await side({ minVersion: 1, maxVersion: 3 });
    const out = await b.transport.dial('127.0.0.1', a.port, 2000);
    await once(out, 'open');
    expect(out.version).to.equal(3);
    const c = await side({ minVersion: 6, maxVersion: 7 });
    const refused = await b.transport.dial('127.0.0.1', c.port, 2000);
    const info = await waitClose(refused);
    expect(info.code).to.equal(GoodbyeCode.VERSION_MISMATCH);
    expect(info.error?.code).to.equal('VERSION_MISMATCH');
    expect(info.reason).to.match(/1\.\.3.*6\.\.7|6\.\.7.*1\.\.3/);
  });

  it('talks in clear only when both sides chose plaintext, and tells the dialer why otherwise', async () => {
    const plain = await side({ encrypted: false });
    const plain2 = await side({ encrypted: false });
    const ok = await plain2.transport.dial('127.0.0.1', plain.port, 2000);
    await once(ok, 'open');
    expect(ok.encrypted).to.equal(false);
    const enc = await side();
    const refused = await enc.transport.dial('127.0.0.1', plain.port, 2000);
    const info = await waitClose(refused);
    expect(info.error?.code).to.equal('ENCRYPTION_MISMATCH');
  });

  it('closes the session with BAD_RECORD, acting on nothing in it, when one ciphertext bit is flipped', async () => {
    const a = await side();
    const p = await raw(a.port);
    await p.handshake();
    const conn = a.inbound[0]!;
    if (conn.state !== 'open') await once(conn, 'open');
    const seen: unknown[] = [];
    conn.on('message', (m) => seen.push(m));
    const records = p.client.sealRecords(encodeFrame(encodeMessage({ type: MessageType.ACK, ref: Buffer.alloc(16, 3), status: 0, reply: null })));
    records[0]![5]! ^= 0x80;
    const closed = waitClose(conn);
    for (const r of records) p.sendRaw(r);
    const info = await closed;
    expect(info.error?.code).to.equal('BAD_RECORD');
    expect(seen).to.deep.equal([]);
  });

  for (const encrypted of [true, false]) {
    it(`keeps what a dialed ${encrypted ? 'encrypted' : 'plaintext'} connection received intact across later reads (its socket reads into one reused buffer)`, async () => {
      const a = await side({ encrypted });
      const b = await side({ encrypted });
      const out = await b.transport.dial('127.0.0.1', a.port, 2000);
      await waitFor(() => a.inbound.length === 1, 2000, 'inbound');
      const inbound = a.inbound[0]!;
      if (inbound.state !== 'open') await once(inbound, 'open');
      if (out.state !== 'open') await once(out, 'open');
      const got: Array<{ reply: Buffer | null }> = [];
      out.on('message', (m) => got.push(m as { reply: Buffer | null }));
      for (let i = 1; i <= 3; i++) {
        inbound.send({ type: MessageType.ACK, ref: Buffer.alloc(16, i), status: 0, reply: Buffer.alloc(200, i) });
        await waitFor(() => got.length === i, 2000, `ack ${i}`);
      }
      expect(got.map((m) => m.reply!.toString('hex'))).to.deep.equal([1, 2, 3].map((i) => Buffer.alloc(200, i).toString('hex')));
    });
  }

  it('keeps its outbound queue\'s slots between writes only up to a bound, so a burst of small frames does not hold memory for the connection\'s life', async () => {
    const { out, inbound } = await openPair();
    const slots = () => (out as unknown as { pending: Buffer[] }).pending.length;
    let got = 0;
    inbound.on('message', () => got++);
    const ack = { type: MessageType.ACK, ref: Buffer.alloc(16, 7), status: 0, reply: null } as const;
    for (let i = 0; i < 10; i++) out.send(ack);
    await waitFor(() => got === 10, 2000, 'ten frames');
    expect(slots()).to.equal(10);
    for (let i = 0; i < 5000; i++) out.send(ack);
    await waitFor(() => got === 5010, 5000, 'the burst');
    expect(slots()).to.be.at.most(1024);
  });

  it('reads the session bytes that arrive in the same chunk as the last handshake message', async () => {
    const a = await side();
    const b = await side();
    const out = await b.transport.dial('127.0.0.1', a.port, 2000);
    // Queued before the handshake completes: goes out sealed right behind the third message.
    out.once('open', () => out.send({ type: MessageType.ACK, ref: Buffer.alloc(16, 5), status: 0, reply: null }));
    await waitFor(() => a.inbound.length === 1, 2000, 'inbound');
    const [msg] = await once(a.inbound[0]!, 'message');
    expect(msg).to.deep.include({ type: MessageType.ACK, status: 0 });
  });

  it('writes a key-log line per session that names the initiator\'s ephemeral key', async () => {
    const lines: string[] = [];
    const a = await side();
    const b = await side({ keyLog: (l) => lines.push(l) });
    const out = await b.transport.dial('127.0.0.1', a.port, 2000);
    await once(out, 'open');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^AETHEL_NOISE [0-9a-f]{64} [0-9a-f]{64} [0-9a-f]{64}/);
  });

  it('closes a connection that does not finish the handshake in time', async () => {
    const a = await side({ handshakeTimeoutMs: 100 });
    const p = await raw(a.port);
    await p.waitClosed(3000);
    expect((p.goodbye() as Goodbye).code).to.equal(GoodbyeCode.HANDSHAKE_TIMEOUT);
  });

  it('keeps an honest connection working while a hostile one is closed', async () => {
    const a = await side();
    const honest = await raw(a.port);
    await honest.handshake();
    const hostile = await raw(a.port);
    hostile.sendRaw(Buffer.from('7fffffff', 'hex'));
    await hostile.waitClosed();
    honest.send({ type: MessageType.PING, seq: 42 });
    const pong = await honest.waitFor((m) => m.type === MessageType.PONG);
    expect(pong).to.deep.equal({ type: MessageType.PONG, seq: 42 });
    expect(honest.closed).to.equal(false);
  });

  it('closes only that connection, as INTERNAL, when handling a peer\'s message throws a bug of ours', async () => {
    const a = await side();
    const buggy = await raw(a.port);
    await buggy.handshake();
    const honest = await raw(a.port);
    await honest.handshake();
    const conn = a.inbound[0]!;
    if (conn.state !== 'open') await once(conn, 'open');
    conn.on('message', () => {
      throw new TypeError('a bug in a message handler');
    });
    const closed = waitClose(conn);
    buggy.send({ type: MessageType.ACK, ref: Buffer.alloc(16, 1), status: 0, reply: null });
    const info = await closed;
    expect(info.error?.code).to.equal('INTERNAL');
    expect(info.code).to.equal(GoodbyeCode.PROTOCOL_ERROR);
    expect(a.metrics.snapshot({ connectedPeers: 0, seenMessages: 0 }).invalidByReason.INTERNAL).to.equal(1);
    honest.send({ type: MessageType.PING, seq: 9 });
    expect(await honest.waitFor((m) => m.type === MessageType.PONG)).to.deep.equal({ type: MessageType.PONG, seq: 9 });
  });

  it('reports whether the peer said GOODBYE or the socket just ended', async () => {
    const a = await side();
    const polite = await raw(a.port);
    await polite.handshake();
    const rude = await raw(a.port);
    await rude.handshake();
    await waitFor(() => a.inbound.length === 2 && a.inbound.every((c) => c.state === 'open'), 2000, 'both open');
    const [first, second] = a.inbound as [Connection, Connection];
    const byGoodbye = waitClose(first);
    const bySocket = waitClose(second);
    polite.send({ type: MessageType.GOODBYE, code: GoodbyeCode.NORMAL, reason: 'bye' });
    expect(await byGoodbye).to.include({ byPeer: true, goodbye: true, code: GoodbyeCode.NORMAL });
    rude.destroy();
    const info = await bySocket;
    expect(info.byPeer).to.equal(true);
    expect(info.goodbye).to.not.equal(true);
  });

  it('drops with reason queue_full when a peer stops reading, with the queue held under its cap', async () => {
    const cap = 256 * 1024;
    const a = await side({ maxQueueBytes: cap });
    const p = await raw(a.port);
    await p.handshake();
    const conn = a.inbound[0]!;
    if (conn.state !== 'open') await once(conn, 'open');
    p.socket.pause(); // stop reading: kernel buffers fill, then ours
    const payload = Buffer.alloc(32 * 1024, 1);
    let dropped = 0;
    let maxQueued = 0;
    for (let i = 0; i < 2000 && dropped < 50; i++) {
      if (!conn.send({ type: MessageType.DIRECT, ref: Buffer.alloc(16), topic: 't', payload, wantReply: false })) dropped++;
      maxQueued = Math.max(maxQueued, conn.queuedBytes);
      if (i % 20 === 0) await new Promise((r) => setImmediate(r)); // let the socket flush what it can
    }
    expect(dropped).to.be.greaterThan(0);
    expect(a.metrics.dropped('queue_full')).to.equal(dropped);
    expect(maxQueued).to.be.at.most(cap);
    expect(conn.state).to.equal('open');
  });
});
