import { createCipheriv } from 'node:crypto';
import { expect } from 'chai';
import { P2PError, ProtocolError } from '../../lib/errors.js';
import { CipherState, NONCE_LIMIT } from '../../lib/noise/cipher-state.js';

const KEY = Buffer.alloc(32, 0x42);
const EMPTY = Buffer.alloc(0);

function thrown(fn: () => unknown): P2PError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    return err as P2PError;
  }
  throw new Error('did not throw');
}

/** ChaChaPoly per Noise: nonce = 32 zero bits || 64-bit counter little-endian; returns ciphertext || tag. */
function rawEncrypt(key: Buffer, n: bigint, plaintext: Buffer): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64LE(n, 4);
  const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  const ct = c.update(plaintext);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}

describe('CipherState', () => {
  it('increments the nonce once per message and uses it as the little-endian counter', () => {
    const cs = CipherState.fromKey(KEY);
    expect(cs.hasKey()).to.equal(true);
    for (let n = 0; n < 3; n++) {
      expect(cs.nonce).to.equal(n);
      expect(cs.encryptWithAd(EMPTY, Buffer.from('hello'))).to.deep.equal(rawEncrypt(KEY, BigInt(n), Buffer.from('hello')));
    }
    expect(cs.nonce).to.equal(3);
  });

  it('writes a counter above 2^32 in both halves of the 64-bit field', () => {
    const n = 2 ** 40 + 5;
    expect(CipherState.fromKey(KEY, n).encryptWithAd(EMPTY, Buffer.from('x'))).to.deep.equal(rawEncrypt(KEY, BigInt(n), Buffer.from('x')));
  });

  it('seals a list of chunks exactly as their concatenation', () => {
    const chunks = [Buffer.from('ab'), Buffer.alloc(0), Buffer.alloc(100, 7), Buffer.alloc(9000, 8), Buffer.from('z'), Buffer.from('y')];
    const a = CipherState.fromKey(KEY).encryptWithAd(EMPTY, chunks);
    expect(a).to.deep.equal(CipherState.fromKey(KEY).encryptWithAd(EMPTY, Buffer.concat(chunks)));
    expect(CipherState.fromKey(KEY).decryptWithAd(EMPTY, a)).to.deep.equal(Buffer.concat(chunks));
  });

  it('encrypts into a given buffer at an offset exactly as encryptWithAd, and counts the nonce', () => {
    const out = Buffer.alloc(3 + 5 + 16 + 2, 0xee);
    const cs = CipherState.fromKey(KEY, 7);
    expect(cs.encryptInto(EMPTY, Buffer.from('hello'), out, 3)).to.equal(21);
    expect(cs.nonce).to.equal(8);
    expect(out.subarray(3, 24)).to.deep.equal(rawEncrypt(KEY, 7n, Buffer.from('hello')));
    expect(out.subarray(0, 3)).to.deep.equal(Buffer.alloc(3, 0xee));
    expect(out.subarray(24)).to.deep.equal(Buffer.alloc(2, 0xee));
  });

  it('authenticates the associated data', () => {
    const ct = CipherState.fromKey(KEY).encryptWithAd(Buffer.from('ad'), Buffer.from('msg'));
    expect(CipherState.fromKey(KEY).decryptWithAd(Buffer.from('ad'), ct).toString()).to.equal('msg');
    expect(thrown(() => CipherState.fromKey(KEY).decryptWithAd(Buffer.from('AD'), ct)).code).to.equal('BAD_RECORD');
  });

  it('rekeys to the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes) and keeps the nonce', () => {
    const cs = CipherState.fromKey(KEY);
    cs.encryptWithAd(EMPTY, Buffer.from('one'));
    cs.rekey();
    const expected = rawEncrypt(KEY, 2n ** 64n - 1n, Buffer.alloc(32)).subarray(0, 32);
    expect(cs.key).to.deep.equal(expected);
    expect(cs.nonce).to.equal(1);
    expect(cs.encryptWithAd(EMPTY, Buffer.from('two'))).to.deep.equal(rawEncrypt(expected, 1n, Buffer.from('two')));
  });

  it('refuses a wrong key, a flipped ciphertext byte and a flipped tag with BAD_RECORD, leaving the nonce', () => {
    const ct = CipherState.fromKey(KEY).encryptWithAd(EMPTY, Buffer.from('payload'));
    const wrongKey = CipherState.fromKey(Buffer.alloc(32, 0x43));
    expect(thrown(() => wrongKey.decryptWithAd(EMPTY, ct)).code).to.equal('BAD_RECORD');
    expect(wrongKey.nonce).to.equal(0);
    for (const i of [0, ct.length - 1]) {
      const bad = Buffer.from(ct);
      bad[i]! ^= 1;
      const cs = CipherState.fromKey(KEY);
      const err = thrown(() => cs.decryptWithAd(EMPTY, bad));
      expect(err).to.be.instanceOf(ProtocolError);
      expect(err.code, `byte ${i}`).to.equal('BAD_RECORD');
      expect(cs.nonce).to.equal(0);
    }
    expect(thrown(() => CipherState.fromKey(KEY).decryptWithAd(EMPTY, Buffer.alloc(15))).code).to.equal('BAD_RECORD');
  });

  it('refuses to use nonce 2^53-1 in either direction so the counter never wraps', () => {
    const ct = rawEncrypt(KEY, BigInt(NONCE_LIMIT - 1), Buffer.from('last'));
    const rx = CipherState.fromKey(KEY, NONCE_LIMIT - 1);
    expect(rx.decryptWithAd(EMPTY, ct).toString()).to.equal('last');
    const err = thrown(() => rx.decryptWithAd(EMPTY, ct));
    expect(err.code).to.equal('BAD_RECORD');
    expect(err.message).to.contain('nonce would wrap');
    const tx = CipherState.fromKey(KEY, NONCE_LIMIT - 1);
    tx.encryptWithAd(EMPTY, Buffer.from('last'));
    expect(thrown(() => tx.encryptWithAd(EMPTY, Buffer.from('again'))).code).to.equal('BAD_RECORD');
  });

  it('passes plaintext through while it has no key, as Noise specifies', () => {
    const cs = new CipherState();
    expect(cs.hasKey()).to.equal(false);
    expect(cs.encryptWithAd(EMPTY, Buffer.from('clear')).toString()).to.equal('clear');
    expect(cs.nonce).to.equal(0);
  });

  it('rejects a key that is not 32 bytes as caller misuse', () => {
    expect(thrown(() => CipherState.fromKey(Buffer.alloc(31))).code).to.equal('INVALID_ARGUMENT');
  });
});
