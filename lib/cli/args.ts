/** Argument parsing shared by the subcommands: typed values, one-line errors, exit code 2. */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/** A bad command line: main() prints the message on one line and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode, its errors turned into UsageError. */
export function parse(argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    return values as Record<string, string | boolean | undefined>;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
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
