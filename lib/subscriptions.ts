/**
 * The local end of delivery: the handlers subscribed to each topic, and the hand-over of a
 * message to them (decoded once, every handler called, a throw or rejection caught). No
 * sockets and no timers.
 *
 * Who calls what (all wired by lib/network.ts):
 * - P2PNetwork.subscribe() calls add(), with the topic already checked;
 * - the gossip engine asks has() before it copies a payload out of a frame, and calls
 *   deliver() for each new message on a subscribed topic (through the network's gossip host);
 * - the network's dispatch calls direct() for each DIRECT a peer sent, after its budgets.
 * It answers through SubscriptionsHost: invalid() for a payload that is not MessagePack (it
 * costs the sender score), failed() for a handler that threw or rejected.
 */
import type { Logger } from 'pino';
import { answerRequest } from './direct.js';
import type { DeliveryInfo } from './gossip/engine.js';
import type { Metrics } from './metrics.js';
import { unpackValue } from './wire/codec.js';
import { AckStatus } from './wire/messages.js';
import type { Message } from './wire/messages.js';

/**
 * Handler for a topic: data is the decoded MessagePack value. May return a promise. For a
 * request (request()), the first handler's return value (or what its promise resolves to) is
 * the answer; otherwise the value is ignored.
 */
export type MessageHandler = (data: unknown, info: DeliveryInfo) => unknown;

/** A DIRECT message (sendToPeer or request) as dispatched. */
export type DirectMessage = Extract<Message, { type: 8 }>;

/** What the subscriptions report to the network. */
export interface SubscriptionsHost {
  /** A peer sent a payload that is not valid MessagePack. */
  invalid(peerId: string, reason: 'bad_payload'): void;
  /** A subscriber's handler threw or rejected. */
  failed(topic: string, err: unknown): void;
}

export class Subscriptions {
  private readonly byTopic = new Map<string, Set<MessageHandler>>();

  /**
   * @param metrics counts deliveries (in total and per topic) and drops (no_subscriber).
   * @param log says at debug level when a direct message found no subscriber.
   */
  constructor(
    private readonly metrics: Pick<Metrics, 'delivered' | 'drop' | 'topics'>,
    private readonly log: Logger,
    private readonly host: SubscriptionsHost,
  ) {}

  /** Add a handler for `topic`; returns the function that removes it. */
  add(topic: string, handler: MessageHandler): () => void {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    const entry: MessageHandler = (d, i) => handler(d, i); // distinct per call: subscribing twice needs two unsubscribes
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.byTopic.get(topic) === set) this.byTopic.delete(topic);
    };
  }

  /** Whether anyone subscribes to `topic`. */
  has(topic: string): boolean {
    return (this.byTopic.get(topic)?.size ?? 0) > 0;
  }

  /** Decode `payload` once and call every handler of `topic` with it. */
  deliver(topic: string, payload: Buffer, info: DeliveryInfo): void {
    const handlers = this.byTopic.get(topic);
    if (!handlers || handlers.size === 0) {
      // Gossip on a topic we do not subscribe to is only relayed; a direct message to one is lost.
      if (info.direct) {
        this.metrics.drop('no_subscriber');
        this.log.debug({ topic, peer: info.from.slice(0, 12) }, 'direct message on a topic with no subscriber');
      }
      return;
    }
    let data: unknown;
    try {
      data = unpackValue(payload);
    } catch {
      this.host.invalid(info.from, 'bad_payload');
      return;
    }
    this.metrics.delivered++;
    this.metrics.topics.delivered(topic, info.direct || info.hops === 0 ? undefined : info.hops);
    for (const handler of handlers) {
      try {
        const r = handler(data, info);
        if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(undefined, (err) => this.host.failed(topic, err));
      } catch (err) {
        this.host.failed(topic, err);
      }
    }
  }

  /**
   * A DIRECT from peer `from`: acknowledged with what became of it (§4.9). A request is
   * answered with the first handler's value once it settles; a retry of a ref already
   * delivered is answered DUPLICATE and not delivered again.
   * @param isNew whether the message's ref was not delivered before (asked once, only when
   *   someone subscribes to its topic).
   * @param ack sends the ACK with a status and, for a request, the reply.
   */
  direct(from: string, msg: DirectMessage, isNew: () => boolean, ack: (status: number, reply?: Buffer | null) => void): void {
    const handlers = this.byTopic.get(msg.topic);
    if (!handlers || handlers.size === 0) {
      this.metrics.drop('no_subscriber');
      return ack(AckStatus.NO_SUBSCRIBER);
    }
    if (!isNew()) return ack(AckStatus.DUPLICATE);
    const info: DeliveryInfo = { id: msg.ref.toString('hex'), topic: msg.topic, from, hops: 1, direct: true };
    if (!msg.wantReply) {
      this.deliver(msg.topic, msg.payload, info);
      return ack(AckStatus.DELIVERED);
    }
    let data: unknown;
    try {
      data = unpackValue(msg.payload);
    } catch {
      this.host.invalid(from, 'bad_payload');
      return ack(AckStatus.HANDLER_FAILED, Buffer.from('request payload is not valid MessagePack'));
    }
    this.metrics.delivered++;
    answerRequest(handlers.values().next().value!, data, info, ack, (err) => this.host.failed(msg.topic, err));
  }
}
