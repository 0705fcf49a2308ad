/**
 * The conformance kit's own protocol client over a raw socket. It writes exactly the bytes a
 * check asks for (raw headers, broken bodies, forged messages, wrong handshake payloads) and
 * records every message the target sends back. It deliberately does not use Connection or
 * the node's session handshake: the kit must be able to send what an honest implementation
 * never would, and must not trust the code it is testing. It builds on the Noise layer
 * (lib/noise, checked byte for byte against the published Noise vector) and the codec.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { nodeIdOf, verifySignature } from '../identity.js';
import type { Identity } from '../identity.js';
import { XXHandshake, generateX25519 } from '../noise/handshake.js';
import { RecordOpener, RecordSealer } from '../noise/records.js';
import { NOISE_PROLOGUE, STATIC_KEY_TAG, signStaticKey } from '../transport/handshake.js';
import { decodeIdentityPayload, decodeMessage, encodeIdentityPayload, encodeInitPayload, encodeMessage } from '../wire/codec.js';
import type { IdentityPayload, InitPayload } from '../wire/codec.js';
import { FrameDecoder, MAX_FRAME_BYTES_LIMIT, encodeFrame } from '../wire/frame.js';
import { MessageType, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../wire/messages.js';
import type { Message } from '../wire/messages.js';

/** A check's verdict that the target misbehaved; `message` is the reason shown to the user. */
export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

/** What the target proved about itself in the handshake. */
export interface TargetInfo {
  /** SHA-256 of the target's identity key. */
  id: Buffer;
  /** The target's identity payload (version chosen, identity key, listen and observed address). */
  payload: IdentityPayload;
  /** The target's Noise static key. */
  staticKey: Buffer;
}

/** What a check may change in the kit's side of the handshake (§4.1). */
export interface HandshakeOverrides extends Partial<InitPayload> {
  listenHost?: string;
  listenPort?: number;
  /** Replace the identity's signature over the Noise static key (a forged binding). */
  staticSignature?: Buffer;
}

export class WireClient {
  /** Every valid message received, in order. */
  readonly received: Message[] = [];
  /** Set when the target sent bytes that are not a valid frame, record or message. */
  badBytes: string | undefined;
  closed = false;
  target: TargetInfo | undefined;
  /** The Noise handshake, once started. */
  noise: XXHandshake | undefined;
  private readonly staticKey = generateX25519();
  private decoder = new FrameDecoder(MAX_FRAME_BYTES_LIMIT);
  private sealer: RecordSealer | undefined;
  private opener: RecordOpener | undefined;
  private waiters = new Set<() => void>();
  private answerPings = false;

  private constructor(readonly socket: Socket, readonly identity: Identity) {
    socket.on('data', (chunk) => {
      try {
        if (this.opener) this.opener.push(chunk, (pt) => this.decoder.push(pt, this.onFrame));
        else this.decoder.push(chunk, this.onFrame);
      } catch (err) {
        this.badBytes ??= (err as Error).message;
        socket.destroy();
      }
      this.wake();
    });
    // 'end' counts as closed: a target that half-closes after GOODBYE has ended the session.
    const onClosed = () => {
      this.closed = true;
      socket.destroy();
      this.wake();
    };
    socket.on('end', onClosed);
    socket.on('close', onClosed);
    socket.on('error', () => {});
  }

  /**
   * Open a TCP connection (from `localAddress` when given, e.g. 127.0.5.1 to play another
   * host on loopback); rejects with a CheckFailure when the target cannot be reached.
   */
  static open(host: string, port: number, identity: Identity, timeoutMs: number, localAddress?: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CheckFailure(`could not connect to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new CheckFailure(`could not connect to ${host}:${port}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new WireClient(socket, identity));
      });
    });
  }

  /** Send a message: in a record once the session is encrypted, else as a plain frame. */
  send(msg: Message): void {
    this.writeSession(encodeFrame(encodeMessage(msg)));
  }

  /** Bytes into the session's frame stream (sealed in a record on an encrypted session). */
  writeSession(bytes: Uint8Array): void {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.sealer) for (const r of this.sealer.seal([b])) this.writeRaw(r);
    else this.writeRaw(b);
  }

  /** `bytes` sealed as the session's next record(s), returned instead of written (for forging). */
  sealRecords(bytes: Buffer): Buffer[] {
    if (!this.sealer) throw new CheckFailure('no encrypted session');
    const all = Buffer.concat(this.sealer.seal([bytes]));
    // One buffer per record (header and ciphertext), so a check can alter one ciphertext.
    const records: Buffer[] = [];
    for (let off = 0; off < all.length; off += 2 + all.readUInt16BE(off)) records.push(all.subarray(off, off + 2 + all.readUInt16BE(off)));
    return records;
  }

  /** Bytes straight onto the socket, below any record layer. */
  writeRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Send the first handshake message (-> e with the init payload) and nothing more. */
  startHandshake(networkId: string, overrides: HandshakeOverrides = {}): void {
    this.noise = new XXHandshake({ initiator: true, prologue: NOISE_PROLOGUE, staticKey: this.staticKey });
    const init: InitPayload = {
      minVersion: overrides.minVersion ?? MIN_PROTOCOL_VERSION,
      maxVersion: overrides.maxVersion ?? PROTOCOL_VERSION,
      networkId: overrides.networkId ?? networkId,
      encrypted: overrides.encrypted ?? true,
    };
    this.send({ type: MessageType.HANDSHAKE, noise: this.noise.writeMessage(encodeInitPayload(init)) });
  }

  /**
   * Read the target's answer to our first message and check it: its identity signature over
   * its Noise static key, and a version we offered. Does not send the third message.
   */
  async readTargetIdentity(timeoutMs: number, overrides: HandshakeOverrides = {}): Promise<TargetInfo> {
    const m = await this.expect((x) => x.type === MessageType.HANDSHAKE, timeoutMs, 'the second handshake message');
    if (m.type !== MessageType.HANDSHAKE || !this.noise) throw new CheckFailure('unreachable');
    let payload: IdentityPayload;
    try {
      payload = decodeIdentityPayload(this.noise.readMessage(m.noise));
    } catch (err) {
      throw new CheckFailure(`target's second handshake message is invalid: ${(err as Error).message}`);
    }
    const staticKey = this.noise.remoteStatic!;
    if (!verifySignature(payload.identityKey, Buffer.concat([STATIC_KEY_TAG, staticKey]), payload.staticSignature)) {
      throw new CheckFailure('target identity signature over its Noise static key does not verify');
    }
    const lo = overrides.minVersion ?? MIN_PROTOCOL_VERSION;
    const hi = overrides.maxVersion ?? PROTOCOL_VERSION;
    if (payload.version < lo || payload.version > hi) throw new CheckFailure(`target chose version ${payload.version}, we offered ${lo}..${hi}`);
    this.target = { id: nodeIdOf(payload.identityKey), payload, staticKey };
    return this.target;
  }

  /** The whole handshake (§4.1) as the initiator; then every message travels in records (§4.2) unless `encrypted: false`. */
  async handshake(networkId: string, timeoutMs: number, overrides: HandshakeOverrides = {}): Promise<TargetInfo> {
    this.startHandshake(networkId, overrides);
    const target = await this.readTargetIdentity(timeoutMs, overrides);
    const noise = this.noise!;
    const ours: IdentityPayload = {
      version: target.payload.version,
      identityKey: this.identity.publicKey,
      staticSignature: overrides.staticSignature ?? signStaticKey(this.identity, this.staticKey.publicKey),
      listenHost: overrides.listenHost ?? '',
      listenPort: overrides.listenPort ?? 0,
      observedHost: this.socket.remoteAddress ?? '',
      observedPort: this.socket.remotePort ?? 0,
    };
    this.send({ type: MessageType.HANDSHAKE, noise: noise.writeMessage(encodeIdentityPayload(ours)) });
    if (overrides.encrypted ?? true) {
      const { send, recv } = noise.split();
      this.sealer = new RecordSealer(send);
      // Whatever the target sends from now on is records: frames already decoded stay received.
      this.opener = new RecordOpener(recv);
      this.decoder = new FrameDecoder(MAX_FRAME_BYTES_LIMIT);
    }
    this.answerPings = true;
    return target;
  }

  /** First received message matching pred, or undefined after timeoutMs or on close. */
  async next(pred: (m: Message) => boolean, timeoutMs: number, from = 0): Promise<Message | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.received.length; i++) if (pred(this.received[i]!)) return this.received[i];
      const left = deadline - Date.now();
      if (this.closed || left <= 0) return undefined;
      await this.sleep(left);
    }
  }

  /** Like next(), but a missing message is a CheckFailure naming what was awaited. */
  async expect(pred: (m: Message) => boolean, timeoutMs: number, what: string): Promise<Message> {
    const m = await this.next(pred, timeoutMs);
    if (m) return m;
    if (this.badBytes) throw new CheckFailure(`target sent invalid bytes while we waited for ${what}: ${this.badBytes}`);
    if (this.closed) throw new CheckFailure(`target closed the connection before sending ${what}${this.describeGoodbye()}`);
    throw new CheckFailure(`no ${what} within ${timeoutMs} ms`);
  }

  /** Resolves true once the connection is closed, false after timeoutMs. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.sleep(left);
    }
    return true;
  }

  /** Wait at least `ms` milliseconds, collecting whatever arrives. */
  async idle(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private describeGoodbye(): string {
    const g = this.received.find((m) => m.type === MessageType.GOODBYE);
    return g && g.type === MessageType.GOODBYE ? ` (GOODBYE code ${g.code}: ${g.reason})` : '';
  }

  private readonly onFrame = (body: Buffer): void => this.onMessage(decodeMessage(body));

  private onMessage(msg: Message): void {
    this.received.push(msg);
    // Keep the session alive like an honest peer would, so long checks are not cut short.
    if (this.answerPings && msg.type === MessageType.PING) this.send({ type: MessageType.PONG, seq: msg.seq });
  }

  private sleep(maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, maxMs);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
