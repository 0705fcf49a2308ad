/**
 * The signature verification pool (lib/gossip/verify-pool.ts) with real worker threads:
 * verdicts, batching, its bound, closing, and the one shared pool per process.
 */
import { expect } from 'chai';
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from '../../lib/errors.js';
import { acquireVerifyPool, checkWorkers, VerifyPool, verifyPoolStats } from '../../lib/gossip/verify-pool.js';
import { generateIdentity } from '../../lib/identity.js';
import { resolveOptions } from '../../lib/options.js';

const signer = generateIdentity();
const other = generateIdentity();

/** A message id (32 bytes) and its signature by `signer`. */
function signedId(n: number): { publicKey: Buffer; data: Buffer; signature: Buffer } {
  const data = Buffer.alloc(32, n & 0xff);
  data.writeUInt32BE(n, 0);
  return { publicKey: signer.publicKey, data, signature: signer.sign(data) };
}

describe('VerifyPool', function () {
  this.timeout(20_000);
  const pools: VerifyPool[] = [];
  const pool = (opts: Partial<ConstructorParameters<typeof VerifyPool>[0]> = {}) => {
    // Every request to the workers unless a test says otherwise (inlinePerTurn has its own test).
    const p = new VerifyPool({ workers: 1, inlinePerTurn: 0, balanceBelow: 0, ...opts });
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('accepts a valid signature and refuses a forged one, another key\'s, and a tampered id', async () => {
    const ok = signedId(1);
    const verdicts = await pool().verifyBatch([
      ok,
      { ...ok, signature: Buffer.alloc(64, 7) },
      { ...ok, publicKey: other.publicKey },
      { ...ok, data: Buffer.alloc(32, 0xee) },
      { ...ok, publicKey: Buffer.alloc(32, 0) }, // not a usable key at all
    ]);
    expect(verdicts).to.deep.equal([true, false, false, false, false]);
  });

  it('verifies a turn\'s requests as a few batches and hands each verdict back in order', async () => {
    const p = pool({ postAt: 64 });
    const items = Array.from({ length: 200 }, (_, i) => (i % 7 === 3 ? { ...signedId(i), signature: Buffer.alloc(64, i) } : signedId(i)));
    const verdicts = await p.verifyBatch(items);
    expect(verdicts).to.deep.equal(items.map((_, i) => i % 7 !== 3));
    const s = p.stats();
    expect(s.requests).to.equal(200);
    // The first at once (the worker was idle), then 64 at a time as they come, the last 7 at the end of the turn.
    expect(s.batches).to.equal(5);
    expect(s.inFlight).to.equal(0);
    expect(s.workerBusyMs).to.be.above(0);
  });

  it('spreads a batch over its workers when it has several', async function () {
    if (availableParallelism() < 2) this.skip();
    const p = pool({ workers: 2 });
    expect(p.size).to.equal(2);
    const verdicts = await p.verifyBatch(Array.from({ length: 10 }, (_, i) => signedId(i)));
    expect(verdicts.every(Boolean)).to.equal(true);
    // The first alone to an idle worker, the other nine split over both at the end of the turn.
    expect(p.stats().batches).to.equal(3);
  });

  it('refuses requests beyond its in-flight bound, so the caller verifies them itself', () => {
    const p = pool({ maxInFlightPerWorker: 3, postAt: 2 });
    const done = () => {};
    const r = signedId(1);
    // The first is posted at once (idle worker), the next two at postAt; then the bound is reached.
    const taken = Array.from({ length: 5 }, () => p.verify(r.publicKey, r.data, r.signature, done));
    expect(taken).to.deep.equal([true, true, true, false, false]);
    expect(p.stats()).to.include({ requests: 3, refused: 2, inFlight: 3 });
  });

  it('refuses the first inlinePerTurn requests of each turn, for the caller to verify on the event loop', async () => {
    const p = pool({ inlinePerTurn: 1 });
    const r = signedId(1);
    const turn = () => Array.from({ length: 3 }, () => p.verify(r.publicKey, r.data, r.signature, () => {}));
    expect(turn()).to.deep.equal([false, true, true]);
    await new Promise((res) => setImmediate(res));
    expect(turn()).to.deep.equal([false, true, true]);
    expect(p.stats()).to.include({ inline: 2, requests: 4, refused: 0 });
  });

  it('verifies its share of a small backlog on the event loop at the end of the turn, so both finish together', async () => {
    const p = pool({ balanceBelow: 32 });
    const items = Array.from({ length: 5 }, (_, i) => (i === 4 ? { ...signedId(i), signature: Buffer.alloc(64, 1) } : signedId(i)));
    // The first goes to the idle worker at once; of the four gathered, the event loop takes two (backlog 5, two threads).
    expect(await p.verifyBatch(items)).to.deep.equal([true, true, true, true, false]);
    expect(p.stats()).to.include({ requests: 5, inline: 2, batches: 2 });
    // A backlog above the bound is all the workers'.
    const big = pool({ balanceBelow: 4 });
    expect((await big.verifyBatch(Array.from({ length: 10 }, (_, i) => signedId(i)))).every(Boolean)).to.equal(true);
    expect(big.stats().inline).to.equal(0);
  });

  it('refuses inputs of the wrong size without queueing them', () => {
    const p = pool();
    const r = signedId(1);
    expect(p.verify(r.publicKey.subarray(1), r.data, r.signature, () => {})).to.equal(false);
    expect(p.verify(r.publicKey, Buffer.alloc(31), r.signature, () => {})).to.equal(false);
    expect(p.verify(r.publicKey, r.data, r.signature.subarray(0, 63), () => {})).to.equal(false);
    expect(p.stats().requests).to.equal(0);
  });

  it('never calls back synchronously', () => {
    const p = pool();
    const r = signedId(1);
    let called = false;
    expect(p.verify(r.publicKey, r.data, r.signature, () => (called = true))).to.equal(true);
    expect(called).to.equal(false);
  });

  it('drops unanswered requests when closed, terminates its workers, and refuses afterwards', async () => {
    const p = pool();
    const r = signedId(1);
    let answered = 0;
    for (let i = 0; i < 100; i++) p.verify(r.publicKey, r.data, r.signature, () => answered++);
    await p.close();
    expect(p.size).to.equal(0);
    expect(p.verify(r.publicKey, r.data, r.signature, () => answered++)).to.equal(false);
    // Anything already on its way back is dropped too: give it a few turns to (not) arrive.
    for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    expect(answered).to.equal(0);
    await p.close(); // idempotent
  });
});

describe('the process\'s verification pool (acquireVerifyPool)', function () {
  this.timeout(20_000);

  it('is one pool shared by every holder, grown to the largest size asked, closed with the last release', async function () {
    const a = acquireVerifyPool(1);
    const b = acquireVerifyPool(1);
    expect(b.pool).to.equal(a.pool);
    expect(verifyPoolStats()?.workers).to.equal(1);
    if (availableParallelism() >= 2) {
      const c = acquireVerifyPool(2);
      expect(c.pool).to.equal(a.pool);
      expect(a.pool.size).to.equal(2);
      await c.release();
    }
    await a.release();
    await a.release(); // idempotent: does not give b's hold back
    expect(b.pool.size).to.be.at.least(1);
    expect(await b.pool.verifyBatch([signedId(5)])).to.deep.equal([true]);
    await b.release();
    expect(b.pool.size).to.equal(0);
    expect(verifyPoolStats()).to.equal(undefined);
    // A new holder after that gets a new pool.
    const d = acquireVerifyPool(1);
    expect(d.pool).to.not.equal(a.pool);
    await d.release();
  });

  it('validates the worker count, naming the field', () => {
    for (const bad of [-1, 1.5, availableParallelism() + 1, '2']) {
      expect(() => resolveOptions({ verifyWorkers: bad as number })).to.throw(InvalidOptionError).with.property('field', 'verifyWorkers');
    }
    expect(resolveOptions({}).verifyWorkers).to.equal(0);
    expect(resolveOptions({ verifyWorkers: 1 }).verifyWorkers).to.equal(1);
    expect(() => checkWorkers('workers', 0, 1)).to.throw(InvalidOptionError);
    expect(() => new VerifyPool({ workers: 0 })).to.throw(InvalidOptionError).with.property('field', 'workers');
  });
});
