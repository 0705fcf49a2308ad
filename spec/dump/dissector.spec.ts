import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NODE_A = 'e99f38ed';
const NODE_B = '6b12e623';

function haveTshark(): boolean {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** The Lua dissector under tshark, when tshark is installed (skipped otherwise: it is optional). */
describe('the Wireshark dissector (docs/wireshark/aethel.lua)', function () {
  this.timeout(60_000);
  before(function () {
    if (!haveTshark()) this.skip();
  });

  const tshark = async (file: string): Promise<string[]> => {
    const { stdout, stderr } = await run('tshark', ['-X', 'lua_script:docs/wireshark/aethel.lua', '-r', file, '-Y', 'aethel'], { timeout: 30_000 });
    expect(stdout + stderr).to.not.match(/Lua Error|out of bounds/);
    return stdout.split('\n').filter((l) => l.includes('AETHEL'));
  };

  it('names both ends by node id once it has seen their HELLOs', async () => {
    const lines = await tshark('spec/fixtures/two-nodes.pcap');
    expect(lines[0]).to.match(new RegExp(`\\[${NODE_A} → \\?\\] HELLO v1`));
    expect(lines[1]).to.match(new RegExp(`\\[${NODE_B} → ${NODE_A}\\] HELLO v1`));
    expect(lines.some((l) => new RegExp(`\\[${NODE_A} → ${NODE_B}\\] GOSSIP id=293001a0`).test(l))).to.equal(true);
  });

  it('marks the frames of a capture cut to 80 bytes a packet as truncated and decodes the whole ones', async () => {
    const lines = await tshark('spec/fixtures/two-nodes-snap80.pcap');
    expect(lines.filter((l) => /HELLO \[TRUNCATED: 10 of 91 body bytes captured\]/.test(l))).to.have.length(2);
    expect(lines.filter((l) => /GOSSIP \[TRUNCATED: 10 of 188 body bytes captured\]/.test(l))).to.have.length(2);
    expect(lines.some((l) => / PING seq=1$/.test(l))).to.equal(true);
  });
});
