/**
 * The CLI's logger: pino to stderr. On a terminal it is pretty-printed when pino-pretty is
 * installed (a devDependency here, never a dependency of the package); otherwise, and
 * whenever stderr is not a terminal, it writes plain JSON lines.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { UsageError } from './args.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type PrettyFactory = (opts: { destination: number; colorize: boolean; sync: boolean }) => DestinationStream;

/** pino-pretty when the host has it installed, else undefined. Loaded lazily: the library never needs it. */
function loadPretty(): PrettyFactory | undefined {
  try {
    const mod = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    return typeof mod === 'function' ? mod : mod.default;
  } catch {
    return undefined;
  }
}

export function makeLogger(level: string | undefined): Logger {
  const lvl = level ?? 'warn';
  if (!LEVELS.includes(lvl)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(lvl)}`);
  const pretty = process.stderr.isTTY ? loadPretty() : undefined;
  if (pretty) return pino({ level: lvl }, pretty({ destination: 2, colorize: true, sync: true }));
  return pino({ level: lvl }, pino.destination({ fd: 2, sync: false }));
}
