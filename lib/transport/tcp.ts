/**
 * TCP transport: a listening server and outbound dials, each socket wrapped in a Connection.
 * The network decides what to do with connections; this file only makes them.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { P2PError } from '../errors.js';
import { Connection } from './connection.js';
import type { ConnectionConfig } from './connection.js';

/**
 * The buffer every dialed socket reads into (net's onread: no Readable stream machinery, no
 * Buffer and no next-tick per read). Shared: a read is handed to its Connection and consumed
 * before the next read can happen, and Connection.read() copies whatever it must keep.
 */
const DIAL_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export interface Address {
  host: string;
  port: number;
}

export class TcpTransport {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  /**
   * @param cfg shared by every connection; advertisePort is filled in by listen().
   * @param onInbound called with each accepted connection, before its handshake completes.
   * @param accept asked for each accepted socket before a Connection exists (nothing read,
   *   nothing allocated for it yet); false destroys the socket at once. The admission's
   *   pending-handshake caps live behind it.
   */
  constructor(
    private readonly cfg: ConnectionConfig,
    private readonly onInbound: (conn: Connection) => void,
    private readonly accept: (socket: Socket) => boolean = () => true,
  ) {}

  /** Start listening; resolves with the address actually bound. Rejects with LISTEN_FAILED (EADDRINUSE, EACCES, ...). */
  async listen(host: string, port: number): Promise<Address> {
    const server = createServer({ noDelay: true }, (socket) => {
      if (!this.accept(socket)) {
        socket.destroy();
        return;
      }
      this.track(socket);
      this.onInbound(new Connection(socket, false, this.cfg));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(P2PError.listenFailed(host, port, err)));
      server.listen({ host, port }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    // Errors after listening (e.g. EMFILE on accept) must not crash the process.
    server.on('error', () => {});
    this.server = server;
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new P2PError('INVALID_ARGUMENT', 'unexpected server address');
    if (this.cfg.advertisePort === 0) this.cfg.advertisePort = bound.port;
    return { host: bound.address, port: bound.port };
  }

  /** Connect to host:port; resolves with a Connection whose handshake has started. */
  dial(host: string, port: number, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let conn: Connection | undefined;
      const socket = connect({
        host,
        port,
        noDelay: true,
        onread: {
          buffer: DIAL_READ_BUFFER,
          // net starts reading only after the 'connect' listeners below have run, so `conn` is
          // set before the first read.
          callback: (n) => {
            conn?.read(DIAL_READ_BUFFER.subarray(0, n), true);
            return true;
          },
        },
      });
      this.track(socket);
      const timer = this.cfg.clock.setTimeout(() => {
        socket.destroy();
        reject(new P2PError('TIMEOUT', `dial ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        timer.cancel();
        reject(new P2PError('CONNECTION_CLOSED', `dial ${host}:${port} failed: ${err.message}`, { cause: err }));
      });
      socket.once('connect', () => {
        timer.cancel();
        conn = new Connection(socket, true, this.cfg);
        resolve(conn);
      });
    });
  }

  /** Stop listening and destroy every socket still open. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}
