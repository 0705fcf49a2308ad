/**
 * Align the clocks of several dumps so that no frame is shown received before it was sent.
 * Each dump is stamped by its own process's clock; on one host they agree to a few µs, across
 * hosts only as well as NTP keeps them. From frames matched across dumps (pairs.ts), the
 * smallest receive-minus-send gap each way between two dumps bounds their offset: with
 * traffic both ways the offset is estimated as half the difference of the two minima (the
 * NTP estimate, exact when the fastest frame took as long each way); then every pair's
 * constraint "received at or after sent" is enforced by relaxation (a difference-constraint
 * system: Bellman-Ford over the dumps). Dumps whose clocks already agree (no receive before
 * its send) are left as they are. Offsets are reported, never applied silently.
 */
import type { DumpEntry } from './reader.js';
import type { ConnectionMap } from './pairs.js';

export interface ClockAlignment {
  /** Per dump file: µs subtracted from each of its times (0 for the reference). */
  offsets: Record<string, number>;
  /** Node id per dump file, for reporting. */
  nodes: Record<string, string>;
  /** The dump file whose clock the others are aligned to (the best connected one). */
  reference: string | undefined;
  /** Frames matched across dumps, the evidence. */
  pairs: number;
  /** Matched frames stamped as received before they were sent, before and after alignment. */
  inversionsBefore: number;
  inversionsAfter: number;
}

/** Offsets that put every matched receive at or after its send. */
export function alignClocks(map: ConnectionMap): ClockAlignment {
  const minGap = new Map<string, number>(); // "s>r" -> min(received.t - sent.t), µs
  const nodes: Record<string, string> = {};
  const degree = new Map<string, number>();
  let pairs = 0;
  let inversionsBefore = 0;
  for (const end of map.ends) nodes[end.source] = end.node;
  for (const list of map.matched.values()) {
    for (const { sent, received } of list) {
      pairs++;
      const gap = received.t - sent.t;
      if (gap < 0) inversionsBefore++;
      const k = `${sent.source}>${received.source}`;
      if (!(minGap.get(k)! <= gap)) minGap.set(k, gap);
      degree.set(sent.source, (degree.get(sent.source) ?? 0) + 1);
      degree.set(received.source, (degree.get(received.source) ?? 0) + 1);
    }
  }
  const sources = Object.keys(nodes).sort();
  const reference = [...degree].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? sources[0];
  const theta = new Map<string, number>();
  // Clocks that already agree (one host: the writers anchor at µs precision) are left alone;
  // otherwise a first estimate, breadth-first from the reference over dumps that exchanged frames.
  if (reference !== undefined && inversionsBefore > 0) {
    theta.set(reference, 0);
    const queue = [reference];
    while (queue.length > 0) {
      const u = queue.shift()!;
      for (const v of sources) {
        if (theta.has(v)) continue;
        const uv = minGap.get(`${u}>${v}`);
        const vu = minGap.get(`${v}>${u}`);
        if (uv === undefined && vu === undefined) continue;
        let d: number; // theta_v - theta_u
        if (uv !== undefined && vu !== undefined) d = (uv - vu) / 2;
        else if (uv !== undefined) d = Math.min(0, uv);
        else d = Math.max(0, -vu!);
        theta.set(v, Math.round(theta.get(u)! + d));
        queue.push(v);
      }
    }
  }
  for (const s of sources) if (!theta.has(s)) theta.set(s, 0);
  // Then enforce theta_r - theta_s <= minGap(s > r) for every pair, by relaxation.
  const edges = [...minGap].map(([k, gap]) => ({ s: k.slice(0, k.indexOf('>')), r: k.slice(k.indexOf('>') + 1), gap }));
  for (let pass = 0; pass <= sources.length; pass++) {
    let changed = false;
    for (const { s, r, gap } of edges) {
      if (theta.get(r)! > theta.get(s)! + gap) {
        theta.set(r, theta.get(s)! + gap);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const base = reference === undefined ? 0 : theta.get(reference)!;
  const offsets: Record<string, number> = {};
  for (const s of sources) offsets[s] = theta.get(s)! - base;
  let inversionsAfter = 0;
  for (const list of map.matched.values()) {
    for (const { sent, received } of list) if (received.t - offsets[received.source]! < sent.t - offsets[sent.source]!) inversionsAfter++;
  }
  return { offsets, nodes, reference, pairs, inversionsBefore, inversionsAfter };
}

/** The entries with each dump's offset subtracted from its times (captures untouched), re-sorted by time. */
export function applyClockOffsets(entries: readonly DumpEntry[], alignment: ClockAlignment): DumpEntry[] {
  return entries
    .map((e, i) => {
      const off = alignment.offsets[e.source];
      return { e: off ? { ...e, t: e.t - off } : e, i };
    })
    .sort((a, b) => a.e.t - b.e.t || a.i - b.i)
    .map((x) => x.e);
}

/** One line per dump: "f4f7ef2e  +0.000 ms (reference)", "ab4864a0  -0.412 ms". */
export function describeAlignment(a: ClockAlignment): string[] {
  const lines = [`clocks: ${a.pairs} frame(s) matched across dumps; received before sent: ${a.inversionsBefore} as recorded, ${a.inversionsAfter} after alignment`];
  for (const [source, off] of Object.entries(a.offsets)) {
    lines.push(`  ${a.nodes[source]!.slice(0, 8)}  ${off <= 0 ? '+' : '-'}${(Math.abs(off) / 1000).toFixed(3)} ms${source === a.reference ? ' (reference)' : ''}  ${source}`);
  }
  return lines;
}
