/**
 * A hand-driven protocol peer for the transport specs: the conformance kit's WireClient
 * (raw bytes over a net.Socket, no Connection class) with the defaults these specs use,
 * loopback and networkId 'aethel', and errors instead of undefined when a wait runs out.
 */
import { WireClient } from '../../lib/conformance/wire-client.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';
import type { HandshakeOverrides } from '../../lib/conformance/wire-client.js';

const WAIT_MS = 5000;

export class RawPeer {
  private constructor(readonly client: WireClient) {}

  static async connect(port: number, identity: Identity = generateIdentity()): Promise<RawPeer> {
    return new RawPeer(await WireClient.open('127.0.0.1', port, identity, WAIT_MS));
  }

  get socket(): WireClient['socket'] {
    return this.client.socket;
  }
  get identity(): Identity {
    return this.client.identity;
  }
  get closed(): boolean {
    return this.client.closed;
  }

  /** Send only the first handshake message (network 'aethel' unless overridden). */
  startHandshake(overrides: HandshakeOverrides = {}): void {
    this.client.startHandshake('aethel', overrides);
  }
  send(msg: Message): void {
    this.client.send(msg);
  }
  /** Bytes straight onto the socket, below the record layer. */
  sendRaw(bytes: Buffer): void {
    this.client.writeRaw(bytes);
  }
  /** Bytes into the session's frame stream (sealed in records once the session is encrypted). */
  sendSession(bytes: Buffer): void {
    this.client.writeSession(bytes);
  }

  /** Complete the handshake as an honest peer (the target's identity binding is verified). */
  async handshake(overrides: HandshakeOverrides = {}): Promise<void> {
    await this.client.handshake('aethel', WAIT_MS, overrides);
  }

  /** The first received message matching `pred`; throws if none arrives within timeoutMs. */
  waitFor(pred: (m: Message) => boolean, timeoutMs = WAIT_MS): Promise<Message> {
    return this.client.expect(pred, timeoutMs, 'a matching message');
  }

  /** Resolves once the socket has closed; throws after timeoutMs. */
  async waitClosed(timeoutMs = WAIT_MS): Promise<void> {
    if (!(await this.client.waitClosed(timeoutMs))) throw new Error(`not closed within ${timeoutMs} ms`);
  }

  goodbye(): Message | undefined {
    return this.client.received.find((m) => m.type === MessageType.GOODBYE);
  }

  destroy(): void {
    this.client.destroy();
  }
}
