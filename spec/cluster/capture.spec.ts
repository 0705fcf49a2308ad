import { expect } from 'chai';
import sinon from 'sinon';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDump } from '../../lib/cli/dump.js';
import type { P2PNetworkOptions } from '../../lib/options.js';
import { waitFor } from '../../lib/testnet.js';
import { addrOf, useNodes } from '../helpers/nodes.js';

/** True when tcpdump is on the PATH. CI installs it; a fresh dev machine may not have it. */
function haveTcpdump(): boolean {
  try {
    execFileSync('which', ['tcpdump'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Run the dump command, returning what it printed on stdout. */
async function dump(...argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  const out = sinon.stub(process.stdout, 'write').callsFake((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter((l) => l.length > 0));
    return true;
  });
  const err = sinon.stub(process.stderr, 'write').returns(true);
  try {
    expect(await runDump(argv)).to.equal(0);
  } finally {
    out.restore();
    err.restore();
  }
  return lines;
}

/**
 * Loopback captures of real nodes (issue 11): with tcpdump on `lo`, a broadcast's payload
 * is nowhere in the captured bytes, and the key log the nodes wrote opens it again.
 */
describe('a tcpdump capture of two nodes on loopback', function () {
  this.timeout(30_000);
  const nodes = useNodes({ heartbeatMs: 200 });
  let dir: string;
  let tcpdump: ChildProcess | undefined;

  before(function () {
    // tcpdump is needed (and root or CAP_NET_RAW to run it): CI installs it; a fresh dev
    // machine may not have it, and then there is nothing to capture with.
    if (!haveTcpdump()) this.skip();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-capture-'));
  });
  afterEach(async () => {
    if (tcpdump && tcpdump.exitCode === null && tcpdump.signalCode === null) tcpdump.kill('SIGKILL');
    tcpdump = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Start tcpdump on lo for `port` and resolve once it says it is listening (bounded). */
  async function startCapture(file: string, port: number): Promise<ChildProcess> {
    const child = spawn('tcpdump', ['-i', 'lo', '-U', '--immediate-mode', '-w', file, `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    tcpdump = child;
    let said = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start listening within 10 s: ${said.trim()}`)), 10_000);
      child.stderr!.on('data', (d: Buffer) => {
        said += d.toString();
        if (said.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tcpdump exited (${code}): ${said.trim()}`));
      });
    });
    return child;
  }

  /** Stop tcpdump by its PID (SIGINT: it writes what it holds) and wait for it, bounded. */
  async function stopCapture(child: ChildProcess): Promise<void> {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid!, 'SIGINT');
    await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error('tcpdump did not exit within 10 s')), 10_000))]);
  }

  /** Two nodes, A listening and B dialing it, with `opts`; A broadcasts `text` and B delivers it. */
  async function broadcastUnderCapture(ctx: Mocha.Context, text: string, opts: P2PNetworkOptions): Promise<{ pcap: string; a: string; b: string }> {
    const a = await nodes.start(opts);
    const pcap = join(dir, 'capture.pcap');
    let child: ChildProcess;
    try {
      child = await startCapture(pcap, a.address.port);
    } catch (err) {
      // Installed but not allowed to capture (not root, no CAP_NET_RAW): an environment
      // limit, not a failure of the code under test. CI runs it as root.
      if (/permission|not permitted/i.test((err as Error).message)) ctx.skip();
      throw err;
    }
    const b = await nodes.start({ ...opts, bootstrap: [addrOf(a)] });
    const got: string[] = [];
    b.subscribe('chat', (data) => void got.push(String(data)));
    await waitFor(() => a.health().connectedPeers === 1 && b.health().connectedPeers === 1, 10_000, 'A and B connected');
    await a.broadcast('chat', text);
    await waitFor(() => got.includes(text), 10_000, 'B delivered the broadcast');
    if (opts.keyLog !== undefined) {
      const keyLog = opts.keyLog;
      await waitFor(() => existsSync(keyLog) && readFileSync(keyLog, 'utf8').includes('AETHEL_NOISE'), 5000, 'the key log line');
    }
    await stopCapture(child);
    return { pcap, a: a.id, b: b.id };
  }

  it('does not carry a broadcast payload in clear, and dump --pcap --keylog shows the message', async function () {
    const text = 'the eagle flies at midnight 7f3c';
    const keyLog = join(dir, 'keys.log');
    const { pcap, a, b } = await broadcastUnderCapture(this, text, { keyLog });
    const bytes = await readFile(pcap);
    expect(bytes.length).to.be.greaterThan(1000);
    expect(bytes.indexOf(text)).to.equal(-1);
    expect(bytes.indexOf(Buffer.from(text, 'utf16le'))).to.equal(-1);

    // Without the key log: the handshake, then sealed records; the message is nowhere.
    const sealed = await dump('--pcap', pcap);
    expect(sealed.some((l) => l.includes('encrypted record'))).to.equal(true);
    expect(sealed.join('\n')).to.not.include(text.slice(0, 20));
    expect(sealed.join('\n')).to.not.include('MALFORMED');

    // With it: the GOSSIP frame, its payload, and both ends named by node id.
    const open = await dump('--pcap', pcap, '--keylog', keyLog, '--type', 'GOSSIP', '--json');
    const gossip = open.map((l) => JSON.parse(l) as { node: string; peer: string; fields: { payload: string } });
    expect(gossip.map((g) => [g.node, g.peer, g.fields.payload])).to.deep.equal([[a, b, JSON.stringify(text)]]);
  });

  it('carries the payload in clear on a plaintext session (encryption: false on both), so the check above can fail', async function () {
    const text = 'plaintext lab traffic 91d0';
    const { pcap } = await broadcastUnderCapture(this, text, { encryption: false });
    expect((await readFile(pcap)).indexOf(text)).to.be.greaterThan(0);
    const lines = await dump('--pcap', pcap, '--type', 'GOSSIP');
    expect(lines.some((l) => l.includes(text))).to.equal(true);
  });
});
