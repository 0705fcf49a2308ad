/**
 * The record layer after the Noise handshake. The plaintext byte stream of one direction is
 * cut into records; each record on the wire is a 2-byte big-endian length L, then L bytes of
 * ChaChaPoly ciphertext (plaintext || 16-byte tag) sealed with empty associated data and the
 * next nonce of that direction's CipherState. 17 <= L <= 65535: a record carries 1 to 65519
 * plaintext bytes. Records know nothing of frames: a frame may span records, and a record may
 * hold many frames (one tick's batch is sealed in one cipher call).
 *
 * Both ends rekey (Noise Rekey(), section 11.3) after every rekeyAfterRecords records of a
 * direction, counted independently by sender and receiver, so no signalling is needed.
 *
 * The connection owns one RecordSealer (outbound CipherState from split()) and one
 * RecordOpener (inbound): it passes each batch of frames to seal() and writes the buffers
 * it returns; it passes each socket chunk to push() and feeds the plaintext to the frame
 * decoder. A ProtocolError from push() means the peer sent a bad record: close the link.
 */
import { InvalidOptionError, P2PError, ProtocolError } from '../errors.js';
import { type CipherState, TAG_BYTES } from './cipher-state.js';

/** Largest record ciphertext L, bytes: the 2-byte length field's maximum (and Noise's message cap). */
export const MAX_RECORD_BYTES = 65535;
/** Largest record plaintext, bytes: MAX_RECORD_BYTES less the 16-byte tag. */
export const MAX_RECORD_PLAINTEXT = MAX_RECORD_BYTES - TAG_BYTES;
/** Bytes in a record header (the big-endian length L). */
export const RECORD_HEADER_BYTES = 2;
/** Smallest valid L: a tag and one plaintext byte. An empty record carries nothing and is refused. */
export const MIN_RECORD_BYTES = TAG_BYTES + 1;
/**
 * Records per direction between rekeys. At most 4 GiB of plaintext per key at full records;
 * a rekey costs one ChaCha20 block, so the cost is nil and a key leaked late in a long
 * session does not open the traffic sent before the last rekey.
 */
export const REKEY_AFTER_RECORDS = 65536;

/** Options of a RecordSealer or RecordOpener; both ends of a direction must agree. */
export interface RecordOptions {
  /** Rekey after every this many records. Default REKEY_AFTER_RECORDS (65536); small values are for tests. */
  rekeyAfterRecords?: number;
}

const EMPTY = Buffer.alloc(0);
/** First capacity of the buffer a split record is gathered in, bytes; it then doubles, up to L. */
const ASSEMBLY_MIN_BYTES = 1024;

function resolveRekey(cs: CipherState, opts: RecordOptions): number {
  if (!cs.hasKey()) throw P2PError.invalidArgument('the record layer needs a CipherState with a key');
  const n = opts.rekeyAfterRecords ?? REKEY_AFTER_RECORDS;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidOptionError('rekeyAfterRecords', `expected an integer >= 1, got ${String(n)}`);
  return n;
}

/** Cuts one direction's plaintext into sealed records. */
export class RecordSealer {
  /** Records per key; see REKEY_AFTER_RECORDS. */
  readonly rekeyAfterRecords: number;
  private count = 0;

  /**
   * `cs`: the sending CipherState from XXHandshake.split() (owned by the sealer from now on).
   * Throws P2PError INVALID_ARGUMENT when it has no key, InvalidOptionError for a bad option.
   */
  constructor(
    private readonly cs: CipherState,
    opts: RecordOptions = {},
  ) {
    this.rekeyAfterRecords = resolveRekey(cs, opts);
  }

  /** Records sealed so far. */
  get records(): number {
    return this.count;
  }

  /**
   * Seal the concatenation of `chunks` (any total size; empty chunks are skipped) as few
   * records as possible, each at most MAX_RECORD_PLAINTEXT bytes and sealed by one cipher.
   * Returns the buffers to write in order: per record a 2-byte header, then the ciphertext
   * in pieces, then the tag. A chunk that straddles a record boundary is sliced, not copied;
   * within a record, runs of chunks under COALESCE_BELOW_BYTES (8 KiB) are copied together
   * before encryption (see cipher-state.ts). Nothing to seal returns []. Throws ProtocolError BAD_RECORD when the
   * nonce would wrap (the connection must close).
   */
  seal(chunks: readonly Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    let slices: Buffer[] = [];
    let size = 0;
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.length) {
        const k = Math.min(chunk.length - off, MAX_RECORD_PLAINTEXT - size);
        slices.push(k === chunk.length ? chunk : chunk.subarray(off, off + k));
        size += k;
        off += k;
        if (size === MAX_RECORD_PLAINTEXT) {
          this.sealOne(slices, size, out);
          slices = [];
          size = 0;
        }
      }
    }
    if (size > 0) this.sealOne(slices, size, out);
    return out;
  }

  /**
   * Seal `plaintext` (1 to MAX_RECORD_PLAINTEXT bytes) as one record, returned whole in one
   * new buffer (header, ciphertext, tag) that the caller writes with a single write: for a
   * tick's batch of small frames, cheaper than seal()'s pieces and a writev. Throws P2PError
   * INVALID_ARGUMENT for an empty or oversized plaintext, ProtocolError BAD_RECORD when the
   * nonce would wrap.
   */
  sealRecord(plaintext: Buffer): Buffer {
    const size = plaintext.length;
    if (size < 1 || size > MAX_RECORD_PLAINTEXT) throw P2PError.invalidArgument(`a record holds 1 to ${MAX_RECORD_PLAINTEXT} plaintext bytes, got ${size}`);
    const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + size + TAG_BYTES);
    record.writeUInt16BE(size + TAG_BYTES, 0);
    this.cs.encryptInto(EMPTY, plaintext, record, RECORD_HEADER_BYTES);
    if (++this.count % this.rekeyAfterRecords === 0) this.cs.rekey();
    return record;
  }

  /**
   * A buffer for one record of `size` plaintext bytes (1 to MAX_RECORD_PLAINTEXT): the caller
   * writes the plaintext at RECORD_HEADER_BYTES, then seals it with sealInPlace(). Saves
   * sealRecord()'s separate plaintext buffer and copy.
   */
  static recordFor(size: number): Buffer {
    if (size < 1 || size > MAX_RECORD_PLAINTEXT) throw P2PError.invalidArgument(`a record holds 1 to ${MAX_RECORD_PLAINTEXT} plaintext bytes, got ${size}`);
    return Buffer.allocUnsafe(RECORD_HEADER_BYTES + size + TAG_BYTES);
  }

  /**
   * Seal a buffer from recordFor() whose plaintext is written: its header is set and its
   * plaintext encrypted in place, the tag after it; the same bytes sealRecord() returns.
   * Throws ProtocolError BAD_RECORD when the nonce would wrap.
   */
  sealInPlace(record: Buffer): Buffer {
    const size = record.length - RECORD_HEADER_BYTES - TAG_BYTES;
    record.writeUInt16BE(size + TAG_BYTES, 0);
    this.cs.encryptInPlace(EMPTY, record, RECORD_HEADER_BYTES, size);
    if (++this.count % this.rekeyAfterRecords === 0) this.cs.rekey();
    return record;
  }

  private sealOne(slices: Buffer[], size: number, out: Buffer[]): void {
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    header.writeUInt16BE(size + TAG_BYTES, 0);
    out.push(header);
    for (const part of this.cs.encryptParts(EMPTY, slices)) out.push(part);
    if (++this.count % this.rekeyAfterRecords === 0) this.cs.rekey();
  }
}

/**
 * Opens one direction's records from a byte stream split anywhere. A record that arrives
 * whole in one chunk is decrypted from a view; one split across chunks is copied as it
 * arrives into a buffer whose size doubles with the bytes received (from 1 KiB, never past
 * its L), so memory held between pushes is at most one record (2 + 65535 bytes), never
 * follows a declared length, and pins no caller chunk.
 */
export class RecordOpener {
  /** Records per key; see REKEY_AFTER_RECORDS. */
  readonly rekeyAfterRecords: number;
  private count = 0;
  /** The first header byte while only it has arrived, else -1. */
  private hdr = -1;
  /** L of the record being read, or -1 while its header is incomplete. */
  private need = -1;
  /** Ciphertext of a record split across chunks, gathered so far: `have` bytes of `asm`. */
  private asm: Buffer | undefined;
  private have = 0;
  /** Unprocessed input left when onPlaintext threw; processed first on the next push. */
  private backlog: Buffer[] = [];
  private err: ProtocolError | undefined;

  /**
   * `cs`: the receiving CipherState from XXHandshake.split() (owned by the opener from now on).
   * Throws P2PError INVALID_ARGUMENT when it has no key, InvalidOptionError for a bad option.
   */
  constructor(
    private readonly cs: CipherState,
    opts: RecordOptions = {},
  ) {
    this.rekeyAfterRecords = resolveRekey(cs, opts);
  }

  /** Records opened so far. */
  get records(): number {
    return this.count;
  }

  /** Bytes held of the record in progress (header included), plus any backlog. */
  get bufferedBytes(): number {
    let n = this.hdr >= 0 ? 1 : this.need >= 0 ? RECORD_HEADER_BYTES + this.have : 0;
    for (const b of this.backlog) n += b.length;
    return n;
  }

  /** The error that put the opener in the errored state, if any. */
  get error(): ProtocolError | undefined {
    return this.err;
  }

  /**
   * Feed bytes. Calls onPlaintext once per record, in order, after its tag has verified (a
   * view: copy it to keep it past the call). Keeps no view of `chunk` (what it holds past the
   * call is copied), so the caller may reuse the chunk's memory for its next read. Throws ProtocolError BAD_RECORD for L < 17, a
   * tag that fails or a nonce that would wrap; nothing of that record is delivered and the
   * opener stays errored: every later push throws the same error. If onPlaintext throws, the
   * exception reaches the caller and the rest of the input waits for the next push.
   */
  push(chunk: Buffer, onPlaintext: (plaintext: Buffer) => void): void {
    if (this.err) throw this.err;
    // Nothing left from an earlier push (always, unless onPlaintext threw): no input list.
    if (this.backlog.length === 0) return this.consume(chunk, onPlaintext);
    const input = [...this.backlog.splice(0), chunk];
    for (let i = 0; i < input.length; i++) {
      try {
        this.consume(input[i]!, onPlaintext);
      } catch (err) {
        if (err !== this.err) for (const rest of input.slice(i + 1)) this.backlog.push(Buffer.from(rest));
        throw err;
      }
    }
  }

  private consume(chunk: Buffer, onPlaintext: (plaintext: Buffer) => void): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.need < 0) {
        if (this.hdr >= 0) {
          this.need = (this.hdr << 8) | chunk[off++]!;
          this.hdr = -1;
        } else if (chunk.length - off >= RECORD_HEADER_BYTES) {
          this.need = chunk.readUInt16BE(off);
          off += RECORD_HEADER_BYTES;
        } else {
          this.hdr = chunk[off++]!;
          break;
        }
        if (this.need < MIN_RECORD_BYTES) this.fail(new ProtocolError('BAD_RECORD', `record length ${this.need} is below ${MIN_RECORD_BYTES}`));
      }
      if (off === chunk.length) break;
      let ciphertext: Buffer;
      if (this.have === 0 && chunk.length - off >= this.need) {
        ciphertext = chunk.subarray(off, off + this.need);
        off += this.need;
      } else {
        const k = Math.min(this.need - this.have, chunk.length - off);
        this.append(chunk.subarray(off, off + k));
        off += k;
        if (this.have < this.need) break;
        ciphertext = this.asm!;
        this.asm = undefined;
        this.have = 0;
      }
      this.need = -1;
      let plaintext: Buffer;
      try {
        plaintext = this.cs.decryptWithAd(EMPTY, ciphertext);
      } catch (err) {
        this.fail(err instanceof ProtocolError ? err : new ProtocolError('BAD_RECORD', String(err)));
      }
      if (++this.count % this.rekeyAfterRecords === 0) this.cs.rekey();
      try {
        onPlaintext(plaintext);
      } catch (err) {
        if (off < chunk.length) this.backlog.push(Buffer.from(chunk.subarray(off)));
        throw err;
      }
    }
  }

  /** Copy ciphertext bytes of a split record into `asm`, growing it by doubling, capped at L. */
  private append(bytes: Buffer): void {
    const total = this.have + bytes.length;
    if (!this.asm || total > this.asm.length) {
      const next = Buffer.allocUnsafe(Math.min(this.need, Math.max(total, 2 * this.have, ASSEMBLY_MIN_BYTES)));
      this.asm?.copy(next, 0, 0, this.have);
      this.asm = next;
    }
    bytes.copy(this.asm, this.have);
    this.have = total;
  }

  private fail(err: ProtocolError): never {
    this.err = err;
    this.asm = undefined;
    this.have = 0;
    this.hdr = -1;
    this.need = -1;
    this.backlog = [];
    throw err;
  }
}
