/**
 * Request/reply over the IPC channel of a forked child, for the hostile-peer suite. The
 * parent (run.ts) forks victim.ts and honest.ts with `--import tsx`; each child answers
 * commands by name and may push events (the victim's periodic samples). A child that dies
 * rejects every pending request with its exit code, so a crash is a result, not a hang.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}
interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}
interface Event {
  event: string;
  data: unknown;
}

/** How a child ended, when it did. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when we did not ask it to stop. */
  unexpected: boolean;
}

/** A forked child speaking the request/reply protocol. */
export class ChildHandle {
  exited: ChildExit | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private stopping = false;
  private readonly exitWaiters: Array<() => void> = [];

  private constructor(readonly name: string, private readonly proc: ChildProcess, onEvent: (event: string, data: unknown) => void) {
    proc.on('message', (raw) => {
      const m = raw as Reply | Event;
      if ('event' in m) return onEvent(m.event, m.data);
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
    proc.on('exit', (code, signal) => {
      this.exited = { code, signal, unexpected: !this.stopping };
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      }
      this.pending.clear();
      for (const w of this.exitWaiters.splice(0)) w();
    });
  }

  /** Fork `script` (a .ts file) under tsx; stderr is passed through, stdout ignored. */
  static fork(name: string, script: string, onEvent: (event: string, data: unknown) => void = () => {}, nodeArgs: string[] = []): ChildHandle {
    const proc = fork(script, [], {
      execArgv: ['--import', 'tsx', ...nodeArgs],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    return new ChildHandle(name, proc, onEvent);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Send a command; rejects after timeoutMs, or when the child exits first. */
  request<T>(cmd: string, args: unknown = {}, timeoutMs = 30_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no reply to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Ask the child to stop (command 'stop'), then kill it by pid if it has not exited within timeoutMs. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const exited = new Promise<void>((r) => this.exitWaiters.push(r));
    this.request('stop', {}, timeoutMs).catch(() => {});
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Child side: answer commands with `handlers`; 'stop' runs handlers.stop then exits. */
export function serve(handlers: Record<string, (args: never) => unknown>): { emit(event: string, data: unknown): void } {
  const send = (m: Reply | Event) => {
    if (process.connected) process.send!(m);
  };
  process.on('message', async (raw) => {
    const req = raw as Request;
    try {
      const h = handlers[req.cmd];
      if (!h) throw new Error(`unknown command ${req.cmd}`);
      const result = await h(req.args as never);
      send({ id: req.id, ok: true, result });
    } catch (err) {
      send({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
    if (req.cmd === 'stop') setTimeout(() => process.exit(0), 50);
  });
  // The parent is gone: nothing will ask us to stop.
  process.on('disconnect', () => process.exit(0));
  return { emit: (event, data) => send({ event, data }) };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
