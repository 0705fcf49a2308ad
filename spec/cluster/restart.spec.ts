import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { P2PNetwork } from '../../lib/network.js';
import type { P2PNetworkOptions } from '../../lib/options.js';
import { LOOPBACK_ALLOWLIST, waitFor } from '../../lib/testnet.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Loopback nodes (allowlisted); a peer that dialed in is redialed and counted in health from
 * its first connection (provenAfterMs 0): this spec is about crashes, not Sybil identities.
 */
const FAST: P2PNetworkOptions = {
  admissionAllowlist: [...LOOPBACK_ALLOWLIST],
  provenAfterMs: 0,
  heartbeatMs: 100,
  partitionTimeoutMs: 1000,
  handshakeTimeoutMs: 1000,
  dialTimeoutMs: 1000,
  retry: { initialDelayMs: 50, maxDelayMs: 250, maxRetries: 3 },
  reconnectForMs: 60_000,
};

interface Child {
  proc: ChildProcess;
  id: string;
  port: number;
  /** Payloads of the messages it delivered. */
  got: unknown[];
}

/**
 * A node run as a separate process by the CLI, so that it can really crash (SIGKILL: no
 * GOODBYE, the kernel closes its sockets) and restart with the same key file.
 */
describe('a node that crashes and restarts', function () {
  this.timeout(60_000);
  const nodes: P2PNetwork[] = [];
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  let dir = '';

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aethel-restart-'));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** An in-process node whose failed reconnect attempts are counted from its debug log. */
  async function node(opts: P2PNetworkOptions = {}): Promise<{ n: P2PNetwork; failedRedials: () => number }> {
    let failed = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line.includes('reconnect attempt failed')) failed++;
        done();
      },
    });
    const n = new P2PNetwork({ ...FAST, ...opts, logger: pino({ level: 'debug' }, sink) });
    nodes.push(n);
    await n.start();
    return { n, failedRedials: () => failed };
  }

  async function spawnNode(args: string[]): Promise<Child> {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'node', '--topic', 'consensus', '--log-level', 'silent', ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(proc);
    const got: unknown[] = [];
    const lines = createInterface({ input: proc.stdout! });
    return new Promise((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`node process exited early with ${code}`)));
      lines.on('line', (line) => {
        const ev = JSON.parse(line) as { event: string; id?: string; port?: number; data?: unknown };
        if (ev.event === 'listening') resolve({ proc, id: ev.id!, port: ev.port!, got });
        else if (ev.event === 'message') got.push(ev.data);
      });
    });
  }

  async function kill(c: Child): Promise<void> {
    const exited = new Promise((r) => c.proc.once('exit', r));
    c.proc.kill('SIGKILL');
    await exited;
  }

  const stateOf = (n: P2PNetwork, id: string) => n.peers().find((p) => p.id === id);
  const addr = (n: P2PNetwork) => `127.0.0.1:${n.address.port}`;

  it('is detected by its peers, redialed with backoff, and rejoins on the same port with the same key', async () => {
    const a = await node();
    const b = await node({ bootstrap: [addr(a.n)] });
    const key = join(dir, 'c.key');
    const c = await spawnNode(['--key', key, '--bootstrap', `${addr(a.n)},${addr(b.n)}`]);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state === 'connected'), 15_000, 'c connected to a and b');
    const events: string[] = [];
    for (const [name, n] of [['a', a.n], ['b', b.n]] as const) {
      n.on('peer:disconnect', (p) => p.id === c.id && events.push(`${name}:disconnect`));
      n.on('peer:partitioned', (p) => p.id === c.id && events.push(`${name}:partitioned`));
      n.on('peer:recovered', (p) => p.id === c.id && events.push(`${name}:recovered`));
    }

    await kill(c);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state === 'partitioned'), 10_000, 'c partitioned at a and b');
    await waitFor(() => a.failedRedials() >= 2 && b.failedRedials() >= 2, 10_000, 'redials of c failing');
    expect(a.n.health().partitionedPeers).to.be.at.least(1);
    expect(a.n.health().knownPeers).to.equal(2);
    const whileDown = await b.n.broadcast('consensus', 'sent while c was down');

    // Same key, same port, no bootstrap: only the peers' redials can find it.
    const c2 = await spawnNode(['--key', key, '--port', String(c.port)]);
    expect(c2.id).to.equal(c.id);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state === 'connected'), 15_000, 'c reconnected to a and b');
    expect(events.filter((e) => e.startsWith('a:'))).to.deep.equal(['a:disconnect', 'a:partitioned', 'a:recovered']);
    expect(events.filter((e) => e.startsWith('b:'))).to.deep.equal(['b:disconnect', 'b:partitioned', 'b:recovered']);
    // The catch-up after reconnecting brings it what was broadcast while it was down.
    await waitFor(() => c2.got.includes('sent while c was down'), 10_000, `c delivers ${whileDown.slice(0, 8)}`);
  });

  it('rejoins from a new port by re-bootstrapping, and its peers accept it by id', async () => {
    const a = await node();
    const b = await node({ bootstrap: [addr(a.n)] });
    const key = join(dir, 'c.key');
    const bootstrap = ['--bootstrap', `${addr(a.n)},${addr(b.n)}`];
    const c = await spawnNode(['--key', key, ...bootstrap]);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state === 'connected'), 15_000, 'c connected to a and b');

    await kill(c);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state !== 'connected'), 10_000, 'c lost at a and b');
    // Hold the old port while c restarts, so the OS cannot hand it the same ephemeral port again.
    const holder = createServer((socket) => socket.destroy()); // a redial of the old address fails at once
    servers.push(holder);
    await new Promise<void>((resolve, reject) => holder.once('error', reject).listen(c.port, '127.0.0.1', resolve));
    const c2 = await spawnNode(['--key', key, ...bootstrap]);
    expect(c2.port).to.not.equal(c.port);
    await waitFor(() => [a.n, b.n].every((n) => stateOf(n, c.id)?.state === 'connected'), 15_000, 'c back at a and b');
    for (const n of [a.n, b.n]) expect(stateOf(n, c.id)?.port, 'its new address replaces the old').to.equal(c2.port);
    await waitFor(() => a.n.health().connectedPeers === 2 && a.n.health().partitionedPeers === 0, 5000, 'a healthy again');
    expect(a.n.health().knownPeers).to.equal(2);
  });
});
