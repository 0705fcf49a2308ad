/**
 * Runs the aethel-p2p command line as a child process, the way a user or an outside test
 * would: `node --import tsx lib/cli/main.ts ...` (bin/aethel-p2p.js needs a built dist/,
 * which a test run does not have). Every wait is bounded; every child is tracked so that
 * afterEach can kill whatever is still running, by PID.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = 'lib/cli/main.ts';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcessWithoutNullStreams>();

function spawnCli(args: string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Kill (SIGKILL, by PID) every CLI child still running. For afterEach. */
export function killAllCli(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

/** Run the CLI to completion with stdin closed; rejects if it runs longer than timeoutMs. */
export function runCli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  const child = spawnCli(args);
  child.stdin.end();
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`aethel-p2p ${args.join(' ')} still running after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running CLI process whose stdout is JSON lines. */
export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line parsed as JSON, in order. */
  readonly events: Array<Record<string, unknown>> = [];
  /** stdout lines that were not JSON (there should be none). */
  readonly stray: string[] = [];
  stderr = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(args: string[]) {
    this.child = spawnCli(args);
    let partial = '';
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          this.events.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.stray.push(line);
        }
      }
      this.notify();
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => {
      resolve({ code, signal });
      this.notify();
    }));
  }

  /** The first event matching `pred`, waiting at most timeoutMs for it. */
  waitForEvent(pred: (e: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`process exited before ${what}; stderr: ${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  /** Send a signal to this process (by PID). */
  signal(sig: NodeJS.Signals): void {
    if (this.child.pid !== undefined) process.kill(this.child.pid, sig);
  }

  /** Exit code and signal, waiting at most timeoutMs. */
  waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running ${timeoutMs} ms after being asked to stop; stderr: ${this.stderr}`)), timeoutMs);
    });
    return Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
