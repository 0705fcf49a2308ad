import { expect } from 'chai';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { InvalidOptionError } from '../../lib/errors.js';
import { AddressAllowlist, Admission, preferDiverse, resolveAdmissionOptions } from '../../lib/peers/admission.js';
import type { AdmissionHost, AdmissionOptions } from '../../lib/peers/admission.js';
import { resolveOptions } from '../../lib/options.js';

/** A 64-hex id from a short label. */
const id = (n: number): string => n.toString(16).padStart(64, '0');
const MEMBER = 'ee'.repeat(32);

describe('Admission', () => {
  let clock: sinon.SinonFakeTimers;
  const usefulness = new Map<string, number>();
  const rtt = new Map<string, number>();
  const host: AdmissionHost = { usefulness: (i) => usefulness.get(i) ?? 0, rttMs: (i) => rtt.get(i) };

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
    usefulness.clear();
    rtt.clear();
  });
  afterEach(() => clock.restore());

  const make = (o: AdmissionOptions = {}) => new Admission(systemClock, o, host, Buffer.alloc(16));
  const connect = (a: Admission, n: number, ip: string, outbound = false) => {
    const peer = { id: id(n), ip, outbound };
    const v = a.admit(peer);
    if (v.accept) {
      if (v.evict) a.removed(v.evict);
      a.added(peer);
    }
    return v;
  };

  it('keeps outbound peers outside the inbound slots: inbound identities never take them', () => {
    const a = make({ maxInboundPeers: 2, maxOutboundPeers: 1, minEvictionAgeMs: 1e9 });
    expect(connect(a, 1, '10.0.1.1', true)).to.deep.equal({ accept: true });
    expect(connect(a, 2, '10.0.2.1')).to.deep.equal({ accept: true });
    expect(connect(a, 3, '10.0.3.1')).to.deep.equal({ accept: true });
    expect(connect(a, 4, '10.0.4.1')).to.deep.equal({ accept: false, reason: 'TOO_MANY_PEERS' });
    expect(a.counts()).to.include({ inbound: 2, outbound: 1 });
    expect(a.outboundAvailable()).to.equal(false);
  });

  const limitCases: Array<[string, string[], string, AdmissionOptions, string | undefined]> = [
    ['a third peer from one IP', ['192.0.2.7', '192.0.2.7'], '192.0.2.7', {}, 'TOO_MANY_FROM_IP'],
    ['a fifth peer from one /24', ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'], '192.0.2.5', {}, 'TOO_MANY_FROM_GROUP'],
    ['a fifth peer from one /48', ['2001:db8:1:1::1', '2001:db8:1:2::1', '2001:db8:1:3::1', '2001:db8:1:4::1'], '2001:db8:1:ff::9', {}, 'TOO_MANY_FROM_GROUP'],
    ['a peer from the next /24', ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'], '192.0.3.1', {}, undefined],
    ['a third loopback peer with loopback allowlisted', ['127.0.0.1', '127.0.0.1'], '127.0.0.1', { admissionAllowlist: ['127.0.0.0/8'] }, undefined],
    ['a third peer from an allowlisted single address', ['198.51.100.9', '198.51.100.9'], '198.51.100.9', { admissionAllowlist: ['198.51.100.9'] }, undefined],
    ['a third peer from ::1 with ::1 allowlisted', ['::1', '::1'], '::1', { admissionAllowlist: ['::1'] }, undefined],
  ];
  for (const [what, earlier, ip, o, refusal] of limitCases) {
    it(`${refusal ? 'refuses' : 'admits'} ${what}`, () => {
      const a = make(o);
      earlier.forEach((e, i) => expect(connect(a, i + 1, e).accept).to.equal(true));
      const v = a.admit({ id: id(99), ip, outbound: false });
      expect(v).to.deep.equal(refusal ? { accept: false, reason: refusal } : { accept: true });
    });
  }

  it('caps pending handshakes in total and per IP, except allowlisted IPs per IP, and frees them', () => {
    const a = make({ maxPendingHandshakes: 5, maxPendingPerIp: 2, admissionAllowlist: ['127.0.0.0/8'] });
    expect([a.openPending('192.0.2.1'), a.openPending('192.0.2.1'), a.openPending('192.0.2.1')]).to.deep.equal(['ok', 'ok', 'too_many_pending_from_ip']);
    expect([a.openPending('127.0.0.1'), a.openPending('127.0.0.1'), a.openPending('127.0.0.1')]).to.deep.equal(['ok', 'ok', 'ok']);
    expect(a.openPending('192.0.2.9')).to.equal('too_many_pending');
    a.closePending('192.0.2.1');
    expect(a.counts().pending).to.equal(4);
    expect(a.openPending('192.0.2.1')).to.equal('ok');
    a.closePending('203.0.113.1'); // never opened: ignored
    expect(a.counts().pending).to.equal(5);
  });

  it('admits members always, outside the counts, and refuses non-members with onlyMembers', () => {
    const a = make({ maxInboundPeers: 0, members: [MEMBER], onlyMembers: true });
    expect(a.admit({ id: MEMBER, ip: '192.0.2.1', outbound: false })).to.deep.equal({ accept: true });
    a.added({ id: MEMBER, ip: '192.0.2.1', outbound: false });
    expect(a.counts()).to.include({ inbound: 0, members: 1 });
    expect(a.admit({ id: id(1), ip: '192.0.2.2', outbound: true })).to.deep.equal({ accept: false, reason: 'NOT_MEMBER' });
  });

  describe('eviction when inbound is full', () => {
    /** 20 inbound peers in 20 different /24s, connected one second apart. */
    function full(o: AdmissionOptions = {}): Admission {
      const a = make({ maxInboundPeers: 20, minEvictionAgeMs: 60_000, ...o });
      for (let i = 1; i <= 20; i++) {
        connect(a, i, `10.${i}.0.1`);
        clock.tick(1000);
      }
      return a;
    }

    it('never evicts a peer younger than minEvictionAgeMs: the newcomer is refused instead', () => {
      const a = full();
      expect(a.admit({ id: id(100), ip: '172.16.0.1', outbound: false })).to.deep.equal({ accept: false, reason: 'TOO_MANY_PEERS' });
    });

    it('evicts the youngest peer of the most represented address group, once peers are old enough', () => {
      const a = make({ maxInboundPeers: 20, minEvictionAgeMs: 60_000 });
      for (let i = 1; i <= 17; i++) {
        connect(a, i, `10.${i}.0.1`);
        clock.tick(1000);
      }
      // Three from one /24, arriving last: the attacker's group.
      for (let i = 18; i <= 20; i++) {
        connect(a, i, `172.16.9.${i}`);
        clock.tick(1000);
      }
      clock.tick(60_000);
      const v = a.admit({ id: id(100), ip: '172.20.0.1', outbound: false });
      expect(v).to.deep.equal({ accept: true, evict: id(20) });
    });

    it('protects the lowest latencies and the most useful, and evicts from the most represented group only', () => {
      const a = make({ maxInboundPeers: 20, minEvictionAgeMs: 60_000 });
      // Eight old peers in eight /24s, then twelve from one /24 (ids 9..20), one second apart.
      for (let i = 1; i <= 20; i++) {
        connect(a, i, i <= 8 ? `10.${i}.0.1` : `172.16.9.${i}`);
        clock.tick(1000);
      }
      clock.tick(60_000);
      for (let i = 13; i <= 20; i++) rtt.set(id(i), 1);
      usefulness.set(id(10), 5);
      usefulness.set(id(11), 5);
      // The crowded group's youngest without a protection is 12.
      expect(a.selectEviction()).to.equal(id(12));
      usefulness.set(id(12), 5);
      // Left unprotected in the crowded group: at most 9 (unless the salted group pick took it).
      expect([id(9), undefined]).to.include(a.selectEviction());
      // Never one of the old peers of the other groups, whatever their latency.
    });

    it('lets no fresh flood from one /24 evict established peers of other groups', () => {
      const a = make({ maxInboundPeers: 12, minEvictionAgeMs: 60_000 });
      for (let i = 1; i <= 8; i++) connect(a, i, `10.${i}.0.1`);
      clock.tick(120_000);
      const out = Array.from({ length: 10 }, (_, i) => connect(a, 100 + i, `198.51.100.${i + 1}`));
      // Four fit (per-group cap and free slots), then the flood's own group is the most
      // represented and has no peer old enough: refused.
      expect(out.filter((v) => v.accept && !v.evict)).to.have.length(4);
      expect(out.some((v) => v.accept && v.evict)).to.equal(false);
    });

    it('never evicts members or outbound peers', () => {
      const a = make({ maxInboundPeers: 1, minEvictionAgeMs: 0, members: [MEMBER] });
      a.added({ id: MEMBER, ip: '10.0.0.1', outbound: false });
      connect(a, 1, '10.0.1.1', true);
      connect(a, 2, '10.0.2.1');
      // Only peer 2 is a candidate but it is group-protected (fewer than four groups): nobody to evict.
      expect(a.selectEviction()).to.equal(undefined);
    });

    it('lets 30 fresh identities from one /24 take no established slot', () => {
      const a = full();
      clock.tick(120_000);
      let evicted = 0;
      for (let i = 0; i < 30; i++) {
        const v = connect(a, 200 + i, `198.51.100.${i + 1}`);
        if (v.accept && v.evict) evicted++;
      }
      // Per-group cap: 4 get in (evicting at most 4 established peers), the rest are refused.
      expect(evicted).to.be.at.most(4);
      expect(a.counts().inbound).to.equal(20);
    });
  });

  it('validates options, naming the field', () => {
    const cases: Array<[AdmissionOptions, string]> = [
      [{ maxInboundPeers: -1 }, 'maxInboundPeers'],
      [{ maxInboundPerIp: 0 }, 'maxInboundPerIp'],
      [{ admissionAllowlist: ['10.0.0.0/33'] }, 'admissionAllowlist[0]'],
      [{ admissionAllowlist: ['not a cidr'] }, 'admissionAllowlist[0]'],
      [{ members: ['xyz'] }, 'members[0]'],
      [{ onlyMembers: true }, 'onlyMembers'],
    ];
    for (const [o, field] of cases) {
      expect(() => resolveAdmissionOptions(o)).to.throw(InvalidOptionError).with.property('field', field);
    }
  });

  it('orders outbound candidates one per new address group first, keeping the given order within each pass', () => {
    const hosts = ['10.0.1.1', '10.0.1.2', '10.0.2.1', '10.0.3.1', '10.0.2.2', '2001:db8:1::1'].map((host) => ({ host }));
    const taken = new Set(['v4:10.0.3.0/24']);
    expect(preferDiverse(hosts, taken).map((c) => c.host)).to.deep.equal(['10.0.1.1', '10.0.2.1', '2001:db8:1::1', '10.0.1.2', '10.0.3.1', '10.0.2.2']);
    const a = make();
    connect(a, 1, '10.0.3.9', true);
    connect(a, 2, '10.0.4.9');
    expect([...a.outboundGroups()]).to.deep.equal(['v4:10.0.3.0/24']);
  });

  it('matches allowlist CIDRs, single addresses, IPv4-mapped IPv6 and host names', () => {
    const l = new AddressAllowlist(['127.0.0.0/8', '::1', '10.1.0.0/16', 'fd00::/8', 'localhost']);
    const table: Array<[string, boolean]> = [
      ['127.0.5.1', true], ['::ffff:127.0.0.1', true], ['::1', true], ['10.1.200.3', true], ['10.2.0.1', false],
      ['fd12:3456::1', true], ['fe80::1', false], ['localhost', true], ['192.0.2.1', false],
    ];
    for (const [h, want] of table) expect(l.has(h), h).to.equal(want);
  });

  describe('network options', () => {
    it('default to an Internet node: no allowlist, even on loopback (a testbed opts out explicitly), 40 in / 10 out, maxPeers their sum', () => {
      expect(resolveOptions({})).to.include({ maxInboundPeers: 40, maxOutboundPeers: 10, maxPeers: 50, maxInboundPerIp: 2, maxInboundPerGroup: 4, maxPendingHandshakes: 64, maxPendingPerIp: 4, minEvictionAgeMs: 10_000, onlyMembers: false, maxKnownPeers: 1000, provenAfterMs: 120_000, maxUnprovenDials: 3, minRedialIntervalMs: 1000 });
      expect(resolveOptions({ listenHost: '0.0.0.0' }).admissionAllowlist).to.deep.equal([]);
      expect(resolveOptions({ listenHost: '192.0.2.1' }).admissionAllowlist).to.deep.equal([]);
      // On loopback too: a local reverse proxy would make every peer 127.0.0.1.
      expect(resolveOptions({}).admissionAllowlist).to.deep.equal([]);
      expect(resolveOptions({ listenHost: '::1', admissionAllowlist: ['127.0.0.0/8', '::1'] }).admissionAllowlist).to.deep.equal(['127.0.0.0/8', '::1']);
    });

    it('raise the inbound share with a larger maxPeers, and keep it for a smaller one', () => {
      expect(resolveOptions({ maxPeers: 200 })).to.include({ maxInboundPeers: 190, maxPeers: 200 });
      expect(resolveOptions({ maxPeers: 2, minPeers: 1 })).to.include({ maxInboundPeers: 40, maxPeers: 2 });
    });

    it('parse members as "id" or "id@host:port", naming a bad entry', () => {
      const r = resolveOptions({ members: [MEMBER, `${id(1)}@127.0.0.1:4000`] });
      expect(r.members).to.deep.equal([{ id: MEMBER, host: '', port: 0 }, { id: id(1), host: '127.0.0.1', port: 4000 }]);
      expect(() => resolveOptions({ members: [`${id(1)}@nowhere`] })).to.throw(InvalidOptionError).with.property('field', 'members[0]');
      expect(() => resolveOptions({ onlyMembers: true })).to.throw(InvalidOptionError).with.property('field', 'onlyMembers');
      expect(() => resolveOptions({ admissionAllowlist: ['127.0.0.0/40'] })).to.throw(InvalidOptionError).with.property('field', 'admissionAllowlist[0]');
    });
  });
});
