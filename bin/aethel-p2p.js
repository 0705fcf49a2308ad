#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, and at `npm pack` time by the
// `prepack` script). In a checkout where dist/ was never built it runs the TypeScript
// sources through tsx (a devDependency), so `npx aethel-p2p` works right after `npm install`.
const missing = (err, file) =>
  err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(file);

import('../dist/cli/main.js').catch(async (err) => {
  if (!missing(err, 'main.js')) throw err;
  let api;
  try {
    api = await import('tsx/esm/api');
  } catch {
    process.stderr.write('aethel-p2p: dist/ is missing; run `npm run build` first\n');
    process.exit(1);
  }
  api.register();
  await import('../lib/cli/main.ts');
});
