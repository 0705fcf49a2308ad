/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per source
 * file, largest first. Given a sampling heap profile (from bench/heap-sample.ts), the same
 * for bytes allocated instead of time.
 *
 *   npx tsx bench/profile-summary.ts FILE.cpuprofile|FILE.heapprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { intFlag, parseFlags } from './util.js';

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  selfMs: number;
  selfPct: number;
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** An amount (time or bytes) per function and per file, the `top` largest of each, and the total. */
function tally(amounts: Iterable<[CallFrame, number]>, top: number): { total: number; functions: Array<[string, number]>; files: Array<[string, number]> } {
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  for (const [{ functionName, url, lineNumber }, amount] of amounts) {
    const short = url.replace(/^file:\/\//, '').replace(/^.*\/(lib|bench|node_modules)\//, '$1/');
    const fname = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    fn.set(fname, (fn.get(fname) ?? 0) + amount);
    const key = short || functionName;
    file.set(key, (file.get(key) ?? 0) + amount);
    total += amount;
  }
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { total, functions: rank(fn), files: rank(file) };
}

/** Self time per function and per file of one profile, largest first. */
export function summarise(path: string, top: number): { totalMs: number; functions: HotSpot[]; files: HotSpot[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const t = tally([...selfUs].map(([id, us]): [CallFrame, number] => [byId.get(id)!.callFrame, us]), top);
  const spots = (list: Array<[string, number]>) => list.map(([name, us]) => ({ name, selfMs: us / 1000, selfPct: (100 * us) / t.total }));
  return { totalMs: t.total / 1000, functions: spots(t.functions), files: spots(t.files) };
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated (sampled) per function and per file of a sampling heap profile, largest first. */
export function summariseHeap(path: string, top: number): { totalMb: number; functions: Array<{ name: string; mb: number; pct: number }>; files: Array<{ name: string; mb: number; pct: number }> } {
  const head = (JSON.parse(readFileSync(path, 'utf8')) as { head: HeapNode }).head;
  const amounts: Array<[CallFrame, number]> = [];
  const stack = [head];
  while (stack.length > 0) {
    const n = stack.pop()!;
    stack.push(...n.children);
    if (n.selfSize > 0) amounts.push([n.callFrame, n.selfSize]);
  }
  const t = tally(amounts, top);
  const sizes = (list: Array<[string, number]>) => list.map(([name, bytes]) => ({ name, mb: bytes / 1e6, pct: (100 * bytes) / t.total }));
  return { totalMb: t.total / 1e6, functions: sizes(t.functions), files: sizes(t.files) };
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const args = process.argv.slice(2);
  const path = args.shift();
  if (!path) throw new Error('usage: profile-summary.ts FILE.cpuprofile|FILE.heapprofile [--top N]');
  const top = intFlag(parseFlags(args), 'top', 25);
  if ('head' in (JSON.parse(readFileSync(path, 'utf8')) as object)) {
    const h = summariseHeap(path, top);
    console.log(`total ${h.totalMb.toFixed(1)} MB allocated (sampled)`);
    console.log('-- bytes allocated by function (inlined callees included)');
    for (const x of h.functions) console.log(`${x.pct.toFixed(1).padStart(5)}%  ${x.mb.toFixed(2).padStart(7)} MB  ${x.name}`);
    console.log('-- bytes allocated by file');
    for (const x of h.files.slice(0, 15)) console.log(`${x.pct.toFixed(1).padStart(5)}%  ${x.mb.toFixed(2).padStart(7)} MB  ${x.name}`);
    process.exit(0);
  }
  const s = summarise(path, top);
  console.log(`total ${s.totalMs.toFixed(0)} ms sampled`);
  console.log('-- self time by function');
  for (const h of s.functions) console.log(`${h.selfPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}`);
  console.log('-- self time by file');
  for (const h of s.files.slice(0, 15)) console.log(`${h.selfPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}`);
}
