import { expect } from 'chai';
import { pino } from 'pino';
import type { Clock } from '../../lib/clock.js';
import type { P2PError } from '../../lib/errors.js';
import { generateIdentity } from '../../lib/identity.js';
import { Metrics } from '../../lib/metrics.js';
import { Sanctions } from '../../lib/peers/sanctions.js';
import type { SanctionedConnection } from '../../lib/peers/sanctions.js';
import { GoodbyeCode, MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

const RELAY = 'r'.repeat(64);

class FakeConn implements SanctionedConnection {
  closed: number | undefined;
  readonly socket = { remoteAddress: '10.0.0.7' };
  constructor(readonly peerIdHex: string) {}
  close(code: number, _reason: string, _error?: P2PError): void {
    this.closed ??= code;
  }
}

describe('Sanctions', () => {
  let now: number;
  let clock: Clock;
  let conns: Map<string, FakeConn>;
  let events: string[];
  let metrics: Metrics;
  function make(scoring = {}): Sanctions {
    return new Sanctions(clock, scoring, 60_000, metrics, pino({ level: 'silent' }), {
      connectionOf: (id) => conns.get(id),
      onInvalid: (id, reason) => events.push(`invalid ${id.slice(0, 4)} ${reason}`),
      onBanned: (id, reason) => events.push(`banned ${id.slice(0, 4)} ${reason}`),
    });
  }
  beforeEach(() => {
    now = 0;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    conns = new Map();
    events = [];
    metrics = new Metrics();
  });

  it('ignores a graylisted peer\'s gossip, then bans it, closes it with MISBEHAVIOR and refuses it back', () => {
    const s = make();
    const conn = new FakeConn(RELAY);
    conns.set(RELAY, conn);
    s.invalid(RELAY, 'bad_signature');
    s.invalid(RELAY, 'bad_signature');
    const ihave: Message = { type: MessageType.IHAVE, ids: [Buffer.alloc(32)] };
    let ignored = 0;
    while (!conn.closed && ignored < 1000) if (s.gate(RELAY, ihave) === 'graylisted') ignored++;
    expect(ignored).to.equal(160); // (100 - 60) / rateExcessPenalty
    expect(conn.closed).to.equal(GoodbyeCode.MISBEHAVIOR);
    expect(events).to.deep.equal([`invalid rrrr bad_signature`, `invalid rrrr bad_signature`, `banned rrrr graylisted`]);
    expect(s.isBanned(RELAY)).to.equal(true);
    expect(s.isBanned('x'.repeat(64), '10.0.0.7')).to.equal(true); // by address too
    const again = new FakeConn(RELAY);
    expect(s.refuseBanned(again)).to.equal(true);
    expect(again.closed).to.equal(GoodbyeCode.MISBEHAVIOR);
    expect(metrics.peersBanned).to.equal(1);
  });

  it('charges a flooding origin, not the relay that brought its messages, and bans the origin by id', () => {
    const s = make({ originPerSecond: 10, originBurst: 10, originExcessPenalty: 1 });
    const origin = generateIdentity();
    const relay = { idHex: RELAY, prefixKey: '', send: () => true, sendEncoded: () => true };
    const host = s.gossipHost();
    let accepted = 0;
    for (let i = 0; i < 200; i++) {
      if (!host.mayAccept(relay, origin.publicKey)) continue;
      accepted++;
      host.accepted(origin.publicKey); // its signature verified
    }
    expect(accepted).to.equal(10);
    expect(s.ledger.score(RELAY)).to.equal(0);
    expect(s.ledger.snapshot(origin.idHex)!.counters.originExcess).to.equal(190);
    expect(s.isBanned(origin.idHex)).to.equal(true);
    expect(s.isBanned(RELAY)).to.equal(false);
    expect(events).to.deep.equal([`banned ${origin.idHex.slice(0, 4)} origin_budget`]);
  });

  it('drops what exceeds a peer\'s budget before an engine sees it', () => {
    const s = make({ directPerSecond: 0, directBurst: 1 });
    const direct: Message = { type: MessageType.DIRECT, ref: Buffer.alloc(16), topic: 't', payload: Buffer.alloc(1), wantReply: false };
    expect(s.gate(RELAY, direct)).to.equal(undefined);
    expect(s.gate(RELAY, direct)).to.equal('rate_limited');
    expect(metrics.dropped('rate_limited')).to.equal(1);
  });
});
