/**
 * Noise SymmetricState (Noise Protocol Framework rev. 34, section 5.2) with SHA-256 as HASH
 * and HMAC-SHA256 HKDF (section 4.3): the chaining key ck, the handshake hash h and a
 * CipherState. Internal to the handshake (handshake.ts), exported for tests.
 */
import { createHash, createHmac } from 'node:crypto';
import { CipherState } from './cipher-state.js';

/** HASHLEN for SHA-256, bytes. */
export const HASH_BYTES = 32;

const EMPTY = Buffer.alloc(0);
const ONE = Buffer.from([1]);
const TWO = Buffer.from([2]);

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Noise HKDF(chainingKey, ikm) with two outputs, each 32 bytes (section 4.3): a temp key
 * HMAC(ck, ikm), then HMAC(temp, 0x01) and HMAC(temp, output1 || 0x02).
 */
export function hkdf2(chainingKey: Buffer, ikm: Buffer): [Buffer, Buffer] {
  const temp = createHmac('sha256', chainingKey).update(ikm).digest();
  const out1 = createHmac('sha256', temp).update(ONE).digest();
  const out2 = createHmac('sha256', temp).update(out1).update(TWO).digest();
  return [out1, out2];
}

/** The hashing and key-mixing half of a Noise handshake. */
export class SymmetricState {
  private ck: Buffer;
  private h: Buffer;
  private readonly cs = new CipherState();

  /**
   * Noise InitializeSymmetric(protocolName): h = the name zero-padded to 32 bytes when it
   * fits, else SHA-256(name); ck = h; no key.
   */
  constructor(protocolName: string) {
    const name = Buffer.from(protocolName, 'ascii');
    this.h = name.length <= HASH_BYTES ? Buffer.concat([name], HASH_BYTES).fill(0, name.length) : sha256(name);
    this.ck = this.h;
  }

  /** The handshake hash h so far (a copy). */
  get handshakeHash(): Buffer {
    return Buffer.from(this.h);
  }

  /** Noise MixKey(ikm): ck, tempK = HKDF(ck, ikm); the cipher takes tempK with nonce 0. */
  mixKey(ikm: Buffer): void {
    const [ck, tempK] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.cs.initializeKey(tempK);
  }

  /** Noise MixHash(data): h = SHA-256(h || data). */
  mixHash(data: Buffer): void {
    this.h = sha256(this.h, data);
  }

  /** Noise EncryptAndHash(plaintext): encrypt with h as associated data, then mix the result into h. */
  encryptAndHash(plaintext: Buffer): Buffer {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /**
   * Noise DecryptAndHash(ciphertext): decrypt with h as associated data, then mix the
   * ciphertext into h. Throws ProtocolError BAD_RECORD when the tag does not verify.
   */
  decryptAndHash(ciphertext: Buffer): Buffer {
    const plaintext = this.cs.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** True once a key has been mixed in, so encryptAndHash adds a 16-byte tag. */
  hasKey(): boolean {
    return this.cs.hasKey();
  }

  /**
   * Noise Split(): two CipherStates from HKDF(ck, empty). The first carries initiator to
   * responder, the second responder to initiator.
   */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, EMPTY);
    return [CipherState.fromKey(k1), CipherState.fromKey(k2)];
  }
}
