/**
 * One hostile-peer case from start to end, the same way for every attack:
 *
 *   1. fork the honest peers (honest.ts: A, B and the observer C) and the victim (victim.ts),
 *      which dials all three; wait until it holds them;
 *   2. A and B broadcast every 50 ms; every message crosses the victim to reach the others;
 *   3. baseline window, no attack;
 *   4. the case's attack (it measures the 'attack' window itself while the attack runs, and
 *      stops the attack before it returns);
 *   5. after window: the node must recover within 10 s (its second half is 'recovery');
 *   6. delivery and latency per window from the honest process, memory and event-loop
 *      stalls from the victim's samples, the victim's final stats, crash or not.
 *
 * Every wait is bounded; a case that throws is reported as an error, and both children are
 * stopped (by pid, when they do not answer) whatever happened.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { P2PNetworkOptions } from '../../lib/index.js';
import { VICTIM_HOST } from './addresses.js';
import type { WindowStats } from './honest.js';
import { ChildHandle, wallMs } from './ipc.js';
import type { VictimSample, VictimStats } from './victim.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TOPIC = 'hostile/honest';
export const NETWORK_ID = 'aethel';
const HONEST_PEERS = 3;
const TRICKLE_MS = 50;
const SAMPLE_MS = 200;
/** Deliveries still counted after a window closes: the repair path needs a few heartbeats. */
const GRACE_MS = 3000;

/** One figure the issues ask for, with its verdict. */
export interface Target {
  issue: 12 | 13;
  target: string;
  measured: string;
  /** null: could not be measured in this run. */
  pass: boolean | null;
}

/** What a case gets to work with. */
export interface CaseEnv {
  quick: boolean;
  /** /24 address groups the attacker's identities spread over. */
  groups: number;
  victim: { host: string; port: number; id: string };
  honestPeers: Array<{ id: string; host: string; port: number }>;
  honest: ChildHandle;
  victimStats(): Promise<VictimStats>;
  /** The victim's peers() now. */
  victimPeers(): Promise<Array<{ id: string; state: string; host: string; port: number }>>;
  /** The victim's ledger entry for a peer or origin (peerScore()), null when untracked; banned: isBanned(). */
  victimPeerScore(id: string): Promise<{ score: number; verdict: string; banned: boolean } | null>;
  /** Record a measurement window of `ms` starting now, and wait it out. */
  window(name: string, ms: number): Promise<void>;
  log(msg: string): void;
}

/** What the attacker achieved, as named figures (numbers, booleans or short strings). */
export type Achieved = Record<string, number | string | boolean | null>;

export interface HostileCase {
  name: string;
  issue: 12 | 13;
  /** One line: what the attack does. */
  what: string;
  /** Victim options for this case (the honest peers are known by then: `members`). */
  victimOptions?(quick: boolean, honestPeers: Array<{ id: string; host: string; port: number }>): P2PNetworkOptions;
  /** Run the attack; measure env.window('attack', ...) while it runs; stop it before returning. */
  run(env: CaseEnv): Promise<Achieved>;
  /** The issue's targets for this case, from the outcome. */
  targets(o: CaseOutcome): Target[];
}

export interface PhaseFigures {
  deliveryPct: number;
  p50Ms: number;
  p95Ms: number;
  published: number;
}

export interface CaseOutcome {
  name: string;
  issue: 12 | 13;
  what: string;
  ok: boolean;
  error?: string;
  durationS: number;
  /** The machine's 1-minute load average when the case ended: figures from a loaded machine read high. */
  loadAvg1m: number;
  baseline?: PhaseFigures;
  attack?: PhaseFigures;
  recovery?: PhaseFigures;
  rssMB?: { before: number; peak: number; after: number };
  arrayBuffersMB?: { before: number; peak: number; after: number };
  stallMs?: { baseline: number; attack: number };
  crashed: boolean;
  forgedDelivered: number;
  achieved: Achieved;
  victimFinal?: { connectedPeers: number; knownPeers: number; reachableFraction: number; invalidByReason: Record<string, number> };
  targets: Target[];
}

function figures(w: WindowStats | undefined): PhaseFigures | undefined {
  if (!w) return undefined;
  const r = (n: number, d = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : NaN);
  return { deliveryPct: r(w.deliveryRatio * 100, 2), p50Ms: r(w.p50Ms), p95Ms: r(w.p95Ms), published: w.published };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Run one case end to end. Never throws: failures are in the outcome. */
export async function runCase(
  c: HostileCase,
  opts: { quick: boolean; groups: number; victimOptions: P2PNetworkOptions; log: (s: string) => void; victimNodeArgs?: string[] },
): Promise<CaseOutcome> {
  const t0 = Date.now();
  const samples: VictimSample[] = [];
  const windows: Array<{ name: string; from: number; to: number }> = [];
  const outcome: CaseOutcome = { name: c.name, issue: c.issue, what: c.what, ok: false, durationS: 0, loadAvg1m: 0, crashed: false, forgedDelivered: 0, achieved: {}, targets: [] };
  const honest = ChildHandle.fork('honest', path.join(HERE, 'honest.ts'));
  const victim = ChildHandle.fork('victim', path.join(HERE, 'victim.ts'), (event, data) => {
    if (event === 'sample') samples.push(data as VictimSample);
  }, opts.victimNodeArgs);
  const baseMs = opts.quick ? 4000 : 8000;
  const afterMs = opts.quick ? 6000 : 10_000;
  let attackStart = 0;
  let attackEnd = 0;
  try {
    const honestPeers = await honest.request<Array<{ id: string; host: string; port: number }>>('start', { count: HONEST_PEERS, topic: TOPIC, options: { networkId: NETWORK_ID } });
    const victimOptions: P2PNetworkOptions = {
      networkId: NETWORK_ID,
      listenHost: VICTIM_HOST,
      bootstrap: honestPeers.map((p) => `${p.host}:${p.port}`),
      // The victim is an Internet node: a node listening on loopback may exempt 127.0.0.0/8
      // from its per-address limits by default (a testbed convenience), which would exempt
      // every attacker here. Ignored by a node without that option.
      ...({ admissionAllowlist: [] } as P2PNetworkOptions),
      ...c.victimOptions?.(opts.quick, honestPeers),
      ...opts.victimOptions,
    };
    const v = await victim.request<{ id: string; host: string; port: number }>('start', { options: victimOptions, topic: TOPIC, sampleMs: SAMPLE_MS });
    // A victim working through a flood's backlog answers late: that is a result, not an error.
    const victimStats = () => victim.request<VictimStats>('stats', {}, 180_000);
    await until(async () => (await victimStats()).health.connectedPeers >= HONEST_PEERS, 15_000, 'the victim to connect the honest peers');
    await honest.request('trickle', { intervalMs: TRICKLE_MS, publishers: [0, 1] });
    await sleep(1500);
    const env: CaseEnv = {
      quick: opts.quick,
      groups: opts.groups,
      victim: { host: v.host, port: v.port, id: v.id },
      honestPeers,
      honest,
      victimStats,
      victimPeers: () => victim.request('peers', {}, 30_000),
      victimPeerScore: (id) => victim.request('peerScore', { id }, 30_000),
      async window(name, ms) {
        const from = wallMs();
        await sleep(ms);
        windows.push({ name, from, to: wallMs() });
      },
      log: opts.log,
    };
    await env.window('baseline', baseMs);
    await sleep(1000);
    attackStart = wallMs();
    opts.log(`attack: ${c.what}`);
    outcome.achieved = await c.run(env);
    attackEnd = wallMs();
    opts.log('attack over; watching the recovery');
    await sleep(afterMs / 2);
    await env.window('recovery', afterMs / 2);
    await sleep(GRACE_MS);
    const ws = await honest.request<WindowStats[]>('windows', { windows });
    const byName = (n: string) => ws.find((w) => w.name === n);
    outcome.baseline = figures(byName('baseline'));
    outcome.attack = figures(byName('attack'));
    outcome.recovery = figures(byName('recovery'));
    const replays = await honest.request<{ redelivered: number; ownReturned: number; forgedDelivered: number }>('replays');
    const final = await victimStats();
    outcome.forgedDelivered = replays.forgedDelivered + final.forgedDelivered;
    outcome.victimFinal = {
      connectedPeers: final.health.connectedPeers,
      knownPeers: final.health.knownPeers,
      reachableFraction: final.health.reachableFraction,
      invalidByReason: final.metrics.invalidByReason,
    };
    outcome.ok = true;
  } catch (err) {
    outcome.error = err instanceof Error ? err.message : String(err);
    opts.log(`error: ${outcome.error}`);
  } finally {
    await honest.request('untrickle', {}, 5000).catch(() => {});
    outcome.crashed = victim.exited?.unexpected === true;
    if (outcome.crashed) outcome.error ??= `victim exited (code ${victim.exited?.code}, signal ${victim.exited?.signal})`;
    await Promise.all([victim.stop(), honest.stop()]);
  }
  if (attackStart > 0 && samples.length > 0) {
    const before = samples.filter((s) => s.t < attackStart);
    const during = samples.filter((s) => s.t >= attackStart && s.t <= (attackEnd || Infinity) + SAMPLE_MS);
    const last = samples[samples.length - 1]!;
    const b = before[before.length - 1] ?? samples[0]!;
    const peak = (k: 'rssMB' | 'arrayBuffersMB') => Math.max(b[k], ...during.map((s) => s[k]));
    const r = (n: number) => Math.round(n * 10) / 10;
    outcome.rssMB = { before: r(b.rssMB), peak: r(peak('rssMB')), after: r(last.rssMB) };
    outcome.arrayBuffersMB = { before: r(b.arrayBuffersMB), peak: r(peak('arrayBuffersMB')), after: r(last.arrayBuffersMB) };
    const base = windows.find((w) => w.name === 'baseline');
    const inBase = base ? samples.filter((s) => s.t >= base.from && s.t <= base.to) : [];
    outcome.stallMs = { baseline: r(Math.max(0, ...inBase.map((s) => s.stallMs))), attack: r(Math.max(0, ...during.map((s) => s.stallMs))) };
  }
  outcome.durationS = Math.round((Date.now() - t0) / 100) / 10;
  outcome.loadAvg1m = Math.round(os.loadavg()[0]! * 10) / 10;
  outcome.targets = [...c.targets(outcome), ...commonTargets(outcome)];
  return outcome;
}

/** Every attack: no crash, nothing forged delivered, the node recovers within 10 s after. */
export function commonTargets(o: CaseOutcome): Target[] {
  const published = o.recovery?.published ?? 0;
  return [
    { issue: o.issue, target: 'no crash', measured: o.crashed ? `crashed: ${o.error}` : 'alive', pass: !o.crashed },
    { issue: o.issue, target: 'nothing forged delivered', measured: `${o.forgedDelivered} forged deliveries`, pass: o.ok ? o.forgedDelivered === 0 : null },
    {
      issue: o.issue,
      target: 'recovers within 10 s (delivery >= 99% in the 2nd half of the 10 s after)',
      // Nothing published: the shared honest process was still busy with what the attack
      // made the victim forward, so the window says nothing about the victim.
      measured: !o.recovery ? 'n/a' : published === 0 ? 'not measured: no honest message published in the window' : `${o.recovery.deliveryPct}% (p95 ${o.recovery.p95Ms} ms)`,
      pass: o.recovery && published > 0 ? o.recovery.deliveryPct >= 99 : null,
    },
  ];
}

/** Shared target helpers. */
export const check = {
  deliveryDuring(o: CaseOutcome, issue: 12 | 13): Target {
    return { issue, target: 'honest delivery during the attack >= 99%', measured: o.attack ? `${o.attack.deliveryPct}%` : 'n/a', pass: o.attack ? o.attack.deliveryPct >= 99 : null };
  },
  p95(o: CaseOutcome, issue: 12 | 13): Target {
    const ok = o.attack && o.baseline && Number.isFinite(o.attack.p95Ms) && Number.isFinite(o.baseline.p95Ms);
    return {
      issue,
      target: 'honest p95 <= 2x baseline',
      measured: ok ? `${o.attack!.p95Ms} ms vs ${o.baseline!.p95Ms} ms (x${(o.attack!.p95Ms / o.baseline!.p95Ms).toFixed(1)})` : 'n/a',
      pass: ok ? o.attack!.p95Ms <= 2 * o.baseline!.p95Ms : null,
    };
  },
  num(o: CaseOutcome, key: string): number | undefined {
    const v = o.achieved[key];
    return typeof v === 'number' ? v : undefined;
  },
};
