/**
 * `aethel-p2p conformance HOST:PORT`: run the protocol checklist (lib/conformance) against
 * any implementation. One line per check, PASS or FAIL with the reason; `--json` prints one
 * JSON report instead. Exit code 0 when every check passes, 1 when any fails, 2 for a bad
 * command line.
 */
import { CHECKS, runConformance } from '../conformance/runner.js';
import type { CheckResult, ConformanceInput } from '../conformance/runner.js';
import { InvalidOptionError } from '../errors.js';
import { parseAddress } from '../options.js';
import { intArg, parseCommand, strArg, UsageError } from './args.js';

const HELP = `usage: aethel-p2p conformance HOST:PORT [options]
  --json                     print one JSON report instead of lines
  --only NAME,...            run only these checks (see --list)
  --list                     list the checks with the PROTOCOL.md section each tests
  --network-id ID            the target's networkId (default "aethel")
  --handshake-timeout-ms N   the target's handshake deadline (default 5000)
  --max-frame-bytes N        the target's maxFrameBytes (default 1048576)
  --reply-timeout-ms N       how long to wait for an answer (default 3000)
  --quiet-ms N               how long to watch for what must not happen (default 1500)
exit code: 0 all checks pass, 1 a check failed, 2 bad command line`;

export async function runConformanceCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    json: { type: 'boolean' },
    only: { type: 'string' },
    list: { type: 'boolean' },
    'network-id': { type: 'string' },
    'handshake-timeout-ms': { type: 'string' },
    'max-frame-bytes': { type: 'string' },
    'reply-timeout-ms': { type: 'string' },
    'quiet-ms': { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (values.list) {
    for (const c of CHECKS) process.stdout.write(`${c.name.padEnd(28)} ${c.section.padEnd(22)} ${c.title}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one HOST:PORT (try --help)');
  let address;
  try {
    address = parseAddress('HOST:PORT', positionals[0]!);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const input: ConformanceInput = {
    host: address.host,
    port: address.port,
    networkId: strArg(values, 'network-id'),
    handshakeTimeoutMs: intArg(values, 'handshake-timeout-ms', 5000, 1, 600_000),
    maxFrameBytes: intArg(values, 'max-frame-bytes', 1 << 20, 1, 64 << 20),
    replyTimeoutMs: intArg(values, 'reply-timeout-ms', 3000, 1, 600_000),
    quietMs: intArg(values, 'quiet-ms', 1500, 0, 600_000),
  };
  const only = strArg(values, 'only');
  if (only !== undefined) input.only = only.split(',').filter((s) => s.length > 0);
  const json = values.json === true;
  const print = (r: CheckResult) => {
    process.stdout.write(`${r.passed ? 'PASS' : 'FAIL'} ${r.name} (${r.section}): ${r.title}\n     ${r.detail}\n`);
  };
  let report;
  try {
    report = await runConformance(input, json ? undefined : print);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(err.message);
    throw err;
  }
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`${report.target}: ${report.passed} passed, ${report.failed} failed\n`);
  return report.failed === 0 ? 0 : 1;
}
