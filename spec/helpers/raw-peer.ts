/**
 * A hand-driven protocol peer over a raw net.Socket: sends chosen messages or raw bytes and
 * records what comes back, so tests can provoke each failure the real code must handle.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { FrameDecoder, encodeFrame } from '../../lib/wire/frame.js';
import { decodeMessage, encodeMessage } from '../../lib/wire/codec.js';
import { MessageType, PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import type { Message, Hello } from '../../lib/wire/messages.js';
import { generateIdentity, nodeIdOf } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { authTranscript, newNonce } from '../../lib/transport/handshake.js';

export class RawPeer {
  readonly received: Message[] = [];
  readonly nonce = newNonce();
  closed = false;
  private readonly decoder = new FrameDecoder(1 << 24);
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket, readonly identity: Identity) {
    socket.on('data', (chunk) => {
      try {
        this.decoder.push(chunk, (body) => this.received.push(decodeMessage(body)));
      } catch {
        socket.destroy();
      }
      this.wakeAll();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wakeAll();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, identity = generateIdentity()): Promise<RawPeer> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new RawPeer(socket, identity);
  }

  hello(overrides: Partial<Hello> = {}): Hello {
    return {
      type: MessageType.HELLO,
      version: PROTOCOL_VERSION,
      networkId: 'aethel',
      publicKey: this.identity.publicKey,
      nonce: this.nonce,
      listenHost: '',
      listenPort: 0,
      ...overrides,
    };
  }

  send(msg: Message): void {
    this.socket.write(encodeFrame(encodeMessage(msg)));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Complete the handshake as an honest peer; resolves once our AUTH is sent. */
  async handshake(): Promise<void> {
    this.send(this.hello());
    const theirs = (await this.waitFor((m) => m.type === MessageType.HELLO)) as Hello;
    const sig = this.identity.sign(authTranscript(theirs.nonce, this.identity.id, nodeIdOf(theirs.publicKey)));
    this.send({ type: MessageType.AUTH, signature: sig });
    await this.waitFor((m) => m.type === MessageType.AUTH);
  }

  /** The first received message matching `pred`, waiting up to timeoutMs. */
  async waitFor(pred: (m: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find(pred);
      if (m) return m;
      if (this.closed) throw new Error(`connection closed; received ${this.received.map((x) => x.type).join(',')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the socket has closed, or rejects after timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for close');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  goodbye(): Message | undefined {
    return this.received.find((m) => m.type === MessageType.GOODBYE);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
