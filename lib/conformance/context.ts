/**
 * What a conformance check gets to work with: the target's address and parameters, fresh
 * kit connections (each with its own identity), a listener the target may be told about,
 * and the shared assertions (a refusal with a given GOODBYE code). Everything a check opens
 * is closed by the runner when the check ends.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { generateIdentity } from '../identity.js';
import type { Identity } from '../identity.js';
import { GOODBYE_CODE_NAMES, MessageType } from '../wire/messages.js';
import { CheckFailure, WireClient } from './wire-client.js';
import type { TargetInfo } from './wire-client.js';

/** Parameters of a conformance run. Times are in milliseconds. */
export interface ConformanceOptions {
  /** Target host (an IP literal or name). */
  host: string;
  /** Target TCP port. */
  port: number;
  /** The target's networkId. Default 'aethel'. */
  networkId: string;
  /** The target's handshake deadline (§4.1), ms: how long the timeout check waits, plus replyTimeoutMs. Default 5000. */
  handshakeTimeoutMs: number;
  /** The target's maxFrameBytes (§1): the oversized check declares one byte more. Default 1 MiB. */
  maxFrameBytes: number;
  /** How long to wait for an answer the target owes, ms. Default 3000. */
  replyTimeoutMs: number;
  /** How long to watch for something that must NOT happen (a second copy, a forged forward), ms. Default 1500. */
  quietMs: number;
}

export const CONFORMANCE_DEFAULTS = Object.freeze({
  networkId: 'aethel',
  handshakeTimeoutMs: 5000,
  maxFrameBytes: 1 << 20,
  replyTimeoutMs: 3000,
  quietMs: 1500,
});

/** A kit connection whose handshake is complete. */
export interface Session {
  client: WireClient;
  target: TargetInfo;
}

export class CheckContext {
  private readonly clients: WireClient[] = [];
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(readonly opts: ConformanceOptions) {}

  /** A new TCP connection to the target with a fresh identity; nothing sent yet. */
  async client(identity: Identity = generateIdentity()): Promise<WireClient> {
    const c = await WireClient.open(this.opts.host, this.opts.port, identity, this.opts.replyTimeoutMs);
    this.clients.push(c);
    return c;
  }

  /** A new connection with the handshake done, optionally advertising a listen address. */
  async session(listen?: { host: string; port: number }): Promise<Session> {
    const client = await this.client();
    const advertised = listen ? { listenHost: listen.host, listenPort: listen.port } : {};
    const target = await client.handshake(this.opts.networkId, this.opts.replyTimeoutMs, advertised);
    return { client, target };
  }

  /**
   * A listener on the address the kit connected from, for checks that tell the target where
   * to dial back. It accepts connections and holds them until the check ends.
   */
  async listener(): Promise<{ host: string; port: number }> {
    const server = createServer((s) => {
      this.sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.sockets.delete(s));
    });
    this.servers.push(server);
    const host = this.opts.host === 'localhost' ? '127.0.0.1' : this.opts.host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: isLoopback(host) ? host : '0.0.0.0', port: 0 }, () => resolve());
    });
    const a = server.address();
    if (a === null || typeof a === 'string') throw new CheckFailure('could not open a listener');
    return { host: isLoopback(host) ? host : a.address, port: a.port };
  }

  /**
   * Expect the target to refuse: GOODBYE with `code`, then the connection closed. Returns a
   * short description for the report.
   */
  async expectGoodbye(c: WireClient, code: number, waitMs = this.opts.replyTimeoutMs): Promise<string> {
    const g = await c.next((m) => m.type === MessageType.GOODBYE, waitMs);
    if (!g || g.type !== MessageType.GOODBYE) {
      if (c.badBytes) throw new CheckFailure(`target sent invalid bytes instead of GOODBYE: ${c.badBytes}`);
      if (c.closed) throw new CheckFailure(`connection closed without GOODBYE ${codeName(code)}`);
      throw new CheckFailure(`no GOODBYE ${codeName(code)} within ${waitMs} ms; the connection stayed open`);
    }
    if (g.code !== code) throw new CheckFailure(`GOODBYE ${codeName(g.code)} instead of ${codeName(code)} (reason ${JSON.stringify(g.reason)})`);
    if (!(await c.waitClosed(this.opts.replyTimeoutMs))) {
      throw new CheckFailure(`GOODBYE ${codeName(code)} sent but the connection was still open after ${this.opts.replyTimeoutMs} ms`);
    }
    return `GOODBYE ${codeName(code)} (${JSON.stringify(g.reason)}), then closed`;
  }

  /** Close every connection and listener the check opened. */
  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** "4 BAD_SIGNATURE": a GOODBYE code with its name from §4.12. */
export function codeName(code: number): string {
  return `${code} ${GOODBYE_CODE_NAMES[code] ?? 'UNKNOWN'}`;
}

function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.');
}
