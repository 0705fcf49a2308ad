/**
 * Runs the conformance checklist against one target, one check after another (checks
 * share the target, and a refusal in one must not disturb the next), each with its own
 * connections, closed when it ends. A check's failure is a result, never an exception.
 */
import { InvalidOptionError } from '../errors.js';
import { MAX_FRAME_BYTES_LIMIT } from '../wire/frame.js';
import { GOSSIP_CHECKS } from './checks-gossip.js';
import { SESSION_CHECKS } from './checks-session.js';
import type { Check } from './checks-session.js';
import { CheckContext, CONFORMANCE_DEFAULTS } from './context.js';
import type { ConformanceOptions } from './context.js';

/** The whole checklist, in the order it runs. */
export const CHECKS: readonly Check[] = [...SESSION_CHECKS, ...GOSSIP_CHECKS];

export interface CheckResult {
  name: string;
  section: string;
  title: string;
  passed: boolean;
  /** On pass: what was observed. On fail: why it failed. */
  detail: string;
  /** Wall time the check took, ms (informative only). */
  ms: number;
}

export interface ConformanceReport {
  /** "host:port" */
  target: string;
  passed: number;
  failed: number;
  checks: CheckResult[];
}

export type ConformanceInput = Pick<ConformanceOptions, 'host' | 'port'> & Partial<ConformanceOptions> & {
  /** Run only the checks with these names (all when absent). */
  only?: readonly string[];
};

/** Resolve and validate options; throws InvalidOptionError naming the field. */
export function resolveConformanceOptions(input: ConformanceInput): ConformanceOptions {
  const o: ConformanceOptions = {
    host: input.host,
    port: input.port,
    networkId: input.networkId ?? CONFORMANCE_DEFAULTS.networkId,
    handshakeTimeoutMs: input.handshakeTimeoutMs ?? CONFORMANCE_DEFAULTS.handshakeTimeoutMs,
    maxFrameBytes: input.maxFrameBytes ?? CONFORMANCE_DEFAULTS.maxFrameBytes,
    replyTimeoutMs: input.replyTimeoutMs ?? CONFORMANCE_DEFAULTS.replyTimeoutMs,
    quietMs: input.quietMs ?? CONFORMANCE_DEFAULTS.quietMs,
  };
  if (typeof o.host !== 'string' || o.host.length === 0) throw new InvalidOptionError('host', 'expected a host name or IP');
  const int = (field: keyof ConformanceOptions, min: number, max: number) => {
    const v = o[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidOptionError(field, `expected an integer from ${min} to ${max}`);
  };
  int('port', 1, 65535);
  int('handshakeTimeoutMs', 1, 600_000);
  int('maxFrameBytes', 1, MAX_FRAME_BYTES_LIMIT);
  int('replyTimeoutMs', 1, 600_000);
  int('quietMs', 0, 600_000);
  if (typeof o.networkId !== 'string' || o.networkId.length === 0) throw new InvalidOptionError('networkId', 'expected a non-empty string');
  return o;
}

/** Run the checklist (or `only` those named) against the target. */
export async function runConformance(input: ConformanceInput, onResult?: (r: CheckResult) => void): Promise<ConformanceReport> {
  const opts = resolveConformanceOptions(input);
  let checks = CHECKS;
  if (input.only) {
    const unknown = input.only.filter((n) => !CHECKS.some((c) => c.name === n));
    if (unknown.length > 0) throw new InvalidOptionError('only', `unknown check(s) ${unknown.join(', ')}`);
    checks = CHECKS.filter((c) => input.only!.includes(c.name));
  }
  const results: CheckResult[] = [];
  for (const check of checks) {
    const ctx = new CheckContext(opts);
    const started = Date.now();
    let passed = false;
    let detail: string;
    try {
      detail = await check.run(ctx);
      passed = true;
    } catch (err) {
      detail = (err as Error).message;
    } finally {
      await ctx.dispose();
    }
    const r: CheckResult = { name: check.name, section: check.section, title: check.title, passed, detail, ms: Date.now() - started };
    results.push(r);
    onResult?.(r);
  }
  const passed = results.filter((r) => r.passed).length;
  return { target: `${opts.host}:${opts.port}`, passed, failed: results.length - passed, checks: results };
}
