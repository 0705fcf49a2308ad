import { expect } from 'chai';
import { killAllCli, runCli } from './cli-process.js';
import { percentile } from '../../lib/cli/demo.js';
import type { DemoReport } from '../../lib/cli/demo.js';

/** `aethel-p2p demo` on a tiny cluster, run as a process (stdout and stderr are pipes, not a TTY). */
describe('aethel-p2p demo', function () {
  this.timeout(90_000);

  afterEach(() => killAllCli());

  it('delivers every message to every other node and reports it as one JSON object with --json', async () => {
    const r = await runCli(['demo', '--nodes', '5', '--messages', '10', '--size', '64', '--json'], 60_000);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.have.length(1);
    const report = JSON.parse(lines[0]!) as DemoReport;
    expect(report).to.include({ nodes: 5, messages: 10, size: 64, repair: true, signed: true });
    expect(report.expectedDeliveries).to.equal(10 * 4);
    expect(report.deliveries).to.equal(40);
    expect(report.deliveryFraction).to.equal(1);
    const hopTotal = Object.values(report.hops).reduce((s, n) => s + n, 0);
    expect(hopTotal).to.equal(report.deliveries);
    for (const h of Object.keys(report.hops)) expect(Number(h)).to.be.within(1, 10);
    const { p50, p90, p99, max } = report.latencyMs;
    expect(p50).to.be.at.most(p90);
    expect(p90).to.be.at.most(p99);
    expect(p99).to.be.at.most(max);
    expect(report.redundancy).to.be.at.least(1);
    expect(report.bytesOnWire).to.be.greaterThan(report.deliveries * 64);
    expect(report.links).to.be.within(4, 10);
    // Not a terminal: no progress bar on stderr.
    expect(r.stderr).to.equal('');
  });

  it('prints delivery, hop histogram, latency percentiles, redundancy and wire bytes without --json', async () => {
    const r = await runCli(['demo', '--nodes', '4', '--messages', '5', '--unsigned'], 60_000);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^delivered: 15\/15 \(100\.00%\)/m);
    expect(r.stdout).to.match(/^hops:\n\s+1 hop /m);
    expect(r.stdout).to.match(/^latency: p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms/m);
    expect(r.stdout).to.match(/^redundancy: [\d.]+ gossip copies sent per delivery/m);
    expect(r.stdout).to.match(/^wire: \d+ bytes in all/m);
    expect(r.stdout).to.include('unsigned');
    expect(r.stdout).to.not.include('\r');
    expect(r.stderr).to.equal('');
  });

  describe('percentile', () => {
    const table: Array<[number[], number, number]> = [
      [[], 50, 0],
      [[7], 99, 7],
      [[1, 2, 3, 4], 50, 2],
      [[1, 2, 3, 4], 100, 4],
      [Array.from({ length: 100 }, (_, i) => i + 1), 90, 90],
      [Array.from({ length: 100 }, (_, i) => i + 1), 99, 99],
    ];
    for (const [sorted, p, want] of table) {
      it(`gives ${want} as p${p} of ${sorted.length} sorted values (nearest rank)`, () => {
        expect(percentile(sorted, p)).to.equal(want);
      });
    }
  });
});
