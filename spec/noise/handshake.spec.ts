import { expect } from 'chai';
import { P2PError, ProtocolError } from '../../lib/errors.js';
import { XXHandshake, generateX25519, x25519FromPrivate, type X25519KeyPair } from '../../lib/noise/handshake.js';
import { dh, isLowOrder, localKey } from '../../lib/noise/x25519.js';

const PROLOGUE = Buffer.from('aethel test prologue');
const EMPTY = Buffer.alloc(0);
const PAYLOADS = [Buffer.from('first'), Buffer.from('second, from the responder'), Buffer.from('third')];

function pair(iKey = generateX25519(), rKey = generateX25519(), prologues = [PROLOGUE, PROLOGUE]) {
  return {
    initiator: new XXHandshake({ initiator: true, prologue: prologues[0]!, staticKey: iKey }),
    responder: new XXHandshake({ initiator: false, prologue: prologues[1]!, staticKey: rKey }),
  };
}

function thrown(fn: () => unknown): P2PError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    return err as P2PError;
  }
  throw new Error('did not throw');
}

/**
 * Run the three messages; `tamper(i, m)` may alter message i on the wire. Returns the first
 * error thrown, with the index of the message being handled, or undefined when all completed.
 */
function run(hs: ReturnType<typeof pair>, tamper: (i: number, m: Buffer) => Buffer = (_i, m) => m) {
  const sides = [hs.initiator, hs.responder];
  const payloads: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    try {
      const m = tamper(i, sides[i % 2]!.writeMessage(PAYLOADS[i]!));
      payloads.push(sides[(i + 1) % 2]!.readMessage(m));
    } catch (err) {
      return { at: i, err: err as P2PError };
    }
  }
  expect(payloads).to.deep.equal(PAYLOADS);
  return undefined;
}

describe('XXHandshake', () => {
  it('completes between two fresh key pairs, each side learning the other static key, with one hash', () => {
    const iKey = generateX25519();
    const rKey = generateX25519();
    const hs = pair(iKey, rKey);
    expect(hs.initiator.remoteStatic).to.equal(undefined);
    expect(run(hs)).to.equal(undefined);
    expect(hs.initiator.complete && hs.responder.complete).to.equal(true);
    expect(hs.initiator.remoteStatic).to.deep.equal(rKey.publicKey);
    expect(hs.responder.remoteStatic).to.deep.equal(iKey.publicKey);
    expect(hs.initiator.handshakeHash).to.deep.equal(hs.responder.handshakeHash);
    expect(hs.initiator.initiatorEphemeral).to.deep.equal(hs.responder.initiatorEphemeral);
    expect(hs.responder.remoteEphemeral).to.deep.equal(hs.initiator.initiatorEphemeral);
  });

  it('splits into oriented CipherStates: what one side sends the other receives, in both directions', () => {
    const hs = pair();
    run(hs);
    const i = hs.initiator.split();
    const r = hs.responder.split();
    expect(r.recv.decryptWithAd(EMPTY, i.send.encryptWithAd(EMPTY, Buffer.from('i->r'))).toString()).to.equal('i->r');
    expect(i.recv.decryptWithAd(EMPTY, r.send.encryptWithAd(EMPTY, Buffer.from('r->i'))).toString()).to.equal('r->i');
    expect(i.send.key).to.not.deep.equal(i.recv.key);
    expect(thrown(() => hs.initiator.split()).code).to.equal('INVALID_ARGUMENT');
  });

  it('gives fresh session keys each time even between the same static keys', () => {
    const iKey = generateX25519();
    const rKey = generateX25519();
    const a = pair(iKey, rKey);
    const b = pair(iKey, rKey);
    run(a);
    run(b);
    expect(a.initiator.split().send.key).to.not.deep.equal(b.initiator.split().send.key);
  });

  it('refuses out-of-turn calls: a read when it should write is NOISE_HANDSHAKE, a write when it should read is caller misuse', () => {
    const hs = pair();
    expect(thrown(() => hs.responder.writeMessage(EMPTY)).code).to.equal('INVALID_ARGUMENT');
    const m0 = hs.initiator.writeMessage(EMPTY);
    expect(thrown(() => hs.initiator.writeMessage(EMPTY)).code).to.equal('INVALID_ARGUMENT');
    const err = thrown(() => hs.initiator.readMessage(m0));
    expect(err).to.be.instanceOf(ProtocolError);
    expect(err.code).to.equal('NOISE_HANDSHAKE');
    expect(thrown(() => hs.responder.split()).code).to.equal('INVALID_ARGUMENT');

    const done = pair();
    run(done);
    expect(thrown(() => done.responder.readMessage(Buffer.alloc(64))).code).to.equal('NOISE_HANDSHAKE');
    expect(thrown(() => done.initiator.writeMessage(EMPTY)).code).to.equal('INVALID_ARGUMENT');
  });

  for (const [i, name] of [[0, '-> e'], [1, '<- e, ee, s, es'], [2, '-> s, se']] as const) {
    it(`fails the handshake when any byte of message ${i} (${name}) is flipped`, function () {
      this.timeout(60_000);
      let length = 0;
      run(pair(), (j, m) => {
        if (j === i) length = m.length;
        return m;
      });
      expect(length).to.equal([32 + 5, 96 + 26, 64 + 5][i]);
      for (let byte = 0; byte < length; byte++) {
        const result = run(pair(), (j, m) => {
          if (j !== i) return m;
          const bad = Buffer.from(m);
          bad[byte]! ^= 0x01;
          return bad;
        });
        expect(result, `byte ${byte}`).to.not.equal(undefined);
        expect(result!.err.code, `byte ${byte}`).to.equal('NOISE_HANDSHAKE');
        // Message 0 carries no tag (its payload is read unauthenticated): the initiator
        // notices when it reads message 1, whose tags cover everything hashed before.
        expect(result!.at, `byte ${byte}`).to.equal(i === 0 ? 1 : i);
      }
    });
  }

  it('fails with NOISE_HANDSHAKE when the prologues differ', () => {
    const result = run(pair(undefined, undefined, [PROLOGUE, Buffer.from('other network')]));
    expect(result?.at).to.equal(1);
    expect(result?.err.code).to.equal('NOISE_HANDSHAKE');
  });

  it('refuses short, truncated and oversized messages, then stays failed', () => {
    expect(thrown(() => pair().responder.readMessage(Buffer.alloc(31))).code).to.equal('NOISE_HANDSHAKE');
    const hs = pair();
    hs.responder.readMessage(hs.initiator.writeMessage(EMPTY));
    const m1 = hs.responder.writeMessage(EMPTY);
    expect(m1.length).to.equal(96);
    const err = thrown(() => hs.initiator.readMessage(m1.subarray(0, 95)));
    expect(err.code).to.equal('NOISE_HANDSHAKE');
    expect(thrown(() => hs.initiator.readMessage(m1))).to.equal(err);
    expect(thrown(() => pair().responder.readMessage(Buffer.alloc(65536, 9))).code).to.equal('NOISE_HANDSHAKE');
    expect(thrown(() => pair().initiator.writeMessage(Buffer.alloc(65536 - 32))).code).to.equal('INVALID_ARGUMENT');
  });

  it('refuses every low-order ephemeral key, with or without bit 255 set, before any DH', () => {
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ];
    const priv = localKey(generateX25519()).priv;
    for (const h of lowOrder) {
      for (const top of [0, 0x80]) {
        const key = Buffer.from(h, 'hex');
        key[31]! |= top;
        expect(isLowOrder(key), h).to.equal(true);
        // node:crypto agrees: the shared secret would be all zero, so the DH is refused.
        expect(thrown(() => dh(priv, key)).code).to.equal('NOISE_HANDSHAKE');
        const err = thrown(() => pair().responder.readMessage(key));
        expect(err.code).to.equal('NOISE_HANDSHAKE');
        expect(err.message).to.contain('low-order');
      }
    }
    expect(isLowOrder(generateX25519().publicKey)).to.equal(false);
  });

  it('derives the public key from a fixed private key as a generated pair does', () => {
    const k: X25519KeyPair = generateX25519();
    expect(x25519FromPrivate(k.privateKey)).to.deep.equal(k);
    expect(k.publicKey.length).to.equal(32);
    expect(k.privateKey.length).to.equal(32);
  });

  it('refuses a static key pair whose public key does not match its private key', () => {
    const mismatched = { publicKey: generateX25519().publicKey, privateKey: generateX25519().privateKey };
    expect(thrown(() => new XXHandshake({ initiator: true, prologue: PROLOGUE, staticKey: mismatched })).code).to.equal('INVALID_ARGUMENT');
  });
});
