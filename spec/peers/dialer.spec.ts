import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { pino } from 'pino';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { P2PError } from '../../lib/errors.js';
import { Dialer, dialFailure } from '../../lib/peers/dialer.js';
import type { DialFailure } from '../../lib/peers/dialer.js';
import type { CloseInfo, Connection, ConnectionEvents } from '../../lib/transport/connection.js';
import { GoodbyeCode } from '../../lib/wire/messages.js';

const ID_B = 'bb'.repeat(32);

/** A dialed connection whose handshake the test ends: open() or close(). */
class FakeDialedConn extends EventEmitter<ConnectionEvents> {
  readonly outbound = true;
  peerIdHex = '';
  open(id: string): void {
    this.peerIdHex = id;
    this.emit('open');
  }
  end(info: CloseInfo): void {
    this.emit('close', info);
  }
}

describe('Dialer', () => {
  let clock: sinon.SinonFakeTimers;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    clock.restore();
  });

  function setup(over: { accepting?: boolean; whenConnected?: (id: string) => Promise<void> } = {}) {
    const dialed: Array<{ host: string; port: number; conn: FakeDialedConn }> = [];
    const failures: DialFailure[] = [];
    const proven: string[] = [];
    const counted: string[] = [];
    let refuseWith: Error | undefined;
    const dialer = new Dialer(
      systemClock,
      { dialTimeoutMs: 1000, handshakeTimeoutMs: 500, maxUnprovenDials: 3, minRedialIntervalMs: 1000 },
      { dialFailed: (code) => void counted.push(code) },
      pino({ level: 'silent' }),
      {
        accepting: () => over.accepting ?? true,
        dial: async (host, port) => {
          if (refuseWith) throw refuseWith;
          const conn = new FakeDialedConn();
          dialed.push({ host, port, conn });
          return conn as unknown as Connection;
        },
        adopt: () => {},
        whenConnected: over.whenConnected ?? (() => Promise.reject(new P2PError('TIMEOUT', 'not connected'))),
        proveAddress: (id, host, port) => void proven.push(`${id.slice(0, 2)}@${host}:${port}`),
        failed: (f) => void failures.push(f),
      },
    );
    return { dialer, dialed, failures, proven, counted, refuse: (err: Error | undefined) => void (refuseWith = err) };
  }

  it('shares one dial among concurrent connects to one address, and proves the address with the id the handshake showed', async () => {
    const { dialer, dialed, proven } = setup();
    const first = dialer.connect('10.0.0.2', 7002);
    const second = dialer.connect('10.0.0.2', 7002, 'learned', ID_B);
    await clock.tickAsync(0);
    expect(dialed).to.have.length(1);
    dialed[0]!.conn.open(ID_B);
    expect(await first).to.equal(ID_B);
    expect(await second).to.equal(ID_B);
    expect(proven).to.deep.equal(['bb@10.0.0.2:7002']);
    expect(dialer.attempts('10.0.0.2', 7002)).to.equal(1);
  });

  it('refuses a learned address within minRedialIntervalMs of its failure without dialing, but not a trusted one', async () => {
    const { dialer, dialed, refuse } = setup();
    refuse(new P2PError('CONNECTION_CLOSED', 'refused'));
    await dialer.connect('10.0.0.3', 7003, 'learned').catch(() => {});
    refuse(undefined);
    const err = await dialer.connect('10.0.0.3', 7003, 'learned').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(P2PError).with.property('code', 'NOT_CONNECTED');
    expect((err as Error).message).to.include('too_soon');
    expect(dialed).to.have.length(0);
    expect(dialer.refused()).to.have.property('too_soon', 1);

    dialer.trust('10.0.0.3', 7003);
    void dialer.connect('10.0.0.3', 7003, 'learned').catch(() => {});
    await clock.tickAsync(0);
    expect(dialed).to.have.length(1);
  });

  it('reports a failed dial once, counted by code, and says nothing of one cut short by stop()', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.4:7004'), { cause: { code: 'ECONNREFUSED' } });
    const a = setup();
    a.refuse(refused);
    await a.dialer.connect('10.0.0.4', 7004).catch(() => {});
    expect(a.failures.map((f) => [f.address, f.code, f.syscallCode])).to.deep.equal([['10.0.0.4:7004', 'CONNECTION_CLOSED', 'ECONNREFUSED']]);
    expect(a.counted).to.deep.equal(['CONNECTION_CLOSED']);

    const b = setup({ accepting: false });
    const err = await b.dialer.connect('10.0.0.4', 7004).catch((e: unknown) => e);
    expect(err).to.have.property('code', 'STOPPED');
    expect(b.failures).to.deep.equal([]);
    expect(b.counted).to.deep.equal([]);
  });

  describe('a dial that loses the duplicate-connection race', () => {
    const lost = (): CloseInfo => ({
      code: GoodbyeCode.DUPLICATE_CONNECTION, reason: 'duplicate connection', byPeer: true, goodbye: true,
      error: new P2PError('DUPLICATE_CONNECTION', 'duplicate connection'),
    });

    it('resolves with the peer id once the surviving connection is open, and is not reported as a failure', async () => {
      const waited: string[] = [];
      const { dialer, dialed, failures } = setup({ whenConnected: async (id) => void waited.push(id) });
      const p = dialer.connect('10.0.0.5', 7005);
      await clock.tickAsync(0);
      dialed[0]!.conn.peerIdHex = ID_B;
      dialed[0]!.conn.end(lost());
      expect(await p).to.equal(ID_B);
      expect(waited).to.deep.equal([ID_B]);
      expect(failures).to.deep.equal([]);
    });

    it('rejects with the duplicate error when no connection to the peer opens', async () => {
      const { dialer, dialed, failures } = setup();
      const p = dialer.connect('10.0.0.5', 7005).catch((e: unknown) => e);
      await clock.tickAsync(0);
      dialed[0]!.conn.peerIdHex = ID_B;
      dialed[0]!.conn.end(lost());
      expect(await p).to.have.property('code', 'DUPLICATE_CONNECTION');
      expect(failures).to.deep.equal([]);
    });
  });
});

describe('dialFailure', () => {
  const table: Array<[string, unknown, { code: string; reason: string; syscallCode?: string }]> = [
    ['a socket error, in plain words', Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { cause: { code: 'ENOTFOUND' } }),
      { code: 'CONNECTION_CLOSED', reason: 'host name not found (ENOTFOUND)', syscallCode: 'ENOTFOUND' }],
    ['an unknown socket error', Object.assign(new Error('x'), { cause: { code: 'EWHATEVER' } }),
      { code: 'CONNECTION_CLOSED', reason: 'socket error (EWHATEVER)', syscallCode: 'EWHATEVER' }],
    ['a handshake refusal, with its code and reason', new P2PError('NETWORK_MISMATCH', 'peer is on network "other"'),
      { code: 'NETWORK_MISMATCH', reason: 'peer is on network "other"' }],
    ['something that is not an Error', 'gone', { code: 'CONNECTION_CLOSED', reason: 'gone' }],
  ];
  for (const [what, err, want] of table) {
    it(`describes ${what}`, () => {
      const f = dialFailure('10.0.0.9', 7009, err);
      expect(f).to.deep.equal({ address: '10.0.0.9:7009', host: '10.0.0.9', port: 7009, ...want });
    });
  }

  it('brackets an IPv6 host in the address', () => {
    expect(dialFailure('::1', 7000, new Error('x')).address).to.equal('[::1]:7000');
  });
});
