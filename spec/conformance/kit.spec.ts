import { LOOPBACK_ALLOWLIST } from '../../lib/testnet.js';
import { expect } from 'chai';
import { P2PNetwork } from '../../lib/network.js';
import { CHECKS, runConformance } from '../../lib/conformance/runner.js';
import type { ConformanceReport } from '../../lib/conformance/runner.js';
import { InvalidOptionError } from '../../lib/errors.js';

describe('conformance kit against this project\'s node', function () {
  let node: P2PNetwork | undefined;
  let report: ConformanceReport;

  before(async function () {
    this.timeout(120_000);
    // The kit holds up to three sessions from 127.0.0.1 at once: the target allows that address.
    node = new P2PNetwork({ listenHost: '127.0.0.1', listenPort: 0, handshakeTimeoutMs: 400, heartbeatMs: 200, admissionAllowlist: [...LOOPBACK_ALLOWLIST] });
    await node.start();
    report = await runConformance({ host: '127.0.0.1', port: node.address.port, handshakeTimeoutMs: 400, replyTimeoutMs: 4000, quietMs: 600 });
  });

  after(async () => {
    await node?.stop();
  });

  it('runs every check of the checklist, each citing a PROTOCOL.md section', () => {
    expect(report.checks.map((c) => c.name)).to.deep.equal(CHECKS.map((c) => c.name));
    for (const c of report.checks) expect(c.section).to.match(/^§\d/);
  });

  for (const check of CHECKS) {
    it(`passes "${check.name}" (${check.section})`, () => {
      const r = report.checks.find((x) => x.name === check.name);
      expect(r, 'result present').to.not.equal(undefined);
      expect(r!.passed, r!.detail).to.equal(true);
    });
  }

  it('counts passes and failures in the summary', () => {
    expect(report.failed).to.equal(0);
    expect(report.passed).to.equal(CHECKS.length);
  });
});

describe('conformance kit options', () => {
  it('rejects an unknown check name, naming the field', async () => {
    const err = await runConformance({ host: '127.0.0.1', port: 1, only: ['no-such-check'] }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).field).to.equal('only');
  });

  it('rejects a port out of range, naming the field', async () => {
    const err = await runConformance({ host: '127.0.0.1', port: 70000 }).catch((e: unknown) => e);
    expect((err as InvalidOptionError).field).to.equal('port');
  });
});
