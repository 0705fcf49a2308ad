/**
 * Dialing for the peer registry: one attempt per address at a time, within the per-address
 * dial limits (dial-limiter.ts), each dial ending in the peer id its handshake showed or in a
 * DialFailure: the failure in words a user can act on, logged, counted and reported.
 *
 * Who calls what: the peer registry builds the Dialer and calls connect() for every dial
 * (start(), addPeer(), redials, DHT lookups, sendToPeer), trust() for the user's addresses,
 * and dialedAddress() when a connection opens, to learn the address it dialed. The Dialer
 * calls back through DialerHost: dial (the transport opens the connection), adopt (the
 * registry takes charge of it), whenConnected (after a lost duplicate race), proveAddress
 * (the handshake showed which node lives at the address) and failed. start() also turns its
 * failed bootstrap dials into DialFailures with dialFailure(). No sockets and no timers of
 * its own.
 */
import { P2PError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import type { ResolvedOptions } from '../options.js';
import type { CloseInfo, Connection } from '../transport/connection.js';
import { GoodbyeCode } from '../wire/messages.js';
import { DialLimiter } from './dial-limiter.js';
import type { DialKind } from './dial-limiter.js';

/** A dial that did not end in a connection: payload of 'peer:dial-failed'. */
export interface DialFailure {
  /** 'host:port' as dialed. */
  address: string;
  host: string;
  port: number;
  /** CONNECTION_CLOSED (refused, unreachable, reset), TIMEOUT (no TCP connect in dialTimeoutMs), or the handshake's code (NETWORK_MISMATCH, VERSION_MISMATCH, HANDSHAKE_TIMEOUT, ...). */
  code: ErrorCode;
  /** Plain words: 'connection refused (ECONNREFUSED)', or the handshake's reason. */
  reason: string;
  /** The operating system's error code when there is one ('ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND'). */
  syscallCode?: string;
}

/** Plain words for the socket errors a dial meets. */
const DIAL_PROBLEMS: Readonly<Record<string, string>> = Object.freeze({
  ECONNREFUSED: 'connection refused: nothing listens there',
  ECONNRESET: 'connection reset by the peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  ETIMEDOUT: 'connect timed out',
  EADDRNOTAVAIL: 'address not available',
});

/** A dial's rejection as a DialFailure. */
export function dialFailure(host: string, port: number, err: unknown): DialFailure {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const code: ErrorCode = err instanceof P2PError ? err.code : 'CONNECTION_CLOSED';
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const sys = typeof cause?.code === 'string' ? cause.code : undefined;
  const reason = sys ? `${DIAL_PROBLEMS[sys] ?? 'socket error'} (${sys})` : err instanceof Error ? err.message : String(err);
  const f: DialFailure = { address, host, port, code, reason };
  if (sys) f.syscallCode = sys;
  return f;
}

/** The options the dialer reads. */
export type DialerOptions = Pick<ResolvedOptions, 'dialTimeoutMs' | 'handshakeTimeoutMs' | 'maxUnprovenDials' | 'minRedialIntervalMs'>;

/** What the dialer asks of its owner (the peer registry). */
export interface DialerHost {
  /** Whether dials are made now (the network is starting or running). */
  accepting(): boolean;
  /** Open a connection to host:port (the transport): resolves once TCP is connected, with the handshake under way. */
  dial(host: string, port: number, timeoutMs: number): Promise<Connection>;
  /** Take charge of a dialed connection before its handshake ends. */
  adopt(conn: Connection): void;
  /** Resolves once `peerId` has an open connection, or rejects after timeoutMs. */
  whenConnected(peerId: string, timeoutMs: number): Promise<void>;
  /** A handshake showed that node `id` lives at host:port (also when the dial lost a duplicate race). */
  proveAddress(id: string, host: string, port: number): void;
  /** A dial failed (not one cut short by stop() or a lost duplicate race); already logged and counted. */
  failed(failure: DialFailure): void;
}

export class Dialer {
  /** Per-address dial limits (dial-limiter.ts). */
  private readonly limiter: DialLimiter;
  /** Addresses from the user (bootstrap, addPeer, members): dialed without the learned-address limits. */
  private readonly trusted = new Set<string>();
  /** The address each outbound connection was dialed at: proven once its handshake shows an id. */
  private readonly dialedAt = new WeakMap<Connection, { host: string; port: number }>();
  private readonly dialing = new Map<string, Promise<string>>();

  /**
   * @param metrics counts failed dials by code.
   * @param log the transport logger: a refused handshake is a warning, any other failure info.
   */
  constructor(
    clock: Clock,
    private readonly opts: DialerOptions,
    private readonly metrics: Pick<Metrics, 'dialFailed'>,
    private readonly log: Logger,
    private readonly host: DialerHost,
  ) {
    this.limiter = new DialLimiter(clock, { maxUnprovenDials: opts.maxUnprovenDials, minRedialIntervalMs: opts.minRedialIntervalMs });
  }

  /** Dial host:port without the learned-address limits from now on. */
  trust(host: string, port: number): void {
    this.trusted.add(addressKey(host, port));
  }

  /** Dials started to host:port (the limiter's count). */
  attempts(host: string, port: number): number {
    return this.limiter.attempts(host, port);
  }

  /** Dials the limits refused, by verdict (a copy). */
  refused(): Record<string, number> {
    return { ...this.limiter.refused };
  }

  /** The address an outbound connection was dialed at; undefined for an inbound one. */
  dialedAddress(conn: Connection): { host: string; port: number } | undefined {
    return this.dialedAt.get(conn);
  }

  /**
   * Dial and wait for the handshake; resolves with the peer id. Concurrent dials of one
   * address share one attempt. A 'learned' address (from a peer's HELLO or a NODES reply, or
   * a redial of one) is subject to the per-address dial limits; `expectedId` is the node the
   * caller expects there. Every handshake proves which node lives at the address.
   */
  connect(host: string, port: number, kind: DialKind = 'trusted', expectedId?: string): Promise<string> {
    const key = `${host}:${port}`;
    let p = this.dialing.get(key);
    if (!p) {
      const verdict = this.limiter.check(host, port, this.trusted.has(addressKey(host, port)) ? 'trusted' : kind, expectedId);
      if (verdict !== 'ok') {
        return Promise.reject(new P2PError('NOT_CONNECTED', `dial of ${host}:${port} refused: ${verdict}`));
      }
      this.limiter.started(host, port);
      p = this.dial(host, port)
        .then(
          (id) => {
            this.limiter.succeeded(host, port, id);
            // An endpoint proof, also when this dial lost a duplicate race to a live connection.
            this.host.proveAddress(id, host, port);
            return id;
          },
          (err: unknown) => {
            this.limiter.failed(host, port);
            this.dialFailed(host, port, err);
            throw err;
          },
        )
        .finally(() => this.dialing.delete(key));
      this.dialing.set(key, p);
    }
    return p;
  }

  private async dial(host: string, port: number): Promise<string> {
    if (!this.host.accepting()) throw new P2PError('STOPPED', 'the network is stopped');
    const conn = await this.host.dial(host, port, this.opts.dialTimeoutMs);
    this.dialedAt.set(conn, { host, port });
    this.host.adopt(conn);
    return new Promise((resolve, reject) => {
      const onOpen = () => {
        conn.off('close', onClose);
        // A duplicate may have lost to an existing connection: the peer is connected either way.
        resolve(conn.peerIdHex);
      };
      const onClose = (info: CloseInfo) => {
        conn.off('open', onOpen);
        const failed = info.error ?? new P2PError('CONNECTION_CLOSED', `connection to ${host}:${port} closed: ${info.reason}`);
        // Lost a duplicate race (decided here or by the peer): the surviving connection may
        // still be finishing its handshake on this side; the peer is reachable either way.
        if (info.code === GoodbyeCode.DUPLICATE_CONNECTION && conn.peerIdHex) {
          this.host.whenConnected(conn.peerIdHex, this.opts.handshakeTimeoutMs).then(() => resolve(conn.peerIdHex), () => reject(failed));
        } else {
          reject(failed);
        }
      };
      conn.once('open', onOpen);
      conn.once('close', onClose);
    });
  }

  /** Log, count and report a failed dial (not one cut short by stop() or a lost duplicate race). */
  private dialFailed(host: string, port: number, err: unknown): void {
    const f = dialFailure(host, port, err);
    if (f.code === 'STOPPED' || f.code === 'DUPLICATE_CONNECTION') return;
    this.metrics.dialFailed(f.code);
    // A peer that refused our handshake points at a configuration problem (network id, version): warn.
    const refusedHandshake = f.code !== 'CONNECTION_CLOSED' && f.code !== 'TIMEOUT';
    const fields = { address: f.address, code: f.code, reason: f.reason, ...(f.syscallCode ? { syscallCode: f.syscallCode } : {}) };
    if (refusedHandshake) this.log.warn(fields, 'dial failed: handshake refused');
    else this.log.info(fields, 'dial failed');
    this.host.failed(f);
  }
}

function addressKey(host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`;
}
