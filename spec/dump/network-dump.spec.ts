import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { P2PNetwork } from '../../lib/network.js';
import { waitFor } from '../../lib/testnet.js';
import { readDump } from '../../lib/dump/reader.js';
import type { FrameEntry, TraceEntry } from '../../lib/dump/reader.js';
import { describeBody } from '../../lib/dump/describe.js';

describe('wireDump option', () => {
  let dir: string;
  const nodes: P2PNetwork[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-wiredump-'));
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('records every frame in and out and the gossip decisions of each node', async () => {
    const a = new P2PNetwork({ listenPort: 0, wireDump: join(dir, 'a.ndjson') });
    nodes.push(a);
    await a.start();
    const b = new P2PNetwork({ listenPort: 0, bootstrap: [`127.0.0.1:${a.address.port}`], wireDump: join(dir, 'b.ndjson') });
    nodes.push(b);
    await b.start();
    let got = 0;
    b.subscribe('chat', () => void got++);
    await waitFor(() => a.health().connectedPeers === 1, 10_000, 'a connected');
    const id = await a.broadcast('chat', 'hello');
    await waitFor(() => got === 1, 10_000, 'delivery at b');
    const sentByA = a.metrics().messagesSent;
    const receivedByA = a.metrics().messagesReceived;
    await a.stop();
    await b.stop();

    const da = await readDump(join(dir, 'a.ndjson'));
    const db = await readDump(join(dir, 'b.ndjson'));
    expect(new Set(da.map((e) => e.node))).to.deep.equal(new Set([a.id]));
    const framesA = da.filter((e): e is FrameEntry => e.kind === 'frame');
    // GOODBYE and the frames after stop() are written too; metrics were read before stop().
    expect(framesA.filter((f) => f.dir === 'out').length).to.be.at.least(sentByA);
    expect(framesA.filter((f) => f.dir === 'in').length).to.be.at.least(receivedByA);
    expect(framesA.filter((f) => f.peer !== null).every((f) => f.peer === b.id)).to.equal(true);
    const gossipOut = framesA.filter((f) => f.dir === 'out' && describeBody(f.body).msgIds.includes(id));
    expect(gossipOut).to.have.length(1);
    const events = (d: typeof da) => d.filter((e): e is TraceEntry => e.kind === 'trace').map(({ rec: { t: _t, kind: _k, ...rest } }) => rest);
    const traceA = events(da);
    const traceB = events(db);
    expect(traceA).to.deep.include({ event: 'forwarded', msg: id, to: [b.id], ttl: 10, via: 'push' });
    expect(traceB).to.deep.include({ event: 'delivered', msg: id, peer: a.id, hops: 1, via: 'push' });
    expect(traceB.filter((r) => r.event === 'connect').map((r) => r.peer)).to.deep.equal([a.id]);
    for (let i = 1; i < da.length; i++) expect(da[i]!.t).to.be.at.least(da[i - 1]!.t);
  });
});
