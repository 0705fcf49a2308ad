/** The CLI's logger: pino to stderr, pretty-printed when stderr is a terminal. */
import { pino } from 'pino';
import type { Logger } from 'pino';
import pretty from 'pino-pretty';
import { UsageError } from './args.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function makeLogger(level: string | undefined): Logger {
  const lvl = level ?? 'warn';
  if (!LEVELS.includes(lvl)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(lvl)}`);
  if (process.stderr.isTTY) return pino({ level: lvl }, pretty({ destination: 2, colorize: true, sync: true }));
  return pino({ level: lvl }, pino.destination({ fd: 2, sync: false }));
}
