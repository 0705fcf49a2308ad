import { expect } from 'chai';
import fc from 'fast-check';
import { InvalidOptionError, P2PError, ProtocolError } from '../../lib/errors.js';
import { CipherState, NONCE_LIMIT } from '../../lib/noise/cipher-state.js';
import { MAX_RECORD_PLAINTEXT, RecordOpener, RecordSealer, type RecordOptions } from '../../lib/noise/records.js';

const KEY = Buffer.alloc(32, 0x5a);
/** Plaintexts of assorted sizes, each filled with its own byte so a mix-up shows. */
const PLAINTEXTS = [1, 5, 300, 2, 70].map((n, i) => Buffer.alloc(n, 0x61 + i));

function ends(opts: RecordOptions = {}) {
  return { sealer: new RecordSealer(CipherState.fromKey(KEY), opts), opener: new RecordOpener(CipherState.fromKey(KEY), opts) };
}

/** One record per plaintext, as one byte stream, and where each record ends in it. */
function stream(plaintexts: Buffer[], sealer = ends().sealer) {
  const records = plaintexts.map((p) => Buffer.concat(sealer.seal([p])));
  let end = 0;
  return { bytes: Buffer.concat(records), records, ends: records.map((r) => (end += r.length)) };
}

function openAll(chunks: Buffer[], opener = ends().opener): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) opener.push(c, (p) => out.push(Buffer.from(p)));
  return out;
}

function pushError(opener: RecordOpener, chunk: Buffer, onPlaintext: (p: Buffer) => void = () => {}): ProtocolError {
  try {
    opener.push(chunk, onPlaintext);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('push did not throw');
}

describe('RecordSealer and RecordOpener', () => {
  it('round-trip a multi-record stream split into two chunks at every split point', () => {
    const s = stream(PLAINTEXTS);
    for (let split = 0; split <= s.bytes.length; split++) {
      const opener = ends().opener;
      expect(openAll([s.bytes.subarray(0, split), s.bytes.subarray(split)], opener), `split at ${split}`).to.deep.equal(PLAINTEXTS);
      expect(opener.bufferedBytes).to.equal(0);
      expect(opener.records).to.equal(PLAINTEXTS.length);
    }
  });

  it('open the stream fed one byte at a time, each record once its last byte is in', () => {
    const s = stream(PLAINTEXTS);
    const opener = ends().opener;
    const out: Buffer[] = [];
    for (let i = 0; i < s.bytes.length; i++) {
      opener.push(s.bytes.subarray(i, i + 1), (p) => out.push(Buffer.from(p)));
      expect(out.length, `after byte ${i}`).to.equal(s.ends.filter((e) => e <= i + 1).length);
    }
    expect(out).to.deep.equal(PLAINTEXTS);
  });

  it('open a thousand records arriving in one chunk, in order', () => {
    const plaintexts = Array.from({ length: 1000 }, (_, i) => Buffer.from(`record ${i}`));
    expect(openAll([stream(plaintexts).bytes])).to.deep.equal(plaintexts);
  });

  it('seal a batch of chunks as one record per 65519 plaintext bytes, slicing a chunk at the boundary', () => {
    const { sealer, opener } = ends();
    const chunks = [Buffer.alloc(60_000, 1), Buffer.alloc(10_000, 2), Buffer.alloc(70_000, 3), Buffer.alloc(0), Buffer.from('tail')];
    const total = 140_004;
    const out = sealer.seal(chunks);
    expect(sealer.records).to.equal(3);
    const headers = [out[0]!, out[4]!, out[8]!].map((h) => h.readUInt16BE(0));
    expect(headers).to.deep.equal([65535, 65535, total - 2 * MAX_RECORD_PLAINTEXT + 16]);
    // Per record: header, one ciphertext piece per slice (two each here: a slice at 8 KiB or
    // more gets its own piece, and no run of small ones has two), tag: nothing was copied.
    expect(out.length).to.equal(4 + 4 + 4);
    const plain = Buffer.concat(openAll([Buffer.concat(out)], opener));
    expect(plain).to.deep.equal(Buffer.concat(chunks));
    expect(sealer.seal([])).to.deep.equal([]);
    expect(sealer.seal([Buffer.alloc(0)])).to.deep.equal([]);
  });

  it('seal a batch of small frames as one record: header, one ciphertext piece, tag', () => {
    const { sealer, opener } = ends();
    const frames = Array.from({ length: 50 }, (_, i) => Buffer.alloc(300, i));
    const out = sealer.seal(frames);
    expect(out.map((b) => b.length)).to.deep.equal([2, 15_000, 16]);
    expect(openAll([Buffer.concat(out)], opener)).to.deep.equal([Buffer.concat(frames)]);
  });

  it('seal one record whole into one buffer, the same bytes seal() gives for that plaintext', () => {
    const a = ends().sealer;
    const b = ends().sealer;
    for (const p of PLAINTEXTS) expect(a.sealRecord(p).equals(Buffer.concat(b.seal([p])))).to.equal(true);
    expect(a.records).to.equal(PLAINTEXTS.length);
    const opener = ends().opener;
    const c = ends().sealer;
    expect(openAll(PLAINTEXTS.map((p) => c.sealRecord(p)), opener)).to.deep.equal(PLAINTEXTS);
  });

  it('seal a record in place (recordFor, sealInPlace) into the bytes sealRecord gives, small and large, across rekeys', () => {
    const a = ends({ rekeyAfterRecords: 2 }).sealer;
    const b = ends({ rekeyAfterRecords: 2 }).sealer;
    for (const n of [1, 300, 5000, MAX_RECORD_PLAINTEXT]) {
      const p = Buffer.alloc(n, n & 0xff);
      const record = RecordSealer.recordFor(n);
      p.copy(record, 2);
      expect(a.sealInPlace(record).equals(b.sealRecord(p)), `${n} bytes`).to.equal(true);
    }
    for (const n of [0, MAX_RECORD_PLAINTEXT + 1]) expect(() => RecordSealer.recordFor(n)).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
  });

  it('rekey on the sealRecord path at the same count as the opener', () => {
    const { sealer, opener } = ends({ rekeyAfterRecords: 2 });
    const plaintexts = Array.from({ length: 5 }, (_, i) => Buffer.alloc(10, i));
    expect(openAll(plaintexts.map((p) => sealer.sealRecord(p)), opener)).to.deep.equal(plaintexts);
  });

  it('refuse to seal an empty or oversized plaintext as one record with INVALID_ARGUMENT', () => {
    const { sealer } = ends();
    for (const n of [0, MAX_RECORD_PLAINTEXT + 1]) {
      expect(() => sealer.sealRecord(Buffer.alloc(n))).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
    }
    expect(sealer.sealRecord(Buffer.alloc(MAX_RECORD_PLAINTEXT)).length).to.equal(65537);
  });

  it('refuse a flipped byte in any record with BAD_RECORD, delivering the records before it and nothing of it', () => {
    const s = stream(PLAINTEXTS);
    for (let r = 0; r < s.records.length; r++) {
      const start = r === 0 ? 0 : s.ends[r - 1]!;
      for (let i = start + 2; i < s.ends[r]!; i++) {
        const bad = Buffer.from(s.bytes);
        bad[i]! ^= 0x80;
        const opener = ends().opener;
        const out: Buffer[] = [];
        const err = pushError(opener, bad, (p) => out.push(Buffer.from(p)));
        expect(err.code, `record ${r} byte ${i}`).to.equal('BAD_RECORD');
        expect(out).to.deep.equal(PLAINTEXTS.slice(0, r));
      }
    }
  });

  it('never deliver altered plaintext when a length byte is flipped: the record fails or stays incomplete', () => {
    const s = stream(PLAINTEXTS);
    for (let r = 0; r < s.records.length; r++) {
      for (const i of [0, 1].map((k) => (r === 0 ? 0 : s.ends[r - 1]!) + k)) {
        for (const bit of [0x01, 0x80]) {
          const bad = Buffer.from(s.bytes);
          bad[i]! ^= bit;
          const out: Buffer[] = [];
          try {
            openAll([bad], ends().opener).forEach((p) => out.push(p));
          } catch (err) {
            expect((err as P2PError).code).to.equal('BAD_RECORD');
          }
          expect(out.length).to.be.at.most(r);
        }
      }
    }
  });

  it('refuse L = 0 and L = 16 (nothing to carry) and accept L = 17', () => {
    for (const l of [0, 16]) {
      const header = Buffer.alloc(2);
      header.writeUInt16BE(l, 0);
      const err = pushError(ends().opener, Buffer.concat([header, Buffer.alloc(l)]));
      expect(err.code).to.equal('BAD_RECORD');
      expect(err.message).to.contain(`record length ${l}`);
    }
    expect(stream([Buffer.from('x')]).bytes.readUInt16BE(0)).to.equal(17);
    expect(openAll([stream([Buffer.from('x')]).bytes])).to.deep.equal([Buffer.from('x')]);
  });

  it('stay errored after a bad record: later pushes, even of good records, throw the same error', () => {
    const { sealer, opener } = ends();
    const good = Buffer.concat(sealer.seal([Buffer.from('good')]));
    const bad = Buffer.from(good);
    bad[5]! ^= 1;
    const err = pushError(opener, bad);
    let delivered = 0;
    expect(pushError(opener, good, () => delivered++)).to.equal(err);
    expect(delivered).to.equal(0);
    expect(opener.error).to.equal(err);
    expect(opener.bufferedBytes).to.equal(0);
  });

  it('refuse a record whose nonce would wrap', () => {
    const opener = new RecordOpener(CipherState.fromKey(KEY, NONCE_LIMIT));
    const err = pushError(opener, stream([Buffer.from('x')]).bytes);
    expect(err.code).to.equal('BAD_RECORD');
    expect(err.message).to.contain('nonce would wrap');
  });

  it('rekey both ends every rekeyAfterRecords records in step, and fail when the ends disagree', () => {
    const sendCs = CipherState.fromKey(KEY);
    const sealer = new RecordSealer(sendCs, { rekeyAfterRecords: 3 });
    const plaintexts = Array.from({ length: 10 }, (_, i) => Buffer.from(`message ${i}`));
    const s = stream(plaintexts, sealer);
    expect(sendCs.key).to.not.deep.equal(KEY);
    expect(openAll([s.bytes], new RecordOpener(CipherState.fromKey(KEY), { rekeyAfterRecords: 3 }))).to.deep.equal(plaintexts);

    const out: Buffer[] = [];
    const err = pushError(new RecordOpener(CipherState.fromKey(KEY), { rekeyAfterRecords: 4 }), s.bytes, (p) => out.push(p));
    expect(err.code).to.equal('BAD_RECORD');
    expect(out.length).to.equal(3);
  });

  it('keep the rest of the input when onPlaintext throws and deliver it on the next push', () => {
    const s = stream(PLAINTEXTS);
    const opener = ends().opener;
    const out: Buffer[] = [];
    expect(() => opener.push(s.bytes, (p) => {
      out.push(Buffer.from(p));
      if (out.length === 2) throw new Error('consumer failed');
    })).to.throw('consumer failed');
    expect(opener.bufferedBytes).to.equal(s.bytes.length - s.ends[1]!);
    opener.push(Buffer.alloc(0), (p) => out.push(Buffer.from(p)));
    expect(out).to.deep.equal(PLAINTEXTS);
  });

  it('open a full-size record trickled one byte per push while holding at most the record', () => {
    const plaintext = Buffer.alloc(MAX_RECORD_PLAINTEXT, 0x77);
    const s = stream([plaintext]);
    const opener = ends().opener;
    const out: Buffer[] = [];
    for (let i = 0; i < s.bytes.length; i++) {
      opener.push(s.bytes.subarray(i, i + 1), (p) => out.push(Buffer.from(p)));
      expect(opener.bufferedBytes).to.equal(i + 1 === s.bytes.length ? 0 : i + 1);
    }
    expect(out).to.deep.equal([plaintext]);
  });

  it('hold at most one record (65537 bytes) between pushes for any records and any split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: MAX_RECORD_PLAINTEXT }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 30 }),
        (sizes, cuts) => {
          const plaintexts = sizes.map((n, i) => Buffer.alloc(n, i + 1));
          const { bytes } = stream(plaintexts);
          const opener = ends().opener;
          const out: Buffer[] = [];
          let off = 0;
          for (let i = 0; off < bytes.length; i++) {
            const end = Math.min(bytes.length, off + cuts[i % cuts.length]!);
            opener.push(bytes.subarray(off, end), (p) => out.push(Buffer.from(p)));
            off = end;
            if (opener.bufferedBytes > 65537) return false;
          }
          return opener.bufferedBytes === 0 && Buffer.concat(out).equals(Buffer.concat(plaintexts));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuse a CipherState without a key and a rekeyAfterRecords below 1', () => {
    expect(() => new RecordSealer(new CipherState())).to.throw(P2PError, /needs a CipherState with a key/);
    for (const rekeyAfterRecords of [0, 1.5, -1]) {
      try {
        new RecordOpener(CipherState.fromKey(KEY), { rekeyAfterRecords });
        expect.fail('accepted');
      } catch (err) {
        expect(err).to.be.instanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).field).to.equal('rekeyAfterRecords');
      }
    }
  });
});
