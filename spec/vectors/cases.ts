/**
 * The fixed inputs of the test vectors: two identities from fixed seeds, fixed nonces and
 * references, and one message of every type (some types twice, to cover nil, empty lists,
 * non-ASCII text and 64-bit integers). Everything here is deterministic: Ed25519 signatures
 * are too. generate.ts turns these into vectors.json; the codec specs reuse them as samples.
 */
import { identityFromSeed } from '../../lib/identity.js';
import type { Identity } from '../../lib/identity.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { authTranscript } from '../../lib/transport/handshake.js';
import { packValue } from '../../lib/wire/codec.js';
import { GoodbyeCode, MessageType, PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import type { Gossip, Hello, Message } from '../../lib/wire/messages.js';

/** `n` bytes counting up from `start` (mod 256): easy to recognise in a hex dump. */
export function counting(start: number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));
}

export const ALICE_SEED = counting(0x00, 32);
export const BOB_SEED = counting(0x20, 32);
export const alice: Identity = identityFromSeed(ALICE_SEED);
export const bob: Identity = identityFromSeed(BOB_SEED);

export const ALICE_NONCE = counting(0xa0, 32);
export const BOB_NONCE = counting(0xb0, 32);
export const DIRECT_REF = counting(0xd0, 16);
export const NETWORK_ID = 'aethel';

export const helloAlice: Hello = {
  type: MessageType.HELLO,
  version: PROTOCOL_VERSION,
  networkId: NETWORK_ID,
  publicKey: alice.publicKey,
  nonce: ALICE_NONCE,
  listenHost: '127.0.0.1',
  listenPort: 7001,
};
export const helloBob: Hello = {
  type: MessageType.HELLO,
  version: PROTOCOL_VERSION,
  networkId: NETWORK_ID,
  publicKey: bob.publicKey,
  nonce: BOB_NONCE,
  listenHost: '',
  listenPort: 0,
};

/** Alice's AUTH transcript (she signs Bob's nonce) and Bob's (he signs Alice's). */
export const aliceTranscript = authTranscript(BOB_NONCE, alice.id, bob.id);
export const bobTranscript = authTranscript(ALICE_NONCE, bob.id, alice.id);

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
  { name: 'HELLO from alice, listening', message: helloAlice },
  { name: 'HELLO from bob, not listening', message: helloBob },
  { name: 'AUTH from alice', message: { type: MessageType.AUTH, signature: alice.sign(aliceTranscript) } },
  { name: 'AUTH from bob', message: { type: MessageType.AUTH, signature: bob.sign(bobTranscript) } },
  { name: 'PING', message: { type: MessageType.PING, seq: 7 } },
  { name: 'PONG', message: { type: MessageType.PONG, seq: 7 } },
  { name: 'PING with the largest seq', message: { type: MessageType.PING, seq: 0xffffffff } },
  { name: 'GOSSIP signed', message: gossipSigned },
  { name: 'GOSSIP unsigned', message: gossipUnsigned },
  { name: 'IHAVE', message: { type: MessageType.IHAVE, ids: [gossipSigned.id, gossipUnsigned.id] } },
  { name: 'IWANT', message: { type: MessageType.IWANT, ids: [gossipUnsigned.id] } },
  { name: 'IWANT empty', message: { type: MessageType.IWANT, ids: [] } },
  { name: 'DIRECT', message: { type: MessageType.DIRECT, ref: DIRECT_REF, topic: 'state_sync', payload: packValue({ key: 'k1', value: [1, 2, 3] }) } },
  { name: 'ACK', message: { type: MessageType.ACK, ref: DIRECT_REF } },
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
