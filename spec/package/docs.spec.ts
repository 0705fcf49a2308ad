import { expect } from 'chai';
import { readFile } from 'node:fs/promises';

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');

/** Every name lib/index.ts exports, values and types alike. */
function exportedNames(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s+from/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().split(/\s+as\s+/).pop()!.trim();
      if (name) names.push(name);
    }
  }
  return names;
}

describe('the documentation of the public API', () => {
  it('names every export of lib/index.ts in docs/API.md', async () => {
    const [index, api] = await Promise.all([read('lib/index.ts'), read('docs/API.md')]);
    const names = exportedNames(index);
    expect(names.length).to.be.greaterThan(30);
    const missing = names.filter((n) => !new RegExp('`' + n + '[`(<. ]').test(api));
    expect(missing, 'exports without a mention in backticks in docs/API.md').to.deep.equal([]);
  });

  it('lists every error code in docs/API.md', async () => {
    const { ERROR_CODES } = await import('../../lib/errors.js');
    const api = await read('docs/API.md');
    expect(ERROR_CODES.filter((c) => !api.includes('`' + c + '`'))).to.deep.equal([]);
  });

  it('keeps the examples importing the package by name, never a relative path into lib/', async () => {
    for (const f of ['docs/examples/quickstart.ts', 'docs/examples/consensus.ts']) {
      const src = await read(f);
      expect(src, f).to.match(/from 'aethel-p2p'/);
      expect(src, f).to.not.match(/from '\.\.\/.*lib\//);
    }
  });
});
