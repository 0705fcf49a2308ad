import { expect } from 'chai';
import { once } from 'node:events';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { generateIdentity } from '../../lib/identity.js';
import { generateX25519 } from '../../lib/noise/handshake.js';
import { Metrics } from '../../lib/metrics.js';
import { Connection } from '../../lib/transport/connection.js';
import type { ConnectionConfig } from '../../lib/transport/connection.js';
import { TcpTransport } from '../../lib/transport/tcp.js';
import { encodeMessage } from '../../lib/wire/codec.js';
import { frameHeader } from '../../lib/wire/frame.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { InboundMessage } from '../../lib/wire/messages.js';
import { waitFor } from '../../lib/testnet.js';

function config(encrypted: boolean): ConnectionConfig {
  return {
    identity: generateIdentity(),
    networkId: 'aethel',
    encrypted,
    staticKey: generateX25519(),
    advertiseHost: '127.0.0.1',
    advertisePort: 0,
    maxFrameBytes: 1 << 20,
    handshakeTimeoutMs: 5000,
    maxQueueBytes: 1 << 20,
    clock: systemClock,
    metrics: new Metrics(),
  };
}

describe('Frame writing on a connection', () => {
  const transports: TcpTransport[] = [];

  afterEach(async () => {
    sinon.restore();
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });

  async function pair(encrypted: boolean): Promise<{ conn: Connection; inbound: Connection[] }> {
    const inbound: Connection[] = [];
    const server = new TcpTransport(config(encrypted), (c) => inbound.push(c));
    const client = new TcpTransport(config(encrypted), () => {});
    transports.push(server, client);
    const { port } = await server.listen('127.0.0.1', 0);
    const conn = await client.dial('127.0.0.1', port, 5000);
    if (conn.state !== 'open') await once(conn, 'open');
    return { conn, inbound };
  }

  const tick = () => new Promise((r) => setImmediate(r));

  /** The first byte of `ref` of each of the next `count` messages `conn` receives, in order. */
  async function refsReceived(conn: Connection, count: number): Promise<number[]> {
    const got: InboundMessage[] = [];
    conn.on('message', (m) => got.push(m));
    await waitFor(() => got.length === count, 3000, `${count} messages`);
    return got.map((m) => (m as { ref: Buffer }).ref[0]!);
  }
  const direct = (n: number, size = 5000) => encodeMessage({ type: MessageType.DIRECT, ref: Buffer.alloc(16, n), topic: 't', payload: Buffer.alloc(size, n), wantReply: false });

  it('on a plaintext session, writes a small tick\'s frames as one buffer, at the end of the tick', async () => {
    const { conn, inbound } = await pair(false);
    const write = sinon.spy(conn.socket, 'write');
    const bodies = [direct(1), direct(2)];
    for (const b of bodies) expect(conn.sendEncoded(MessageType.DIRECT, b)).to.equal(true);
    expect(write.callCount).to.equal(0); // gathered until the end of the tick
    await tick();
    const chunks = write.getCalls().map((c) => c.args[0] as Buffer);
    expect(chunks).to.have.length(1);
    expect(chunks[0]!.equals(Buffer.concat([frameHeader(bodies[0]!.length), bodies[0]!, frameHeader(bodies[1]!.length), bodies[1]!]))).to.equal(true);
    expect(await refsReceived(inbound[0]!, 2)).to.deep.equal([1, 2]);
  });

  it('on a plaintext session, writes a tick of more than 16 KiB as each 4-byte header and then the very body buffer it was given', async () => {
    const { conn, inbound } = await pair(false);
    const write = sinon.spy(conn.socket, 'write');
    const body = direct(1, 20_000);
    expect(conn.sendEncoded(MessageType.DIRECT, body)).to.equal(true);
    await tick();
    const chunks = write.getCalls().map((c) => c.args[0] as Buffer);
    expect(chunks).to.have.length(2);
    expect(chunks[0]!.equals(frameHeader(body.length))).to.equal(true);
    expect(chunks[1]).to.equal(body); // the same object: no copy, no concatenation
    const [received] = (await once(inbound[0]!, 'message')) as [InboundMessage];
    expect(received.type).to.equal(MessageType.DIRECT);
  });

  it('on an encrypted session, seals every frame of a small tick into a single record written as one buffer', async () => {
    const { conn, inbound } = await pair(true);
    const write = sinon.spy(conn.socket, 'write');
    const bodies = [direct(1), direct(2), direct(3)];
    for (const b of bodies) expect(conn.sendEncoded(MessageType.DIRECT, b)).to.equal(true);
    await tick();
    const chunks = write.getCalls().map((c) => c.args[0] as Buffer);
    const plaintext = bodies.reduce((n, b) => n + 4 + b.length, 0);
    expect(chunks).to.have.length(1);
    expect(chunks[0]!.readUInt16BE(0)).to.equal(plaintext + 16); // one record: all three frames and one tag
    expect(chunks[0]!.length).to.equal(2 + plaintext + 16);
    expect(await refsReceived(inbound[0]!, 3)).to.deep.equal([1, 2, 3]);
  });

  it('on an encrypted session, seals a tick of more than 16 KiB into a single record written in pieces', async () => {
    const { conn, inbound } = await pair(true);
    const write = sinon.spy(conn.socket, 'write');
    const bodies = [direct(1, 9000), direct(2, 9000)];
    for (const b of bodies) expect(conn.sendEncoded(MessageType.DIRECT, b)).to.equal(true);
    await tick();
    const chunks = write.getCalls().map((c) => c.args[0] as Buffer);
    const plaintext = bodies.reduce((n, b) => n + 4 + b.length, 0);
    expect(chunks.length).to.be.greaterThan(1);
    expect(chunks[0]!.length).to.equal(2);
    expect(chunks[0]!.readUInt16BE(0)).to.equal(plaintext + 16);
    expect(chunks.reduce((n, c) => n + c.length, 0)).to.equal(2 + plaintext + 16);
    expect(await refsReceived(inbound[0]!, 2)).to.deep.equal([1, 2]);
  });

  it('runs work deferred to the end of the turn before writing, so frames it queues share the turn\'s record', async () => {
    const { conn, inbound } = await pair(true);
    const write = sinon.spy(conn.socket, 'write');
    const order: string[] = [];
    expect(conn.sendEncoded(MessageType.DIRECT, direct(1, 100))).to.equal(true);
    Connection.atEndOfTurn(() => {
      order.push(`deferred ran after ${write.callCount} writes`);
      conn.sendEncoded(MessageType.DIRECT, direct(2, 100));
    });
    await tick();
    expect(order).to.deep.equal(['deferred ran after 0 writes']);
    expect(write.callCount).to.equal(1); // one record holding both frames
    expect(await refsReceived(inbound[0]!, 2)).to.deep.equal([1, 2]);
  });

  it('still writes the turn\'s frames when deferred work throws', async () => {
    const { conn, inbound } = await pair(false);
    expect(conn.sendEncoded(MessageType.DIRECT, direct(3, 100))).to.equal(true);
    Connection.atEndOfTurn(() => {
      throw new Error('a bug in deferred work');
    });
    const [received] = (await once(inbound[0]!, 'message')) as [InboundMessage];
    expect((received as { ref: Buffer }).ref[0]).to.equal(3);
  });
});
