/**
 * An optional pool of worker threads that verify Ed25519 signatures of gossip message ids
 * off the event loop (signed mode, option verifyWorkers; issue 14). Verification is most of
 * a signed node's CPU (one ~220 us crypto.verify per unique message); on a host with a spare
 * core the pool moves it there, and the event loop only reads, routes and writes.
 *
 * Who calls what: the network acquires the process's pool when it starts
 * (acquireVerifyPool) and releases it when it stops; the gossip engine sees only the
 * AsyncVerifier seam, through its host (GossipHost.verifyAsync), and calls verify() once per
 * unique message after its cheap checks. The pool gathers the requests of one event-loop turn
 * (from every node of the process) and posts them as one batch per worker; each worker answers
 * with one batch of verdicts, and each request's `done` runs then. A turn's first request, and
 * the event loop's share of a small backlog, are verified on the event loop instead: a thread
 * hop costs latency that only a queue of work pays back.
 *
 * One pool per process, whatever the number of nodes in it (a benchmark or a testbed runs
 * many): reference-counted, grown to the largest size asked for, its workers terminated when
 * the last holder releases it. Idle workers are unref'd, so a process that forgot to stop its
 * nodes can still exit.
 *
 * Bounded: at most maxInFlightPerWorker x workers requests are queued or in flight (and
 * READY_FACTOR times that counting verdicts waiting for the end of the turn); beyond that
 * verify() returns false and the caller verifies synchronously, on its own thread. That
 * is the fallback rather than a drop: nothing an honest peer sent is lost, memory stays
 * bounded, and a flood slows the event loop (so the socket reads, so TCP pushes back) exactly
 * as it does without the pool. It also bounds the wait a verification adds under load: 256
 * requests per worker are about 55 ms of work.
 *
 * The worker is inline JavaScript using only node:crypto (no file to resolve under tsx or in
 * dist/). A request is 128 bytes: public key (32), data (32: a message id), signature (64).
 * A worker that dies is not replaced: the batches it held are verified on this thread and
 * the pool shrinks; with no worker left every request is refused (verified synchronously).
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { InvalidOptionError } from '../errors.js';
import { verifySignature } from '../identity.js';

/** Asynchronous signature verification, as the gossip engine sees it. */
export interface AsyncVerifier {
  /**
   * Queue the check of `signature` by the raw Ed25519 `publicKey` (32 bytes) over `data` (32
   * bytes). true: `done` runs later, never synchronously, with the verdict (or never, once
   * the pool is closed). false: not queued (full, closed, or inputs of another size): verify
   * synchronously. The inputs are copied before verify() returns.
   */
  verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array, done: (valid: boolean) => void): boolean;
}

export interface VerifyPoolOptions {
  /** Worker threads, 1..os.availableParallelism(). */
  workers: number;
  /** Requests queued or in flight per worker before verify() refuses. Default 256 (about 55 ms of work). */
  maxInFlightPerWorker?: number;
  /** Requests gathered before a batch is posted without waiting for the end of the turn. Default 64. */
  postAt?: number;
  /**
   * Requests of each event-loop turn refused first, so their callers verify them on the
   * event loop. Default 1: a message alone in its turn (a quiet network) is verified sooner
   * there than across a thread hop, and when more came the event loop verifies one while
   * the workers verify the rest. 0: every request goes to the workers while they have room.
   */
  inlinePerTurn?: number;
  /**
   * At the end of a turn, a backlog (queued, in flight, and gathered in the turn) of at most
   * this many requests is shared between the event loop and the workers, so that they finish
   * together: a consensus round's few verifications are done in parallel. A larger backlog is
   * left to the workers (the event loop's time then bounds throughput). Default 32 (about 7 ms
   * of work at ~220 us each); 0: never.
   */
  balanceBelow?: number;
}

export const VERIFY_POOL_DEFAULTS = Object.freeze({ maxInFlightPerWorker: 256, postAt: 64, inlinePerTurn: 1, balanceBelow: 32 });

/** Bytes of one request: public key, data, signature. */
export const REQUEST_BYTES = 128;
const KEY_BYTES = 32;
const DATA_BYTES = 32;
const SIGNATURE_BYTES = 64;
/**
 * Requests queued, in flight, or answered and waiting for the end of the turn, at most this
 * many times the in-flight bound (verdicts taken early in a long turn wait for its end).
 */
const READY_FACTOR = 4;

/** KeyObjects a worker keeps (raw key -> KeyObject costs more than a verification's tenth); cleared when full. */
const WORKER_KEY_CACHE = 4096;

/**
 * The worker: verify each 128-byte request of a batch, answer with one byte per request (1
 * valid, 0 not) and the ms it spent. Plain CommonJS (eval: true), node:crypto only.
 */
const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const reply = workerData.reply;
const { createPublicKey, verify } = require('node:crypto');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
reply.on('message', (req) => {
  const t0 = performance.now();
  const b = Buffer.from(req.buffer, req.byteOffset, req.byteLength);
  const n = Math.floor(b.length / ${REQUEST_BYTES});
  const res = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * ${REQUEST_BYTES};
    const raw = b.subarray(o, o + ${KEY_BYTES});
    const k = raw.toString('latin1');
    try {
      let key = keys.get(k);
      if (key === undefined) {
        key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
        if (keys.size >= ${WORKER_KEY_CACHE}) keys.clear();
        keys.set(k, key);
      }
      res[i] = verify(null, b.subarray(o + ${KEY_BYTES}, o + ${KEY_BYTES + DATA_BYTES}), key, b.subarray(o + ${KEY_BYTES + DATA_BYTES}, o + ${REQUEST_BYTES})) ? 1 : 0;
    } catch {
      res[i] = 0;
    }
  }
  reply.postMessage({ res, busyMs: performance.now() - t0 }, [res.buffer]);
});
`;

/** Counters since the pool was created. */
export interface VerifyPoolStats {
  /** Live workers. */
  workers: number;
  /** Requests queued or in flight now. */
  inFlight: number;
  /** Requests accepted by verify(). */
  requests: number;
  /** Requests refused because the pool was full (the caller verified them itself). */
  refused: number;
  /** Requests verified on the event loop by choice: the first of their turn (inlinePerTurn, by the caller), or its share of a small backlog (by the pool). */
  inline: number;
  /** Batches posted to workers. */
  batches: number;
  /** Wall time the workers spent in their verification loops, ms: their CPU on an idle host, more on a busy one (preempted). */
  workerBusyMs: number;
  /** Requests verified on this thread because their worker died. */
  verifiedHere: number;
}

/** A worker's answer to one batch: one byte per request (1 valid), and the ms it spent. */
interface Verdicts {
  res: Uint8Array;
  busyMs: number;
}

interface Batch {
  req: Uint8Array;
  dones: Array<(valid: boolean) => void>;
}

/** Verdicts of one batch, waiting to be handed back. */
interface Answered {
  dones: Array<(valid: boolean) => void>;
  valid: (i: number) => boolean;
}

interface PoolWorker {
  worker: Worker;
  /** Our end of the channel requests and verdicts travel on. */
  port: MessagePort;
  /** Batches posted and not answered, oldest first (a worker answers in order). */
  batches: Batch[];
  inFlight: number;
}

export class VerifyPool implements AsyncVerifier {
  readonly maxInFlightPerWorker: number;
  readonly postAt: number;
  readonly inlinePerTurn: number;
  readonly balanceBelow: number;
  /** Requests of this turn refused for inlinePerTurn. */
  private inlineThisTurn = 0;
  private readonly workers: PoolWorker[] = [];
  /** Requests of this turn not yet posted. */
  private gathered: Uint8Array;
  private gatheredDones: Array<(valid: boolean) => void> = [];
  private flushQueued = false;
  /** Requests posted to a worker and not answered yet (the workers' queues). */
  private inFlight = 0;
  /** Answered batches whose verdicts wait for the end of the turn (taken early: see verify). */
  private readonly ready: Answered[] = [];
  private readyCount = 0;
  private closed = false;
  private readonly counters = { requests: 0, refused: 0, inline: 0, batches: 0, workerBusyMs: 0, verifiedHere: 0 };

  constructor(options: VerifyPoolOptions) {
    const workers = checkWorkers('workers', options.workers, 1);
    this.maxInFlightPerWorker = int('maxInFlightPerWorker', options.maxInFlightPerWorker ?? VERIFY_POOL_DEFAULTS.maxInFlightPerWorker, 1);
    this.postAt = int('postAt', options.postAt ?? VERIFY_POOL_DEFAULTS.postAt, 1);
    this.inlinePerTurn = int('inlinePerTurn', options.inlinePerTurn ?? VERIFY_POOL_DEFAULTS.inlinePerTurn, 0);
    this.balanceBelow = int('balanceBelow', options.balanceBelow ?? VERIFY_POOL_DEFAULTS.balanceBelow, 0);
    this.gathered = new Uint8Array(this.postAt * REQUEST_BYTES);
    this.grow(workers);
  }

  /** Live workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Start workers until there are `workers` (never fewer; a closed pool starts none). */
  grow(workers: number): void {
    while (!this.closed && this.workers.length < workers) this.spawn();
  }

  verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array, done: (valid: boolean) => void): boolean {
    if (this.closed || this.workers.length === 0) return false;
    if (publicKey.length !== KEY_BYTES || data.length !== DATA_BYTES || signature.length !== SIGNATURE_BYTES) return false;
    if (this.inlineThisTurn < this.inlinePerTurn) {
      this.inlineThisTurn++;
      this.counters.inline++;
      this.queueFlush(); // the end of the turn starts the count again
      return false;
    }
    const n = this.gatheredDones.length;
    const cap = this.maxInFlightPerWorker * this.workers.length;
    // Full: take the verdicts already back (a long turn would leave the workers idle while
    // their answers wait for the next one); they are handed back at the end of the turn.
    if (this.inFlight + n >= cap) this.collect();
    if (this.inFlight + n >= cap || this.inFlight + n + this.readyCount >= READY_FACTOR * cap) {
      this.counters.refused++;
      return false;
    }
    const o = n * REQUEST_BYTES;
    this.gathered.set(publicKey, o);
    this.gathered.set(data, o + KEY_BYTES);
    this.gathered.set(signature, o + KEY_BYTES + DATA_BYTES);
    this.gatheredDones.push(done);
    this.counters.requests++;
    // An idle worker gets the request at once (a quiet network's message waits for nothing);
    // else requests are gathered until postAt or the end of the turn.
    if (n + 1 >= this.postAt || this.inFlight === 0) this.post();
    this.queueFlush();
    return true;
  }

  /** Verify many at once: one verdict per item, in order (each refused item is verified on this thread). */
  verifyBatch(items: ReadonlyArray<{ publicKey: Uint8Array; data: Uint8Array; signature: Uint8Array }>): Promise<boolean[]> {
    return new Promise((resolve) => {
      const out = new Array<boolean>(items.length);
      let left = items.length;
      if (left === 0) return resolve(out);
      items.forEach((it, i) => {
        const settle = (valid: boolean) => {
          out[i] = valid;
          if (--left === 0) resolve(out);
        };
        if (!this.verify(it.publicKey, it.data, it.signature, settle)) settle(verifySignature(it.publicKey, it.data, it.signature));
      });
    });
  }

  stats(): VerifyPoolStats {
    return { workers: this.workers.length, inFlight: this.inFlight + this.gatheredDones.length + this.readyCount, ...this.counters };
  }

  /** Terminate every worker; requests not answered yet are dropped (their `done` never runs). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gatheredDones = [];
    this.ready.length = 0;
    this.readyCount = 0;
    const workers = this.workers.splice(0);
    for (const w of workers) {
      w.batches.length = 0;
      w.port.close();
    }
    this.inFlight = 0;
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(this.flush);
  }

  /**
   * The end of a turn in which requests came (the check phase): take the verdicts already
   * back without waiting for the next turn's poll phase (a busy turn is long, and a message
   * waits for its verdict at every hop), hand them back, then post what the turn gathered.
   */
  private readonly flush = (): void => {
    this.flushQueued = false;
    this.inlineThisTurn = 0;
    this.collect();
    this.handBack();
    const n = this.gatheredDones.length;
    if (n === 0 || this.closed || this.workers.length === 0) return;
    // A small backlog (a consensus round, not a flood) is latency-bound: the event loop takes
    // its share, so that it and the workers finish together (balanceBelow).
    const backlog = this.inFlight + n;
    const here = backlog <= this.balanceBelow ? Math.min(n, Math.floor(backlog / (this.workers.length + 1))) : 0;
    const dones = this.gatheredDones.slice(n - here);
    this.gatheredDones.length = n - here;
    if (n - here > 0) this.post();
    if (here === 0) return;
    const req = this.gathered;
    const verdicts = dones.map((_, k) => {
      const o = (n - here + k) * REQUEST_BYTES;
      return verifySignature(req.subarray(o, o + KEY_BYTES), req.subarray(o + KEY_BYTES, o + KEY_BYTES + DATA_BYTES), req.subarray(o + KEY_BYTES + DATA_BYTES, o + REQUEST_BYTES));
    });
    this.counters.inline += here;
    this.ready.push({ dones, valid: (i) => verdicts[i]! });
    this.readyCount += here;
    this.handBack();
  };

  /** Move every answer already on the workers' ports to `ready`. */
  private collect(): void {
    for (let i = 0; i < this.workers.length; i++) {
      const w = this.workers[i]!;
      while (w.inFlight > 0) {
        const m = receiveMessageOnPort(w.port);
        if (m === undefined) break;
        this.take(w, m.message as Verdicts);
      }
    }
    if (this.readyCount > 0) this.queueFlush();
  }

  /** A worker's answer to its oldest batch: its requests leave the worker's queue for `ready`. */
  private take(w: PoolWorker, m: Verdicts): void {
    const batch = w.batches.shift();
    if (!batch) return; // closed meanwhile
    this.counters.workerBusyMs += m.busyMs;
    this.answered(w, { dones: batch.dones, valid: (i) => m.res[i] === 1 });
  }

  private answered(w: PoolWorker, a: Answered): void {
    const n = a.dones.length;
    w.inFlight -= n;
    this.inFlight -= n;
    if (w.inFlight === 0) w.port.unref();
    this.ready.push(a);
    this.readyCount += n;
  }

  /** Hand every ready verdict to its request's `done`, in order. */
  private handBack(): void {
    for (let k = 0; k < this.ready.length; k++) {
      const a = this.ready[k]!;
      this.readyCount -= a.dones.length;
      for (let i = 0; i < a.dones.length; i++) {
        try {
          a.dones[i]!(a.valid(i));
        } catch {
          // One caller's bug must not keep the rest of the batch from its verdicts; the caller
          // (the gossip engine) catches what it can report.
        }
      }
    }
    this.ready.length = 0;
  }

  /** Post what was gathered, split evenly over the workers, least loaded first. */
  private post(): void {
    if (this.closed || this.workers.length === 0) return;
    const dones = this.gatheredDones;
    const n = dones.length;
    this.gatheredDones = [];
    const ws = this.workers.length === 1 ? this.workers : [...this.workers].sort((a, b) => a.inFlight - b.inFlight);
    const per = Math.ceil(n / ws.length);
    for (let k = 0, i = 0; i < n; k++, i += per) {
      const j = Math.min(n, i + per);
      // A copy of exactly these requests: posting clones it, and this one stays here in case the worker dies.
      const batch: Batch = { req: this.gathered.slice(i * REQUEST_BYTES, j * REQUEST_BYTES), dones: dones.slice(i, j) };
      const w = ws[k]!;
      if (w.inFlight === 0) w.port.ref();
      w.batches.push(batch);
      w.inFlight += j - i;
      this.inFlight += j - i;
      this.counters.batches++;
      w.port.postMessage(batch.req);
    }
  }

  private spawn(): void {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'aethel-p2p verify', workerData: { reply: port2 }, transferList: [port2] });
    worker.unref();
    const w: PoolWorker = { worker, port: port1, batches: [], inFlight: 0 };
    // Answers not taken at the end of a turn (flush) come here, in the next turn's poll phase.
    port1.on('message', (m: Verdicts) => {
      this.take(w, m);
      this.handBack();
    });
    port1.unref(); // referenced only while requests are in flight
    // An uncaught error ends the worker ('exit' follows); nothing to do until then.
    worker.on('error', () => {});
    worker.on('exit', () => {
      const at = this.workers.indexOf(w);
      if (at < 0) return; // terminated by close()
      this.workers.splice(at, 1);
      w.port.close();
      for (const batch of w.batches.splice(0)) {
        this.counters.verifiedHere += batch.dones.length;
        this.answered(w, {
          dones: batch.dones,
          valid: (i) => {
            const o = i * REQUEST_BYTES;
            return verifySignature(batch.req.subarray(o, o + KEY_BYTES), batch.req.subarray(o + KEY_BYTES, o + KEY_BYTES + DATA_BYTES), batch.req.subarray(o + KEY_BYTES + DATA_BYTES, o + REQUEST_BYTES));
          },
        });
      }
      this.handBack();
    });
    this.workers.push(w);
  }
}

// ---- the process's pool ------------------------------------------------------------------

/** A hold on the process's pool: verify through `pool`, release() once when done. */
export interface VerifyPoolLease {
  readonly pool: VerifyPool;
  /** Give the hold back; the last one terminates the workers. Idempotent. */
  release(): Promise<void>;
}

let shared: { pool: VerifyPool; holders: number } | undefined;

/**
 * Hold the process's verification pool, created (or grown) to at least `workers` threads.
 * Every node of the process that asks shares it; it is closed when the last lease is released.
 * `options` apply when this call creates the pool (a benchmark tuning it before its nodes start).
 */
export function acquireVerifyPool(workers: number, options: Omit<VerifyPoolOptions, 'workers'> = {}): VerifyPoolLease {
  checkWorkers('verifyWorkers', workers, 1);
  if (shared) shared.pool.grow(workers);
  else shared = { pool: new VerifyPool({ ...options, workers }), holders: 0 };
  const s = shared;
  s.holders++;
  let released = false;
  return {
    pool: s.pool,
    release(): Promise<void> {
      if (released) return Promise.resolve();
      released = true;
      if (--s.holders > 0) return Promise.resolve();
      if (shared === s) shared = undefined;
      return s.pool.close();
    },
  };
}

/** The process's pool's counters, or undefined when no node holds one (benchmarks). */
export function verifyPoolStats(): VerifyPoolStats | undefined {
  return shared?.pool.stats();
}

/** Validate a worker count: an integer from `min` to os.availableParallelism(). */
export function checkWorkers(field: string, v: unknown, min: number): number {
  const max = availableParallelism();
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(field, `expected an integer from ${min} to ${max} (os.availableParallelism()), got ${String(v)}`);
  }
  return v;
}

function int(field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidOptionError(field, `expected an integer >= ${min}, got ${String(v)}`);
  return v;
}
