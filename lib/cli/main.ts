/**
 * aethel-p2p command line.
 *   aethel-p2p node [--host H] [--port P] [--bootstrap H:P,...] [--topic T] [--dump FILE] ...
 *   aethel-p2p demo [--nodes N] [--messages M] [--size B]
 *   aethel-p2p --version
 * A bad command line prints one line to stderr and exits with code 2.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './args.js';

/** The package version: package.json is two levels up from lib/cli/ and from dist/cli/ alike. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * One line per command: its name and its entry point, loaded only when that command runs
 * (so `node` does not load the demo's cluster code). Each command's --help describes it.
 */
const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  node: (argv) => import('./node-command.js').then((m) => m.runNode(argv)),
  demo: (argv) => import('./demo.js').then((m) => m.runDemo(argv)),
  conformance: (argv) => import('./conformance.js').then((m) => m.runConformanceCommand(argv)),
  dump: (argv) => import('./dump.js').then((m) => m.runDump(argv)),
  sim: (argv) => import('./sim.js').then((m) => m.runSim(argv)),
};

function usage(): string {
  return [
    'usage: aethel-p2p <command> [options]',
    `commands: ${Object.keys(COMMANDS).join(', ')}`,
    'run "aethel-p2p <command> --help" for what a command does and its options',
    '"aethel-p2p --version" prints the version',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-v' || cmd === 'version') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (cmd === undefined) throw new UsageError(`missing command: one of ${Object.keys(COMMANDS).join(', ')} (try --help)`);
  const run = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!run) throw new UsageError(`unknown command ${JSON.stringify(cmd)}: one of ${Object.keys(COMMANDS).join(', ')}`);
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`aethel-p2p: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      // One line, never a stack trace: the first line of the message, with the code if any.
      const e = err as { code?: string; message?: string };
      const message = (e.message ?? String(err)).split('\n')[0]!;
      // The code once: not again when the message already carries it ("EACCES: permission denied").
      const prefix = e.code && !message.includes(e.code) ? `${e.code}: ` : '';
      process.stderr.write(`aethel-p2p: ${prefix}${message.replace(/^aethel-p2p: /, '')}\n`);
      process.exitCode = 1;
    }
  },
);
