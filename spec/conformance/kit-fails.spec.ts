import { expect } from 'chai';
import { P2PNetwork } from '../../lib/network.js';
import { runConformance } from '../../lib/conformance/runner.js';
import { startSilentTarget } from './broken-target.js';
import type { BrokenTarget } from './broken-target.js';

describe('conformance kit against broken targets', () => {
  let target: BrokenTarget | undefined;
  let node: P2PNetwork | undefined;

  afterEach(async () => {
    await target?.close();
    await node?.stop();
    target = undefined;
    node = undefined;
  });

  it('fails "ping" with the reason when the target never answers PING', async () => {
    target = await startSilentTarget();
    const r = await runConformance({ host: '127.0.0.1', port: target.port, replyTimeoutMs: 300, only: ['handshake', 'ping'] });
    expect(r.checks.map((c) => [c.name, c.passed])).to.deep.equal([['handshake', true], ['ping', false]]);
    expect(r.checks[1]!.detail).to.match(/no PONG with seq \d+ within 300 ms/);
    expect(r.failed).to.equal(1);
  });

  it('fails refusal checks when the target ignores bad bytes instead of saying GOODBYE', async () => {
    target = await startSilentTarget();
    const r = await runConformance({ host: '127.0.0.1', port: target.port, replyTimeoutMs: 300, only: ['frame-length-zero', 'unknown-type'] });
    expect(r.checks.every((c) => !c.passed)).to.equal(true);
    expect(r.checks[0]!.detail).to.match(/^no GOODBYE 1 PROTOCOL_ERROR within 300 ms/);
  });

  it('fails "gossip-forwarded" when the target relays nothing', async () => {
    target = await startSilentTarget();
    const r = await runConformance({ host: '127.0.0.1', port: target.port, replyTimeoutMs: 200, only: ['gossip-forwarded'] });
    expect(r.checks[0]!.passed).to.equal(false);
    expect(r.checks[0]!.detail).to.match(/got neither the GOSSIP nor an IHAVE/);
  });

  it('fails "frame-too-large" when the target accepts larger frames than the kit was told', async () => {
    node = new P2PNetwork({ listenHost: '127.0.0.1', listenPort: 0, maxFrameBytes: 2 << 20 });
    await node.start();
    const r = await runConformance({ host: '127.0.0.1', port: node.address.port, replyTimeoutMs: 300, only: ['frame-too-large'] });
    expect(r.checks[0]!.passed).to.equal(false);
    expect(r.checks[0]!.detail).to.match(/no GOODBYE 1 PROTOCOL_ERROR within 300 ms; the connection stayed open/);
  });

  it('reports an unreachable target as failed checks, not as an exception', async () => {
    target = await startSilentTarget();
    const port = target.port;
    await target.close();
    target = undefined;
    const r = await runConformance({ host: '127.0.0.1', port, replyTimeoutMs: 300, only: ['ping'] });
    expect(r.checks[0]!.passed).to.equal(false);
    expect(r.checks[0]!.detail).to.match(/could not connect/);
  });
});
