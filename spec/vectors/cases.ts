/**
 * The fixed inputs of the test vectors: two identities from fixed seeds, fixed Noise keys and
 * references, a whole handshake, and one message of every type (some types twice, to cover nil, empty lists,
 * non-ASCII text and 64-bit integers). Everything here is deterministic: Ed25519 signatures
 * are too. generate.ts turns these into vectors.json; the codec specs reuse them as samples.
 */
import { identityFromSeed } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { x25519FromPrivate } from '../../lib/noise/handshake.js';
import { SessionHandshake } from '../../lib/transport/handshake.js';
import type { SessionConfig } from '../../lib/transport/handshake.js';
import { packValue } from '../../lib/wire/codec.js';
import { AckStatus, GoodbyeCode, MessageType } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';

/** `n` bytes counting up from `start` (mod 256): easy to recognise in a hex dump. */
export function counting(start: number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));
}

export const ALICE_SEED = counting(0x00, 32);
export const BOB_SEED = counting(0x20, 32);
export const alice: Identity = identityFromSeed(ALICE_SEED);
export const bob: Identity = identityFromSeed(BOB_SEED);

export const DIRECT_REF = counting(0xd0, 16);
export const NETWORK_ID = 'aethel';

/** Noise static and ephemeral X25519 private keys (any 32 bytes are a valid X25519 private key). */
export const ALICE_STATIC = x25519FromPrivate(counting(0x40, 32));
export const BOB_STATIC = x25519FromPrivate(counting(0x60, 32));
export const ALICE_EPHEMERAL = x25519FromPrivate(counting(0x80, 32));
export const BOB_EPHEMERAL = x25519FromPrivate(counting(0xa0, 32));

/** Alice (listening on 127.0.0.1:7001) dials Bob (not listening) at 127.0.0.1:7002 from 127.0.0.1:40000. */
export const aliceSession: SessionConfig = {
  identity: alice, networkId: NETWORK_ID, encrypted: true, minVersion: 2, maxVersion: 2,
  listenHost: '127.0.0.1', listenPort: 7001, remoteHost: '127.0.0.1', remotePort: 7002,
  staticKey: ALICE_STATIC, ephemeralKey: ALICE_EPHEMERAL,
};
export const bobSession: SessionConfig = {
  identity: bob, networkId: NETWORK_ID, encrypted: true, minVersion: 2, maxVersion: 2,
  listenHost: '', listenPort: 0, remoteHost: '127.0.0.1', remotePort: 40000,
  staticKey: BOB_STATIC, ephemeralKey: BOB_EPHEMERAL,
};

/** The three Noise messages of the handshake, from the fixed keys (deterministic: Ed25519 signs deterministically). */
export function runHandshake(): { messages: Buffer[]; initiator: SessionHandshake; responder: SessionHandshake } {
  const initiator = new SessionHandshake(true, aliceSession);
  const responder = new SessionHandshake(false, bobSession);
  const m1 = initiator.start();
  const m2 = responder.receive(m1)!;
  const m3 = initiator.receive(m2)!;
  responder.receive(m3);
  return { messages: [m1, m2, m3], initiator, responder };
}

function gossip(origin: Identity, seq: number, topic: string, payload: Buffer, rest: Pick<Gossip, 'ttl' | 'hops' | 'seenBy'>, signed: boolean): Gossip {
  const id = gossipMessageId(origin.publicKey, seq, topic, payload);
  return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic, ...rest, payload, signature: signed ? origin.sign(id) : null };
}

/** A signed GOSSIP whose seq needs 64 bits (a start time in microseconds, as the engine uses). */
export const gossipSigned = gossip(alice, 1_764_028_800_000_000, 'consensus', packValue({ height: 42, vote: 'yes' }), { ttl: 10, hops: 1, seenBy: [] }, true);
/** An unsigned, forwarded GOSSIP with a non-ASCII topic and a seen-by list. */
export const gossipUnsigned = gossip(bob, 3, 'état', packValue('hello'), {
  ttl: 9,
  hops: 2,
  seenBy: [bob.id.subarray(0, 8), alice.id.subarray(0, 8)],
}, false);

/** One named message per vector, in protocol order. */
export const MESSAGE_CASES: ReadonlyArray<{ name: string; message: Message }> = [
  ...runHandshake().messages.map((noise, i) => ({
    name: ['HANDSHAKE 1 (-> e) from alice', 'HANDSHAKE 2 (<- e, ee, s, es) from bob', 'HANDSHAKE 3 (-> s, se) from alice'][i]!,
    message: { type: MessageType.HANDSHAKE, noise } as Message,
  })),
  { name: 'PING', message: { type: MessageType.PING, seq: 7 } },
  { name: 'PONG', message: { type: MessageType.PONG, seq: 7 } },
  { name: 'PING with the largest seq', message: { type: MessageType.PING, seq: 0xffffffff } },
  { name: 'GOSSIP signed', message: gossipSigned },
  { name: 'GOSSIP unsigned', message: gossipUnsigned },
  { name: 'IHAVE', message: { type: MessageType.IHAVE, ids: [gossipSigned.id, gossipUnsigned.id] } },
  { name: 'IWANT', message: { type: MessageType.IWANT, ids: [gossipUnsigned.id] } },
  { name: 'IWANT empty', message: { type: MessageType.IWANT, ids: [] } },
  { name: 'DIRECT', message: { type: MessageType.DIRECT, ref: DIRECT_REF, topic: 'state_sync', payload: packValue({ key: 'k1', value: [1, 2, 3] }), wantReply: false } },
  { name: 'DIRECT request', message: { type: MessageType.DIRECT, ref: DIRECT_REF, topic: 'state_sync', payload: packValue({ from: 42 }), wantReply: true } },
  { name: 'ACK delivered', message: { type: MessageType.ACK, ref: DIRECT_REF, status: AckStatus.DELIVERED, reply: null } },
  { name: 'ACK with a reply', message: { type: MessageType.ACK, ref: DIRECT_REF, status: AckStatus.DELIVERED, reply: packValue({ height: 42 }) } },
  { name: 'ACK no subscriber', message: { type: MessageType.ACK, ref: DIRECT_REF, status: AckStatus.NO_SUBSCRIBER, reply: null } },
  { name: 'FIND_NODE', message: { type: MessageType.FIND_NODE, reqId: 77, target: bob.id } },
  {
    name: 'NODES',
    message: {
      type: MessageType.NODES,
      reqId: 77,
      contacts: [
        { id: alice.id, host: '127.0.0.1', port: 7001 },
        { id: bob.id, host: '::1', port: 7002 },
      ],
    },
  },
  { name: 'GOODBYE', message: { type: MessageType.GOODBYE, code: GoodbyeCode.NORMAL, reason: 'shutting down' } },
  { name: 'GOODBYE for a protocol error', message: { type: MessageType.GOODBYE, code: GoodbyeCode.PROTOCOL_ERROR, reason: 'frame length 0' } },
];
