/**
 * Length-prefixed framing: a 4-byte unsigned big-endian body length, then the body. Knows
 * nothing about message types. The decoder keeps a list of chunks plus a byte count, checks
 * the declared length against the limit as soon as the header is in, hands out views when a
 * body sits inside one chunk and copies once only when it spans chunks.
 */
import { P2PError, ProtocolError } from '../errors.js';

/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 4;
/** Default cap on a frame body: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20;
/** Highest value maxFrameBytes may take (64 MiB): bounds what one peer can make us buffer. */
export const MAX_FRAME_BYTES_LIMIT = 64 * 1024 * 1024;

/** The 4-byte header for a body of `length` bytes. */
export function frameHeader(length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > 0xffffffff) {
    throw P2PError.invalidArgument(`frame length must be an integer from 1 to 2^32-1, got ${length}`);
  }
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  return h;
}

/**
 * The frames of `bodies`, each its 4-byte header then its body, one after another in one new
 * buffer: a batch of small frames written (or sealed) as one piece instead of a header buffer
 * per frame. Throws P2PError INVALID_ARGUMENT for an empty body or one of 2^32 bytes or more.
 */
export function encodeFrames(bodies: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(framesBytes(bodies));
  encodeFramesInto(bodies, out, 0);
  return out;
}

/** Bytes the frames of `bodies` take (headers included). Throws as encodeFrames() does. */
export function framesBytes(bodies: readonly Uint8Array[]): number {
  let total = 0;
  for (const b of bodies) {
    if (b.length < 1 || b.length > 0xffffffff) throw P2PError.invalidArgument(`frame length must be an integer from 1 to 2^32-1, got ${b.length}`);
    total += FRAME_HEADER_BYTES + b.length;
  }
  return total;
}

/**
 * Write the frames of the first `count` of `bodies` (default all) into `out` from `offset`
 * (framesBytes() of them, which the caller has checked fit); returns the offset after them.
 * The connection writes a batch straight into the record it seals.
 */
export function encodeFramesInto(bodies: readonly Uint8Array[], out: Buffer, offset: number, count = bodies.length): number {
  let off = offset;
  for (let i = 0; i < count; i++) {
    const b = bodies[i]!;
    off = out.writeUInt32BE(b.length, off);
    out.set(b, off);
    off += b.length;
  }
  return off;
}

/** Header and body as one buffer (the frames of one body): for vectors, tools and the conformance kit. */
export function encodeFrame(body: Uint8Array): Buffer {
  return encodeFrames([body]);
}

/**
 * A body still incomplete after this many chunks is gathered into one buffer that grows (by
 * doubling, up to the declared length) as bytes arrive, and later bytes are copied straight
 * into it. Socket reads (up to 64 KiB) never get
 * near it for normal frames; a peer trickling a body a few bytes per read does, and then costs
 * one copy per byte instead of one retained chunk object per read.
 */
const ASSEMBLE_AFTER_CHUNKS = 32;

export class FrameDecoder {
  readonly maxFrameBytes: number;
  // Unread bytes: chunks[head] from headOff on, then every later chunk. Consumed chunks are
  // skipped by index and dropped in one splice per push, never shifted one at a time, so a
  // body that arrives one byte per chunk still costs O(1) per byte.
  private chunks: Buffer[] = [];
  private head = 0;
  private headOff = 0;
  /** The body being gathered once it spanned ASSEMBLE_AFTER_CHUNKS chunks, and its bytes so far. */
  private assembly: Buffer | undefined;
  private assembled = 0;
  private buffered = 0;
  /** Body length of the frame being read, or -1 while its header is incomplete. */
  private need = -1;
  private err: ProtocolError | undefined;
  /** Set by detach() from inside onFrame: push() stops after that frame. */
  private detached = false;
  /** The chunk pushWhole() is reading, while its onFrame runs, and the offset of its unread bytes. */
  private whole: Buffer | undefined;
  private wholeOff = 0;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_BYTES_LIMIT) {
      throw P2PError.invalidArgument(`maxFrameBytes must be an integer from 1 to ${MAX_FRAME_BYTES_LIMIT}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held: partial header plus partial body. At most maxFrameBytes + 4 between pushes. */
  get bufferedBytes(): number {
    return this.buffered + (this.whole === undefined ? 0 : this.whole.length - this.wholeOff);
  }

  /** The error that put the decoder in the errored state, if any. */
  get error(): ProtocolError | undefined {
    return this.err;
  }

  /**
   * Feed bytes. Calls onFrame(body) for each complete frame in order. Each frame is removed
   * from the decoder before onFrame runs, so if onFrame throws, the exception reaches the
   * caller and the remaining bytes stay buffered for the next push. Throws ProtocolError
   * FRAME_EMPTY or FRAME_TOO_LARGE as soon as a bad header is in; the decoder then stays
   * errored and every later push throws the same error.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    if (this.err) throw this.err;
    if (this.buffered === 0 && this.need < 0 && this.assembly === undefined) return this.pushWhole(chunk, onFrame);
    this.compact();
    if (this.assembly) {
      const k = Math.min(chunk.length, this.need - this.assembled);
      this.reserve(this.assembled + k);
      const buf = this.assembly;
      chunk.copy(buf, this.assembled, 0, k);
      this.assembled += k;
      this.buffered += k;
      if (this.assembled < this.need) return;
      const body = buf.length === this.need ? buf : buf.subarray(0, this.need);
      this.assembly = undefined;
      this.assembled = 0;
      this.buffered -= body.length;
      this.need = -1;
      if (k < chunk.length) {
        this.chunks.push(chunk.subarray(k));
        this.buffered += chunk.length - k;
      }
      onFrame(body);
      if (this.detached) return;
    } else if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        this.need = this.checked(this.readLength());
      }
      if (this.buffered < this.need) {
        if (this.chunks.length - this.head > ASSEMBLE_AFTER_CHUNKS) this.startAssembly();
        break;
      }
      const body = this.take(this.need);
      this.need = -1;
      onFrame(body);
      if (this.detached) return;
    }
    this.compact();
  }

  /**
   * push() when nothing is held (nearly always: one read or record holds whole frames): the
   * frames are read from `chunk` by offset, without entering the chunk list; while onFrame
   * runs the chunk's unread bytes are `whole` from `wholeOff` (takeRest and reset see them),
   * and after the last whole frame they are kept in the list (see keepFrom). Same checks,
   * order and views as the general path; each frame is consumed before onFrame runs.
   */
  private pushWhole(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.whole = chunk;
    this.wholeOff = 0;
    let off = 0;
    try {
      while (chunk.length - off >= FRAME_HEADER_BYTES) {
        const length = this.checked(chunk.readUInt32BE(off));
        const start = off + FRAME_HEADER_BYTES;
        if (chunk.length - start < length) break;
        off = this.wholeOff = start + length;
        onFrame(chunk.subarray(start, off));
        // Dropped by reset() or fail(), or taken by takeRest() after a detach.
        if (this.whole === undefined || this.detached) break;
      }
    } finally {
      // Also when onFrame threw: the rest stays buffered for the next push.
      const rest = this.whole;
      this.whole = undefined;
      this.wholeOff = 0;
      if (rest !== undefined) this.keepFrom(rest, off);
    }
  }

  /** Hold the bytes of `chunk` from `off` on (a partial frame, or what follows a detach) for the general path. */
  private keepFrom(chunk: Buffer, off: number): void {
    if (off >= chunk.length) return;
    this.compact();
    this.chunks.push(off === 0 ? chunk : chunk.subarray(off));
    this.buffered += chunk.length - off;
  }

  /**
   * Stop framing: called from inside onFrame when the bytes after this frame belong to
   * another layer (the record layer after the handshake). push() returns after the current
   * frame; takeRest() then hands back the unread bytes, and the decoder is spent.
   */
  detach(): void {
    this.detached = true;
  }

  /** After detach(): the bytes received but not framed, in order; the decoder holds nothing after. */
  takeRest(): Buffer[] {
    const rest: Buffer[] = [];
    if (this.whole !== undefined && this.wholeOff < this.whole.length) rest.push(this.whole.subarray(this.wholeOff));
    const first = this.chunks[this.head];
    if (first) rest.push(this.headOff > 0 ? first.subarray(this.headOff) : first);
    for (let i = this.head + 1; i < this.chunks.length; i++) rest.push(this.chunks[i]!);
    // A partial header or body is part of the rest too: re-prefix it with its header bytes.
    if (this.need >= 0) {
      const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      h.writeUInt32BE(this.need, 0);
      rest.unshift(h);
    }
    this.clearChunks();
    this.need = -1;
    return rest;
  }

  /** Drop everything buffered; the decoder is usable again (not errored). */
  reset(): void {
    this.clearChunks();
    this.need = -1;
    this.err = undefined;
  }

  /** A frame header's length, once it is known to be 1 to maxFrameBytes (else the decoder fails). */
  private checked(length: number): number {
    if (length === 0) this.fail(new ProtocolError('FRAME_EMPTY', 'frame length 0'));
    if (length > this.maxFrameBytes) this.fail(new ProtocolError('FRAME_TOO_LARGE', `frame length ${length} exceeds ${this.maxFrameBytes}`));
    return length;
  }

  private fail(err: ProtocolError): never {
    this.err = err;
    this.clearChunks();
    throw err;
  }

  private clearChunks(): void {
    this.whole = undefined;
    this.chunks = [];
    this.head = 0;
    this.headOff = 0;
    this.assembly = undefined;
    this.assembled = 0;
    this.buffered = 0;
  }

  /**
   * Make the assembly buffer hold at least `bytes`: it starts at what has arrived (at least
   * 64 KiB) and doubles, capped at the declared length, so memory follows the bytes a peer
   * actually sent, never the length it announced.
   */
  private reserve(bytes: number): void {
    const cur = this.assembly!;
    if (cur.length >= bytes) return;
    const grown = Buffer.allocUnsafe(Math.min(this.need, Math.max(bytes, cur.length * 2)));
    cur.copy(grown, 0, 0, this.assembled);
    this.assembly = grown;
  }

  /** Move the buffered part of the current body (all that is buffered) into its own buffer. */
  private startAssembly(): void {
    const n = this.buffered;
    const body = Buffer.allocUnsafe(Math.min(this.need, Math.max(n, 64 * 1024)));
    this.take(n).copy(body, 0);
    this.buffered = n;
    this.assembly = body;
    this.assembled = n;
    this.chunks = [];
    this.head = 0;
    this.headOff = 0;
  }

  /** Forget the chunks already consumed (one splice, not a shift per chunk). */
  private compact(): void {
    if (this.head === 0) return;
    if (this.head === this.chunks.length) this.chunks = [];
    else this.chunks.splice(0, this.head);
    this.head = 0;
  }

  /** Read and consume the 4-byte length; read in place when the header sits in one chunk. */
  private readLength(): number {
    const first = this.chunks[this.head]!;
    if (first.length - this.headOff < FRAME_HEADER_BYTES) return this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
    const length = first.readUInt32BE(this.headOff);
    this.buffered -= FRAME_HEADER_BYTES;
    this.advance(first, FRAME_HEADER_BYTES);
    return length;
  }

  /** Consume k bytes of the head chunk `c`. */
  private advance(c: Buffer, k: number): void {
    this.headOff += k;
    if (this.headOff === c.length) {
      this.head++;
      this.headOff = 0;
    }
  }

  /** Remove n bytes (n <= buffered) from the front: a view if they sit in one chunk. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[this.head]!;
    const start = this.headOff;
    if (first.length - start >= n) {
      this.advance(first, n);
      return start === 0 && n === first.length ? first : first.subarray(start, start + n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length - this.headOff, n - off);
      c.copy(out, off, this.headOff, this.headOff + k);
      off += k;
      this.advance(c, k);
    }
    return out;
  }
}
