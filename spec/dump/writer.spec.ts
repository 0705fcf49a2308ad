import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DumpWriter } from '../../lib/dump/writer.js';
import { waitFor } from '../../lib/testnet.js';
import type { Connection } from '../../lib/transport/connection.js';

/** Just what the writer reads from a connection. */
function fakeConnection(peerIdHex = ''): Connection {
  return {
    cid: 7,
    peerIdHex,
    socket: { localAddress: '127.0.0.1', localPort: 4000, remoteAddress: '127.0.0.1', remotePort: 5000 },
  } as unknown as Connection;
}

/** A "disk" that accepts writes but completes none until release() is called. */
function stalledDisk(): { stream: Writable; lines: () => string[]; release: () => void } {
  const chunks: string[] = [];
  let held: Array<() => void> = [];
  let stalled = true;
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      if (stalled) held.push(() => cb());
      else cb();
    },
  });
  return {
    stream,
    lines: () => chunks.join('').split('\n').filter((l) => l.length > 0),
    release: () => {
      stalled = false;
      const h = held;
      held = [];
      for (const cb of h) cb();
    },
  };
}

describe('DumpWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-dump-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a header, then one line per frame and per trace event, with µs timestamps', async () => {
    let now = 1_700_000_000_000_000;
    const path = join(dir, 'd.ndjson');
    const w = new DumpWriter(path, { node: 'ab'.repeat(32), nowUs: () => now++ });
    w.frame(fakeConnection(), 'out', Buffer.from([0x92, 0x03, 0x01]));
    w.frame(fakeConnection('cd'.repeat(32)), 'in', Buffer.from([0x92, 0x04, 0x01]));
    w.trace({ event: 'duplicate', msg: 'ef'.repeat(32), peer: 'cd'.repeat(32) });
    await w.close();
    const lines = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.deep.equal([
      { t: 1_700_000_000_000_000, kind: 'dump', v: 1, node: 'ab'.repeat(32) },
      { t: 1_700_000_000_000_001, kind: 'frame', conn: 7, dir: 'out', local: '127.0.0.1:4000', remote: '127.0.0.1:5000', peer: null, len: 3, body: Buffer.from([0x92, 0x03, 0x01]).toString('base64') },
      { t: 1_700_000_000_000_002, kind: 'frame', conn: 7, dir: 'in', local: '127.0.0.1:4000', remote: '127.0.0.1:5000', peer: 'cd'.repeat(32), len: 3, body: Buffer.from([0x92, 0x04, 0x01]).toString('base64') },
      { t: 1_700_000_000_000_003, kind: 'trace', event: 'duplicate', msg: 'ef'.repeat(32), peer: 'cd'.repeat(32) },
    ]);
  });

  it('drops and counts lines instead of buffering past its cap when the disk stalls, then says so in the file', async () => {
    const disk = stalledDisk();
    const cap = 4096;
    const w = new DumpWriter('unused', { node: 'ab'.repeat(32), maxBufferedBytes: cap, stream: disk.stream });
    const body = Buffer.alloc(200, 1);
    for (let i = 0; i < 200; i++) {
      w.frame(fakeConnection(), 'out', body);
      expect(disk.stream.writableLength).to.be.at.most(cap);
    }
    for (let i = 0; i < 50; i++) w.trace({ event: 'connect', peer: 'cd'.repeat(32) });
    expect(w.dropped.frames).to.be.greaterThan(0);
    expect(w.dropped.traces).to.be.greaterThan(0);
    const dropped = { ...w.dropped };
    disk.release();
    await w.close();
    const lines = disk.lines().map((l) => JSON.parse(l) as { kind: string; frames?: number; traces?: number; bytes?: number });
    const loss = lines.filter((l) => l.kind === 'loss');
    expect(loss.reduce((n, l) => n + l.frames!, 0)).to.equal(dropped.frames);
    expect(loss.reduce((n, l) => n + l.traces!, 0)).to.equal(dropped.traces);
    expect(lines.filter((l) => l.kind === 'frame').length).to.equal(200 - dropped.frames);
  });

  it('stops writing after a write error without throwing into the caller', async () => {
    const told: Error[] = [];
    const w = new DumpWriter(join(dir, 'no-such-dir', 'd.ndjson'), { node: 'ab'.repeat(32), onError: (e) => told.push(e) });
    await waitFor(() => w.error !== undefined, 5000, 'the open error');
    expect(w.error).to.be.instanceOf(Error);
    expect(told, 'the owner is told once, so it can log it').to.deep.equal([w.error]);
    expect(() => w.frame(fakeConnection(), 'out', Buffer.from([1]))).to.not.throw();
    await w.close();
  });
});
