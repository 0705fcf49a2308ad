/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per source
 * file, largest first.
 *
 *   npx tsx bench/profile-summary.ts FILE.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { intFlag, parseFlags } from './util.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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

/** Self time per function and per file of one profile, largest first. */
export function summarise(path: string, top: number): { totalMs: number; functions: HotSpot[]; files: HotSpot[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const short = url.replace(/^file:\/\//, '').replace(/^.*\/(lib|bench|node_modules)\//, '$1/');
    const fname = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    fn.set(fname, (fn.get(fname) ?? 0) + us);
    const key = short || functionName;
    file.set(key, (file.get(key) ?? 0) + us);
    total += us;
  }
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, selfPct: (100 * us) / total }));
  return { totalMs: total / 1000, functions: rank(fn), files: rank(file) };
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const args = process.argv.slice(2);
  const path = args.shift();
  if (!path) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top N]');
  const s = summarise(path, intFlag(parseFlags(args), 'top', 25));
  console.log(`total ${s.totalMs.toFixed(0)} ms sampled`);
  console.log('-- self time by function');
  for (const h of s.functions) console.log(`${h.selfPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}`);
  console.log('-- self time by file');
  for (const h of s.files.slice(0, 15)) console.log(`${h.selfPct.toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}`);
}
