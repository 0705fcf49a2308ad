import { expect } from 'chai';
import { pino } from 'pino';
import type { DeliveryInfo } from '../lib/gossip/engine.js';
import { Metrics } from '../lib/metrics.js';
import { Subscriptions } from '../lib/subscriptions.js';
import type { DirectMessage } from '../lib/subscriptions.js';
import { packValue } from '../lib/wire/codec.js';
import { AckStatus, MessageType } from '../lib/wire/messages.js';

const FROM = 'bb'.repeat(32);

describe('Subscriptions', () => {
  function setup() {
    const metrics = new Metrics();
    const invalid: string[] = [];
    const failed: Array<[string, unknown]> = [];
    const subs = new Subscriptions(metrics, pino({ level: 'silent' }), {
      invalid: (id, reason) => void invalid.push(`${id.slice(0, 2)} ${reason}`),
      failed: (topic, err) => void failed.push([topic, err]),
    });
    return { subs, metrics, invalid, failed };
  }

  const direct = (topic: string, payload: Buffer, wantReply = false): DirectMessage =>
    ({ type: MessageType.DIRECT, ref: Buffer.alloc(16, 7), topic, payload, wantReply });

  /** Run direct() and collect the ACKs it sent and whether it asked isNew(). */
  function answer(subs: Subscriptions, msg: DirectMessage, isNew = true) {
    const acks: Array<[number, Buffer | null | undefined]> = [];
    let asked = false;
    subs.direct(FROM, msg, () => ((asked = true), isNew), (status, reply) => void acks.push([status, reply]));
    return { acks, asked };
  }

  it('acknowledges a DIRECT NO_SUBSCRIBER, DUPLICATE or DELIVERED, and hands a new one over once', () => {
    const { subs, metrics } = setup();
    const got: Array<[unknown, DeliveryInfo]> = [];
    const none = answer(subs, direct('t', packValue(1)));
    expect(none).to.deep.equal({ acks: [[AckStatus.NO_SUBSCRIBER, undefined]], asked: false });
    expect(metrics.snapshot({ connectedPeers: 0, seenMessages: 0 }).droppedByReason).to.have.property('no_subscriber', 1);

    subs.add('t', (d, info) => void got.push([d, info]));
    expect(answer(subs, direct('t', packValue(2)), false).acks).to.deep.equal([[AckStatus.DUPLICATE, undefined]]);
    expect(got).to.deep.equal([]);
    expect(answer(subs, direct('t', packValue(3))).acks).to.deep.equal([[AckStatus.DELIVERED, undefined]]);
    expect(got).to.have.length(1);
    expect(got[0]![0]).to.equal(3);
    expect(got[0]![1]).to.include({ topic: 't', from: FROM, hops: 1, direct: true });
  });

  it('answers a request whose payload is not MessagePack HANDLER_FAILED and reports the sender, without calling the handler', () => {
    const { subs, invalid } = setup();
    let called = false;
    subs.add('t', () => void (called = true));
    const { acks } = answer(subs, direct('t', Buffer.from([0xc1]), true));
    expect(acks.map(([s]) => s)).to.deep.equal([AckStatus.HANDLER_FAILED]);
    expect(invalid).to.deep.equal(['bb bad_payload']);
    expect(called).to.equal(false);
  });

  it('needs one unsubscribe per subscribe of the same handler', () => {
    const { subs } = setup();
    const handler = () => {};
    const off1 = subs.add('t', handler);
    const off2 = subs.add('t', handler);
    off1();
    expect(subs.has('t')).to.equal(true);
    off2();
    expect(subs.has('t')).to.equal(false);
  });

  it('reports a handler that rejects with its topic, and still calls the next handler', async () => {
    const { subs, failed } = setup();
    const seen: unknown[] = [];
    subs.add('t', () => Promise.reject(new Error('store offline')));
    subs.add('t', (d) => void seen.push(d));
    subs.deliver('t', packValue('x'), { id: 'ab', topic: 't', from: FROM, hops: 2, direct: false });
    await Promise.resolve();
    expect(seen).to.deep.equal(['x']);
    expect(failed.map(([t, e]) => [t, (e as Error).message])).to.deep.equal([['t', 'store offline']]);
  });
});
