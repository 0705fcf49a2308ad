import { expect } from 'chai';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { P2PError } from '../../lib/errors.js';
import { useNodes } from '../helpers/nodes.js';

/**
 * An on-path attacker: a TCP relay that passes the two handshake frames the dialer sends
 * (-> e and -> s, se) untouched and then flips one bit in the first ciphertext byte of every
 * record it relays from the dialer. Before protocol version 2 such a relay rewrote a
 * sendToPeer's data and the receiver delivered it as from the honest sender.
 */
class TamperingRelay {
  flipped = 0;
  targetPort = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<TamperingRelay> {
    let relay: TamperingRelay | undefined;
    const server = createServer((client) => relay!.relay(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no address');
    relay = new TamperingRelay(server, a.port);
    return relay;
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.sockets.delete(s));
    }
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    upstream.on('data', (b: Buffer) => client.write(b));
    // The dialer's stream: two handshake frames (u32 length), then records (u16 length).
    let handshakeFrames = 0;
    let header: number[] = [];
    let left = 0;
    let flipNext = false;
    client.on('data', (chunk: Buffer) => {
      const out = Buffer.from(chunk);
      for (let i = 0; i < out.length; i++) {
        if (left > 0) {
          if (flipNext) {
            out[i]! ^= 0x01;
            flipNext = false;
            this.flipped++;
          }
          left--;
          continue;
        }
        header.push(out[i]!);
        const width = handshakeFrames < 2 ? 4 : 2;
        if (header.length < width) continue;
        left = width === 4 ? Buffer.from(header).readUInt32BE(0) : Buffer.from(header).readUInt16BE(0);
        header = [];
        if (handshakeFrames < 2) handshakeFrames++;
        else flipNext = true;
      }
      upstream.write(out);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('an on-path relay that alters a record (PROTOCOL.md §4.2)', () => {
  const nodes = useNodes({ heartbeatMs: 100, partitionTimeoutMs: 2000 });
  let relay: TamperingRelay | undefined;
  afterEach(async () => {
    await relay?.close();
    relay = undefined;
  });

  it('gets nothing delivered: the receiver closes with BAD_RECORD and the sender\'s sendToPeer is never acknowledged', async () => {
    relay = await TamperingRelay.start();
    // The receiver advertises the relay, so every dial to it, redials included, goes through it.
    const receiver = await nodes.start({ advertisePort: relay.port });
    relay.targetPort = receiver.address.port;
    const delivered: unknown[] = [];
    receiver.subscribe('consensus', (data) => {
      delivered.push(data);
    });
    const sender = await nodes.start({ retry: { initialDelayMs: 20, maxDelayMs: 50, maxRetries: 2 }, ackTimeoutMs: 500 });
    await sender.addPeer(`127.0.0.1:${relay.port}`);
    const outcome = await sender.sendToPeer(receiver.id, 'consensus', { vote: 'commit', height: 7 }).then(() => 'acknowledged', (e: P2PError) => e.code);
    expect(outcome).to.equal('PEER_UNREACHABLE');
    expect(relay.flipped).to.be.at.least(1);
    expect(delivered).to.deep.equal([]);
    expect(receiver.metrics().invalidByReason.BAD_RECORD).to.be.at.least(1);
  });
});
