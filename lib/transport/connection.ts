/**
 * One authenticated connection to one peer over a net.Socket: framing, codec, handshake,
 * heartbeat and a bounded outbound queue. It knows message types but not what gossip or the
 * DHT do with them: valid messages after the handshake go out through the 'message' event.
 *
 * Lifecycle: 'open' once the handshake succeeds; 'close' exactly once, whatever the cause
 * (our close(), the peer's GOODBYE, a protocol error, a socket error or end).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../clock.js';
import { P2PError, ProtocolError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { nodeIdOf, verifySignature } from '../identity.js';
import type { Identity } from '../identity.js';
import type { Metrics, DropReason } from '../metrics.js';
import { decodeMessage, encodeMessage } from '../wire/codec.js';
import { FrameDecoder, frameHeader, FRAME_HEADER_BYTES } from '../wire/frame.js';
import { GoodbyeCode, LIMITS, MESSAGE_TYPE_NAMES, MessageType, PROTOCOL_VERSION } from '../wire/messages.js';
import type { GoodbyeCodeValue, Message } from '../wire/messages.js';
import { authTranscript, newNonce } from './handshake.js';

/** What a connection needs from its node. All fields are required; the network resolves defaults. */
export interface ConnectionConfig {
  identity: Identity;
  networkId: string;
  /** Address this node tells peers to dial ('' / 0 when not listening). */
  advertiseHost: string;
  advertisePort: number;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  /** Cap on bytes waiting to be written to this peer (ours plus the socket's buffer). */
  maxQueueBytes: number;
  clock: Clock;
  metrics: Metrics;
  /** Optional observer of every frame body in and out (wire dumps). Must not keep `body`. */
  tap?: (conn: Connection, direction: 'in' | 'out', body: Uint8Array) => void;
}

export type ConnectionState = 'handshake' | 'open' | 'closed';

/** Why a connection closed. */
export interface CloseInfo {
  /** GOODBYE code sent or received; TIMEOUT-less socket failures use PROTOCOL_ERROR or NORMAL. */
  code: GoodbyeCodeValue | number;
  reason: string;
  /** True when the peer ended it (GOODBYE received, socket ended or reset). */
  byPeer: boolean;
  /** True when the peer said GOODBYE (code and reason are its own); false for a bare socket end, reset or error. */
  goodbye?: boolean;
  /** Set when a peer's bytes or behaviour caused the close. */
  error?: P2PError;
}

/** Map a protocol error code to the GOODBYE code that reports it to the peer. */
function goodbyeFor(code: ErrorCode): GoodbyeCodeValue {
  switch (code) {
    case 'VERSION_MISMATCH': return GoodbyeCode.VERSION_MISMATCH;
    case 'NETWORK_MISMATCH': return GoodbyeCode.NETWORK_MISMATCH;
    case 'BAD_SIGNATURE': return GoodbyeCode.BAD_SIGNATURE;
    case 'HANDSHAKE_TIMEOUT': return GoodbyeCode.HANDSHAKE_TIMEOUT;
    case 'SELF_CONNECTION': return GoodbyeCode.SELF_CONNECTION;
    case 'DUPLICATE_CONNECTION': return GoodbyeCode.DUPLICATE_CONNECTION;
    case 'UNEXPECTED_MESSAGE': return GoodbyeCode.UNEXPECTED_MESSAGE;
    default: return GoodbyeCode.PROTOCOL_ERROR;
  }
}

/** How long a closing socket may take to flush its GOODBYE before it is destroyed. */
const CLOSE_FLUSH_MS = 1000;

let nextConnectionId = 1;

export interface ConnectionEvents {
  open: [];
  message: [msg: Message];
  close: [info: CloseInfo];
}

export class Connection extends EventEmitter<ConnectionEvents> {
  /** Process-unique number, for logs and dumps. */
  readonly cid = nextConnectionId++;
  /** True when this side dialed. */
  readonly outbound: boolean;
  readonly socket: Socket;
  state: ConnectionState = 'handshake';
  /** Peer's node id (SHA-256 of its key), known after its HELLO. */
  peerId: Buffer | undefined;
  peerIdHex = '';
  peerPublicKey: Buffer | undefined;
  /** Address the peer says it accepts connections on (from HELLO). */
  peerListenHost = '';
  peerListenPort = 0;
  /** Clock time of the last valid frame from the peer. */
  lastContact: number;
  /** Last measured PING round trip, ms. */
  rttMs: number | undefined;

  private readonly cfg: ConnectionConfig;
  private readonly decoder: FrameDecoder;
  private readonly nonce = newNonce();
  private sentAuth = false;
  private handshakeTimer: TimerHandle | undefined;
  private closeTimer: TimerHandle | undefined;
  private pingSeq = 0;
  private pingSentAt = new Map<number, number>();
  // Outbound: frames wait here only while the socket has said write() === false.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private blocked = false;
  private corked = false;

  constructor(socket: Socket, outbound: boolean, cfg: ConnectionConfig) {
    super();
    this.socket = socket;
    this.outbound = outbound;
    this.cfg = cfg;
    this.decoder = new FrameDecoder(cfg.maxFrameBytes);
    this.lastContact = cfg.clock.now();
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', (err) => this.terminate({ code: GoodbyeCode.NORMAL, reason: `socket error: ${err.message}`, byPeer: true }));
    socket.on('close', () => this.terminate({ code: GoodbyeCode.NORMAL, reason: 'socket closed', byPeer: true }));
    socket.on('end', () => this.terminate({ code: GoodbyeCode.NORMAL, reason: 'peer ended the connection', byPeer: true }));
    this.handshakeTimer = cfg.clock.setTimeout(
      () => this.fail(new ProtocolError('HANDSHAKE_TIMEOUT', `no handshake within ${cfg.handshakeTimeoutMs} ms`)),
      cfg.handshakeTimeoutMs,
    );
    this.sendNow({
      type: MessageType.HELLO,
      version: PROTOCOL_VERSION,
      networkId: cfg.networkId,
      publicKey: cfg.identity.publicKey,
      nonce: this.nonce,
      listenHost: cfg.advertiseHost,
      listenPort: cfg.advertisePort,
    });
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  /** Bytes waiting to go out: our queue plus the socket's own buffer. */
  get queuedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  /**
   * Queue a message for the peer. Returns false, and counts the drop by reason, when the
   * connection is not open or the queue is at its byte cap: the caller decides whether to
   * retry elsewhere. Never throws for a full queue.
   */
  send(msg: Message): boolean {
    if (this.state !== 'open') {
      this.cfg.metrics.drop('not_connected');
      return false;
    }
    return this.sendNow(msg);
  }

  /** Like send(), for a body already encoded (one GOSSIP encoding shared by several peers). */
  sendEncoded(type: number, body: Buffer): boolean {
    if (this.state !== 'open') {
      this.cfg.metrics.drop('not_connected');
      return false;
    }
    return this.sendBody(type, body);
  }

  /** Send PING; the PONG updates rttMs. At most a few pings are tracked at once. */
  ping(): void {
    if (this.state !== 'open') return;
    const seq = (this.pingSeq = (this.pingSeq + 1) >>> 0);
    if (this.pingSentAt.size >= 8) this.pingSentAt.clear(); // unanswered pings: forget them
    this.pingSentAt.set(seq, this.cfg.clock.now());
    this.sendNow({ type: MessageType.PING, seq });
  }

  /** Send GOODBYE with a code and reason, then close. Idempotent. */
  close(code: GoodbyeCodeValue = GoodbyeCode.NORMAL, reason = 'closing', error?: P2PError): void {
    if (this.state === 'closed') return;
    this.sendNow({ type: MessageType.GOODBYE, code, reason: truncateUtf8(reason, LIMITS.reasonBytes) });
    this.terminate({ code, reason, byPeer: false, error });
  }

  // ---- inbound ------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (err) {
      // A ProtocolError is the peer's fault. Anything else is a bug of ours that this peer's
      // bytes reached: it must not escape a socket handler and take the process down, so it
      // ends only this connection, counted and reported as INTERNAL.
      if (err instanceof ProtocolError) this.fail(err);
      else this.fail(new ProtocolError('INTERNAL', `internal error while handling a message: ${err instanceof Error ? err.message : String(err)}`));
    }
  };

  private readonly onFrame = (body: Buffer): void => {
    if (this.state === 'closed') return;
    this.cfg.tap?.(this, 'in', body);
    const msg = decodeMessage(body); // throws ProtocolError, handled in onData
    this.cfg.metrics.frameIn(msg.type, body.length + FRAME_HEADER_BYTES);
    this.lastContact = this.cfg.clock.now();
    switch (msg.type) {
      case MessageType.HELLO: return this.onHello(msg);
      case MessageType.AUTH: return this.onAuth(msg.signature);
      case MessageType.GOODBYE:
        return this.terminate({ code: msg.code, reason: `peer said goodbye: ${msg.reason}`, byPeer: true, goodbye: true });
    }
    if (this.state !== 'open') {
      throw new ProtocolError('UNEXPECTED_MESSAGE', `${MESSAGE_TYPE_NAMES[msg.type]} before the handshake completed`);
    }
    if (msg.type === MessageType.PING) {
      this.sendNow({ type: MessageType.PONG, seq: msg.seq });
      return;
    }
    if (msg.type === MessageType.PONG) {
      const sentAt = this.pingSentAt.get(msg.seq);
      if (sentAt !== undefined) {
        this.pingSentAt.delete(msg.seq);
        this.rttMs = this.cfg.clock.now() - sentAt;
      }
      return;
    }
    this.emit('message', msg);
  };

  private onHello(msg: Extract<Message, { type: 1 }>): void {
    if (this.peerId) throw new ProtocolError('UNEXPECTED_MESSAGE', 'second HELLO');
    if (msg.version !== PROTOCOL_VERSION) {
      throw new ProtocolError('VERSION_MISMATCH', `peer speaks version ${msg.version}, we speak ${PROTOCOL_VERSION}`);
    }
    if (msg.networkId !== this.cfg.networkId) {
      throw new ProtocolError('NETWORK_MISMATCH', `peer is on network ${JSON.stringify(msg.networkId)}`);
    }
    const peerId = nodeIdOf(msg.publicKey);
    if (peerId.equals(this.cfg.identity.id)) throw new ProtocolError('SELF_CONNECTION', 'connected to ourselves');
    this.peerId = peerId;
    this.peerIdHex = peerId.toString('hex');
    this.peerPublicKey = msg.publicKey;
    this.peerListenHost = msg.listenHost;
    this.peerListenPort = msg.listenPort;
    const transcript = authTranscript(msg.nonce, this.cfg.identity.id, peerId);
    this.sendNow({ type: MessageType.AUTH, signature: this.cfg.identity.sign(transcript) });
    this.sentAuth = true;
  }

  private onAuth(signature: Buffer): void {
    if (!this.peerId || !this.peerPublicKey || !this.sentAuth || this.state !== 'handshake') {
      throw new ProtocolError('UNEXPECTED_MESSAGE', 'AUTH out of order');
    }
    const transcript = authTranscript(this.nonce, this.peerId, this.cfg.identity.id);
    if (!verifySignature(this.peerPublicKey, transcript, signature)) {
      throw new ProtocolError('BAD_SIGNATURE', 'AUTH signature does not verify');
    }
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.state = 'open';
    this.emit('open');
  }

  /** Close because of the peer: GOODBYE with the matching code, count it, emit close. */
  private fail(err: ProtocolError): void {
    if (this.state === 'closed') return;
    this.cfg.metrics.invalid(err.code);
    this.close(goodbyeFor(err.code), err.message, err);
  }

  // ---- outbound -----------------------------------------------------------------------------

  private sendNow(msg: Message): boolean {
    if (this.state === 'closed' || this.socket.destroyed) return this.drop('not_connected');
    return this.sendBody(msg.type, encodeMessage(msg));
  }

  private sendBody(type: number, body: Buffer): boolean {
    if (this.state === 'closed' || this.socket.destroyed) return this.drop('not_connected');
    if (body.length > this.cfg.maxFrameBytes) return this.drop('too_large');
    const frameBytes = body.length + FRAME_HEADER_BYTES;
    // GOODBYE may exceed the cap: it is tiny and the connection ends right after it.
    if (type !== MessageType.GOODBYE && this.queuedBytes + frameBytes > this.cfg.maxQueueBytes) {
      return this.drop('queue_full');
    }
    this.cfg.tap?.(this, 'out', body);
    this.cfg.metrics.frameOut(type, frameBytes);
    const header = frameHeader(body.length);
    if (this.blocked) {
      this.pending.push(header, body);
      this.pendingBytes += frameBytes;
      return true;
    }
    this.writeFrame(header, body);
    return true;
  }

  private drop(reason: DropReason): false {
    this.cfg.metrics.drop(reason);
    return false;
  }

  private writeFrame(header: Buffer, body: Buffer): void {
    // Gather every frame written in this tick into one writev: corked until the next tick.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(header);
    if (!this.socket.write(body)) this.blocked = true;
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private readonly onDrain = (): void => {
    this.blocked = false;
    let i = 0;
    while (i < this.pending.length && !this.blocked) {
      const header = this.pending[i++]!;
      const body = this.pending[i++]!;
      this.pendingBytes -= header.length + body.length;
      this.writeFrame(header, body);
    }
    this.pending = this.pending.slice(i);
  };

  // ---- teardown -----------------------------------------------------------------------------

  private terminate(info: CloseInfo): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.pingSentAt.clear();
    this.decoder.reset();
    const socket = this.socket;
    if (!socket.destroyed) {
      if (this.corked) this.uncork();
      // Let the GOODBYE flush, but never wait on a peer that does not read.
      socket.end(() => socket.destroy());
      this.closeTimer = this.cfg.clock.setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
      socket.once('close', () => this.closeTimer?.cancel());
    }
    this.emit('close', info);
  }
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  return Buffer.from(s).subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, '');
}
