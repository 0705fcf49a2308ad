import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../lib/clock.js';
import { ackOutcome, answerRequest, CallerLimits, isFinalDirectError } from '../lib/direct.js';
import { P2PError } from '../lib/errors.js';
import { packValue, unpackValue } from '../lib/wire/codec.js';
import { AckStatus } from '../lib/wire/messages.js';
import { addrOf, useNodes } from './helpers/nodes.js';

const PEER = 'ab'.repeat(32);
const INFO = { id: '00', topic: 't', from: PEER, hops: 1, direct: true };
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return (err as P2PError).code;
  }
  return undefined;
};

describe('direct messages: the sender and receiver decisions (PROTOCOL.md §4.9)', () => {
  it('reads each ACK status as a reply or the error it means', () => {
    const reply = packValue(7);
    expect(ackOutcome({ status: AckStatus.DELIVERED, reply }, PEER, 't', true)).to.equal(reply);
    expect(ackOutcome({ status: AckStatus.DUPLICATE, reply: null }, PEER, 't', false)).to.equal(null);
    expect(codeOf(() => ackOutcome({ status: AckStatus.DUPLICATE, reply: null }, PEER, 't', true))).to.equal('TIMEOUT');
    expect(codeOf(() => ackOutcome({ status: AckStatus.NO_SUBSCRIBER, reply: null }, PEER, 't', false))).to.equal('NO_HANDLER');
    expect(codeOf(() => ackOutcome({ status: AckStatus.HANDLER_FAILED, reply: Buffer.from('boom') }, PEER, 't', true))).to.equal('HANDLER_FAILED');
    expect(codeOf(() => ackOutcome({ status: 200, reply: null }, PEER, 't', false))).to.equal('QUEUE_FULL');
    expect(isFinalDirectError(new P2PError('NO_HANDLER', 'x'))).to.equal(true);
    expect(isFinalDirectError(new P2PError('QUEUE_FULL', 'x'))).to.equal(false);
  });

  it('answers a request with the handler\'s value, or HANDLER_FAILED with its error text', async () => {
    const acks: Array<[number, Buffer | null]> = [];
    const failures: unknown[] = [];
    const ack = (s: number, r: Buffer | null) => void acks.push([s, r]);
    const settle = () => new Promise((r) => setImmediate(r));
    answerRequest(async (d) => ({ echo: d }), 5, INFO, ack, (e) => failures.push(e));
    await settle();
    answerRequest(() => undefined, 5, INFO, ack, (e) => failures.push(e));
    await settle();
    answerRequest(() => { throw new Error('no state here'); }, 5, INFO, ack, (e) => failures.push(e));
    await settle();
    answerRequest(() => () => 1, 5, INFO, ack, (e) => failures.push(e));
    await settle();
    expect(acks[0]![0]).to.equal(AckStatus.DELIVERED);
    expect(unpackValue(acks[0]![1]!)).to.deep.equal({ echo: 5 });
    expect(acks[1]).to.deep.equal([AckStatus.DELIVERED, packValue(null)]);
    expect(acks[2]![0]).to.equal(AckStatus.HANDLER_FAILED);
    expect(acks[2]![1]!.toString()).to.equal('no state here');
    expect(acks[3]![0]).to.equal(AckStatus.HANDLER_FAILED);
    expect(failures).to.have.length(1);
  });

  it('ends a send at its deadline or abort, and leaves no timer behind', async () => {
    const clock = sinon.useFakeTimers();
    try {
      const never = new Promise<never>(() => {});
      const timed = new CallerLimits(systemClock, 100, undefined, 'sendToPeer', PEER);
      const t = timed.race(never).catch((e: P2PError) => e);
      await clock.tickAsync(100);
      const err = await t;
      expect((err as P2PError).code).to.equal('TIMEOUT');
      expect(timed.hit(err)).to.equal(true);
      timed.dispose();
      const ac = new AbortController();
      const aborted = new CallerLimits(systemClock, 5000, ac.signal, 'request', PEER);
      const a = aborted.race(never).catch((e: P2PError) => e);
      ac.abort('changed my mind');
      expect((await a as P2PError).code).to.equal('ABORTED');
      aborted.dispose();
      expect(clock.countTimers()).to.equal(0);
    } finally {
      clock.restore();
    }
  });
});

describe('request() between two nodes', () => {
  const nodes = useNodes();

  it('returns the peer handler\'s answer, and says NO_HANDLER or HANDLER_FAILED when there is none or it fails', async () => {
    const a = await nodes.start();
    const b = await nodes.start({ bootstrap: [addrOf(a)] });
    a.subscribe('state_sync', (d) => ({ height: (d as { from: number }).from + 1 }));
    a.subscribe('broken', () => { throw new Error('store offline'); });
    expect(await b.request(a.id, 'state_sync', { from: 41 })).to.deep.equal({ height: 42 });
    const fail = await b.request(a.id, 'broken', 1).catch((e: P2PError) => e);
    expect((fail as P2PError).code).to.equal('HANDLER_FAILED');
    expect((fail as P2PError).message).to.include('store offline');
    expect(((await b.request(a.id, 'nobody', 1).catch((e: P2PError) => e)) as P2PError).code).to.equal('NO_HANDLER');
  });
});
