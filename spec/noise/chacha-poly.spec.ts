import { createCipheriv, createDecipheriv } from 'node:crypto';
import { expect } from 'chai';
import { ChaChaPoly, isJsAeadAvailable, JS_AEAD_MAX_BYTES } from '../../lib/noise/chacha-poly.js';
import { CipherState } from '../../lib/noise/cipher-state.js';

/** A deterministic byte source (xorshift32), so a failing case can be rerun. */
function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** The 96-bit nonce as the three little-endian words seal() and openInPlace() take. */
function words(iv: Buffer): [number, number, number] {
  return [iv.readUInt32LE(0), iv.readUInt32LE(4), iv.readUInt32LE(8)];
}

function nodeSeal(key: Buffer, iv: Buffer, ad: Buffer, pt: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  if (ad.length > 0) c.setAAD(ad, { plaintextLength: pt.length });
  return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
}

describe('ChaChaPoly (TypeScript ChaCha20-Poly1305 for small records)', () => {
  before(function () {
    if (!isJsAeadAvailable) this.skip();
  });

  it('gives the AEAD test vector of RFC 8439 section 2.8.2', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x80 + i));
    const iv = Buffer.from('070000004041424344454647', 'hex');
    const ad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex');
    const pt = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const out = Buffer.alloc(pt.length + 16);
    new ChaChaPoly(key).seal(...words(iv), ad, pt, 0, pt.length, out, 0);
    expect(out.subarray(0, 16).toString('hex')).to.equal('d31a8d34648e60db7b86afbc53ef7ec2');
    expect(out.subarray(pt.length).toString('hex')).to.equal('1ae10b594f09e26a7e902ecbd0600691');
  });

  it('seals exactly as node:crypto for every length from 0 to 1100 bytes and random keys, nonces and associated data', () => {
    for (let len = 0; len <= 1100; len++) {
      const key = bytes(len + 1, 32);
      const iv = bytes(len + 7, 12);
      const ad = bytes(len + 13, len % 5 === 0 ? len % 70 : 0);
      const pt = bytes(len + 29, len);
      const out = Buffer.alloc(len + 20, 0xee);
      new ChaChaPoly(key).seal(...words(iv), ad, pt, 0, len, out, 2);
      expect(out.subarray(2, 2 + len + 16).equals(nodeSeal(key, iv, ad, pt)), `length ${len}`).to.equal(true);
      expect(out[0]).to.equal(0xee);
      expect(out[len + 18]).to.equal(0xee);
    }
  });

  it('opens in place what node:crypto sealed, and leaves the bytes unchanged when any bit was flipped', () => {
    for (let len = 0; len <= 700; len += 7) {
      const key = bytes(len + 3, 32);
      const iv = bytes(len + 5, 12);
      const pt = bytes(len + 11, len);
      const sealed = nodeSeal(key, iv, Buffer.alloc(0), pt);
      const cp = new ChaChaPoly(key);
      const buf = Buffer.from(sealed);
      expect(cp.openInPlace(...words(iv), Buffer.alloc(0), buf, 0, len)).to.equal(true);
      expect(buf.subarray(0, len).equals(pt)).to.equal(true);
      const bit = (len * 131) % (8 * sealed.length);
      const bad = Buffer.from(sealed);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const before = Buffer.from(bad);
      expect(cp.openInPlace(...words(iv), Buffer.alloc(0), bad, 0, len), `length ${len}, bit ${bit}`).to.equal(false);
      expect(bad.equals(before)).to.equal(true);
    }
  });

  it('computes the Poly1305 tag correctly when the accumulator reaches the modulus (all-ones blocks)', () => {
    // 0xff blocks drive every limb to its maximum, exercising the final conditional subtraction.
    const key = Buffer.alloc(32, 0xff);
    for (const len of [16, 32, 48, 64, 256, 1024]) {
      const iv = Buffer.alloc(12, 0xff);
      const pt = Buffer.alloc(len, 0xff);
      const out = Buffer.alloc(len + 16);
      new ChaChaPoly(key).seal(...words(iv), Buffer.alloc(16, 0xff), pt, 0, len, out, 0);
      expect(out.equals(nodeSeal(key, iv, Buffer.alloc(16, 0xff), pt)), `length ${len}`).to.equal(true);
    }
  });

  it('lets CipherState seal small records here and large ones in node:crypto, the same bytes either way, across a rekey', () => {
    const key = bytes(99, 32);
    const tx = CipherState.fromKey(key, 2 ** 32 - 1);
    const rx = CipherState.fromKey(key, 2 ** 32 - 1);
    for (const len of [1, 300, JS_AEAD_MAX_BYTES, JS_AEAD_MAX_BYTES + 1, 5000]) {
      const pt = bytes(len, len);
      const out = Buffer.alloc(len + 16);
      const iv = Buffer.alloc(12);
      iv.writeBigUInt64LE(BigInt(tx.nonce), 4);
      const expected = nodeSeal(tx.key!, iv, Buffer.alloc(0), pt);
      tx.encryptInto(Buffer.alloc(0), pt, out, 0);
      expect(out.equals(expected), `length ${len}`).to.equal(true);
      const opened = rx.decryptInPlace(Buffer.alloc(0), Buffer.from(out));
      expect(opened.equals(pt)).to.equal(true);
      tx.rekey();
      rx.rekey();
    }
    // After the rekeys the small path uses the new key: node:crypto opens what it seals.
    const iv = Buffer.alloc(12);
    iv.writeBigUInt64LE(BigInt(tx.nonce), 4);
    const out = Buffer.alloc(16 + 5);
    tx.encryptInto(Buffer.alloc(0), Buffer.from('hello'), out, 0);
    const d = createDecipheriv('chacha20-poly1305', tx.key!, iv, { authTagLength: 16 });
    d.setAuthTag(out.subarray(5));
    expect(Buffer.concat([d.update(out.subarray(0, 5)), d.final()]).toString()).to.equal('hello');
  });

  it('refuses a forged small record through CipherState.decryptInPlace with BAD_RECORD and keeps the nonce', () => {
    const key = bytes(5, 32);
    const sealed = CipherState.fromKey(key).encryptWithAd(Buffer.alloc(0), Buffer.from('small'));
    sealed[0]! ^= 1;
    const rx = CipherState.fromKey(key);
    expect(() => rx.decryptInPlace(Buffer.alloc(0), sealed)).to.throw().with.property('code', 'BAD_RECORD');
    expect(rx.nonce).to.equal(0);
  });
});
