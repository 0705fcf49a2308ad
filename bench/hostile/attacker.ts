/**
 * What the attacks are made of. Authenticated attackers speak the protocol through the
 * conformance kit's WireClient, using only its public methods (open, handshake, send,
 * received, closed, destroy, socket), so they keep working when its internals move to the
 * Noise handshake. Pre-handshake attacks write raw bytes on plain sockets. Signed gossip is
 * built as lib/wire/messages.ts Gossip objects with lib/gossip/message-id.ts, so the bytes
 * follow the codec when the layout changes.
 */
import net from 'node:net';
import { WireClient } from '../../lib/conformance/wire-client.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { MessageType, GoodbyeCode } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';
import type { HandshakeOverrides } from '../../lib/conformance/wire-client.js';
import { fromAddress } from './addresses.js';

/** How long one attacker waits to connect or finish a handshake, ms. */
export const ATTACK_TIMEOUT_MS = 5000;

/** One authenticated (or trying to be) attacker identity and its connection. */
export class Attacker {
  /** Called for each message received, when pumped. */
  onMessage: ((m: Message) => void) | undefined;
  openedAt = 0;
  closedAt: number | undefined;

  private constructor(readonly client: WireClient, readonly identity: Identity, readonly local: string) {}

  /** Connect from `local` to the victim; rejects when the connection cannot be made. */
  static async open(victim: { host: string; port: number }, local: string, identity: Identity = generateIdentity()): Promise<Attacker> {
    const client = await fromAddress(local, () => WireClient.open(victim.host, victim.port, identity, ATTACK_TIMEOUT_MS));
    const a = new Attacker(client, identity, local);
    a.openedAt = Date.now();
    return a;
  }

  /**
   * Connect and complete the handshake; resolves with the attacker, or undefined when the
   * victim refused it (closed, timed out). `hello` overrides fields of our handshake (a claimed
   * listen address).
   */
  static async join(
    victim: { host: string; port: number },
    networkId: string,
    local: string,
    hello: HandshakeOverrides = {},
    identity: Identity = generateIdentity(),
  ): Promise<Attacker | undefined> {
    let a: Attacker;
    try {
      a = await Attacker.open(victim, local, identity);
    } catch {
      return undefined;
    }
    try {
      await a.client.handshake(networkId, ATTACK_TIMEOUT_MS, hello);
      return a;
    } catch {
      a.destroy();
      return undefined;
    }
  }

  get closed(): boolean {
    return this.client.closed;
  }

  /** Bytes written by the victim and read by us, whole session. */
  get bytesIn(): number {
    return this.client.socket.bytesRead;
  }
  get bytesOut(): number {
    return this.client.socket.bytesWritten;
  }
  /** Bytes we queued that the kernel has not taken yet: the attacker's own backpressure. */
  get backlog(): number {
    return this.client.socket.writableLength;
  }

  send(m: Message): void {
    this.client.send(m);
  }

  /** Hand every received message to onMessage and forget it (WireClient keeps all otherwise). */
  pump(): void {
    const r = this.client.received;
    if (r.length === 0) return;
    if (this.onMessage) for (const m of r) this.onMessage(m);
    r.length = 0;
    if (this.client.closed && this.closedAt === undefined) this.closedAt = Date.now();
  }

  /** The GOODBYE the victim sent, if any. */
  goodbye(): { code: number; reason: string } | undefined {
    const g = this.client.received.find((m) => m.type === MessageType.GOODBYE);
    return g && g.type === MessageType.GOODBYE ? { code: g.code, reason: g.reason } : undefined;
  }

  destroy(): void {
    this.client.destroy();
  }
}

/**
 * Pumps a set of attackers every few ms so their received lists stay small; records when
 * each first saw its connection closed and the GOODBYE code, if any.
 */
export class Pump {
  readonly attackers = new Set<Attacker>();
  readonly goodbyes = new Map<Attacker, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs = 20) {
    this.timer = setInterval(() => this.run(), everyMs);
  }

  add(a: Attacker, onMessage?: (m: Message) => void): void {
    const user = onMessage;
    a.onMessage = (m) => {
      if (m.type === MessageType.GOODBYE && !this.goodbyes.has(a)) this.goodbyes.set(a, m.code);
      user?.(m);
    };
    this.attackers.add(a);
  }

  run(): void {
    for (const a of this.attackers) {
      a.pump();
      if (a.closed && a.closedAt === undefined) a.closedAt = Date.now();
    }
  }

  /** Destroy every attacker and stop pumping. */
  close(): void {
    clearInterval(this.timer);
    this.run();
    for (const a of this.attackers) a.destroy();
  }
}

/** GOODBYE code names, for results. */
export function goodbyeName(code: number | undefined): string {
  if (code === undefined) return 'none';
  return Object.entries(GoodbyeCode).find(([, c]) => c === code)?.[0] ?? String(code);
}

/** A validly signed GOSSIP from `origin` (fresh from its origin: hops 1, ttl `ttl`). */
export function signedGossip(origin: Identity, seq: number, topic: string, payload: Buffer, ttl = 10): Gossip {
  const id = gossipMessageId(origin.publicKey, seq, topic, payload);
  return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic, ttl, hops: 1, seenBy: [], payload, signature: origin.sign(id) };
}

/** A plain TCP socket from `local` to the victim, for pre-handshake attacks. */
export function rawSocket(victim: { host: string; port: number }, local: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: victim.host, port: victim.port, localAddress: local, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, ATTACK_TIMEOUT_MS);
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', () => {});
      s.on('data', () => {}); // read and discard what the victim says (its handshake)
      resolve(s);
    });
  });
}

/**
 * Call `step(i)` about `ratePerSec` times a second for `durationMs` (or until `maxCount`
 * calls, or until `stop()` says so), in ticks of `tickMs`; a tick that falls behind does not
 * burst more than one tick's worth of catch-up. `step` returns false to skip (backpressure).
 * Resolves with the number of calls that went through.
 */
export async function paced(opts: {
  ratePerSec: number;
  durationMs: number;
  maxCount?: number;
  tickMs?: number;
  step: (i: number) => boolean | void;
  stop?: () => boolean;
}): Promise<number> {
  const tickMs = opts.tickMs ?? 10;
  const maxCount = opts.maxCount ?? Infinity;
  const perTickCap = Math.max(1, Math.ceil((opts.ratePerSec * tickMs) / 1000) * 2);
  const t0 = performance.now();
  let sent = 0;
  let credit = 0;
  let last = t0;
  while (sent < maxCount) {
    const now = performance.now();
    if (now - t0 >= opts.durationMs || opts.stop?.()) break;
    credit = Math.min(perTickCap, credit + ((now - last) * opts.ratePerSec) / 1000);
    last = now;
    while (credit >= 1 && sent < maxCount) {
      if (opts.step(sent) === false) break;
      sent++;
      credit--;
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  return sent;
}

/** Run `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/**
 * A listener standing for a third party whose addresses attackers claim: `count` ports on
 * `host`, each counting the connection attempts it receives (accepted, then closed).
 */
export class ThirdParty {
  readonly counts = new Map<number, number>();
  private readonly servers: net.Server[] = [];

  async listen(host: string, count: number): Promise<number[]> {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer((s) => {
        const port = (srv.address() as net.AddressInfo).port;
        this.counts.set(port, (this.counts.get(port) ?? 0) + 1);
        s.on('error', () => {});
        s.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, host, () => resolve());
      });
      this.servers.push(srv);
      this.counts.set((srv.address() as net.AddressInfo).port, 0);
    }
    return [...this.counts.keys()];
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  get max(): number {
    return Math.max(0, ...this.counts.values());
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }
}
