/**
 * Writes spec/vectors/vectors.json from the fixed cases (`npm run vectors`). Run it only when
 * the protocol changes on purpose; docs/PROTOCOL.md §7 says the version changes with it.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildVectors } from './build.js';

const out = fileURLToPath(new URL('./vectors.json', import.meta.url));
writeFileSync(out, JSON.stringify(buildVectors(), null, 2) + '\n');
console.log(`wrote ${out}`);
