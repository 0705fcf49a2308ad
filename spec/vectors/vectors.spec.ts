import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProtocolError } from '../../lib/errors.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { identityFromSeed, nodeIdOf, verifySignature } from '../../lib/identity.js';
import { authTranscript } from '../../lib/transport/handshake.js';
import { decodeMessage, encodeMessage } from '../../lib/wire/codec.js';
import { FrameDecoder, encodeFrame } from '../../lib/wire/frame.js';
import { PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import { readStandardMsgpack } from '../wire/standard-msgpack.js';
import { buildVectors } from './build.js';
import { messageFromJson, messageToJson } from './json-form.js';
import type { JsonValue } from './json-form.js';

interface MessageVector { name: string; fields: Record<string, JsonValue>; body: string; frame: string }
interface GossipIdVector { name: string; origin: string; seq: number; topic: string; payload: string; preimage: string; id: string; signature: string | null }
interface TranscriptVector { signer: 'alice' | 'bob'; verifier: 'alice' | 'bob'; verifierNonce: string; transcript: string; signature: string }
interface Vectors {
  protocolVersion: number;
  identities: Record<'alice' | 'bob', { seed: string; publicKey: string; id: string }>;
  messages: MessageVector[];
  gossipIds: GossipIdVector[];
  handshake: { tag: string; transcripts: TranscriptVector[] };
  rejects: Array<{ name: string; frame: string; code: string }>;
}

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8')) as Vectors;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Buffer => Buffer.from(h, 'hex');

/** The message fields as the array docs/PROTOCOL.md §4 lays out, bytes as hex. */
function docLayout(fields: Record<string, JsonValue>): JsonValue {
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

  describe('handshake transcripts', () => {
    for (const v of vectors.handshake.transcripts) {
      it(`lay out ${v.signer}'s transcript as tag || ${v.verifier}'s nonce || ${v.signer}'s id || ${v.verifier}'s id`, () => {
        const signerId = vectors.identities[v.signer].id;
        const verifierId = vectors.identities[v.verifier].id;
        expect(v.transcript).to.equal(vectors.handshake.tag + v.verifierNonce + signerId + verifierId);
        expect(hex(authTranscript(bytes(v.verifierNonce), bytes(signerId), bytes(verifierId)))).to.equal(v.transcript);
        const verifierHello = vectors.messages.find((m) => m.fields.type === 1 && m.fields.publicKey === vectors.identities[v.verifier].publicKey);
        expect(verifierHello?.fields.nonce).to.equal(v.verifierNonce);
      });

      it(`hold ${v.signer}'s deterministic signature, which verifies and is the one in ${v.signer}'s AUTH`, () => {
        const signer = vectors.identities[v.signer];
        expect(hex(identityFromSeed(bytes(signer.seed)).sign(bytes(v.transcript)))).to.equal(v.signature);
        expect(verifySignature(bytes(signer.publicKey), bytes(v.transcript), bytes(v.signature))).to.equal(true);
        expect(hex(nodeIdOf(bytes(signer.publicKey)))).to.equal(signer.id);
        expect(messageVector(`AUTH from ${v.signer}`).fields.signature).to.equal(v.signature);
      });
    }

    it('signatures do not verify for the swapped transcript (the ids bind the direction)', () => {
      const [a, b] = vectors.handshake.transcripts;
      expect(verifySignature(bytes(vectors.identities.alice.publicKey), bytes(b!.transcript), bytes(a!.signature))).to.equal(false);
    });
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
