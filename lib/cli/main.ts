/**
 * aethel-p2p command line.
 *   aethel-p2p node [--host H] [--port P] [--bootstrap H:P,...] [--topic T] [--dump FILE] ...
 *   aethel-p2p demo [--nodes N] [--messages M] [--size B]
 * A bad command line prints one line to stderr and exits with code 2.
 */
import { UsageError } from './args.js';
import { runDemo } from './demo.js';
import { runNode } from './node-command.js';

const USAGE = `usage: aethel-p2p <command> [options]
commands:
  node   run one node: stdin lines are broadcast, deliveries are JSON lines on stdout
  demo   start a local cluster on loopback and show how messages propagate
run "aethel-p2p <command> --help" for a command's options`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  node: runNode,
  demo: runDemo,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return cmd === undefined ? 2 : 0;
  }
  const run = COMMANDS[cmd];
  if (!run) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (try --help)`);
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
      const e = err as { code?: string; message?: string };
      process.stderr.write(`aethel-p2p: ${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
