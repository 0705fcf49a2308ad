/**
 * Property and fuzz tests of the wire layer: whatever bytes a peer sends, the frame decoder
 * and the codec either give valid results or throw a ProtocolError with a code, never another
 * exception, and the decoder never holds more than maxFrameBytes + 4 bytes. Run counts are
 * bounded so the whole file takes a few seconds on a loaded machine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from '../../lib/errors.js';
import { decodeMessage, encodeMessage, packValue } from '../../lib/wire/codec.js';
import { FrameDecoder, encodeFrame } from '../../lib/wire/frame.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';
import { readStandardMsgpack } from './standard-msgpack.js';
import { arbMessage } from './arbitraries.js';

const RUNS = { numRuns: 300 };
const FRAME_CODES = ['FRAME_EMPTY', 'FRAME_TOO_LARGE'];
const CODEC_CODES = ['MALFORMED', 'UNKNOWN_TYPE', 'SCHEMA'];

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));

/** Cut `data` at the given points (taken modulo its length) into consecutive chunks. */
function cut(data: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => (data.length === 0 ? 0 : p % (data.length + 1))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, data.length]) {
    chunks.push(data.subarray(prev, p));
    prev = p;
  }
  return chunks;
}

/** Cut `data` into chunks whose sizes cycle through `sizes` (each >= 1). */
function slice(data: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; at += sizes[i % sizes.length]!, i++) {
    chunks.push(data.subarray(at, at + sizes[i % sizes.length]!));
  }
  return chunks;
}

/** How to chunk a byte string: at a few random points, or in tiny pieces (many chunks per frame). */
type Chunking = { points: number[] } | { sizes: number[] };
const arbChunking: fc.Arbitrary<Chunking> = fc.oneof(
  fc.record({ points: fc.array(fc.nat(), { maxLength: 20 }) }),
  fc.record({ sizes: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 16 }) }),
);
const chunked = (data: Buffer, how: Chunking): Buffer[] => ('points' in how ? cut(data, how.points) : slice(data, how.sizes));

/** The framing rules applied to the whole byte string at once: the model the decoder must match. */
function referenceFrames(data: Buffer, max: number): { bodies: string[]; code: string | undefined } {
  const bodies: string[] = [];
  let at = 0;
  while (data.length - at >= 4) {
    const n = data.readUInt32BE(at);
    if (n === 0) return { bodies, code: 'FRAME_EMPTY' };
    if (n > max) return { bodies, code: 'FRAME_TOO_LARGE' };
    if (data.length - at - 4 < n) break;
    bodies.push(data.subarray(at + 4, at + 4 + n).toString('hex'));
    at += 4 + n;
  }
  return { bodies, code: undefined };
}

/** Feed chunks, checking the buffering bound after every push; stop at the first error. */
function feed(decoder: FrameDecoder, chunks: Buffer[], onFrame: (b: Buffer) => void = () => {}): ProtocolError | undefined {
  for (const c of chunks) {
    try {
      decoder.push(c, onFrame);
    } catch (err) {
      expect(err).to.be.instanceOf(ProtocolError);
      expect((err as ProtocolError).code).to.be.oneOf(FRAME_CODES);
      expect(decoder.bufferedBytes).to.equal(0);
      return err as ProtocolError;
    }
    expect(decoder.bufferedBytes).to.be.at.most(decoder.maxFrameBytes + 4);
  }
  return undefined;
}

/** decodeMessage either gives a message that re-encodes to itself or throws a coded ProtocolError. */
function decodeOrTypedError(body: Uint8Array): Message | undefined {
  let msg: Message;
  try {
    msg = decodeMessage(body);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    expect((err as ProtocolError).code).to.be.oneOf(CODEC_CODES);
    return undefined;
  }
  expect(Object.values(MessageType)).to.include(msg.type);
  expect(decodeMessage(encodeMessage(msg))).to.deep.equal(msg);
  return msg;
}

type Mutation = { kind: 'set' | 'insert' | 'delete' | 'truncate'; pos: number; byte: number };
const arbMutations = fc.array(
  fc.record({ kind: fc.constantFrom('set', 'insert', 'delete', 'truncate'), pos: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  { minLength: 1, maxLength: 4 },
) as fc.Arbitrary<Mutation[]>;

function mutate(data: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(data);
  for (const m of mutations) {
    const p = out.length === 0 ? 0 : m.pos % out.length;
    if (m.kind === 'set' && out.length > 0) out[p] = m.byte;
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, p), Buffer.from([m.byte]), out.subarray(p)]);
    else if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, p), out.subarray(p + 1)]);
    else if (m.kind === 'truncate') out = out.subarray(0, p);
  }
  return out;
}

/** Arbitrary MessagePack-able values, nested a little, with bins of the lengths the schemas use. */
const arbValue = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -1, max: 70_000 }),
    fc.constantFrom(0xffffffff, 2 ** 32, Number.MAX_SAFE_INTEGER, 1.5, -0.5),
    fc.string({ maxLength: 20 }),
    fc.constantFrom(0, 7, 8, 15, 16, 31, 32, 33, 63, 64).chain((n) => bytes(n, n)),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

describe('Wire layer under random and mutated input', () => {
  describe('FrameDecoder', () => {
    it('decodes any stream of valid frames the same way however it is cut into chunks', () => {
      fc.assert(fc.property(fc.array(bytes(1, 200), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (bodies, points) => {
        const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const out: string[] = [];
        const decoder = new FrameDecoder(200);
        expect(feed(decoder, cut(stream, points), (b) => out.push(b.toString('hex')))).to.equal(undefined);
        expect(out).to.deep.equal(bodies.map((b) => b.toString('hex')));
        expect(decoder.bufferedBytes).to.equal(0);
      }), RUNS);
    });

    it('decodes any stream of valid frames fed in tiny chunks of 1 to 8 bytes', () => {
      const arbSizes = fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 16 });
      fc.assert(fc.property(fc.array(bytes(1, 600), { minLength: 1, maxLength: 6 }), arbSizes, (bodies, sizes) => {
        const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const out: string[] = [];
        const decoder = new FrameDecoder(600);
        expect(feed(decoder, slice(stream, sizes), (b) => out.push(b.toString('hex')))).to.equal(undefined);
        expect(out).to.deep.equal(bodies.map((b) => b.toString('hex')));
        expect(decoder.bufferedBytes).to.equal(0);
      }), { numRuns: 200 });
    });

    it('matches the reference framing on random bytes in random chunks, throwing only FRAME_EMPTY or FRAME_TOO_LARGE', () => {
      const arbBytes = fc.oneof(
        bytes(0, 400),
        // Random bytes that start with a plausible small length, so bodies are reached too.
        fc.tuple(fc.integer({ min: 0, max: 600 }), bytes(0, 400)).map(([n, rest]) => {
          const h = Buffer.alloc(4);
          h.writeUInt32BE(n);
          return Buffer.concat([h, rest]);
        }),
      );
      fc.assert(fc.property(fc.integer({ min: 1, max: 512 }), arbBytes, arbChunking, (max, data, how) => {
        const decoder = new FrameDecoder(max);
        const out: string[] = [];
        const err = feed(decoder, chunked(data, how), (b) => {
          expect(b.length).to.be.within(1, max);
          out.push(b.toString('hex'));
        });
        const expected = referenceFrames(data, max);
        expect(out).to.deep.equal(expected.bodies);
        expect(err?.code).to.equal(expected.code);
      }), RUNS);
    });

    it('never buffers more than maxFrameBytes + 4 whatever the chunk sizes', () => {
      fc.assert(fc.property(fc.integer({ min: 1, max: 4096 }), fc.array(bytes(0, 3000), { maxLength: 10 }), (max, chunks) => {
        feed(new FrameDecoder(max), chunks);
      }), { numRuns: 200 });
    });
  });

  describe('Codec', () => {
    it('round-trips every valid message exactly, as standard MessagePack', () => {
      fc.assert(fc.property(arbMessage, (msg) => {
        const body = encodeMessage(msg);
        expect(() => readStandardMsgpack(body)).to.not.throw();
        expect(decodeMessage(body)).to.deep.equal(msg);
      }), { numRuns: 500 });
    });

    it('gives a valid message or a coded ProtocolError for random bytes', () => {
      fc.assert(fc.property(bytes(0, 200), (body) => {
        decodeOrTypedError(body);
      }), { numRuns: 1000 });
    });

    it('gives a valid message or a coded ProtocolError for random format bytes after an array header', () => {
      // Mostly MessagePack format bytes (floats, 0xc1, exts, containers, strs), so the strict
      // decoder's paths are reached far more often than by uniform bytes.
      const FORMAT_BYTES = [0x00, 0x03, 0x07, 0x0b, 0x80, 0x81, 0x90, 0x91, 0x92, 0x93, 0xa1, 0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xcc,
        0xcf, 0xd3, 0xd4, 0xd6, 0xd9, 0xdc, 0xde, 0xe0, 0xff, 0x40, 0x1c];
      const arbBody = fc.tuple(fc.constantFrom(0x92, 0x93, 0x9a), fc.array(fc.constantFrom(...FORMAT_BYTES), { maxLength: 40 }))
        .map(([head, rest]) => Buffer.from([head, ...rest]));
      fc.assert(fc.property(arbBody, (body) => {
        decodeOrTypedError(body);
      }), { numRuns: 2000 });
    });

    it('gives a valid message or a coded ProtocolError for random arrays led by a real type code', () => {
      const arbArray = fc.tuple(fc.constantFrom(...Object.values(MessageType)), fc.array(arbValue, { maxLength: 10 }))
        .map(([type, rest]) => packValue([type, ...rest]));
      fc.assert(fc.property(arbArray, (body) => {
        decodeOrTypedError(body);
      }), { numRuns: 1000 });
    });

    it('gives a valid message or a coded ProtocolError for mutated valid bodies', () => {
      fc.assert(fc.property(arbMessage, arbMutations, (msg, mutations) => {
        decodeOrTypedError(mutate(encodeMessage(msg), mutations));
      }), { numRuns: 1000 });
    });
  });

  it('keeps every error typed, and the decoder bounded, for mutated streams of valid frames', () => {
    fc.assert(fc.property(fc.array(arbMessage, { minLength: 1, maxLength: 5 }), arbMutations, arbChunking, (msgs, mutations, how) => {
      const stream = mutate(Buffer.concat(msgs.map((m) => encodeFrame(encodeMessage(m)))), mutations);
      feed(new FrameDecoder(1 << 16), chunked(stream, how), (body) => {
        decodeOrTypedError(body);
      });
    }), { numRuns: 300 });
  });
});
