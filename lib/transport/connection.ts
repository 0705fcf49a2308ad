/**
 * One authenticated connection to one peer over a net.Socket: framing, the Noise handshake
 * (transport/handshake.ts), the record layer, codec, heartbeat and a bounded outbound queue. It knows message types but not what gossip or the
 * DHT do with them: valid messages after the handshake go out through the 'message' event,
 * decoded, except GOSSIP: its body goes up undecoded (a GossipFrame), for the gossip engine
 * reads it by offsets and drops most copies unread (§4.5). A listener that finds a GOSSIP body
 * malformed throws ProtocolError SCHEMA, and the connection fails as for any bad frame.
 *
 * Lifecycle: 'open' once the handshake succeeds; 'close' exactly once, whatever the cause
 * (our close(), the peer's GOODBYE, a protocol error, a socket error or end).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../clock.js';
import { P2PError, ProtocolError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Identity } from '../identity.js';
import type { Metrics, DropReason } from '../metrics.js';
import { decodeMessage, encodeMessage } from '../wire/codec.js';
import { encodeFramesInto, FrameDecoder, frameHeader, FRAME_HEADER_BYTES } from '../wire/frame.js';
import { looksLikeGossip } from '../wire/gossip-envelope.js';
import { GoodbyeCode, LIMITS, MESSAGE_TYPE_NAMES, MessageType, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../wire/messages.js';
import type { GoodbyeCodeValue, InboundMessage, Message } from '../wire/messages.js';
import type { X25519KeyPair } from '../noise/handshake.js';
import { RECORD_HEADER_BYTES, RecordOpener, RecordSealer } from '../noise/records.js';
import { SessionHandshake } from './handshake.js';

/** What a connection needs from its node. All fields are required unless marked; the network resolves defaults. */
export interface ConnectionConfig {
  identity: Identity;
  networkId: string;
  /** Seal every frame after the handshake in AEAD records (§4.2). false: plaintext, only with a peer that also chose it. */
  encrypted: boolean;
  /** This node's Noise static key (X25519), fresh per process; signed by the identity in each handshake. */
  staticKey: X25519KeyPair;
  /** Protocol versions spoken, inclusive; default MIN_PROTOCOL_VERSION..PROTOCOL_VERSION. */
  minVersion?: number;
  maxVersion?: number;
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
  /** Optional sink for one key-log line per session (§4.2; the keyLog option). */
  keyLog?: (line: string) => void;
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
    case 'BAD_SIGNATURE':
    case 'NOISE_HANDSHAKE': return GoodbyeCode.BAD_SIGNATURE;
    case 'HANDSHAKE_TIMEOUT': return GoodbyeCode.HANDSHAKE_TIMEOUT;
    case 'SELF_CONNECTION': return GoodbyeCode.SELF_CONNECTION;
    case 'DUPLICATE_CONNECTION': return GoodbyeCode.DUPLICATE_CONNECTION;
    case 'UNEXPECTED_MESSAGE': return GoodbyeCode.UNEXPECTED_MESSAGE;
    case 'ENCRYPTION_MISMATCH': return GoodbyeCode.ENCRYPTION_MISMATCH;
    case 'BAD_RECORD': return GoodbyeCode.BAD_RECORD;
    default: return GoodbyeCode.PROTOCOL_ERROR;
  }
}

/** GOODBYE codes that refuse a handshake, and the error the refused side reports. */
const HANDSHAKE_REFUSALS: Readonly<Record<number, ErrorCode>> = {
  [GoodbyeCode.VERSION_MISMATCH]: 'VERSION_MISMATCH',
  [GoodbyeCode.NETWORK_MISMATCH]: 'NETWORK_MISMATCH',
  [GoodbyeCode.BAD_SIGNATURE]: 'BAD_SIGNATURE',
  [GoodbyeCode.SELF_CONNECTION]: 'SELF_CONNECTION',
  [GoodbyeCode.ENCRYPTION_MISMATCH]: 'ENCRYPTION_MISMATCH',
  [GoodbyeCode.HANDSHAKE_TIMEOUT]: 'HANDSHAKE_TIMEOUT',
};

/**
 * Largest batch of frames, bytes (headers included), that flush() copies into one buffer
 * (one record) and writes with one write; larger batches go as a writev of their pieces.
 * Copying a few KiB costs less than a writev's per-piece work and a header buffer per frame.
 * Must not exceed MAX_RECORD_PLAINTEXT.
 */
export const SINGLE_WRITE_BYTES = 16 * 1024;

/** PING round trips kept; rttMs is their minimum (at one PING a heartbeat, the last 4 s). */
const RTT_SAMPLES = 4;

/** How long a closing socket may take to flush its GOODBYE before it is destroyed. */
const CLOSE_FLUSH_MS = 1000;

let nextConnectionId = 1;

/** What an outbound queue slot holds once its body was written (so it keeps no body alive). */
const NO_BODY = Buffer.alloc(0);

/**
 * Slots of the outbound queue kept from one write to the next. A queue that once held more
 * (up to maxQueueBytes of 5-byte frames: 1.6 million slots, 13 MB of array at the 8 MiB
 * default) is let go once written, so a peer that made us queue many small frames for a while
 * does not keep that much memory for the rest of the connection.
 */
const PENDING_SLOTS_KEPT = 1024;

/**
 * The end of an event-loop turn, shared by every Connection of the process: one setImmediate
 * (the check phase, after every socket read of this poll turn was handled) first runs the
 * work deferred to it (Connection.atEndOfTurn: the gossip engine's forwarding, which then
 * knows every copy this turn brought), then writes each connection that queued frames, so
 * what that work sends goes out in the same write as the rest of the turn's frames.
 */
// turnWork[0, workCount) and turnFlush[0, flushCount) are this turn's. The arrays keep their
// length from turn to turn (at most the most work deferred in one turn, and one slot per
// connection) so that a turn does not allocate them again, and each slot is emptied when it
// has run, so they keep no closure or connection alive.
const turnWork: Array<(() => void) | undefined> = [];
const turnFlush: Array<Connection | undefined> = [];
let workCount = 0;
let flushCount = 0;
let turnScheduled = false;

function scheduleTurnEnd(): void {
  if (turnScheduled) return;
  turnScheduled = true;
  setImmediate(endTurn);
}

function endTurn(): void {
  turnScheduled = false;
  // By index: work may defer more work, and work and flushes may queue more frames.
  for (let i = 0; i < workCount; i++) {
    const work = turnWork[i]!;
    turnWork[i] = undefined;
    try {
      work();
    } catch {
      // A bug in deferred work must not keep every connection's frames unwritten; the work's
      // owner catches what it can report.
    }
  }
  workCount = 0;
  for (let i = 0; i < flushCount; i++) {
    const conn = turnFlush[i]!;
    turnFlush[i] = undefined;
    conn.flushTurn();
  }
  flushCount = 0;
}

export interface ConnectionEvents {
  open: [];
  message: [msg: InboundMessage];
  close: [info: CloseInfo];
}

export class Connection extends EventEmitter<ConnectionEvents> {
  /** Process-unique number, for logs and dumps. */
  readonly cid = nextConnectionId++;
  /** True when this side dialed (the Noise initiator). */
  readonly outbound: boolean;
  readonly socket: Socket;
  state: ConnectionState = 'handshake';
  /** Peer's node id (SHA-256 of its identity key), known once the handshake proved it. */
  peerId: Buffer | undefined;
  peerIdHex = '';
  peerPublicKey: Buffer | undefined;
  /** Address the peer says it accepts connections on (from its handshake payload). */
  peerListenHost = '';
  peerListenPort = 0;
  /** Our own address as the peer sees it (from its handshake payload); '' / 0 until open. */
  observedHost = '';
  observedPort = 0;
  /** Negotiated protocol version; 0 until open. */
  version = 0;
  /** True when frames travel in AEAD records (the default); false on a plaintext session. */
  encrypted: boolean;
  /** Clock time of the last valid frame from the peer. */
  lastContact: number;
  /**
   * Round trip to the peer, ms: the smallest of the last RTT_SAMPLES PING round trips (a PING
   * answered while either end was busy says more about that moment than about the link).
   * undefined before the first PONG.
   */
  rttMs: number | undefined;

  private readonly cfg: ConnectionConfig;
  /** Frames before the connection is open: capped at LIMITS.preOpenFrameBytes. */
  private decoder: FrameDecoder;
  /**
   * The handshake in progress; dropped once the connection is open (its keys, ephemeral
   * secret and transcript are not needed after, and a connection lives long).
   */
  private hs: SessionHandshake | undefined;
  private sealer: RecordSealer | undefined;
  private opener: RecordOpener | undefined;
  private handshakeTimer: TimerHandle | undefined;
  private closeTimer: TimerHandle | undefined;
  private pingSeq = 0;
  private pingSentAt = new Map<number, number>();
  /** The last RTT_SAMPLES round trips, ms, oldest first. */
  private readonly rttSamples: number[] = [];
  // Outbound: frame bodies gathered until the end of the turn (endTurn: the check phase,
  // after every socket read of this poll turn was handled), then written (or
  // sealed as records and written) in one go; kept while the socket has said write() === false.
  // pending[0, pendingCount) are queued. The array keeps its length from write to write (up
  // to PENDING_SLOTS_KEPT) so that a turn does not allocate it again; a written slot holds
  // NO_BODY, never the body.
  private readonly pending: Buffer[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;
  private blocked = false;
  private flushScheduled = false;

  constructor(socket: Socket, outbound: boolean, cfg: ConnectionConfig) {
    super();
    this.socket = socket;
    this.outbound = outbound;
    this.cfg = cfg;
    this.encrypted = cfg.encrypted;
    this.decoder = new FrameDecoder(Math.min(LIMITS.preOpenFrameBytes, cfg.maxFrameBytes));
    this.lastContact = cfg.clock.now();
    const hs = (this.hs = new SessionHandshake(outbound, {
      identity: cfg.identity,
      networkId: cfg.networkId,
      encrypted: cfg.encrypted,
      minVersion: cfg.minVersion ?? MIN_PROTOCOL_VERSION,
      maxVersion: cfg.maxVersion ?? PROTOCOL_VERSION,
      listenHost: cfg.advertiseHost,
      listenPort: cfg.advertisePort,
      remoteHost: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      staticKey: cfg.staticKey,
    }));
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
    if (outbound) this.sendNow({ type: MessageType.HANDSHAKE, noise: hs.start() });
  }

  /**
   * Run `fn` once at the end of this event-loop turn, after every socket read of the turn and
   * before any frame queued in the turn is written (frames `fn` queues go out with them).
   */
  static atEndOfTurn(fn: () => void): void {
    turnWork[workCount++] = fn;
    scheduleTurnEnd();
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
  close(code: GoodbyeCodeValue | number = GoodbyeCode.NORMAL, reason = 'closing', error?: P2PError): void {
    if (this.state === 'closed') return;
    this.sendNow({ type: MessageType.GOODBYE, code, reason: truncateUtf8(reason, LIMITS.reasonBytes) });
    this.flush(true);
    this.terminate({ code, reason, byPeer: false, error });
  }

  // ---- inbound ------------------------------------------------------------------------------

  /**
   * Bytes read from the socket. A socket with net's onread (tcp.ts dials so) hands them here;
   * `reused`: `chunk` is a view of a buffer the next read overwrites, so it is copied unless
   * it goes straight to the record opener (an open encrypted session), which keeps nothing of
   * it. Other sockets emit 'data' (onData).
   */
  read(chunk: Buffer, reused: boolean): void {
    this.onData(reused && this.opener === undefined ? Buffer.from(chunk) : chunk);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    try {
      if (this.opener) this.opener.push(chunk, this.onPlaintext);
      else this.decoder.push(chunk, this.onFrame);
    } catch (err) {
      // A ProtocolError is the peer's fault. Anything else is a bug of ours that this peer's
      // bytes reached: it must not escape a socket handler and take the process down, so it
      // ends only this connection, counted and reported as INTERNAL.
      if (err instanceof ProtocolError) this.fail(err);
      else this.fail(new ProtocolError('INTERNAL', `internal error while handling a message: ${err instanceof Error ? err.message : String(err)}`));
    }
  };

  /** Decrypted record bytes: the frame stream of an encrypted session. */
  private readonly onPlaintext = (plaintext: Buffer): void => {
    if (this.state !== 'closed') this.decoder.push(plaintext, this.onFrame);
  };

  private readonly onFrame = (body: Buffer): void => {
    if (this.state === 'closed') return;
    this.cfg.tap?.(this, 'in', body);
    if (this.state === 'open' && looksLikeGossip(body)) {
      // Peeked, not decoded: the gossip engine reads the body by offsets (a listener throws
      // ProtocolError for a malformed one, handled in onData).
      this.cfg.metrics.frameIn(MessageType.GOSSIP, body.length + FRAME_HEADER_BYTES);
      this.lastContact = this.cfg.clock.now();
      this.emit('message', { type: MessageType.GOSSIP, body });
      return;
    }
    const msg = decodeMessage(body); // throws ProtocolError, handled in onData
    this.cfg.metrics.frameIn(msg.type, body.length + FRAME_HEADER_BYTES);
    this.lastContact = this.cfg.clock.now();
    if (msg.type === MessageType.GOODBYE) {
      const reason = `peer said goodbye: ${msg.reason}`;
      // A refusal during the handshake is this side's failure too: say which (NETWORK_MISMATCH...).
      const refused = this.state === 'handshake' ? HANDSHAKE_REFUSALS[msg.code] : undefined;
      return this.terminate({ code: msg.code, reason, byPeer: true, goodbye: true, ...(refused ? { error: new ProtocolError(refused, reason) } : {}) });
    }
    if (this.state !== 'open') {
      if (msg.type !== MessageType.HANDSHAKE) {
        throw new ProtocolError('UNEXPECTED_MESSAGE', `${MESSAGE_TYPE_NAMES[msg.type]} before the handshake completed`);
      }
      return this.onHandshake(msg.noise);
    }
    switch (msg.type) {
      case MessageType.HANDSHAKE:
        throw new ProtocolError('UNEXPECTED_MESSAGE', 'HANDSHAKE after the handshake completed');
      case MessageType.PING:
        this.sendNow({ type: MessageType.PONG, seq: msg.seq });
        return;
      case MessageType.PONG: {
        const sentAt = this.pingSentAt.get(msg.seq);
        if (sentAt !== undefined) {
          this.pingSentAt.delete(msg.seq);
          const rtt = this.cfg.clock.now() - sentAt;
          this.cfg.metrics.observeRtt(rtt);
          if (this.rttSamples.push(rtt) > RTT_SAMPLES) this.rttSamples.shift();
          this.rttMs = Math.min(...this.rttSamples);
        }
        return;
      }
      case MessageType.GOSSIP:
        return; // not reached: a GOSSIP that decodes is in the fixed layout, handed up above
      default:
        this.emit('message', msg);
    }
  };

  private onHandshake(noise: Buffer): void {
    const hs = this.hs;
    if (!hs) throw new ProtocolError('UNEXPECTED_MESSAGE', 'HANDSHAKE after the handshake completed');
    let reply: Buffer | undefined;
    try {
      reply = hs.receive(noise);
    } catch (err) {
      const cipher = hs.refusalCipher;
      if (cipher) this.sealer = new RecordSealer(cipher);
      throw err;
    }
    if (reply) this.sendNow({ type: MessageType.HANDSHAKE, noise: reply });
    const done = hs.done;
    if (!done) return;
    this.hs = undefined;
    this.peerId = done.peerId;
    this.peerIdHex = done.peerId.toString('hex');
    this.peerPublicKey = done.peerPublicKey;
    this.peerListenHost = done.peerListenHost;
    this.peerListenPort = done.peerListenPort;
    this.observedHost = done.observedHost;
    this.observedPort = done.observedPort;
    this.version = done.version;
    this.cfg.keyLog?.(done.keyLog);
    // Our last handshake frame (the initiator's third message) goes out in clear; every
    // byte after it, both ways, is records on an encrypted session.
    this.flush(true);
    this.decoder.detach();
    const rest = this.decoder.takeRest();
    this.decoder = new FrameDecoder(this.cfg.maxFrameBytes);
    if (done.send && done.recv) {
      this.sealer = new RecordSealer(done.send);
      this.opener = new RecordOpener(done.recv);
    }
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.state = 'open';
    this.emit('open');
    // Bytes that arrived with the handshake's last frame belong to the session.
    for (const chunk of rest) {
      if (this.state !== 'open') break;
      if (this.opener) this.opener.push(chunk, this.onPlaintext);
      else this.decoder.push(chunk, this.onFrame);
    }
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
    this.pending[this.pendingCount++] = body;
    this.pendingBytes += frameBytes;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      turnFlush[flushCount++] = this;
      scheduleTurnEnd();
    }
    return true;
  }

  private drop(reason: DropReason): false {
    this.cfg.metrics.drop(reason);
    return false;
  }

  /** The end of the turn (endTurn above): write what the turn queued. */
  flushTurn(): void {
    this.flushScheduled = false;
    this.flush(false);
  }

  /**
   * Write what this turn of the event loop gathered. A batch of at most SINGLE_WRITE_BYTES
   * (nearly always: a tick's frames to one peer) is copied into one buffer of frames (on an
   * encrypted session, the record itself, sealed in place): one write, one cipher, no
   * per-frame header buffers. A larger one goes as a writev of frame headers and bodies, or
   * of records in pieces (a large body is not copied). While the socket is blocked
   * nothing is written unless `force` (closing: the GOODBYE must go out).
   */
  private flush(force: boolean): void {
    const count = this.pendingCount;
    if (count === 0 || this.socket.destroyed || (this.blocked && !force)) return;
    const bodies = this.pending;
    const bytes = this.pendingBytes;
    this.pendingCount = 0;
    this.pendingBytes = 0;
    let ok: boolean;
    if (bytes <= SINGLE_WRITE_BYTES) {
      // The frames written straight into one buffer (the record, sealed where they lie).
      const out = this.sealer ? RecordSealer.recordFor(bytes) : Buffer.allocUnsafe(bytes);
      encodeFramesInto(bodies, out, this.sealer ? RECORD_HEADER_BYTES : 0, count);
      this.written(count);
      ok = this.socket.write(this.sealer ? this.sealer.sealInPlace(out) : out);
    } else {
      const frames: Buffer[] = [];
      for (let i = 0; i < count; i++) frames.push(frameHeader(bodies[i]!.length), bodies[i]!);
      this.written(count);
      const out = this.sealer ? this.sealer.seal(frames) : frames;
      this.socket.cork();
      ok = true;
      for (const b of out) ok = this.socket.write(b);
      this.socket.uncork();
    }
    if (!ok) this.blocked = true;
  }

  /** The first `count` queue slots were written: empty them, or let a long queue go. */
  private written(count: number): void {
    if (this.pending.length > PENDING_SLOTS_KEPT) this.pending.length = 0;
    else this.pending.fill(NO_BODY, 0, count);
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    this.flush(false);
  };

  // ---- teardown -----------------------------------------------------------------------------

  private terminate(info: CloseInfo): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.pending.length = 0;
    this.pendingCount = 0;
    this.pendingBytes = 0;
    this.pingSentAt.clear();
    this.decoder.reset();
    const socket = this.socket;
    if (!socket.destroyed) {
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
