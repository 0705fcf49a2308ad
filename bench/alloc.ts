/**
 * Per-message cost of the gossip hot path (issue 14): one engine relays GOSSIP bodies from
 * fake peers (no sockets), every message arriving once first and then `--dups` more times
 * from other peers, as a relay in a fanout-3 mesh sees it. Reports, per message:
 *
 * - bytes allocated (V8 heap + ArrayBuffer growth across a bounded batch, batches during
 *   which a GC ran are discarded; median over batches),
 * - µs of CPU per first delivery (decode, hash, verify, deliver, forward, cache) and per
 *   duplicate (the copies dropped as seen),
 * - SHA-256 hashes and Ed25519 verifications per unique message (counted by wrapping
 *   node:crypto's createHash and verify).
 *
 *   node --expose-gc --import tsx bench/alloc.ts [--messages 20000] [--dups 3] [--size 256] [--batch 250] [--relay]
 *                                                [--signed both|true|false]
 *
 * The node subscribes to the topic (deliver() gets a copy of each payload); --relay: it does
 * not (the host's subscribed() says false), as a relay-only node.
 *
 * The body arrives as the Connection hands it up: bytes. `--legacy` drives an engine whose
 * onGossip takes a decoded message (main before issue 14): it decodes each body first with
 * the codec, as the Connection did, so both sides of a comparison pay for every decode.
 */
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import v8 from 'node:v8';
import type { Clock } from '../lib/clock.js';
import { GossipEngine } from '../lib/gossip/engine.js';
import type { GossipOptions, GossipPeer } from '../lib/gossip/engine.js';
import { gossipMessageId } from '../lib/gossip/message-id.js';
import { generateIdentity } from '../lib/identity.js';
import type { Identity } from '../lib/identity.js';
import { Metrics } from '../lib/metrics.js';
import { DEFAULTS } from '../lib/options.js';
import { seededRandom } from '../lib/random.js';
import { decodeMessage, encodeMessage, packValue } from '../lib/wire/codec.js';
import { LIMITS, MessageType } from '../lib/wire/messages.js';
import type { Message } from '../lib/wire/messages.js';
import { emitResult, intFlag, note, parseFlags } from './util.js';

const flags = parseFlags(process.argv.slice(2));
const M = intFlag(flags, 'messages', 20_000);
const DUPS = intFlag(flags, 'dups', 3);
const SIZE = Math.max(8, intFlag(flags, 'size', 256));
const BATCH = Math.max(10, intFlag(flags, 'batch', 250));
const PEERS = Math.max(DUPS + 2, intFlag(flags, 'peers', 8));
const legacy = flags.has('legacy');
/** --relay: the node has no subscriber for the topic (it only relays). */
const relayOnly = flags.has('relay');
/** --signed true|false: run that mode only (default both). */
const modes = flags.get('signed') === 'true' ? [true] : flags.get('signed') === 'false' ? [false] : [false, true];
const maybeGc = (globalThis as { gc?: () => void }).gc;
if (!maybeGc) throw new Error('run with node --expose-gc --import tsx bench/alloc.ts');
const gc: () => void = maybeGc;

// Count hashes (streaming and one-shot) and verifications: named imports of node builtins follow the module object
// once syncBuiltinESMExports() is called.
let hashes = 0;
let verifies = 0;
const realCreateHash = crypto.createHash;
const realVerify = crypto.verify;
const realHash = crypto.hash;
(crypto as { hash: unknown }).hash = (...args: unknown[]) => {
  hashes++;
  return (realHash as (...a: unknown[]) => unknown)(...args);
};
(crypto as { createHash: unknown }).createHash = (...args: Parameters<typeof crypto.createHash>) => {
  hashes++;
  return realCreateHash(...args);
};
(crypto as { verify: unknown }).verify = (...args: Parameters<typeof crypto.verify>) => {
  verifies++;
  return (realVerify as (...a: unknown[]) => unknown)(...args);
};
syncBuiltinESMExports();

let now = 1_000_000;
const clock: Clock = {
  now: () => now,
  setTimeout: () => ({ cancel() {} }),
  setInterval: () => ({ cancel() {} }),
};

/** A peer that counts what it is sent and keeps nothing. */
function fakePeer(): GossipPeer & { frames: number } {
  const id = generateIdentity();
  return {
    idHex: id.idHex,
    prefixKey: id.id.subarray(0, LIMITS.seenByEntryBytes).toString('latin1'),
    rttMs: 1,
    frames: 0,
    send(_msg: Message) {
      this.frames++;
      return true;
    },
    sendEncoded(_type: number, _body: Buffer) {
      this.frames++;
      return true;
    },
  };
}

/** The network's defaults, with a repair cache large enough to hold every message of a run. */
const OPTIONS: GossipOptions = { ...DEFAULTS, maxCachedMessages: 50_000 };

interface Figures {
  mode: string;
  messages: number;
  bytesPerFirst: number;
  bytesPerDuplicate: number;
  usPerFirst: number;
  usPerDuplicate: number;
  hashesPerUnique: number;
  verificationsPerUnique: number;
}

async function run(signed: boolean): Promise<Figures> {
  const origins: Identity[] = Array.from({ length: 16 }, () => generateIdentity());
  const peers = Array.from({ length: PEERS }, fakePeer);
  let delivered = 0;
  const engine = new GossipEngine(generateIdentity(), clock, { ...OPTIONS, signMessages: signed }, {
    peers: () => peers,
    deliver: () => void delivered++,
    ...(relayOnly ? { subscribed: () => false } : {}),
    invalid: (_from, reason) => {
      throw new Error(`bench message refused: ${reason}`);
    },
  }, new Metrics(), seededRandom(1));
  // Bodies as a relay receives them: hop 1, seen-by holding the origin's prefix.
  const bodies: Buffer[] = [];
  const payloadOf = (i: number) => packValue(Buffer.alloc(SIZE - 8, i & 0xff));
  for (let i = 0; i < M; i++) {
    const o = origins[i % origins.length]!;
    const seq = now * 1000 + i;
    const topic = 'bench';
    const payload = payloadOf(i);
    const id = gossipMessageId(o.publicKey, seq, topic, payload);
    bodies.push(encodeMessage({
      type: MessageType.GOSSIP, id, origin: o.publicKey, seq, topic, ttl: 6, hops: 1,
      seenBy: [o.id.subarray(0, LIMITS.seenByEntryBytes)], payload, signature: signed ? o.sign(id) : null,
    }));
  }
  const receive = legacy
    ? (from: GossipPeer, body: Buffer) => (engine.onGossip as (f: GossipPeer, m: unknown) => void)(from, decodeMessage(body))
    : (from: GossipPeer, body: Buffer) => (engine.onGossip as (f: GossipPeer, b: Buffer) => void)(from, body);

  const firstBytes: number[] = [];
  const dupBytes: number[] = [];
  let firstCpu = 0;
  let dupCpu = 0;
  const allocated = () => {
    const h = v8.getHeapStatistics();
    return h.used_heap_size + h.external_memory;
  };
  // A batch whose heap shrank saw a GC: its allocation figure is lost (its CPU still counts).
  let gcs = 0;
  const hashes0 = hashes;
  const verifies0 = verifies;
  for (let b = 0; b < M; b += BATCH) {
    const end = Math.min(M, b + BATCH);
    gc();
    let before = allocated();
    let t = process.cpuUsage();
    for (let i = b; i < end; i++) receive(peers[0]!, bodies[i]!);
    await null; // the tick ends: this batch's announcements (one IHAVE per peer) go out
    let cpu = process.cpuUsage(t);
    firstCpu += cpu.user + cpu.system;
    let grew = allocated() - before;
    if (grew >= 0) firstBytes.push(grew / (end - b));
    else gcs++;
    gc();
    before = allocated();
    t = process.cpuUsage();
    for (let d = 1; d <= DUPS; d++) for (let i = b; i < end; i++) receive(peers[d]!, bodies[i]!);
    cpu = process.cpuUsage(t);
    dupCpu += cpu.user + cpu.system;
    grew = allocated() - before;
    if (grew >= 0) dupBytes.push(grew / ((end - b) * DUPS));
    else gcs++;
    now += 1;
  }
  if (delivered !== (relayOnly && !legacy ? 0 : M)) throw new Error(`delivered ${delivered} of ${M}`);
  if (gcs > 0) note(`${gcs} batch(es) saw a GC and were left out of the allocation figures`);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
  };
  return {
    mode: signed ? 'signed' : 'unsigned',
    messages: M,
    bytesPerFirst: Math.round(median(firstBytes)),
    bytesPerDuplicate: Math.round(median(dupBytes)),
    usPerFirst: +(firstCpu / M).toFixed(2),
    usPerDuplicate: +(dupCpu / (M * DUPS)).toFixed(2),
    hashesPerUnique: +((hashes - hashes0) / M).toFixed(3),
    verificationsPerUnique: +((verifies - verifies0) / M).toFixed(3),
  };
}

// One untimed warm-up of each mode so the JIT has compiled the path, then the measured runs.
const results: Figures[] = [];
for (const signed of modes) {
  await run(signed);
  results.push(await run(signed));
}
note(`${legacy ? 'legacy (decoded-object) engine' : 'engine'}${relayOnly ? ', relay only' : ''}: ${M} messages of ${SIZE} B, ${DUPS} duplicate(s) each, ${PEERS} peers`);
for (const r of results) {
  note(`${r.mode.padEnd(8)} first: ${r.bytesPerFirst} B, ${r.usPerFirst} µs; duplicate: ${r.bytesPerDuplicate} B, ${r.usPerDuplicate} µs; ` +
    `hashes/unique ${r.hashesPerUnique}, verifications/unique ${r.verificationsPerUnique}`);
}
emitResult({ bench: 'alloc', legacy, relayOnly, dups: DUPS, size: SIZE, results });
