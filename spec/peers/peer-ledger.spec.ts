import { expect } from 'chai';
import type { Clock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { chargeInbound, PeerLedger, RATE_KINDS, resolveScoringOptions, SCORING_DEFAULTS } from '../../lib/peers/peer-ledger.js';
import { TokenBucket } from '../../lib/peers/token-bucket.js';
import { seededRandom } from '../../lib/random.js';
import { MessageType } from '../../lib/wire/messages.js';

const P = 'p'.repeat(64);
const Q = 'q'.repeat(64);

describe('PeerLedger', () => {
  let now: number;
  let clock: Clock;
  beforeEach(() => {
    now = 0;
    clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  });

  it('says ok for an unknown peer and for one that only delivers', () => {
    const l = new PeerLedger(clock);
    expect(l.verdict(P)).to.equal('ok');
    for (let i = 0; i < 10_000; i++) l.firstDelivery(P);
    expect(l.score(P)).to.equal(SCORING_DEFAULTS.maxPositiveScore);
    expect(l.verdict(P)).to.equal('ok');
  });

  it('graylists after two forged signatures and bans after four', () => {
    const l = new PeerLedger(clock);
    l.invalid(P, 'bad_signature');
    expect(l.verdict(P)).to.equal('ok');
    l.invalid(P, 'bad_signature');
    expect(l.verdict(P)).to.equal('graylist');
    l.invalid(P, 'id_mismatch');
    l.invalid(P, 'unsigned');
    expect(l.verdict(P)).to.equal('ban');
    expect(l.snapshot(P)!.counters.invalid).to.deep.equal({ bad_signature: 2, id_mismatch: 1, unsigned: 1 });
  });

  it('does not let banked good behaviour pay for an attack (positive score is capped)', () => {
    const l = new PeerLedger(clock);
    for (let i = 0; i < 1_000_000; i++) l.firstDelivery(P);
    for (let i = 0; i < 3; i++) l.invalid(P, 'bad_signature');
    expect(l.score(P)).to.equal(SCORING_DEFAULTS.maxPositiveScore - 90);
    expect(l.verdict(P)).to.equal('graylist');
  });

  it('halves a score every scoreHalfLifeMs', () => {
    const l = new PeerLedger(clock);
    l.invalid(P, 'bad_signature');
    l.invalid(P, 'bad_signature');
    expect(l.score(P)).to.equal(-60);
    now += SCORING_DEFAULTS.scoreHalfLifeMs;
    expect(l.score(P)).to.be.closeTo(-30, 1e-9);
    expect(l.verdict(P)).to.equal('ok');
    now += 10 * SCORING_DEFAULTS.scoreHalfLifeMs;
    expect(l.score(P)).to.be.closeTo(-30 / 1024, 1e-9);
  });

  it('never graylists a peer that sends only duplicates at its whole gossip budget', () => {
    const l = new PeerLedger(clock);
    // One hour at 2000 duplicates/s, in 1 s steps.
    for (let s = 0; s < 3600; s++) {
      now = s * 1000;
      for (let i = 0; i < SCORING_DEFAULTS.gossipPerSecond; i++) l.duplicate(P);
    }
    expect(l.score(P)).to.be.above(-10);
    expect(l.verdict(P)).to.equal('ok');
  });

  it('drops what exceeds a budget, counts it, and bans a peer that keeps exceeding', () => {
    const l = new PeerLedger(clock, { directPerSecond: 10, directBurst: 10 });
    let granted = 0;
    for (let i = 0; i < 1000 && l.verdict(P) !== 'ban'; i++) if (l.take(P, 'direct')) granted++;
    expect(granted).to.equal(10);
    expect(l.verdict(P)).to.equal('ban');
    expect(l.snapshot(P)!.counters.rateLimited.direct).to.equal(400); // 100 / 0.25
  });

  it('graylists a FIND_NODE flooder 8 past its budget and bans it 12 later (rateExcessPenaltyByKind)', () => {
    const l = new PeerLedger(clock);
    let granted = 0;
    let excess = 0;
    for (let i = 0; i < 1000 && l.verdict(P) === 'ok'; i++) {
      if (l.take(P, 'findNode')) granted++;
      else excess++;
    }
    expect(granted).to.equal(SCORING_DEFAULTS.findNodeBurst);
    expect(excess).to.equal(8);
    expect(l.verdict(P)).to.equal('graylist');
    let ignored = 0;
    while (l.verdict(P) !== 'ban' && ignored < 1000) {
      l.ignored(P, 'findNode');
      ignored++;
    }
    expect(ignored).to.equal(12);
    expect(() => new PeerLedger(clock, { rateExcessPenaltyByKind: { nope: 1 } as never })).to.throw(InvalidOptionError, 'scoring.rateExcessPenaltyByKind.nope');
  });

  it('bans a graylisted peer that keeps sending, and lets one that stops recover', () => {
    const l = new PeerLedger(clock);
    for (const id of [P, Q]) for (let i = 0; i < 2; i++) l.invalid(id, 'bad_signature');
    expect(l.verdict(P)).to.equal('graylist');
    let ignored = 0;
    while (l.verdict(P) !== 'ban' && ignored < 1000) {
      l.ignored(P);
      ignored++;
    }
    expect(ignored).to.equal(160); // (100 - 60) / 0.25
    now += SCORING_DEFAULTS.scoreHalfLifeMs;
    expect(l.verdict(Q)).to.equal('ok');
  });

  it('keeps budgets apart per peer', () => {
    const l = new PeerLedger(clock, { directPerSecond: 0, directBurst: 1 });
    expect(l.take(P, 'direct')).to.equal(true);
    expect(l.take(P, 'direct')).to.equal(false);
    expect(l.take(Q, 'direct')).to.equal(true);
  });

  it('keeps every budget as a TokenBucket of its rate and burst would, made full on first use, through refills and a clock stepping back', () => {
    const o = { gossipPerSecond: 50, gossipBurst: 5, gossipBytesPerSecond: 700, gossipBytesBurst: 900, ihaveIdsPerSecond: 30, ihaveIdsBurst: 8, iwantIdsPerSecond: 30, iwantIdsBurst: 8, findNodePerSecond: 3, findNodeBurst: 2, directPerSecond: 0, directBurst: 4, verifyPerSecond: 20, verifyBurst: 3, graylistScore: -1e9, banScore: -2e9 };
    const rates = [o.gossipPerSecond, o.gossipBytesPerSecond, o.ihaveIdsPerSecond, o.iwantIdsPerSecond, o.findNodePerSecond, o.directPerSecond, o.verifyPerSecond];
    const bursts = [o.gossipBurst, o.gossipBytesBurst, o.ihaveIdsBurst, o.iwantIdsBurst, o.findNodeBurst, o.directBurst, o.verifyBurst];
    const l = new PeerLedger(clock, o);
    const reference = new Map<string, TokenBucket>();
    const random = seededRandom(7);
    for (let step = 0; step < 5000; step++) {
      now += Math.floor(random() * 60) - 10; // now and then the clock steps back
      const peer = random() < 0.5 ? P : Q;
      const k = Math.floor(random() * RATE_KINDS.length);
      const n = 1 + Math.floor(random() * (k === 1 ? 400 : 3));
      const key = `${peer}/${k}`;
      if (!reference.has(key)) reference.set(key, new TokenBucket(rates[k]!, bursts[k]!, now));
      expect(l.take(peer, RATE_KINDS[k]!, n), `step ${step}`).to.equal(reference.get(key)!.take(now, n));
    }
  });

  it('uses options resolved once as they are (ledgers share them), frozen, and resolves anything else', () => {
    const resolved = resolveScoringOptions({ banScore: -50 });
    expect(Object.isFrozen(resolved)).to.equal(true);
    expect(resolveScoringOptions(resolved)).to.equal(resolved);
    expect(new PeerLedger(clock, resolved).opts).to.equal(resolved);
    const copy = { ...resolved, banScore: 1 };
    expect(() => new PeerLedger(clock, copy)).to.throw(InvalidOptionError);
  });

  it('serves a new identity IWANT bytes only up to twice what it sent', () => {
    const l = new PeerLedger(clock, { serveBytesPerSecond: 0, serveBurstBytes: 10_000, serveAmplification: 2, serveSharedBurstBytes: 0 });
    expect(l.connected(P)).to.equal(false); // first connection: no burst
    expect(l.mayServe(P, 1)).to.equal(false);
    l.received(P, 300);
    expect(l.mayServe(P, 600)).to.equal(true);
    expect(l.mayServe(P, 1)).to.equal(false);
    const c = l.snapshot(P)!.counters;
    expect(c).to.include({ bytesServed: 600, iwantIdsServed: 1, serveRefused: 2, bytesIn: 300 });
    expect(l.verdict(P)).to.equal('ok'); // refusals are not penalized
  });

  it('grants the serve burst to a known peer that reconnects, at most once per serveBurstIntervalMs', () => {
    const l = new PeerLedger(clock, { serveBytesPerSecond: 0, serveBurstBytes: 10_000, serveBurstIntervalMs: 60_000, serveSharedBurstBytes: 0 });
    l.connected(P);
    l.received(P, 100);
    now = 5000;
    expect(l.connected(P)).to.equal(true); // a reconnection: its record predates it
    expect(l.mayServe(P, 10_000)).to.equal(true);
    expect(l.mayServe(P, 1)).to.equal(false);
    now = 30_000;
    expect(l.connected(P)).to.equal(false); // again within the interval: nothing more
    expect(l.mayServe(P, 1)).to.equal(false);
    now = 65_000;
    expect(l.connected(P)).to.equal(true);
    expect(l.mayServe(P, 10_000)).to.equal(true);
  });

  it('does not budget IWANT answers to a peer this node chose, while that connection lasts', () => {
    const l = new PeerLedger(clock, { serveBurstBytes: 10_000, serveSharedBurstBytes: 0 });
    l.connected(P, true); // we dialed it
    for (let i = 0; i < 100; i++) expect(l.mayServe(P, 10_000)).to.equal(true);
    expect(l.snapshot(P)!.counters.bytesServed).to.equal(1_000_000);
    now = 1000;
    l.connected(P, false); // back, inbound this time: budgeted (its burst as a known peer)
    expect(l.mayServe(P, 10_000)).to.equal(true);
    expect(l.mayServe(P, 1)).to.equal(false);
  });

  it('serves budgeted peers short of their own budget from one node-wide allowance, shared by all of them', () => {
    const l = new PeerLedger(clock, { serveSharedBytesPerSecond: 1000, serveSharedBurstBytes: 5000 });
    const ids = Array.from({ length: 20 }, (_, i) => String(i).padStart(64, '0'));
    let served = 0;
    for (const id of ids) {
      l.connected(id); // new identities: nothing of their own
      while (l.mayServe(id, 500)) served += 500;
    }
    expect(served).to.equal(5000); // the burst once, for all twenty
    now += 2000;
    for (const id of ids) while (l.mayServe(id, 500)) served += 500;
    expect(served).to.equal(7000); // plus 1000/s
  });

  it('starts a peer seen before its first connection (a record made by another event) with the burst on that connection', () => {
    const l = new PeerLedger(clock, { serveBurstBytes: 10_000 });
    l.firstDelivery(P); // e.g. a record that survived from an earlier run of the connection
    expect(l.connected(P)).to.equal(true);
    expect(l.mayServe(P, 10_000)).to.equal(true);
  });

  it('charges inbound messages to the right budgets and lets others through', () => {
    const l = new PeerLedger(clock, { ihaveIdsPerSecond: 0, ihaveIdsBurst: 1500 });
    const ids = (n: number) => Array.from({ length: n }, () => Buffer.alloc(32));
    expect(chargeInbound(l, P, { type: MessageType.IHAVE, ids: ids(1024) })).to.equal(true);
    expect(chargeInbound(l, P, { type: MessageType.IHAVE, ids: ids(1024) })).to.equal(false);
    expect(chargeInbound(l, P, { type: MessageType.ACK, ref: Buffer.alloc(16), status: 0, reply: null })).to.equal(true);
    expect(chargeInbound(l, P, { type: MessageType.FIND_NODE, reqId: 1, target: Buffer.alloc(32) })).to.equal(true);
    expect(l.snapshot(P)!.counters).to.include({ findNodeAsked: 1 });
    expect(l.snapshot(P)!.counters.rateLimited).to.deep.equal({ ihaveIds: 1 });
  });

  it('survives the cap by evicting the longest-idle record with nothing to remember', () => {
    const l = new PeerLedger(clock, { maxTrackedPeers: 3 });
    l.invalid('1', 'bad_signature'); // negative: kept
    now = 1;
    l.firstDelivery('2');
    now = 2;
    l.firstDelivery('3');
    now = 3;
    l.firstDelivery('4');
    expect(l.ids().sort()).to.deep.equal(['1', '3', '4']);
    expect(l.evictions).to.equal(1);
  });

  it('evicts a ban-level record only when every record is at ban level', () => {
    const l = new PeerLedger(clock, { maxTrackedPeers: 2 });
    for (const id of ['1', '2']) for (let i = 0; i < 4; i++) l.invalid(id, 'bad_signature');
    l.invalid('3', 'ttl_zero');
    expect(l.ids().sort()).to.deep.equal(['2', '3']);
  });

  it('names the bad option', () => {
    expect(() => new PeerLedger(clock, { banScore: -10 })).to.throw(InvalidOptionError).with.property('field', 'scoring.banScore');
    expect(() => new PeerLedger(clock, { gossipBurst: 0 })).to.throw(InvalidOptionError).with.property('field', 'scoring.gossipBurst');
    expect(() => new PeerLedger(clock, { invalidPenalty: { x: -1 } })).to.throw(InvalidOptionError).with.property('field', 'scoring.invalidPenalty.x');
  });
});
