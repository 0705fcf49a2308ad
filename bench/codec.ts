/**
 * Codec benchmark: frame encode/decode throughput at 64 B, 1 KiB and 64 KiB bodies (decoding
 * from 64 KiB chunks, as socket reads arrive, and from 1-byte chunks, the worst case, whose
 * time must grow linearly with the input), then GOSSIP message encode/decode, message-id
 * hashing, signing and verification per second; then the strict MessagePack decoder against
 * msgpackr's (typical bodies and payloads), packValue's guard against a bare msgpackr pack,
 * and decode bombs: time to reject (or decode) the costliest inputs the limits let through.
 *
 *   npx tsx bench/codec.ts [--ms 1000]      (prints a BENCH-RESULT line; bench/run.ts runs it)
 */
import { identityFromSeed, verifySignature } from '../lib/identity.js';
import { gossipMessageId } from '../lib/gossip/message-id.js';
import { Packr, Unpackr } from 'msgpackr';
import { decodeMessage, encodeMessage, packValue } from '../lib/wire/codec.js';
import { decodeStrict, PAYLOAD_LIMITS, PROTOCOL_LIMITS } from '../lib/wire/msgpack.js';
import type { DecodeLimits } from '../lib/wire/msgpack.js';
import { encodeFrame, FrameDecoder, frameHeader } from '../lib/wire/frame.js';
import { MessageType } from '../lib/wire/messages.js';
import type { Gossip } from '../lib/wire/messages.js';
import { bestMs, emitResult, intFlag, note, opsPerSecond, parseFlags } from './util.js';

const flags = parseFlags(process.argv.slice(2));
const MS = intFlag(flags, 'ms', 1000);
const MIB = 1024 * 1024;

/** A stream of `count` frames with `bodyBytes` bodies, concatenated. */
function frameStream(bodyBytes: number, count: number): Buffer {
  const body = Buffer.alloc(bodyBytes, 0xab);
  const frame = encodeFrame(body);
  const out = Buffer.allocUnsafe(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(out, i * frame.length);
  return out;
}

/** Views of `stream` in chunks of `size` bytes (no copies, like socket reads). */
function chunked(stream: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += size) chunks.push(stream.subarray(off, Math.min(stream.length, off + size)));
  return chunks;
}

/** Decode every chunk with a fresh decoder; throws unless exactly `expect` frames come out. */
function decodeAll(chunks: Buffer[], expect: number): void {
  const decoder = new FrameDecoder(1 << 20);
  let frames = 0;
  const onFrame = () => {
    frames++;
  };
  for (const c of chunks) decoder.push(c, onFrame);
  if (frames !== expect || decoder.bufferedBytes !== 0) throw new Error(`decoded ${frames} frames, expected ${expect}`);
}

export interface FrameFigures {
  bodyBytes: number;
  encodeFramesPerSec: number;
  encodeMBps: number;
  headerOnlyFramesPerSec: number;
  decode64kFramesPerSec: number;
  decode64kMBps: number;
}

const frames: FrameFigures[] = [];
for (const bodyBytes of [64, 1024, 64 * 1024]) {
  const body = Buffer.alloc(bodyBytes, 0xcd);
  const batch = Math.max(1, Math.floor(MIB / bodyBytes));
  const encodeFps = opsPerSecond(() => {
    for (let i = 0; i < batch; i++) encodeFrame(body);
  }, batch, MS);
  const headerFps = opsPerSecond(() => {
    for (let i = 0; i < batch; i++) frameHeader(body.length);
  }, batch, MS);
  const count = Math.max(4, Math.floor((8 * MIB) / (bodyBytes + 4)));
  const chunks = chunked(frameStream(bodyBytes, count), 64 * 1024);
  const decodeFps = opsPerSecond(() => decodeAll(chunks, count), count, MS);
  const f: FrameFigures = {
    bodyBytes,
    encodeFramesPerSec: encodeFps,
    encodeMBps: (encodeFps * bodyBytes) / MIB,
    headerOnlyFramesPerSec: headerFps,
    decode64kFramesPerSec: decodeFps,
    decode64kMBps: (decodeFps * bodyBytes) / MIB,
  };
  frames.push(f);
  note(`frame ${bodyBytes} B: encode ${Math.round(encodeFps)}/s, decode (64 KiB chunks) ${Math.round(decodeFps)}/s = ${f.decode64kMBps.toFixed(0)} MB/s`);
}

// Worst case: every byte in its own chunk. Time per byte must stay flat as the input grows.
export interface OneByteFigures {
  bodyBytes: number;
  inputBytes: number;
  ms: number;
  nsPerByte: number;
}
const oneByte: OneByteFigures[] = [];
{
  const cases: Array<{ bodyBytes: number; count: number; stream: Buffer; best: number }> = [];
  for (const [bodyBytes, counts] of [
    [1024, [64, 128, 256, 512]],
    [64 * 1024, [1, 2, 4, 8]],
  ] as const) {
    for (const count of counts) cases.push({ bodyBytes, count, stream: frameStream(bodyBytes, count), best: Infinity });
  }
  // Each 1-byte chunk is made as it is pushed, as socket reads are: holding half a million
  // chunk objects up front would make the garbage collector, not the decoder, the cost.
  // Sizes are interleaved over rounds, best time kept, so load from other processes hits
  // every size alike.
  const decode1 = (c: (typeof cases)[number]) => {
    const decoder = new FrameDecoder(1 << 20);
    let frames = 0;
    const onFrame = () => {
      frames++;
    };
    const { stream } = c;
    for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1), onFrame);
    if (frames !== c.count) throw new Error(`decoded ${frames} frames, expected ${c.count}`);
  };
  for (let round = 0; round < 6; round++) {
    for (const c of cases) {
      const ms = bestMs(() => decode1(c), 1);
      if (round > 0) c.best = Math.min(c.best, ms); // round 0 warms up
    }
  }
  for (const c of cases) {
    const nsPerByte = (c.best * 1e6) / c.stream.length;
    oneByte.push({ bodyBytes: c.bodyBytes, inputBytes: c.stream.length, ms: c.best, nsPerByte });
    note(`1-byte chunks, ${c.bodyBytes} B bodies, ${c.stream.length} B input: ${c.best.toFixed(1)} ms (${nsPerByte.toFixed(0)} ns/B)`);
  }
}
/** Largest over smallest ns/byte within each body size: about 1 means linear time. */
const linearity = [1024, 64 * 1024].map((b) => {
  const rows = oneByte.filter((r) => r.bodyBytes === b);
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  return { bodyBytes: b, inputGrowth: last.inputBytes / first.inputBytes, timePerByteGrowth: last.nsPerByte / first.nsPerByte };
});

// Message-level costs, with the default workload's 256 B application data.
const identity = identityFromSeed(Buffer.alloc(32, 7));
const payload = packValue(Buffer.alloc(256, 1));
const id = gossipMessageId(identity.publicKey, 1, 'bench', payload);
const signature = identity.sign(id);
const gossip: Gossip = {
  type: MessageType.GOSSIP,
  id,
  origin: identity.publicKey,
  seq: 1,
  topic: 'bench',
  ttl: 9,
  hops: 1,
  seenBy: [Buffer.alloc(8, 1), Buffer.alloc(8, 2), Buffer.alloc(8, 3), Buffer.alloc(8, 4)],
  payload,
  signature,
};
const body = encodeMessage(gossip);
const N = 1000;
const message = {
  gossipBodyBytes: body.length,
  encodePerSec: opsPerSecond(() => {
    for (let i = 0; i < N; i++) encodeMessage(gossip);
  }, N, MS),
  decodePerSec: opsPerSecond(() => {
    for (let i = 0; i < N; i++) decodeMessage(body);
  }, N, MS),
  idHashPerSec: opsPerSecond(() => {
    for (let i = 0; i < N; i++) gossipMessageId(identity.publicKey, i, 'bench', payload);
  }, N, MS),
  signPerSec: opsPerSecond(() => {
    for (let i = 0; i < 100; i++) identity.sign(id);
  }, 100, MS),
  verifyPerSec: opsPerSecond(() => {
    for (let i = 0; i < 100; i++) if (!verifySignature(identity.publicKey, id, signature)) throw new Error('verify failed');
  }, 100, MS),
};
note(`GOSSIP (${body.length} B): encode ${Math.round(message.encodePerSec)}/s, decode ${Math.round(message.decodePerSec)}/s, ` +
  `id ${Math.round(message.idHashPerSec)}/s, sign ${Math.round(message.signPerSec)}/s, verify ${Math.round(message.verifyPerSec)}/s`);

// ---- strict decoder vs msgpackr ------------------------------------------------------------
// msgpackr as the codec used it before the strict decoder (same options), on the same bytes.
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, mapsAsObjects: true, int64AsType: 'number' });
const rawPackr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, encodeUndefinedAsNil: true });
const gossipWith = (p: Buffer): Buffer => encodeMessage({ ...gossip, payload: p });
/** An application value like a consensus vote, about 300 bytes encoded. */
const vote = { height: 1234, round: 2, step: 'prevote', block: Buffer.alloc(32, 1), signer: 'node-abcdef', ts: 1_700_000_000_000, tags: ['a', 'b'], note: 'x'.repeat(150) };
/** About 64 KiB of records: the repeated-key maps, strs and floats payloads are made of. */
const records = Array.from({ length: 600 }, (_, i) => ({ id: i, name: `item-${i}`, score: i * 1.5, ok: true, note: 'é'.repeat(20) }));
const ihave = encodeMessage({ type: MessageType.IHAVE, ids: Array.from({ length: 64 }, (_, i) => Buffer.alloc(32, i)) });

export interface StrictDecodeFigures {
  name: string;
  bytes: number;
  msgpackrPerSec: number;
  strictPerSec: number;
  /** strict / msgpackr: >= 1 means the strict decoder is no slower. */
  ratio: number;
}
const decodeCases: Array<{ name: string; body: Buffer; limits: DecodeLimits }> = [
  { name: 'GOSSIP, 300 B payload', body: gossipWith(packValue(vote)), limits: PROTOCOL_LIMITS },
  { name: 'IHAVE, 64 ids', body: ihave, limits: PROTOCOL_LIMITS },
  { name: 'GOSSIP, 64 KiB payload', body: gossipWith(Buffer.alloc(64 * 1024, 7)), limits: PROTOCOL_LIMITS },
  { name: 'payload, 300 B vote', body: packValue(vote), limits: PAYLOAD_LIMITS },
  { name: 'payload, 64 KiB records', body: packValue(records), limits: PAYLOAD_LIMITS },
];
// Interleaved rounds, best kept: other processes' load hits both decoders alike.
const strictDecode: StrictDecodeFigures[] = decodeCases.map((c) => ({ name: c.name, bytes: c.body.length, msgpackrPerSec: 0, strictPerSec: 0, ratio: 0 }));
for (let round = 0; round < 5; round++) {
  decodeCases.forEach((c, i) => {
    const n = c.body.length > 10_000 ? 20 : 500;
    const f = strictDecode[i]!;
    f.msgpackrPerSec = Math.max(f.msgpackrPerSec, opsPerSecond(() => {
      for (let k = 0; k < n; k++) unpackr.unpack(c.body);
    }, n, MS / 5));
    f.strictPerSec = Math.max(f.strictPerSec, opsPerSecond(() => {
      for (let k = 0; k < n; k++) decodeStrict(c.body, c.limits);
    }, n, MS / 5));
  });
}
for (const f of strictDecode) {
  f.ratio = f.strictPerSec / f.msgpackrPerSec;
  note(`decode ${f.name} (${f.bytes} B): msgpackr ${Math.round(f.msgpackrPerSec)}/s, strict ${Math.round(f.strictPerSec)}/s (x${f.ratio.toFixed(2)})`);
}

// packValue = a guard walk (what MessagePack cannot carry, the peers' limits) + msgpackr pack.
export interface PackFigures {
  name: string;
  msgpackrPerSec: number;
  packValuePerSec: number;
  ratio: number;
}
const packCases: Array<[string, unknown]> = [
  ['300 B vote', vote],
  ['256 B bin', Buffer.alloc(256, 1)],
  ['64 KiB records', records],
  ['60,000 numbers', Array.from({ length: 60_000 }, (_, i) => i)],
];
const pack: PackFigures[] = packCases.map(([name]) => ({ name, msgpackrPerSec: 0, packValuePerSec: 0, ratio: 0 }));
for (let round = 0; round < 5; round++) {
  packCases.forEach(([, v], i) => {
    const f = pack[i]!;
    f.msgpackrPerSec = Math.max(f.msgpackrPerSec, opsPerSecond(() => {
      for (let k = 0; k < 20; k++) rawPackr.pack(v);
    }, 20, MS / 5));
    f.packValuePerSec = Math.max(f.packValuePerSec, opsPerSecond(() => {
      for (let k = 0; k < 20; k++) packValue(v);
    }, 20, MS / 5));
  });
}
for (const f of pack) {
  f.ratio = f.packValuePerSec / f.msgpackrPerSec;
  note(`pack ${f.name}: msgpackr ${Math.round(f.msgpackrPerSec)}/s, packValue ${Math.round(f.packValuePerSec)}/s (x${f.ratio.toFixed(2)})`);
}

// ---- decode bombs ----------------------------------------------------------------------------
const u32be = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const array32 = (n: number, elements: Buffer[]): Buffer => Buffer.concat([Buffer.from([0xdd]), u32be(n), ...elements]);
const fixstr = (s: string): Buffer => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
let fresh = 0;
/** A key no earlier run used, so neither our key cache nor V8 has seen it. */
const freshKey = (): Buffer => fixstr('k' + (fresh++).toString(36));
const I = PAYLOAD_LIMITS.maxItems - 1;
const E = PAYLOAD_LIMITS.maxMapEntries!;

export interface BombFigures {
  name: string;
  bytes: number;
  outcome: 'rejected' | 'decoded';
  strictMs: number;
  msgpackrMs: number;
}
const bombCases: Array<{ name: string; make: () => Buffer; limits: DecodeLimits }> = [
  { name: '1 MiB body: array of a million empty maps', make: () => array32((1 << 20) - 5, [Buffer.alloc((1 << 20) - 5, 0x80)]), limits: PROTOCOL_LIMITS },
  { name: '256 KiB payload: array of empty maps', make: () => array32(256 * 1024 - 5, [Buffer.alloc(256 * 1024 - 5, 0x80)]), limits: PAYLOAD_LIMITS },
  { name: '1 MiB payload: 0x91 nested a million deep', make: () => Buffer.concat([Buffer.alloc((1 << 20) - 1, 0x91), Buffer.from([0xc0])]), limits: PAYLOAD_LIMITS },
  // The costliest shapes PAYLOAD_LIMITS lets through:
  { name: `payload at the limit: ${I} empty maps`, make: () => array32(I, [Buffer.alloc(I, 0x80)]), limits: PAYLOAD_LIMITS },
  { name: `payload at the limit: ${I} empty arrays`, make: () => array32(I, [Buffer.alloc(I, 0x90)]), limits: PAYLOAD_LIMITS },
  { name: `payload at the limit: ${I} uint 64 bigints`, make: () => array32(I, Array.from({ length: I }, () => Buffer.from('cfffffffffffffffff', 'hex'))), limits: PAYLOAD_LIMITS },
  { name: `payload at the limit: ${I} timestamps`, make: () => array32(I, Array.from({ length: I }, () => Buffer.from('d6ff00000001', 'hex'))), limits: PAYLOAD_LIMITS },
  { name: `payload at the limit: ${I} short strs`, make: () => array32(I, Array.from({ length: I }, (_, i) => fixstr('s' + (i % 1000)))), limits: PAYLOAD_LIMITS },
  {
    name: `payload at the limit: ${E} fresh keys in maps of 15`,
    make: () => array32(Math.ceil(E / 15), Array.from({ length: Math.ceil(E / 15) }, (_, i) => {
      const k = Math.min(15, E - i * 15);
      return Buffer.concat([Buffer.from([0x80 | k]), ...Array.from({ length: k }, () => Buffer.concat([freshKey(), Buffer.from([0xc0])]))]);
    })),
    limits: PAYLOAD_LIMITS,
  },
  {
    name: `payload at the limit: one map of ${E} fresh keys`,
    make: () => Buffer.concat([Buffer.from([0xdf]), u32be(E), ...Array.from({ length: E }, () => Buffer.concat([freshKey(), Buffer.from([0xc0])]))]),
    limits: PAYLOAD_LIMITS,
  },
  {
    name: `over the limit: ${I} fresh keys in maps of 15 (no map budget)`,
    make: () => array32(Math.ceil(I / 15), Array.from({ length: Math.ceil(I / 15) }, (_, i) => {
      const k = Math.min(15, I - i * 15);
      return Buffer.concat([Buffer.from([0x80 | k]), ...Array.from({ length: k }, () => Buffer.concat([freshKey(), Buffer.from([0xc0])]))]);
    })),
    limits: { ...PAYLOAD_LIMITS, maxItems: 1 << 20, maxMapEntries: undefined },
  },
];
const bombs: BombFigures[] = [];
for (const c of bombCases) {
  let strictMs = Infinity;
  let msgpackrMs = Infinity;
  let outcome: BombFigures['outcome'] = 'decoded';
  let bytes = 0;
  // Fresh bytes per run (fresh keys stay fresh); best of 7 runs (2 for the slow demonstration).
  const runs = c.name.startsWith('over') ? 2 : 7;
  for (let r = 0; r < runs; r++) {
    const body = c.make();
    bytes = body.length;
    strictMs = Math.min(strictMs, bestMs(() => {
      try {
        decodeStrict(body, c.limits);
      } catch {
        outcome = 'rejected';
      }
    }, 1));
    const again = c.make();
    // msgpackr recurses without a depth cap: skip it where it would overflow the stack.
    if (!c.name.includes('nested')) msgpackrMs = Math.min(msgpackrMs, bestMs(() => unpackr.unpack(again), 1));
  }
  bombs.push({ name: c.name, bytes, outcome, strictMs, msgpackrMs });
  note(`bomb ${c.name} (${bytes} B): strict ${outcome} in ${strictMs.toFixed(2)} ms; msgpackr decodes it in ${Number.isFinite(msgpackrMs) ? msgpackrMs.toFixed(1) + ' ms' : '(not run)'}`);
}

emitResult({ frames, oneByte, linearity, message, strictDecode, pack, bombs });
