/**
 * The conformance kit's own protocol client over a raw socket. It writes exactly the bytes a
 * check asks for (raw headers, broken bodies, forged messages) and records every message the
 * target sends back. It deliberately does not use Connection: the kit must be able to send
 * what an honest implementation never would, and must not trust the code it is testing.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { nodeIdOf, verifySignature } from '../identity.js';
import type { Identity } from '../identity.js';
import { authTranscript, newNonce } from '../transport/handshake.js';
import { decodeMessage, encodeMessage } from '../wire/codec.js';
import { FrameDecoder, MAX_FRAME_BYTES_LIMIT, encodeFrame } from '../wire/frame.js';
import { MessageType, PROTOCOL_VERSION } from '../wire/messages.js';
import type { Hello, Message } from '../wire/messages.js';

/** A check's verdict that the target misbehaved; `message` is the reason shown to the user. */
export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

/** What the target said about itself in its HELLO. */
export interface TargetInfo {
  hello: Hello;
  /** SHA-256 of the target's public key. */
  id: Buffer;
}

export class WireClient {
  /** Every valid message received, in order. */
  readonly received: Message[] = [];
  /** Set when the target sent bytes that are not a valid frame or message. */
  badBytes: string | undefined;
  closed = false;
  readonly nonce = newNonce();
  target: TargetInfo | undefined;
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES_LIMIT);
  private waiters = new Set<() => void>();
  private answerPings = false;

  private constructor(readonly socket: Socket, readonly identity: Identity) {
    socket.on('data', (chunk) => {
      try {
        this.decoder.push(chunk, (body) => this.onMessage(decodeMessage(body)));
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

  /** Open a TCP connection; rejects with a CheckFailure when the target cannot be reached. */
  static open(host: string, port: number, identity: Identity, timeoutMs: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
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

  /** Our HELLO, with fields a check may override (wrong version, network...). */
  hello(networkId: string, overrides: Partial<Hello> = {}): Hello {
    return {
      type: MessageType.HELLO,
      version: PROTOCOL_VERSION,
      networkId,
      publicKey: this.identity.publicKey,
      nonce: this.nonce,
      listenHost: '',
      listenPort: 0,
      ...overrides,
    };
  }

  send(msg: Message): void {
    this.writeRaw(encodeFrame(encodeMessage(msg)));
  }

  writeRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Send our HELLO and wait for the target's, checking its version, network and key. */
  async exchangeHellos(networkId: string, timeoutMs: number, overrides: Partial<Hello> = {}): Promise<TargetInfo> {
    this.send(this.hello(networkId, overrides));
    const hello = (await this.expect((m) => m.type === MessageType.HELLO, timeoutMs, 'HELLO')) as Hello;
    if (hello.version !== PROTOCOL_VERSION) throw new CheckFailure(`target HELLO states version ${hello.version}, expected ${PROTOCOL_VERSION}`);
    if (hello.networkId !== networkId) throw new CheckFailure(`target HELLO states network ${JSON.stringify(hello.networkId)}, expected ${JSON.stringify(networkId)}`);
    this.target = { hello, id: nodeIdOf(hello.publicKey) };
    return this.target;
  }

  /** The whole handshake (§4.1, §4.2): HELLOs, our AUTH, the target's AUTH verified. */
  async handshake(networkId: string, timeoutMs: number, overrides: Partial<Hello> = {}): Promise<TargetInfo> {
    const target = await this.exchangeHellos(networkId, timeoutMs, overrides);
    this.send({ type: MessageType.AUTH, signature: this.identity.sign(authTranscript(target.hello.nonce, this.identity.id, target.id)) });
    const auth = await this.expect((m) => m.type === MessageType.AUTH, timeoutMs, 'AUTH');
    if (auth.type !== MessageType.AUTH) throw new CheckFailure('unreachable');
    if (!verifySignature(target.hello.publicKey, authTranscript(this.nonce, target.id, this.identity.id), auth.signature)) {
      throw new CheckFailure('target AUTH signature does not verify over tag || our nonce || its id || our id');
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
