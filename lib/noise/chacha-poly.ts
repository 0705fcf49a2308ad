/**
 * ChaCha20-Poly1305 (RFC 8439, sections 2.3-2.8) in TypeScript, for the small records of a
 * session. node:crypto creates a cipher object per call (it cannot take a new nonce on a
 * reused one), and that set-up costs more than the cipher work of a record of a few hundred
 * bytes. Sealing in one process, alternated with node:crypto (shared 2-core machine): 64 B in
 * 0.36x its time, 300 B in 0.64x, 600 B in 0.83x, 1 KiB in 1.26x. CipherState uses this for
 * records up to JS_AEAD_MAX_BYTES and node:crypto above, where OpenSSL's vectorised code is
 * faster; opening here also decrypts in place (no plaintext buffer). The
 * output is the same algorithm's, byte for byte: spec/noise/chacha-poly.spec.ts checks it
 * against node:crypto over random keys, nonces, associated data and lengths, and against the
 * RFC's test vectors.
 *
 * Poly1305 works on ten 13-bit limbs held in doubles: a product of two limbs (the multiplier
 * pre-multiplied by 5 for the wrap-around, 2^130 = 5 mod p) stays below 2^30 and a sum of ten
 * below 2^34, exact in a double. Only little-endian hosts use this path (the keystream is
 * read through a byte view of 32-bit words); isJsAeadAvailable says whether it may be used.
 */

/** Records of at most this many plaintext bytes are sealed and opened here; larger ones by node:crypto. */
export const JS_AEAD_MAX_BYTES = 768;

/** True on a little-endian host (the keystream's byte view assumes it). */
export const isJsAeadAvailable: boolean = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const TAG_BYTES = 16;

/**
 * One ChaCha20-Poly1305 key. seal() and open() take the 96-bit nonce as three little-endian
 * 32-bit words (Noise: 0, the counter's low and high halves). Not safe to share between
 * concurrent users (scratch state is per instance); each CipherState owns one.
 */
export class ChaChaPoly {
  /** The key as eight little-endian words. */
  private readonly key = new Uint32Array(8);
  /** One keystream block, and its bytes. */
  private readonly block = new Uint32Array(16);
  private readonly blockBytes = new Uint8Array(this.block.buffer);
  /** Poly1305 accumulator, ten 13-bit limbs; r and 5r as limbs; s as eight 16-bit words. */
  private readonly h = new Float64Array(10);
  private readonly r = new Float64Array(10);
  private readonly s = new Float64Array(10);
  private readonly pad = new Uint16Array(8);
  /** A zero-padded last block, and the lengths block. */
  private readonly scratch = new Uint8Array(16);
  private readonly tag = new Uint8Array(TAG_BYTES);

  constructor(key: Uint8Array) {
    this.setKey(key);
  }

  /** Replace the 32-byte key. */
  setKey(key: Uint8Array): void {
    for (let i = 0; i < 8; i++) this.key[i] = key[4 * i]! | (key[4 * i + 1]! << 8) | (key[4 * i + 2]! << 16) | (key[4 * i + 3]! << 24);
  }

  /**
   * Encrypt `len` bytes of `src` from `srcOff` into `dst` at `dstOff` (the two may be the
   * same bytes), then write the 16-byte tag right after the ciphertext in `dst`.
   */
  seal(n0: number, n1: number, n2: number, ad: Uint8Array, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): void {
    this.polyKey(n0, n1, n2);
    this.xor(n0, n1, n2, src, srcOff, len, dst, dstOff);
    this.mac(ad, dst, dstOff, len);
    dst.set(this.tag, dstOff + len);
  }

  /**
   * Check the tag of the `len` ciphertext bytes of `buf` at `off` (the tag follows them) and,
   * if it verifies, decrypt them in place. Returns false, with `buf` unchanged, when it does not.
   */
  openInPlace(n0: number, n1: number, n2: number, ad: Uint8Array, buf: Uint8Array, off: number, len: number): boolean {
    this.polyKey(n0, n1, n2);
    this.mac(ad, buf, off, len);
    let diff = 0;
    for (let i = 0; i < TAG_BYTES; i++) diff |= this.tag[i]! ^ buf[off + len + i]!;
    if (diff !== 0) return false;
    this.xor(n0, n1, n2, buf, off, len, buf, off);
    return true;
  }

  /** The Poly1305 key: the first 32 bytes of the block at counter 0 (section 2.6), as r, 5r and s. */
  private polyKey(n0: number, n1: number, n2: number): void {
    this.chacha(0, n0, n1, n2);
    const b = this.blockBytes;
    // r clamped (section 2.5): the top four bits of bytes 3, 7, 11, 15 and the bottom two of 4, 8, 12 cleared.
    const t0 = b[0]! | (b[1]! << 8);
    const t1 = b[2]! | ((b[3]! & 15) << 8);
    const t2 = (b[4]! & 252) | (b[5]! << 8);
    const t3 = b[6]! | ((b[7]! & 15) << 8);
    const t4 = (b[8]! & 252) | (b[9]! << 8);
    const t5 = b[10]! | ((b[11]! & 15) << 8);
    const t6 = (b[12]! & 252) | (b[13]! << 8);
    const t7 = b[14]! | ((b[15]! & 15) << 8);
    const r = this.r;
    r[0] = t0 & 0x1fff;
    r[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    r[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
    r[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    r[4] = ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
    r[5] = (t4 >>> 1) & 0x1fff;
    r[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    r[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
    r[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    r[9] = t7 >>> 5;
    for (let i = 0; i < 10; i++) this.s[i] = 5 * r[i]!;
    for (let i = 0; i < 8; i++) this.pad[i] = b[16 + 2 * i]! | (b[17 + 2 * i]! << 8);
  }

  /** XOR `len` bytes of `src` with the keystream from block counter 1 into `dst`. */
  private xor(n0: number, n1: number, n2: number, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): void {
    const blk = this.block;
    const sv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    const dv = src === dst ? sv : new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    let done = 0;
    let counter = 1;
    // Whole blocks a word at a time, then the tail a byte at a time.
    for (; len - done >= 64; done += 64, counter++) {
      this.chacha(counter, n0, n1, n2);
      const s = srcOff + done;
      const d = dstOff + done;
      for (let j = 0; j < 16; j++) dv.setUint32(d + 4 * j, sv.getUint32(s + 4 * j, true) ^ blk[j]!, true);
    }
    if (done < len) {
      this.chacha(counter, n0, n1, n2);
      const ks = this.blockBytes;
      const s = srcOff + done;
      const d = dstOff + done;
      for (let i = 0; i < len - done; i++) dst[d + i] = src[s + i]! ^ ks[i]!;
    }
  }

  /** The tag of (ad, ciphertext) per section 2.8 into this.tag. */
  private mac(ad: Uint8Array, ct: Uint8Array, off: number, len: number): void {
    const h = this.h;
    for (let i = 0; i < 10; i++) h[i] = 0;
    if (ad.length > 0) this.blocks(ad, 0, ad.length);
    this.blocks(ct, off, len);
    const z = this.scratch;
    writeLen(z, 0, ad.length);
    writeLen(z, 8, len);
    this.blocks(z, 0, 16);
    this.finish();
  }

  /** Absorb `len` bytes of `m` from `off`, the last block zero-padded to 16 bytes (as the AEAD pads; the padded copy is made in `scratch`). */
  private blocks(m: Uint8Array, off: number, len: number): void {
    const hh = this.h;
    const rr = this.r;
    const ss = this.s;
    const r0 = rr[0]!, r1 = rr[1]!, r2 = rr[2]!, r3 = rr[3]!, r4 = rr[4]!, r5 = rr[5]!, r6 = rr[6]!, r7 = rr[7]!, r8 = rr[8]!, r9 = rr[9]!;
    const s1 = ss[1]!, s2 = ss[2]!, s3 = ss[3]!, s4 = ss[4]!, s5 = ss[5]!, s6 = ss[6]!, s7 = ss[7]!, s8 = ss[8]!, s9 = ss[9]!;
    let h0 = hh[0]!, h1 = hh[1]!, h2 = hh[2]!, h3 = hh[3]!, h4 = hh[4]!, h5 = hh[5]!, h6 = hh[6]!, h7 = hh[7]!, h8 = hh[8]!, h9 = hh[9]!;
    const full = off + (len & ~15);
    for (let p = off; p < full; p += 16) {
      const b = m;
      const t0 = b[p]! | (b[p + 1]! << 8);
      const t1 = b[p + 2]! | (b[p + 3]! << 8);
      const t2 = b[p + 4]! | (b[p + 5]! << 8);
      const t3 = b[p + 6]! | (b[p + 7]! << 8);
      const t4 = b[p + 8]! | (b[p + 9]! << 8);
      const t5 = b[p + 10]! | (b[p + 11]! << 8);
      const t6 = b[p + 12]! | (b[p + 13]! << 8);
      const t7 = b[p + 14]! | (b[p + 15]! << 8);
      h0 += t0 & 0x1fff;
      h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
      h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
      h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
      h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
      h5 += (t4 >>> 1) & 0x1fff;
      h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
      h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
      h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
      h9 += (t7 >>> 5) | 0x800; // the 2^128 bit of a full block
      const d0 = h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6 + h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
      const d1 = h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7 + h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
      const d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8 + h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
      const d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9 + h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
      const d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
      const d5 = h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
      const d6 = h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2 + h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
      const d7 = h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3 + h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
      const d8 = h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4 + h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
      const d9 = h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5 + h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
      // Carry: every limb back to 13 bits, the carry out of the top wrapped around times 5.
      let c = Math.floor(d0 / 8192);
      h0 = d0 - c * 8192;
      let d = d1 + c; c = Math.floor(d / 8192); h1 = d - c * 8192;
      d = d2 + c; c = Math.floor(d / 8192); h2 = d - c * 8192;
      d = d3 + c; c = Math.floor(d / 8192); h3 = d - c * 8192;
      d = d4 + c; c = Math.floor(d / 8192); h4 = d - c * 8192;
      d = d5 + c; c = Math.floor(d / 8192); h5 = d - c * 8192;
      d = d6 + c; c = Math.floor(d / 8192); h6 = d - c * 8192;
      d = d7 + c; c = Math.floor(d / 8192); h7 = d - c * 8192;
      d = d8 + c; c = Math.floor(d / 8192); h8 = d - c * 8192;
      d = d9 + c; c = Math.floor(d / 8192); h9 = d - c * 8192;
      h0 += 5 * c;
      c = Math.floor(h0 / 8192);
      h0 -= c * 8192;
      h1 += c;
    }
    hh[0] = h0; hh[1] = h1; hh[2] = h2; hh[3] = h3; hh[4] = h4; hh[5] = h5; hh[6] = h6; hh[7] = h7; hh[8] = h8; hh[9] = h9;
    if (full < off + len) {
      const z = this.scratch;
      const k = off + len - full;
      for (let i = 0; i < 16; i++) z[i] = i < k ? m[full + i]! : 0;
      this.blocks(z, 0, 16);
    }
  }

  /** Fully reduce h mod 2^130 - 5, add s, and write the low 128 bits to this.tag. */
  private finish(): void {
    const h = this.h;
    // Limbs below 2^14 here, so integer operations are exact.
    let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!, h5 = h[5]!, h6 = h[6]!, h7 = h[7]!, h8 = h[8]!, h9 = h[9]!;
    for (let pass = 0; pass < 3; pass++) {
      let c = h0 >>> 13; h0 &= 0x1fff;
      h1 += c; c = h1 >>> 13; h1 &= 0x1fff;
      h2 += c; c = h2 >>> 13; h2 &= 0x1fff;
      h3 += c; c = h3 >>> 13; h3 &= 0x1fff;
      h4 += c; c = h4 >>> 13; h4 &= 0x1fff;
      h5 += c; c = h5 >>> 13; h5 &= 0x1fff;
      h6 += c; c = h6 >>> 13; h6 &= 0x1fff;
      h7 += c; c = h7 >>> 13; h7 &= 0x1fff;
      h8 += c; c = h8 >>> 13; h8 &= 0x1fff;
      h9 += c; c = h9 >>> 13; h9 &= 0x1fff;
      h0 += 5 * c;
    }
    // h < 2^130 now. h - p = h + 5 - 2^130: taken when h + 5 carries out of the top limb.
    let g0 = h0 + 5, c = g0 >>> 13; g0 &= 0x1fff;
    let g1 = h1 + c; c = g1 >>> 13; g1 &= 0x1fff;
    let g2 = h2 + c; c = g2 >>> 13; g2 &= 0x1fff;
    let g3 = h3 + c; c = g3 >>> 13; g3 &= 0x1fff;
    let g4 = h4 + c; c = g4 >>> 13; g4 &= 0x1fff;
    let g5 = h5 + c; c = g5 >>> 13; g5 &= 0x1fff;
    let g6 = h6 + c; c = g6 >>> 13; g6 &= 0x1fff;
    let g7 = h7 + c; c = g7 >>> 13; g7 &= 0x1fff;
    let g8 = h8 + c; c = g8 >>> 13; g8 &= 0x1fff;
    const g9 = h9 + c;
    if (g9 >>> 13 !== 0) {
      h0 = g0; h1 = g1; h2 = g2; h3 = g3; h4 = g4; h5 = g5; h6 = g6; h7 = g7; h8 = g8; h9 = g9 & 0x1fff;
    }
    // The low 128 bits as eight 16-bit words (limb k holds bits 13k..13k+12), plus s, mod 2^128.
    const pad = this.pad;
    const tag = this.tag;
    let carry = tagWord(tag, 0, ((h0 | (h1 << 13)) & 0xffff) + pad[0]!);
    carry = tagWord(tag, 1, (((h1 >>> 3) | (h2 << 10)) & 0xffff) + pad[1]! + carry);
    carry = tagWord(tag, 2, (((h2 >>> 6) | (h3 << 7)) & 0xffff) + pad[2]! + carry);
    carry = tagWord(tag, 3, (((h3 >>> 9) | (h4 << 4)) & 0xffff) + pad[3]! + carry);
    carry = tagWord(tag, 4, (((h4 >>> 12) | (h5 << 1) | (h6 << 14)) & 0xffff) + pad[4]! + carry);
    carry = tagWord(tag, 5, (((h6 >>> 2) | (h7 << 11)) & 0xffff) + pad[5]! + carry);
    carry = tagWord(tag, 6, (((h7 >>> 5) | (h8 << 8)) & 0xffff) + pad[6]! + carry);
    tagWord(tag, 7, (((h8 >>> 8) | (h9 << 5)) & 0xffff) + pad[7]! + carry);
  }

  /** One ChaCha20 block (section 2.3) for the key, `counter` and nonce words into this.block. */
  private chacha(counter: number, n0: number, n1: number, n2: number): void {
    const key = this.key;
    const k0 = key[0]!, k1 = key[1]!, k2 = key[2]!, k3 = key[3]!, k4 = key[4]!, k5 = key[5]!, k6 = key[6]!, k7 = key[7]!;
    let x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = counter, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16);
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20);
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24);
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16);
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24);
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16);
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24);
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16);
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24);
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16);
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20);
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24);
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16);
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24);
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16);
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24);
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16);
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24);
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25);
    }
    const o = this.block;
    o[0] = x0 + 0x61707865; o[1] = x1 + 0x3320646e; o[2] = x2 + 0x79622d32; o[3] = x3 + 0x6b206574;
    o[4] = x4 + k0; o[5] = x5 + k1; o[6] = x6 + k2; o[7] = x7 + k3;
    o[8] = x8 + k4; o[9] = x9 + k5; o[10] = x10 + k6; o[11] = x11 + k7;
    o[12] = x12 + counter; o[13] = x13 + n0; o[14] = x14 + n1; o[15] = x15 + n2;
  }
}

/** Write the low 16 bits of `w` as tag word `k` (little-endian); returns the carry into the next word. */
function tagWord(tag: Uint8Array, k: number, w: number): number {
  tag[2 * k] = w & 0xff;
  tag[2 * k + 1] = (w >>> 8) & 0xff;
  return w >>> 16;
}

/** `n` (below 2^53) as a 64-bit little-endian integer at `off`. */
function writeLen(b: Uint8Array, off: number, n: number): void {
  const lo = n >>> 0;
  const hi = Math.floor(n / 2 ** 32);
  b[off] = lo;
  b[off + 1] = lo >>> 8;
  b[off + 2] = lo >>> 16;
  b[off + 3] = lo >>> 24;
  b[off + 4] = hi;
  b[off + 5] = hi >>> 8;
  b[off + 6] = hi >>> 16;
  b[off + 7] = hi >>> 24;
}
