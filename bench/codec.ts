/**
 * Codec benchmark: frame encode/decode throughput at 64 B, 1 KiB and 64 KiB bodies (decoding
 * from 64 KiB chunks, as socket reads arrive, and from 1-byte chunks, the worst case, whose
 * time must grow linearly with the input), then GOSSIP message encode/decode, message-id
 * hashing, signing and verification per second.
 *
 *   npx tsx bench/codec.ts [--ms 1000]      (prints a BENCH-RESULT line; bench/run.ts runs it)
 */
import { identityFromSeed, verifySignature } from '../lib/identity.js';
import { gossipMessageId } from '../lib/gossip/message-id.js';
import { decodeMessage, encodeMessage, packValue } from '../lib/wire/codec.js';
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

emitResult({ frames, oneByte, linearity, message });
