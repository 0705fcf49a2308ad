/**
 * `aethel-p2p dump`: read wire dumps (NDJSON, lib/dump/records.ts) and packet captures
 * (pcap/pcapng), merge them by time and print every frame as a readable message, plus the
 * trace lines that say what each node decided. `--msg` follows one gossip message across
 * nodes hop by hop and ends with a verdict per node. Malformed lines and frames are shown
 * as malformed; reading never stops at them.
 */
import { describeBody, SHORT_ID_CHARS } from '../dump/describe.js';
import { followMessage } from '../dump/follow.js';
import { readCapture } from '../dump/pcap.js';
import { mergeByTime, readDump } from '../dump/reader.js';
import type { DumpEntry } from '../dump/reader.js';
import { framesFromPackets } from '../dump/tcp-streams.js';
import { MessageType } from '../wire/messages.js';
import { intArg, parseCommand, UsageError } from './args.js';

const HELP = `usage: aethel-p2p dump FILE... [options]
       aethel-p2p dump --pcap CAPTURE [--port P] [options]
  FILE...         wire dumps written by --dump / the wireDump option; several are merged by time
  --pcap FILE     a tcpdump/tshark capture (pcap or pcapng; Ethernet, loopback, Linux cooked);
                  may be repeated and mixed with dump files
  --port P        with --pcap: only TCP connections with port P at one end
  --peer ID       only what involves this node: id prefix (hex) or host:port
  --type T        only frames of this message type (GOSSIP, IHAVE, PING..., MALFORMED)
  --msg ID        follow one gossip message (id prefix) across nodes, hop by hop
  --json          one JSON object a line instead of text`;

const TYPES = [...Object.keys(MessageType), 'MALFORMED'];

const short = (s: string | null | undefined): string => (s ? (/^[0-9a-f]{64}$/.test(s) ? s.slice(0, SHORT_ID_CHARS) : s) : '?');

/** "16:06:09.123456": UTC time of day with microseconds. */
export function timeOfDay(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(11, 19) + '.' + String(Math.floor(us % 1e6)).padStart(6, '0');
}

/** The entry as one JSON-friendly object (frames decoded). */
export function entryJson(e: DumpEntry): Record<string, unknown> {
  switch (e.kind) {
    case 'frame': {
      const d = describeBody(e.body);
      return { t: e.t, node: e.node, kind: 'frame', conn: e.conn, dir: e.dir, local: e.local, remote: e.remote, peer: e.peer, len: e.body.length, type: d.type, fields: d.fields, ...(d.error ? { error: d.error } : {}) };
    }
    case 'trace':
      return { node: e.node, ...e.rec };
    case 'loss':
      return { node: e.node, ...e.rec };
    case 'malformed':
      return { t: e.t, node: e.node, kind: 'malformed', source: e.source, line: e.line, error: e.error };
  }
}

/** The entry as one line of text. */
export function entryText(e: DumpEntry): string {
  const head = `${timeOfDay(e.t)} ${short(e.node).padEnd(SHORT_ID_CHARS)}`;
  switch (e.kind) {
    case 'frame': {
      const d = describeBody(e.body);
      // From a capture: name the TCP connection, the only "where" a capture knows.
      const where = typeof e.conn === 'string' ? `  [${e.local} > ${e.remote}]` : '';
      return `${head} ${e.dir === 'out' ? '→' : '←'} ${short(e.peer ?? e.remote).padEnd(SHORT_ID_CHARS)} ${String(e.body.length).padStart(6)} B  ${d.text}${where}`;
    }
    case 'trace': {
      const r = e.rec;
      const parts: string[] = [r.event];
      if (r.msg) parts.push(`msg=${r.msg.slice(0, SHORT_ID_CHARS)}`);
      if (r.peer) parts.push(`peer=${short(r.peer)}`);
      if (r.to) parts.push(`to=[${r.to.map(short).join(',')}]`);
      if (r.ttl !== undefined) parts.push(`ttl=${r.ttl}`);
      if (r.hops !== undefined) parts.push(`hops=${r.hops}`);
      if (r.via) parts.push(`via=${r.via}`);
      if (r.reason) parts.push(`reason=${JSON.stringify(r.reason)}`);
      return `${head} · ${parts.join(' ')}`;
    }
    case 'loss':
      return `${head} ! the dump lost ${e.rec.frames} frame line(s) and ${e.rec.traces} trace line(s) (${e.rec.bytes} B): the disk was slower than the traffic`;
    case 'malformed':
      return `${head} ! MALFORMED ${e.line > 0 ? `${e.source}:${e.line}: ` : ''}${e.error}`;
  }
}

function involves(e: DumpEntry, who: string): boolean {
  const m = (s: string | null | undefined) => !!s && (s.includes(':') ? s === who : s.startsWith(who));
  if (m(e.node)) return true;
  if (e.kind === 'frame') return m(e.peer) || e.remote === who || e.local === who;
  if (e.kind === 'trace') return m(e.rec.peer) || (e.rec.to ?? []).some(m);
  return false;
}

let pipeHandled = false;
/** Piped into head/less that quit early: stop quietly, like other command-line tools. */
function quietOnClosedPipe(): void {
  if (pipeHandled) return;
  pipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

export async function runDump(argv: string[]): Promise<number> {
  const { values, positionals: files } = parseCommand(argv, {
    pcap: { type: 'string', multiple: true },
    port: { type: 'string' },
    peer: { type: 'string' },
    type: { type: 'string' },
    msg: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const pcaps = (values.pcap as string[] | undefined) ?? [];
  if (files.length === 0 && pcaps.length === 0) throw new UsageError('expected at least one dump FILE or --pcap CAPTURE (try --help)');
  const port = values.port === undefined ? undefined : intArg(values, 'port', 0, 1, 65535);
  if (port !== undefined && pcaps.length === 0) throw new UsageError('--port applies to --pcap captures');
  const type = typeof values.type === 'string' ? values.type.toUpperCase() : undefined;
  if (type !== undefined && !TYPES.includes(type)) throw new UsageError(`--type must be one of ${TYPES.join(', ')}`);
  const peer = typeof values.peer === 'string' ? values.peer.toLowerCase() : undefined;
  const msg = typeof values.msg === 'string' ? values.msg.toLowerCase() : undefined;
  if (msg !== undefined && !/^[0-9a-f]{1,64}$/.test(msg)) throw new UsageError('--msg must be a hex message id or prefix');
  const json = values.json === true;

  const lists: DumpEntry[][] = [];
  for (const f of files) lists.push(await readDump(f));
  for (const f of pcaps) {
    const cap = await readCapture(f);
    const entries: DumpEntry[] = framesFromPackets(cap.packets, f, port);
    if (cap.error) entries.push({ kind: 'malformed', t: cap.packets.at(-1)?.t ?? 0, node: '-', source: f, line: 0, error: `${f}: ${cap.error}` });
    lists.push(entries);
  }
  let entries = mergeByTime(lists);
  if (peer) entries = entries.filter((e) => involves(e, peer));

  quietOnClosedPipe();
  const out = (s: string) => process.stdout.write(s + '\n');
  if (msg) {
    const trail = followMessage(entries, msg);
    if (json) {
      out(JSON.stringify(trail));
      return 0;
    }
    const t0 = trail.steps[0]?.t ?? 0;
    out(`message ${trail.id}: ${trail.steps.length} step(s)`);
    for (const s of trail.steps) out(`  +${((s.t - t0) / 1000).toFixed(3).padStart(9)} ms  ${short(s.node).padEnd(SHORT_ID_CHARS)}  ${s.text}`);
    out('per node:');
    for (const n of trail.nodes) out(`  ${short(n.node).padEnd(SHORT_ID_CHARS)}  ${n.verdict}: ${n.detail}`);
    return 0;
  }
  for (const e of entries) {
    if (type && (e.kind !== 'frame' || describeBody(e.body).type !== type) && !(type === 'MALFORMED' && e.kind === 'malformed')) continue;
    out(json ? JSON.stringify(entryJson(e)) : entryText(e));
  }
  return 0;
}
