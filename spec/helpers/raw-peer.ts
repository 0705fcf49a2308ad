/**
 * A hand-driven protocol peer for the transport specs: the conformance kit's WireClient
 * (raw bytes over a net.Socket, no Connection class) with the defaults these specs use,
 * loopback and networkId 'aethel', and errors instead of undefined when a wait runs out.
 */
import { WireClient } from '../../lib/conformance/wire-client.js';
import { generateIdentity } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Hello, Message } from '../../lib/wire/messages.js';

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

  hello(overrides: Partial<Hello> = {}): Hello {
    return this.client.hello('aethel', overrides);
  }
  send(msg: Message): void {
    this.client.send(msg);
  }
  sendRaw(bytes: Buffer): void {
    this.client.writeRaw(bytes);
  }

  /** Complete the handshake as an honest peer (the target's AUTH is verified). */
  async handshake(): Promise<void> {
    await this.client.handshake('aethel', WAIT_MS);
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
