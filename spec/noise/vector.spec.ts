import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { PROTOCOL_NAME, XXHandshake, x25519FromPrivate } from '../../lib/noise/handshake.js';

interface NoiseVector {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const FILE = new URL('../vectors/noise/Noise_XX_25519_ChaChaPoly_SHA256.json', import.meta.url);
const VECTOR = (JSON.parse(readFileSync(FILE, 'utf8')) as { vectors: NoiseVector[] }).vectors[0]!;
const hex = (s: string) => Buffer.from(s, 'hex');
const key = (s: string) => x25519FromPrivate(hex(s));

describe('Noise XX against the published vector', () => {
  it('is the vector for our protocol name, with a handshake and transport messages', () => {
    expect(VECTOR.protocol_name).to.equal(PROTOCOL_NAME);
    expect(VECTOR.messages.length).to.be.greaterThan(4);
  });

  it('produces every handshake and transport ciphertext byte for byte, decrypts each, and ends with the same hash', () => {
    const initiator = new XXHandshake({
      initiator: true,
      prologue: hex(VECTOR.init_prologue),
      staticKey: key(VECTOR.init_static),
      ephemeralKey: key(VECTOR.init_ephemeral),
    });
    const responder = new XXHandshake({
      initiator: false,
      prologue: hex(VECTOR.resp_prologue),
      staticKey: key(VECTOR.resp_static),
      ephemeralKey: key(VECTOR.resp_ephemeral),
    });
    const sides = [initiator, responder] as const;
    for (let i = 0; i < 3; i++) {
      const m = VECTOR.messages[i]!;
      const ciphertext = sides[i % 2]!.writeMessage(hex(m.payload));
      expect(ciphertext.toString('hex'), `handshake message ${i}`).to.equal(m.ciphertext);
      expect(sides[(i + 1) % 2]!.readMessage(ciphertext).toString('hex'), `payload ${i}`).to.equal(m.payload);
    }
    expect(initiator.complete && responder.complete).to.equal(true);
    expect(initiator.handshakeHash.toString('hex')).to.equal(VECTOR.handshake_hash);
    expect(responder.handshakeHash.toString('hex')).to.equal(VECTOR.handshake_hash);
    expect(initiator.remoteStatic).to.deep.equal(key(VECTOR.resp_static).publicKey);
    expect(responder.remoteStatic).to.deep.equal(key(VECTOR.init_static).publicKey);

    const states = [initiator.split(), responder.split()];
    for (let i = 3; i < VECTOR.messages.length; i++) {
      const m = VECTOR.messages[i]!;
      const sender = states[i % 2]!;
      const receiver = states[(i + 1) % 2]!;
      const ciphertext = sender.send.encryptWithAd(Buffer.alloc(0), hex(m.payload));
      expect(ciphertext.toString('hex'), `transport message ${i}`).to.equal(m.ciphertext);
      expect(receiver.recv.decryptWithAd(Buffer.alloc(0), ciphertext).toString('hex'), `payload ${i}`).to.equal(m.payload);
    }
  });
});
