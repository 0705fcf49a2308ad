import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKeyLog } from '../../lib/noise/key-log.js';
import { CliProcess, killAllCli } from './cli-process.js';

/** Two `aethel-p2p node` processes on loopback exchanging lines end to end. */
describe('aethel-p2p node', function () {
  this.timeout(60_000);
  const WAIT_MS = 20_000;

  afterEach(() => killAllCli());

  const listening = (p: CliProcess) => p.waitForEvent((e) => e.event === 'listening', WAIT_MS, 'the listening line');

  async function pair(topicArgs: string[] = []): Promise<{ a: CliProcess; b: CliProcess; aId: string; bId: string }> {
    const a = new CliProcess(['node', '--host', '127.0.0.1', '--port', '0', ...topicArgs]);
    const aUp = await listening(a);
    const b = new CliProcess(['node', '--port', '0', '--bootstrap', `127.0.0.1:${String(aUp.port)}`, ...topicArgs]);
    const bUp = await listening(b);
    return { a, b, aId: aUp.id as string, bId: bUp.id as string };
  }

  it('prints a listening line first, with its id and the port it bound', async () => {
    const a = new CliProcess(['node', '--port', '0']);
    const up = await listening(a);
    expect(a.events[0]).to.equal(up);
    expect(up.id).to.match(/^[0-9a-f]{64}$/);
    expect(up.host).to.equal('127.0.0.1');
    expect(up.port).to.be.a('number').and.to.be.greaterThan(0);
  });

  it('delivers a line written to one node\'s stdin as a message line on the other\'s stdout, both ways', async () => {
    const { a, b, aId, bId } = await pair();
    expect(aId).to.not.equal(bId);

    // start() resolves once the bootstrap handshake is done, so b already has a as a peer.
    b.child.stdin.write('hello from b\n');
    const atA = await a.waitForEvent((e) => e.event === 'message', WAIT_MS, 'b\'s line at a');
    expect(atA).to.include({ event: 'message', topic: 'chat', from: bId, data: 'hello from b', hops: 1 });
    expect(atA.id).to.match(/^[0-9a-f]{64}$/);

    a.child.stdin.write('{"not":"parsed"} and unicode: ünïcødé\n');
    const atB = await b.waitForEvent((e) => e.event === 'message', WAIT_MS, 'a\'s line at b');
    expect(atB).to.include({ event: 'message', topic: 'chat', from: aId, data: '{"not":"parsed"} and unicode: ünïcødé' });

    // A node does not print its own broadcasts, and stdout holds JSON lines only.
    expect(a.events.filter((e) => e.event === 'message')).to.have.length(1);
    expect(b.events.filter((e) => e.event === 'message')).to.have.length(1);
    expect(a.stray).to.deep.equal([]);
    expect(b.stray).to.deep.equal([]);
  });

  it('delivers lines both ways between two nodes that verify signatures on a worker thread (--verify-workers 1)', async () => {
    const { a, b, aId, bId } = await pair(['--verify-workers', '1']);
    b.child.stdin.write('checked off the event loop\n');
    expect(await a.waitForEvent((e) => e.event === 'message', WAIT_MS, 'b\'s line at a')).to.include({ from: bId, data: 'checked off the event loop' });
    a.child.stdin.write('and back\n');
    expect(await b.waitForEvent((e) => e.event === 'message', WAIT_MS, 'a\'s line at b')).to.include({ from: aId, data: 'and back' });
    expect(a.stray).to.deep.equal([]);
    expect(b.stray).to.deep.equal([]);
  });

  it('writes one key-log line per session, naming both nodes, with --keylog; two --plaintext nodes talk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aethel-keylog-'));
    try {
      const keys = join(dir, 'keys.log');
      const { a, b, aId, bId } = await pair(['--keylog', keys]);
      b.child.stdin.write('logged\n');
      await a.waitForEvent((e) => e.event === 'message', WAIT_MS, 'b\'s line at a');
      const sessions = [...parseKeyLog(await readFile(keys, 'utf8')).values()];
      expect(sessions).to.have.length(1); // both ends log the same session: one key, two lines
      expect(sessions[0]).to.include({ initiatorId: bId, responderId: aId });

      // Two --plaintext nodes talk.
      const p1 = new CliProcess(['node', '--port', '0', '--plaintext']);
      const up = await listening(p1);
      const p2 = new CliProcess(['node', '--port', '0', '--plaintext', '--bootstrap', `127.0.0.1:${String(up.port)}`]);
      await listening(p2);
      p2.child.stdin.write('lab line\n');
      expect(await p1.waitForEvent((e) => e.event === 'message', WAIT_MS, 'the plaintext line')).to.include({ data: 'lab line' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('uses the topic given by --topic', async () => {
    const { a, b, bId } = await pair(['--topic', 'consensus']);
    b.child.stdin.write('vote 1\n');
    const got = await a.waitForEvent((e) => e.event === 'message', WAIT_MS, 'the line on topic consensus');
    expect(got).to.include({ topic: 'consensus', from: bId, data: 'vote 1' });
  });

  it('keeps its id across restarts when given a --key file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aethel-cli-'));
    try {
      const args = ['node', '--port', '0', '--key', join(dir, 'node.key')];
      const first = new CliProcess(args);
      const id1 = (await listening(first)).id;
      first.signal('SIGTERM');
      expect((await first.waitForExit(WAIT_MS)).code).to.equal(0);
      const second = new CliProcess(args);
      const id2 = (await listening(second)).id;
      expect(id2).to.match(/^[0-9a-f]{64}$/).and.to.equal(id1);
    } finally {
      killAllCli();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints listening first even for a late starter that fetches earlier messages while it starts, and stamps each message line with its time and push or repair', async () => {
    const a = new CliProcess(['node', '--port', '0']);
    const aUp = await listening(a);
    const probe = new CliProcess(['node', '--port', '0', '--bootstrap', `127.0.0.1:${String(aUp.port)}`]);
    await listening(probe);
    for (const line of ['early 1', 'early 2', 'early 3']) a.child.stdin.write(line + '\n');
    await probe.waitForEvent(() => probe.events.filter((e) => e.event === 'message').length >= 3, WAIT_MS, 'three pushed lines');
    const late = new CliProcess(['node', '--port', '0', '--bootstrap', `127.0.0.1:${String(aUp.port)}`]);
    await late.waitForEvent(() => late.events.filter((e) => e.event === 'message').length >= 3, WAIT_MS, 'the three earlier lines, by repair');
    expect(late.events[0]!.event).to.equal('listening');
    const before = Date.now();
    for (const e of [...late.events, ...probe.events].filter((x) => x.event === 'message')) {
      expect(e.t).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(Date.parse(String(e.t))).to.be.within(before - 30_000, before + 1000);
    }
    expect(probe.events.filter((e) => e.event === 'message').map((e) => e.via)).to.deep.equal(['push', 'push', 'push']);
    expect(late.events.filter((e) => e.event === 'message').map((e) => e.via)).to.deep.equal(['repair', 'repair', 'repair']);
  });

  it('stops cleanly and exits 0 on SIGTERM and on SIGINT', async () => {
    const { a, b } = await pair();
    a.signal('SIGTERM');
    b.signal('SIGINT');
    const [ea, eb] = await Promise.all([a.waitForExit(WAIT_MS), b.waitForExit(WAIT_MS)]);
    expect(ea, a.stderr).to.deep.equal({ code: 0, signal: null });
    expect(eb, b.stderr).to.deep.equal({ code: 0, signal: null });
  });
});
