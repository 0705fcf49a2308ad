import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

/** Every file under `dir`, relative to it. */
async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, base)));
    else out.push(relative(base, p));
  }
  return out;
}

/** Two nodes, one direct message, one broadcast: what every consumer below runs. */
const SCENARIO = `
  const a = new P2PNetwork();
  await a.start();
  const b = new P2PNetwork({ bootstrap: ['127.0.0.1:' + a.address.port] });
  const started = await b.start();
  const got = new Promise((resolve) => a.subscribe('t', (data) => resolve(data)));
  await b.sendToPeer(a.id, 't', { hello: 'world' }, { timeoutMs: 5000 });
  const data = await got;
  let code;
  try { new P2PNetwork({ fanout: 0 }); } catch (err) { code = err instanceof P2PError ? err.code : 'not a P2PError'; }
  const text = a.metricsText();
  await b.stop();
  await a.stop();
  console.log(JSON.stringify({ data, code, answered: started.bootstrap.answered, codes: ERROR_CODES.length, metrics: text.startsWith('# HELP') }));
`;

const EXPECTED = { data: { hello: 'world' }, code: 'INVALID_OPTION', answered: 1, metrics: true };

/**
 * The package as a user gets it: `npm pack` (which builds dist/ through prepack), the
 * tarball unpacked into node_modules/aethel-p2p of a temporary project, and that project
 * using it from ESM, CommonJS and strict TypeScript. The project's other node_modules
 * entries link to this repository's, so nothing is downloaded and the run is deterministic;
 * a separate check holds every bare import in dist/ to the declared (peer) dependencies.
 */
describe('the packed package', function () {
  this.timeout(180_000);
  let tmp: string;
  let app: string;
  let installed: string;
  let files: string[];

  // npm pack builds dist/ here (prepack); a checkout that had none gets none back, so that
  // `npx aethel-p2p` keeps running the current sources rather than this build.
  const hadDist = existsSync(join(ROOT, 'dist'));

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'aethel-pack-'));
    await run('npm', ['pack', '--pack-destination', tmp, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: ROOT, maxBuffer: 16 << 20 });
    const tgz = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error('npm pack wrote no tarball');
    app = join(tmp, 'app');
    installed = join(app, 'node_modules', pkg.name);
    await mkdir(join(app, 'node_modules'), { recursive: true });
    await run('tar', ['xzf', join(tmp, tgz), '-C', tmp]);
    await rename(join(tmp, 'package'), installed);
    for (const dep of await readdir(join(ROOT, 'node_modules'))) {
      if (dep === pkg.name || dep.startsWith('.')) continue;
      await symlink(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep));
    }
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { [pkg.name]: pkg.version } }));
    files = await walk(installed);
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    if (!hadDist) await rm(join(ROOT, 'dist'), { recursive: true, force: true });
  });

  it('ships the build, the sources its maps point at, the docs, LICENSE and CHANGELOG, and no tests or benchmarks', async () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bin/aethel-p2p.js', 'LICENSE', 'README.md', 'CHANGELOG.md', 'docs/API.md', 'docs/METRICS.md', 'docs/examples/quickstart.ts']) {
      expect(files, f).to.include(f);
    }
    expect(files.filter((f) => f.startsWith('spec/') || f.startsWith('bench/'))).to.deep.equal([]);
    const maps = files.filter((f) => f.endsWith('.map'));
    expect(maps.length).to.be.greaterThan(0);
    for (const m of maps) {
      const { sources } = JSON.parse(await readFile(join(installed, m), 'utf8')) as { sources: string[] };
      for (const s of sources) expect(existsSync(join(installed, dirname(m), s)), `${m} points at ${s}`).to.equal(true);
    }
  });

  it('imports only its declared dependencies at run time (no pino-pretty, nothing from devDependencies)', async () => {
    const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    const builtins = new Set(builtinModules);
    const used = new Set<string>();
    for (const f of files.filter((x) => x.startsWith('dist/') && x.endsWith('.js'))) {
      const src = await readFile(join(installed, f), 'utf8');
      for (const m of src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect([...used].filter((u) => !allowed.has(u))).to.deep.equal([]);
    expect(pkg.dependencies).to.not.have.property('pino-pretty');
    expect(used.has('msgpackr') && used.has('pino')).to.equal(true);
  });

  it('works from an ES module', async () => {
    await writeFile(join(app, 'esm.mjs'), `import { P2PNetwork, P2PError, ERROR_CODES } from '${pkg.name}';\n${SCENARIO}`);
    const { stdout } = await run(process.execPath, ['esm.mjs'], { cwd: app });
    expect(JSON.parse(stdout)).to.deep.include(EXPECTED);
  });

  it('works from CommonJS through require()', async () => {
    await writeFile(join(app, 'cjs.cjs'), `const { P2PNetwork, P2PError, ERROR_CODES } = require('${pkg.name}');\n(async () => {${SCENARIO}})();`);
    const { stdout, stderr } = await run(process.execPath, ['cjs.cjs'], { cwd: app });
    expect(JSON.parse(stdout)).to.deep.include(EXPECTED);
    expect(stderr).to.equal('');
  });

  it('type-checks under strict TypeScript from an ES module and from CommonJS', async () => {
    const body = `
import { P2PNetwork, P2PError, ERROR_CODES, DEFAULTS, PROMETHEUS_CONTENT_TYPE } from '${pkg.name}';
import type { DialFailure, DisconnectCode, DisconnectDetail, ErrorCode, MetricsSnapshot, P2PNetworkOptions, SendOptions, StartResult } from '${pkg.name}';

export async function main(): Promise<number> {
  const opts: P2PNetworkOptions = { listenPort: 0, requireBootstrap: false, fanout: DEFAULTS.fanout };
  const node = new P2PNetwork(opts);
  node.on('peer:dial-failed', (f: DialFailure) => console.log(f.address, f.code));
  node.on('peer:disconnect', (_p, reason: string, d: DisconnectDetail) => {
    const code: DisconnectCode = d.code;
    console.log(reason, code);
  });
  const started: StartResult = await node.start();
  const m: MetricsSnapshot = node.metrics();
  const text: string = PROMETHEUS_CONTENT_TYPE + node.metricsText();
  try {
    const send: SendOptions = { timeoutMs: 10, signal: AbortSignal.timeout(10) };
    await node.sendToPeer('00'.repeat(32), 't', 1, send);
  } catch (err) {
    if (err instanceof P2PError) {
      const code: ErrorCode = err.code;
      console.log(code, ERROR_CODES.includes(code));
    }
  }
  await node.stop();
  return started.bootstrap.answered + m.connectedPeers + text.length;
}
`;
    await writeFile(join(app, 'consumer.mts'), body);
    await writeFile(join(app, 'consumer.cts'), body);
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: ['node'],
        strict: true, noEmit: true, skipLibCheck: false, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true,
      },
      files: ['consumer.mts', 'consumer.cts'],
    }));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }).catch((err: { stdout: string }) => ({ stdout: err.stdout, failed: true }));
    expect(r.stdout).to.equal('');
  });

  it('runs the shipped quick start unchanged against the built package', async () => {
    await copyFile(join(installed, 'docs', 'examples', 'quickstart.ts'), join(app, 'quickstart.ts'));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'quickstart.ts'], { cwd: app });
    expect(stdout).to.match(/^bob reached 1 of 1 bootstrap address\(es\)$/m);
    expect(stdout).to.match(/^a send to an unknown id failed with TIMEOUT$/m);
  });

  it('runs its command line from the tarball: --version prints the package version', async () => {
    const { stdout } = await run(process.execPath, [join(installed, 'bin', 'aethel-p2p.js'), '--version'], { cwd: app });
    expect(stdout.trim()).to.equal(pkg.version);
  });
});
