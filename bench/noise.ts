/**
 * Noise benchmark, one core, both ends in-process: XX handshakes per second (both sides,
 * fresh ephemeral keys, through split()), then records sealed and opened per second for
 * record plaintexts of 300 B, 4 KiB, 16 KiB and the largest record (65519 B) (seal+open:
 * a batch of records sealed, joined as a kernel would, opened from 64 KiB reads), and one
 * tick's batch of frames sealed as one record three ways: through RecordSealer (which copies
 * small frames together), one cipher update per frame, and concatenated by the caller.
 * Bounded: each figure runs for --ms (default 500) milliseconds of wall time. Rates are per
 * second of this process's CPU time (user + system), so other load on the machine does not
 * lower them much; handshakes are also given per wall second.
 *
 *   npx tsx bench/noise.ts [--ms 500]      (prints one JSON object on stdout)
 */
import { createCipheriv } from 'node:crypto';
import os from 'node:os';
import { CipherState } from '../lib/noise/cipher-state.js';
import { XXHandshake, generateX25519 } from '../lib/noise/handshake.js';
import { MAX_RECORD_PLAINTEXT, RecordOpener, RecordSealer } from '../lib/noise/records.js';
import { intFlag, parseFlags } from './util.js';

const MS = intFlag(parseFlags(process.argv.slice(2)), 'ms', 500);
const MIB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const PROLOGUE = Buffer.from('aethel-p2p bench');

/**
 * Run `fn` (doing `opsPerCall` operations) for at least MS ms of wall time after one warm-up
 * call; operations per CPU second and per wall second.
 */
function rates(fn: () => void, opsPerCall: number): { cpu: number; wall: number } {
  fn();
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let wallMs = 0;
  while (wallMs < MS) {
    fn();
    calls++;
    wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const used = process.cpuUsage(cpu0);
  const cpuSec = (used.user + used.system) / 1e6;
  return { cpu: (calls * opsPerCall) / cpuSec, wall: (calls * opsPerCall) / (wallMs / 1000) };
}
const opsPerSecond = (fn: () => void, opsPerCall: number, _ms: number) => rates(fn, opsPerCall).cpu;

const iStatic = generateX25519();
const rStatic = generateX25519();
function handshake(): void {
  const i = new XXHandshake({ initiator: true, prologue: PROLOGUE, staticKey: iStatic });
  const r = new XXHandshake({ initiator: false, prologue: PROLOGUE, staticKey: rStatic });
  r.readMessage(i.writeMessage(EMPTY));
  i.readMessage(r.writeMessage(EMPTY));
  r.readMessage(i.writeMessage(EMPTY));
  i.split();
  r.split();
}
const handshakes = rates(handshake, 1);

/** A fresh sealer/opener pair sharing one key. */
function ends() {
  const key = Buffer.alloc(32, 9);
  return { sealer: new RecordSealer(CipherState.fromKey(key)), opener: new RecordOpener(CipherState.fromKey(key)) };
}

interface RecordFigures {
  plaintextBytes: number;
  sealOpenRecordsPerSec: number;
  sealOpenMBps: number;
  sealMBps: number;
  openMBps: number;
}

const records: RecordFigures[] = [];
for (const size of [300, 4096, 16384, MAX_RECORD_PLAINTEXT]) {
  const plaintext = Buffer.alloc(size, 0xab);
  const batch = Math.max(1, Math.floor(MIB / size));
  let got = 0;
  const count = (p: Buffer) => {
    got += p.length;
  };
  const sealOnly = ends();
  const sealPerSec = opsPerSecond(() => {
    for (let k = 0; k < batch; k++) sealOnly.sealer.seal([plaintext]);
  }, batch, MS);
  // Open from a ready stream of records, fed as 64 KiB reads like a socket's.
  const sealed = ends();
  const stream = Buffer.concat(Array.from({ length: batch }, () => Buffer.concat(sealed.sealer.seal([plaintext]))));
  const reads: Buffer[] = [];
  for (let off = 0; off < stream.length; off += 65536) reads.push(stream.subarray(off, off + 65536));
  const openPerSec = opsPerSecond(() => {
    const o = ends().opener;
    for (const r of reads) o.push(r, count);
  }, batch, MS);
  const pair = ends();
  const sealOpenPerSec = opsPerSecond(() => {
    const wire: Buffer[] = [];
    for (let k = 0; k < batch; k++) for (const b of pair.sealer.seal([plaintext])) wire.push(b);
    const bytes = Buffer.concat(wire);
    for (let off = 0; off < bytes.length; off += 65536) pair.opener.push(bytes.subarray(off, off + 65536), count);
  }, batch, MS);
  if (got === 0) throw new Error('nothing opened');
  records.push({
    plaintextBytes: size,
    sealOpenRecordsPerSec: Math.round(sealOpenPerSec),
    sealOpenMBps: Math.round((sealOpenPerSec * size) / MIB),
    sealMBps: Math.round((sealPerSec * size) / MIB),
    openMBps: Math.round((openPerSec * size) / MIB),
  });
}

// One tick's batch of frames sealed as one record, three ways.
interface BatchFigures {
  frames: number;
  frameBytes: number;
  recordSealerPerSec: number;
  updatePerFramePerSec: number;
  concatFirstPerSec: number;
}
const KEY = Buffer.alloc(32, 3);
const batches: BatchFigures[] = [];
for (const [n, size] of [[50, 300], [4, 16384]] as const) {
  const frames = Array.from({ length: n }, () => Buffer.alloc(size, 0xcd));
  const sealer = ends().sealer;
  const viaSealer = opsPerSecond(() => {
    for (let k = 0; k < 100; k++) sealer.seal(frames);
  }, 100, MS);
  const iv = Buffer.alloc(12);
  const perFrame = opsPerSecond(() => {
    for (let k = 0; k < 100; k++) {
      const c = createCipheriv('chacha20-poly1305', KEY, iv, { authTagLength: 16 });
      for (const f of frames) c.update(f);
      c.final();
      c.getAuthTag();
    }
  }, 100, MS);
  const concatSealer = ends().sealer;
  const concatFirst = opsPerSecond(() => {
    for (let k = 0; k < 100; k++) concatSealer.seal([Buffer.concat(frames)]);
  }, 100, MS);
  batches.push({
    frames: n,
    frameBytes: size,
    recordSealerPerSec: Math.round(viaSealer),
    updatePerFramePerSec: Math.round(perFrame),
    concatFirstPerSec: Math.round(concatFirst),
  });
}

process.stdout.write(
  `${JSON.stringify(
    {
      node: process.version,
      msPerFigure: MS,
      handshakesPerCpuSec: Math.round(handshakes.cpu),
      handshakesPerWallSec: Math.round(handshakes.wall),
      loadAverage1m: os.loadavg()[0],
      records,
      batches,
    },
    null,
    2,
  )}\n`,
);
