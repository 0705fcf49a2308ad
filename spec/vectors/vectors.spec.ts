import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProtocolError } from '../../lib/errors.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { identityFromSeed, nodeIdOf, verifySignature } from '../../lib/identity.js';
import { CipherState } from '../../lib/noise/cipher-state.js';
import { XXHandshake, x25519FromPrivate } from '../../lib/noise/handshake.js';
import { RecordOpener, RecordSealer } from '../../lib/noise/records.js';
import { NOISE_PROLOGUE, STATIC_KEY_TAG } from '../../lib/transport/handshake.js';
import { decodeIdentityPayload } from '../../lib/wire/codec.js';
import { decodeMessage, encodeMessage } from '../../lib/wire/codec.js';
import { FrameDecoder, encodeFrame } from '../../lib/wire/frame.js';
import { PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import { readStandardMsgpack } from '../wire/standard-msgpack.js';
import { buildVectors } from './build.js';
import { messageFromJson, messageToJson } from './json-form.js';
import type { JsonValue } from './json-form.js';

interface MessageVector { name: string; fields: Record<string, JsonValue>; body: string; frame: string }
interface GossipIdVector { name: string; origin: string; seq: number; topic: string; payload: string; preimage: string; id: string; signature: string | null }
interface KeyPairVector { private: string; public: string }
interface HandshakeVector {
  protocolName: string; prologue: string; staticKeyTag: string; initiator: 'alice';
  keys: Record<'alice' | 'bob', { static: KeyPairVector; ephemeral: KeyPairVector }>;
  payloads: string[]; messages: string[]; handshakeHash: string;
  initiatorToResponderKey: string; responderToInitiatorKey: string; keyLog: string;
}
interface RecordVector { name: string; from: 'alice' | 'bob'; nonce: number; plaintext: string; record: string }
interface Vectors {
  protocolVersion: number;
  identities: Record<'alice' | 'bob', { seed: string; publicKey: string; id: string }>;
  messages: MessageVector[];
  gossipIds: GossipIdVector[];
  handshake: HandshakeVector;
  records: RecordVector[];
  rejects: Array<{ name: string; frame: string; code: string }>;
}

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8')) as Vectors;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Buffer => Buffer.from(h, 'hex');

/** The message fields as the array docs/PROTOCOL.md §4 lays out, bytes as hex. */
function docLayout(fields: Record<string, JsonValue>): JsonValue {
  if (fields.type === 5) {
    // §4.5's fixed layout: seen-by entries as one bin, after hops.
    const f = fields;
    return [f.type!, f.id!, f.ttl!, f.hops!, (f.seenBy as string[]).join(''), f.origin!, f.seq!, f.topic!, f.payload!, f.signature!];
  }
  return Object.entries(fields).map(([k, v]) =>
    k === 'contacts' ? (v as Array<Record<string, JsonValue>>).map((c) => [c.id!, c.host!, c.port!]) : v,
  );
}

/** A standard-MessagePack value with bins as hex, for comparison with docLayout. */
function binsAsHex(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return hex(v);
  if (Array.isArray(v)) return v.map(binsAsHex);
  return v;
}

function messageVector(name: string): MessageVector {
  const v = vectors.messages.find((m) => m.name === name);
  if (!v) throw new Error(`no vector named ${name}`);
  return v;
}

describe('Protocol test vectors (spec/vectors/vectors.json)', () => {
  it('are for the protocol version the code speaks', () => {
    expect(vectors.protocolVersion).to.equal(PROTOCOL_VERSION);
  });

  it('are exactly what generate.ts produces from the fixed cases (run `npm run vectors` after a deliberate change)', () => {
    expect(JSON.parse(JSON.stringify(buildVectors()))).to.deep.equal(vectors);
  });

  for (const who of ['alice', 'bob'] as const) {
    it(`derive ${who}'s public key and node id from the fixed seed`, () => {
      const v = vectors.identities[who];
      const identity = identityFromSeed(bytes(v.seed));
      expect(hex(identity.publicKey)).to.equal(v.publicKey);
      expect(hex(createHash('sha256').update(bytes(v.publicKey)).digest())).to.equal(v.id);
      expect(identity.idHex).to.equal(v.id);
    });
  }

  describe('messages', () => {
    for (const v of vectors.messages) {
      it(`encode ${v.name} to exactly the stored body and frame`, () => {
        const body = encodeMessage(messageFromJson(v.fields));
        expect(hex(body)).to.equal(v.body);
        expect(hex(encodeFrame(body))).to.equal(v.frame);
      });

      it(`decode the stored ${v.name} frame back to the same fields`, () => {
        const bodies: Buffer[] = [];
        new FrameDecoder().push(bytes(v.frame), (b) => bodies.push(b));
        expect(bodies.map(hex)).to.deep.equal([v.body]);
        expect(messageToJson(decodeMessage(bodies[0]!))).to.deep.equal(v.fields);
      });

      it(`lay ${v.name} out in the documented field order as standard MessagePack`, () => {
        expect(binsAsHex(readStandardMsgpack(bytes(v.body)))).to.deep.equal(docLayout(v.fields));
      });
    }
  });

  describe('gossip message ids', () => {
    for (const v of vectors.gossipIds) {
      it(`hash the documented preimage of ${v.name} to its id, as the code does`, () => {
        expect(hex(createHash('sha256').update(bytes(v.preimage)).digest())).to.equal(v.id);
        expect(hex(gossipMessageId(bytes(v.origin), v.seq, v.topic, bytes(v.payload)))).to.equal(v.id);
        const msg = messageVector(v.name).fields;
        expect([msg.id, msg.origin, msg.seq, msg.topic, msg.payload, msg.signature]).to.deep.equal([
          v.id, v.origin, v.seq, v.topic, v.payload, v.signature,
        ]);
      });
    }

    it('carry an origin signature over the id that verifies and that the origin reproduces', () => {
      const signed = vectors.gossipIds.filter((v) => v.signature !== null);
      expect(signed).to.have.length.greaterThan(0);
      for (const v of signed) {
        expect(verifySignature(bytes(v.origin), bytes(v.id), bytes(v.signature!))).to.equal(true);
        expect(verifySignature(bytes(v.origin), bytes(v.preimage), bytes(v.signature!))).to.equal(false);
        const origin = Object.values(vectors.identities).find((i) => i.publicKey === v.origin);
        expect(hex(identityFromSeed(bytes(origin!.seed)).sign(bytes(v.id)))).to.equal(v.signature);
      }
    });
  });

  describe('handshake (§4.1)', () => {
    const h = vectors.handshake;
    const kp = (k: KeyPairVector) => x25519FromPrivate(bytes(k.private));

    it('use the documented prologue and static-key tag, and X25519 public keys that match their private keys', () => {
      expect(h.prologue).to.equal(hex(NOISE_PROLOGUE));
      expect(h.staticKeyTag).to.equal(hex(STATIC_KEY_TAG));
      for (const who of ['alice', 'bob'] as const) {
        expect(hex(kp(h.keys[who].static).publicKey)).to.equal(h.keys[who].static.public);
        expect(hex(kp(h.keys[who].ephemeral).publicKey)).to.equal(h.keys[who].ephemeral.public);
      }
    });

    it('are three HANDSHAKE messages that a plain Noise XX state machine reads to the stored payloads, hash and keys', () => {
      const init = new XXHandshake({ initiator: true, prologue: bytes(h.prologue), staticKey: kp(h.keys.alice.static), ephemeralKey: kp(h.keys.alice.ephemeral) });
      const resp = new XXHandshake({ initiator: false, prologue: bytes(h.prologue), staticKey: kp(h.keys.bob.static), ephemeralKey: kp(h.keys.bob.ephemeral) });
      expect(hex(init.writeMessage(bytes(h.payloads[0]!)))).to.equal(h.messages[0]);
      expect(hex(resp.readMessage(bytes(h.messages[0]!)))).to.equal(h.payloads[0]);
      expect(hex(resp.writeMessage(bytes(h.payloads[1]!)))).to.equal(h.messages[1]);
      expect(hex(init.readMessage(bytes(h.messages[1]!)))).to.equal(h.payloads[1]);
      expect(hex(init.writeMessage(bytes(h.payloads[2]!)))).to.equal(h.messages[2]);
      expect(hex(resp.readMessage(bytes(h.messages[2]!)))).to.equal(h.payloads[2]);
      expect(hex(init.handshakeHash)).to.equal(h.handshakeHash);
      expect(hex(resp.handshakeHash)).to.equal(h.handshakeHash);
      const a = init.split();
      const b = resp.split();
      expect(hex(a.send.key!)).to.equal(h.initiatorToResponderKey);
      expect(hex(b.recv.key!)).to.equal(h.initiatorToResponderKey);
      expect(hex(b.send.key!)).to.equal(h.responderToInitiatorKey);
      expect(h.keyLog).to.equal(`AETHEL_NOISE ${h.keys.alice.ephemeral.public} ${h.initiatorToResponderKey} ${h.responderToInitiatorKey} ${vectors.identities.alice.id} ${vectors.identities.bob.id}`);
    });

    it('carry identity payloads whose signatures bind each identity key to its Noise static key', () => {
      for (const [i, who] of [[1, 'bob'], [2, 'alice']] as const) {
        const p = decodeIdentityPayload(bytes(h.payloads[i]!));
        expect(hex(p.identityKey)).to.equal(vectors.identities[who].publicKey);
        expect(verifySignature(p.identityKey, Buffer.concat([STATIC_KEY_TAG, bytes(h.keys[who].static.public)]), p.staticSignature)).to.equal(true);
        expect(hex(nodeIdOf(p.identityKey))).to.equal(vectors.identities[who].id);
      }
    });
  });

  describe('records (§4.2)', () => {
    for (const v of vectors.records) {
      const key = v.from === 'alice' ? vectors.handshake.initiatorToResponderKey : vectors.handshake.responderToInitiatorKey;
      it(`seal ${v.name} to exactly the stored record, and open it back`, () => {
        expect(hex(Buffer.concat(new RecordSealer(CipherState.fromKey(bytes(key), v.nonce)).seal([bytes(v.plaintext)])))).to.equal(v.record);
        const out: Buffer[] = [];
        new RecordOpener(CipherState.fromKey(bytes(key), v.nonce)).push(bytes(v.record), (p) => out.push(Buffer.from(p)));
        expect(hex(Buffer.concat(out))).to.equal(v.plaintext);
      });

      it(`refuse ${v.name} with one bit flipped (BAD_RECORD)`, () => {
        const forged = bytes(v.record);
        forged[forged.length - 1]! ^= 1;
        expect(() => new RecordOpener(CipherState.fromKey(bytes(key), v.nonce)).push(forged, () => {})).to.throw(ProtocolError).with.property('code', 'BAD_RECORD');
      });
    }
  });

  describe('rejected frames', () => {
    for (const v of vectors.rejects) {
      it(`reject ${v.name} with ${v.code}`, () => {
        let caught: unknown;
        try {
          new FrameDecoder().push(bytes(v.frame), (body) => decodeMessage(body));
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ProtocolError);
        expect((caught as ProtocolError).code).to.equal(v.code);
      });
    }
  });
});
