import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { ProtocolError } from '../../lib/errors.js';
import { decodeMessage, encodeMessage, packValue, unpackValue } from '../../lib/wire/codec.js';
import { LIMITS, MessageType } from '../../lib/wire/messages.js';
import type { Message, MessageTypeName } from '../../lib/wire/messages.js';
import { MESSAGE_CASES, counting } from '../vectors/cases.js';
import { readStandardMsgpack } from './standard-msgpack.js';

/** The first sample of each message type (the vector cases cover every type). */
const SAMPLES = new Map<MessageTypeName, Message>();
for (const { message } of MESSAGE_CASES) {
  const name = (Object.keys(MessageType) as MessageTypeName[]).find((n) => MessageType[n] === message.type)!;
  if (!SAMPLES.has(name)) SAMPLES.set(name, message);
}

/** A sample as the MessagePack array it travels as: [type, field1, field2, ...]. */
function wireArray(name: MessageTypeName): unknown[] {
  return unpackValue(encodeMessage(SAMPLES.get(name)!)) as unknown[];
}

/**
 * A wire array packed as the encoder does: integers above 2^32 as MessagePack integers
 * (packValue, like msgpackr, writes a number that large as float64, which integer fields refuse).
 */
function packWire(a: unknown[]): Buffer {
  return packValue(a.map((x) => (typeof x === 'number' && Number.isInteger(x) && Math.abs(x) > 0xffffffff ? BigInt(x) : x)));
}

/** The sample with element `index` of its wire array replaced, encoded. */
function withElement(name: MessageTypeName, index: number, value: unknown): Buffer {
  const a = wireArray(name);
  a[index] = value;
  return packWire(a);
}

function decodeError(body: Uint8Array): ProtocolError {
  try {
    decodeMessage(body);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('decodeMessage accepted the body');
}

const bytes = (n: number) => Buffer.alloc(n, 0x5a);
const utf8Of = (n: number) => 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2);
const contact = (port = 1) => [counting(1, 32), 'h', port];

/**
 * Per type: a field value that breaks one rule, by wire-array index, and what it breaks.
 * GOSSIP has a fixed byte layout of its own: spec/wire/gossip-envelope.spec.ts.
 */
const INVALID: Array<[MessageTypeName, number, unknown, string]> = [
  ['HANDSHAKE', 1, bytes(LIMITS.noiseMessageBytes + 1), 'a Noise message over 1000 bytes'],
  ['HANDSHAKE', 1, 'noise', 'a Noise message as str'],
  ['DIRECT', 4, 1, 'wantReply as an integer'],
  ['ACK', 2, 0x100, 'status above u8'],
  ['ACK', 3, 'reply', 'reply as str'],
  ['PING', 1, 2n ** 32n, 'seq of 2^32'],
  ['PING', 1, 1.5, 'fractional seq'],
  ['PONG', 1, -1, 'negative seq'],
  ['IHAVE', 1, Array.from({ length: LIMITS.idsPerAdvert + 1 }, () => bytes(32)), 'ids over their cap of 1024'],
  ['IHAVE', 1, [bytes(32), bytes(31)], 'an id of 31 bytes'],
  ['IWANT', 1, Array.from({ length: LIMITS.idsPerAdvert + 1 }, () => bytes(32)), 'ids over their cap of 1024'],
  ['IWANT', 1, ['x'.repeat(32)], 'an id as str'],
  ['DIRECT', 1, bytes(15), 'ref of 15 bytes'],
  ['DIRECT', 2, 't'.repeat(LIMITS.topicBytes + 1), 'topic over 256 bytes'],
  ['DIRECT', 3, 'payload', 'payload as str'],
  ['ACK', 1, bytes(17), 'ref of 17 bytes'],
  ['FIND_NODE', 1, 2n ** 32n, 'reqId of 2^32'],
  ['FIND_NODE', 2, bytes(31), 'target of 31 bytes'],
  ['NODES', 2, Array.from({ length: LIMITS.contacts + 1 }, () => contact()), 'contacts over their cap of 64'],
  ['NODES', 2, [[counting(1, 32), 'h']], 'a contact of two elements'],
  ['NODES', 2, [[bytes(31), 'h', 1]], 'a contact id of 31 bytes'],
  ['NODES', 2, [[counting(1, 32), '', 1]], 'a contact with an empty host'],
  ['NODES', 2, [contact(0x10000)], 'a contact port above u16'],
  ['NODES', 2, [{ id: counting(1, 32), host: 'h', port: 1 }], 'a contact as a map'],
  ['GOODBYE', 1, 0x10000, 'code above u16'],
  ['GOODBYE', 2, 'r'.repeat(LIMITS.reasonBytes + 1), 'reason over 256 bytes'],
];

/** Values exactly at a limit, which must be accepted. */
const AT_LIMIT: Array<[MessageTypeName, number, unknown, string]> = [
  ['HANDSHAKE', 1, bytes(LIMITS.noiseMessageBytes), 'a Noise message of 1000 bytes'],
  ['ACK', 3, bytes(5000), 'a reply of 5000 bytes'],
  ['PING', 1, 0xffffffff, 'seq 2^32 - 1'],
  ['IHAVE', 1, Array.from({ length: LIMITS.idsPerAdvert }, () => bytes(32)), '1024 ids'],
  ['NODES', 2, Array.from({ length: LIMITS.contacts }, () => contact(0xffff)), '64 contacts'],
  ['GOODBYE', 2, 'r'.repeat(LIMITS.reasonBytes), 'a reason of 256 bytes'],
];

/** A value of another MessagePack type than `v`. */
function otherType(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return 'text';
  if (typeof v === 'string') return 7;
  if (typeof v === 'number') return 'seven';
  if (Array.isArray(v)) return bytes(4);
  if (typeof v === 'boolean') return 1;
  return true;
}

describe('Message codec', () => {
  it('has a sample for every message type', () => {
    expect([...SAMPLES.keys()].sort()).to.deep.equal(Object.keys(MessageType).sort());
  });

  for (const [name, msg] of SAMPLES) {
    if (name === 'GOSSIP') continue; // fixed layout: spec/wire/gossip-envelope.spec.ts
    describe(name, () => {
      it('round-trips a valid message', () => {
        expect(decodeMessage(encodeMessage(msg))).to.deep.equal(msg);
      });

      it('encodes standard MessagePack: an array led by the type code', () => {
        const a = readStandardMsgpack(encodeMessage(msg));
        expect(a).to.be.an('array');
        expect((a as unknown[])[0]).to.equal(MessageType[name]);
      });

      it('rejects an extra element and a missing element with SCHEMA', () => {
        expect(decodeError(packWire([...wireArray(name), 0])).code).to.equal('SCHEMA');
        expect(decodeError(packWire(wireArray(name).slice(0, -1))).code).to.equal('SCHEMA');
      });

      it('rejects trailing bytes after the message with MALFORMED', () => {
        expect(decodeError(Buffer.concat([encodeMessage(msg), Buffer.from([0x00])])).code).to.equal('MALFORMED');
      });

      it('rejects each field given a value of the wrong MessagePack type with SCHEMA, naming the field', () => {
        const fields = wireArray(name);
        for (let i = 1; i < fields.length; i++) {
          const err = decodeError(withElement(name, i, otherType(fields[i])));
          expect(err.code, `element ${i}`).to.equal('SCHEMA');
          expect(err.message, `element ${i}`).to.match(new RegExp(`^${name}\\.`));
        }
      });
    });
  }

  describe('rejects a field that breaks its limit with SCHEMA', () => {
    for (const [name, index, value, what] of INVALID) {
      it(`${name} with ${what}`, () => {
        expect(decodeError(withElement(name, index, value)).code).to.equal('SCHEMA');
      });
    }
  });

  describe('accepts a field exactly at its limit', () => {
    for (const [name, index, value, what] of AT_LIMIT) {
      it(`${name} with ${what}`, () => {
        const msg = decodeMessage(withElement(name, index, value));
        expect(msg.type).to.equal(MessageType[name]);
        expect(decodeMessage(encodeMessage(msg))).to.deep.equal(msg);
      });
    }
  });

  const UNKNOWN_TYPES: Array<[unknown, string]> = [[0, '0'], [2, '2 (AUTH of version 1, retired)'], [13, '13'], [255, '255'], [99, '99'], [2n ** 64n - 1n, '2^64 - 1 (uint 64)']];
  for (const [type, what] of UNKNOWN_TYPES) {
    it(`rejects the unknown type code ${what} with UNKNOWN_TYPE`, () => {
      expect(decodeError(packValue([type, 7])).code).to.equal('UNKNOWN_TYPE');
    });
  }

  it('rejects [99], an unknown type code with no fields, with UNKNOWN_TYPE', () => {
    const err = decodeError(packValue([99]));
    expect(err.code).to.equal('UNKNOWN_TYPE');
    expect(err.message).to.equal('unknown message type 99');
  });

  // Until the strict decoder these were UNKNOWN_TYPE; PROTOCOL.md §2 says the type code is an
  // unsigned integer, so anything else is a schema error (issue 15, gap 12).
  const NOT_TYPE_CODES: Array<[Buffer, string]> = [
    [packValue([-1, 7]), '-1'],
    [packValue([1.5, 7]), '1.5'],
    [Buffer.from('92cb400800000000000007', 'hex'), '3.0 as float 64'],
    [Buffer.from('92ca4040000007', 'hex'), '3.0 as float 32'],
    [packValue(['PING', 7]), 'a string'],
    [packValue(['x']), '"x" alone'],
    [packValue([null, 7]), 'nil'],
    [packValue([bytes(1), 7]), 'bin'],
  ];
  for (const [body, what] of NOT_TYPE_CODES) {
    it(`rejects type code ${what} with SCHEMA: the type code must be an unsigned integer`, () => {
      const err = decodeError(body);
      expect(err.code).to.equal('SCHEMA');
      expect(err.message).to.equal('message: type code must be an unsigned integer');
    });
  }

  const NOT_MESSAGES: Array<[unknown, string]> = [[[], 'an empty array'], [{ type: 3 }, 'a map'], [3, 'an integer'], ['PING', 'a string'], [bytes(2), 'a bin']];
  for (const [value, what] of NOT_MESSAGES) {
    it(`rejects ${what} as the body with SCHEMA`, () => {
      expect(decodeError(packValue(value)).code).to.equal('SCHEMA');
    });
  }

  it('rejects bytes that are not one complete MessagePack value with MALFORMED', () => {
    for (const hex of ['', '92', '9203', 'c4', 'c405aa', 'd9', 'dd0000000203', '9203d4']) {
      expect(decodeError(Buffer.from(hex, 'hex')).code, hex).to.equal('MALFORMED');
    }
  });

  it('rejects the never-used byte 0xc1 wherever it appears with MALFORMED', () => {
    // msgpackr read 0xc1 as a marker object; the strict decoder refuses it (issue 15, gap 2).
    for (const hex of ['c1', '92c107', '9203c1', '930cc1a0', '930c00c1']) {
      expect(decodeError(Buffer.from(hex, 'hex')).code, hex).to.equal('MALFORMED');
    }
  });

  describe('refuses an integer field sent as a float with SCHEMA, even when the value is integral', () => {
    // Issue 15, gap 1: msgpackr gave 7.0 as the number 7, so these used to be accepted.
    const CASES: Array<[string, string]> = [
      ['PING seq 7.0 as float 64', '9203cb401c000000000000'],
      ['PING seq 7.0 as float 32', '9203ca40e00000'],
      ['PONG seq 0.0 as float 32', '9204ca00000000'],
      ['GOODBYE code 1.0 as float 64', '930ccb3ff0000000000000a0'],
    ];
    for (const [what, hex] of CASES) {
      it(what, () => {
        const err = decodeError(Buffer.from(hex, 'hex'));
        expect(err.code).to.equal('SCHEMA');
        expect(err.message).to.match(/got float$/);
      });
    }

    it('while the same messages with integer formats decode', () => {
      expect(decodeMessage(Buffer.from('9203cc07', 'hex'))).to.deep.equal({ type: MessageType.PING, seq: 7 });
      expect(decodeMessage(Buffer.from('9203d30000000000000007', 'hex'))).to.deep.equal({ type: MessageType.PING, seq: 7 });
    });
  });

  it('refuses a body nested deeper than 3 or with more items than any message needs, with MALFORMED', () => {
    expect(decodeError(Buffer.from('920b' + '91'.repeat(3) + '00', 'hex')).code).to.equal('MALFORMED');
    expect(decodeError(Buffer.concat([Buffer.from('9206dd00000520', 'hex'), Buffer.alloc(0x520, 0xc0)])).code).to.equal('MALFORMED');
  });

  it('refuses any extension, the timestamp included, in a message with MALFORMED', () => {
    expect(decodeError(Buffer.from('9203d6ff00000000', 'hex')).code).to.equal('MALFORMED');
    expect(decodeError(Buffer.from('9203d40100', 'hex')).code).to.equal('MALFORMED');
  });

  describe('byte layout', () => {
    it('encodes small messages to the hand-computed standard MessagePack bytes', () => {
      // fixarray(2) = 0x92, positive fixint 3 = PING, 7 = seq
      expect(encodeMessage({ type: MessageType.PING, seq: 7 }).toString('hex')).to.equal('920307');
      // fixarray(3), 12 = GOODBYE, 0 = NORMAL, fixstr(3) "bye"
      expect(encodeMessage({ type: MessageType.GOODBYE, code: 0, reason: 'bye' }).toString('hex')).to.equal('930c00a3627965');
      // fixarray(2), 9 = ACK, bin 8 of 16 bytes
      const ref = counting(0, 16);
      // fixarray(4), 9 = ACK, bin 8 of 16 bytes, status 0, nil reply
      expect(encodeMessage({ type: MessageType.ACK, ref, status: 0, reply: null }).toString('hex')).to.equal('9409c410' + ref.toString('hex') + '00c0');
    });

    it('packs application values without msgpackr records, even for a repeated object shape', () => {
      // msgpackr would switch a repeated shape to its record extension if records were on.
      let last: Buffer = Buffer.alloc(0);
      for (let i = 0; i < 40; i++) last = packValue({ height: i, vote: 'yes' });
      expect(readStandardMsgpack(last)).to.deep.equal(new Map<unknown, unknown>([['height', 39], ['vote', 'yes']]));
      expect(readStandardMsgpack(packValue(new Date(1_700_000_000_000)))).to.have.property('timestamp');
      expect(packValue(null).toString('hex')).to.equal('c0');
    });
  });
});

describe('IHAVE and IWANT encoding', () => {
  // What msgpackr writes for [type, ids] with the codec's options (standard MessagePack).
  const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, encodeUndefinedAsNil: true });

  it('writes the bytes msgpackr gives for [type, ids], for every list length up to 40 and at the cap', () => {
    for (const type of [MessageType.IHAVE, MessageType.IWANT]) {
      for (const n of [...Array.from({ length: 41 }, (_, i) => i), LIMITS.idsPerAdvert]) {
        const ids = Array.from({ length: n }, (_, i) => Buffer.alloc(32, (i * 7 + n) & 0xff));
        const body = encodeMessage({ type, ids } as Message);
        expect(body.equals(packr.pack([type, ids])), `type ${type}, ${n} ids`).to.equal(true);
        expect((decodeMessage(body) as { ids: Buffer[] }).ids).to.deep.equal(ids);
      }
    }
  });

  it('still decodes an IHAVE whose list uses a longer array header than needed (the general path)', () => {
    const id = Buffer.alloc(32, 9);
    const body = Buffer.concat([Buffer.from([0x92, MessageType.IHAVE, 0xdc, 0x00, 0x01, 0xc4, 0x20]), id]);
    expect(decodeMessage(body)).to.deep.equal({ type: MessageType.IHAVE, ids: [id] });
  });

  it('refuses an IHAVE over the id cap, with a trailing byte, or with a short id, as the general path does', () => {
    const over = encodeMessage({ type: MessageType.IHAVE, ids: Array.from({ length: LIMITS.idsPerAdvert + 1 }, () => Buffer.alloc(32)) } as Message);
    expect(() => decodeMessage(over)).to.throw(ProtocolError);
    const one = encodeMessage({ type: MessageType.IHAVE, ids: [Buffer.alloc(32)] } as Message);
    expect(() => decodeMessage(Buffer.concat([one, Buffer.from([0])]))).to.throw(ProtocolError).with.property('code', 'MALFORMED');
    const short = Buffer.from([0x92, MessageType.IWANT, 0x91, 0xc4, 0x1f, ...Buffer.alloc(31)]);
    expect(() => decodeMessage(short)).to.throw(ProtocolError).with.property('code', 'SCHEMA');
  });
});
