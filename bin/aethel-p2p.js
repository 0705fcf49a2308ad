#!/usr/bin/env node
// Runs the compiled CLI (npm install builds dist/ through the `prepare` script).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main\.js/.test(String(err.message))) {
    process.stderr.write('aethel-p2p: dist/ is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
