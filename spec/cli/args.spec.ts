import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { killAllCli, runCli } from './cli-process.js';
import type { CliResult } from './cli-process.js';

/**
 * Bad command lines, each run as a real process: one line on stderr naming the problem,
 * nothing on stdout, exit code 2, no stack trace.
 */
const BAD: Array<{ args: string[]; says: RegExp; what: string }> = [
  { what: 'no command', args: [], says: /missing command/ },
  { what: 'an unknown command', args: ['frob'], says: /unknown command "frob"/ },
  { what: 'an unknown flag', args: ['node', '--bogus'], says: /unknown option --bogus/ },
  { what: 'a port out of range', args: ['node', '--port', '70000'], says: /--port must be an integer from 0 to 65535/ },
  { what: 'a port that is not a number', args: ['node', '--port', 'abc'], says: /--port .*"abc"/ },
  { what: 'a flag missing its value', args: ['node', '--port'], says: /--port needs a value/ },
  { what: 'a negative port', args: ['node', '--port', '-1'], says: /^aethel-p2p: --port must be an integer from 0 to 65535, got "-1"$/ },
  { what: 'a bad advertised port', args: ['node', '--advertise-port', '65536'], says: /--advertise-port must be an integer from 0 to 65535/ },
  { what: 'a bad advertised host', args: ['node', '--advertise-host', 'a b'], says: /--advertise-host: / },
  { what: 'a bootstrap address without a port', args: ['node', '--bootstrap', 'nope'], says: /--bootstrap: .*"nope"/ },
  { what: 'a bootstrap address with port 0', args: ['node', '--bootstrap', '127.0.0.1:7001,127.0.0.1:0'], says: /--bootstrap: .*"127\.0\.0\.1:0"/ },
  { what: 'more verification workers than cores', args: ['node', '--verify-workers', '4096'], says: /--verify-workers must be an integer from 0 to \d+, got "4096"/ },
  { what: 'a bad log level', args: ['node', '--log-level', 'loud'], says: /--log-level must be one of/ },
  { what: 'a stray positional argument', args: ['node', 'extra'], says: /unexpected argument "extra"/ },
  { what: 'too few demo nodes', args: ['demo', '--nodes', '1'], says: /--nodes must be an integer from 2/ },
  { what: 'a demo message count of 0', args: ['demo', '--messages', '0'], says: /--messages must be an integer/ },
  { what: 'a demo size that is not a number', args: ['demo', '--size', 'big'], says: /--size .*"big"/ },
  { what: 'a bad demo repair setting', args: ['demo', '--repair', 'maybe'], says: /--repair must be on or off/ },
  { what: 'a value given to a demo switch', args: ['demo', '--json=yes'], says: /--json takes no value/ },
];

describe('aethel-p2p command line arguments', function () {
  this.timeout(90_000);
  const results = new Map<string, CliResult>();

  // Run every case up front, three processes at a time (each one starts a Node with tsx).
  before(async () => {
    const queue = [...BAD];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) results.set(c.what, await runCli(c.args));
    };
    await Promise.all([worker(), worker(), worker()]);
  });

  after(() => killAllCli());

  for (const c of BAD) {
    it(`rejects ${c.what} (${['aethel-p2p', ...c.args].join(' ')}) with one line on stderr and exit code 2`, () => {
      const r = results.get(c.what)!;
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stdout).to.equal('');
      const lines = r.stderr.split('\n').filter((l) => l.length > 0);
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.match(/^aethel-p2p: /);
      expect(lines[0]).to.match(c.says);
      expect(r.stderr).to.not.match(/\n\s+at /);
    });
  }

  it('creates no key file when the rest of the command line is bad', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aethel-cli-'));
    try {
      const keyFile = join(dir, 'node.key');
      const r = await runCli(['node', '--key', keyFile, '--bootstrap', 'nope']);
      expect(r.code).to.equal(2);
      expect(existsSync(keyFile)).to.equal(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints the package version and exits 0 for --version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal(`${version}\n`);
  });

  it('runs through bin/aethel-p2p.js in a checkout, built or not (tsx when dist/ is missing)', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const bin = fileURLToPath(new URL('../../bin/aethel-p2p.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [bin, '--version']);
    expect(stdout).to.equal(`${version}\n`);
  });

  it('says once, in plain words, that the port is in use, and exits 1', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    try {
      const r = await runCli(['node', '--port', String(port)]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`aethel-p2p: LISTEN_FAILED: cannot listen on 127.0.0.1:${port}: the port is already in use (EADDRINUSE)\n`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('prints its usage and exits 0 for --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^usage: aethel-p2p <command>/);
    expect(r.stdout).to.match(/commands: .*\bnode\b.*\bdemo\b/);
  });

  it('prints the node command\'s options and exits 0 for node --help', async () => {
    const r = await runCli(['node', '--help']);
    expect(r.code).to.equal(0);
    for (const flag of ['--host', '--port', '--advertise-host', '--advertise-port', '--bootstrap', '--topic', '--dump', '--log-level', '--verify-workers']) expect(r.stdout).to.include(flag);
  });
});
