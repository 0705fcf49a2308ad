import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { P2PNetwork } from '../../lib/network.js';
import { addrOf, useNodes } from '../helpers/nodes.js';
import { CliProcess, killAllCli } from './cli-process.js';

/**
 * A node whose process is frozen (SIGSTOP) for longer than its partition timeout, then
 * resumed: it must notice that the stall was its own, read what its sockets hold, and keep
 * its links. The peers run in this process with the default 30 s partition timeout, so they
 * keep the links open during the freeze; only the frozen node could wrongly close them.
 */
describe('a CLI node frozen longer than its partition timeout', function () {
  this.timeout(60_000);
  const WAIT_MS = 20_000;
  const HEARTBEAT_MS = 100;
  const PARTITION_TIMEOUT_MS = 600;
  const FREEZE_MS = 2_000;
  const nodes = useNodes();
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-stall-'));
  });
  afterEach(async () => {
    killAllCli();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers by push every message sent during the freeze and closes no connection because of it', async () => {
    const a = await nodes.start();
    const b = await nodes.start();
    const closed: string[] = [];
    for (const n of [a, b]) n.on('peer:disconnect', (p, reason) => closed.push(`${p.id.slice(0, 8)}: ${reason}`));
    const dumpFile = join(dir, 'c.ndjson');
    const c = new CliProcess([
      'node', '--bootstrap', `${addrOf(a)},${addrOf(b)}`, '--dump', dumpFile,
      '--heartbeat-ms', String(HEARTBEAT_MS), '--partition-timeout-ms', String(PARTITION_TIMEOUT_MS),
    ]);
    const up = await c.waitForEvent((e) => e.event === 'listening', WAIT_MS, 'the listening line');
    await untilConnected([a, b], up.id as string);

    c.signal('SIGSTOP');
    const frozenAt = Date.now();
    const sent = ['a1', 'a2', 'a3'].map((s) => a.broadcast('chat', s));
    sent.push(...['b1', 'b2', 'b3'].map((s) => b.broadcast('chat', s)));
    await Promise.all(sent);
    // The freeze itself is the scenario: hold the process stopped past its partition timeout.
    await new Promise((r) => setTimeout(r, FREEZE_MS - (Date.now() - frozenAt)));
    c.signal('SIGCONT');

    const all = await c.waitForEvent(() => c.events.filter((e) => e.event === 'message').length >= 6, WAIT_MS, 'six message lines');
    expect(all).to.exist;
    const got = c.events.filter((e) => e.event === 'message');
    expect(got.map((e) => e.data).sort()).to.deep.equal(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
    expect(got.every((e) => e.via === 'push')).to.equal(true, JSON.stringify(got));

    // Several heartbeats later the links still stand, both ways: c's line reaches a.
    const atA = new Promise<string>((resolve) => a.subscribe('chat', (data) => {
      if (data === 'awake') resolve(data);
    }));
    c.child.stdin.write('awake\n');
    expect(await atA).to.equal('awake');
    expect(closed).to.deep.equal([]);
    c.signal('SIGTERM');
    await c.waitForExit(WAIT_MS);

    const traces = (await readFile(dumpFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.kind === 'trace');
    const stalled = traces.filter((r) => r.event === 'stalled');
    expect(stalled).to.have.length.greaterThan(0);
    expect(Number(/(\d+) ms/.exec(String(stalled[0]!.reason))![1])).to.be.greaterThan(PARTITION_TIMEOUT_MS);
    const timeouts = traces.filter((r) => r.event === 'partitioned' || (r.event === 'disconnect' && r.reason !== 'shutting down'));
    expect(timeouts).to.deep.equal([]);
  });
});

/** Wait (bounded) until every node has `id` among its connected peers. */
async function untilConnected(ns: P2PNetwork[], id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ns.every((n) => n.peers().some((p) => p.id === id && p.state === 'connected'))) {
    if (Date.now() > deadline) throw new Error('the CLI node did not connect to every peer within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}
