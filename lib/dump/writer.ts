/**
 * Wire dump writer: frames and trace events as NDJSON lines (format in records.ts),
 * appended asynchronously. It never blocks the data path and never holds more than
 * `maxBufferedBytes` of unwritten lines: when the disk falls behind, new lines are dropped
 * and counted, and a `loss` line saying how many is written as soon as there is room again
 * (and at close). A write error stops the dump; the node carries on.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { P2PError } from '../errors.js';
import type { Connection } from '../transport/connection.js';
import { DUMP_FORMAT_VERSION } from './records.js';
import type { DumpHeader, FrameRecord, LossRecord, TraceEvent, TraceRecord } from './records.js';

export interface DumpWriterOptions {
  /** Node id (64 hex) written in the header line. */
  node: string;
  /** Cap on lines accepted but not yet written to disk, bytes. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Current time in microseconds since the epoch (tests inject one). */
  nowUs?: () => number;
  /** Where lines go; default a file stream on `path` (tests inject a slow one). */
  stream?: Writable;
  /** Told once, when the first write fails (the dump stops; the node carries on). */
  onError?: (err: Error) => void;
}

/** Default cap on unwritten dump bytes: 4 MiB. */
export const DEFAULT_DUMP_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Wall-clock microseconds: the process's time origin (taken at start with microsecond
 * precision, where Date.now() has only milliseconds) advanced by the monotonic
 * high-resolution timer. Dumps of processes on one host then agree to a few µs rather than
 * up to a millisecond, which is less than a loopback hop; the dump tool corrects what is
 * left from matched send/receive pairs (lib/dump/clock-align.ts).
 */
export const wallClockUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** "2026-12-03T16:19:39.283988Z": an ISO 8601 UTC time with microseconds. */
export function isoTimeUs(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 19) + '.' + String(Math.floor(us % 1e6)).padStart(6, '0') + 'Z';
}

export class DumpWriter {
  /** Lines dropped since the writer was opened, by kind. */
  readonly dropped = { frames: 0, traces: 0, bytes: 0 };
  /** Set once a write failed; nothing more is written. */
  error: Error | undefined;
  private readonly stream: Writable;
  private readonly maxBuffered: number;
  private readonly nowUs: () => number;
  private pendingLoss: Omit<LossRecord, 't' | 'kind'> = { frames: 0, traces: 0, bytes: 0 };
  private closed = false;

  constructor(path: string, opts: DumpWriterOptions) {
    this.maxBuffered = opts.maxBufferedBytes ?? DEFAULT_DUMP_BUFFER_BYTES;
    if (!Number.isInteger(this.maxBuffered) || this.maxBuffered < 1024) {
      throw P2PError.invalidArgument('maxBufferedBytes must be an integer of at least 1024');
    }
    this.nowUs = opts.nowUs ?? wallClockUs;
    this.stream = opts.stream ?? createWriteStream(path, { flags: 'w' });
    this.stream.on('error', (err: Error) => {
      if (this.error) return;
      this.error = err;
      opts.onError?.(err);
    });
    this.stream.on('drain', () => this.flushLoss());
    const header: DumpHeader = { t: this.nowUs(), kind: 'dump', v: DUMP_FORMAT_VERSION, node: opts.node };
    this.stream.write(JSON.stringify(header) + '\n');
  }

  /** Record one frame body; the shape of ConnectionConfig.tap. Copies nothing it keeps. */
  readonly frame = (conn: Connection, dir: 'in' | 'out', body: Uint8Array): void => {
    if (this.closed || this.error) return;
    const s = conn.socket;
    const rec: FrameRecord = {
      t: this.nowUs(),
      kind: 'frame',
      conn: conn.cid,
      dir,
      local: `${s.localAddress ?? '?'}:${s.localPort ?? 0}`,
      remote: `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`,
      peer: conn.peerIdHex || null,
      len: body.length,
      body: Buffer.from(body.buffer, body.byteOffset, body.length).toString('base64'),
    };
    this.write(JSON.stringify(rec), 'frames');
  };

  /** Record a trace event (what the node decided and why). */
  readonly trace = (event: TraceEvent): void => {
    if (this.closed || this.error) return;
    const rec: TraceRecord = { t: this.nowUs(), kind: 'trace', ...event };
    this.write(JSON.stringify(rec), 'traces');
  };

  /** Write what is pending (including a final loss line) and close the file. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (!this.error) this.flushLoss(true);
    return new Promise((resolve) => {
      if (this.error) return resolve();
      this.stream.end(() => resolve());
      this.stream.once('error', () => resolve());
    });
  }

  private write(line: string, kind: 'frames' | 'traces'): void {
    const bytes = line.length + 1;
    if (this.stream.writableLength + bytes > this.maxBuffered) {
      this.dropped[kind]++;
      this.dropped.bytes += bytes;
      this.pendingLoss[kind]++;
      this.pendingLoss.bytes += bytes;
      return;
    }
    if (this.pendingLoss.bytes > 0) this.flushLoss();
    this.stream.write(line + '\n');
  }

  /** Say how many lines were lost, once there is room (or unconditionally at close). */
  private flushLoss(force = false): void {
    if (this.pendingLoss.bytes === 0 || this.error) return;
    const rec: LossRecord = { t: this.nowUs(), kind: 'loss', ...this.pendingLoss };
    const line = JSON.stringify(rec) + '\n';
    if (!force && this.stream.writableLength + line.length > this.maxBuffered) return;
    this.pendingLoss = { frames: 0, traces: 0, bytes: 0 };
    this.stream.write(line);
  }
}
