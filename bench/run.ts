/**
 * `npm run bench`: every benchmark, one at a time, each in its own child process (so peak RSS
 * is per run), then ratios against the targets of issue 7, printed and written to
 * docs/bench-results.json and to the generated section of docs/PERFORMANCE.md.
 *
 *   npm run bench -- [--quick] [--only codec,pair,flood,cluster,latency,libp2p,seen]
 *                    [--nodes 20] [--degree 4] [--messages 5000] [--size 256] [--window 200]
 *                    [--seed 1] [--profile] [--no-write]
 *
 * --quick: 1,000 messages, shorter timing loops, a smaller seen-cache cap (about 3 minutes).
 * Signed runs are made twice where the targets read them (load, quiet, rounds): as the
 * default, and with one verification worker (--verify-workers 1, option verifyWorkers).
 * Both are reported, in separate rows. The optional eager-tree push mode (`--push tree`, option
 * push: 'tree') runs beside the default at load, quiet, and in 10-node rounds (unsigned), in
 * rows of its own; the targets read the default.
 * latency: the consensus tail (issue 14), ours and the raw flood in the same run: a quiet
 * network (the cluster topology, one message in flight) and PBFT-sized rounds (4 nodes each
 * dialing 3, 10 nodes each dialing 3; every node publishes one message at once, the next
 * round when the last is everywhere). Each latency run, ours and the flood's, first delivers
 * 20 messages (5 rounds) that are not measured, so both measure warm code.
 * --profile: also writes V8 CPU profiles of our cluster runs under scratch/profiles/ and
 * prints their top self-time functions.
 * --no-write: print only; leave docs/ alone.
 *
 * Our benchmarks run compiled, as an application runs the package: lib/ and bench/ are first
 * compiled with `npx tsc -p tsconfig.bench.json` into scratch/bench-js/, and each child is
 * `node scratch/bench-js/bench/<name>.js` (the commands in the report). Under tsx a process
 * starts about 35 MB larger (the loader and its transpiler), which peak RSS would count as
 * ours; gossipsub's baseline runs as the plain JavaScript it ships.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown } from './report.js';
import type { BenchReport, ClusterResult } from './report.js';
import { summarise } from './profile-summary.js';
import { intFlag, parseFlags, RESULT_PREFIX, topology } from './util.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flags = parseFlags(process.argv.slice(2));
const quick = flags.get('quick') === 'true';
const only = new Set((flags.get('only') ?? 'codec,pair,flood,cluster,latency,libp2p,seen').split(','));
const write = flags.get('no-write') !== 'true';
const profile = flags.get('profile') === 'true';
const params = {
  nodes: intFlag(flags, 'nodes', 20),
  degree: intFlag(flags, 'degree', 4),
  messages: intFlag(flags, 'messages', quick ? 1000 : 5000),
  size: intFlag(flags, 'size', 256),
  window: intFlag(flags, 'window', 200),
  seed: intFlag(flags, 'seed', 1),
};
const clusterArgs = Object.entries(params).flatMap(([k, v]) => [`--${k}`, String(v)]);
/** Where tsconfig.bench.json compiles lib/ and bench/ to. */
const JS_DIR = path.join('scratch', 'bench-js');
/** The compiled form of one of our bench scripts, relative to the root. */
const js = (script: string): string => path.join(JS_DIR, script.replace(/\.ts$/, '.js'));

/** Compile lib/ and bench/ for the children (about 10 s). */
function compile(): void {
  process.stderr.write('\ncompiling lib/ and bench/: npx tsc -p tsconfig.bench.json\n');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.bench.json'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npx tsc -p tsconfig.bench.json failed');
}
/**
 * The latency runs (ours and the raw flood alike) first deliver this many messages (quiet) or
 * rounds, not measured: a freshly started process's first messages run cold code (the first
 * broadcast of a quiet run took about 30 ms to reach everyone), which is start-up, not the
 * network. The result's `warmup` field keeps their latencies.
 */
const LATENCY_WARMUP_MESSAGES = 20;
const LATENCY_WARMUP_ROUNDS = 5;
/** Longest any one child may run before it is killed and its benchmark counted as failed. */
const CHILD_TIMEOUT_MS = 300_000;

interface ChildRun {
  result: unknown;
  command: string;
}

/** Run one benchmark child; resolves with its BENCH-RESULT json, or rejects. */
function child(nodeArgs: string[], script: string, args: string[]): Promise<ChildRun> {
  const argv = [...nodeArgs, script, ...args];
  const command = `node ${argv.map((a) => (/[\s"'[\]]/.test(a) ? `'${a}'` : a)).join(' ')}`;
  process.stderr.write(`\n$ ${command.length > 200 ? command.slice(0, 200) + '...' : command}\n`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (!line) return reject(new Error(`${script} exited with ${signal ?? code} and no result`));
      resolve({ result: JSON.parse(line.slice(RESULT_PREFIX.length)), command });
    });
  });
}

function ensureLibp2p(): void {
  const dir = path.join(ROOT, 'bench', 'libp2p');
  if (existsSync(path.join(dir, 'node_modules', 'libp2p'))) return;
  process.stderr.write('\ninstalling the libp2p baseline: npm ci --prefix bench/libp2p\n');
  const r = spawnSync('npm', ['ci', '--prefix', dir, '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci --prefix bench/libp2p failed');
}

function machine(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const report: BenchReport = { date: started.toISOString(), machine: machine(), quick, params, commands: [], results: {} };
  const profileDir = path.join(ROOT, 'scratch', 'profiles', started.toISOString().replace(/[:.]/g, '-'));
  compile();
  /** Run one of our bench scripts (compiled) or the gossipsub baseline (`ours: false`, as is). */
  const run = async (key: keyof BenchReport['results'], nodeArgs: string[], script: string, args: string[], ours = true) => {
    try {
      const r = await child(nodeArgs, ours ? js(script) : script, args);
      (report.results as Record<string, unknown>)[key] = r.result;
      report.commands.push({ key, command: r.command });
    } catch (err) {
      (report.results as Record<string, unknown>)[key] = { ok: false, error: (err as Error).message };
      process.stderr.write(`${key} failed: ${(err as Error).message}\n`);
    }
  };

  if (only.has('codec')) await run('codec', [], 'bench/codec.ts', ['--ms', quick ? '300' : '1000']);
  if (only.has('pair')) await run('pair', [], 'bench/raw-floor.ts', ['--part', 'pair', '--ms', quick ? '500' : '1500']);
  if (only.has('flood')) {
    await run('floodCorked', [], 'bench/raw-floor.ts', ['--part', 'flood', ...clusterArgs]);
    await run('floodUncorked', [], 'bench/raw-floor.ts', ['--part', 'flood', '--uncorked', ...clusterArgs]);
    // The floor of an encrypted protocol: the same flood, each tick's frames sealed as one record of ours.
    await run('floodCorkedEncrypted', [], 'bench/raw-floor.ts', ['--part', 'flood', '--encrypted', ...clusterArgs]);
  }
  if (only.has('cluster')) {
    for (const signed of [false, true]) {
      const dir = path.join(profileDir, signed ? 'signed' : 'unsigned');
      const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
      // Encrypted is the default and what the targets compare; plaintext runs beside it in
      // the same process order so the encryption cost is read from one run (issue 11).
      await run(signed ? 'oursSigned' : 'oursUnsigned', prof, 'bench/cluster.ts', [...clusterArgs, '--signed', String(signed)]);
      await run(signed ? 'oursSignedPlaintext' : 'oursUnsignedPlaintext', [], 'bench/cluster.ts', [...clusterArgs, '--signed', String(signed), '--encrypted', 'false']);
      // Issue 14: the optional verification pool beside the default (one worker for the 20 nodes of the process).
      if (signed) await run('oursSignedPool', [], 'bench/cluster.ts', [...clusterArgs, '--signed', 'true', '--verify-workers', '1']);
      // The optional eager-tree push mode (push: 'tree'), beside the default: fewer copies, longer paths.
      await run(signed ? 'oursSignedTree' : 'oursUnsignedTree', [], 'bench/cluster.ts', [...clusterArgs, '--signed', String(signed), '--push', 'tree']);
      if (profile && existsSync(dir)) {
        // A verification worker writes a profile of its own; the main thread's is the largest.
        const files = readdirSync(dir).map((f) => path.join(dir, f));
        const main = files.sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0];
        if (main) {
          const s = summarise(main, 12);
          (report.profiles ??= {})[signed ? 'signed' : 'unsigned'] = { file: path.relative(ROOT, main), ...s };
        }
      }
    }
  }
  if (only.has('latency')) {
    const quiet = ['--nodes', String(params.nodes), '--degree', String(params.degree), '--seed', String(params.seed),
      '--size', String(params.size), '--messages', quick ? '200' : '500', '--window', '1', '--warmup', String(LATENCY_WARMUP_MESSAGES)];
    await run('quietFlood', [], 'bench/raw-floor.ts', ['--part', 'flood', ...quiet]);
    await run('quietFloodEncrypted', [], 'bench/raw-floor.ts', ['--part', 'flood', '--encrypted', ...quiet]);
    for (const signed of [false, true]) await run(signed ? 'quietSigned' : 'quietUnsigned', [], 'bench/cluster.ts', [...quiet, '--signed', String(signed)]);
    await run('quietSignedPool', [], 'bench/cluster.ts', [...quiet, '--signed', 'true', '--verify-workers', '1']);
    await run('quietUnsignedTree', [], 'bench/cluster.ts', [...quiet, '--signed', 'false', '--push', 'tree']);
    for (const n of [4, 10] as const) {
      const rounds = ['--nodes', String(n), '--degree', '3', '--seed', String(params.seed), '--size', String(params.size), '--rounds', quick ? '100' : '300', '--warmup', String(LATENCY_WARMUP_ROUNDS)];
      await run(`rounds${n}Flood`, [], 'bench/raw-floor.ts', ['--part', 'flood', ...rounds]);
      await run(`rounds${n}FloodEncrypted`, [], 'bench/raw-floor.ts', ['--part', 'flood', '--encrypted', ...rounds]);
      for (const signed of [false, true]) await run(`rounds${n}${signed ? 'Signed' : 'Unsigned'}`, [], 'bench/cluster.ts', [...rounds, '--signed', String(signed)]);
      await run(`rounds${n}SignedPool`, [], 'bench/cluster.ts', [...rounds, '--signed', 'true', '--verify-workers', '1']);
      if (n === 10) await run('rounds10UnsignedTree', [], 'bench/cluster.ts', [...rounds, '--signed', 'false', '--push', 'tree']);
    }
  }
  if (only.has('libp2p')) {
    ensureLibp2p();
    const edges = JSON.stringify(topology(params.nodes, params.degree, params.seed));
    // Above 20 nodes every node's degree can pass gossipsub's 10-peers-per-IP penalty threshold.
    const whitelist = params.nodes > 20;
    const args = ['--nodes', String(params.nodes), '--messages', String(params.messages), '--size', String(params.size),
      '--window', String(params.window), '--whitelist-loopback', String(whitelist), '--edges', edges];
    for (const signed of [false, true]) {
      await run(signed ? 'libp2pSigned' : 'libp2pUnsigned', [], 'bench/libp2p/cluster.mjs', [...args, '--signed', String(signed)], false);
    }
  }
  if (only.has('seen')) {
    const cap = quick ? 20_000 : 100_000;
    await run('seenCache', ['--expose-gc'], 'bench/seen-cache.ts', ['--cap', String(cap), '--ids', String(Math.round(2.5 * cap))]);
  }
  report.machine.loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  report.durationS = Math.round((Date.now() - started.getTime()) / 1000);

  const md = renderMarkdown(report);
  process.stdout.write('\n' + md.summary + '\n');
  if (write) {
    mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
    writeFileSync(path.join(ROOT, 'docs', 'bench-results.json'), JSON.stringify(report, null, 2) + '\n');
    const perfPath = path.join(ROOT, 'docs', 'PERFORMANCE.md');
    const BEGIN = '<!-- bench:begin (generated by npm run bench; edits inside are overwritten) -->';
    const END = '<!-- bench:end -->';
    const old = existsSync(perfPath) ? readFileSync(perfPath, 'utf8') : `# Performance\n\n${BEGIN}\n${END}\n`;
    const a = old.indexOf(BEGIN);
    const b = old.indexOf(END);
    const next = a >= 0 && b > a ? old.slice(0, a) + BEGIN + '\n' + md.section + '\n' + old.slice(b) : old + `\n${BEGIN}\n${md.section}\n${END}\n`;
    writeFileSync(perfPath, next);
    process.stderr.write('wrote docs/bench-results.json and docs/PERFORMANCE.md\n');
  }
  const failed = Object.values(report.results).some((r) => (r as ClusterResult | undefined)?.ok === false);
  process.exitCode = failed ? 1 : 0;
}

await main();
