import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { followMessage } from '../../lib/dump/follow.js';
import { describeBody } from '../../lib/dump/describe.js';
import { readCapture } from '../../lib/dump/pcap.js';
import { mergeByTime, readDump } from '../../lib/dump/reader.js';
import type { FrameEntry } from '../../lib/dump/reader.js';
import { framesFromPackets } from '../../lib/dump/tcp-streams.js';
import { parseKeyLog } from '../../lib/noise/key-log.js';

/** The recorded session of docs/DEBUGGING.md (spec/fixtures/session.ts made it). */
const DIR = 'spec/fixtures/session';
interface Session {
  a: string; b: string; c: string;
  ports: { a: number; b: number; c: number; cableToB: number; cableToC: number };
  m1: string; m2: string; m3: string;
  delivered: Record<string, string[]>;
}

describe('the DEBUGGING.md session: a message lost behind a cut link', () => {
  let s: Session;
  let merged: Awaited<ReturnType<typeof readDump>>;
  before(async () => {
    s = JSON.parse(await readFile(`${DIR}/session.json`, 'utf8')) as Session;
    merged = mergeByTime(await Promise.all(['a', 'b', 'c'].map((n) => readDump(`${DIR}/${n}.ndjson`))));
  });

  it('recorded C missing M2 only', () => {
    expect(s.delivered.c).to.deep.equal(['M1 before the cut', 'M3 after the cut']);
    expect(s.delivered.b).to.have.length(3);
  });

  it('explains from the dumps alone why C never got M2: B sent it into the cut link, then both sides saw silence', () => {
    const trail = followMessage(merged, s.m2.slice(0, 8));
    expect(trail.id).to.equal(s.m2);
    const verdict = Object.fromEntries(trail.nodes.map((n) => [n.node, n]));
    expect(verdict[s.a]!.verdict).to.equal('origin');
    expect(verdict[s.b]!.verdict).to.equal('delivered');
    expect(verdict[s.c]!.verdict).to.equal('never received');
    expect(verdict[s.c]!.detail).to.include(`partitioned ${s.b.slice(0, 8)}`);
    const atB = trail.steps.filter((x) => x.node === s.b).map((x) => x.text);
    expect(atB).to.include(`forwarded (from ${s.a.slice(0, 8)}) to ${s.c.slice(0, 8)} ttl 9`);
    expect(atB.some((t) => t.startsWith(`→ ${s.c.slice(0, 8)} GOSSIP id=${s.m2.slice(0, 8)}`))).to.equal(true);
    expect(trail.steps.some((x) => x.node === s.c && x.text.includes('GOSSIP'))).to.equal(false);
  });

  it('shows M1 and M3 delivered at C', () => {
    for (const m of [s.m1, s.m3]) {
      const c = followMessage(merged, m).nodes.find((n) => n.node === s.c);
      expect(c?.verdict, m).to.equal('delivered');
    }
  });

  it('shows in the capture, decrypted with the key log, that M2 entered the cable towards C and never left it', async () => {
    const cap = await readCapture(`${DIR}/session.pcap`);
    const keys = parseKeyLog(await readFile(`${DIR}/session.keylog`, 'utf8'));
    const frames = framesFromPackets(cap.packets, 'session.pcap', { keys }).filter((e): e is FrameEntry => e.kind === 'frame');
    const legs = (m: string) => frames.filter((f) => describeBody(f.body).msgIds.includes(m)).map((f) => `${f.local} > ${f.remote}`);
    const port = (a: string) => Number(a.split(':')[1]);
    // Each copy B sends to C crosses two TCP connections: B -> cable, then cable -> C.
    const leavesCable = (legList: string[]) => legList.some((l) => [s.ports.cableToB, s.ports.cableToC].includes(port(l.split(' > ')[0]!)) || port(l.split(' > ')[1]!) === s.ports.c);
    expect(leavesCable(legs(s.m1)), 'M1 reaches C').to.equal(true);
    expect(leavesCable(legs(s.m3)), 'M3 reaches C').to.equal(true);
    expect(legs(s.m2)).to.have.length(2); // A -> B, B -> cable
    expect(leavesCable(legs(s.m2)), 'M2 reaches C').to.equal(false);
    // Without the key log no copy of any message is visible at all.
    const sealed = framesFromPackets(cap.packets, 'session.pcap').filter((e): e is FrameEntry => e.kind === 'frame');
    expect(sealed.some((f) => describeBody(f.body).msgIds.length > 0)).to.equal(false);
  });
});
