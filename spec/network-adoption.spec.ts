import { expect } from 'chai';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { InvalidOptionError, P2PError } from '../lib/errors.js';
import { P2PNetwork } from '../lib/network.js';
import type { DialFailure, DisconnectDetail } from '../lib/network.js';
import { addrOf, useNodes } from './helpers/nodes.js';

/** A pino logger whose lines land in `lines` (parsed), synchronously. */
function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function rejection(p: Promise<unknown>): Promise<P2PError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    return err as P2PError;
  }
  throw new Error('expected a rejection');
}

const WARN = 40;
const INFO = 30;

describe('P2PNetwork for a new user: visible failures, typed errors', () => {
  const nodes = useNodes({ heartbeatMs: 50, retry: { initialDelayMs: 10_000 } });

  describe('dial failures and bootstrap', () => {
    it('reports a refused bootstrap address in start(), as a peer:dial-failed event and as a warning', async () => {
      const port = await closedPort();
      const { logger, lines } = captureLogger();
      const n = new P2PNetwork({ bootstrap: [`127.0.0.1:${port}`], logger, retry: { initialDelayMs: 10_000 } });
      nodes.all.push(n);
      const failures: DialFailure[] = [];
      n.on('peer:dial-failed', (f) => failures.push(f));
      const r = await n.start();
      expect(r.address.port).to.equal(n.address.port);
      expect(r.bootstrap.total).to.equal(1);
      expect(r.bootstrap.answered).to.equal(0);
      expect(r.bootstrap.failures[0]).to.include({ address: `127.0.0.1:${port}`, code: 'CONNECTION_CLOSED', syscallCode: 'ECONNREFUSED' });
      expect(failures).to.have.length(1);
      expect(failures[0]!.reason).to.match(/refused.*\(ECONNREFUSED\)/);
      const dialLine = lines.find((l) => l.msg === 'dial failed');
      expect(dialLine, 'an info line for the dial').to.include({ level: INFO, component: 'transport', address: `127.0.0.1:${port}` });
      const warn = lines.find((l) => l.level === WARN && String(l.msg).startsWith('no bootstrap address answered'));
      expect(warn, 'a warning that no bootstrap address answered').to.not.equal(undefined);
      expect(n.metrics().dialFailuresByCode).to.deep.equal({ CONNECTION_CLOSED: 1 });
    });

    it('counts the bootstrap addresses that answered', async () => {
      const a = await nodes.start();
      const port = await closedPort();
      const b = new P2PNetwork({ bootstrap: [addrOf(a), `127.0.0.1:${port}`], requireBootstrap: true });
      nodes.all.push(b);
      const r = await b.start();
      expect(r.bootstrap).to.include({ total: 2, answered: 1 });
    });

    it('rejects start() with BOOTSTRAP_FAILED under requireBootstrap when none answered, and stops the node', async () => {
      const port = await closedPort();
      const n = new P2PNetwork({ bootstrap: [`127.0.0.1:${port}`], requireBootstrap: true });
      nodes.all.push(n);
      const err = await rejection(n.start());
      expect(err.code).to.equal('BOOTSTRAP_FAILED');
      expect(err.message).to.include(`127.0.0.1:${port}`);
      await n.stop();
      expect((await rejection(n.start())).code).to.equal('STOPPED');
    });

    it('starts alone under requireBootstrap when the bootstrap list is empty', async () => {
      const n = await nodes.start({ requireBootstrap: true });
      expect(n.peers()).to.deep.equal([]);
    });

    it('warns when a peer refuses the handshake, naming the address and the code', async () => {
      const a = await nodes.start({ networkId: 'one' });
      const { logger, lines } = captureLogger();
      const b = await nodes.start({ networkId: 'two', logger });
      const failed = once(b, 'peer:dial-failed') as Promise<[DialFailure]>;
      const err = await rejection(b.addPeer(addrOf(a)));
      const [f] = await failed;
      expect(f.code).to.equal(err.code);
      expect(f.code).to.equal('NETWORK_MISMATCH');
      expect(f.address).to.equal(addrOf(a));
      expect(lines.find((l) => l.msg === 'dial failed: handshake refused')).to.include({ level: WARN, code: 'NETWORK_MISMATCH' });
    });

    it('warns when it listens on every interface but advertises the loopback default', async () => {
      const { logger, lines } = captureLogger();
      await nodes.start({ listenHost: '0.0.0.0', logger });
      const warn = lines.find((l) => l.level === WARN && /advertis/.test(String(l.msg)));
      expect(warn).to.include({ advertiseHost: '127.0.0.1' });
    });

    it('does not warn when the advertised host was chosen', async () => {
      const { logger, lines } = captureLogger();
      await nodes.start({ listenHost: '0.0.0.0', advertiseHost: '127.0.0.1', logger });
      expect(lines.filter((l) => l.level === WARN)).to.deep.equal([]);
    });

    it('warns when the advertised host is a wildcard', async () => {
      const { logger, lines } = captureLogger();
      await nodes.start({ advertiseHost: '0.0.0.0', logger });
      expect(lines.some((l) => l.level === WARN && /wildcard/.test(String(l.msg)))).to.equal(true);
    });
  });

  describe('errors', () => {
    it('rejects start() on a port in use with LISTEN_FAILED, saying EADDRINUSE once', async () => {
      const a = await nodes.start();
      const b = new P2PNetwork({ listenPort: a.address.port });
      nodes.all.push(b);
      const err = await rejection(b.start());
      expect(err.code).to.equal('LISTEN_FAILED');
      expect(err.syscallCode).to.equal('EADDRINUSE');
      expect(err.message).to.equal(`cannot listen on 127.0.0.1:${a.address.port}: the port is already in use (EADDRINUSE)`);
    });

    it('names an unknown option key', () => {
      const make = () => new P2PNetwork({ bootstraps: ['127.0.0.1:1'] } as never);
      expect(make).to.throw(InvalidOptionError).with.property('field', 'bootstraps');
    });

    it('refuses a logger without child() (console) with INVALID_OPTION naming what is missing', () => {
      const make = () => new P2PNetwork({ logger: console as never });
      expect(make).to.throw(InvalidOptionError, /missing child/).with.property('field', 'logger');
    });

    it('gives peer:disconnect a stable code and who ended it', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      const onA = once(a, 'peer:disconnect') as Promise<[unknown, string, DisconnectDetail]>;
      await b.stop();
      const [, reason, detail] = await onA;
      expect(detail).to.deep.equal({ code: 'NORMAL', byPeer: true });
      expect(reason).to.be.a('string');
    });

    it('says CONNECTION_LOST when the peer vanished without a GOODBYE', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      const onA = once(a, 'peer:disconnect') as Promise<[unknown, string, DisconnectDetail]>;
      // What a crash looks like from outside: every socket of b reset, no GOODBYE.
      for (const s of (b as unknown as { transport: { sockets: Set<import('node:net').Socket> } }).transport.sockets) s.resetAndDestroy();
      const [, , detail] = await onA;
      expect(detail).to.deep.equal({ code: 'CONNECTION_LOST', byPeer: true });
    });

    it('emits handler:error with the topic and the error', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      const boom = new Error('boom');
      b.subscribe('t', () => {
        throw boom;
      });
      const failed = once(b, 'handler:error');
      await a.sendToPeer(b.id, 't', 1);
      expect(await failed).to.deep.equal(['t', boom]);
    });
  });

  describe('sendToPeer limits', () => {
    const unknownId = 'ab'.repeat(32);

    it('rejects with TIMEOUT after timeoutMs when the peer cannot be found, and counts it', async () => {
      const a = await nodes.start();
      await nodes.start({ bootstrap: [addrOf(a)] });
      const t0 = Date.now();
      const err = await rejection(a.sendToPeer(unknownId, 't', 1, { timeoutMs: 150 }));
      expect(err.code).to.equal('TIMEOUT');
      expect(Date.now() - t0).to.be.below(3000);
      expect(a.metrics().droppedByReason).to.include({ send_timeout: 1 });
    });

    it('rejects with ABORTED when the signal fires, with the signal reason as cause', async () => {
      const a = await nodes.start();
      const ctl = new AbortController();
      const p = a.sendToPeer(unknownId, 't', 1, { signal: ctl.signal });
      ctl.abort('user gave up');
      const err = await rejection(p);
      expect(err.code).to.equal('ABORTED');
      expect(err.cause).to.equal('user gave up');
      expect(a.metrics().droppedByReason).to.include({ send_aborted: 1 });
    });

    it('rejects at once with ABORTED when the signal has already fired', async () => {
      const a = await nodes.start();
      const err = await rejection(a.sendToPeer(unknownId, 't', 1, { signal: AbortSignal.abort() }));
      expect(err.code).to.equal('ABORTED');
    });

    it('rejects a bad timeoutMs or signal as INVALID_ARGUMENT', async () => {
      const a = await nodes.start();
      expect((await rejection(a.sendToPeer(unknownId, 't', 1, { timeoutMs: 0 }))).code).to.equal('INVALID_ARGUMENT');
      expect((await rejection(a.sendToPeer(unknownId, 't', 1, { signal: {} as AbortSignal }))).code).to.equal('INVALID_ARGUMENT');
    });

    it('tells the sender NO_HANDLER for a topic the receiver does not subscribe to, and counts it there as no_subscriber', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      expect((await rejection(a.sendToPeer(b.id, 'nobody-listens', 1))).code).to.equal('NO_HANDLER');
      expect(b.metrics().droppedByReason).to.deep.equal({ no_subscriber: 1 });
    });

    it('still resolves within timeoutMs when the ACK comes back, leaving no timer behind', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      const got = new Promise((resolve) => b.subscribe('t', resolve));
      await a.sendToPeer(b.id, 't', 'hi', { timeoutMs: 5000, signal: new AbortController().signal });
      expect(await got).to.equal('hi');
      expect(a.metrics().droppedByReason).to.deep.equal({});
    });
  });
});
