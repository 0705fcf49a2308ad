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

/** Header and body as one buffer: for vectors and tools; the hot path writes them separately. */
export function encodeFrame(body: Uint8Array): Buffer {
  return Buffer.concat([frameHeader(body.length), body]);
}

export class FrameDecoder {
  readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read, or -1 while its header is incomplete. */
  private need = -1;
  private err: ProtocolError | undefined;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_BYTES_LIMIT) {
      throw P2PError.invalidArgument(`maxFrameBytes must be an integer from 1 to ${MAX_FRAME_BYTES_LIMIT}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held: partial header plus partial body. At most maxFrameBytes + 4 between pushes. */
  get bufferedBytes(): number {
    return this.buffered;
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
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return;
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length === 0) this.fail(new ProtocolError('FRAME_EMPTY', 'frame length 0'));
        if (length > this.maxFrameBytes) {
          this.fail(new ProtocolError('FRAME_TOO_LARGE', `frame length ${length} exceeds ${this.maxFrameBytes}`));
        }
        this.need = length;
      }
      if (this.buffered < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      onFrame(body);
    }
  }

  /** Drop everything buffered; the decoder is usable again (not errored). */
  reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.need = -1;
    this.err = undefined;
  }

  private fail(err: ProtocolError): never {
    this.err = err;
    this.chunks = [];
    this.buffered = 0;
    throw err;
  }

  /** Remove n bytes (n <= buffered) from the front: a view if they sit in one chunk. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
