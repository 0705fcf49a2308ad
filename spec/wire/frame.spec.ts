import { expect } from 'chai';
import { P2PError, ProtocolError } from '../../lib/errors.js';
import { FrameDecoder, MAX_FRAME_BYTES_LIMIT, encodeFrame, encodeFrames, frameHeader } from '../../lib/wire/frame.js';

/** Bodies of assorted sizes, each filled with its own byte so a mix-up shows. */
const BODIES = [1, 5, 300, 2, 70].map((n, i) => Buffer.alloc(n, 0x61 + i));
const STREAM = Buffer.concat(BODIES.map((b) => encodeFrame(b)));

/** Push chunks in order; return the bodies as hex, in order. */
function decodeAll(chunks: Buffer[], decoder = new FrameDecoder()): string[] {
  const out: string[] = [];
  for (const c of chunks) decoder.push(c, (body) => out.push(body.toString('hex')));
  return out;
}

const hexes = (bodies: Buffer[]) => bodies.map((b) => b.toString('hex'));

/**
 * True when `view` lies inside `chunk`'s memory. Comparing `.buffer` alone is not enough:
 * small Buffers share Node's allocation pool, so a copy can sit in the same ArrayBuffer.
 */
function within(view: Buffer, chunk: Buffer): boolean {
  return view.buffer === chunk.buffer && view.byteOffset >= chunk.byteOffset && view.byteOffset + view.length <= chunk.byteOffset + chunk.length;
}

function pushError(decoder: FrameDecoder, chunk: Buffer, onFrame: (b: Buffer) => void = () => {}): ProtocolError {
  try {
    decoder.push(chunk, onFrame);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('push did not throw');
}

describe('FrameDecoder', () => {
  it('decodes a multi-frame stream split into two chunks at every split point', () => {
    for (let split = 0; split <= STREAM.length; split++) {
      const decoder = new FrameDecoder();
      expect(decodeAll([STREAM.subarray(0, split), STREAM.subarray(split)], decoder), `split at ${split}`).to.deep.equal(hexes(BODIES));
      expect(decoder.bufferedBytes).to.equal(0);
    }
  });

  it('decodes the stream fed one byte at a time, each frame once its last byte is in', () => {
    const decoder = new FrameDecoder();
    const out: Buffer[] = [];
    let end = 0;
    const ends = BODIES.map((b) => (end += 4 + b.length));
    for (let i = 0; i < STREAM.length; i++) {
      decoder.push(STREAM.subarray(i, i + 1), (body) => out.push(body));
      expect(out.length, `after byte ${i}`).to.equal(ends.filter((e) => e <= i + 1).length);
    }
    expect(hexes(out)).to.deep.equal(hexes(BODIES));
    expect(decoder.bufferedBytes).to.equal(0);
  });

  it('decodes a thousand frames arriving in one chunk, in order', () => {
    const bodies = Array.from({ length: 1000 }, (_, i) => Buffer.from(`frame ${i}`));
    expect(decodeAll([Buffer.concat(bodies.map((b) => encodeFrame(b)))])).to.deep.equal(hexes(bodies));
  });

  it('decodes a frame spread over many chunks of uneven size', () => {
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    const frame = encodeFrame(body);
    const chunks: Buffer[] = [];
    for (let at = 0, n = 1; at < frame.length; at += n, n = (n * 7) % 997 + 1) chunks.push(frame.subarray(at, at + n));
    expect(chunks.length).to.be.greaterThan(10);
    expect(decodeAll(chunks)).to.deep.equal([body.toString('hex')]);
  });

  it('hands out views into the chunk, not copies, when a body sits inside one chunk', () => {
    const chunk = Buffer.concat([encodeFrame(Buffer.from('first')), encodeFrame(Buffer.from('second'))]);
    const out: Buffer[] = [];
    new FrameDecoder().push(chunk, (b) => out.push(b));
    expect(out.map(String)).to.deep.equal(['first', 'second']);
    for (const body of out) expect(within(body, chunk)).to.equal(true);
    expect(out[0]!.byteOffset).to.equal(chunk.byteOffset + 4);
    // A write through the view shows in the chunk: shared memory, not an equal copy.
    out[1]![0] = 0x53;
    expect(chunk.subarray(13).toString()).to.equal('Second');
  });

  it('hands out a view of the later chunk when only the header spans chunks', () => {
    const frame = encodeFrame(Buffer.from('body'));
    const tail = frame.subarray(2);
    const out: Buffer[] = [];
    const decoder = new FrameDecoder();
    decoder.push(Buffer.from(frame.subarray(0, 2)), (b) => out.push(b));
    decoder.push(tail, (b) => out.push(b));
    expect(out.map(String)).to.deep.equal(['body']);
    expect(within(out[0]!, tail)).to.equal(true);
  });

  it('copies a body that spans chunks into one buffer of its own', () => {
    const frame = encodeFrame(Buffer.from('spanning'));
    const a = Buffer.from(frame.subarray(0, 7));
    const b = Buffer.from(frame.subarray(7));
    const out: Buffer[] = [];
    const decoder = new FrameDecoder();
    decoder.push(a, (x) => out.push(x));
    decoder.push(b, (x) => out.push(x));
    expect(out.map(String)).to.deep.equal(['spanning']);
    expect(within(out[0]!, a) || within(out[0]!, b)).to.equal(false);
  });

  it('counts a partial header and a partial body in bufferedBytes', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(Buffer.alloc(10, 1));
    decoder.push(frame.subarray(0, 3), () => {});
    expect(decoder.bufferedBytes).to.equal(3);
    decoder.push(frame.subarray(3, 8), () => {});
    expect(decoder.bufferedBytes).to.equal(4); // header consumed, 4 body bytes held
    decoder.push(frame.subarray(8), () => {});
    expect(decoder.bufferedBytes).to.equal(0);
  });

  it('ignores empty chunks', () => {
    expect(decodeAll([Buffer.alloc(0), STREAM.subarray(0, 3), Buffer.alloc(0), STREAM.subarray(3)])).to.deep.equal(hexes(BODIES));
  });

  describe('length checks', () => {
    it('raises FRAME_EMPTY once the 4 header bytes of a zero length are in, not before', () => {
      const decoder = new FrameDecoder();
      for (let i = 0; i < 3; i++) decoder.push(Buffer.from([0]), () => {});
      const err = pushError(decoder, Buffer.from([0]));
      expect(err.code).to.equal('FRAME_EMPTY');
      expect(decoder.error).to.equal(err);
      expect(decoder.bufferedBytes).to.equal(0);
    });

    it('raises FRAME_TOO_LARGE from the header alone, before any body byte arrives', () => {
      const decoder = new FrameDecoder(100);
      const err = pushError(decoder, frameHeader(101));
      expect(err.code).to.equal('FRAME_TOO_LARGE');
      expect(err.message).to.contain('101');
      expect(decoder.bufferedBytes).to.equal(0);
    });

    it('raises FRAME_TOO_LARGE for the largest length a header can hold', () => {
      expect(pushError(new FrameDecoder(), Buffer.from('ffffffff', 'hex')).code).to.equal('FRAME_TOO_LARGE');
    });

    it('accepts a body of exactly maxFrameBytes', () => {
      const body = Buffer.alloc(100, 7);
      expect(decodeAll([encodeFrame(body)], new FrameDecoder(100))).to.deep.equal([body.toString('hex')]);
    });

    it('delivers the good frames before a bad header in the same chunk, then throws', () => {
      const out: string[] = [];
      const chunk = Buffer.concat([encodeFrame(Buffer.from('ok')), frameHeader(1000), Buffer.alloc(20)]);
      const err = pushError(new FrameDecoder(100), chunk, (b) => out.push(String(b)));
      expect(err.code).to.equal('FRAME_TOO_LARGE');
      expect(out).to.deep.equal(['ok']);
    });

    it('stays errored: every later push throws the same error, until reset()', () => {
      const decoder = new FrameDecoder();
      const first = pushError(decoder, Buffer.alloc(4));
      expect(pushError(decoder, encodeFrame(Buffer.from('x')))).to.equal(first);
      decoder.reset();
      expect(decoder.error).to.equal(undefined);
      expect(decodeAll([encodeFrame(Buffer.from('x'))], decoder)).to.deep.equal(['78']);
    });
  });

  it('keeps the rest of the chunk when onFrame throws and delivers it on the next push', () => {
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    const chunk = Buffer.concat(['a', 'b', 'c'].map((s) => encodeFrame(Buffer.from(s))));
    expect(() => decoder.push(chunk, (b) => {
      seen.push(String(b));
      if (String(b) === 'a') throw new Error('handler failed');
    })).to.throw('handler failed');
    decoder.push(Buffer.alloc(0), (b) => seen.push(String(b)));
    expect(seen).to.deep.equal(['a', 'b', 'c']);
  });

  it('hands takeRest() the unread bytes of the chunk when onFrame detaches in the middle of it', () => {
    const decoder = new FrameDecoder();
    const tail = Buffer.from([1, 2, 3]);
    const chunk = Buffer.concat([encodeFrame(Buffer.from('a')), encodeFrame(Buffer.from('b')), tail]);
    const seen: string[] = [];
    let rest: Buffer[] = [];
    decoder.push(chunk, (b) => {
      seen.push(String(b));
      decoder.detach();
      rest = decoder.takeRest();
    });
    expect(seen).to.deep.equal(['a']);
    expect(Buffer.concat(rest).toString('hex')).to.equal(Buffer.concat([encodeFrame(Buffer.from('b')), tail]).toString('hex'));
    expect(decoder.bufferedBytes).to.equal(0);
  });

  it('counts the unread rest of the chunk in bufferedBytes while onFrame runs', () => {
    const decoder = new FrameDecoder();
    const chunk = Buffer.concat([encodeFrame(Buffer.from('a')), encodeFrame(Buffer.from('bc')), Buffer.from([0, 0])]);
    const held: number[] = [];
    decoder.push(chunk, () => held.push(decoder.bufferedBytes));
    expect(held).to.deep.equal([2 + 4 + 2, 2]);
    expect(decoder.bufferedBytes).to.equal(2);
  });

  it('drops the rest of the chunk when onFrame resets the decoder', () => {
    const decoder = new FrameDecoder();
    const chunk = Buffer.concat(['a', 'b', 'c'].map((s) => encodeFrame(Buffer.from(s))));
    const seen: string[] = [];
    decoder.push(chunk, (b) => {
      seen.push(String(b));
      decoder.reset();
    });
    expect(seen).to.deep.equal(['a']);
    expect(decoder.bufferedBytes).to.equal(0);
    expect(decodeAll([encodeFrame(Buffer.from('x'))], decoder)).to.deep.equal(['78']);
  });

  for (const bad of [0, -1, 1.5, MAX_FRAME_BYTES_LIMIT + 1]) {
    it(`refuses maxFrameBytes ${bad} with INVALID_ARGUMENT`, () => {
      expect(() => new FrameDecoder(bad)).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
    });
  }
});

describe('Frame encoding', () => {
  it('writes the body length as a 4-byte unsigned big-endian header', () => {
    expect(frameHeader(1).toString('hex')).to.equal('00000001');
    expect(frameHeader(0x01020304).toString('hex')).to.equal('01020304');
    expect(frameHeader(0xffffffff).toString('hex')).to.equal('ffffffff');
  });

  for (const bad of [0, -1, 2.5, 2 ** 32, Number.NaN]) {
    it(`refuses a header for length ${bad} with INVALID_ARGUMENT`, () => {
      expect(() => frameHeader(bad)).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
    });
  }

  it('gives the header on its own, so a writer sends it and the untouched body as two writes', () => {
    // Connection writes a batch over 16 KiB as frameHeader(n) then the body under cork() (a
    // smaller one as encodeFrames()); encodeFrame's concatenation is for tools and vectors.
    // All must put the same bytes on the wire.
    const body = Buffer.from('payload bytes');
    const header = frameHeader(body.length);
    expect(header.length).to.equal(4);
    expect(Buffer.concat([header, body]).equals(encodeFrame(body))).to.equal(true);
    expect(decodeAll([header, body])).to.deep.equal([body.toString('hex')]);
  });

  it('writes a batch of frames into one buffer, byte for byte the frames one after another', () => {
    const bodies = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('last one')];
    const batch = encodeFrames(bodies);
    expect(batch.equals(Buffer.concat(bodies.map((b) => encodeFrame(b))))).to.equal(true);
    expect(decodeAll([batch])).to.deep.equal(bodies.map((b) => b.toString('hex')));
  });

  it('refuses an empty body in a batch with INVALID_ARGUMENT', () => {
    expect(() => encodeFrames([Buffer.from('x'), Buffer.alloc(0)])).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
  });
});

describe('FrameDecoder memory under a trickled body', () => {
  it('grows with the bytes received, never with the length a peer declared', () => {
    const d = new FrameDecoder(64 * 1024 * 1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(64 * 1024 * 1024, 0); // announces 64 MiB
    d.push(header, () => {});
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 200; i++) d.push(Buffer.alloc(10, i), () => {}); // 2,000 bytes, one read each
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(d.bufferedBytes).to.equal(2000);
    expect(grew).to.be.below(8 * 1024 * 1024); // 64 KiB assembly buffer, not 64 MiB
  });
});
