/**
 * Read wire dumps back: one NDJSON file per node, each line parsed into an entry tagged with
 * the node that wrote it (from the header line). A line that is not valid JSON or not a
 * known record becomes a `malformed` entry; reading goes on.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { DumpRecord, FrameRecord, LossRecord, TraceRecord } from './records.js';

/** One frame as the dump tools see it, whatever it came from (dump file or capture). */
export interface FrameEntry {
  kind: 'frame';
  /** Time, µs since the epoch. */
  t: number;
  /** Who recorded it: a node id (dump) or "host:port" of the sending end (capture). */
  node: string;
  /** File it came from. */
  source: string;
  conn: number | string;
  dir: 'in' | 'out';
  local: string;
  remote: string;
  peer: string | null;
  body: Buffer;
  /** From a capture that cut packets short (snaplen): the frame's full body length; `body` holds only its captured start. */
  truncated?: number;
  /**
   * From a capture of an encrypted session without its key-log line: this entry is one
   * record, not a frame; the value is its ciphertext length L (§4.2), `body` its captured bytes.
   */
  sealed?: number;
}

export interface TraceEntry {
  kind: 'trace';
  t: number;
  node: string;
  source: string;
  rec: TraceRecord;
}

export interface LossEntry {
  kind: 'loss';
  t: number;
  node: string;
  source: string;
  rec: LossRecord;
}

export interface MalformedEntry {
  kind: 'malformed';
  t: number;
  node: string;
  source: string;
  /** Line number (1-based) and why it could not be read. */
  line: number;
  error: string;
}

export type DumpEntry = FrameEntry | TraceEntry | LossEntry | MalformedEntry;

/**
 * The input is not a wire dump at all (empty, or its first line is not a dump header), or
 * cannot be read. The message names the file and says what is wrong, in one line.
 */
export class DumpInputError extends Error {
  override name = 'DumpInputError';
}

/** "no such file", "permission denied": a file-system error without its code and path repeated. */
export function fileProblem(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory', EPERM: 'not permitted' };
  return `cannot read ${path}: ${(e.code && why[e.code]) ?? (e.message ?? String(err)).split('\n')[0]}`;
}

/**
 * Every entry of one dump file, in file order. Throws DumpInputError when the file cannot
 * be read, is empty, or does not start with a dump header (it is something else).
 */
export async function readDump(path: string): Promise<DumpEntry[]> {
  const out: DumpEntry[] = [];
  let node = '?';
  let lastT = 0;
  let n = 0;
  let sawHeader = false;
  const input = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new DumpInputError(fileProblem(path, err));
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    if (!sawHeader) {
      let head: Partial<DumpRecord> | undefined;
      try {
        head = JSON.parse(line) as Partial<DumpRecord>;
      } catch {
        head = undefined;
      }
      if (!head || head.kind !== 'dump') {
        lines.close();
        input.destroy();
        throw new DumpInputError(`${path} is not a wire dump: its first line is not a {"kind":"dump",...} header (a capture? use --pcap)`);
      }
      sawHeader = true;
    }
    const bad = (error: string) => out.push({ kind: 'malformed', t: lastT, node, source: path, line: n, error });
    let rec: DumpRecord;
    try {
      rec = JSON.parse(line) as DumpRecord;
    } catch (err) {
      bad(`not JSON: ${(err as Error).message}`);
      continue;
    }
    if (typeof rec !== 'object' || rec === null || typeof rec.t !== 'number') {
      bad('no numeric "t"');
      continue;
    }
    lastT = rec.t;
    switch (rec.kind) {
      case 'dump':
        node = rec.node;
        break;
      case 'frame':
        if (typeof rec.body !== 'string') {
          bad('frame without a body');
          break;
        }
        out.push(frameEntry(rec, node, path));
        break;
      case 'trace':
        out.push({ kind: 'trace', t: rec.t, node, source: path, rec });
        break;
      case 'loss':
        out.push({ kind: 'loss', t: rec.t, node, source: path, rec });
        break;
      default:
        bad(`unknown kind ${JSON.stringify((rec as { kind?: unknown }).kind)}`);
    }
  }
  if (!sawHeader) throw new DumpInputError(`${path} is empty: not a wire dump`);
  return out;
}

function frameEntry(rec: FrameRecord, node: string, source: string): FrameEntry {
  return {
    kind: 'frame', t: rec.t, node, source, conn: rec.conn, dir: rec.dir, local: rec.local, remote: rec.remote, peer: rec.peer,
    body: Buffer.from(rec.body, 'base64'),
  };
}

/** Entries of several dumps merged by time (stable: equal times keep file order). */
export function mergeByTime(lists: DumpEntry[][]): DumpEntry[] {
  return lists.flat().map((e, i) => ({ e, i })).sort((a, b) => a.e.t - b.e.t || a.i - b.i).map((x) => x.e);
}
