import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { P2PNetwork } from '../../lib/network.js';
import { startSilentTarget } from './broken-target.js';
import type { BrokenTarget } from './broken-target.js';

/** Run the CLI as a separate process; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('aethel-p2p conformance (command line)', () => {
  let node: P2PNetwork | undefined;
  let target: BrokenTarget | undefined;

  afterEach(async () => {
    await node?.stop();
    await target?.close();
    node = undefined;
    target = undefined;
  });

  it('exits 0 and prints a JSON report when the checks pass', async () => {
    node = new P2PNetwork({ listenHost: '127.0.0.1', listenPort: 0 });
    await node.start();
    const r = await cli(['conformance', `127.0.0.1:${node.address.port}`, '--json', '--only', 'handshake,ping,direct-ack']);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as { passed: number; failed: number; checks: Array<{ name: string; passed: boolean }> };
    expect(report.checks.map((c) => c.name)).to.deep.equal(['handshake', 'ping', 'direct-ack']);
    expect(report.failed).to.equal(0);
  });

  it('exits 1 and prints FAIL with the reason when a check fails', async () => {
    target = await startSilentTarget();
    const r = await cli(['conformance', `127.0.0.1:${target.port}`, '--only', 'ping', '--reply-timeout-ms', '300']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/^FAIL ping \(§4\.3\)/m);
    expect(r.stdout).to.match(/no PONG with seq \d+ within 300 ms/);
  });

  it('exits 2 on a bad address', async () => {
    const r = await cli(['conformance', 'not-an-address']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/HOST:PORT/);
  });
});
