/**
 * A TCP proxy on 127.0.0.1 in front of one node, for fault-injection tests. A node advertises
 * the proxy's port (the advertisePort option), so every link to it passes through here. The
 * proxy reads the caller's first frame (the first Noise handshake message) and names the caller
 * by its ephemeral key: node ids travel encrypted, so this module records, for every session
 * started in this process, which node chose which ephemeral key (a wrapper around
 * SessionHandshake.start). A test can then treat links by caller:
 * - 'pass': bytes flow both ways;
 * - 'blackhole': bytes are held (both sockets paused: the kernel buffers fill and the senders
 *   see silence, as over a dead route); on 'pass' they flow again;
 * - 'reset': the sockets are destroyed with RST, and new connections are reset on arrival.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { SessionHandshake } from '../../lib/transport/handshake.js';
import { decodeMessage } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';

/** Ephemeral public key (hex) of every handshake this process started -> the initiator's node id. */
const initiators = new Map<string, string>();
const originalStart = SessionHandshake.prototype.start;
SessionHandshake.prototype.start = function start(this: SessionHandshake): Buffer {
  const first = originalStart.call(this);
  const cfg = (this as unknown as { cfg: { identity: { idHex: string } } }).cfg;
  if (initiators.size > 100_000) initiators.clear();
  initiators.set(first.subarray(0, 32).toString('hex'), cfg.identity.idHex);
  return first;
};

export type LinkMode = 'pass' | 'blackhole' | 'reset';

interface Link {
  client: Socket;
  /** Connection to the node; opened once the caller is known and admitted. */
  server: Socket | undefined;
  /** Caller's node id (hex) once its first handshake message arrived. */
  caller: string | undefined;
  /** Bytes read from the caller before its first frame was complete. */
  head: Buffer[];
  /** Blackholed: nothing passes, not even a FIN or a reset. */
  held: boolean;
}

/** Bytes a caller may send before its first frame is complete. */
const MAX_HEAD_BYTES = 64 * 1024;

export class FaultProxy {
  private readonly links = new Set<Link>();
  /** Connections accepted so far: how often nodes dialed through this proxy. */
  accepted = 0;
  private targetPort = 0;
  private mode: LinkMode = 'pass';
  private appliesTo: (callerId: string) => boolean = () => true;

  private constructor(private readonly server: Server, readonly port: number) {}

  /** Listen on 127.0.0.1:0. Set the target with setTarget() before anyone dials the proxy. */
  static async start(): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected proxy address');
    proxy = new FaultProxy(server, addr.port);
    return proxy;
  }

  /** The node's real port on 127.0.0.1 (may change when the node restarts). */
  setTarget(port: number): void {
    this.targetPort = port;
  }

  /**
   * Treat links from callers for which `appliesTo(callerId)` is true with `mode`, the others
   * with 'pass'; applies to open links at once and to new ones as they arrive.
   */
  setMode(mode: LinkMode, appliesTo: (callerId: string) => boolean = () => true): void {
    this.mode = mode;
    this.appliesTo = appliesTo;
    for (const link of this.links) if (link.caller !== undefined) this.apply(link);
  }

  /** Stop listening and destroy every link. */
  async close(): Promise<void> {
    for (const link of this.links) this.destroy(link, false);
    this.links.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private modeFor(caller: string): LinkMode {
    return this.appliesTo(caller) ? this.mode : 'pass';
  }

  private accept(client: Socket): void {
    this.accepted++;
    const link: Link = { client, server: undefined, caller: undefined, head: [], held: false };
    this.links.add(link);
    client.on('error', () => this.sideFailed(link));
    client.on('close', () => this.forgetIfClosed(link));
    let bytes = 0;
    const onHead = (chunk: Buffer): void => {
      link.head.push(chunk);
      bytes += chunk.length;
      const all = Buffer.concat(link.head);
      if (all.length < 4) return;
      const len = all.readUInt32BE(0);
      if (all.length < 4 + len) {
        if (bytes > MAX_HEAD_BYTES) this.destroy(link, true);
        return;
      }
      client.off('data', onHead);
      client.pause();
      link.head = [all];
      try {
        const first = decodeMessage(all.subarray(4, 4 + len));
        if (first.type !== MessageType.HANDSHAKE) throw new Error('first frame is not HANDSHAKE');
        const caller = initiators.get(first.noise.subarray(0, 32).toString('hex'));
        if (!caller) throw new Error('caller not started in this process');
        link.caller = caller;
      } catch {
        this.destroy(link, true);
        return;
      }
      this.apply(link);
    };
    client.on('data', onHead);
  }

  /** Bring a link (whose caller is known) in line with the current mode. */
  private apply(link: Link): void {
    const mode = this.modeFor(link.caller!);
    if (mode === 'reset') return this.destroy(link, true);
    link.held = mode === 'blackhole';
    if (link.held) {
      link.client.pause();
      link.server?.pause();
      return;
    }
    // A side that went away while held: the other side learns it now.
    if (link.client.destroyed || link.server?.destroyed) return this.destroy(link, false);
    if (!link.server) return this.open(link);
    link.client.resume();
    link.server.resume();
  }

  /** Connect to the node, replay what the caller sent so far, then relay both ways. */
  private open(link: Link): void {
    const { client } = link;
    const server = connect({ host: '127.0.0.1', port: this.targetPort });
    link.server = server;
    server.on('error', () => this.sideFailed(link));
    server.on('close', () => this.forgetIfClosed(link));
    for (const chunk of link.head) server.write(chunk);
    link.head = [];
    client.on('data', (d: Buffer) => server.write(d));
    server.on('data', (d: Buffer) => client.write(d));
    // A FIN on one side is passed on; the socket closes once both directions are done.
    client.on('end', () => server.end());
    server.on('end', () => client.end());
    client.on('close', () => link.held || server.end());
    server.on('close', () => link.held || client.end());
    client.resume();
  }

  private sideFailed(link: Link): void {
    if (!link.held) this.destroy(link, false);
  }

  private forgetIfClosed(link: Link): void {
    if (link.client.destroyed && (!link.server || link.server.destroyed)) this.links.delete(link);
  }

  private destroy(link: Link, reset: boolean): void {
    this.links.delete(link);
    for (const s of [link.client, link.server]) {
      if (!s || s.destroyed) continue;
      if (reset) s.resetAndDestroy();
      else s.destroy();
    }
  }
}
