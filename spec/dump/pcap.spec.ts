import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { CipherState } from '../../lib/noise/cipher-state.js';
import { parseKeyLog } from '../../lib/noise/key-log.js';
import { RecordSealer } from '../../lib/noise/records.js';
import { readCapture, parseCapture, LinkType } from '../../lib/dump/pcap.js';
import type { Packet } from '../../lib/dump/pcap.js';
import { readDump } from '../../lib/dump/reader.js';
import type { FrameEntry } from '../../lib/dump/reader.js';
import { framesFromPackets } from '../../lib/dump/tcp-streams.js';
import { describeFrame } from '../../lib/dump/describe.js';
import { seededRandom } from '../../lib/random.js';
import { encodeInitPayload, encodeMessage, packValue } from '../../lib/wire/codec.js';
import { encodeFrame } from '../../lib/wire/frame.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';
import { ipv4Tcp, wrap, writePcap, writePcapng } from './packets.js';

const FIXTURE = 'spec/fixtures/two-nodes.pcap';
const KEYS = parseKeyLog(readFileSync('spec/fixtures/two-nodes.keylog', 'utf8'));
const bodies = (entries: ReturnType<typeof framesFromPackets>) =>
  entries.filter((e): e is FrameEntry => e.kind === 'frame').map((e) => e.body.toString('hex'));

const MESSAGES: Message[] = [
  { type: MessageType.PING, seq: 1 },
  { type: MessageType.DIRECT, ref: Buffer.alloc(16, 7), topic: 'chat', payload: packValue('x'.repeat(3000)), wantReply: false },
  { type: MessageType.PONG, seq: 2 },
  { type: MessageType.GOODBYE, code: 0, reason: 'bye' },
];
const EXPECTED = MESSAGES.map((m) => encodeMessage(m).toString('hex'));
const STREAM = Buffer.concat(MESSAGES.map((m) => encodeFrame(encodeMessage(m))));

/** One direction 10.0.0.1:40000 -> 10.0.0.2:7001: SYN, then `segments` as [offset, length]. */
function stream(isn: number, segments: Array<[number, number]>, linkType: number = LinkType.ETHERNET): Packet[] {
  const base = { src: [10, 0, 0, 1] as [number, number, number, number], dst: [10, 0, 0, 2] as [number, number, number, number], sport: 40000, dport: 7001 };
  const out: Packet[] = [{ t: 1_000_000, linkType, data: wrap(linkType, ipv4Tcp({ ...base, seq: isn, syn: true })) }];
  segments.forEach(([off, len], i) => {
    out.push({ t: 1_000_000 + 10 * (i + 1), linkType, data: wrap(linkType, ipv4Tcp({ ...base, seq: (isn + 1 + off) >>> 0, payload: STREAM.subarray(off, off + len) })) });
  });
  return out;
}

function inOrder(chunk: number): Array<[number, number]> {
  const segs: Array<[number, number]> = [];
  for (let off = 0; off < STREAM.length; off += chunk) segs.push([off, Math.min(chunk, STREAM.length - off)]);
  return segs;
}

describe('capture decoding', () => {
  it('decodes the tcpdump loopback fixture (Ethernet link type) with its key log into exactly the frames node a dumped', async () => {
    const cap = await readCapture(FIXTURE);
    expect(cap.format).to.equal('pcap');
    expect(cap.error).to.equal(undefined);
    expect(cap.packets.every((p) => p.linkType === LinkType.ETHERNET)).to.equal(true);
    const fromCapture = bodies(framesFromPackets(cap.packets, FIXTURE, { keys: KEYS })).sort();
    const dumped = (await readDump('spec/fixtures/two-nodes-a.ndjson')).filter((e): e is FrameEntry => e.kind === 'frame').map((e) => e.body.toString('hex')).sort();
    expect(fromCapture.length).to.be.greaterThan(10);
    expect(fromCapture).to.deep.equal(dumped);
  });

  it('names both ends by node id from the key log and finds both chat messages', async () => {
    const cap = await readCapture(FIXTURE);
    const frames = framesFromPackets(cap.packets, FIXTURE, { keys: KEYS }).filter((e): e is FrameEntry => e.kind === 'frame');
    const [a] = await readDump('spec/fixtures/two-nodes-a.ndjson').then((l) => l.filter((e) => e.kind === 'frame'));
    expect(new Set(frames.map((f) => f.node))).to.include(a!.node);
    expect(frames.every((f) => /^[0-9a-f]{64}$/.test(f.node) && /^[0-9a-f]{64}$/.test(f.peer ?? ''))).to.equal(true);
    const text = frames.map((f) => f.body.toString('latin1')).join('');
    expect(text).to.include('hello from a').and.to.include('hello from b');
  });

  it('without the key log shows the clear handshake, then one entry per encrypted record, never malformed', async () => {
    const cap = await readCapture(FIXTURE);
    const out = framesFromPackets(cap.packets, FIXTURE);
    expect(out.filter((e) => e.kind === 'malformed')).to.deep.equal([]);
    const frames = out.filter((e): e is FrameEntry => e.kind === 'frame');
    const types = frames.map((f) => describeFrame(f).type);
    expect(types.slice(0, 3)).to.deep.equal(['HANDSHAKE', 'HANDSHAKE', 'HANDSHAKE']);
    expect(types.slice(3).every((t) => t === 'RECORD')).to.equal(true);
    expect(types.length).to.be.greaterThan(10);
    expect(describeFrame(frames[3]!).text).to.equal(`encrypted record, ${frames[3]!.sealed} bytes`);
    expect(frames.every((f) => f.node.includes(':') && f.peer === null)).to.equal(true);
    const text = frames.map((f) => f.body.toString('latin1')).join('');
    expect(text).to.not.include('hello from');
  });

  it('decrypts both directions of a synthetic session across several rekeys, matched by the ephemeral key', () => {
    const ephemeral = Buffer.alloc(32, 0x5e);
    const [k1, k2] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
    const hs = (noise: Buffer) => encodeFrame(encodeMessage({ type: MessageType.HANDSHAKE, noise }));
    const msg1 = hs(Buffer.concat([ephemeral, encodeInitPayload({ minVersion: 2, maxVersion: 2, networkId: 'aethel', encrypted: true })]));
    const frames = Array.from({ length: 10 }, (_, i) => encodeFrame(encodeMessage({ type: MessageType.PING, seq: i })));
    const seal = (key: Buffer) => {
      const sealer = new RecordSealer(CipherState.fromKey(key), { rekeyAfterRecords: 3 });
      return Buffer.concat(frames.flatMap((f) => sealer.seal([f]))); // one record per frame: 3 rekeys
    };
    const i2r = Buffer.concat([msg1, hs(Buffer.alloc(64, 3)), seal(k1)]);
    const r2i = Buffer.concat([hs(Buffer.alloc(96, 4)), seal(k2)]);
    const base = { src: [10, 0, 0, 1] as [number, number, number, number], dst: [10, 0, 0, 2] as [number, number, number, number], sport: 40000, dport: 7001 };
    const back = { src: base.dst, dst: base.src, sport: base.dport, dport: base.sport };
    const packets: Packet[] = [
      { t: 1, linkType: LinkType.RAW, data: ipv4Tcp({ ...base, seq: 99, syn: true }) },
      { t: 2, linkType: LinkType.RAW, data: ipv4Tcp({ ...back, seq: 499, syn: true }) },
      { t: 3, linkType: LinkType.RAW, data: ipv4Tcp({ ...base, seq: 100, payload: i2r }) },
      { t: 4, linkType: LinkType.RAW, data: ipv4Tcp({ ...back, seq: 500, payload: r2i }) },
    ];
    const keys = new Map([[ephemeral.toString('hex'), { i2r: k1, r2i: k2, initiatorId: 'aa'.repeat(32), responderId: 'bb'.repeat(32) }]]);
    const out = framesFromPackets(packets, 's', { keys, rekeyAfterRecords: 3 });
    expect(out.filter((e) => e.kind === 'malformed')).to.deep.equal([]);
    const got = out.filter((e): e is FrameEntry => e.kind === 'frame' && describeFrame(e).type === 'PING');
    expect(got.filter((f) => f.node === 'aa'.repeat(32) && f.peer === 'bb'.repeat(32)).map((f) => describeFrame(f).fields.seq)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.filter((f) => f.node === 'bb'.repeat(32)).map((f) => describeFrame(f).fields.seq)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The wrong rekey interval fails from the first rekeyed record on, and says so.
    const wrong = framesFromPackets(packets, 's', { keys });
    expect(wrong.filter((e) => e.kind === 'malformed').length).to.equal(14);
    expect(wrong.some((e) => e.kind === 'malformed' && /record 3 \(\d+ B at offset \d+\) does not decrypt/.test(e.error))).to.equal(true);
  });

  it('decodes the pcapng twin made by editcap to the same frames at the same times', async () => {
    const pcap = framesFromPackets((await readCapture(FIXTURE)).packets, 'x');
    const ng = await readCapture('spec/fixtures/two-nodes.pcapng');
    expect(ng.format).to.equal('pcapng');
    const fromNg = framesFromPackets(ng.packets, 'x');
    expect(fromNg.map((e) => [e.t, e.kind === 'frame' && e.body.toString('hex')])).to.deep.equal(pcap.map((e) => [e.t, e.kind === 'frame' && e.body.toString('hex')]));
  });

  for (const [name, type] of [['Ethernet', LinkType.ETHERNET], ['BSD loopback (DLT_NULL)', LinkType.NULL], ['Linux cooked v1 (SLL)', LinkType.LINUX_SLL], ['Linux cooked v2 (SLL2)', LinkType.LINUX_SLL2], ['raw IP', LinkType.RAW]] as const) {
    it(`reads the ${name} link type`, () => {
      expect(bodies(framesFromPackets(stream(1000, inOrder(500), type), 's'))).to.deep.equal(EXPECTED);
    });
  }

  it('reassembles out-of-order, retransmitted and overlapping segments', () => {
    const segs = inOrder(97);
    const random = seededRandom(3);
    const shuffled = [...segs].sort(() => random() - 0.5);
    const withRetransmits = shuffled.flatMap((s, i) => (i % 3 === 0 ? [s, s] : [s]));
    withRetransmits.push([50, 400]); // overlaps bytes already delivered
    expect(bodies(framesFromPackets(stream(5000, withRetransmits), 's'))).to.deep.equal(EXPECTED);
  });

  it('follows sequence numbers that wrap past 2^32', () => {
    expect(bodies(framesFromPackets(stream(0xffffff00, inOrder(101)), 's'))).to.deep.equal(EXPECTED);
  });

  it('reports a gap that never fills as malformed, skips the frame it falls in and decodes the frames around it', () => {
    const segs = inOrder(10).filter(([off]) => off !== 20); // PING is 7 bytes: bytes 20..29 are inside DIRECT
    const out = framesFromPackets(stream(1, segs), 's');
    expect(bodies(out)).to.deep.equal([EXPECTED[0], EXPECTED[2], EXPECTED[3]]);
    const bad = out.filter((e) => e.kind === 'malformed');
    expect(bad).to.have.length(1);
    expect(bad[0]!.kind === 'malformed' && bad[0]!.error).to.match(/10 byte\(s\) never captured inside a \d+ B frame at offset 7; frame skipped/);
  });

  /** Frame boundaries in STREAM, one [offset, length] per frame: how a node writes them. */
  const perFrame = (): Array<[number, number]> => {
    let off = 0;
    return MESSAGES.map((m) => {
      const len = encodeFrame(encodeMessage(m)).length;
      off += len;
      return [off - len, len] as [number, number];
    });
  };
  const snap = (packets: Packet[], snaplen: number) => packets.map((p) => ({ ...p, data: p.data.subarray(0, snaplen) }));

  it('decodes what a capture cut to 80 bytes a packet holds and marks the frames it cut, with their type and length', () => {
    const out = framesFromPackets(snap(stream(1, perFrame()), 80), 's');
    const frames = out.filter((e): e is FrameEntry => e.kind === 'frame');
    expect(out.filter((e) => e.kind === 'malformed')).to.deep.equal([]);
    expect(frames.map((f) => [describeFrame(f).type, f.truncated ?? null])).to.deep.equal([
      ['PING', null], ['DIRECT', encodeMessage(MESSAGES[1]!).length], ['PONG', null], ['GOODBYE', null],
    ]);
    expect(describeFrame(frames[1]!).text).to.match(/^DIRECT \[TRUNCATED: 22 of \d+ B captured\]$/);
    expect([frames[0], frames[2], frames[3]].map((f) => f!.body.toString('hex'))).to.deep.equal([EXPECTED[0], EXPECTED[2], EXPECTED[3]]);
  });

  it('resumes at the next segment that starts a frame when a cut hides a frame boundary', () => {
    // DIRECT and then PONG are written in 500-byte segments; GOODBYE in a segment of its own.
    const [, direct, , goodbye] = perFrame();
    const segs: Array<[number, number]> = [[0, 7]];
    for (let off = direct![0]; off < goodbye![0]; off += 500) segs.push([off, Math.min(500, goodbye![0] - off)]);
    segs.push(goodbye!);
    const out = framesFromPackets(snap(stream(1, segs), 80), 's');
    const kinds = out.map((e) => (e.kind === 'frame' ? `${describeFrame(e).type}${e.truncated ? '!' : ''}` : 'MALFORMED'));
    expect(kinds).to.deep.equal(['PING', 'DIRECT!', 'MALFORMED', 'GOODBYE']);
    const bad = out[2]!;
    expect(bad.kind === 'malformed' && bad.error).to.equal(`10.0.0.1:40000 > 10.0.0.2:7001: bytes from offset ${goodbye![0] - 7} cut off by the capture (snaplen): no frame boundary known; resumed at offset ${goodbye![0]}`);
  });

  it('marks a real capture cut to 80 bytes a packet (editcap -s 80) instead of turning whole streams malformed', async () => {
    const cap = await readCapture(FIXTURE);
    // Without the key log: the records' lengths still frame the stream; the cut ones are marked.
    const full = framesFromPackets(cap.packets, 'full').filter((e): e is FrameEntry => e.kind === 'frame');
    const cut = framesFromPackets((await readCapture('spec/fixtures/two-nodes-snap80.pcap')).packets, 'cut');
    expect(framesFromPackets(snap(cap.packets, 80), 'cut')).to.deep.equal(cut);
    // A cut record cannot be authenticated, so the key log opens nothing here: the same entries.
    expect(framesFromPackets(snap(cap.packets, 80), 'cut', { keys: KEYS })).to.deep.equal(cut);
    expect(cut.filter((e) => e.kind === 'malformed')).to.deep.equal([]);
    const frames = cut.filter((e): e is FrameEntry => e.kind === 'frame');
    const originals = new Set(full.map((f) => f.body.toString('hex')));
    // Every frame shown whole is one of the real frames; every truncated one is a real frame's start.
    for (const f of frames) {
      if (f.truncated === undefined) expect(originals.has(f.body.toString('hex'))).to.equal(true);
      else expect(full.some((o) => o.body.length === f.truncated && o.body.subarray(0, f.body.length).equals(f.body))).to.equal(true);
    }
    expect(frames.filter((f) => f.truncated !== undefined).map((f) => describeFrame(f).type)).to.include.members(['HANDSHAKE', 'RECORD']);
    expect(frames.filter((f) => describeFrame(f).type === 'RECORD').every((f) => /^encrypted record, \d+ bytes( \[TRUNCATED: \d+ of \d+ B captured\])?$/.test(describeFrame(f).text))).to.equal(true);
    expect(frames.length).to.equal(full.length);
  });

  it('shows a stream that is not this protocol as malformed without stopping other streams', () => {
    const junk = stream(1, [[0, 0]]).slice(0, 1);
    junk.push({ t: 2_000_000, linkType: LinkType.ETHERNET, data: wrap(LinkType.ETHERNET, ipv4Tcp({ src: [10, 0, 0, 9], dst: [10, 0, 0, 2], sport: 1, dport: 7001, seq: 1, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') })) });
    const out = framesFromPackets([...junk, ...stream(1, inOrder(300))], 's');
    expect(bodies(out)).to.deep.equal(EXPECTED);
    expect(out.some((e) => e.kind === 'malformed' && /10\.0\.0\.9:1 > 10\.0\.0\.2:7001: frame length/.test(e.error))).to.equal(true);
  });

  it('keeps only connections with the given port at one end', () => {
    expect(bodies(framesFromPackets(stream(1, inOrder(300)), 's', 7001))).to.deep.equal(EXPECTED);
    expect(bodies(framesFromPackets(stream(1, inOrder(300)), 's', 7002))).to.deep.equal([]);
  });

  for (const [name, opts] of [['little-endian microsecond', { littleEndian: true, nanos: false }], ['big-endian nanosecond', { littleEndian: false, nanos: true }]] as const) {
    it(`reads a ${name} classic pcap`, () => {
      const packets = stream(1, inOrder(300));
      const cap = parseCapture(writePcap(packets, opts));
      expect(cap.error).to.equal(undefined);
      expect(cap.packets.map((p) => [p.t, p.data.toString('hex')])).to.deep.equal(packets.map((p) => [p.t, p.data.toString('hex')]));
    });
  }

  it('reads pcapng timestamps in the resolution its interface declares (if_tsresol)', () => {
    const packets = stream(1, inOrder(300));
    const cap = parseCapture(writePcapng(packets));
    expect(cap.format).to.equal('pcapng');
    expect(cap.packets.map((p) => p.t)).to.deep.equal(packets.map((p) => p.t));
  });

  it('returns the packets before a truncation and says where the file ended', () => {
    const packets = stream(1, inOrder(300));
    const file = writePcap(packets, { littleEndian: true, nanos: false });
    const cap = parseCapture(file.subarray(0, file.length - 5));
    expect(cap.packets).to.have.length(packets.length - 1);
    expect(cap.error).to.match(/truncated packet at byte \d+/);
  });
});
