import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAllCli, runCli } from './cli-process.js';

/** What a person sees when the input is wrong: one clean line on stderr and a failing exit code. */
describe('aethel-p2p error messages', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-errors-'));
  });
  after(async () => {
    killAllCli();
    await rm(dir, { recursive: true, force: true });
  });

  it('names a missing dump file once, without the code repeated', async () => {
    const path = join(dir, 'missing.ndjson');
    const r = await runCli(['dump', path]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(`aethel-p2p: cannot read ${path}: no such file\n`);
  });

  it('refuses an empty dump, a foreign file and a non-capture with exit code 1', async () => {
    const empty = join(dir, 'empty.ndjson');
    await writeFile(empty, '');
    const foreign = join(dir, 'notes.txt');
    await writeFile(foreign, 'shopping list\n');
    for (const [args, line] of [
      [['dump', empty], `aethel-p2p: ${empty} is empty: not a wire dump\n`],
      [['dump', foreign], `aethel-p2p: ${foreign} is not a wire dump: its first line is not a {"kind":"dump",...} header (a capture? use --pcap)\n`],
      [['dump', '--pcap', foreign], `aethel-p2p: ${foreign}: not a capture (not a pcap or pcapng file (unknown magic))\n`],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, args.join(' ')).to.equal(1);
      expect(r.stderr).to.equal(line);
    }
  });

  it('says on stderr, with exit code 1, that a --msg prefix matches nothing', async () => {
    const r = await runCli(['dump', 'spec/fixtures/two-nodes-a.ndjson', '--msg', 'ffff0000']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal('aethel-p2p: no message id starts with ffff0000 in these inputs (dump --delays lists every message)\n');
  });

  it('never prints an error code twice nor the program name twice', async () => {
    const r = await runCli(['node', '--key', join(dir, 'no-such-dir', 'sub', 'k.key'), '--port', '0']);
    expect(r.code).to.not.equal(0);
    expect(r.stderr.split('\n').filter((l) => l.length > 0)).to.have.length(1);
    expect(r.stderr).to.not.match(/(\b[A-Z_]{4,}\b): \1/);
    expect(r.stderr).to.not.match(/aethel-p2p: .*aethel-p2p: /);
  });
});
