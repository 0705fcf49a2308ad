import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * docs/examples/quickstart.ts, run as written (as `npm run quickstart` runs it): the
 * package name resolves to this checkout's sources through the `aethel-p2p-source` export
 * condition. The packed package's copy is run against dist/ by spec/package/package.spec.ts.
 */
describe('docs/examples/quickstart.ts', function () {
  this.timeout(60_000);

  it('imports the package by name and runs to the end: broadcast, direct message, an error code, metrics', async () => {
    const source = await readFile(new URL('../../docs/examples/quickstart.ts', import.meta.url), 'utf8');
    expect(source).to.match(/from 'aethel-p2p';/);
    expect(source).to.not.match(/from '\.\.?\//);
    const { stdout } = await run(process.execPath, ['--conditions=aethel-p2p-source', '--import', 'tsx', 'docs/examples/quickstart.ts'], { cwd: ROOT });
    const lines = stdout.trim().split('\n');
    expect(lines).to.have.length(7);
    expect(lines[0]).to.match(/^alice [0-9a-f]{12} listens on 127\.0\.0\.1:\d+$/);
    expect(lines[2]).to.match(/^alice got \{"text":"hello, everyone"\} on "chat" from [0-9a-f]{12} after 1 hop\(s\)$/);
    expect([lines[1], ...lines.slice(3)]).to.deep.equal([
      'bob reached 1 of 1 bootstrap address(es)',
      'bob got {"text":"hello, bob"} directly (direct: true)',
      'a send to an unknown id failed with TIMEOUT',
      'alice delivered 1 message(s)',
      'aethel_p2p_delivered_total{topic="chat"} 1',
    ]);
  });
});
