import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import sinon from 'sinon';
import { systemClock } from '../../lib/clock.js';
import { P2PError } from '../../lib/errors.js';
import { PartitionMonitor } from '../../lib/health/partition-monitor.js';
import { resolveOptions } from '../../lib/options.js';
import type { P2PNetworkOptions } from '../../lib/options.js';
import { PeerRegistry } from '../../lib/peers/peer-registry.js';
import type { PeerEvents } from '../../lib/peers/peer-registry.js';
import { BackoffScheduler } from '../../lib/retry/backoff.js';
import type { CloseInfo, Connection, ConnectionEvents } from '../../lib/transport/connection.js';
import { GoodbyeCode } from '../../lib/wire/messages.js';

// Ids by their first byte; this node's is the highest, so a peer's dial wins a duplicate race.
const SELF = 'ff'.repeat(32);
const ID_B = 'bb'.repeat(32);
const ID_C = 'cc'.repeat(32);
const ID_M = 'aa'.repeat(32);

/** A connection whose handshake and end the test decides. */
class FakeConn extends EventEmitter<ConnectionEvents> {
  peerIdHex = '';
  peerId: Buffer | undefined;
  peerListenHost = '';
  peerListenPort = 0;
  lastContact = 0;
  rttMs: number | undefined;
  private ended = false;
  constructor(readonly outbound: boolean, readonly socket: { remoteAddress: string; remotePort: number }) {
    super();
  }
  /** The handshake showed `id`, listening on `listenPort`. */
  open(id: string, listenPort: number): void {
    this.peerId = Buffer.from(id, 'hex');
    this.peerIdHex = id;
    this.peerListenHost = this.socket.remoteAddress;
    this.peerListenPort = listenPort;
    this.lastContact = Date.now();
    this.emit('open');
  }
  /** This node closes it (as Connection.close does). */
  close(code: number, reason: string, error?: P2PError): void {
    this.end({ code, reason, byPeer: false, ...(error ? { error } : {}) });
  }
  /** The peer vanished: reset, no GOODBYE. */
  drop(): void {
    this.end({ code: GoodbyeCode.NORMAL, reason: 'connection reset', byPeer: true, goodbye: false });
  }
  /** The peer said GOODBYE. */
  goodbye(code: number): void {
    this.end({ code, reason: 'bye', byPeer: true, goodbye: true });
  }
  send(): boolean {
    return true;
  }
  sendEncoded(): boolean {
    return true;
  }
  private end(info: CloseInfo): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('close', info);
  }
}

describe('PeerRegistry', () => {
  let clock: sinon.SinonFakeTimers;
  let t0: number;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 2_000_000 });
    t0 = Date.now();
  });

  afterEach(() => {
    clock.restore();
  });

  /**
   * A registry over fake connections. `answers` says who answers at 'host:port' (absent: the
   * dial is refused); a dialed connection's handshake ends 1 ms after the dial, with `script`
   * when one is set for the address, else by opening as that id.
   */
  function setup(options: P2PNetworkOptions = {}) {
    const opts = resolveOptions({
      retry: { initialDelayMs: 100, maxDelayMs: 400, multiplier: 2, maxRetries: 2, jitter: 'none' },
      reconnectForMs: 2000,
      minRedialIntervalMs: 0,
      ...options,
    });
    const silent = pino({ level: 'silent' });
    const answers = new Map<string, string>();
    const script = new Map<string, (conn: FakeConn) => void>();
    const dials: string[] = [];
    const conns = new Map<string, FakeConn>();
    const events: string[] = [];
    const registry = new PeerRegistry(systemClock, opts, {
      monitor: new PartitionMonitor(systemClock, { partitionTimeoutMs: opts.partitionTimeoutMs }),
      retry: new BackoffScheduler(systemClock),
      sanctions: { refuseBanned: () => false, connected: () => {} },
      usefulness: () => 0,
      metrics: { dialFailed: () => {} },
      logs: { p2p: silent, transport: silent, health: silent, dht: silent },
    }, {
      selfId: SELF,
      accepting: () => true,
      running: () => true,
      dial: async (host, port) => {
        const address = `${host}:${port}`;
        dials.push(`${Date.now() - t0} ${address}`);
        const id = answers.get(address);
        if (id === undefined) throw new P2PError('CONNECTION_CLOSED', 'connection refused');
        const conn = new FakeConn(true, { remoteAddress: host, remotePort: port });
        conns.set(id, conn);
        setTimeout(() => (script.get(address) ?? ((c: FakeConn) => c.open(id, port)))(conn), 1);
        return conn as unknown as Connection;
      },
      message: () => {},
      connected: () => {},
      peerSeen: () => {},
      rejoined: () => void events.push('rejoined'),
      emit: <K extends keyof PeerEvents>(event: K, ...args: PeerEvents[K]) => {
        const first = args[0];
        events.push('id' in first ? `${event} ${first.id.slice(0, 2)}` : event);
      },
    });
    /** An inbound connection from `ip`, accepted and adopted as the transport would. */
    const inbound = (ip: string): FakeConn => {
      const conn = new FakeConn(false, { remoteAddress: ip, remotePort: 50_000 });
      expect(registry.acceptSocket(conn.socket as unknown as Socket)).to.equal(true);
      registry.adopt(conn as unknown as Connection);
      return conn;
    };
    const dialsTo = (address: string) => dials.filter((d) => d.endsWith(` ${address}`)).map((d) => Number(d.split(' ')[0]));
    return { registry, answers, script, dials, dialsTo, conns, events, inbound };
  }

  async function connected(r: ReturnType<typeof setup>, host: string, port: number): Promise<void> {
    const p = r.registry.connect(host, port);
    await clock.tickAsync(1);
    await p;
  }

  it('redials a peer lost without a GOODBYE at the address it dialed, with backoff, until it answers', async () => {
    const r = setup();
    r.answers.set('10.0.0.2:7002', ID_B);
    await connected(r, '10.0.0.2', 7002);
    r.answers.delete('10.0.0.2:7002');
    const lostAt = Date.now() - t0;
    r.conns.get(ID_B)!.drop();
    expect(r.events).to.deep.equal(['peer:connect bb', 'peer:disconnect bb']);
    expect(r.registry.stats().reconnecting).to.equal(1);

    await clock.tickAsync(250);
    r.answers.set('10.0.0.2:7002', ID_B);
    await clock.tickAsync(200);
    // The first redial after initialDelayMs, then the fast retries (100, 200 ms later).
    expect(r.dialsTo('10.0.0.2:7002').map((t) => t - lostAt)).to.deep.equal([-1, 100, 200, 400]);
    expect(r.events.at(-1)).to.equal('peer:connect bb');
    expect(r.registry.stats().reconnecting).to.equal(0);
    expect(r.registry.info(ID_B)).to.include({ host: '10.0.0.2', port: 7002, state: 'connected' });
    expect(clock.countTimers()).to.equal(0);
  });

  it('redials a member that left with a GOODBYE past reconnectForMs, and gives up on another lost peer after it', async () => {
    const r = setup({ members: [`${ID_M}@10.0.0.3:7003`] });
    r.answers.set('10.0.0.3:7003', ID_M);
    r.answers.set('10.0.0.2:7002', ID_B);
    await connected(r, '10.0.0.3', 7003);
    await connected(r, '10.0.0.2', 7002);
    r.answers.clear();
    r.conns.get(ID_M)!.goodbye(GoodbyeCode.NORMAL);
    r.conns.get(ID_B)!.drop();
    expect(r.registry.stats().reconnecting).to.equal(2);

    await clock.tickAsync(10_000);
    expect(r.registry.stats().reconnecting, 'only the member is still redialed').to.equal(1);
    const last = (a: string) => r.dialsTo(a).at(-1)! - r.dialsTo(a)[1]!;
    expect(last('10.0.0.2:7002')).to.be.at.most(2000);
    expect(last('10.0.0.3:7003')).to.be.above(9000);

    r.answers.set('10.0.0.3:7003', ID_M);
    await clock.tickAsync(401);
    expect(r.registry.info(ID_M)?.state).to.equal('connected');
    expect(r.registry.stats().reconnecting).to.equal(0);
    expect(clock.countTimers()).to.equal(0);
  });

  it('forgets an inbound peer that proved nothing as soon as it leaves, and never dials it', async () => {
    const r = setup();
    const conn = r.inbound('10.0.0.7');
    conn.open(ID_C, 7007);
    expect(r.registry.peers().map((p) => [p.id.slice(0, 2), p.port])).to.deep.equal([['cc', 7007]]);
    expect(r.registry.stats()).to.include({ inbound: 1, pending: 0 });

    conn.drop();
    expect(r.events).to.deep.equal(['peer:connect cc', 'peer:disconnect cc']);
    expect(r.registry.peers()).to.deep.equal([]);
    await clock.tickAsync(10_000);
    expect(r.dials).to.deep.equal([]);
    expect(r.registry.stats()).to.include({ inbound: 0, reconnecting: 0 });
  });

  describe('a dial whose connection the peer closed as a duplicate', () => {
    const closedAsDuplicate = (conn: FakeConn) => {
      conn.peerIdHex = ID_B;
      conn.goodbye(GoodbyeCode.DUPLICATE_CONNECTION);
    };

    it('resolves with the peer id when the peer\'s own connection to us opens', async () => {
      const r = setup();
      r.answers.set('10.0.0.2:7002', ID_B);
      r.script.set('10.0.0.2:7002', closedAsDuplicate);
      const p = r.registry.connect('10.0.0.2', 7002);
      await clock.tickAsync(1);
      await clock.tickAsync(50);
      r.inbound('10.0.0.2').open(ID_B, 7002);
      expect(await p).to.equal(ID_B);
      expect(r.events).to.deep.equal(['peer:connect bb']);
      expect(clock.countTimers()).to.equal(0);
    });

    it('rejects after handshakeTimeoutMs when no connection to the peer opens, leaving no timer', async () => {
      const r = setup({ handshakeTimeoutMs: 3000 });
      r.answers.set('10.0.0.2:7002', ID_B);
      r.script.set('10.0.0.2:7002', closedAsDuplicate);
      const p = r.registry.connect('10.0.0.2', 7002).catch((e: unknown) => e);
      await clock.tickAsync(1);
      await clock.tickAsync(2998);
      expect(r.events).to.deep.equal([]);
      await clock.tickAsync(2);
      expect(await p).to.be.instanceOf(P2PError).with.property('code', 'CONNECTION_CLOSED');
      expect(r.events).to.deep.equal(['peer:dial-failed']);
      expect(clock.countTimers()).to.equal(0);
    });
  });
});
