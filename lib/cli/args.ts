/** Argument parsing shared by the subcommands: typed values, one-line errors, exit code 2. */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/** A bad command line: main() prints the message on one line and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Option values as parseArgs gives them: a string, a boolean, or strings for a `multiple` option. */
export type ArgValues = Record<string, string | boolean | string[] | undefined>;

/** parseArgs in strict mode, positionals allowed, its errors turned into one-line UsageErrors. */
export function parseCommand(argv: string[], options: Options): { values: ArgValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: joinNegativeValues(argv, options), strict: true, allowPositionals: true, options });
    return { values: values as ArgValues, positionals };
  } catch (err) {
    throw new UsageError(describeParseError(err as Error & { code?: string }));
  }
}

/**
 * `--port -1` as `--port=-1`: parseArgs would read "-1" as an option and say "--port needs a
 * value"; joined, the option's own check says what is wrong with the number.
 */
function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** parseCommand for a command that takes no positional argument. */
export function parse(argv: string[], options: Options): Record<string, string | boolean | undefined> {
  const { values, positionals } = parseCommand(argv, options);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return values as Record<string, string | boolean | undefined>;
}

/** node:util parseArgs errors, reworded to fit one short line. */
function describeParseError(err: Error & { code?: string }): string {
  const option = /'(-[^' ]*)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option} (try --help)`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (/does not take an argument/.test(err.message)) return `${option} takes no value`;
    if (/ambiguous/.test(err.message)) return `${option} needs a value (write ${option}=VALUE for one starting with "-")`;
    return `${option} needs a value`;
  }
  return err.message.split('\n')[0]!;
}

/** An integer option within [min, max], or the default when absent. */
export function intArg(values: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** A string option, or undefined. */
export function strArg(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
