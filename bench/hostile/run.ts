/**
 * `npm run bench:hostile`: every attack of issues 12 and 13 against a real node over
 * loopback, each with its no-attack baseline in the same run, one case after another.
 * Prints a table per case and a PASS/FAIL per target, writes docs/hostile-results.json and
 * the results section of docs/HOSTILE.md.
 *
 *   npm run bench:hostile -- [--quick] [--only sybil-flood,replay] [--groups 4]
 *                            [--victim-options '{"maxPeers":50}'] [--no-write]
 *
 * --quick: shorter windows and smaller floods (about 5 minutes for the suite).
 * --groups: the /24 address groups the attacker's identities spread over (default 4).
 * --victim-options: JSON merged into every victim's P2PNetwork options (last word).
 * --no-write: print only; leave docs/ alone.
 * --profile: the victim writes a V8 CPU profile per case under scratch/profiles/.
 * --only with --write merges the cases run into the existing results.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { P2PNetworkOptions } from '../../lib/index.js';
import { intFlag, parseFlags } from '../util.js';
import { admissionCases } from './cases-admission.js';
import { scoringCases } from './cases-scoring.js';
import { caseText, resultsMarkdown, spliceResults, verdict } from './report.js';
import type { HostileReport } from './report.js';
import { commonTargets, runCase } from './scenario.js';
import type { CaseOutcome } from './scenario.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS_JSON = path.join(ROOT, 'docs', 'hostile-results.json');
const HOSTILE_MD = path.join(ROOT, 'docs', 'HOSTILE.md');

const ALL = [...admissionCases, ...scoringCases];
const flags = parseFlags(process.argv.slice(2));
const quick = flags.get('quick') === 'true';
const write = flags.get('no-write') !== 'true';
const groups = Math.max(1, intFlag(flags, 'groups', 4));
const victimNodeArgs = flags.get('profile') === 'true' ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, 'scratch', 'profiles')}`] : [];
const onlyFlag = flags.get('only');
const only = onlyFlag ? onlyFlag.split(',').map((s) => s.trim()) : ALL.map((c) => c.name);
const unknown = only.filter((n) => !ALL.some((c) => c.name === n));
if (unknown.length > 0) {
  process.stderr.write(`unknown case(s): ${unknown.join(', ')}\nknown: ${ALL.map((c) => c.name).join(', ')}\n`);
  process.exit(2);
}
let victimOptions: P2PNetworkOptions = {};
if (flags.has('victim-options')) {
  try {
    victimOptions = JSON.parse(flags.get('victim-options')!) as P2PNetworkOptions;
  } catch (err) {
    process.stderr.write(`--victim-options is not JSON: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

const command = ['npm run bench:hostile', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2).map((a) => (/[\s"'{}]/.test(a) ? `'${a}'` : a))] : [])].join(' ');
const log = (s: string) => process.stderr.write(`  ${new Date().toISOString().slice(11, 19)} ${s}\n`);

const outcomes: CaseOutcome[] = [];
for (const c of ALL.filter((x) => only.includes(x.name))) {
  process.stderr.write(`\n--- ${c.name}\n`);
  const o = await runCase(c, { quick, groups, victimOptions, log, victimNodeArgs });
  outcomes.push(o);
  process.stdout.write(`\n${caseText(o)}\n`);
}

const cpus = os.cpus();
const report: HostileReport = {
  date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
  command,
  machine: `${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`,
  node: process.version,
  quick,
  groups,
  cases: outcomes,
};

process.stdout.write('\n== targets\n');
for (const o of outcomes) for (const t of o.targets) process.stdout.write(`[${verdict(t)}] ${o.name}: ${t.target}: ${t.measured}\n`);

if (write) {
  let merged = report;
  if (onlyFlag && existsSync(RESULTS_JSON)) {
    // A partial run replaces its own cases in the last full results and keeps the others.
    const prev = JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as HostileReport;
    const ran = new Set(outcomes.map((o) => o.name));
    const cases = ALL.map((c) => {
      if (ran.has(c.name)) return outcomes.find((o) => o.name === c.name);
      const old = prev.cases.find((o) => o.name === c.name);
      // Targets are judged again by the current definitions: the measurements stay as they were.
      return old && { ...old, targets: [...c.targets(old), ...commonTargets(old)] };
    }).filter((o): o is CaseOutcome => o !== undefined);
    merged = { ...report, command: `${prev.command}; then ${command}`, cases };
  }
  writeFileSync(RESULTS_JSON, JSON.stringify(merged, null, 2) + '\n');
  if (existsSync(HOSTILE_MD)) writeFileSync(HOSTILE_MD, spliceResults(readFileSync(HOSTILE_MD, 'utf8'), resultsMarkdown(merged)));
  process.stderr.write(`\nwrote ${path.relative(ROOT, RESULTS_JSON)} and the results of ${path.relative(ROOT, HOSTILE_MD)}\n`);
}
