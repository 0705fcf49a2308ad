/**
 * The strict MessagePack decoder and the encoder's guard, from the format table of the spec:
 * every format decodes to its value, every malformed input is MALFORMED (never another
 * exception), the limits hold at exactly their value and fail one past it, and packValue
 * refuses what MessagePack cannot carry, naming the path.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { P2PError, ProtocolError } from '../../lib/errors.js';
import { packValue, unpackValue } from '../../lib/wire/codec.js';
import { LIMITS } from '../../lib/wire/messages.js';
import { decodeStrict, MsgpackFloat, PAYLOAD_LIMITS, PROTOCOL_LIMITS } from '../../lib/wire/msgpack.js';
import type { DecodeLimits } from '../../lib/wire/msgpack.js';
import { readStandardMsgpack } from './standard-msgpack.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const LOOSE: DecodeLimits = { maxDepth: 64, maxItems: 1 << 20, timestamps: true };

function malformed(bytes: Uint8Array, limits: DecodeLimits = LOOSE): ProtocolError {
  try {
    decodeStrict(bytes, limits);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    expect((err as ProtocolError).code).to.equal('MALFORMED');
    return err as ProtocolError;
  }
  throw new Error(`decodeStrict accepted ${Buffer.from(bytes).toString('hex')}`);
}

/** A timestamp 64 body: nanoseconds in the upper 30 bits, seconds in the lower 34. */
const ts64 = (sec: number, nsec: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE((BigInt(nsec) << 34n) | BigInt(sec));
  return b.toString('hex');
};
const ts96 = (sec: number, nsec: number) => {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(nsec, 0);
  b.writeBigInt64BE(BigInt(sec), 4);
  return b.toString('hex');
};

/** [format, hex, value]: one or more samples of every format in the spec's table. */
const FORMATS: Array<[string, string, unknown]> = [
  ['positive fixint 0', '00', 0],
  ['positive fixint 127', '7f', 127],
  ['negative fixint -1', 'ff', -1],
  ['negative fixint -32', 'e0', -32],
  ['nil', 'c0', null],
  ['false', 'c2', false],
  ['true', 'c3', true],
  ['uint 8', 'ccff', 255],
  ['uint 16', 'cdffff', 65535],
  ['uint 32', 'ceffffffff', 0xffffffff],
  ['uint 64 small', 'cf0000000000000007', 7],
  ['uint 64 2^53 - 1 (number)', 'cf001fffffffffffff', Number.MAX_SAFE_INTEGER],
  ['uint 64 2^53 (bigint)', 'cf0020000000000000', 2n ** 53n],
  ['uint 64 2^64 - 1 (bigint)', 'cfffffffffffffffff', 2n ** 64n - 1n],
  ['int 8', 'd080', -128],
  ['int 8 positive', 'd07f', 127],
  ['int 16', 'd18000', -32768],
  ['int 32', 'd280000000', -(2 ** 31)],
  ['int 64 small', 'd3fffffffffffffff9', -7],
  ['int 64 positive', 'd30000010000000000', 2 ** 40],
  ['int 64 -(2^53 - 1) (number)', 'd3ffe0000000000001', -Number.MAX_SAFE_INTEGER],
  ['int 64 -(2^53) (bigint)', 'd3ffe0000000000000', -(2n ** 53n)],
  ['int 64 -(2^63) (bigint)', 'd38000000000000000', -(2n ** 63n)],
  ['int 64 2^63 - 1 (bigint)', 'd37fffffffffffffff', 2n ** 63n - 1n],
  ['float 32', 'ca3fc00000', 1.5],
  ['float 64', 'cb3ff8000000000000', 1.5],
  ['float 64 NaN', 'cb7ff8000000000000', NaN],
  ['fixstr empty', 'a0', ''],
  ['fixstr', 'a3616263', 'abc'],
  ['fixstr 2-byte UTF-8', 'a2c3a9', 'é'],
  ['fixstr 3-byte UTF-8', 'a3e282ac', '€'],
  ['fixstr 4-byte UTF-8', 'a4f09f9880', '😀'],
  ['str 8', 'd903616263', 'abc'],
  ['str 16', 'da0003616263', 'abc'],
  ['str 32', 'db00000003616263', 'abc'],
  ['str 8 of 100 UTF-8 bytes', 'd964' + 'c3a9'.repeat(50), 'é'.repeat(50)],
  ['fixstr of 9 ASCII bytes', 'a9' + '61'.repeat(9), 'a'.repeat(9)],
  ['str 8 of 64 ASCII bytes', 'd940' + '61'.repeat(64), 'a'.repeat(64)],
  ['str 8 of 65 ASCII bytes', 'd941' + '61'.repeat(65), 'a'.repeat(65)],
  ['str 8 of 64 bytes, ASCII then 2-byte', 'd940' + '61'.repeat(62) + 'c3a9', 'a'.repeat(62) + 'é'],
  ['str 8 of 64 bytes with a 4-byte sequence', 'd940' + '61'.repeat(60) + 'f09f9880', 'a'.repeat(60) + '😀'],
  ['bin 8 empty', 'c400', Buffer.alloc(0)],
  ['bin 8', 'c4020102', Buffer.from([1, 2])],
  ['bin 16', 'c500020102', Buffer.from([1, 2])],
  ['bin 32', 'c6000000020102', Buffer.from([1, 2])],
  ['fixarray empty', '90', []],
  ['fixarray', '920102', [1, 2]],
  ['array 16', 'dc00020102', [1, 2]],
  ['array 32', 'dd000000020102', [1, 2]],
  ['fixmap empty', '80', {}],
  ['fixmap', '81a16101', { a: 1 }],
  ['map 16', 'de0001a16101', { a: 1 }],
  ['map 32', 'df00000001a16101', { a: 1 }],
  ['map with an int key (a Map)', '820102a16103', new Map<unknown, unknown>([[1, 2], ['a', 3]])],
  ['map whose str keys come first, then an int key', '82a161010203', new Map<unknown, unknown>([['a', 1], [2, 3]])],
  ['nested', '9281a1619190c0', [{ a: [[]] }, null]],
  ['timestamp 32', 'd6ff00000001', new Date(1000)],
  ['timestamp 64', 'd7ff' + ts64(1, 2_000_000), new Date(1002)],
  ['timestamp 64 with 34-bit seconds', 'd7ff' + ts64(2 ** 33, 0), new Date(2 ** 33 * 1000)],
  ['timestamp 96', 'c70cff' + ts96(-1, 500_000_000), new Date(-500)],
  ['timestamp 96 before 1970', 'c70cff' + ts96(-86_400, 0), new Date(-86_400_000)],
];

/** [what, hex]: inputs that are not one standard MessagePack value. */
const MALFORMED: Array<[string, string]> = [
  ['no bytes', ''],
  ['0xc1 alone', 'c1'],
  ['0xc1 in an array', '9201c1'],
  ['0xc1 as a map value', '81a161c1'],
  ['0xc1 as a map key', '81c100'],
  ['a trailing byte', '0000'],
  ['a trailing nil after an array', '9101c0'],
  ['str 32 declaring 4 GiB', 'dbffffffff61'],
  ['bin 32 declaring 4 GiB', 'c6ffffffff00'],
  ['array 32 declaring 2^32 - 1 elements', 'ddffffffff00'],
  ['map 32 declaring 2^32 - 1 entries', 'dfffffffff0000'],
  ['fixmap declaring 2 entries with 3 bytes', '82a16101'],
  ['ext 32 declaring 4 GiB', 'c9ffffffffff00'],
  ['invalid UTF-8: a lone continuation byte', 'a180'],
  ['invalid UTF-8: 0xff', 'a1ff'],
  ['invalid UTF-8: overlong "/"', 'a2c0af'],
  ['invalid UTF-8: overlong 3-byte', 'a3e08080'],
  ['invalid UTF-8: a UTF-16 surrogate', 'a3eda080'],
  ['invalid UTF-8: above U+10FFFF', 'a4f4908080'],
  ['invalid UTF-8: a truncated sequence', 'a2e282'],
  ['invalid UTF-8 in a long str', 'd950' + '61'.repeat(79) + 'ff'],
  ['invalid UTF-8 in a map key', '81a1ff00'],
  ['invalid UTF-8 after 40 ASCII bytes', 'd929' + '61'.repeat(40) + 'ff'],
  ['a truncated 4-byte sequence at the end of a 64-byte str', 'd940' + '61'.repeat(61) + 'f09f98'],
  ['ext type 1 (fixext 1)', 'd40100'],
  ['ext type 0 (fixext 16)', 'd800' + '00'.repeat(16)],
  ['ext type 5 (ext 8)', 'c70105aa'],
  ['ext type -2 (msgpackr-style)', 'd5fe0000'],
  ['a timestamp of 2 bytes', 'd5ff0000'],
  ['a timestamp of 16 bytes', 'd8ff' + '00'.repeat(16)],
  ['a timestamp 64 with 10^9 nanoseconds', 'd7ff' + ts64(0, 1_000_000_000)],
  ['a timestamp 96 with 10^9 nanoseconds', 'c70cff' + ts96(0, 1_000_000_000)],
  ['a timestamp 96 beyond the range of a Date', 'c70cff' + ts96(8.64e12 + 1, 0)],
];

describe('Strict MessagePack decoder', () => {
  describe('decodes every standard format', () => {
    for (const [format, h, value] of FORMATS) {
      it(`${format}: ${h.length > 24 ? h.slice(0, 24) + '…' : h}`, () => {
        expect(decodeStrict(hex(h), LOOSE)).to.deep.equal(value);
      });
    }

    it('reads the same values as the independent reference reader (spec/wire/standard-msgpack.ts)', () => {
      for (const [format, h] of FORMATS) expect(() => readStandardMsgpack(hex(h)), format).to.not.throw();
    });
  });

  describe('refuses malformed input with MALFORMED', () => {
    for (const [what, h] of MALFORMED) {
      it(what, () => {
        malformed(hex(h));
      });
    }

    it('refuses every sample truncated at every byte', () => {
      for (const [format, h] of FORMATS) {
        const b = hex(h);
        for (let n = 0; n < b.length; n++) expect(malformed(b.subarray(0, n)).message, `${format} cut to ${n}`).to.match(/invalid MessagePack/);
      }
    });

    it('refuses a declared length beyond the input at its header, without reading or allocating on', () => {
      expect(malformed(hex('dbffffffff61')).message).to.match(/str of 4294967295 bytes at offset 5 runs past the end \(1 left\)/);
      expect(malformed(hex('ddffffffff00')).message).to.match(/array of 4294967295 at offset 5 cannot fit/);
      // A million-entry array header is refused in far less time than a million reads take.
      const t = process.hrtime.bigint();
      for (let i = 0; i < 1000; i++) malformed(hex('dd000f4240c0'));
      expect(Number(process.hrtime.bigint() - t) / 1e6).to.be.below(500);
    });

    it('names the offset of the byte 0xc1', () => {
      expect(malformed(hex('9201c1')).message).to.equal('invalid MessagePack: byte 0xc1 at offset 2 is never used in MessagePack');
    });

    it('refuses input longer than maxBytes', () => {
      expect(decodeStrict(hex('a3616263'), { ...LOOSE, maxBytes: 4 })).to.equal('abc');
      malformed(hex('a3616263'), { ...LOOSE, maxBytes: 3 });
    });
  });

  describe('limits', () => {
    const nest = (n: number) => hex('91'.repeat(n) + 'c0');
    it('accepts nesting exactly maxDepth deep and refuses one more', () => {
      expect(decodeStrict(nest(3), { ...LOOSE, maxDepth: 3 })).to.deep.equal([[[null]]]);
      malformed(nest(4), { ...LOOSE, maxDepth: 3 });
      expect(decodeStrict(hex('00'), { ...LOOSE, maxDepth: 0 })).to.equal(0);
      malformed(hex('90'), { ...LOOSE, maxDepth: 0 });
      // maps count as levels too, keys and values alike
      malformed(hex('8191c0c0'), { ...LOOSE, maxDepth: 1 });
      malformed(hex('81a16191c0'), { ...LOOSE, maxDepth: 1 });
    });

    it('counts array elements and map entries over the whole value: exactly maxItems passes, one more fails', () => {
      // [[0, 0], {a: 0}, 0] = 3 + 2 + 1 = 6 items
      const six = hex('93 920000 81a16100 00');
      expect(decodeStrict(six, { ...LOOSE, maxItems: 6 })).to.deep.equal([[0, 0], { a: 0 }, 0]);
      expect(malformed(six, { ...LOOSE, maxItems: 5 }).message).to.match(/more than 5 array elements and map entries/);
    });

    it('counts map entries against maxMapEntries', () => {
      const two = hex('92 81a16100 81a16200');
      expect(decodeStrict(two, { ...LOOSE, maxMapEntries: 2 })).to.deep.equal([{ a: 0 }, { b: 0 }]);
      expect(malformed(two, { ...LOOSE, maxMapEntries: 1 }).message).to.match(/more than 1 map entries/);
    });

    it('PAYLOAD_LIMITS: 32 deep and 65,536 items (4,096 map entries) pass, one more of each fails', () => {
      expect(() => unpackValue(nest(32))).to.not.throw();
      malformed(nest(33), PAYLOAD_LIMITS);
      const items = (n: number) => Buffer.concat([hex('dd'), Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]), Buffer.alloc(n, 0xc0)]);
      expect((unpackValue(items(65_536)) as unknown[]).length).to.equal(65_536);
      malformed(items(65_537), PAYLOAD_LIMITS);
      const maps = (n: number) => Buffer.concat([hex('dd'), Buffer.from([0, 0, n >>> 8, n & 255]), ...Array.from({ length: n }, () => hex('81a16100'))]);
      expect((unpackValue(maps(4_096)) as unknown[]).length).to.equal(4_096);
      malformed(maps(4_097), PAYLOAD_LIMITS);
    });

    it('PROTOCOL_LIMITS hold the largest messages: an IHAVE of 1,024 ids and a NODES of 64 contacts', () => {
      expect(PROTOCOL_LIMITS.maxItems).to.be.at.least(2 + LIMITS.idsPerAdvert);
      expect(PROTOCOL_LIMITS.maxItems).to.be.at.least(3 + LIMITS.contacts * 4);
      expect(PROTOCOL_LIMITS.maxDepth).to.equal(3);
      expect(PROTOCOL_LIMITS.maxItems).to.be.below(2_000);
    });

    it('refuses a million empty maps (a 1 MiB decode bomb) at the array header', () => {
      const bomb = Buffer.concat([hex('dd000ffffb'), Buffer.alloc(0xffffb, 0x80)]);
      const t = process.hrtime.bigint();
      expect(malformed(bomb, PROTOCOL_LIMITS).message).to.match(/more than 1280/);
      expect(malformed(bomb, PAYLOAD_LIMITS).message).to.match(/more than 65536/);
      expect(Number(process.hrtime.bigint() - t) / 1e6).to.be.below(50);
    });
  });

  describe('values', () => {
    it('keeps a "__proto__" key as an own property, touching no prototype', () => {
      const v = decodeStrict(hex('82 a9' + Buffer.from('__proto__').toString('hex') + '81a16101 a16202'), LOOSE) as Record<string, unknown>;
      expect(Object.getPrototypeOf(v)).to.equal(Object.prototype);
      expect(Object.keys(v)).to.deep.equal(['__proto__', 'b']);
      expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).to.deep.equal({ a: 1 });
      expect((v as { a?: unknown }).a).to.equal(undefined);
      expect(({} as { a?: unknown }).a).to.equal(undefined);
    });

    it('decodes "constructor" and "toString" keys as plain own properties', () => {
      const v = decodeStrict(hex('82 ab' + Buffer.from('constructor').toString('hex') + '01 a8' + Buffer.from('toString').toString('hex') + '02'), LOOSE);
      expect(Object.entries(v as object)).to.deep.equal([['constructor', 1], ['toString', 2]]);
    });

    it('returns bins as views of the input, not copies', () => {
      const input = hex('92c40301020300');
      const [bin] = decodeStrict(input, LOOSE) as [Buffer];
      expect(Buffer.isBuffer(bin)).to.equal(true);
      expect(bin.buffer).to.equal(input.buffer);
      input[3] = 9;
      expect(bin[0]).to.equal(9);
    });

    it('reads a plain Uint8Array as well as a Buffer', () => {
      const u = new Uint8Array([0xff, 0x92, 0xc4, 0x01, 0x07, 0xa1, 0x61]).subarray(1);
      expect(decodeStrict(u, LOOSE)).to.deep.equal([Buffer.from([7]), 'a']);
    });

    it('boxes floats with floats: "boxed", so 7.0 stays distinguishable from 7', () => {
      const boxed = { ...LOOSE, floats: 'boxed' as const };
      expect(decodeStrict(hex('cb401c000000000000'), boxed)).to.deep.equal(new MsgpackFloat(7));
      expect(decodeStrict(hex('ca40e00000'), boxed)).to.be.instanceOf(MsgpackFloat);
      expect(decodeStrict(hex('07'), boxed)).to.equal(7);
      expect(decodeStrict(hex('cb401c000000000000'), LOOSE)).to.equal(7);
    });

    it('refuses the timestamp unless the limits allow it (protocol messages do not)', () => {
      expect(decodeStrict(hex('d6ff00000001'), PAYLOAD_LIMITS)).to.deep.equal(new Date(1000));
      expect(malformed(hex('d6ff00000001'), PROTOCOL_LIMITS).message).to.match(/timestamp at offset 0 is not allowed/);
      malformed(hex('d6ff00000001'), { maxDepth: 1, maxItems: 1 });
    });
  });

  describe('under random input', () => {
    const arbBytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // mostly format bytes, so containers, strs and exts are reached often
      fc.array(fc.constantFrom(0x00, 0x7f, 0x80, 0x81, 0x82, 0x90, 0x91, 0x92, 0xa1, 0xa3, 0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xcf, 0xd3,
        0xd4, 0xd6, 0xd7, 0xd9, 0xdc, 0xde, 0xe0, 0xff, 0x61, 0xc3, 0xa9, 0xed, 0xf0, 0x01), { maxLength: 64 }).map((a) => Uint8Array.from(a)),
    );

    it('never throws anything but ProtocolError MALFORMED, and accepts only what the reference reader accepts', () => {
      fc.assert(fc.property(arbBytes, fc.constantFrom(PAYLOAD_LIMITS, PROTOCOL_LIMITS, LOOSE), (bytes, limits) => {
        let ok = true;
        try {
          decodeStrict(bytes, limits);
        } catch (err) {
          ok = false;
          expect(err).to.be.instanceOf(ProtocolError);
          expect((err as ProtocolError).code).to.equal('MALFORMED');
        }
        if (ok) expect(() => readStandardMsgpack(bytes)).to.not.throw();
      }), { numRuns: 3000 });
    });

    it('reads a str of up to 80 random bytes exactly as a fatal TextDecoder does', () => {
      const td = new TextDecoder('utf-8', { fatal: true });
      const arbUtf8ish = fc.array(fc.oneof(
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom(0x61, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5),
      ), { maxLength: 80 });
      fc.assert(fc.property(arbUtf8ish, (a) => {
        const data = Uint8Array.from(a);
        let expected: string | undefined;
        try {
          expected = td.decode(data);
        } catch {
          expected = undefined;
        }
        const body = Buffer.concat([Buffer.from([0xd9, data.length]), data]);
        if (expected === undefined) malformed(body);
        else expect(decodeStrict(body, LOOSE)).to.equal(expected);
      }), { numRuns: 3000 });
    });

    it('accepts whatever the reference reader accepts, given loose limits (timestamps aside)', () => {
      fc.assert(fc.property(arbBytes, (bytes) => {
        let reference = true;
        try {
          readStandardMsgpack(bytes);
        } catch {
          reference = false;
        }
        if (!reference) return;
        try {
          decodeStrict(bytes, LOOSE);
        } catch (err) {
          expect((err as Error).message).to.match(/timestamp/);
        }
      }), { numRuns: 2000 });
    });
  });
});

describe('packValue: what MessagePack cannot carry faithfully is refused', () => {
  class Vote {
    height = 1;
  }
  const deep = (n: number): unknown => (n === 0 ? null : [deep(n - 1)]);
  const cyclic: unknown[] = [];
  cyclic.push({ self: cyclic });

  const REFUSED: Array<[string, unknown, string]> = [
    ['a function deep inside', { a: [1, 2, () => 1] }, 'data.a[2]: functions cannot be encoded'],
    ['a symbol', Symbol('s'), 'data: symbols cannot be encoded'],
    ['undefined at the top level', undefined, 'data: undefined cannot be encoded (MessagePack has no undefined; use null)'],
    ['undefined in an array', [1, undefined], 'data[1]: undefined cannot be encoded (MessagePack has no undefined; use null)'],
    ['undefined as a property value', { x: { y: undefined } }, 'data.x.y: undefined cannot be encoded (MessagePack has no undefined; use null)'],
    ['a hole in an array', [1, , 3], 'data[1]: undefined cannot be encoded (MessagePack has no undefined; use null)'], // eslint-disable-line no-sparse-arrays
    ['a Map', { m: new Map() }, 'data.m: Maps cannot be encoded faithfully (use a plain object)'],
    ['a Set', new Set([1]), 'data: Sets cannot be encoded faithfully (use an array)'],
    ['an Error', [new Error('x')], 'data[0]: Errors cannot be encoded (send their message)'],
    ['a class instance', { 'a b': new Vote() }, 'data["a b"]: Vote instances cannot be encoded (only plain objects, arrays, Buffer, Uint8Array and Date)'],
    ['a Float32Array', new Float32Array(1), 'data: Float32Array instances cannot be encoded (only plain objects, arrays, Buffer, Uint8Array and Date)'],
    ['a RegExp', /x/, 'data: RegExp instances cannot be encoded (only plain objects, arrays, Buffer, Uint8Array and Date)'],
    ['a bigint of 2^64', 2n ** 64n, 'data: bigints outside the 64-bit range cannot be encoded'],
    ['a bigint below -(2^63)', -(2n ** 63n) - 1n, 'data: bigints outside the 64-bit range cannot be encoded'],
    ['an invalid Date', { at: new Date(NaN) }, 'data.at: invalid Dates cannot be encoded'],
    ['a lone surrogate', ['ok', 'a\ud800'], 'data[1]: strings with lone surrogates cannot be encoded as UTF-8'],
    ['a key with a lone surrogate', { '\udc00': 1 }, 'data["\\udc00"]: keys with lone surrogates cannot be encoded as UTF-8'],
    ['nesting 33 deep', deep(33), `data${'[0]'.repeat(32)}: nesting deeper than 32 cannot be decoded by peers (or the value has a cycle)`],
    ['a cycle', cyclic, `data${'[0].self'.repeat(16)}: nesting deeper than 32 cannot be decoded by peers (or the value has a cycle)`],
    ['65,537 array elements', new Array(65_537).fill(0), 'data: more than 65536 array elements and object entries in all cannot be decoded by peers'],
    ['4,097 object entries', Array.from({ length: 4_097 }, () => ({ a: 1 })), 'data[4096]: more than 4096 object entries in all cannot be decoded by peers'],
  ];
  for (const [what, value, message] of REFUSED) {
    it(`refuses ${what} with INVALID_ARGUMENT naming the path`, () => {
      try {
        packValue(value);
      } catch (err) {
        expect(err).to.be.instanceOf(P2PError);
        expect((err as P2PError).code).to.equal('INVALID_ARGUMENT');
        expect((err as P2PError).message).to.equal(message);
        return;
      }
      throw new Error('packValue accepted it');
    });
  }

  const ACCEPTED: Array<[string, unknown]> = [
    ['NaN and infinities (floats)', [NaN, Infinity, -Infinity, 0.1]],
    ['bigints at the 64-bit bounds', [2n ** 64n - 1n, -(2n ** 63n)]],
    ['a Date', new Date(1_700_000_000_123)],
    ['a null-prototype object', Object.assign(Object.create(null) as object, { a: 1 })],
    ['a Uint8Array and a Buffer', [new Uint8Array([1]), Buffer.from([2])]],
    ['an own "__proto__" key', JSON.parse('{"__proto__": {"a": 1}}')],
    ['nesting exactly 32 deep', deep(32)],
    ['exactly 65,536 array elements', new Array(65_536).fill(0)],
    ['exactly 4,096 object entries', Array.from({ length: 4_096 }, () => ({ a: 1 }))],
  ];
  for (const [what, value] of ACCEPTED) {
    it(`accepts ${what}, which decodes back`, () => {
      expect(() => unpackValue(packValue(value))).to.not.throw();
    });
  }

  it('round-trips the "__proto__" key as an own property', () => {
    const v = unpackValue(packValue(JSON.parse('{"__proto__": {"a": 1}, "b": 2}'))) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).to.deep.equal({ a: 1 });
  });

  it('decodes back equal whatever supported value it is given', () => {
    const arbLeaf = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double().filter((d) => !Object.is(d, -0)),
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms)),
    );
    const arbValue = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        arbLeaf,
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 10 }), tie('value'), { maxKeys: 5, noNullPrototype: true }),
      ),
    })).value;
    fc.assert(fc.property(arbValue, (value) => {
      const bytes = packValue(value);
      expect(unpackValue(bytes)).to.deep.equal(value);
      expect(() => readStandardMsgpack(bytes)).to.not.throw();
    }), { numRuns: 500 });
  });
});
