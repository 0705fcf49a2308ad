/**
 * `aethel-p2p dump`: read wire dumps (NDJSON, lib/dump/records.ts) and packet captures
 * (pcap/pcapng), align the dumps' clocks, merge them by time and print every frame as a
 * readable message, plus the trace lines that say what each node decided. Views:
 * `--msg` follows one gossip message across nodes hop by hop to a verdict per node;
 * `--delays` tabulates propagation delays; `--links` shows every connection from both ends;
 * `--counts` counts repair traffic, duplicates and drops per node and flags gaps;
 * `--clocks` reports the clock offsets. Malformed lines and frames are shown as malformed;
 * reading never stops at them. Input that is not a dump or a capture at all is an error.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { alignClocks, applyClockOffsets, describeAlignment } from '../dump/clock-align.js';
import type { ClockAlignment } from '../dump/clock-align.js';
import { countByNode, DEFAULT_GAP_MS } from '../dump/counts.js';
import { DEFAULT_LATE_MS, messageDelays, summarizeDelays } from '../dump/delays.js';
import type { DelayStats, MessageDelays } from '../dump/delays.js';
import { describeFrame, SEALED_TYPE, SHORT_ID_CHARS } from '../dump/describe.js';
import { filterEntries, parseTimeArg, TRACE_EVENTS } from '../dump/filter.js';
import { followMessage, matchIds } from '../dump/follow.js';
import { DEFAULT_SILENCE_MS, linkViews } from '../dump/links.js';
import type { LinkDirection } from '../dump/links.js';
import { mapConnections } from '../dump/pairs.js';
import type { ConnectionMap } from '../dump/pairs.js';
import { readCapture } from '../dump/pcap.js';
import { decryptedPcap } from '../dump/pcap-write.js';
import { parseKeyLog } from '../noise/key-log.js';
import type { SessionKeys } from '../noise/key-log.js';
import { DumpInputError, fileProblem, mergeByTime, readDump } from '../dump/reader.js';
import type { DumpEntry } from '../dump/reader.js';
import { framesFromPackets } from '../dump/tcp-streams.js';
import { MessageType } from '../wire/messages.js';
import { intArg, parseCommand, UsageError } from './args.js';

const HELP = `usage: aethel-p2p dump FILE... [options]
       aethel-p2p dump --pcap CAPTURE [--keylog FILE] [--port P] [options]
  FILE...           wire dumps written by --dump / the wireDump option; merged by time
  --pcap FILE       a tcpdump/tshark capture (pcap or pcapng; Ethernet, loopback, Linux cooked);
                    may be repeated and mixed with dump files
  --keylog FILE     with --pcap: a key log written by nodes started with --keylog; the sessions
                    it has keys for are decrypted and their ends named by node id (others show
                    their handshake, then one line per encrypted record); repeatable
  --port P          with --pcap: only TCP connections with port P at one end
  --write-pcap OUT  with --pcap: write the captures, decrypted with --keylog, to OUT (pcap,
                    raw IPv4, one TCP segment per frame) for the Wireshark dissector, and exit
views (one at a time; default: every line, merged by time):
  --msg ID          follow one gossip message (id prefix) across nodes, hop by hop, to a verdict per node
  --delays          per message and node: delay from publication, push or repair, from whom, hops;
                    then p50/p99/max per node and overall and the late deliveries
  --links           every connection from both ends: first/last frame each way, frames never
                    received, silences, ends that do not pair up
  --counts          per node: frames, repair traffic (IHAVE/IWANT, copies served), duplicates,
                    drops, peer events, stalls, gaps in its dump
  --clocks          the clock offset estimated for each dump, and the evidence
filters (the line listing, --msg steps, --counts):
  --since T, --until T   a time range: ISO 8601 (2026-12-03T16:19:39.28Z), UTC time of day
                    (16:19:39.28) or from the first line (+1.5s, +250ms)
  --type T[,T]      only these message types (GOSSIP, IHAVE, PING..., MALFORMED) and trace events
                    (delivered, forwarded..., or "decisions" for all); repeatable. With GOSSIP, IHAVE
                    or IWANT the decisions about gossip messages are kept too
  --exclude-type T[,T]  hide these types/events (e.g. PING,PONG); repeatable
  --peer ID         only what involves this node: id prefix (hex) or host:port; includes its
                    frames on a connection before the handshake named the peer
  --late-ms N       --delays: a delivery later than this after publication is late (default ${DEFAULT_LATE_MS})
  --gap-ms N        --links, --counts: silences and dump gaps longer than this are listed
                    (default ${DEFAULT_SILENCE_MS} for links, ${DEFAULT_GAP_MS} for dump gaps)
  --raw-times       do not align the dumps' clocks
  --json            JSON instead of text (one object a line for the listing)`;

const FRAME_TYPES = [...Object.keys(MessageType), 'MALFORMED', SEALED_TYPE];
const TYPE_WORDS = [...FRAME_TYPES, ...TRACE_EVENTS, 'decisions'];

const short = (s: string | null | undefined): string => (s ? (/^[0-9a-f]{64}$/.test(s) ? s.slice(0, SHORT_ID_CHARS) : s) : '?');

/** "16:06:09.123456": UTC time of day with microseconds. */
export function timeOfDay(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(11, 19) + '.' + String(Math.floor(us % 1e6)).padStart(6, '0');
}

/** The entry as one JSON-friendly object (frames decoded). */
export function entryJson(e: DumpEntry): Record<string, unknown> {
  switch (e.kind) {
    case 'frame': {
      const d = describeFrame(e);
      return { t: e.t, node: e.node, kind: 'frame', conn: e.conn, dir: e.dir, local: e.local, remote: e.remote, peer: e.peer, len: e.truncated ?? e.body.length, type: d.type, fields: d.fields, ...(d.error ? { error: d.error } : {}) };
    }
    case 'trace':
      return { node: e.node, ...e.rec, t: e.t };
    case 'loss':
      return { node: e.node, ...e.rec, t: e.t };
    case 'malformed':
      return { t: e.t, node: e.node, kind: 'malformed', source: e.source, line: e.line, error: e.error };
  }
}

/** The entry as one line of text. */
export function entryText(e: DumpEntry): string {
  const head = `${timeOfDay(e.t)} ${short(e.node).padEnd(SHORT_ID_CHARS)}`;
  switch (e.kind) {
    case 'frame': {
      const d = describeFrame(e);
      // From a capture: name the TCP connection, the only "where" a capture knows.
      const where = typeof e.conn === 'string' ? `  [${e.local} > ${e.remote}]` : '';
      return `${head} ${e.dir === 'out' ? '→' : '←'} ${short(e.peer ?? e.remote).padEnd(SHORT_ID_CHARS)} ${String(e.truncated ?? e.body.length).padStart(6)} B  ${d.text}${where}`;
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

/** A repeatable, comma-separated list option, upper-cased for message types. */
function typeList(raw: unknown, flag: string): Set<string> | undefined {
  const items = ((raw as string[] | undefined) ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) return undefined;
  const out = new Set<string>();
  for (const item of items) {
    const word = TYPE_WORDS.find((w) => w.toLowerCase() === item.toLowerCase());
    if (!word) throw new UsageError(`${flag}: unknown type ${JSON.stringify(item)}; one of ${TYPE_WORDS.join(', ')}`);
    out.add(word);
  }
  return out;
}

/** Every session of the key logs, by initiator ephemeral key; a missing file or a malformed line stops with a clean message. */
export async function readKeyLogs(files: string[]): Promise<Map<string, SessionKeys>> {
  const keys = new Map<string, SessionKeys>();
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (err) {
      throw new DumpInputError(fileProblem(f, err));
    }
    let sessions: Map<string, SessionKeys>;
    try {
      sessions = parseKeyLog(text);
    } catch (err) {
      throw new DumpInputError(`${f}: ${(err as Error).message}`);
    }
    if (sessions.size === 0) throw new DumpInputError(`${f}: not a key log (no AETHEL_NOISE line)`);
    for (const [k, v] of sessions) keys.set(k, v);
  }
  return keys;
}

/** Read every input; a file that cannot be read or is not a dump/capture stops with a clean message. */
async function readInputs(files: string[], pcaps: string[], port: number | undefined, keys?: ReadonlyMap<string, SessionKeys>): Promise<DumpEntry[][]> {
  const lists: DumpEntry[][] = [];
  for (const f of files) {
    try {
      lists.push(await readDump(f));
    } catch (err) {
      throw err instanceof DumpInputError ? err : new DumpInputError(fileProblem(f, err));
    }
  }
  for (const f of pcaps) {
    let cap;
    try {
      cap = await readCapture(f);
    } catch (err) {
      throw new DumpInputError(fileProblem(f, err));
    }
    if (cap.packets.length === 0) throw new DumpInputError(`${f}: ${cap.error ? `not a capture (${cap.error})` : 'a capture with no packets'}`);
    const entries: DumpEntry[] = framesFromPackets(cap.packets, f, { onlyPort: port, keys });
    if (cap.error) entries.push({ kind: 'malformed', t: cap.packets.at(-1)?.t ?? 0, node: '-', source: f, line: 0, error: `${f}: ${cap.error}` });
    lists.push(entries);
  }
  return lists;
}

export async function runDump(argv: string[]): Promise<number> {
  const { values, positionals: files } = parseCommand(argv, {
    pcap: { type: 'string', multiple: true },
    keylog: { type: 'string', multiple: true },
    'write-pcap': { type: 'string' },
    port: { type: 'string' },
    peer: { type: 'string' },
    type: { type: 'string', multiple: true },
    'exclude-type': { type: 'string', multiple: true },
    since: { type: 'string' },
    until: { type: 'string' },
    msg: { type: 'string' },
    delays: { type: 'boolean' },
    links: { type: 'boolean' },
    counts: { type: 'boolean' },
    clocks: { type: 'boolean' },
    'late-ms': { type: 'string' },
    'gap-ms': { type: 'string' },
    'raw-times': { type: 'boolean' },
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
  const keyLogs = (values.keylog as string[] | undefined) ?? [];
  if (keyLogs.length > 0 && pcaps.length === 0) throw new UsageError('--keylog applies to --pcap captures (wire dumps hold frames already decrypted)');
  const types = typeList(values.type, '--type');
  const exclude = typeList(values['exclude-type'], '--exclude-type');
  const peer = typeof values.peer === 'string' ? values.peer.toLowerCase() : undefined;
  const msg = typeof values.msg === 'string' ? values.msg.toLowerCase() : undefined;
  if (msg !== undefined && !/^[0-9a-f]{1,64}$/.test(msg)) throw new UsageError('--msg must be a hex message id or prefix');
  const views = (['msg', 'delays', 'links', 'counts', 'clocks'] as const).filter((v) => values[v] !== undefined && values[v] !== false);
  if (views.length > 1) throw new UsageError(`one view at a time: --${views.join(', --')}`);
  const lateMs = intArg(values, 'late-ms', DEFAULT_LATE_MS, 0, 2 ** 31 - 1);
  const gapMs = values['gap-ms'] === undefined ? undefined : intArg(values, 'gap-ms', 0, 1, 2 ** 31 - 1);
  const json = values.json === true;

  const writePcapTo = typeof values['write-pcap'] === 'string' ? values['write-pcap'] : undefined;
  if (writePcapTo !== undefined && (pcaps.length === 0 || files.length > 0)) throw new UsageError('--write-pcap writes --pcap captures only (no dump files)');
  const keys = keyLogs.length > 0 ? await readKeyLogs(keyLogs) : undefined;
  const lists = await readInputs(files, pcaps, port, keys);
  if (writePcapTo !== undefined) {
    const w = decryptedPcap(lists.flat());
    try {
      await writeFile(writePcapTo, w.bytes);
    } catch (err) {
      throw new DumpInputError(`cannot write ${writePcapTo}: ${(err as Error).message.split('\n')[0]}`);
    }
    process.stdout.write(`wrote ${writePcapTo}: ${w.packets} packet(s); connections: ${w.decrypted} decrypted, ${w.encrypted} still encrypted (no key), ${w.plaintext} in clear${w.unfinished ? `, ${w.unfinished} whose handshake never finished` : ''}${w.skipped ? `, ${w.skipped} not IPv4 (left out)` : ''}\n`);
    return 0;
  }
  let entries = mergeByTime(lists);
  let map = mapConnections(entries);
  let clocks: ClockAlignment | undefined;
  if (values['raw-times'] !== true) {
    clocks = alignClocks(map);
    if (Object.values(clocks.offsets).some((o) => o !== 0)) {
      entries = applyClockOffsets(entries, clocks);
      map = mapConnections(entries);
    }
  }
  const first = entries[0]?.t ?? 0;
  const time = (flag: 'since' | 'until') => {
    const raw = values[flag];
    if (typeof raw !== 'string') return undefined;
    const t = parseTimeArg(raw, first);
    if (t === undefined) throw new UsageError(`--${flag}: cannot read ${JSON.stringify(raw)} as a time (2026-12-03T16:19:39.28Z, 16:19:39.28 or +1.5s)`);
    return t;
  };
  const filter = { since: time('since'), until: time('until'), types, exclude, peer };

  quietOnClosedPipe();
  const out = (s: string) => process.stdout.write(s + '\n');
  const clockNote = () => clockNoteTo(out, clocks);

  if (msg !== undefined) return showMessage(entries, msg, filter, map, clocks, json, out, clockNote);
  if (values.delays) {
    const list = messageDelays(entries);
    const summary = summarizeDelays(list, lateMs);
    if (json) out(JSON.stringify({ clocks, messages: list, summary }));
    else {
      clockNote();
      for (const line of delaysText(list, summary.perNode, summary.overall, summary.late, lateMs)) out(line);
    }
    return 0;
  }
  if (values.links) {
    const views = linkViews(map, gapMs ?? DEFAULT_SILENCE_MS);
    if (json) out(JSON.stringify({ clocks, links: views }));
    else {
      clockNote();
      for (const v of views) {
        const b = v.b ? `${short(v.b.node)} ${v.b.local}` : (v.a.peer ? short(v.a.peer) : '?') + ` ${v.a.remote}`;
        out(`${short(v.a.node)} ${v.a.local} ⇄ ${b}${v.pairedBy ? ` (paired by ${v.pairedBy})` : ''}`);
        for (const d of v.directions) out(`  ${directionText(d)}`);
        for (const s of v.silences) {
          out(`  silent: ${short(s.node)} heard nothing from ${short(s.peer)} ${timeOfDay(s.from)} .. ${timeOfDay(s.to)} (${s.ms.toFixed(0)} ms${s.untilEnd ? ', until its last frame on this connection' : ''})`);
        }
        if (v.note) out(`  note: ${v.note}`);
      }
    }
    return 0;
  }
  if (values.counts) {
    const counts = countByNode(filterEntries(entries, filter), gapMs ?? DEFAULT_GAP_MS);
    if (json) out(JSON.stringify({ gapMs: gapMs ?? DEFAULT_GAP_MS, nodes: counts }));
    else {
      for (const c of counts) {
        const t = (name: string) => c.types[name] ?? { in: 0, out: 0 };
        out(`${short(c.node)}  frames in ${c.frames.in} (${c.bytes.in} B), out ${c.frames.out} (${c.bytes.out} B)`);
        out(`  push:    GOSSIP in ${t('GOSSIP').in}, out ${t('GOSSIP').out}; delivered ${c.delivered} (${c.deliveredByRepair} by repair), duplicates ${c.duplicates}`);
        out(`  repair:  IHAVE in ${t('IHAVE').in} (${c.ihaveIds.in} ids), out ${t('IHAVE').out} (${c.ihaveIds.out} ids); IWANT in ${t('IWANT').in} (${c.iwantIds.in} ids), out ${t('IWANT').out} (${c.iwantIds.out} ids); copies served on IWANT ${c.servedOnIwant}`);
        const kv = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
        out(`  refused: rejected ${kv(c.rejected)}; dropped ${kv(c.dropped)}`);
        out(`  events:  ${kv(c.events)}${c.lostLines ? `; the dump lost ${c.lostLines} line(s)` : ''}`);
        for (const g of c.gaps) out(`  GAP: nothing written ${timeOfDay(g.from)} .. ${timeOfDay(g.to)} (${g.ms.toFixed(0)} ms): the process was stopped or starved, or had no peer to ping`);
      }
    }
    return 0;
  }
  if (values.clocks) {
    if (json) out(JSON.stringify(clocks ?? null));
    else if (!clocks) out('clocks: not aligned (--raw-times)');
    else for (const line of describeAlignment(clocks)) out(line);
    return 0;
  }
  // The listing stays pure lines for scripts: a clock correction is said on stderr.
  if (clocks && Object.values(clocks.offsets).some((o) => o !== 0)) {
    clockNoteTo((s) => process.stderr.write(`aethel-p2p: ${s}\n`), clocks);
  }
  for (const e of filterEntries(entries, filter)) out(json ? JSON.stringify(entryJson(e)) : entryText(e));
  return 0;
}

/** "clocks aligned on ab4864a0: f4f7ef2e +0.005 ms, ..." when any dump's times were corrected. */
function clockNoteTo(write: (s: string) => void, clocks: ClockAlignment | undefined): void {
  if (!clocks || !Object.values(clocks.offsets).some((o) => o !== 0)) return;
  const shifted = Object.entries(clocks.offsets).filter(([, o]) => o !== 0).map(([src, o]) => `${short(clocks.nodes[src])} ${o < 0 ? '+' : '-'}${(Math.abs(o) / 1000).toFixed(3)} ms`);
  write(`clocks aligned on ${short(clocks.nodes[clocks.reference!])}: ${shifted.join(', ')} (from ${clocks.pairs} matched frames; see --clocks)`);
}

async function showMessage(
  entries: DumpEntry[], msg: string, filter: Parameters<typeof filterEntries>[1], map: ConnectionMap,
  clocks: ClockAlignment | undefined, json: boolean, out: (s: string) => void, clockNote: () => void,
): Promise<number> {
  const found = matchIds(entries, msg);
  const exact = found.messages.find((m) => m.id === msg);
  const err = (s: string) => process.stderr.write(`aethel-p2p: ${s}\n`);
  if (found.messages.length === 0) {
    if (found.nodes.length > 0) {
      err(`${msg} is a node id (${found.nodes.map((n) => n.slice(0, 16)).join(', ')}), not a message id: --peer ${msg} shows its traffic`);
    } else {
      err(`no message id starts with ${msg} in these inputs (dump --delays lists every message)`);
    }
    return 1;
  }
  if (found.messages.length > 1 && !exact) {
    if (json) out(JSON.stringify({ ambiguous: msg, messages: found.messages }));
    else {
      out(`${msg} matches ${found.messages.length} messages; give more of the id:`);
      for (const m of found.messages) out(`  ${m.id}  first seen ${timeOfDay(m.firstT)}${m.origin ? `  origin ${short(m.origin)}` : ''}${m.text ? `  ${m.text}` : ''}`);
    }
    return 1;
  }
  const id = exact?.id ?? found.messages[0]!.id;
  const trail = followMessage(filterEntries(entries, { ...filter, types: undefined, exclude: undefined }), id, map);
  if (json) {
    out(JSON.stringify({ ...trail, clocks, alsoNodeIds: found.nodes }));
    return 0;
  }
  clockNote();
  if (found.nodes.length > 0) out(`note: ${msg} also starts node id(s) ${found.nodes.map(short).join(', ')}; following the message`);
  const t0 = trail.steps[0]?.t ?? 0;
  out(`message ${trail.id}: ${trail.steps.length} step(s)`);
  for (const s of trail.steps) out(`  +${((s.t - t0) / 1000).toFixed(3).padStart(9)} ms  ${short(s.node).padEnd(SHORT_ID_CHARS)}  ${s.text}`);
  out('per node:');
  for (const n of trail.nodes) out(`  ${short(n.node).padEnd(SHORT_ID_CHARS)}  ${n.verdict}: ${n.detail}`);
  return 0;
}

const fmt = (v: number | null | undefined, w = 9) => (v === null || v === undefined ? '-' : v.toFixed(3)).padStart(w);

function delaysText(list: MessageDelays[], perNode: DelayStats[], overall: DelayStats, late: Array<{ id: string; node: string; delayMs?: number; via?: string; from?: string; hops?: number }>, lateMs: number): string[] {
  const lines: string[] = [];
  for (const m of list) {
    lines.push(`message ${m.id.slice(0, 16)} from ${short(m.origin)} topic=${JSON.stringify(m.topic ?? '?')} published ${timeOfDay(m.publishedAt)}${m.publishEstimated ? ' (estimated: first copy seen; the origin kept no dump)' : ''}`);
    for (const n of m.nodes) {
      if (n.via === 'origin') lines.push(`  ${short(n.node)}  origin`);
      else if (n.t === undefined) lines.push(`  ${short(n.node)}  ${'-'.padStart(9)} ms  never received`);
      else lines.push(`  ${short(n.node)}  ${fmt(n.delayMs)} ms  ${n.via!.padEnd(6)}  from ${short(n.from)}  hops ${n.hops ?? '?'}${n.delayMs! > lateMs ? '  LATE' : ''}`);
    }
  }
  lines.push(`delay from publication, ms (${list.length} message(s)):`);
  lines.push(`  node          got  repair  never       p50       p99       max`);
  for (const s of [...perNode, overall]) {
    lines.push(`  ${short(s.node).padEnd(8)}  ${String(s.delivered).padStart(7)} ${String(s.repaired).padStart(7)} ${String(s.missing).padStart(6)} ${fmt(s.p50Ms)} ${fmt(s.p99Ms)} ${fmt(s.maxMs)}`);
  }
  lines.push(`late (more than ${lateMs} ms after publication): ${late.length}`);
  for (const l of late) lines.push(`  ${l.id.slice(0, 8)} at ${short(l.node)}: ${l.delayMs!.toFixed(1)} ms by ${l.via} from ${short(l.from)}, hops ${l.hops ?? '?'}`);
  return lines;
}

function directionText(d: LinkDirection): string {
  const span = (a?: number, b?: number) => (a === undefined ? 'none' : `${timeOfDay(a)} .. ${timeOfDay(b!)}`);
  const head = `${short(d.from)} → ${short(d.to)}: sent ${d.sent} (${span(d.firstSent, d.lastSent)})`;
  if (d.received === null) return `${head}; the other end is not in these dumps`;
  let s = `${head}, received ${d.received} (${span(d.firstReceived, d.lastReceived)})`;
  if (d.lost && d.lostOnlyAtClose) s += `; ${d.lost} GOODBYE crossed the other end's own GOODBYE (both closed at once)`;
  else if (d.lost) s += `; ${d.lost} never received, ${d.sentAfterLastReceived} of them sent after the last one that arrived (first at ${timeOfDay(d.firstLostAt!)})`;
  return s;
}
