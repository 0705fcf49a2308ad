/**
 * The raw-TCP floor: what this machine does with bare `net` sockets, in the same run as our
 * layer, so our figures can be quoted as ratios.
 *
 *   --part pair    one socket pair in one process pushing 4-byte-prefixed frames, written in
 *                  prebuilt batches of ~256 KiB, for 64 B, 1 KiB and 64 KiB bodies; the
 *                  receiver either counts frames with a minimal parser (the floor) or runs our
 *                  FrameDecoder (how close the decoder comes to the pipe).
 *   --part flood   N nodes on loopback linked by the cluster benchmark's topology; M frames of
 *                  S bytes published round-robin with at most W in flight (`--rounds R`: in
 *                  rounds, every node publishing one at once); each node forwards
 *                  each frame it sees for the first time, the received bytes as they are, to
 *                  every neighbour but the sender (a flood: no codec, no signatures, no ids,
 *                  no seen-by; `--fanout k` forwards to k random neighbours instead). Writes
 *                  are gathered per tick under cork() (`--uncorked`: one write per frame).
 *                  `--encrypted`: each link direction seals a tick's frames as one record of
 *                  our record layer (lib/noise/records.ts: ChaCha20-Poly1305 from node:crypto,
 *                  a 2-byte length and a 16-byte tag), as our connections do, with a key
 *                  derived from the link's two ports instead of a handshake: the floor of an
 *                  encrypted protocol, so our encrypted figures can be read against it too.
 *                  `--warmup K`: K messages (K rounds) first, not measured, as bench/cluster.ts.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { CipherState } from '../lib/noise/cipher-state.js';
import { RecordOpener, RecordSealer } from '../lib/noise/records.js';
import { SINGLE_WRITE_BYTES } from '../lib/transport/connection.js';
import { FrameDecoder } from '../lib/wire/frame.js';
import { seededRandom } from '../lib/random.js';
import { emitResult, intFlag, neighbours, note, parseFlags, peakRssMb, topology, deliverIndex, gcSummary, trackGc, WARMUP_BIT, warmupMessages, warmupSummary, workloadFlags, Workload } from './util.js';

const flags = parseFlags(process.argv.slice(2));
const part = flags.get('part') ?? 'flood';
const MIB = 1024 * 1024;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

// ---- socket pair ---------------------------------------------------------------------------

interface PairFigures {
  bodyBytes: number;
  receiver: 'minimal' | 'FrameDecoder';
  framesPerSec: number;
  MBps: number;
}

/** Minimal receiver: count frames across chunk boundaries, nothing else. */
function minimalCounter(onFrames: (n: number) => void): (chunk: Buffer) => void {
  let skip = 0; // body bytes of the current frame still to skip
  const header = Buffer.alloc(4);
  let headerFill = 0;
  return (chunk) => {
    let off = 0;
    let n = 0;
    while (off < chunk.length) {
      if (skip > 0) {
        const k = Math.min(skip, chunk.length - off);
        skip -= k;
        off += k;
        if (skip === 0) n++;
      } else if (headerFill > 0 || chunk.length - off < 4) {
        const k = Math.min(4 - headerFill, chunk.length - off);
        chunk.copy(header, headerFill, off, off + k);
        headerFill += k;
        off += k;
        if (headerFill === 4) {
          skip = header.readUInt32BE(0);
          headerFill = 0;
        }
      } else {
        skip = chunk.readUInt32BE(off);
        off += 4;
      }
    }
    onFrames(n);
  };
}

async function pair(bodyBytes: number, receiver: PairFigures['receiver'], ms: number): Promise<PairFigures> {
  const frame = Buffer.alloc(bodyBytes + 4, 0x5a);
  frame.writeUInt32BE(bodyBytes, 0);
  const perBatch = Math.max(1, Math.floor((256 * 1024) / frame.length));
  const batch = Buffer.concat(Array.from({ length: perBatch }, () => frame));
  let frames = 0;
  const server = createServer((sock) => {
    if (receiver === 'minimal') {
      sock.on('data', minimalCounter((n) => (frames += n)));
    } else {
      const decoder = new FrameDecoder(1 << 20);
      const onFrame = () => frames++;
      sock.on('data', (c: Buffer) => decoder.push(c, onFrame));
    }
  });
  const port = await listen(server);
  const client = await dial(port);
  client.setNoDelay(true);
  let stop = false;
  const pump = () => {
    while (!stop && client.write(batch));
  };
  client.on('drain', pump);
  const start = performance.now();
  pump();
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const elapsed = (performance.now() - start) / 1000;
  const got = frames;
  client.destroy();
  server.close();
  return { bodyBytes, receiver, framesPerSec: got / elapsed, MBps: (got * bodyBytes) / MIB / elapsed };
}

// ---- flood through the cluster topology ------------------------------------------------------

async function flood(): Promise<unknown> {
  const { N, D, M, S, W, seed, roundSize } = workloadFlags(flags);
  const fanout = intFlag(flags, 'fanout', 0); // 0: every neighbour
  const corked = flags.get('uncorked') !== 'true';
  const encrypted = flags.get('encrypted') === 'true';
  if (encrypted && !corked) throw new Error('--encrypted seals one record per link per tick: it needs the corked writes');
  const timeoutMs = intFlag(flags, 'timeout-ms', 60_000);
  const random = seededRandom(seed + 1);
  const edges = topology(N, D, seed);
  const adj = neighbours(N, edges);

  interface Link {
    sock: Socket;
    corked: boolean;
    /** --encrypted: this tick's frames, sealed as one record at the end of the tick. */
    pending: Buffer[];
    sealer?: RecordSealer;
  }
  const links: Link[][] = Array.from({ length: N }, () => []);
  let framesSent = 0;
  let bytesSent = 0;

  const send = (link: Link, bytes: Buffer) => {
    framesSent++;
    if (link.sealer) {
      if (link.pending.length === 0) {
        process.nextTick(() => {
          // As our connections do: a small tick as one record written whole, a larger one cut
          // by seal() (sealRecord() refuses more than one record's plaintext).
          const bytes = link.pending.reduce((n, b) => n + b.length, 0);
          const out = bytes <= SINGLE_WRITE_BYTES ? [link.sealer!.sealRecord(Buffer.concat(link.pending, bytes))] : link.sealer!.seal(link.pending);
          link.pending.length = 0;
          link.sock.cork();
          for (const b of out) {
            bytesSent += b.length;
            link.sock.write(b);
          }
          link.sock.uncork();
        });
      }
      link.pending.push(bytes);
      return;
    }
    bytesSent += bytes.length;
    if (corked && !link.corked) {
      link.corked = true;
      link.sock.cork();
      process.nextTick(() => {
        link.corked = false;
        link.sock.uncork();
      });
    }
    link.sock.write(bytes);
  };
  const forward = (node: number, from: Link | undefined, frame: Buffer) => {
    const mine = links[node]!;
    if (fanout === 0) {
      for (const l of mine) if (l !== from) send(l, frame);
      return;
    }
    const candidates = mine.filter((l) => l !== from);
    for (let i = 0; i < Math.min(fanout, candidates.length); i++) {
      const j = i + Math.floor(random() * (candidates.length - i));
      const t = candidates[j]!;
      candidates[j] = candidates[i]!;
      send(t, frame);
    }
  };
  /** Message idx of workload `w`, from node idx mod N; `bit`: WARMUP_BIT for the warm-up's. */
  const publisher = (w: () => Workload, bit: number) => (idx: number) => {
    const origin = idx % N;
    const frame = Buffer.alloc(S + 4);
    frame.writeUInt32BE(S, 0);
    frame.writeUInt32BE(idx + bit, 4);
    w().markOrigin(origin, idx);
    forward(origin, undefined, frame);
  };
  const K = warmupMessages(flags, N, roundSize);
  const warm: Workload | undefined = K > 0 ? new Workload(N, K, publisher(() => warm!, WARMUP_BIT), roundSize) : undefined;
  const work: Workload = new Workload(N, M, publisher(() => work, 0), roundSize);
  const onFrame = (node: number, from: Link, frame: Buffer) => {
    // A copy seen before is not forwarded again (a flood's duplicates are its cost, not deliveries).
    if (deliverIndex(work, warm, node, frame.readUInt32BE(4))) forward(node, from, frame);
  };
  /** Minimal receiver: whole frames as views, one concat only when a frame spans chunks. */
  const attach = (node: number, sock: Socket) => {
    sock.setNoDelay(true);
    const link: Link = { sock, corked: false, pending: [] };
    links[node]!.push(link);
    let rest: Buffer | undefined;
    const onBytes = (chunk: Buffer) => {
      let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      rest = undefined;
      let off = 0;
      while (buf.length - off >= 4) {
        const end = off + 4 + buf.readUInt32BE(off);
        if (end > buf.length) break;
        onFrame(node, link, buf.subarray(off, end));
        off = end;
      }
      if (off < buf.length) rest = buf.subarray(off);
      buf = chunk;
    };
    if (!encrypted) {
      sock.on('data', onBytes);
      return;
    }
    // One key per direction, the same at both ends: SHA-256 of "sender port>receiver port".
    const key = (from: number | undefined, to: number | undefined) => createHash('sha256').update(`${from}>${to}`).digest();
    link.sealer = new RecordSealer(CipherState.fromKey(key(sock.localPort, sock.remotePort)));
    const opener = new RecordOpener(CipherState.fromKey(key(sock.remotePort, sock.localPort)));
    sock.on('data', (chunk: Buffer) => opener.push(chunk, onBytes));
  };

  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < N; i++) {
    const node = i;
    const server = createServer((sock) => attach(node, sock));
    servers.push(server);
    ports.push(await listen(server));
  }
  let accepted = 0;
  for (const s of servers) s.on('connection', () => accepted++);
  for (const [a, b] of edges) attach(a, await dial(ports[b]!));
  while (accepted < edges.length) await new Promise((r) => setTimeout(r, 5));

  // Not measured: the compiler and the links warm up (--warmup), as bench/cluster.ts does.
  if (warm) await warm.run(W, timeoutMs);
  framesSent = 0;
  bytesSent = 0;
  const cpu0 = process.cpuUsage();
  const stopGc = trackGc();
  const t0 = performance.now();
  await work.run(W, timeoutMs);
  const gc = gcSummary(work, stopGc);
  const cpu = process.cpuUsage(cpu0);
  const elapsedS = (work.lastDeliveryAt - t0) / 1000;
  for (const l of links.flat()) l.sock.destroy();
  for (const s of servers) s.close();
  const { deliveries, expected } = work;
  return {
    impl: 'raw flood',
    ok: work.complete && (warm?.complete ?? true),
    warmup: warmupSummary(K, warm),
    mode: `${corked ? 'corked' : 'uncorked'}${encrypted ? ', encrypted' : ''}`,
    forwardTo: fanout === 0 ? 'all neighbours' : `${fanout} random neighbours`,
    nodes: N, degree: D, edges: edges.length, meanDegree: (2 * edges.length) / N, messages: M, size: S, window: W, seed, rounds: roundSize > 0 ? M / N : 0,
    deliveries,
    expected,
    deliveredFraction: deliveries / expected,
    deliveriesPerSec: deliveries / elapsedS,
    latencyMs: work.latencyMs(),
    gc,
    copiesPerDelivery: framesSent / deliveries,
    bytesPerDelivery: bytesSent / deliveries,
    cpuUsPerDelivery: (cpu.user + cpu.system) / deliveries,
    peakRssMb: peakRssMb(),
  };
}

async function main(): Promise<void> {
  if (part === 'pair') {
    const ms = intFlag(flags, 'ms', 1500);
    const out: PairFigures[] = [];
    for (const receiver of ['minimal', 'FrameDecoder'] as const) {
      for (const b of [64, 1024, 64 * 1024]) {
        const f = await pair(b, receiver, ms);
        note(`pair ${receiver} ${b} B: ${Math.round(f.framesPerSec).toLocaleString()} frames/s, ${f.MBps.toFixed(0)} MB/s`);
        out.push(f);
      }
    }
    emitResult({ pair: out });
  } else if (part === 'flood') {
    const r = (await flood()) as { deliveriesPerSec: number; deliveredFraction: number; mode: string };
    note(`raw flood (${r.mode}): ${Math.round(r.deliveriesPerSec).toLocaleString()} deliveries/s, delivered ${(r.deliveredFraction * 100).toFixed(2)}%`);
    emitResult(r);
  } else {
    throw new Error(`--part must be pair or flood, got ${part}`);
  }
}

await main();
