/**
 * Noise CipherState (Noise Protocol Framework rev. 34, section 5.1) with the ChaChaPoly
 * cipher functions (section 12.3): a 32-byte key k and a counter nonce n. SymmetricState
 * owns one during the handshake; after Split() each direction of a session owns one, and the
 * record layer (records.ts) calls encryptWithAd/decryptWithAd once per record.
 *
 * The counter is a JS number. Noise reserves 2^64-1 and lets n run to 2^64-2; we refuse at
 * 2^53-1 (Number.MAX_SAFE_INTEGER) so the counter is always exact and never wraps. At a
 * million records per second that is still 285 years per session.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CipherChaCha20Poly1305 } from 'node:crypto';
import { P2PError, ProtocolError } from '../errors.js';

/** Bytes in a ChaChaPoly key. */
export const KEY_BYTES = 32;
/** Bytes in a Poly1305 authentication tag, appended to every ciphertext. */
export const TAG_BYTES = 16;
/** The first nonce value this implementation refuses to use: 2^53-1 (see the module comment). */
export const NONCE_LIMIT = Number.MAX_SAFE_INTEGER;

/**
 * Chunks shorter than this, bytes, are copied together and encrypted by one cipher update;
 * longer ones get an update of their own. One update costs about as much as copying several
 * KiB (bench/noise.ts: 50 frames of 300 B seal ~5x faster copied together than one update
 * each), so a tick's batch of small frames is copied once, and a large frame is not.
 */
export const COALESCE_BELOW_BYTES = 8192;

const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

/**
 * Write the 96-bit ChaChaPoly nonce for counter n into `iv` (12 bytes): 32 zero bits then n
 * as 64 bits little-endian (Noise section 12.3). createCipheriv copies the IV, so one buffer
 * per CipherState serves every record.
 */
function chachaNonce(iv: Buffer, n: number): Buffer {
  iv.writeUInt32LE(n >>> 0, 4);
  iv.writeUInt32LE(Math.floor(n / TWO_32), 8);
  return iv;
}

/** Nonce 2^64-1, which Noise reserves for REKEY(k). */
const REKEY_NONCE = Buffer.from('00000000ffffffffffffffff', 'hex');

/** A ChaChaPoly key and its counter nonce; encrypts or decrypts one message per call. */
export class CipherState {
  private k: Buffer | undefined;
  private n = 0;
  /** The nonce of the next message, rewritten per call (bytes 0-3 stay zero). */
  private readonly iv = Buffer.alloc(12);

  /** An empty CipherState (no key): encryption passes plaintext through, as Noise specifies. */
  constructor(key?: Buffer) {
    if (key !== undefined) this.initializeKey(key);
  }

  /**
   * A CipherState holding `key` (32 bytes): one direction of a session. `nonce` (default 0)
   * is the next counter value; anything else is for tests of the nonce limit.
   */
  static fromKey(key: Buffer, nonce = 0): CipherState {
    const cs = new CipherState(key);
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw P2PError.invalidArgument(`nonce must be a safe integer >= 0, got ${nonce}`);
    cs.n = nonce;
    return cs;
  }

  /** Noise InitializeKey(key): set k (copied) and reset n to 0. */
  initializeKey(key: Buffer): void {
    if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
      throw P2PError.invalidArgument(`a ChaChaPoly key is ${KEY_BYTES} bytes`);
    }
    // In 32 bytes of its own: Buffer.from() would copy into Node's shared 8 KiB pool, and a
    // key kept for a session's life would keep that whole block alive.
    this.k = Buffer.allocUnsafeSlow(KEY_BYTES);
    key.copy(this.k);
    this.n = 0;
  }

  /** Noise HasKey(): true once a key is set. */
  hasKey(): boolean {
    return this.k !== undefined;
  }

  /** Messages (records) encrypted or decrypted so far with this state: the next nonce. */
  get nonce(): number {
    return this.n;
  }

  /** The current key (a copy), for the key log; undefined while empty. Changes on rekey(). */
  get key(): Buffer | undefined {
    return this.k && Buffer.from(this.k);
  }

  /**
   * Noise EncryptWithAd(ad, plaintext): ciphertext || 16-byte tag, then n += 1. Without a key
   * returns the plaintext (concatenated). A list of chunks is sealed by one cipher: chunks of
   * COALESCE_BELOW_BYTES or more get an update each, runs of smaller ones are copied together
   * first (cheaper than an update per small chunk).
   */
  encryptWithAd(ad: Buffer, plaintext: Buffer | Buffer[]): Buffer {
    const parts = this.encryptParts(ad, Array.isArray(plaintext) ? plaintext : [plaintext]);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * EncryptWithAd returning the ciphertext as pieces (one per large chunk or run of small
   * ones, then the tag) so the record layer can hand them to writev without another copy.
   */
  encryptParts(ad: Buffer, chunks: readonly Buffer[]): Buffer[] {
    if (!this.k) return chunks.length === 1 ? [chunks[0]!] : [Buffer.concat(chunks)];
    const cipher = this.cipher(ad);
    const out: Buffer[] = [];
    // A run of small chunks is [runStart, i), runBytes long; copied together when it ends.
    let runStart = 0;
    let runBytes = 0;
    for (let i = 0; i <= chunks.length; i++) {
      const c = i < chunks.length ? chunks[i]! : undefined;
      if (c !== undefined && c.length < COALESCE_BELOW_BYTES) {
        runBytes += c.length;
        continue;
      }
      if (runBytes > 0) {
        out.push(cipher.update(i - runStart === 1 ? chunks[runStart]! : Buffer.concat(chunks.slice(runStart, i), runBytes)));
      }
      runStart = i + 1;
      runBytes = 0;
      if (c !== undefined) out.push(cipher.update(c));
    }
    cipher.final();
    out.push(cipher.getAuthTag());
    this.n++;
    return out;
  }

  /**
   * EncryptWithAd writing ciphertext || tag into `out` at `offset` (plaintext.length + 16
   * bytes), then n += 1: the record layer seals a small record into the buffer it writes
   * whole. Without a key copies the plaintext. Returns the bytes written.
   */
  encryptInto(ad: Buffer, plaintext: Buffer, out: Buffer, offset: number): number {
    if (!this.k) return plaintext.copy(out, offset);
    const cipher = this.cipher(ad);
    const n = plaintext.length > 0 ? cipher.update(plaintext).copy(out, offset) : 0;
    cipher.final();
    cipher.getAuthTag().copy(out, offset + n);
    this.n++;
    return n + TAG_BYTES;
  }

  /**
   * encryptInto() of the `len` bytes of `buf` at `offset` onto themselves, the tag written
   * right after them (buf must have room): what RecordSealer.sealInPlace needs. Without a key
   * the bytes stay as they are and nothing is appended. Returns len + 16 (len without a key).
   */
  encryptInPlace(ad: Buffer, buf: Buffer, offset: number, len: number): number {
    if (!this.k) return len;
    const cipher = this.cipher(ad);
    const n = len > 0 ? cipher.update(buf.subarray(offset, offset + len)).copy(buf, offset) : 0;
    cipher.final();
    cipher.getAuthTag().copy(buf, offset + n);
    this.n++;
    return n + TAG_BYTES;
  }

  /** A ChaCha20-Poly1305 cipher for the current key and nonce, with `ad` set (the caller finishes it and counts n). */
  private cipher(ad: Buffer): CipherChaCha20Poly1305 {
    this.checkNonce();
    const cipher = createCipheriv('chacha20-poly1305', this.k!, chachaNonce(this.iv, this.n), { authTagLength: TAG_BYTES });
    // plaintextLength matters only to CCM; the typings require it.
    if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: 0 });
    return cipher;
  }

  /**
   * Noise DecryptWithAd(ad, ciphertext): the plaintext, then n += 1. Throws ProtocolError
   * BAD_RECORD when the tag does not verify (n is then unchanged, as Noise requires) or the
   * nonce would pass NONCE_LIMIT. Without a key returns the ciphertext as is.
   */
  decryptWithAd(ad: Buffer, ciphertext: Buffer): Buffer {
    if (!this.k) return ciphertext;
    this.checkNonce();
    if (ciphertext.length < TAG_BYTES) throw new ProtocolError('BAD_RECORD', `ciphertext of ${ciphertext.length} bytes is shorter than a tag`);
    const end = ciphertext.length - TAG_BYTES;
    const decipher = createDecipheriv('chacha20-poly1305', this.k, chachaNonce(this.iv, this.n), { authTagLength: TAG_BYTES });
    if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: end });
    decipher.setAuthTag(ciphertext.subarray(end));
    const plaintext = end > 0 ? decipher.update(ciphertext.subarray(0, end)) : EMPTY;
    try {
      decipher.final();
    } catch {
      throw new ProtocolError('BAD_RECORD', `authentication failed at nonce ${this.n}`);
    }
    this.n++;
    return plaintext;
  }

  /**
   * Noise Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, empty ad, 32 zero bytes)
   * (section 11.3); n is unchanged. Both ends call it at the same record count.
   */
  rekey(): void {
    if (!this.k) throw P2PError.invalidArgument('rekey() needs a key');
    const cipher = createCipheriv('chacha20-poly1305', this.k, REKEY_NONCE, { authTagLength: TAG_BYTES });
    const next = cipher.update(Buffer.alloc(KEY_BYTES));
    cipher.final();
    this.k = next;
  }

  private checkNonce(): void {
    if (this.n >= NONCE_LIMIT) throw new ProtocolError('BAD_RECORD', 'nonce would wrap');
  }
}
