/**
 * Builds the content of vectors.json from the fixed cases. The gossip id preimage is laid out
 * here by hand from docs/PROTOCOL.md §5, not by the library, so the vectors also check that
 * the code hashes what the document says.
 */
import { createHash } from 'node:crypto';
import { encodeFrame } from '../../lib/wire/frame.js';
import { encodeMessage, packValue } from '../../lib/wire/codec.js';
import type { X25519KeyPair } from '../../lib/noise/handshake.js';
import { MessageType, PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import type { Gossip } from '../../lib/wire/messages.js';
import { RecordSealer } from '../../lib/noise/records.js';
import { NOISE_PROLOGUE, STATIC_KEY_TAG, signStaticKey } from '../../lib/transport/handshake.js';
import { encodeIdentityPayload, encodeInitPayload } from '../../lib/wire/codec.js';
import {
  ALICE_EPHEMERAL, ALICE_SEED, ALICE_STATIC, BOB_EPHEMERAL, BOB_SEED, BOB_STATIC, MESSAGE_CASES, alice, aliceSession, bob, bobSession,
  gossipSigned, gossipUnsigned, runHandshake,
} from './cases.js';
import { messageToJson } from './json-form.js';
import type { JsonValue } from './json-form.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** docs/PROTOCOL.md §5, byte by byte. */
export function gossipIdPreimage(origin: Uint8Array, seq: number, topic: string, payload: Uint8Array): Buffer {
  const topicBytes = Buffer.from(topic, 'utf8');
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64BE(BigInt(seq));
  const topicLen = Buffer.alloc(2);
  topicLen.writeUInt16BE(topicBytes.length);
  const payloadLen = Buffer.alloc(4);
  payloadLen.writeUInt32BE(payload.length);
  return Buffer.concat([Buffer.from('aethel-p2p gossip v1', 'ascii'), origin, seqBytes, topicLen, topicBytes, payloadLen, payload]);
}

function gossipIdVector(name: string, g: Gossip): Record<string, JsonValue> {
  const preimage = gossipIdPreimage(g.origin, g.seq, g.topic, g.payload);
  return {
    name,
    origin: hex(g.origin),
    seq: g.seq,
    topic: g.topic,
    payload: hex(g.payload),
    preimage: hex(preimage),
    id: hex(createHash('sha256').update(preimage).digest()),
    signature: g.signature === null ? null : hex(g.signature),
  };
}

const frameHex = (body: Buffer): string => hex(encodeFrame(body));

/** Frames a receiver must reject, with the error code this implementation gives. */
function rejects(): Array<Record<string, JsonValue>> {
  const body = (value: unknown) => packValue(value);
  const pingWithTrailingByte = Buffer.concat([body([MessageType.PING, 7]), Buffer.from([0xc0])]);
  return [
    { name: 'frame length 0', frame: '00000000', code: 'FRAME_EMPTY' },
    { name: 'frame length 1 MiB + 1 (default maxFrameBytes is 1 MiB)', frame: '00100001', code: 'FRAME_TOO_LARGE' },
    { name: 'unknown type 99', frame: frameHex(body([99])), code: 'UNKNOWN_TYPE' },
    { name: 'a map instead of an array', frame: frameHex(body({ type: MessageType.PING, seq: 7 })), code: 'SCHEMA' },
    { name: 'PING with a trailing byte after the array', frame: frameHex(pingWithTrailingByte), code: 'MALFORMED' },
    { name: 'PING array cut short (2 elements announced, 1 present)', frame: frameHex(Buffer.from([0x92, MessageType.PING])), code: 'MALFORMED' },
    { name: 'PING with a third element', frame: frameHex(body([MessageType.PING, 7, 0])), code: 'SCHEMA' },
    { name: 'PING seq as a string', frame: frameHex(body([MessageType.PING, '7'])), code: 'SCHEMA' },
    { name: 'PONG seq of 2^32 (int 64)', frame: frameHex(body([MessageType.PONG, 2n ** 32n])), code: 'SCHEMA' },
    { name: 'PING seq 7.0 as float 64 (a float in an integer field)', frame: frameHex(Buffer.from('9203cb401c000000000000', 'hex')), code: 'SCHEMA' },
    { name: 'PING seq 7.0 as float 32', frame: frameHex(Buffer.from('9203ca40e00000', 'hex')), code: 'SCHEMA' },
    { name: 'the never-used byte 0xc1 as a PING seq', frame: frameHex(Buffer.from('9203c1', 'hex')), code: 'MALFORMED' },
    { name: 'a type code that is a string', frame: frameHex(body(['x'])), code: 'SCHEMA' },
    { name: 'type 2 (AUTH of version 1, retired)', frame: frameHex(body([2, Buffer.alloc(64)])), code: 'UNKNOWN_TYPE' },
    { name: 'HANDSHAKE carrying 1001 bytes', frame: frameHex(body([MessageType.HANDSHAKE, Buffer.alloc(1001)])), code: 'SCHEMA' },
    { name: 'ACK ref as str instead of bin', frame: frameHex(body([MessageType.ACK, 'a'.repeat(16), 0, null])), code: 'SCHEMA' },
    { name: 'GOSSIP as a generic array (not the fixed layout of §4.5)', frame: frameHex(body([MessageType.GOSSIP, gossipSigned.id, gossipSigned.ttl, gossipSigned.hops, Buffer.alloc(0), gossipSigned.origin, gossipSigned.seq, gossipSigned.topic, gossipSigned.payload, gossipSigned.signature])), code: 'SCHEMA' },
    { name: 'GOSSIP with ttl 33', frame: frameHex(withByte(encodeMessage(gossipSigned), 36, 33)), code: 'SCHEMA' },
    { name: 'GOSSIP with a seen-by of 7 bytes', frame: frameHex(withByte(encodeMessage(gossipSigned), 39, 7)), code: 'SCHEMA' },
  ];
}

function withByte(b: Buffer, at: number, value: number): Buffer {
  const out = Buffer.from(b);
  out[at] = value;
  return out;
}

const keyPair = (k: X25519KeyPair) => ({ private: hex(k.privateKey), public: hex(k.publicKey) });

/** docs/PROTOCOL.md §4.1: the whole handshake, alice (initiator) dialing bob, from fixed keys. */
function handshakeVector(): Record<string, JsonValue> {
  const { messages, initiator, responder } = runHandshake();
  const i = initiator.done!;
  const r = responder.done!;
  const identityPayload = (cfg: typeof aliceSession, version: number) => encodeIdentityPayload({
    version,
    identityKey: cfg.identity.publicKey,
    staticSignature: signStaticKey(cfg.identity, cfg.staticKey.publicKey),
    listenHost: cfg.listenHost,
    listenPort: cfg.listenPort,
    observedHost: cfg.remoteHost,
    observedPort: cfg.remotePort,
  });
  return {
    protocolName: 'Noise_XX_25519_ChaChaPoly_SHA256',
    prologue: hex(NOISE_PROLOGUE),
    staticKeyTag: hex(STATIC_KEY_TAG),
    initiator: 'alice',
    keys: {
      alice: { static: keyPair(ALICE_STATIC), ephemeral: keyPair(ALICE_EPHEMERAL) },
      bob: { static: keyPair(BOB_STATIC), ephemeral: keyPair(BOB_EPHEMERAL) },
    },
    payloads: [
      hex(encodeInitPayload({ minVersion: 2, maxVersion: 2, networkId: aliceSession.networkId, encrypted: true })),
      hex(identityPayload(bobSession, 2)),
      hex(identityPayload(aliceSession, 2)),
    ],
    messages: messages.map(hex),
    handshakeHash: hex(i.handshakeHash),
    initiatorToResponderKey: hex(i.send!.key!),
    responderToInitiatorKey: hex(r.send!.key!),
    keyLog: i.keyLog,
  };
}

/** docs/PROTOCOL.md §4.2: the first record each way after that handshake. */
function recordVectors(): Array<Record<string, JsonValue>> {
  const { initiator, responder } = runHandshake();
  const fromAlice = Buffer.concat([encodeFrame(encodeMessage({ type: MessageType.PING, seq: 7 })), encodeFrame(encodeMessage(gossipSigned))]);
  const fromBob = encodeFrame(encodeMessage({ type: MessageType.PONG, seq: 7 }));
  const seal = (cs: NonNullable<typeof initiator.done>['send'], plaintext: Buffer) => hex(Buffer.concat(new RecordSealer(cs!).seal([plaintext])));
  return [
    { name: 'first record from alice: PING and GOSSIP signed', from: 'alice', nonce: 0, plaintext: hex(fromAlice), record: seal(initiator.done!.send, fromAlice) },
    { name: 'first record from bob: PONG', from: 'bob', nonce: 0, plaintext: hex(fromBob), record: seal(responder.done!.send, fromBob) },
  ];
}

export function buildVectors(): Record<string, JsonValue> {
  const identity = (seed: Buffer, who: typeof alice) => ({ seed: hex(seed), publicKey: hex(who.publicKey), id: who.idHex });
  return {
    description: 'aethel-p2p protocol test vectors; see spec/vectors/README.md. Generated by `npm run vectors`; do not edit.',
    protocolVersion: PROTOCOL_VERSION,
    identities: { alice: identity(ALICE_SEED, alice), bob: identity(BOB_SEED, bob) },
    messages: MESSAGE_CASES.map(({ name, message }) => {
      const body = encodeMessage(message);
      return { name, fields: messageToJson(message), body: hex(body), frame: frameHex(body) };
    }),
    gossipIds: [gossipIdVector('GOSSIP signed', gossipSigned), gossipIdVector('GOSSIP unsigned', gossipUnsigned)],
    handshake: handshakeVector(),
    records: recordVectors(),
    rejects: rejects(),
  };
}
