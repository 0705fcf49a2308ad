import { expect } from 'chai';
import { once } from 'node:events';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { generateIdentity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import type { Connection, ConnectionConfig } from '../../lib/transport/connection.js';
import { TcpTransport } from '../../lib/transport/tcp.js';
import { encodeMessage } from '../../lib/wire/codec.js';
import { frameHeader } from '../../lib/wire/frame.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

function config(): ConnectionConfig {
  return {
    identity: generateIdentity(),
    networkId: 'aethel',
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

  it('writes the 4-byte header and then the very body buffer it was given, without concatenating them', async () => {
    const inbound: Connection[] = [];
    const server = new TcpTransport(config(), (c) => inbound.push(c));
    const client = new TcpTransport(config(), () => {});
    transports.push(server, client);
    const { port } = await server.listen('127.0.0.1', 0);
    const conn = await client.dial('127.0.0.1', port, 5000);
    if (conn.state !== 'open') await once(conn, 'open');

    const write = sinon.spy(conn.socket, 'write');
    const body = encodeMessage({ type: MessageType.DIRECT, ref: Buffer.alloc(16, 1), topic: 't', payload: Buffer.alloc(5000, 2) });
    expect(conn.sendEncoded(MessageType.DIRECT, body)).to.equal(true);

    const chunks = write.getCalls().map((c) => c.args[0] as Buffer);
    expect(chunks).to.have.length(2);
    expect(chunks[0]!.equals(frameHeader(body.length))).to.equal(true);
    expect(chunks[1]).to.equal(body); // the same object: no copy, no concatenation

    const peer = inbound[0]!;
    const [received] = (await once(peer, 'message')) as [Message];
    expect(received.type).to.equal(MessageType.DIRECT);
  });
});
